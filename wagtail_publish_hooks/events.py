"""Event types and the payloads built for them.

A payload is built once, when the event is captured, and stored with the event: every retry and
every destination sends the same data, whatever has happened to the page since.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import models
from django.utils import timezone

from .encoding import repair_surrogates

PAGE_PUBLISHED = "page.published"
PAGE_UNPUBLISHED = "page.unpublished"
PAGE_MOVED = "page.moved"
PAGE_DELETED = "page.deleted"
SNIPPET_PUBLISHED = "snippet.published"
SNIPPET_UNPUBLISHED = "snippet.unpublished"
WORKFLOW_SUBMITTED = "workflow.submitted"
WORKFLOW_APPROVED = "workflow.approved"
WORKFLOW_REJECTED = "workflow.rejected"
#: Images and documents (any model of ``AbstractImage`` or ``AbstractDocument``): a file
#: replaced, or a tracked field changed (see ``media_handlers.py``); and their deletion.
IMAGE_CHANGED = "image.changed"
IMAGE_DELETED = "image.deleted"
DOCUMENT_CHANGED = "document.changed"
DOCUMENT_DELETED = "document.deleted"
MEDIA_CHANGED_TYPES = (IMAGE_CHANGED, DOCUMENT_CHANGED)
MEDIA_DELETED_TYPES = (IMAGE_DELETED, DOCUMENT_DELETED)
MEDIA_EVENT_TYPES = (*MEDIA_CHANGED_TYPES, *MEDIA_DELETED_TYPES)
#: Sent by ``manage.py publish_hooks test ALIAS``; routed to that destination only.
TEST = "publish_hooks.test"
#: Operational events, about the pipeline itself (see ``operational.py``): routed only to the
#: destinations whose ``EVENTS`` name them, never to the destination they are about.
DELIVERY_FAILED = "publish_hooks.delivery_failed"
DESTINATION_DISABLED = "publish_hooks.destination_disabled"
CAPTURE_FAILED = "publish_hooks.capture_failed"
OPERATIONAL_EVENT_TYPES = (DELIVERY_FAILED, DESTINATION_DISABLED, CAPTURE_FAILED)

PAGE_EVENT_TYPES = (PAGE_PUBLISHED, PAGE_UNPUBLISHED, PAGE_MOVED, PAGE_DELETED)
BUILTIN_EVENT_TYPES = (
    *PAGE_EVENT_TYPES,
    SNIPPET_PUBLISHED,
    SNIPPET_UNPUBLISHED,
    WORKFLOW_SUBMITTED,
    WORKFLOW_APPROVED,
    WORKFLOW_REJECTED,
    *MEDIA_EVENT_TYPES,
    TEST,
    *OPERATIONAL_EVENT_TYPES,
)

#: What a destination without ``EVENTS`` receives.
DEFAULT_EVENT_PATTERNS = ("page.*",)

PAYLOAD_VERSION = 1

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_event_id() -> str:
    """``evt_`` and 26 characters that sort by creation time (a lowercase ULID)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "evt_" + "".join(reversed(chars))


def event_type_matches(event_type: str, patterns: Iterable[str]) -> bool:
    """Whether ``event_type`` matches one of ``patterns`` (exact, ``"page.*"`` or ``"*"``)."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def is_known_event_pattern(pattern: str) -> bool:
    if pattern == "*" or pattern in BUILTIN_EVENT_TYPES:
        return True
    if pattern.endswith(".*"):
        prefix = pattern[:-1]
        return any(event_type.startswith(prefix) for event_type in BUILTIN_EVENT_TYPES)
    return False


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types (dates, decimals, UUIDs and lazy strings converted).

    Lone surrogates, which Python strings can hold but UTF-8 and PostgreSQL's JSON cannot,
    become U+FFFD. Raises ``TypeError`` or ``ValueError`` for what JSON cannot hold.
    """
    from django.core.serializers.json import DjangoJSONEncoder

    text = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)
    return json.loads(repair_surrogates(text))


def isoformat(value: datetime | None) -> str | None:
    if value is None:
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def model_label(model: type[models.Model]) -> str:
    return model._meta.label


def actor_payload(user: Any) -> dict[str, Any] | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return {"id": user.pk, "username": user.get_username()}


_language_codes: dict[int, str] = {}


def language_code(locale_id: int | None) -> str | None:
    """A locale's language code, cached: building a payload must not query for it each time."""
    if locale_id is None:
        return None
    code = _language_codes.get(locale_id)
    if code is None:
        from wagtail.models import Locale

        code = Locale.objects.filter(pk=locale_id).values_list("language_code", flat=True).first()
        if code is None:
            return None
        _language_codes[locale_id] = code
    return code


def forget_locales(**kwargs: Any) -> None:
    _language_codes.clear()


def page_urls(page: Any, *, url_path: str | None = None) -> list[str]:
    """Every full URL at which ``page`` is served, one per site whose root contains it.

    ``url_path`` overrides the page's own, to name the URLs a page had before a move.
    """
    from wagtail.models import Site

    urls: list[str] = []
    url_path = (page.url_path if url_path is None else url_path) or ""
    page_language = language_code(getattr(page, "locale_id", None))
    for root in Site.get_site_root_paths():
        if not url_path.startswith(root.root_path):
            continue
        if root.language_code and page_language and root.language_code != page_language:
            continue
        url = root.root_url.rstrip("/") + "/" + url_path[len(root.root_path) :]
        if url not in urls:
            urls.append(url)
    return urls


def page_payload(page: Any, *, revision: Any = None) -> dict[str, Any]:
    urls = page_urls(page)
    try:
        url = page.get_full_url()
    except Exception:  # a page with broken routing must not stop the event
        url = None
    if url and url not in urls:
        urls.insert(0, url)
    return {
        "id": page.pk,
        "type": model_label(type(page)),
        "title": page.title,
        "slug": page.slug,
        "url_path": page.url_path,
        "url": url,
        "urls": urls,
        "locale": language_code(getattr(page, "locale_id", None)),
        "live": bool(page.live),
        "revision_id": getattr(revision, "pk", None) or page.live_revision_id,
        "first_published_at": isoformat(page.first_published_at),
        "last_published_at": isoformat(page.last_published_at),
    }


def object_payload(obj: Any, *, revision: Any = None) -> dict[str, Any]:
    """A snippet or other non-page object, for ``snippet.*`` and workflow events."""
    payload: dict[str, Any] = {
        "id": obj.pk,
        "type": model_label(type(obj)),
        "title": str(obj),
    }
    if hasattr(obj, "live"):
        payload["live"] = bool(obj.live)
    if hasattr(obj, "live_revision_id"):
        payload["revision_id"] = getattr(revision, "pk", None) or obj.live_revision_id
    for name in ("first_published_at", "last_published_at"):
        if hasattr(obj, name):
            payload[name] = isoformat(getattr(obj, name))
    if hasattr(obj, "locale_id"):
        payload["locale"] = language_code(obj.locale_id)
    return payload


def media_subject(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The image or document an event's ``data`` is about (``data.image``, ``data.document``)."""
    for key in ("image", "document"):
        subject = data.get(key)
        if isinstance(subject, Mapping):
            return subject
    return None


def build_body(
    *, event_id: str, event_type: str, timestamp: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """The JSON document a webhook destination sends (payload version 1)."""
    return {
        "id": event_id,
        "type": event_type,
        "timestamp": isoformat(timestamp),
        "data": data,
    }


def apply_includes(
    payload: Mapping[str, Any], included_data: Mapping[str, Any], names: Iterable[str]
) -> dict[str, Any]:
    """The body for a destination: ``payload`` plus the included documents it asked for.

    The API document goes next to the description of the object: ``data.page.api`` for page
    events, ``data.image.api`` and ``data.document.api`` for media events, ``data.object.api``
    for custom events about a page, else ``data.api``. A document kept under a qualified name
    (``"api:<digest>"``, a projection of it) goes under the unqualified one (``api``).
    """
    names = [name for name in names if name in included_data]
    if not names:
        return dict(payload)
    body = copy.deepcopy(dict(payload))
    data = body.setdefault("data", {})
    for name in names:
        holder = data
        for key in ("page", "image", "document", "object"):
            if isinstance(data.get(key), dict):
                holder = data[key]
                break
        holder[name.partition(":")[0]] = copy.deepcopy(included_data[name])
    return body
