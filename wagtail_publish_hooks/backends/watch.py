"""One user's notifications about what they watch: the backend of the ``"watch:<user id>"``
deliveries that the fan-out (:mod:`wagtail_publish_hooks.watching`) records.

A delivery may carry many events (a digest: the user's frequency is its merging window). At
delivery time each event is checked again against the user's access: a user who lost access
to a page is not told about it. What is left is sent as one email (Django templates, which a
site may override) or one Slack direct message, as the user chose. A digest left empty is a
success, with a note.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from ..conf import WATCH_PREFIX
from ..exceptions import DeliveryError
from ..http.responses import HttpResult
from ..includes import CAPTURED
from ..slack_bot import is_configured as slack_bot_is_configured
from ..subscribers import preferences_of, target_of, users_with_access
from ..summary import Summary, summarize
from .base import BaseBackend
from .email import (
    SENT_DETAIL,
    admin_edit_url,
    is_retryable,
    message_id,
    open_mailer,
    sent_in_earlier_attempts,
)
from .slack import escape_mrkdwn, mrkdwn_link

if TYPE_CHECKING:
    from ..models import Delivery, Event

SUBJECT_TEMPLATE = "wagtail_publish_hooks/watching/email_subject.txt"
BODY_TEMPLATE = "wagtail_publish_hooks/watching/email_body.txt"
HTML_TEMPLATE = "wagtail_publish_hooks/watching/email_body.html"

#: The alias of the fan-out, under which an event keeps what it captured for watching.
WATCHERS_CAPTURE = "watchers"


def watch_alias(user_id: int) -> str:
    return f"{WATCH_PREFIX}{user_id}"


def captured_for_watching(event: Event) -> Mapping[str, Any]:
    """What the fan-out kept at the moment of ``event`` (the page's path)."""
    captured = (event.included_data or {}).get(CAPTURED) or {}
    value = captured.get(WATCHERS_CAPTURE) if isinstance(captured, Mapping) else None
    return value if isinstance(value, Mapping) else {}


class WatchBackend(BaseBackend):
    """Tells one user (the id in its alias) about the events of a delivery they may still see."""

    option_keys = frozenset()

    def __init__(self, *, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias=alias, options=options)
        try:
            self.user_id: int | None = int(alias.removeprefix(WATCH_PREFIX))
        except ValueError:
            self.user_id = None

    def describe(self) -> str:
        return f"Notifications of user {self.user_id} about what they watch"

    def coalesce_seconds(self) -> float:
        """The user's frequency, as a merging window (the fan-out reads it in bulk)."""
        if self.user_id is None:
            return 0.0
        return preferences_of([self.user_id])[self.user_id].window

    def deliver(self, delivery: Delivery) -> HttpResult:
        user = self._user()
        if user is None:
            return _note("nothing to send: the user no longer exists or is inactive")
        events = delivery.covered_events()
        visible = [
            event
            for event in events
            if user.pk in users_with_access([user.pk], target_of(event, _captured(event)))
        ]
        if not visible:
            return _note(
                f"nothing to send: the user may no longer see what the {len(events)} "
                "event(s) are about"
            )
        items = [_item(event) for event in visible]
        left_out = len(events) - len(visible)
        preferences = preferences_of([user.pk])[user.pk]
        if preferences.channel == "slack" and slack_bot_is_configured():
            return self._send_slack(user, items)
        # Slack chosen while a bot was configured, since removed: email, as the account
        # settings then show it.
        return self._send_email(delivery, user, items, left_out)

    def _user(self) -> Any:
        if self.user_id is None:
            return None
        user = get_user_model()._default_manager.filter(pk=self.user_id).first()
        if user is None or not getattr(user, "is_active", True):
            return None
        return user

    # -- Email ------------------------------------------------------------------------------------

    def context(self, user: Any, items: list[dict[str, Any]], left_out: int) -> dict[str, Any]:
        return {
            "recipient": user,
            "events": items,
            "count": len(items),
            "left_out": left_out,
            "site_name": getattr(settings, "WAGTAIL_SITE_NAME", ""),
        }

    def _send_email(
        self, delivery: Delivery, user: Any, items: list[dict[str, Any]], left_out: int
    ) -> HttpResult:
        address = str(getattr(user, get_user_model().get_email_field_name(), "") or "").strip()
        if not address:
            return _note("nothing sent: the user has no email address")
        if address.lower() in sent_in_earlier_attempts(delivery):
            return _note(f"already sent: {address}")
        from django.core.mail import EmailMultiAlternatives

        try:
            context = self.context(user, items, left_out)
            subject = " ".join(render_to_string(SUBJECT_TEMPLATE, context).split())
            message = EmailMultiAlternatives(
                subject,
                render_to_string(BODY_TEMPLATE, context),
                to=[address],
                headers={
                    "Auto-Submitted": "auto-generated",
                    "X-Auto-Response-Suppress": "All",
                    "Message-ID": message_id(delivery.event.event_id, self.alias, address),
                },
            )
            message.attach_alternative(render_to_string(HTML_TEMPLATE, context), "text/html")
        except Exception as exc:
            raise DeliveryError(
                f"cannot render the message: {type(exc).__name__}: {exc}", retryable=False
            ) from exc
        connection = open_mailer()
        try:
            connection.open()
            if not connection.send_messages([message]):
                raise DeliveryError("the email backend sent nothing", retryable=True)
        except DeliveryError:
            raise
        except Exception as exc:
            raise DeliveryError(
                f"{type(exc).__name__}: {exc}", retryable=is_retryable(exc)
            ) from exc
        finally:
            with contextlib.suppress(Exception):
                connection.close()
        return HttpResult(
            status_code=None,
            response_headers={},
            response_body=f"sent: {address} ({len(items)} events)",
            request_headers={"From": settings.DEFAULT_FROM_EMAIL},
            extra={SENT_DETAIL: [address]},
        )

    # -- Slack ------------------------------------------------------------------------------------

    def _send_slack(self, user: Any, items: list[dict[str, Any]]) -> HttpResult:
        from ..slack_bot import send_direct_message

        address = str(getattr(user, get_user_model().get_email_field_name(), "") or "").strip()
        if not address:
            return _note("nothing sent: the user has no email address to find them in Slack by")
        text = "\n".join(f"{item['summary'].sentence}." for item in items)
        blocks = [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _slack_line(item)[:3000]},
            }
            for item in items[:50]
        ]
        send_direct_message(address, text, blocks)
        return _note(f"sent to Slack: {address} ({len(items)} events)")


def _captured(event: Event) -> Mapping[str, Any]:
    return captured_for_watching(event)


def _item(event: Event) -> dict[str, Any]:
    """What the templates show of one event."""
    payload = event.payload or {}
    summary = summarize(payload)
    return {
        "summary": summary,
        "event_type": event.event_type,
        "timestamp": event.created_at,
        "changes": summary.changes,
        "admin_url": admin_edit_url(payload) or _snippet_edit_url(event, summary),
        "data": payload.get("data") or {},
    }


def _snippet_edit_url(event: Event, summary: Summary) -> str | None:
    base = getattr(settings, "WAGTAILADMIN_BASE_URL", None)
    content_type = event.content_type
    model = content_type.model_class() if content_type is not None else None
    viewset = getattr(model, "snippet_viewset", None)
    if not base or viewset is None or summary.event_type.endswith(".deleted"):
        return None
    from django.contrib.admin.utils import quote

    try:
        return base.rstrip("/") + reverse(
            viewset.get_url_name("edit"), args=[quote(event.object_id)]
        )
    except NoReverseMatch:
        return None


def _slack_line(item: dict[str, Any]) -> str:
    summary: Summary = item["summary"]
    line = escape_mrkdwn(f"{summary.sentence}.")
    if summary.changes:
        line += escape_mrkdwn(f" {summary.changes}.")
    if item["admin_url"]:
        line += " " + mrkdwn_link(item["admin_url"], "Edit")
    return line


def _note(text: str) -> HttpResult:
    """A successful attempt that sent nothing, or sent without an HTTP exchange to record."""
    return HttpResult(status_code=None, response_headers={}, response_body=text, request_headers={})
