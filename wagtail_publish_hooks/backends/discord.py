"""Discord: a message with an embed, through a channel webhook."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core import checks

from ..conf import MAX_RETRY_AFTER_SECONDS
from ..encoding import encode_json
from ..exceptions import DeliveryError, DestinationGone
from ..http.responses import HttpResult
from ..summary import Summary, summarize
from ..validation import ID_PREFIX, check_url_option, error
from .http import COMMON_OPTION_KEYS, HttpBackend, gone

if TYPE_CHECKING:
    from ..models import Delivery

#: Discord's limits, in characters.
MAX_CONTENT = 2000
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
#: The sum of an embed's title, description, field names and values, footer and author.
MAX_EMBED_TOTAL = 6000
MAX_USERNAME = 80
#: Substrings Discord refuses in a webhook's name (compared case-insensitively).
FORBIDDEN_USERNAME_PARTS = ("@", "#", ":", "```", "discord", "clyde")
FORBIDDEN_USERNAMES = frozenset({"everyone", "here"})

FOOTER = "wagtail-publish-hooks"

#: Embed colours by the summary's tone.
COLOURS = {
    "good": 0x57F287,  # green
    "warning": 0xFAA61A,  # amber
    "danger": 0xED4245,  # red
    "neutral": 0x5865F2,  # blurple
}

#: Discord's error code for a webhook that no longer exists.
UNKNOWN_WEBHOOK = 10015

#: Characters Discord's Markdown reads as formatting, mentions, emoji, links or lists.
_MARKDOWN = re.compile(r"([\\*_~`|<>\[\]()#:@-])")


def escape_markdown(text: str) -> str:
    """``text`` shown as it is in Discord. Mentions are also kept from pinging by
    ``allowed_mentions``; escaping keeps them from even rendering as mentions."""
    return _MARKDOWN.sub(r"\\\1", text)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending with ``…`` when cut.

    An escaped text is never cut between a backslash and the character it escapes.
    """
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    if (len(cut) - len(cut.rstrip("\\"))) % 2:
        cut = cut[:-1]
    return cut + "…"


def timestamp(value: Any) -> str | None:
    """The payload's timestamp in ISO 8601 as Discord reads it, or ``None`` if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return None


def embed_length(embed: Mapping[str, Any]) -> int:
    """The characters Discord counts towards ``MAX_EMBED_TOTAL``."""
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += len(embed.get("footer", {}).get("text", ""))
    total += len(embed.get("author", {}).get("name", ""))
    for field in embed.get("fields", ()):
        total += len(field["name"]) + len(field["value"])
    return total


def build_embed(summary: Summary, payload: Mapping[str, Any]) -> dict[str, Any]:
    embed: dict[str, Any] = {
        "title": truncate(escape_markdown(summary.title), MAX_TITLE),
        "color": COLOURS.get(summary.tone, COLOURS["neutral"]),
    }
    if summary.url and summary.url.startswith(("http://", "https://")):
        embed["url"] = summary.url
    if summary.previous_url:
        # Left unescaped so that Discord links it.
        embed["description"] = truncate(f"Moved from {summary.previous_url}", MAX_DESCRIPTION)
    facts = [
        ("Event", summary.label),
        ("Type", summary.object_type),
        ("By", summary.actor or ("Schedule" if summary.scheduled else None)),
        ("Site", summary.site),
        ("Changes", summary.changes),
    ]
    embed["fields"] = [
        {
            "name": truncate(name, MAX_FIELD_NAME),
            "value": truncate(escape_markdown(value), MAX_FIELD_VALUE),
            "inline": True,
        }
        for name, value in facts
        if value
    ][:MAX_FIELDS]
    when = timestamp(payload.get("timestamp"))
    if when:
        embed["timestamp"] = when
    embed["footer"] = {"text": FOOTER}
    excess = embed_length(embed) - MAX_EMBED_TOTAL
    if excess > 0 and "description" in embed:
        keep = len(embed["description"]) - excess
        if keep > 1:
            embed["description"] = truncate(embed["description"], keep)
        else:
            del embed["description"]
    return embed


def build_message(
    payload: Mapping[str, Any], *, username: str | None = None, avatar_url: str | None = None
) -> dict[str, Any]:
    """The request body: the sentence as ``content``, the facts as one embed, no pings."""
    summary = summarize(payload)
    message: dict[str, Any] = {
        "content": truncate(escape_markdown(summary.sentence), MAX_CONTENT),
        "embeds": [build_embed(summary, payload)],
        "allowed_mentions": {"parse": []},
    }
    if username:
        message["username"] = username
    if avatar_url:
        message["avatar_url"] = avatar_url
    return message


def _response_json(exc: DeliveryError) -> dict[str, Any]:
    try:
        data = json.loads(exc.response_body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def explain(exc: DeliveryError) -> DeliveryError:
    """Apply Discord's own rules to an HTTP error: its ``retry_after`` in the JSON body of a
    429 wins over headers, and a deleted webhook or a wrong token disables the destination."""
    status = exc.status_code
    if status is None or isinstance(exc, DestinationGone):
        return exc
    data = _response_json(exc)
    detail = " ".join(str(data.get("message") or "").split())[:300]
    code = data.get("code")
    if status == 429:
        retry_after = data.get("retry_after")
        if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
            exc.retry_after = min(max(float(retry_after), 0.0), float(MAX_RETRY_AFTER_SECONDS))
        scope = "global rate limit" if data.get("global") else "rate limited"
        exc.message = f"HTTP 429: {scope}"
        if exc.retry_after is not None:
            exc.message += f", retry after {exc.retry_after:g} s"
    elif status == 401 or (status == 404 and code == UNKNOWN_WEBHOOK):
        reason = "the webhook token is invalid" if status == 401 else "the webhook was deleted"
        return gone(
            exc,
            f"HTTP {status}: {reason}{f' ({detail})' if detail else ''}; "
            "the destination is disabled",
        )
    elif detail and 400 <= status < 500:
        exc.message = f"HTTP {status}: {detail}" + (f" (code {code})" if code else "")
    exc.args = (exc.message,)
    return exc


def check_username(alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """``USERNAME`` as Discord accepts a webhook's name (error ``E027``)."""
    value = options.get("USERNAME")
    if value is None:
        return []
    keys = ("OPTIONS", "USERNAME")
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= MAX_USERNAME:
        return [
            error(
                27, f"must be a string of 1 to {MAX_USERNAME} characters.", alias=alias, keys=keys
            )
        ]
    lowered = value.strip().lower()
    refused = [part for part in FORBIDDEN_USERNAME_PARTS if part in lowered]
    if refused or lowered in FORBIDDEN_USERNAMES:
        why = f"contains {', '.join(map(repr, refused))}" if refused else f"is {lowered!r}"
        return [
            error(
                27,
                f"Discord refuses a webhook name that {why}; every message would fail "
                "with HTTP 400.",
                alias=alias,
                keys=keys,
                hint="Webhook names may not contain '@', '#', ':', '```', 'discord' or "
                "'clyde', nor be 'everyone' or 'here'.",
            )
        ]
    return []


class DiscordBackend(HttpBackend):
    """Posts a message with an embed to a Discord channel webhook.

    ``OPTIONS``: ``URL`` (required: the webhook URL, which holds its token), ``USERNAME`` and
    ``AVATAR_URL`` (override the webhook's name and avatar), ``TIMEOUT`` (seconds to wait for the
    response, default 15) and ``CONNECT_TIMEOUT`` (default 5).
    """

    display_name = "Discord"
    describe_as = "Discord webhook at"

    option_keys = COMMON_OPTION_KEYS | {"USERNAME", "AVATAR_URL"}
    # The URL embeds the token that lets anyone post.
    secret_option_keys = frozenset({"URL"})

    def __init__(self, *, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias=alias, options=options)
        self.username: str | None = options.get("USERNAME") or None
        self.avatar_url: str | None = options.get("AVATAR_URL") or None

    @classmethod
    def check_service_options(
        cls, alias: str, options: Mapping[str, Any]
    ) -> list[checks.CheckMessage]:
        messages = [
            message
            for message in check_url_option(alias, options, "AVATAR_URL", required=False)
            # Discord fetches the avatar itself: plain http:// exposes nothing of ours.
            if message.id != f"{ID_PREFIX}.W003"
        ]
        messages += check_username(alias, options)
        return messages

    def deliver(self, delivery: Delivery) -> HttpResult:
        message = build_message(
            delivery.payload, username=self.username, avatar_url=self.avatar_url
        )
        return self.send(encode_json(message), {"Content-Type": "application/json"})

    def translate_error(self, exc: DeliveryError) -> DeliveryError:
        return explain(exc)
