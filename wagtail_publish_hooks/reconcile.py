"""Finding publishes and unpublishes whose event was never recorded, and recording them.

Outside a transaction Wagtail commits a publish before it sends ``page_published``: a process
that dies in between (killed, out of memory, a deploy) leaves the page live and no event. The
content is the record of truth, so the gaps can be found afterwards, by comparing it with the
events recorded since a given time:

- a page or snippet that is live and was last published at T needs a ``*.published`` event
  recorded at T or later;
- one that is not live, but was unpublished since (Wagtail's audit log says when) or whose
  latest event is a ``*.published``, needs a ``*.unpublished`` (or ``page.deleted``) event
  recorded after both.

Capture failures (:class:`~wagtail_publish_hooks.models.CaptureFailure`) are looked at first,
whatever their age: the publish or unpublish of a page or snippet that still exists is recorded
again, unless the object has changed state or a later event about it was recorded since, and the
failure is marked resolved. What cannot be recorded again stays unresolved: a deletion (the
page and its URLs are gone), a move (its old URLs are known only at the moment of the move),
workflow and custom events, and a destination's own capture (``INCLUDE``, a purge set).

What is missing is recorded through the normal outbox (routing, deliveries, dispatch), with
``"reconciled": true`` in the body. An event recorded this way closes its gap, so a second run
finds nothing. Queries are issued per chunk of objects, never one per object, except for the
events actually emitted.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Max, Q
from django.utils import timezone

from .conf import capture_enabled
from .events import (
    PAGE_DELETED,
    PAGE_PUBLISHED,
    PAGE_UNPUBLISHED,
    SNIPPET_PUBLISHED,
    SNIPPET_UNPUBLISHED,
)
from .models import CaptureFailure, Event

#: How many objects are looked at per query.
CHUNK_SIZE = 500

UNPUBLISH_ACTIONS = "wagtail.unpublish"  # also "wagtail.unpublish.scheduled" (expiry)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"30m"``, ``"2h"``, ``"1d"``, ``"1h30m"``, ``"90s"``, ``"2w"`` as a ``timedelta``.

    Raises ``ValueError`` for anything else.
    """
    value = str(text).strip().lower()
    if not value or _DURATION.sub("", value).strip():
        raise ValueError(
            f"{text!r} is not a duration: use a number and a unit, as in 30m, 2h, 1d or 1h30m"
        )
    seconds = sum(float(number) * _UNITS[unit] for number, unit in _DURATION.findall(value))
    return timedelta(seconds=seconds)


@dataclass
class Missing:
    """An event that should have been recorded and was not."""

    event_type: str
    instance: Any
    #: When the change it reports happened (the publish, or the unpublish when known).
    changed_at: datetime | None
    #: The capture failure it records again, if it was found that way.
    failure: CaptureFailure | None = None

    def describe(self) -> str:
        model = self.instance._meta.label
        when = (
            f" at {timezone.localtime(self.changed_at):%Y-%m-%d %H:%M:%S}"
            if self.changed_at
            else ""
        )
        source = f" (capture failure #{self.failure.pk})" if self.failure is not None else ""
        return (
            f"{self.event_type} {model} {self.instance.pk} {str(self.instance)[:60]!r}"
            f"{when}{source}"
        )


@dataclass(frozen=True)
class _Kind:
    """Pages, or one snippet model: where their state, events and audit log live."""

    model: type[models.Model]
    published: str
    unpublished: str
    #: Event types that also close an unpublish gap (a deletion).
    closing: tuple[str, ...]
    events_filter: Q
    log_model: type[models.Model]
    log_filter: Q
    log_object_field: str

    @property
    def is_page(self) -> bool:
        return self.published == PAGE_PUBLISHED


def _kinds() -> list[_Kind]:
    from wagtail.models import DraftStateMixin, ModelLogEntry, Page, PageLogEntry

    kinds = [
        _Kind(
            model=Page,
            published=PAGE_PUBLISHED,
            unpublished=PAGE_UNPUBLISHED,
            closing=(PAGE_UNPUBLISHED, PAGE_DELETED),
            # Page ids are unique across page types, and only pages have page.* events.
            events_filter=Q(),
            log_model=PageLogEntry,
            log_filter=Q(),
            log_object_field="page_id",
        )
    ]
    for model in apps.get_models():
        if not issubclass(model, DraftStateMixin) or issubclass(model, Page):
            continue
        content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
        kinds.append(
            _Kind(
                model=model,
                published=SNIPPET_PUBLISHED,
                unpublished=SNIPPET_UNPUBLISHED,
                closing=(SNIPPET_UNPUBLISHED,),
                events_filter=Q(content_type=content_type),
                log_model=ModelLogEntry,
                log_filter=Q(content_type=content_type),
                log_object_field="object_id",
            )
        )
    return kinds


def _chunks(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _latest_events(
    kind: _Kind, object_ids: list[str], event_types: Iterable[str]
) -> dict[tuple[str, str], datetime]:
    """``{(object_id, event_type): latest created_at}`` for the given objects."""
    rows = (
        Event.objects.filter(kind.events_filter)
        .filter(object_id__in=object_ids, event_type__in=list(event_types))
        .values("object_id", "event_type")
        .annotate(latest=Max("created_at"))
        .order_by()
    )
    return {(row["object_id"], row["event_type"]): row["latest"] for row in rows}


def _specific(kind: _Kind, pks: list[Any]) -> dict[str, Any]:
    queryset = kind.model._default_manager.filter(pk__in=pks)
    if kind.is_page:
        queryset = queryset.specific()  # type: ignore[attr-defined]
    return {str(obj.pk): obj for obj in queryset}


def _missing_publishes(kind: _Kind, since: datetime, until: datetime) -> Iterator[Missing]:
    live = (
        kind.model._default_manager.filter(
            live=True, last_published_at__gte=since, last_published_at__lte=until
        )
        .order_by("pk")
        .values_list("pk", "last_published_at")
    )
    last_pk = None
    while True:
        page = live if last_pk is None else live.filter(pk__gt=last_pk)
        rows = list(page[:CHUNK_SIZE])
        if not rows:
            return
        last_pk = rows[-1][0]
        published_at = {str(pk): at for pk, at in rows}
        recorded = _latest_events(kind, list(published_at), [kind.published])
        gaps = [
            pk
            for pk, at in published_at.items()
            if (recorded_at := recorded.get((pk, kind.published))) is None or recorded_at < at
        ]
        if gaps:
            objects = _specific(kind, gaps)
            for pk in gaps:
                if pk in objects:
                    yield Missing(kind.published, objects[pk], published_at[pk])


def _missing_unpublishes(kind: _Kind, since: datetime, until: datetime) -> Iterator[Missing]:
    # Candidates: what Wagtail's audit log says was unpublished since, and what had a publish
    # event recorded since (its unpublish may have left no log entry).
    unpublished_at = {
        str(row["object"]): row["at"]
        for row in kind.log_model._default_manager.filter(kind.log_filter)
        .filter(action__startswith=UNPUBLISH_ACTIONS, timestamp__gte=since)
        .values(object=models.F(kind.log_object_field))
        .annotate(at=Max("timestamp"))
        .order_by()
    }
    published_recently = (
        Event.objects.filter(kind.events_filter)
        .filter(event_type=kind.published, created_at__gte=since, created_at__lte=until)
        .values_list("object_id", flat=True)
        .distinct()
        .order_by()
    )
    candidates = sorted(set(unpublished_at) | set(published_recently))
    pk_field = kind.model._meta.pk
    for chunk in _chunks(candidates, CHUNK_SIZE):
        pks = []
        for value in chunk:
            # An event about an object id this model cannot have is no candidate.
            with contextlib.suppress(ValidationError):
                pks.append(pk_field.to_python(value))
        not_live = {
            str(pk)
            for pk in kind.model._default_manager.filter(pk__in=pks, live=False).values_list(
                "pk", flat=True
            )
        }
        if not not_live:
            continue
        latest = _latest_events(kind, sorted(not_live), [kind.published, *kind.closing])
        gaps: dict[str, datetime | None] = {}
        for pk in sorted(not_live):
            if (unpublished_at.get(pk) or since) > until:
                continue  # too recent: its event may still be on its way
            opened = [
                at
                for at in (unpublished_at.get(pk), latest.get((pk, kind.published)))
                if at is not None
            ]
            closed = [at for t in kind.closing if (at := latest.get((pk, t))) is not None]
            if opened and (not closed or max(closed) < max(opened)):
                gaps[pk] = unpublished_at.get(pk)
        if gaps:
            objects = _specific(kind, list(gaps))
            for pk, at in gaps.items():
                if pk in objects:
                    yield Missing(kind.unpublished, objects[pk], at)


def _is_routed(missing: Missing) -> bool:
    """Whether a durable destination or receiver would record this event now.

    What nothing records is not a gap: it would be looked for again on every run.
    """
    from .routing import routes_for, subject_of
    from .signal_handlers import is_alias_page

    is_alias = missing.event_type.startswith("page.") and is_alias_page(missing.instance)
    return bool(
        routes_for(
            missing.event_type,
            type(missing.instance),
            is_alias=is_alias,
            subject=subject_of(missing.event_type, missing.instance),
        )
    )


def find_missing(
    since: datetime, *, until: datetime | None = None, routed_only: bool = True
) -> Iterator[Missing]:
    """Every publish and unpublish between ``since`` and ``until`` (now) without its event."""
    until = until or timezone.now()
    for kind in _kinds():
        for missing in _missing_publishes(kind, since, until):
            if not routed_only or _is_routed(missing):
                yield missing
        for missing in _missing_unpublishes(kind, since, until):
            if not routed_only or _is_routed(missing):
                yield missing


def _unpublished_by(missing: Missing) -> Any:
    """The user Wagtail's audit log names for the latest unpublish, if any."""
    from wagtail.models import ModelLogEntry, Page, PageLogEntry

    obj = missing.instance
    if isinstance(obj, Page):
        entries = PageLogEntry.objects.filter(page_id=obj.pk)
    else:
        content_type = ContentType.objects.get_for_model(obj, for_concrete_model=False)
        entries = ModelLogEntry.objects.filter(content_type=content_type, object_id=str(obj.pk))
    entry = (
        entries.filter(action__startswith=UNPUBLISH_ACTIONS)
        .select_related("user")
        .order_by("-timestamp", "-pk")
        .first()
    )
    user = entry.user if entry is not None else None
    return user if getattr(user, "is_authenticated", False) else None


def emit(missing: Missing) -> Event | None:
    """Record the missing event through the outbox, marked ``"reconciled": true``."""
    from .changes import changes_by_timestamps
    from .outbox import record_event
    from .signal_handlers import (
        is_alias_page,
        page_event_data,
        revision_author,
        snippet_event_data,
    )

    obj = missing.instance
    event_type = missing.event_type
    is_page = event_type.startswith("page.")
    if event_type in (PAGE_PUBLISHED, SNIPPET_PUBLISHED):
        revision = getattr(obj, "live_revision", None)
        actor = revision_author(revision)
        if is_page:
            data = page_event_data(obj, revision=revision, actor=actor)
        else:
            data = snippet_event_data(obj, revision=revision, scheduled=False, actor=actor)
        # The publish's own log entry is the latest by now: what it changed is not worked out.
        data.update(changes_by_timestamps(obj))
    else:
        actor = _unpublished_by(missing)
        scheduled = bool(getattr(obj, "expired", False))
        if is_page:
            data = page_event_data(obj, scheduled=scheduled, actor=actor, live=False)
        else:
            data = snippet_event_data(obj, scheduled=scheduled, actor=actor, live=False)
    with transaction.atomic():
        return record_event(
            event_type,
            data=data,
            instance=obj,
            actor=actor,
            is_alias=is_page and is_alias_page(obj),
            reconciled=True,
        )


#: The capture failures that can be recorded again: the state they report is in the database.
RECAPTURABLE = (
    PAGE_PUBLISHED,
    PAGE_UNPUBLISHED,
    SNIPPET_PUBLISHED,
    SNIPPET_UNPUBLISHED,
)


def _failed_object(failure: CaptureFailure) -> Any:
    """The object a capture failure is about, as it is now, or ``None`` if it is gone."""
    model = failure.content_type.model_class() if failure.content_type is not None else None
    if model is None:
        return None
    try:
        pk = model._meta.pk.to_python(failure.object_id)  # type: ignore[union-attr]
    except (ValidationError, ValueError, TypeError):
        return None
    obj = model._default_manager.filter(pk=pk).first()
    if obj is not None and hasattr(obj, "specific"):
        obj = obj.specific
    return obj


def _later_event(failure: CaptureFailure, obj: Any, published: str, closing: tuple) -> Any:
    """The id of an event about ``obj`` recorded since the failure that reports its state."""
    from wagtail.models import Page

    recorded = Event.objects.filter(
        object_id=str(obj.pk),
        event_type__in=[published, *closing],
        created_at__gte=failure.occurred_at,
    )
    if not isinstance(obj, Page):
        recorded = recorded.filter(content_type_id=failure.content_type_id)
    return recorded.values_list("event_id", flat=True).first()


def recapture_failures(
    *, until: datetime | None = None, dry_run: bool = False
) -> list[tuple[Missing, Event | None]]:
    """Record again the publishes and unpublishes whose capture failed, and mark them resolved.

    An unresolved failure (older than ``until``) of a page or snippet that still exists is
    resolved without a new event when the object is no longer in the state it reported (a
    publish since unpublished) or when a later event about it was recorded; otherwise its
    event is recorded now, marked ``"reconciled": true``. Returns the events to record (and,
    unless ``dry_run``, recorded).
    """
    until = until or timezone.now()
    found: list[tuple[Missing, Event | None]] = []
    failures = (
        CaptureFailure.objects.unresolved()
        .filter(destination="", event_type__in=RECAPTURABLE, occurred_at__lte=until)
        .select_related("content_type")
        .order_by("occurred_at", "pk")
    )
    for failure in failures:
        obj = _failed_object(failure)
        if obj is None:
            continue  # gone: nothing left to describe
        is_page = failure.event_type.startswith("page.")
        published = PAGE_PUBLISHED if is_page else SNIPPET_PUBLISHED
        closing = (PAGE_UNPUBLISHED, PAGE_DELETED) if is_page else (SNIPPET_UNPUBLISHED,)
        resolution = ""
        if bool(getattr(obj, "live", False)) != (failure.event_type == published):
            resolution = "superseded: the object has changed state since"
        elif later := _later_event(failure, obj, published, closing):
            resolution = f"superseded by {later}"
        if resolution:
            if not dry_run:
                _resolve(failure, resolution)
            continue
        missing = Missing(failure.event_type, obj, failure.occurred_at, failure=failure)
        if dry_run:
            found.append((missing, None))
            continue
        if not _is_routed(missing):
            _resolve(failure, "no destination records it now")
            continue
        event = emit(missing)
        if event is not None:
            _resolve(failure, f"recorded again as {event.event_id}")
        found.append((missing, event))
    return found


def _resolve(failure: CaptureFailure, resolution: str) -> None:
    CaptureFailure.objects.filter(pk=failure.pk, resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolution=resolution[:255]
    )


def reconcile(
    since: datetime, *, until: datetime | None = None, dry_run: bool = False
) -> list[tuple[Missing, Event | None]]:
    """Find what is missing and (unless ``dry_run``) record it. Returns what was found.

    Capture failures that can be recorded again come first (:func:`recapture_failures`), then
    the gaps since ``since``.
    """
    if not dry_run and not capture_enabled():
        return []
    found = recapture_failures(until=until, dry_run=dry_run)

    def key(missing: Missing) -> tuple[Any, str, str]:
        return (type(missing.instance), str(missing.instance.pk), missing.event_type)

    again = {key(missing) for missing, _ in found}
    for missing in list(find_missing(since, until=until)):
        if dry_run and key(missing) in again:
            continue  # listed once, from its capture failure
        found.append((missing, None if dry_run else emit(missing)))
    return found
