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
    "image.changed": "changed",
    "image.deleted": "deleted",
    "document.changed": "changed",
    "document.deleted": "deleted",
    "workflow.submitted": "submitted for moderation",
    "workflow.approved": "approved",
    "workflow.rejected": "rejected",
    "publish_hooks.test": "tested",
    "publish_hooks.delivery_failed": "failing",
    "publish_hooks.destination_disabled": "disabled",
    "publish_hooks.capture_failed": "not captured",
}

#: A short label for each event type, for headings and colours.
LABELS = {
    "page.published": "Page published",
    "page.unpublished": "Page unpublished",
    "page.moved": "Page moved",
    "page.deleted": "Page deleted",
    "snippet.published": "Snippet published",
    "snippet.unpublished": "Snippet unpublished",
    "image.changed": "Image changed",
    "image.deleted": "Image deleted",
    "document.changed": "Document changed",
    "document.deleted": "Document deleted",
    "workflow.submitted": "Submitted for moderation",
    "workflow.approved": "Workflow approved",
    "workflow.rejected": "Workflow rejected",
    "publish_hooks.test": "Test event",
    "publish_hooks.delivery_failed": "Deliveries failed",
    "publish_hooks.destination_disabled": "Destination disabled",
    "publish_hooks.capture_failed": "Capture failed",
}

#: Whether an event reads as good news, bad news or neither (chat colours).
TONES = {
    "page.published": "good",
    "snippet.published": "good",
    "workflow.approved": "good",
    "page.unpublished": "warning",
    "snippet.unpublished": "warning",
    "page.moved": "neutral",
    "image.changed": "neutral",
    "document.changed": "neutral",
    "image.deleted": "danger",
    "document.deleted": "danger",
    "workflow.submitted": "neutral",
    "page.deleted": "danger",
    "workflow.rejected": "danger",
    "publish_hooks.test": "neutral",
    "publish_hooks.delivery_failed": "danger",
    "publish_hooks.destination_disabled": "danger",
    "publish_hooks.capture_failed": "danger",
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
    #: What the publish changed, as a short sentence without values (:func:`describe_changes`).
    changes: str | None = None

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
    verb = VERBS.get(event_type, event_type.rsplit(".", 1)[-1].replace("_", " "))
    if event_type in OPERATIONAL_VERBS:
        title, verb, url = _operational(event_type, data, title, verb, url)
    media = _mapping(data.get("image") or data.get("document"))
    if media and not subject:
        subject = media
        title, url, verb = _media(event_type, data, media, verb)
    return Summary(
        event_id=str(payload.get("id", "")),
        event_type=event_type,
        label=LABELS.get(event_type, event_type),
        verb=verb,
        tone=TONES.get(event_type, "neutral"),
        title=str(title),
        object_type=_text(subject.get("type")),
        url=url,
        actor=_text(actor.get("username")),
        site=_site(url),
        scheduled=bool(data.get("scheduled")),
        previous_url=previous,
        changes=describe_changes(data) if event_type in CHANGE_EVENT_TYPES else None,
    )


#: The event types whose data says what changed (``first_publish`` and ``changes``).
CHANGE_EVENT_TYPES = frozenset({"page.published", "snippet.published"})

#: How many changed fields a summary names before it counts the rest.
NAMED_CHANGES = 3


def describe_changes(data: Mapping[str, Any]) -> str | None:
    """What a publish changed, in words, from ``data["first_publish"]`` and ``data["changes"]``:
    ``"First published"``, ``"Title and body changed"``, ``"Title, intro, body and 2 other fields
    changed"``, ``"Nothing changed"``; ``None`` when it is not known.

    Only the fields' labels are used, never their values, which could be long (and each label is
    shortened): the sentence stays short whatever was edited.
    """
    if data.get("first_publish") is True:
        return "First published"
    changes = data.get("changes")
    if not isinstance(changes, list | tuple):
        return None
    labels: list[str] = []
    for change in changes:
        change = _mapping(change)
        label = _text(change.get("label")) or _text(change.get("field"))
        if label and label not in labels:
            labels.append(_shorten(label, 40))
    if not labels:
        return "Nothing changed"
    named = labels
    if len(labels) > NAMED_CHANGES + 1:  # "and 1 other field" would be no shorter
        named = [*labels[:NAMED_CHANGES], f"{len(labels) - NAMED_CHANGES} other fields"]
    text = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    return f"{text[:1].upper()}{text[1:]} changed"


#: The operational events (``operational.py``), which are about a destination, not an object.
OPERATIONAL_VERBS = frozenset(
    {
        "publish_hooks.delivery_failed",
        "publish_hooks.destination_disabled",
        "publish_hooks.capture_failed",
    }
)


def _operational(
    event_type: str, data: Mapping[str, Any], title: Any, verb: str, url: str | None
) -> tuple[Any, str, str | None]:
    """Title, verb and link of an operational event: ``“consumer” was failing: 3 deliveries
    failed after their last attempt (last: HTTP 500 …)``."""
    url = _text(data.get("admin_url")) or url
    if url and not url.startswith(("http://", "https://")):
        url = None
    destination = _text(data.get("destination"))
    if event_type == "publish_hooks.delivery_failed" and destination:
        count = data.get("count")
        count = count if isinstance(count, int) and not isinstance(count, bool) else 1
        last = _mapping(data.get("last_failure"))
        what = "1 delivery" if count == 1 else f"{count} deliveries"
        verb = f"failing: {what} failed after the last attempt"
        error = _text(last.get("error"))
        if error:
            verb += f" (last: {_shorten(error)})"
        return destination, verb, url
    if event_type == "publish_hooks.destination_disabled" and destination:
        reason = _text(data.get("reason"))
        return destination, f"disabled: {_shorten(reason)}" if reason else verb, url
    failure = _mapping(data.get("capture_failure"))
    if failure:
        # “page.published of blog.BlogPage 12” was not captured (OperationalError)
        title = _text(failure.get("event_type")) or "An event"
        subject = _mapping(failure.get("object"))
        if _text(subject.get("type")):
            title += f" of {subject['type']} {subject.get('id')}"
    error = _text(failure.get("error")) or _text(data.get("error"))
    if error:
        verb = f"{verb} ({_shorten(error)})"
    return title, verb, url


def _media(
    event_type: str, data: Mapping[str, Any], media: Mapping[str, Any], verb: str
) -> tuple[str, str | None, str]:
    """Title, link and verb of an image or document event: ``“Sunset” was changed (new file,
    title)``. A media URL is linked only when it is a full URL: a relative one (``/media/...``)
    belongs to no site in particular."""
    title = _text(media.get("title")) or event_type
    url = _text(media.get("url"))
    if url and not url.startswith(("http://", "https://")):
        url = None
    changes = data.get("changes")
    if event_type.endswith(".changed") and isinstance(changes, list | tuple):
        what = [
            "new file" if change.get("field") == "file" else str(change.get("label") or "")
            for change in changes
            if isinstance(change, Mapping)
        ]
        what = [part for part in what if part]
        if what:
            verb = f"{verb} ({', '.join(what)})"
    return title, url, verb


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


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
