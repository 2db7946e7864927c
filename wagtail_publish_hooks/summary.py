"""A human-readable summary of an event, shared by the backends that write to people.

Chat and email backends turn the same facts into their own formats: what happened, to what,
where it lives, who did it. Building those facts once keeps the messages consistent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: How each event type reads in a sentence: "<title> was <verb>".
VERBS = {
    "page.published": "published",
    "page.unpublished": "unpublished",
    "page.moved": "moved",
    "page.deleted": "deleted",
    "snippet.published": "published",
    "snippet.unpublished": "unpublished",
    "workflow.submitted": "submitted for moderation",
    "workflow.approved": "approved",
    "workflow.rejected": "rejected",
    "publish_hooks.test": "tested",
}

#: A short label for each event type, for headings and colours.
LABELS = {
    "page.published": "Page published",
    "page.unpublished": "Page unpublished",
    "page.moved": "Page moved",
    "page.deleted": "Page deleted",
    "snippet.published": "Snippet published",
    "snippet.unpublished": "Snippet unpublished",
    "workflow.submitted": "Submitted for moderation",
    "workflow.approved": "Workflow approved",
    "workflow.rejected": "Workflow rejected",
    "publish_hooks.test": "Test event",
}

#: Whether an event reads as good news, bad news or neither (chat colours).
TONES = {
    "page.published": "good",
    "snippet.published": "good",
    "workflow.approved": "good",
    "page.unpublished": "warning",
    "snippet.unpublished": "warning",
    "page.moved": "neutral",
    "workflow.submitted": "neutral",
    "page.deleted": "danger",
    "workflow.rejected": "danger",
    "publish_hooks.test": "neutral",
}


@dataclass(frozen=True)
class Summary:
    """The facts of one event, as plain strings, ready to format."""

    event_id: str
    event_type: str
    label: str
    verb: str
    tone: str
    title: str
    object_type: str | None
    url: str | None
    actor: str | None
    site: str | None
    scheduled: bool
    previous_url: str | None = None

    @property
    def sentence(self) -> str:
        """``"Hello world" was published by admin`` (plain text, no markup)."""
        text = f"“{self.title}” was {self.verb}"
        if self.actor:
            text += f" by {self.actor}"
        elif self.scheduled:
            text += " on schedule"
        return text


def summarize(payload: Mapping[str, Any]) -> Summary:
    """The facts of a webhook body (``{"id", "type", "timestamp", "data"}``).

    Custom events carry whatever data their sender gave, so every fact is taken only if it has
    the expected shape; a message is written whatever the data.
    """
    event_type = str(payload.get("type", ""))
    data = _mapping(payload.get("data"))
    subject = _mapping(data.get("page") or data.get("snippet") or data.get("object"))
    title = subject.get("title") or subject.get("repr") or data.get("message") or event_type
    url = _text(subject.get("url"))
    urls = subject.get("urls")
    if not url and isinstance(urls, list | tuple) and urls:
        url = _text(urls[0])
    actor = _mapping(data.get("actor"))
    before = _mapping(data.get("moved")).get("urls_before")
    previous = _text(before[0]) if isinstance(before, list | tuple) and before else None
    return Summary(
        event_id=str(payload.get("id", "")),
        event_type=event_type,
        label=LABELS.get(event_type, event_type),
        verb=VERBS.get(event_type, event_type.rsplit(".", 1)[-1].replace("_", " ")),
        tone=TONES.get(event_type, "neutral"),
        title=str(title),
        object_type=_text(subject.get("type")),
        url=url,
        actor=_text(actor.get("username")),
        site=_site(url),
        scheduled=bool(data.get("scheduled")),
        previous_url=previous,
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _site(url: str | None) -> str | None:
    if not url:
        return None
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).hostname
    except ValueError:  # such as an unclosed "[" in an IPv6 host
        return None
