"""Slack incoming webhooks: a Block Kit message with a ``text`` fallback.

The webhook URL is the only credential, so it never leaves this module except as the target
of a request: errors, logs and :meth:`SlackBackend.describe` show its scheme and host only.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.core import checks
from django.template import Context, TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe

from ..encoding import encode_json
from ..exceptions import DeliveryError
from ..http.responses import HttpResult
from ..limits import option_number
from ..redaction import describe_url
from ..summary import Summary, summarize
from ..validation import check_positive_number, error, warning
from .http import COMMON_OPTION_KEYS, HttpBackend, gone, rephrased

if TYPE_CHECKING:
    from ..models import Delivery

DEFAULT_TEMPLATE = "wagtail_publish_hooks/slack/message.txt"
DEFAULT_TIMEOUT = 10.0
#: Slack allows about one message per second per incoming webhook, with short bursts.
DEFAULT_MIN_INTERVAL = 1.0

#: Slack's limits, in characters.
HEADER_TEXT_LIMIT = 150
SECTION_TEXT_LIMIT = 3000
CONTEXT_TEXT_LIMIT = 3000
#: Slack truncates a message's ``text`` beyond 40,000 characters; stay well clear of it.
FALLBACK_TEXT_LIMIT = 39_000

ELLIPSIS = "…"

#: Slack's error codes that mean the webhook itself is gone for good: the destination is
#: disabled. Slack sends ``channel_is_archived`` and ``team_disabled`` with a 410, which
#: disables on its own.
GONE_ERRORS = frozenset({"no_service", "no_team", "invalid_token", "channel_is_archived"})

#: What Slack's error codes mean, for the recorded error.
ERROR_EXPLANATIONS = {
    "invalid_payload": "Slack could not read the message",
    "invalid_blocks": "Slack rejected the message's blocks",
    "invalid_blocks_format": "Slack rejected the message's blocks",
    "no_text": "the message has no text",
    "too_many_attachments": "the message has too many attachments",
    "user_not_found": "the user the webhook posts to does not exist",
    "channel_not_found": "the webhook's channel does not exist",
    "channel_is_archived": "the webhook's channel is archived",
    "action_prohibited": "an admin has restricted posting to the channel",
    "posting_to_general_channel_denied": "only admins may post to the channel",
    "no_service": "the webhook was removed or disabled",
    "no_service_id": "the webhook URL is incomplete",
    "no_team": "the Slack workspace does not exist",
    "team_disabled": "the Slack workspace is disabled",
    "invalid_token": "the webhook's token was revoked",
    "no_active_hooks": "the webhook is not active",
    "rate_limited": "too many messages",
}

_ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]{1,60}$")

# Slack's Workflow Builder webhooks take their own variables, not Block Kit messages.
_WORKFLOW_PATH = re.compile(r"^/(triggers|workflows)/")


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters that are markup in Slack's mrkdwn (and nothing else)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn_link(url: str | None, label: str) -> str:
    """``<url|label>``, or just the label without a URL; both parts escaped."""
    label = escape_mrkdwn(label)
    if not url:
        return label
    # ``|`` ends the URL part of a link and cannot be escaped: percent-encode it.
    return f"<{escape_mrkdwn(url).replace('|', '%7C')}|{label.replace('|', '¦')}>"


def truncate_mrkdwn(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, never inside a ``<…>`` link or ``&…;``."""
    if len(text) <= limit:
        return text
    cut = limit - len(ELLIPSIS)
    # A ``<`` after the last ``>`` before the cut opens a link the cut would split.
    opening = text.rfind("<", 0, cut)
    if opening != -1 and text.rfind(">", 0, cut) < opening:
        cut = opening
    ampersand = text.rfind("&", max(0, cut - 8), cut)
    if ampersand != -1 and ";" not in text[ampersand:cut]:
        cut = ampersand
    return text[:cut].rstrip() + ELLIPSIS


def truncate_plain(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


class MinimumInterval:
    """Spaces out requests to one URL, across the threads of a worker process.

    Each caller reserves the next free slot under the lock, then sleeps outside it until its
    slot comes, so callers to one URL go out ``interval`` apart and other URLs never wait.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = {}
        self._held_until: dict[str, float] = {}

    def wait(self, key: str, interval: float) -> float:
        """Block until a request to ``key`` may go out. Returns the seconds slept."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(key, now))
            self._next_slot[key] = slot + interval
        delay = slot - now
        if delay > 0:
            time.sleep(delay)
        return max(delay, 0.0)

    def hold_off(self, key: str, seconds: float) -> None:
        """Slack asked to wait (429 ``Retry-After``): send nothing more to ``key`` until then."""
        with self._lock:
            until = time.monotonic() + seconds
            self._held_until[key] = max(self._held_until.get(key, 0.0), until)

    def held_for(self, key: str) -> float:
        """Seconds left of a hold-off on ``key`` (0 if none)."""
        with self._lock:
            until = self._held_until.get(key, 0.0)
            left = until - time.monotonic()
            if left <= 0:
                self._held_until.pop(key, None)
                return 0.0
            return left

    def reset(self) -> None:
        with self._lock:
            self._next_slot.clear()
            self._held_until.clear()


#: Shared by every Slack destination of the process: two aliases may post to one webhook.
pacer = MinimumInterval()


class SlackBackend(HttpBackend):
    """Posts a Block Kit message to a Slack incoming webhook.

    ``OPTIONS``: ``URL`` (required, the webhook URL: a secret), ``TEMPLATE`` (the Django
    template of the message's mrkdwn text), ``TIMEOUT`` (default 10), ``CONNECT_TIMEOUT``
    (default 5) and ``MIN_INTERVAL`` (seconds between two messages to one webhook, default 1).
    """

    display_name = "Slack"
    describe_as = "Slack"
    default_timeout = DEFAULT_TIMEOUT

    option_keys = COMMON_OPTION_KEYS | {"TEMPLATE", "MIN_INTERVAL"}
    # The URL embeds the token that lets anyone post.
    secret_option_keys = frozenset({"URL"})

    def __init__(self, *, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias=alias, options=options)
        self.template_name: str = options.get("TEMPLATE") or DEFAULT_TEMPLATE
        self.min_interval = float(option_number(options, "MIN_INTERVAL", DEFAULT_MIN_INTERVAL))

    @classmethod
    def check_url(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        messages = super().check_url(alias, options)
        url = options.get("URL")
        if isinstance(url, str) and not messages:
            try:
                parts = urlsplit(url)
            except ValueError:
                parts = None
            if parts is not None and _WORKFLOW_PATH.match(parts.path):
                messages.append(
                    warning(
                        6,
                        "is a Slack Workflow Builder webhook, which takes its own variables "
                        "rather than Block Kit messages.",
                        alias=alias,
                        keys=("OPTIONS", "URL"),
                        hint="Use an incoming webhook URL (https://hooks.slack.com/services/…) "
                        "of a Slack app.",
                    )
                )
        return messages

    @classmethod
    def check_options(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        messages = super().check_options(alias, options)
        messages += check_positive_number(alias, options, "MIN_INTERVAL", allow_zero=True)
        messages += _check_template(alias, options)
        return messages

    # -- The message ---------------------------------------------------------------------------

    def template_context(self, summary: Summary, payload: Mapping[str, Any]) -> dict[str, Any]:
        """What the template sees: each fact already escaped for mrkdwn (``payload`` is raw)."""

        def safe(value: str | None) -> SafeString | None:
            return None if value is None else mark_safe(escape_mrkdwn(value))  # noqa: S308

        return {
            "title": safe(summary.title),
            "link": mark_safe(mrkdwn_link(summary.url, summary.title)),  # noqa: S308
            "url": safe(summary.url),
            "previous_url": safe(summary.previous_url),
            "changes": safe(summary.changes),
            "label": safe(summary.label),
            "verb": safe(summary.verb),
            "tone": summary.tone,
            "event_type": safe(summary.event_type),
            "object_type": safe(summary.object_type),
            "actor": safe(summary.actor),
            "site": safe(summary.site),
            "scheduled": summary.scheduled,
            "event_id": summary.event_id,
            "payload": payload,
        }

    def render_text(self, summary: Summary, payload: Mapping[str, Any]) -> str:
        """The message's mrkdwn text, from ``TEMPLATE``, with no HTML escaping."""
        template = get_template(self.template_name)
        context = self.template_context(summary, payload)
        engine_template = getattr(template, "template", None)
        if engine_template is not None and hasattr(engine_template, "engine"):
            # A Django template: render with autoescape off, since HTML entities mean nothing
            # to Slack and the values are escaped for mrkdwn already.
            text = engine_template.render(Context(context, autoescape=False))
        else:
            text = template.render(context)
        # Templates leave blank lines behind their tags; Slack would show them.
        return re.sub(r"\n{3,}", "\n\n", str(text)).strip()

    def build_message(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON body: header, section (the template's text) and context blocks."""
        summary = summarize(payload)
        try:
            text = self.render_text(summary, payload) or escape_mrkdwn(summary.sentence)
        except (TemplateDoesNotExist, TemplateSyntaxError) as exc:
            # Another attempt renders the same template: fail now (system check E026).
            raise DeliveryError(
                f"Slack template {self.template_name!r} cannot be used: {type(exc).__name__}",
                retryable=False,
            ) from None
        facts = [f"*Event:* {escape_mrkdwn(summary.label)}"]
        if summary.object_type:
            facts.append(f"*Type:* `{escape_mrkdwn(summary.object_type)}`")
        if summary.actor:
            facts.append(f"*By:* {escape_mrkdwn(summary.actor)}")
        elif summary.scheduled:
            facts.append("*By:* schedule")
        if summary.site:
            facts.append(f"*Site:* {escape_mrkdwn(summary.site)}")
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": truncate_plain(summary.label, HEADER_TEXT_LIMIT),
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate_mrkdwn(text, SECTION_TEXT_LIMIT)},
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": truncate_mrkdwn(fact, CONTEXT_TEXT_LIMIT)}
                    for fact in facts
                ],
            },
        ]
        return {"text": truncate_mrkdwn(text, FALLBACK_TEXT_LIMIT), "blocks": blocks}

    # -- Sending -------------------------------------------------------------------------------

    def deliver(self, delivery: Delivery) -> HttpResult:
        body = encode_json(self.build_message(delivery.payload))
        held = pacer.held_for(self.url)
        if held > 0:
            raise DeliveryError(
                f"Slack asked to wait before the next message to {describe_url(self.url)} "
                f"(rate limited); not sent",
                retryable=True,
                retry_after=held,
            )
        pacer.wait(self.url, self.min_interval)
        return self.send(body, {"Content-Type": "application/json; charset=utf-8"})

    def translate_error(self, exc: DeliveryError) -> DeliveryError:
        """Name Slack's error code in the message, and disable the destination if it is gone."""
        status = exc.status_code
        if status is None:
            return exc
        code = exc.response_body.strip()
        if not _ERROR_CODE.match(code):
            code = ""
        if status == 429 and exc.retry_after:
            pacer.hold_off(self.url, exc.retry_after)
        message = f"Slack answered HTTP {status}"
        if code:
            message += f" {code}"
            if code in ERROR_EXPLANATIONS:
                message += f": {ERROR_EXPLANATIONS[code]}"
        if status == 429 and exc.retry_after:
            message += f"; retrying after {exc.retry_after:g} s"
        if status == 410 or code in GONE_ERRORS:
            return gone(exc, message + "; the destination is disabled")
        return rephrased(exc, message)


def _check_template(alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
    if "TEMPLATE" not in options:
        return []
    keys = ("OPTIONS", "TEMPLATE")
    name = options["TEMPLATE"]
    if not isinstance(name, str) or not name:
        return [error(26, "must be a template name.", alias=alias, keys=keys)]
    try:
        get_template(name)
    except TemplateDoesNotExist:
        return [
            error(
                26,
                f"template {name!r} does not exist.",
                alias=alias,
                keys=keys,
                hint="Put it in a templates/ directory of an installed app or in TEMPLATES' DIRS.",
            )
        ]
    except TemplateSyntaxError as exc:
        return [error(26, f"template {name!r} has a syntax error: {exc}", alias=alias, keys=keys)]
    return []
