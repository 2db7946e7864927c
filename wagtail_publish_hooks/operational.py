"""Operational events: the pipeline tells the people who asked when deliveries fail for good
and when a destination is disabled.

``publish_hooks.delivery_failed``
    A delivery's last attempt failed. One event per failing destination per
    ``OPERATIONAL_COALESCE_SECONDS``: the first failure opens it, and every other delivery to
    the same destination that fails before it is sent is added to it (a count, the first and
    the last failure, the delivery ids), so an outage makes one message, not one per publish.
``publish_hooks.destination_disabled``
    A destination was disabled by the worker: it answered 410 (or its provider's "gone", such
    as Slack's ``no_service``), or every attempt failed for ``DISABLE_AFTER_FAILING_FOR``. Once
    per disabling; enabling it again (admin, ``publish_hooks enable``) re-arms it.
``publish_hooks.capture_failed``
    Recorded by capture itself (``outbox.record_event``); routed by the same rules.

They are routed like any other event, but only to the destinations whose ``EVENTS`` name them
(:mod:`wagtail_publish_hooks.routing`), and never to the destination they are about. No
operational event is emitted about a delivery of a ``publish_hooks.*`` event, nor about one
that failed because its destination was disabled or is not configured: so destination A
failing cannot make B fail, and B's failure reach A, and so on. (A destination is disabled at
most once until enabled, so ``destination_disabled`` cannot loop either.)

Everything here runs after the worker's outcomes are committed (``transaction.on_commit``),
never inside a transaction that might roll back, and never raises into the worker: a failure
to emit is logged, the deliveries' own outcomes stand. Payloads carry aliases, counts, status
codes, delivery ids and the error text the worker recorded (already secret-free), never a
URL, header or option of a destination.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings
from django.db import models, router, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from .conf import get_settings, is_builtin_alias
from .events import (
    DELIVERY_FAILED,
    DESTINATION_DISABLED,
    OPERATIONAL_EVENT_TYPES,
    build_body,
    isoformat,
    new_event_id,
)
from .models import Delivery, DeliveryStatus, DestinationState, Event
from .signals import deliveries_recorded

if TYPE_CHECKING:
    from .routing import Route
    from .worker import Outcome

logger = logging.getLogger("wagtail_publish_hooks")

__all__ = ["OPERATIONAL_EVENT_TYPES", "count_outcomes", "failing_since", "outcomes_recorded"]

#: Deliveries named by id in one ``delivery_failed`` event, at most (``count`` has them all).
MAX_DELIVERY_IDS = 50
#: Longest error text carried per failure.
MAX_ERROR_CHARS = 300

GONE = "gone"
SUSTAINED_FAILURE = "sustained_failure"


def is_about_the_pipeline(event_type: str) -> bool:
    """Whether an event is the package's own (``publish_hooks.*``): no operational event is
    emitted about its deliveries."""
    return event_type.startswith("publish_hooks.")


# -- Inside the worker's outcome transaction ---------------------------------------------------


def failing_since(outcomes: list[Outcome], *, new: bool = False) -> Any:
    """The ``failing_since`` of a destination after ``outcomes`` (in the order made): the first
    failure after the last success, ``None`` if none; with no success at all, the stored value
    if there is one (an expression), else the first failure (``new``: the row is created)."""
    last_success = max((i for i, outcome in enumerate(outcomes) if outcome.success), default=-1)
    after = outcomes[last_success + 1 :]
    if last_success >= 0 or new:
        return after[0].at if after else None
    return Coalesce(F("failing_since"), Value(after[0].at, output_field=models.DateTimeField()))


def count_outcomes(alias: str, outcomes: list[Outcome]) -> None:
    """Count a destination's attempts, in the order made, in its health: one ``UPDATE``."""
    successes = [index for index, outcome in enumerate(outcomes) if outcome.success]
    failures = [outcome.at for outcome in outcomes if not outcome.success]
    trailing = len(outcomes) - 1 - successes[-1] if successes else len(outcomes)
    changes: dict[str, Any] = {}
    if successes:
        changes["last_success_at"] = outcomes[successes[-1]].at
        changes["consecutive_failures"] = trailing
    else:
        changes["consecutive_failures"] = F("consecutive_failures") + trailing
    if failures:
        changes["last_failure_at"] = max(failures)
    changes["failing_since"] = failing_since(outcomes)
    if not DestinationState.objects.filter(alias=alias).update(**changes):
        create = {**changes, "consecutive_failures": trailing}
        create["failing_since"] = failing_since(outcomes, new=True)
        DestinationState.objects.get_or_create(alias=alias, defaults=create)


def outcomes_recorded(outcomes: list[Outcome]) -> None:
    """Called in the transaction that commits ``outcomes``: disable the destinations that are
    gone or have failed for too long, and arrange the operational events for after commit."""
    by_alias: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.alias is not None:
            by_alias.setdefault(outcome.alias, []).append(outcome)
    disabled: list[tuple[str, str]] = []
    for alias, results in by_alias.items():
        gone = [outcome for outcome in results if outcome.gone_reason is not None]
        if gone:
            reason = gone[-1].gone_reason or ""
            if _disable(alias, gone[-1].at, reason):
                disabled.append((alias, GONE))
            logger.warning("Publish hooks destination %r is disabled: %s", alias, reason)
        elif not results[-1].success and _disable_if_failing_too_long(alias, results[-1].at):
            disabled.append((alias, SUSTAINED_FAILURE))
    final = [
        (outcome.delivery.pk, outcome.attempt.number)
        for outcome in outcomes
        if outcome.alias is not None
        and outcome.gone_reason is None
        and outcome.delivery.status == DeliveryStatus.FAILED
        and not is_about_the_pipeline(outcome.delivery.event.event_type)
    ]
    if final or disabled:
        transaction.on_commit(
            functools.partial(_emit_after_commit, final, disabled),
            using=router.db_for_write(Delivery),
            robust=True,
        )


def _disable(alias: str, at: datetime, reason: str) -> bool:
    """Disable ``alias`` unless it is disabled already. Whether this disabled it."""
    states = DestinationState.objects.filter(alias=alias, disabled_at__isnull=True)
    return bool(states.update(disabled_at=at, disabled_reason=reason))


def _disable_if_failing_too_long(alias: str, now: datetime) -> bool:
    window = get_settings().DISABLE_AFTER_FAILING_FOR
    if not window or is_builtin_alias(alias):
        # A Python receiver is the site's code: a bug in it is fixed in code, not by switching
        # it off; watching's deliveries are the package's own, and one user's channel failing
        # must not silence them (their failures are still reported as delivery_failed).
        return False
    cutoff = now - timedelta(seconds=float(window))
    reason = (
        f"every attempt failed for more than {_duration(float(window))} (DISABLE_AFTER_FAILING_FOR)"
    )
    disabled = bool(
        DestinationState.objects.filter(
            alias=alias, disabled_at__isnull=True, failing_since__lte=cutoff
        ).update(disabled_at=now, disabled_reason=reason)
    )
    if disabled:
        logger.warning("Publish hooks destination %r is disabled: %s", alias, reason)
    return disabled


# -- After commit -------------------------------------------------------------------------------


def _emit_after_commit(final: list[tuple[int, int]], disabled: list[tuple[str, str]]) -> None:
    """Emit the events; never raises (the outcomes are committed whatever happens here)."""
    for alias, cause in disabled:
        try:
            destination_disabled(alias, cause)
        except Exception:
            logger.exception("Publish hooks could not emit %s for %r", DESTINATION_DISABLED, alias)
    if not final:
        return
    try:
        wanted = dict(final)
        # Only the failures that were committed as such (a worker that lost its lease records
        # nothing): the database says which.
        confirmed = [
            delivery
            for delivery in Delivery.objects.filter(
                pk__in=wanted, status=DeliveryStatus.FAILED
            ).select_related("event")
            if delivery.attempts == wanted[delivery.pk]
        ]
    except Exception:
        logger.exception("Publish hooks could not emit %s", DELIVERY_FAILED)
        return
    by_alias: dict[str, list[Delivery]] = {}
    for delivery in sorted(confirmed, key=lambda d: d.pk):
        by_alias.setdefault(delivery.destination, []).append(delivery)
    for alias, deliveries in by_alias.items():
        try:
            deliveries_failed(alias, deliveries)
        except Exception:
            logger.exception("Publish hooks could not emit %s for %r", DELIVERY_FAILED, alias)


def deliveries_failed(alias: str, deliveries: Iterable[Delivery]) -> Event | None:
    """Report deliveries to ``alias`` that failed for good: added to the ``delivery_failed``
    event about ``alias`` still waiting out its window, or in a new one. Returns the event, or
    ``None`` when no destination takes such events."""
    from .routing import operational_routes

    routes = operational_routes(DELIVERY_FAILED, alias)
    if not routes:
        return None
    now = timezone.now()
    failures = [failure(delivery) for delivery in deliveries]
    if not failures:
        return None
    window = float(get_settings().OPERATIONAL_COALESCE_SECONDS)
    using = router.db_for_write(Event)
    with transaction.atomic(using=using):
        # A write first: it serialises the reports about one destination (a row lock; on
        # SQLite, the database's), so two workers do not both open an event.
        DestinationState.objects.using(using).filter(alias=alias).update(alias=F("alias"))
        event = _open_event(alias, now, using) if window > 0 else None
        if event is not None:
            data = event.payload["data"]
            data["count"] = int(data.get("count") or 0) + len(failures)
            data["last_failure"] = failures[-1]
            ids = list(data.get("delivery_ids") or [])
            ids += [item["delivery_id"] for item in failures]
            data["delivery_ids"] = ids[:MAX_DELIVERY_IDS]
            event.save(update_fields=["payload"])
            return event
        data = {
            "destination": alias,
            "count": len(failures),
            "window_seconds": int(window) if window.is_integer() else window,
            "first_failure": failures[0],
            "last_failure": failures[-1],
            "delivery_ids": [item["delivery_id"] for item in failures][:MAX_DELIVERY_IDS],
            "admin_url": admin_url("wagtail_publish_hooks:deliveries", query=alias),
        }
        return _write(DELIVERY_FAILED, alias, data, routes, now, now + timedelta(seconds=window))


def _open_event(alias: str, now: datetime, using: str) -> Event | None:
    """The ``delivery_failed`` event about ``alias`` none of whose deliveries has been claimed
    yet, its window still open; its deliveries are locked until the transaction ends (a worker
    claims them only once due, re-checking the same condition), so the event is never changed
    under a send."""
    latest = (
        Event.objects.using(using)
        .filter(event_type=DELIVERY_FAILED, object_id=alias[:255], content_type__isnull=True)
        .order_by("-created_at", "-pk")
        .first()
    )
    if latest is None:
        return None
    deliveries = Delivery.objects.using(using).filter(event=latest)
    total = deliveries.count()
    held = deliveries.filter(
        status=DeliveryStatus.PENDING, lease_token__isnull=True, next_attempt_at__gt=now
    ).update(updated_at=now)
    if not total or held != total:
        return None
    return Event.objects.using(using).select_for_update().get(pk=latest.pk)


def destination_disabled(alias: str, cause: str) -> Event | None:
    """Report that the worker disabled ``alias`` (``cause``: ``"gone"`` or
    ``"sustained_failure"``), to every destination that takes such events but ``alias``."""
    from .routing import operational_routes

    routes = operational_routes(DESTINATION_DISABLED, alias)
    if not routes:
        return None
    state = DestinationState.objects.filter(alias=alias).first()
    if state is None or not state.is_disabled:
        return None  # enabled again meanwhile
    data = {
        "destination": alias,
        "cause": cause,
        "reason": state.disabled_reason[:MAX_ERROR_CHARS],
        "disabled_at": isoformat(state.disabled_at),
        "failing_since": isoformat(state.failing_since),
        "consecutive_failures": state.consecutive_failures,
        "last_success_at": isoformat(state.last_success_at),
        "admin_url": admin_url("publish_hooks_destinations:detail", alias),
    }
    now = timezone.now()
    with transaction.atomic(using=router.db_for_write(Event)):
        return _write(DESTINATION_DISABLED, alias, data, routes, now, now)


def failure(delivery: Delivery) -> dict[str, Any]:
    """One failed delivery, as an operational event tells it."""
    event = delivery.event
    return {
        "delivery_id": delivery.pk,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "object": event.object_repr or None,
        "attempts": delivery.attempts,
        "status_code": delivery.last_status_code,
        "error": (delivery.last_error or "")[:MAX_ERROR_CHARS],
        "failed_at": isoformat(delivery.updated_at),
        "admin_url": admin_url("wagtail_publish_hooks:delivery", delivery.pk),
    }


def _write(
    event_type: str,
    about: str,
    data: dict[str, Any],
    routes: list[Route],
    now: datetime,
    due: datetime,
) -> Event:
    """Insert an operational event about ``about`` and its deliveries, first due at ``due``,
    and announce them (:data:`~wagtail_publish_hooks.signals.deliveries_recorded`). In the
    caller's transaction."""
    using = router.db_for_write(Event)
    event_id = new_event_id()
    event = Event.objects.using(using).create(
        event_id=event_id,
        event_type=event_type,
        created_at=now,
        payload=build_body(event_id=event_id, event_type=event_type, timestamp=now, data=data),
        # Names the destination it is about: the admin lists it, _open_event finds it.
        object_id=about[:255],
        object_repr=about[:255],
    )
    Delivery.objects.using(using).bulk_create(
        Delivery(event=event, destination=route.alias, next_attempt_at=due, created_at=now)
        for route in routes
    )
    deliveries_recorded.send(
        sender=Delivery, using=using, due_now=due <= now, due_later=[] if due <= now else [due]
    )
    return event


def admin_url(name: str, *args: Any, query: str | None = None) -> str | None:
    """An absolute URL of the admin, when ``WAGTAILADMIN_BASE_URL`` is set; else ``None``."""
    base = getattr(django_settings, "WAGTAILADMIN_BASE_URL", None)
    if not base:
        return None
    try:
        path = reverse(name, args=args)
    except NoReverseMatch:
        return None
    if query is not None:
        from urllib.parse import urlencode

        path += "?" + urlencode({"destination": query, "status": DeliveryStatus.FAILED})
    return str(base).rstrip("/") + path


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"
