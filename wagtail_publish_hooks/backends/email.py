"""Email to Wagtail users and groups: one message per recipient, written by Django templates."""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.core.mail import EmailMultiAlternatives
from django.core.mail import message as mail_message
from django.db.models import Q
from django.template.loader import get_template, render_to_string
from django.urls import NoReverseMatch, reverse

from ..exceptions import DeliveryError
from ..http.responses import HttpResult
from ..models import Attempt
from ..summary import summarize
from ..validation import error, warning
from .base import BaseBackend

if TYPE_CHECKING:
    from ..models import Delivery

DEFAULT_SUBJECT_TEMPLATE = "wagtail_publish_hooks/email/subject.txt"
DEFAULT_BODY_TEMPLATE = "wagtail_publish_hooks/email/body.txt"

#: The options that name who receives the messages; at least one must be set.
RECIPIENT_OPTIONS = ("TO_USERS", "TO_GROUPS", "TO_OWNER", "TO_SUBMITTER")

#: The key of ``Attempt.detail`` that lists the addresses the attempt sent to. Later attempts of
#: the same delivery read it back and skip those addresses.
SENT_DETAIL = "sent"

# System check ids (listed in validation.py, so that nobody takes them twice).


@dataclass(frozen=True)
class Recipient:
    address: str
    user: Any


class EmailBackend(BaseBackend):
    """Sends each event by email to Wagtail users, one message per recipient.

    ``OPTIONS``: ``TO_USERS`` (usernames), ``TO_GROUPS`` (group names), ``TO_OWNER`` (the
    page's or object's owner), ``TO_SUBMITTER`` (who submitted the workflow, for ``workflow.*``
    events), ``EXCLUDE_ACTOR`` (default ``True``: nobody is mailed about their own action),
    ``FROM_EMAIL`` (default ``DEFAULT_FROM_EMAIL``), ``SUBJECT_TEMPLATE``, ``BODY_TEMPLATE`` and
    ``HTML_TEMPLATE`` (optional).

    Recipients are resolved when the delivery is sent: active users with an email address,
    one message per address. A retry never mails an address that an earlier attempt of the same
    delivery reached: each attempt records the addresses it sent to.
    """

    display_name = "Email"

    option_keys = frozenset(
        {
            *RECIPIENT_OPTIONS,
            "EXCLUDE_ACTOR",
            "FROM_EMAIL",
            "SUBJECT_TEMPLATE",
            "BODY_TEMPLATE",
            "HTML_TEMPLATE",
        }
    )

    def __init__(self, *, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias=alias, options=options)
        self.to_users: list[str] = list(options.get("TO_USERS") or [])
        self.to_groups: list[str] = list(options.get("TO_GROUPS") or [])
        self.to_owner = bool(options.get("TO_OWNER", False))
        self.to_submitter = bool(options.get("TO_SUBMITTER", False))
        self.exclude_actor = bool(options.get("EXCLUDE_ACTOR", True))
        self.from_email: str | None = options.get("FROM_EMAIL") or None
        self.subject_template: str = options.get("SUBJECT_TEMPLATE") or DEFAULT_SUBJECT_TEMPLATE
        self.body_template: str = options.get("BODY_TEMPLATE") or DEFAULT_BODY_TEMPLATE
        self.html_template: str | None = options.get("HTML_TEMPLATE") or None

    @classmethod
    def check_options(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        messages: list[checks.CheckMessage] = []
        for key in ("TO_USERS", "TO_GROUPS"):
            value = options.get(key)
            if value is not None and (
                isinstance(value, str)
                or not isinstance(value, list | tuple)
                or not all(isinstance(item, str) and item.strip() for item in value)
            ):
                what = "usernames" if key == "TO_USERS" else "group names"
                messages.append(
                    error(
                        28,
                        f"must be a list of {what}.",
                        alias=alias,
                        keys=("OPTIONS", key),
                    )
                )
        for key in ("TO_OWNER", "TO_SUBMITTER", "EXCLUDE_ACTOR"):
            if key in options and not isinstance(options[key], bool):
                messages.append(
                    error(29, "must be True or False.", alias=alias, keys=("OPTIONS", key))
                )
        if not any(options.get(key) for key in RECIPIENT_OPTIONS):
            messages.append(
                error(
                    30,
                    "names no recipients: this destination would mail nobody.",
                    alias=alias,
                    keys=("OPTIONS",),
                    hint="Set TO_USERS, TO_GROUPS, TO_OWNER or TO_SUBMITTER.",
                )
            )
        for key in ("FROM_EMAIL", "SUBJECT_TEMPLATE", "BODY_TEMPLATE", "HTML_TEMPLATE"):
            value = options.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip():
                messages.append(
                    error(
                        31,
                        "must be a non-empty string.",
                        alias=alias,
                        keys=("OPTIONS", key),
                    )
                )
            elif key.endswith("_TEMPLATE"):
                try:
                    get_template(value)
                except Exception as exc:
                    messages.append(
                        warning(
                            7,
                            f"template {value!r} cannot be loaded ({type(exc).__name__}: {exc}); "
                            "deliveries will fail until it can.",
                            alias=alias,
                            keys=("OPTIONS", key),
                        )
                    )
        return messages

    def describe(self) -> str:
        parts = []
        if self.to_users:
            parts.append(f"users {', '.join(self.to_users)}")
        if self.to_groups:
            parts.append(f"groups {', '.join(self.to_groups)}")
        if self.to_owner:
            parts.append("the owner")
        if self.to_submitter:
            parts.append("the workflow's submitter")
        return f"Email to {'; '.join(parts) or 'nobody'}"

    # -- Recipients -------------------------------------------------------------------------------

    def resolve_recipients(self, delivery: Delivery) -> tuple[list[Recipient], list[Recipient]]:
        """``(recipients, excluded)``: who is mailed, and who was left out as the actor.

        Active users with a non-empty email address, one per address (compared without case),
        sorted by address.
        """
        user_model = get_user_model()
        data = delivery.payload.get("data") or {}
        query = Q()
        if self.to_users:
            query |= Q(**{f"{user_model.USERNAME_FIELD}__in": self.to_users})
        if self.to_groups:
            query |= Q(groups__name__in=self.to_groups)
        ids = set()
        if self.to_owner and (owner_id := owner_pk(delivery)) is not None:
            ids.add(owner_id)
        if self.to_submitter and (submitter_id := user_pk(data.get("workflow"), "requested_by")):
            ids.add(submitter_id)
        if ids:
            query |= Q(pk__in=ids)
        if not query:
            return [], []
        email_field = user_model.get_email_field_name()
        actor_id = user_pk(data, "actor") if self.exclude_actor else None
        by_address: dict[str, Recipient] = {}
        excluded: list[Recipient] = []
        for user in user_model._default_manager.filter(query).distinct().order_by("pk"):
            address = str(getattr(user, email_field, "") or "").strip()
            if not address or not getattr(user, "is_active", True):
                continue
            recipient = Recipient(address=address, user=user)
            if actor_id is not None and user.pk == actor_id:
                excluded.append(recipient)
            else:
                by_address.setdefault(address.lower(), recipient)
        return [by_address[key] for key in sorted(by_address)], excluded

    def explain_nobody(self) -> str:
        looked_for = []
        if self.to_users:
            looked_for.append(f"TO_USERS {self.to_users!r}")
        if self.to_groups:
            looked_for.append(f"TO_GROUPS {self.to_groups!r}")
        if self.to_owner:
            looked_for.append("the owner (TO_OWNER)")
        if self.to_submitter:
            looked_for.append("the workflow's submitter (TO_SUBMITTER)")
        return (
            f"no recipients: {', '.join(looked_for) or 'no recipient option'} matched no active "
            "user with an email address"
        )

    # -- Messages ---------------------------------------------------------------------------------

    def context(self, delivery: Delivery, recipient: Recipient) -> dict[str, Any]:
        payload = delivery.payload
        data = payload.get("data") or {}
        return {
            "summary": summarize(payload),
            "payload": payload,
            "data": data,
            "workflow": data.get("workflow"),
            "recipient": recipient.user,
            "recipient_email": recipient.address,
            "admin_url": admin_edit_url(payload),
            "site_name": getattr(settings, "WAGTAIL_SITE_NAME", ""),
            "destination": self.alias,
        }

    def build_message(self, delivery: Delivery, recipient: Recipient) -> EmailMultiAlternatives:
        """The message for one recipient, with only that recipient's address in ``To``."""
        context = self.context(delivery, recipient)
        subject = " ".join(render_to_string(self.subject_template, context).split())
        body = render_to_string(self.body_template, context)
        event_id = delivery.event.event_id
        message = EmailMultiAlternatives(
            subject,
            body,
            from_email=self.from_email,
            to=[recipient.address],
            headers={
                # RFC 3834, and Exchange's equivalent: no out-of-office replies to a notification.
                "Auto-Submitted": "auto-generated",
                "X-Auto-Response-Suppress": "All",
                "X-Publish-Hooks-Event": event_id,
                # The same for every attempt, so that a message sent twice (a worker that died
                # between sending and recording) is recognisable as one by mail clients.
                "Message-ID": message_id(event_id, self.alias, recipient.address),
            },
        )
        if self.html_template:
            message.attach_alternative(render_to_string(self.html_template, context), "text/html")
        return message

    # -- Sending ----------------------------------------------------------------------------------

    def deliver(self, delivery: Delivery) -> HttpResult:
        recipients, excluded = self.resolve_recipients(delivery)
        if not recipients and not excluded:
            raise DeliveryError(self.explain_nobody(), retryable=False)
        already = sent_in_earlier_attempts(delivery)
        pending = [r for r in recipients if r.address.lower() not in already]
        report = [f"already sent: {r.address}" for r in recipients if r.address.lower() in already]
        report += [f"not sent (the actor): {r.address}" for r in excluded]
        try:
            messages = [(r, self.build_message(delivery, r)) for r in pending]
        except Exception as exc:
            raise DeliveryError(
                f"cannot render the message: {type(exc).__name__}: {exc}",
                retryable=False,
                response_body="\n".join(report),
            ) from exc

        sent: list[str] = []
        refused: dict[str, tuple[str, bool]] = {}  # address -> (reason, permanent)
        failure: Exception | None = None
        if messages:
            connection = open_mailer()
            try:
                connection.open()
                for recipient, message in messages:
                    try:
                        count = connection.send_messages([message])
                    except smtplib.SMTPRecipientsRefused as exc:
                        refused[recipient.address] = describe_refusal(exc)
                        continue
                    if count == 0:
                        raise smtplib.SMTPException("the email backend sent nothing")
                    sent.append(recipient.address)
            except Exception as exc:
                failure = exc
            finally:
                # Closing a connection that broke may raise too; what was sent is known.
                with contextlib.suppress(Exception):
                    connection.close()

        report += [f"sent: {address}" for address in sent]
        report += [f"refused: {address} ({reason})" for address, (reason, _) in refused.items()]
        unsent = [
            r.address for r, _ in messages if r.address not in sent and r.address not in refused
        ]
        report += [f"not sent: {address}" for address in unsent]
        record = "\n".join(report)
        detail = {SENT_DETAIL: sent} if sent else {}
        request_headers = {"From": self.from_email or settings.DEFAULT_FROM_EMAIL}
        if failure is None and not refused:
            # No HTTP status: this was not an HTTP request.
            return HttpResult(
                status_code=None,
                response_headers={},
                response_body=record,
                request_headers=request_headers,
                extra=detail,
            )

        problems = []
        if failure is not None:
            problems.append(f"{type(failure).__name__}: {failure}")
        if refused:
            problems.append(
                "refused "
                + ", ".join(f"{address} ({reason})" for address, (reason, _) in refused.items())
            )
        if failure is not None:
            retryable = is_retryable(failure)
        else:
            retryable = any(not permanent for _, permanent in refused.values())
        total = len(sent) + len(already & {r.address.lower() for r in recipients})
        raise DeliveryError(
            f"sent to {total} of {len(recipients)} recipients; {'; '.join(problems)}",
            retryable=retryable,
            response_body=record,
            request_headers=request_headers,
            detail=detail,
        )


# -- Helpers -------------------------------------------------------------------------------------


def user_pk(container: Any, key: str) -> Any:
    """The ``id`` of an actor-shaped value (``{"id", "username"}``) in ``container[key]``."""
    if not isinstance(container, Mapping):
        return None
    value = container.get(key)
    return value.get("id") if isinstance(value, Mapping) else None


def owner_pk(delivery: Delivery) -> Any:
    """The primary key of the owner of the event's object (a page's ``owner``), if it has one
    and still exists."""
    event = delivery.event
    content_type = event.content_type
    model = content_type.model_class() if content_type is not None else None
    object_id = event.object_id
    if model is None or not object_id:
        page = (delivery.payload.get("data") or {}).get("page") or {}
        if not page.get("id"):
            return None
        from wagtail.models import Page

        model, object_id = Page, page["id"]
    try:
        field = model._meta.get_field("owner")
    except FieldDoesNotExist:
        return None
    if not field.is_relation or field.related_model is not get_user_model():
        return None
    return (
        model._default_manager.filter(pk=object_id)
        .values_list(field.attname, flat=True)  # type: ignore[union-attr]
        .first()
    )


#: The admin's edit view of each kind of object an event is about, by the key of ``data``.
EDIT_VIEWS = {
    "page": "wagtailadmin_pages:edit",
    "image": "wagtailimages:edit",
    "document": "wagtaildocs:edit",
}


def admin_edit_url(payload: Mapping[str, Any]) -> str | None:
    """The edit view of the page (or image, or document) in the Wagtail admin, when
    ``WAGTAILADMIN_BASE_URL`` is set and the object was not deleted."""
    data = payload.get("data") or {}
    base = getattr(settings, "WAGTAILADMIN_BASE_URL", None)
    if not base or str(payload.get("type", "")).endswith(".deleted"):
        return None
    for key, view in EDIT_VIEWS.items():
        subject = data.get(key)
        if isinstance(subject, Mapping) and subject.get("id"):
            try:
                return base.rstrip("/") + reverse(view, args=[subject["id"]])
            except NoReverseMatch:
                return None
    return None


def message_id(event_id: str, alias: str, address: str) -> str:
    digest = hashlib.sha256(f"{alias}\n{address.lower()}".encode()).hexdigest()[:16]
    # Looked up when used, as Django does, so that its cached (and patchable) host name serves.
    return f"<{event_id}.{digest}@{getattr(mail_message, 'DNS_NAME')}>"  # noqa: B009


def open_mailer() -> Any:
    """The default email backend: ``MAILERS["default"]`` on Django 6.1 and later,
    ``EMAIL_BACKEND`` before."""
    try:
        from django.core.mail import mailers  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # Django < 6.1
        from django.core.mail import get_connection

        return get_connection(fail_silently=False)
    return mailers.default


def sent_in_earlier_attempts(delivery: Delivery) -> set[str]:
    """The addresses, lowercased, that earlier attempts of ``delivery`` recorded as sent (in
    ``Attempt.detail``)."""
    details = Attempt.objects.filter(delivery=delivery).values_list("detail", flat=True)
    return {
        str(address).strip().lower()
        for detail in details
        if isinstance(detail, dict)
        for address in detail.get(SENT_DETAIL) or ()
    }


def describe_refusal(exc: smtplib.SMTPRecipientsRefused) -> tuple[str, bool]:
    """``(reason, permanent)`` for a refused recipient: 5xx is permanent, 4xx temporary."""
    codes = []
    reasons = []
    for code, response in exc.recipients.values():
        codes.append(code)
        text = response.decode("utf-8", "replace") if isinstance(response, bytes) else response
        reasons.append(f"{code} {text}".strip())
    return "; ".join(reasons), bool(codes) and all(500 <= code < 600 for code in codes)


def is_retryable(exc: Exception) -> bool:
    """Whether another attempt may succeed: yes, unless the server answered with a permanent
    (5xx) refusal of the message or the sender. Lost connections and 4xx answers are temporary;
    so are authentication failures, which usually mean settings about to be fixed."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return not 500 <= exc.smtp_code < 600
    return True
