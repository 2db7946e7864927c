"""The transactional outbox: events, their deliveries, and every attempt made.

An ``Event`` and its ``Delivery`` rows are written in the publish's own transaction, so a publish
that rolls back leaves nothing behind and one that commits cannot lose its deliveries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .events import apply_includes, new_event_id


class Event(models.Model):
    """Something that happened, captured once, with the payload every destination is sent."""

    event_id = models.CharField(
        _("event id"), max_length=40, unique=True, default=new_event_id, editable=False
    )
    event_type = models.CharField(_("type"), max_length=100, db_index=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    #: The object the event is about (a page, a snippet), kept to list a page's history.
    content_type = models.ForeignKey(
        ContentType,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # wph_event_object covers it
    )
    object_id = models.CharField(max_length=255, blank=True, default="")
    object_repr = models.CharField(max_length=255, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    #: The body sent to webhook destinations: ``{"id", "type", "timestamp", "data"}``.
    payload = models.JSONField(_("payload"))
    #: Extra documents captured for the destinations that asked for them (``INCLUDE``), by
    #: name: ``{"api": {...}, "api:<digest>": {...}}`` (the stock API document, and one per
    #: projection: ``API_VIEWSET``, ``API_FIELDS``). Only the deliveries whose ``include``
    #: names one receive it.
    included_data = models.JSONField(_("included data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="wph_event_object"),
            # The deliveries report's "Object id" filter, given without an object type.
            models.Index(fields=["object_id"], name="wph_event_object_id"),
        ]
        # On PostgreSQL, migration 0016 also adds wph_event_title_trgm, a trigram index on
        # UPPER(object_repr) for the report's title search, when the pg_trgm extension can be
        # had; it is not declared here, since other databases cannot build it.

    def __str__(self) -> str:
        return f"{self.event_type} {self.object_repr}".strip()


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    DELIVERED = "delivered", _("Delivered")
    RETRYING = "retrying", _("Retrying")
    FAILED = "failed", _("Failed")
    #: Withdrawn by a person before it was sent. Final until redelivered.
    CANCELLED = "cancelled", _("Cancelled")


#: States from which a delivery is sent when due.
DUE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    """The deliveries' state transitions that people and the sweep make (the worker's claims
    and outcomes are :mod:`wagtail_publish_hooks.worker`'s). Each is one conditional
    ``UPDATE`` and returns the count; none enqueues anything: see
    :func:`wagtail_publish_hooks.delivery.redeliver` for one that does."""

    def due(self, now=None):
        """Deliveries waiting to be sent whose time has come, plus those whose claim expired."""
        now = now or timezone.now()
        waiting = Q(status__in=DUE_STATUSES, next_attempt_at__lte=now) & (
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)
        )
        abandoned = Q(status=DeliveryStatus.SENDING, lease_expires_at__lte=now)
        return self.filter(waiting | abandoned)

    def failed(self):
        return self.filter(status=DeliveryStatus.FAILED)

    def redeliver(self) -> int:
        """Queue these deliveries to be sent again, each with a fresh retry cycle (those being
        sent at this moment are left alone)."""
        now = timezone.now()
        return self.exclude(status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            attempts_at_redelivery=F("attempts"),
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
        )

    def cancel(self) -> int:
        """Withdraw those of these deliveries that are waiting to be sent.

        Only pending and retrying ones are cancelled, and one being sent only if its worker's
        lease has run out: the conditional ``UPDATE`` re-checks this row by row, so a delivery
        a worker holds is never withdrawn under it (it finishes, and its outcome stands).
        """
        now = timezone.now()
        lease_free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)
        cancellable = (Q(status__in=DUE_STATUSES) & lease_free) | Q(
            status=DeliveryStatus.SENDING, lease_expires_at__lte=now
        )
        return self.filter(cancellable).update(
            status=DeliveryStatus.CANCELLED,
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
        )

    def release_expired_leases(self) -> int:
        """Put those of these deliveries whose worker died mid-send back in line."""
        now = timezone.now()
        expired = self.filter(status=DeliveryStatus.SENDING, lease_expires_at__lte=now)
        return expired.update(
            status=DeliveryStatus.RETRYING, lease_token=None, lease_expires_at=None, updated_at=now
        )


class Delivery(models.Model):
    """One event on its way to one destination."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    #: Indexed by wph_delivery_dest_status.
    destination = models.CharField(_("destination"), max_length=100)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    #: Attempts made before the latest redelivery: a redelivery starts a fresh retry cycle.
    attempts_at_redelivery = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    #: While set and in the future, one worker holds the delivery; nobody else sends it.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    #: The names of the extra documents (``INCLUDE``) the destination asked for when the event
    #: was captured, such as ``["api"]`` or ``["api:<digest>"]`` (its projection of it).
    include = models.JSONField(_("include"), default=list, blank=True)
    #: Further events merged into this delivery by a coalescing destination (``event`` is the
    #: first); see :meth:`covered_events`.
    coalesced_events = models.ManyToManyField(
        Event, related_name="coalesced_into", blank=True, verbose_name=_("coalesced events")
    )

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at", "-pk"]
        #: ``view_delivery`` (Django's default) lets a user see the deliveries report;
        #: ``redeliver_delivery`` lets them redeliver and cancel.
        permissions = [("redeliver_delivery", _("Can redeliver and cancel deliveries"))]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="wph_delivery_due"),
            models.Index(fields=["destination", "status"], name="wph_delivery_dest_status"),
            # The deliveries report: a status or a destination, newest first.
            models.Index(fields=["status", "created_at"], name="wph_delivery_status_created"),
            models.Index(fields=["destination", "created_at"], name="wph_delivery_dest_created"),
            # The report sorted by attempts (ties: newest first).
            models.Index(fields=["attempts", "created_at"], name="wph_delivery_attempts_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event.event_type} → {self.destination} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in (
            DeliveryStatus.DELIVERED,
            DeliveryStatus.FAILED,
            DeliveryStatus.CANCELLED,
        )

    def covered_events(self) -> list[Event]:
        """Every event this delivery carries, in the order they happened: its own first."""
        merged = list(self.coalesced_events.order_by("created_at", "pk"))
        return [self.event, *merged]

    @property
    def payload(self) -> dict:
        """The document this delivery's destination is sent: the event's payload, plus the
        extra documents the destination asked for (``INCLUDE``), and only those."""
        event = self.event
        return apply_includes(event.payload, event.included_data or {}, self.include or ())


class AttemptOutcome(models.TextChoices):
    SUCCESS = "success", _("Success")
    RETRY = "retry", _("Will retry")
    FAILURE = "failure", _("Failure")


class Attempt(models.Model):
    """One try at sending a delivery, with what was sent and what came back."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_set")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=20, choices=AttemptOutcome.choices)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    #: Request headers as sent, with signatures and secrets redacted.
    request_headers = models.JSONField(default=dict, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    #: The start of the response body, truncated to 4 KiB.
    response_body = models.TextField(blank=True, default="")
    #: What the backend reports about the attempt beyond HTTP: the URLs purged, the recipients
    #: mailed, a deployment id. JSON-safe and secret-free.
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        verbose_name = _("attempt")
        verbose_name_plural = _("attempts")
        ordering = ["delivery", "number"]
        # The destinations' charts count the attempts of the last hours (see attempt_hours).
        indexes = [models.Index(fields=["started_at"], name="wph_attempt_started")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.outcome}"


class DestinationState(models.Model):
    """Health of a destination, and whether it was disabled (for example by HTTP 410)."""

    alias = models.CharField(max_length=100, unique=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True, default="")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    #: The first failed attempt since the last success (``None`` while it succeeds): a
    #: destination failing for ``DISABLE_AFTER_FAILING_FOR`` since then is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("destination state")
        verbose_name_plural = _("destination states")

    def __str__(self) -> str:
        return self.alias

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None

    @classmethod
    def enable(cls, alias: str) -> bool:
        """Re-enable a disabled destination, with a clean failure count (and no failing
        streak: it gets a full ``DISABLE_AFTER_FAILING_FOR`` again). Whether it was."""
        return bool(
            cls.objects.filter(alias=alias, disabled_at__isnull=False).update(
                disabled_at=None, disabled_reason="", consecutive_failures=0, failing_since=None
            )
        )

    @classmethod
    def disable(cls, alias: str, reason: str) -> bool:
        """Stop delivering to a destination until it is enabled again. Whether it was enabled:
        its deliveries then fail at once, naming ``reason``, and can be redelivered later."""
        state, created = cls.objects.get_or_create(
            alias=alias, defaults={"disabled_at": timezone.now(), "disabled_reason": reason}
        )
        if created:
            return True
        return bool(
            cls.objects.filter(pk=state.pk, disabled_at__isnull=True).update(
                disabled_at=timezone.now(), disabled_reason=reason
            )
        )


def retention_cutoff(days: int):
    return timezone.now() - timedelta(days=days)


class ManagedDestination(models.Model):
    """A destination configured in the Wagtail admin rather than in settings.

    Its fields are a destination's keys in ``WAGTAIL_PUBLISH_HOOKS["DESTINATIONS"]``; routing,
    the worker and ``manage.py publish_hooks`` see it like one defined there (see
    :func:`wagtail_publish_hooks.registry.get_destinations`). The ``SECRET`` option is kept apart
    from the others, in :attr:`secrets`, so that the admin never displays it.

    Secrets are encrypted at rest (:mod:`wagtail_publish_hooks.encryption`): on saving (the
    registry's ``pre_save`` receiver), each
    value of :attr:`secrets` and each secret value of :attr:`options` (a tokenised URL, a
    header named like a credential, any key the backend declares secret) is replaced by its
    encrypted form. Read them with :meth:`plain_options`, :meth:`plain_secrets` or
    :meth:`to_config`, which raise :class:`~wagtail_publish_hooks.encryption.DecryptionError`
    when the keys that encrypted them are gone.

    :attr:`backend` is the dotted path of a backend in the registry of backends allowed for
    the admin (:func:`wagtail_publish_hooks.registry.managed_backend_class`); any other is never
    imported, and the destination is not built.
    """

    alias = models.CharField(_("alias"), max_length=100, unique=True)
    backend = models.CharField(_("backend"), max_length=255)
    #: The backend's ``OPTIONS``, without ``SECRET``; secret values encrypted.
    options = models.JSONField(_("options"), default=dict, blank=True)
    #: The ``SECRET`` option: its secrets, newest first (more than one while rotating), each
    #: encrypted. Never displayed after the page that showed it once.
    secrets = models.JSONField(default=list, blank=True, editable=False)
    #: ``None``: the default (every page event; every model).
    events = models.JSONField(_("events"), null=True, blank=True)
    model_labels = models.JSONField(_("models"), null=True, blank=True)
    #: ``None``: the backend's default.
    exclude_aliases = models.BooleanField(_("exclude aliases"), null=True, blank=True)
    include = models.JSONField(_("include"), default=list, blank=True)
    #: ``SITES``, ``LOCALES``, ``SECTIONS`` (page ids), ``CHANGED``, ``COLLECTIONS`` (ids);
    #: ``None``: no filter.
    sites = models.JSONField(_("sites"), null=True, blank=True)
    locales = models.JSONField(_("locales"), null=True, blank=True)
    sections = models.JSONField(_("sections"), null=True, blank=True)
    changed_fields = models.JSONField(_("changed fields"), null=True, blank=True)
    collections = models.JSONField(_("collections"), null=True, blank=True)
    #: ``API_FIELDS``; ``None``: the API's own. (``API_VIEWSET`` names code: settings only.)
    api_fields = models.JSONField(_("API fields"), null=True, blank=True)
    #: ``RETRY_SCHEDULE`` and ``MAX_ATTEMPTS``; ``None``: the globals.
    retry_schedule = models.JSONField(_("retry schedule"), null=True, blank=True)
    max_attempts = models.PositiveIntegerField(_("max attempts"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("destination")
        verbose_name_plural = _("destinations")
        ordering = ["alias"]

    def __str__(self) -> str:
        return self.alias

    def encrypt_secrets(self, is_secret_option: Callable[[str], bool]) -> None:
        """Replace every secret value still in plaintext by its encrypted form.

        ``is_secret_option(key)`` says which top-level ``OPTIONS`` keys hold secrets; the
        registry asks the backend (:func:`wagtail_publish_hooks.registry.secret_option_rule`),
        and calls this before every save.
        """
        from .encryption import encrypt, map_secret_values

        self.secrets = [encrypt(secret) for secret in (self.secrets or [])]
        self.options = map_secret_values(self.options or {}, is_secret_option, encrypt)

    def plain_options(self) -> dict:
        """:attr:`options` with its secret values decrypted."""
        from .encryption import decrypt_all

        return decrypt_all(dict(self.options or {}))

    def plain_secrets(self) -> list[str]:
        """:attr:`secrets`, decrypted."""
        from .encryption import decrypt

        return [decrypt(secret) for secret in (self.secrets or [])]

    def secret_option(self) -> str | list[str] | None:
        """The ``SECRET`` option as settings would hold it (decrypted)."""
        secrets = self.plain_secrets()
        if not secrets:
            return None
        return secrets[0] if len(secrets) == 1 else list(secrets)

    def to_config(self) -> dict:
        """The destination as a ``DESTINATIONS`` entry of the settings would be written, with
        its secrets decrypted."""
        options = self.plain_options()
        secret = self.secret_option()
        if secret is not None:
            options["SECRET"] = secret
        config: dict = {"BACKEND": self.backend, "OPTIONS": options}
        if self.events is not None:
            config["EVENTS"] = self.events
        if self.model_labels is not None:
            config["MODELS"] = self.model_labels
        if self.exclude_aliases is not None:
            config["EXCLUDE_ALIASES"] = self.exclude_aliases
        if self.include:
            config["INCLUDE"] = self.include
        for key, value in (
            ("SITES", self.sites),
            ("LOCALES", self.locales),
            ("SECTIONS", self.sections),
            ("CHANGED", self.changed_fields),
            ("COLLECTIONS", self.collections),
            ("API_FIELDS", self.api_fields),
        ):
            if value is not None:
                config[key] = value
        if self.retry_schedule is not None:
            config["RETRY_SCHEDULE"] = self.retry_schedule
        if self.max_attempts is not None:
            config["MAX_ATTEMPTS"] = self.max_attempts
        return config


class CaptureFailureQuerySet(models.QuerySet["CaptureFailure"]):
    def unresolved(self):
        return self.filter(resolved_at__isnull=True)


class CaptureFailure(models.Model):
    """An event that could not be captured, or captured without what a destination needed.

    Written in a savepoint of its own when capture fails, so that the failure is kept even
    though the event is not: shown in the admin and by ``publish_hooks status``, and
    ``publish_hooks reconcile`` records again what can be recorded again (the publish or
    unpublish of a page or snippet still present) and marks it resolved. Holds no payload and
    no secret: the type of the error and a message with its quoted values removed.
    """

    event_type = models.CharField(_("type"), max_length=100)
    #: The object the event was about, when there was one.
    content_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    object_id = models.CharField(max_length=255, blank=True, default="")
    object_repr = models.CharField(max_length=255, blank=True, default="")
    #: Set when the event was recorded but this destination's own capture (``INCLUDE``, the
    #: purge set of a frontend cache) failed: its delivery was sent with what the event holds.
    destination = models.CharField(_("destination"), max_length=100, blank=True, default="")
    error_type = models.CharField(_("error"), max_length=255)
    message = models.TextField(_("message"), blank=True, default="")
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now, db_index=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    #: How it was resolved: the id of the event recorded again, or why none was needed.
    resolution = models.CharField(_("resolution"), max_length=255, blank=True, default="")

    objects = CaptureFailureQuerySet.as_manager()

    class Meta:
        verbose_name = _("capture failure")
        verbose_name_plural = _("capture failures")
        ordering = ["-occurred_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.error_type}"

    @property
    def is_resolved(self) -> bool:
        return self.resolved_at is not None


class Upkeep(models.Model):
    """The package's own periodic work (the sweep, the prune), run as self-rescheduling tasks.

    One row per job: ``token`` names the one pending run; a run whose token is no longer the
    row's is a leftover and does nothing, so at most one chain of each job is ever live.
    """

    name = models.CharField(_("name"), max_length=20, primary_key=True)
    token = models.UUIDField(_("token of the pending run"), null=True, blank=True)
    task_id = models.CharField(_("task id of the pending run"), max_length=64, blank=True)
    next_run_at = models.DateTimeField(_("next run at"), null=True, blank=True)
    last_run_at = models.DateTimeField(_("last run at"), null=True, blank=True)
    last_result = models.CharField(_("last result"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("upkeep job")
        default_permissions = ()

    def __str__(self) -> str:
        return self.name


# Subscriptions and the charts' hourly counts have their own modules; Django finds models
# through this one.
from .attempt_hours import AttemptHour  # noqa: E402
from .subscription_models import NotificationPreferences, Subscription  # noqa: E402

__all__ = [
    "Attempt",
    "AttemptHour",
    "AttemptOutcome",
    "CaptureFailure",
    "Delivery",
    "DeliveryStatus",
    "DestinationState",
    "Event",
    "ManagedDestination",
    "NotificationPreferences",
    "Subscription",
    "Upkeep",
]
