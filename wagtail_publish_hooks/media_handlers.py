"""Images and documents as publishing events: ``image.changed`` / ``image.deleted`` and
``document.changed`` / ``document.deleted``.

Receivers on Django's model signals, connected for every installed model of Wagtail's
``AbstractImage`` and ``AbstractDocument`` (the configured ``get_image_model()`` and
``get_document_model()``, custom models included):

- ``pre_save`` keeps what the row was (one query) and, for an image, the URLs of the renditions
  that exist (one query): Wagtail's edit view deletes the replaced file and every rendition right
  after saving the new file, so their URLs can be known only now. Nothing is read when no
  destination or receiver takes the event for the model, or when ``update_fields`` names none of
  the tracked fields (Wagtail's own second saves of ``file_size`` and ``file_hash``).
- ``post_save`` compares the tracked fields (the file, the title, the collection, and an image's
  focal point) and records ``*.changed`` only when one of them changed; creating an image or a
  document records nothing.
- ``pre_delete`` records ``*.deleted`` while the renditions still exist (Django deletes them
  after the signal), so that their URLs are in the event.

Like :mod:`.signal_handlers`, they never raise into Wagtail.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.db import models
from django.utils.translation import gettext

from . import events
from .outbox import record_event
from .routing import in_process_receivers_for, routes_for
from .signal_handlers import current_actor, never_raises

IMAGE = "image"
DOCUMENT = "document"

#: The fields whose change makes an event, by the name ``changes`` gives them, with the model
#: attributes each one covers (an image's focal point is four columns, and one field).
TRACKED_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    IMAGE: {
        "file": ("file",),
        "title": ("title",),
        "collection": ("collection_id",),
        "focal_point": (
            "focal_point_x",
            "focal_point_y",
            "focal_point_width",
            "focal_point_height",
        ),
    },
    DOCUMENT: {
        "file": ("file",),
        "title": ("title",),
        "collection": ("collection_id",),
    },
}
#: The fields whose old and new values ``changes`` holds (short text).
TEXT_FIELDS = frozenset({"file", "title"})

EVENT_TYPES = {
    IMAGE: (events.IMAGE_CHANGED, events.IMAGE_DELETED),
    DOCUMENT: (events.DOCUMENT_CHANGED, events.DOCUMENT_DELETED),
}

#: Where ``pre_save`` leaves what the row was, on the instance being saved.
BEFORE = "_publish_hooks_media_before"


def media_kinds() -> dict[str, type[models.Model]]:
    """Wagtail's abstract image and document models, for the apps that are installed."""
    kinds: dict[str, type[models.Model]] = {}
    if apps.is_installed("wagtail.images"):
        from wagtail.images.models import AbstractImage

        kinds[IMAGE] = AbstractImage
    if apps.is_installed("wagtail.documents"):
        from wagtail.documents.models import AbstractDocument

        kinds[DOCUMENT] = AbstractDocument
    return kinds


def media_models() -> list[tuple[str, type[models.Model]]]:
    """Every installed image and document model (custom and proxy models included)."""
    found = []
    for kind, base in media_kinds().items():
        found += [(kind, model) for model in apps.get_models() if issubclass(model, base)]
    return found


# -- What the payload says of an image or a document ----------------------------------------------


def _url_of(get: Callable[[], Any]) -> str | None:
    """A URL, or ``None`` where the storage or the URL configuration gives none."""
    try:
        url = get()
    except Exception:  # a missing file, a storage without URLs, no serve view: no URL
        return None
    return str(url) if url else None


def own_urls(kind: str, instance: Any) -> list[str]:
    """The URLs of the file itself: an image's original, a document's serve view and file."""
    if not getattr(instance.file, "name", None):
        return []
    if kind == IMAGE:
        candidates = [_url_of(lambda: instance.file.url)]
    else:
        candidates = [_url_of(lambda: instance.url), _url_of(lambda: instance.file.url)]
    return list(dict.fromkeys(url for url in candidates if url))


def with_file(instance: Any, name: str) -> Any:
    """A copy of ``instance`` whose file is ``name``: to name the URLs of a replaced file."""
    other = copy.copy(instance)
    other.file = name
    return other


def rendition_urls(instance: Any) -> list[str]:
    """The URLs of the renditions of an image that exist (one query)."""
    rendition_model = type(instance).get_rendition_model()
    storage = rendition_model._meta.get_field("file").storage
    names = (
        rendition_model._default_manager.using(instance._state.db or "default")
        .filter(image_id=instance.pk)
        .values_list("file", flat=True)
    )
    urls = [_url_of(functools.partial(storage.url, name)) for name in names if name]
    return [url for url in urls if url]


def collection_data(instance: Any) -> dict[str, Any] | None:
    if getattr(instance, "collection_id", None) is None:
        return None
    collection = instance.collection
    return {"id": collection.pk, "name": collection.name}


def file_data(kind: str, instance: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": instance.file.name or "", "size": instance.file_size}
    if kind == IMAGE:
        data["width"] = instance.width
        data["height"] = instance.height
    return data


def focal_point_data(instance: Any) -> dict[str, int] | None:
    if not instance.has_focal_point():
        return None
    return {
        "x": instance.focal_point_x,
        "y": instance.focal_point_y,
        "width": instance.focal_point_width,
        "height": instance.focal_point_height,
    }


def media_payload(kind: str, instance: Any, *, stale_urls: list[str]) -> dict[str, Any]:
    """``data.image`` or ``data.document``. ``url`` is where the file is now; ``urls`` every
    URL the event makes stale: the current ones, and those of a replaced file and of the
    renditions that existed (``stale_urls``)."""
    current = own_urls(kind, instance)
    payload: dict[str, Any] = {
        "id": instance.pk,
        "type": events.model_label(type(instance)),
        "title": instance.title,
        "collection": collection_data(instance),
        "url": current[0] if current else None,
        "urls": list(dict.fromkeys([*current, *stale_urls])),
        "file": file_data(kind, instance),
    }
    if kind == IMAGE:
        payload["focal_point"] = focal_point_data(instance)
    return payload


def field_label(model: type[models.Model], name: str) -> str:
    if name == "focal_point":
        return gettext("focal point")
    try:
        field = model._meta.get_field(name)
    except Exception:  # a custom model without the field under that name
        return name.replace("_", " ")
    return str(getattr(field, "verbose_name", name))


# -- Receivers -------------------------------------------------------------------------------------


def current_value(instance: Any, attname: str) -> Any:
    if attname == "file":
        return instance.file.name or ""
    return getattr(instance, attname)


def is_routed(event_type: str, model: type[models.Model]) -> bool:
    """Whether anything takes ``event_type`` for ``model`` (no query)."""
    return bool(routes_for(event_type, model) or in_process_receivers_for(event_type, model))


def may_be_routed(event_type: str, model: type[models.Model]) -> bool:
    """:func:`is_routed`, asked before a savepoint is opened: saves that no destination cares
    about cost nothing. If it fails, the receiver runs, and records the failure."""
    try:
        return is_routed(event_type, model)
    except Exception:
        return True


def tracked_attnames(kind: str) -> list[str]:
    return [attname for names in TRACKED_FIELDS[kind].values() for attname in names]


def may_change_tracked(kind: str, update_fields: Any) -> bool:
    """Whether a save with ``update_fields`` may change a tracked field."""
    if update_fields is None:
        return True
    named = {str(name) for name in update_fields}
    return bool(named & (set(TRACKED_FIELDS[kind]) | set(tracked_attnames(kind))))


def remember(kind: str, instance: Any) -> None:
    """Keep on ``instance`` what its row was, and the URLs of its renditions (``pre_save``)."""
    if not is_routed(EVENT_TYPES[kind][0], type(instance)):
        return
    attnames = tracked_attnames(kind)
    manager = type(instance)._base_manager.using(instance._state.db or "default")
    row = manager.filter(pk=instance.pk).values(*attnames).first()
    if row is None:
        return
    row["file"] = row["file"] or ""
    renditions = rendition_urls(instance) if kind == IMAGE else []
    instance.__dict__[BEFORE] = {"values": row, "renditions": renditions}


def changes_since(kind: str, instance: Any, old: dict[str, Any]) -> list[dict[str, Any]]:
    """``data.changes``: the tracked fields whose value differs from the row's before."""
    model = type(instance)
    changes = []
    for name, attnames in TRACKED_FIELDS[kind].items():
        if all(old[attname] == current_value(instance, attname) for attname in attnames):
            continue
        change: dict[str, Any] = {"field": name, "label": field_label(model, name)}
        if name in TEXT_FIELDS:
            change["old"] = old[name]
            change["new"] = current_value(instance, name)
        changes.append(change)
    return changes


def record_media_event(
    event_type: str,
    kind: str,
    instance: Any,
    *,
    stale: list[str] | None = None,
    changes: list[dict[str, Any]] | None = None,
) -> None:
    """Record ``event_type`` about ``instance``. ``stale``: the URLs of what is gone once saved
    (a replaced file, its renditions); by default the renditions that exist, read if the event
    is routed. ``changes`` for ``*.changed``."""
    actor = current_actor()

    def data() -> dict[str, Any]:
        urls = stale if stale is not None else rendition_urls(instance) if kind == IMAGE else []
        result: dict[str, Any] = {
            kind: media_payload(kind, instance, stale_urls=urls),
            "actor": events.actor_payload(actor),
        }
        if changes is not None:
            result["changes"] = changes
        return result

    record_event(event_type, data=data, instance=instance, actor=actor)


def record_changed(kind: str, instance: Any) -> None:
    """``*.changed``, if a tracked field changed since ``pre_save`` (``post_save``)."""
    before = instance.__dict__.pop(BEFORE, None)
    if before is None:
        return
    old = before["values"]
    changes = changes_since(kind, instance, old)
    if not changes:
        return
    stale = list(before["renditions"])
    if old["file"] and old["file"] != current_value(instance, "file"):
        stale = own_urls(kind, with_file(instance, old["file"])) + stale
    record_media_event(EVENT_TYPES[kind][0], kind, instance, stale=stale, changes=changes)


def record_collection_move(kind: str, instance: Any, collection: Any) -> None:
    """``*.changed`` for a media moved to ``collection`` without a save (a queryset update)."""
    if instance.collection_id == collection.pk:
        return
    instance.collection = collection
    changes = [{"field": "collection", "label": field_label(type(instance), "collection")}]
    record_media_event(EVENT_TYPES[kind][0], kind, instance, changes=changes)


class MediaReceivers:
    """The receivers of one kind (image or document), each never raising: those of the model
    signals, and :meth:`moved` for the bulk action that moves without saving."""

    def __init__(self, kind: str) -> None:
        changed, deleted = EVENT_TYPES[kind]

        @never_raises(changed)
        def remember_row(sender: Any, instance: Any, **kwargs: Any) -> None:
            remember(kind, instance)

        @never_raises(changed)
        def record(sender: Any, instance: Any, **kwargs: Any) -> None:
            record_changed(kind, instance)

        def pre_save(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
            instance.__dict__.pop(BEFORE, None)
            if raw or instance.pk is None or instance._state.adding:
                return  # a new image or document, or a fixture: no event
            if may_change_tracked(kind, kwargs.get("update_fields")) and may_be_routed(
                EVENT_TYPES[kind][0], type(instance)
            ):
                remember_row(sender, instance=instance)

        def post_save(
            sender: Any, instance: Any, created: bool = False, raw: bool = False, **kwargs: Any
        ) -> None:
            if BEFORE not in instance.__dict__:
                return
            if created or raw:
                instance.__dict__.pop(BEFORE, None)
                return
            record(sender, instance=instance)

        @never_raises(deleted)
        def pre_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
            # The renditions still exist: Django deletes them after this signal.
            record_media_event(deleted, kind, instance)

        @never_raises(changed)
        def moved(sender: Any, instance: Any, collection: Any = None, **kwargs: Any) -> None:
            record_collection_move(kind, instance, collection)

        self.pre_save = pre_save
        self.post_save = post_save
        self.pre_delete = pre_delete
        self.moved = moved


#: Kept here: signals hold their receivers by weak reference.
RECEIVERS = {kind: MediaReceivers(kind) for kind in (IMAGE, DOCUMENT)}


def after_bulk_action(action_type: str, objects: Any, collection: Any) -> None:
    """Wagtail's bulk action "Add to collection" moves images and documents with a queryset
    update, which sends no signal: each one it moved is ``*.changed`` (its ``collection``).
    ``objects`` are the instances as they were before the move."""
    if action_type != "add_to_collection" or collection is None:
        return
    kinds = media_kinds()
    for instance in objects:
        for kind, base in kinds.items():
            if isinstance(instance, base):
                RECEIVERS[kind].moved(type(instance), instance=instance, collection=collection)


def connect() -> None:
    """Connect the receivers to each image and document model (their senders)."""
    from django.db.models.signals import post_save, pre_delete, pre_save

    uid = "wagtail_publish_hooks.media"
    for kind, model in media_models():
        receivers = RECEIVERS[kind]
        label = model._meta.label_lower
        pre_save.connect(receivers.pre_save, sender=model, dispatch_uid=f"{uid}.pre_save.{label}")
        post_save.connect(
            receivers.post_save, sender=model, dispatch_uid=f"{uid}.post_save.{label}"
        )
        pre_delete.connect(
            receivers.pre_delete, sender=model, dispatch_uid=f"{uid}.pre_delete.{label}"
        )
