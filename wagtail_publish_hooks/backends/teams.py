"""Microsoft Teams: an Adaptive Card posted to a Teams Workflows webhook."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..encoding import encode_json
from ..exceptions import DeliveryError, DestinationGone
from ..http.responses import HttpResult
from ..summary import Summary, summarize
from .http import HttpBackend, rephrased

if TYPE_CHECKING:
    from ..models import Delivery

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
#: Teams renders cards up to 1.5; 1.4 is what every Teams client (mobile included) renders.
CARD_VERSION = "1.4"

#: Teams refuses messages over about 28 KB; keep clear of it.
MAX_MESSAGE_BYTES = 24 * 1024
#: Starting limits, in characters, for the page title and for each fact; halved until the
#: message fits ``MAX_MESSAGE_BYTES``.
TITLE_CHARS = 400
FACT_CHARS = 200
#: An ``Action.OpenUrl`` with a longer URL is left out rather than cut (a cut URL is wrong).
MAX_URL_CHARS = 2048

#: Characters that Teams' Markdown (in TextBlock and FactSet) reads as emphasis, code or links.
_MARKDOWN_INLINE = re.compile(r"([\\`*_~\[\]])")
#: What makes a list (``- ``, ``+ ``, ``1. ``), a heading or a quote at the start of a text.
_MARKDOWN_START = re.compile(r"^(?:([-+#>])|(\d+)([.)]))")


def _escape_start(match: re.Match[str]) -> str:
    if match.group(1):
        return "\\" + match.group(1)
    return f"{match.group(2)}\\{match.group(3)}"


def escape_markdown(text: str) -> str:
    """``text`` shown as it is: Markdown characters escaped, line breaks turned into spaces."""
    text = _MARKDOWN_INLINE.sub(r"\\\1", " ".join(text.split()))
    return _MARKDOWN_START.sub(_escape_start, text, count=1)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending with ``…`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def encode(message: Mapping[str, Any]) -> bytes:
    return encode_json(message)


def build_card(summary: Summary, *, title_chars: int, fact_chars: int) -> dict[str, Any]:
    """The Adaptive Card for one event."""
    # Cut before escaping, so that the title reads the same in the heading and the sentence.
    short = dataclasses.replace(summary, title=truncate(summary.title, title_chars))
    if short.actor:
        short = dataclasses.replace(short, actor=truncate(short.actor, fact_chars))
    title = escape_markdown(short.title)
    sentence = escape_markdown(short.sentence)
    facts = [
        ("Event", summary.label),
        ("Type", summary.object_type),
        ("By", summary.actor or ("Schedule" if summary.scheduled else None)),
        ("Site", summary.site),
        ("Changes", summary.changes),
    ]
    fact_values = [
        {"title": name, "value": escape_markdown(truncate(value, fact_chars))}
        for name, value in facts
        if value
    ]
    if summary.previous_url and len(summary.previous_url) <= MAX_URL_CHARS:
        # A URL is neither escaped nor cut, so that Teams links it and the link works.
        fact_values.append({"title": "Moved from", "value": summary.previous_url})
    card: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": [
            {
                "type": "TextBlock",
                "text": title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "TextBlock", "text": sentence, "wrap": True, "spacing": "Small"},
            {
                "type": "FactSet",
                "facts": fact_values,
            },
        ],
    }
    if summary.url and len(summary.url) <= MAX_URL_CHARS:
        noun = summary.event_type.split(".", 1)[0]
        title = f"View {noun}" if noun in ("image", "document") else "View page"
        card["actions"] = [{"type": "Action.OpenUrl", "title": title, "url": summary.url}]
    return card


def build_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The request body: a ``message`` with the card as its only attachment, within size."""
    summary = summarize(payload)
    title_chars, fact_chars = TITLE_CHARS, FACT_CHARS
    while True:
        message = {
            "type": "message",
            "attachments": [
                {
                    "contentType": CARD_CONTENT_TYPE,
                    "contentUrl": None,
                    "content": build_card(summary, title_chars=title_chars, fact_chars=fact_chars),
                }
            ],
        }
        if len(encode(message)) <= MAX_MESSAGE_BYTES or title_chars <= 16:
            return message
        title_chars, fact_chars = title_chars // 2, fact_chars // 2


def explain(exc: DeliveryError) -> DeliveryError:
    """Add what Workflows said (or what its status means) to an HTTP error."""
    status = exc.status_code
    if status is None or status >= 500 or isinstance(exc, DestinationGone):
        return exc
    detail = ""
    try:
        error = json.loads(exc.response_body).get("error") or {}
        detail = ": ".join(str(error[key]) for key in ("code", "message") if error.get(key))
    except (ValueError, AttributeError, TypeError):
        pass
    if status == 404 and not detail:
        detail = "no workflow at this URL (deleted, or its trigger changed)"
    if detail:
        return rephrased(exc, f"HTTP {status}: {truncate(' '.join(detail.split()), 300)}")
    return exc


class TeamsBackend(HttpBackend):
    """Posts an Adaptive Card to a Teams channel or chat through a Workflows webhook.

    ``OPTIONS``: ``URL`` (required: the URL of the workflow's "When a Teams webhook request is
    received" trigger, a secret), ``TIMEOUT`` (seconds to wait for the response, default 15) and
    ``CONNECT_TIMEOUT`` (default 5).
    """

    display_name = "Microsoft Teams"
    describe_as = "Teams workflow at"

    # The URL embeds the token that lets anyone post.
    secret_option_keys = frozenset({"URL"})

    def deliver(self, delivery: Delivery) -> HttpResult:
        body = encode(build_message(delivery.payload))
        return self.send(body, {"Content-Type": "application/json"})

    def translate_error(self, exc: DeliveryError) -> DeliveryError:
        return explain(exc)
