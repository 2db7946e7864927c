"""What a publish changed: the fields that differ from the previously published revision.

``page.published`` and ``snippet.published`` carry ``first_publish`` and ``changes``
(:func:`publish_changes`). Both revisions' contents are what Wagtail stores
(``Revision.content``, the object's serialised fields and child relations), so the comparison
is made in Python, with one query whatever the number of fields: the content of the revision
that the latest publish log entry names, joined in that same query.

Why the log and not ``live_revision``: by the time Wagtail sends ``page_published`` (or
``published``) it has already saved the object with the new ``live_revision``, and an object
unpublished since has none; the publish log entry, written after the signal, still names the
previous publish. Drafts saved in between have no such entry, and so do not count.

``changes`` is ``None`` when they cannot be known: the previous publish has no log entry (an
object published before Wagtail kept a log, or published with ``log_action=False``), its
revision was purged, or a content cannot be compared. The event goes out all the same.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, NamedTuple

from django.db import DatabaseError, models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce

from .events import json_safe
from .redaction import looks_secret

logger = logging.getLogger("wagtail_publish_hooks")

#: The log actions of a publish that made an object live (``wagtail.publish.schedule`` only
#: scheduled one).
PUBLISH_ACTIONS = ("wagtail.publish", "wagtail.publish.scheduled")

#: Fields that Wagtail keeps for its own bookkeeping (tree, revisions, publishing state,
#: locking, scheduling, translation, ownership): a difference in them is not a change of content.
BOOKKEEPING_FIELDS = frozenset(
    {
        "id",
        "pk",
        "path",
        "depth",
        "numchild",
        "url_path",
        "draft_title",
        "content_type",
        "live",
        "has_unpublished_changes",
        "expired",
        "latest_revision",
        "latest_revision_created_at",
        "live_revision",
        "first_published_at",
        "last_published_at",
        "go_live_at",
        "expire_at",
        "locked",
        "locked_at",
        "locked_by",
        "owner",
        "alias_of",
        "locale",
        "translation_key",
    }
)

#: Text fields up to this length carry their old and new values; longer ones are named only.
SHORT_TEXT_LENGTH = 255

#: The field types whose old and new values are short and plain enough to send as they are.
_SCALAR_FIELDS = (
    models.BooleanField,
    models.IntegerField,
    models.DateField,  # DateTimeField included
    models.TimeField,
)

# How a field is compared and reported.
_VALUES = "values"  # compared as stored; old and new sent
_NAME = "name"  # compared as stored; named only
_JSON = "json"  # a JSON document stored as text (StreamField): compared parsed; named only
_CHILDREN = "children"  # a child relation's objects: compared without their own ids; named only


class ComparedField(NamedTuple):
    name: str
    label: str
    kind: str
    #: For a child relation, the keys of each child that are not content (its id, its parent).
    ignored: frozenset[str] = frozenset()


def publish_changes(instance: Any, revision: Any) -> dict[str, Any]:
    """``{"first_publish": bool, "changes": list | None}`` for the publish of ``revision``.

    Call it from the receiver of ``page_published`` / ``published``, before Wagtail writes the
    publish's own log entry. One query (none when there is no revision). Raises only a database
    error, so that capture handles it like any query it makes; anything else that fails leaves
    ``changes`` at ``None``.
    """
    if revision is None:
        return changes_by_timestamps(instance)
    try:
        # As stored: a revision just saved still holds dates and other objects in memory, which
        # the stored one holds as JSON, and compares unequal to them.
        new_content = json_safe(revision.content)
    except Exception:
        logger.exception(
            "Publish hooks could not read the revision of %s %s",
            type(instance).__name__,
            getattr(instance, "pk", None),
        )
        return {"first_publish": False, "changes": None}
    try:
        found, old_content = previous_published_content(instance, revision)
    except DatabaseError:
        raise
    except Exception:
        logger.exception(
            "Publish hooks could not find the previous publish of %s %s",
            type(instance).__name__,
            getattr(instance, "pk", None),
        )
        return {"first_publish": False, "changes": None}
    if not found:
        return changes_by_timestamps(instance)
    if not isinstance(old_content, dict) or not isinstance(new_content, dict):
        return {"first_publish": False, "changes": None}
    try:
        changes = content_changes(type(instance), old_content, new_content)
    except Exception:
        logger.exception(
            "Publish hooks could not compare the revisions of %s %s",
            type(instance).__name__,
            getattr(instance, "pk", None),
        )
        return {"first_publish": False, "changes": None}
    return {"first_publish": False, "changes": changes}


def previous_published_content(instance: Any, revision: Any) -> tuple[bool, Any]:
    """Whether the object was published before (by its log), and that revision's content.

    For an alias page, the object is the page whose revision is published (the original), so
    that an alias reports the same changes. The content is ``None`` when the log entry names
    no revision, or one that was purged.
    """
    from wagtail.log_actions import registry as log_registry
    from wagtail.models import Page, PageLogEntry, Revision

    log_model = log_registry.get_log_model_for_instance(instance)
    if log_model is None:
        return False, None
    if isinstance(instance, Page):
        if not issubclass(log_model, PageLogEntry):
            return False, None
        entries = log_model.objects.filter(page_id=int(revision.object_id or instance.pk))
    else:
        entries = log_model.objects.for_instance(instance)
    # Ordered by an expression, not by the column: with the column, PostgreSQL may walk the
    # whole log backwards by time (its timestamp index) until it meets an entry of this object,
    # which costs as much as the site's history when the object was published long ago, or
    # never. By the expression, it looks the object's own entries up (an index) and sorts them;
    # the revision's content is then read by its key, for the one entry kept.
    content = Revision.objects.filter(pk=OuterRef("revision_id")).values("content")[:1]
    latest = list(
        entries.filter(action__in=PUBLISH_ACTIONS)
        .order_by(Coalesce("timestamp", "timestamp").desc(), "-pk")
        .values_list(Subquery(content), flat=True)[:1]
    )
    return (True, latest[0]) if latest else (False, None)


def changes_by_timestamps(instance: Any) -> dict[str, Any]:
    """``first_publish`` and ``changes`` when no earlier publish can be compared: a first
    publish changed nothing; after an earlier one, what changed is not known."""
    if published_before(instance):
        return {"first_publish": False, "changes": None}
    return {"first_publish": True, "changes": []}


def published_before(instance: Any) -> bool:
    """Whether the object was first published before this publish (its timestamps say so:
    Wagtail sets ``first_published_at`` and ``last_published_at`` to the same instant on a
    first publish)."""
    first = getattr(instance, "first_published_at", None)
    last = getattr(instance, "last_published_at", None)
    return first is not None and last is not None and first < last


def content_changes(
    model: type[models.Model], old: dict[str, Any], new: dict[str, Any]
) -> list[dict[str, Any]]:
    """The fields of ``model`` whose values differ between two revision contents.

    A field that one of the contents does not hold (added to the model or removed since) is
    not reported. No query.
    """
    changes: list[dict[str, Any]] = []
    for field in compared_fields(model):
        if field.name not in old or field.name not in new:
            continue
        before, after = old[field.name], new[field.name]
        if field.kind == _JSON:
            before, after = _parsed(before), _parsed(after)
        elif field.kind == _CHILDREN:
            before, after = _children(before, field.ignored), _children(after, field.ignored)
        if before == after:
            continue
        change: dict[str, Any] = {"field": field.name, "label": field.label}
        if field.kind == _VALUES:
            change["old"], change["new"] = before, after
        changes.append(change)
    return changes


@functools.cache
def compared_fields(model: type[models.Model]) -> tuple[ComparedField, ...]:
    """The fields of ``model`` a change is looked for in, in the model's order: its own fields
    (bookkeeping left out), its many-to-many fields, then its child relations (orderables)."""
    from modelcluster.models import get_all_child_relations
    from wagtail.models import COMMENTS_RELATION_NAME

    fields: list[ComparedField] = []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.name in BOOKKEEPING_FIELDS:
            continue
        if field.remote_field is not None and getattr(field.remote_field, "parent_link", False):
            continue
        fields.append(ComparedField(field.name, str(field.verbose_name), _kind(field)))
    for field in model._meta.many_to_many:
        fields.append(ComparedField(field.name, str(field.verbose_name), _NAME))
    for relation in get_all_child_relations(model):
        name = relation.get_accessor_name()
        if name and name != COMMENTS_RELATION_NAME:
            # A child saved again gets a new id (a revision can hold children not saved yet);
            # its parent is this object: neither is content.
            ignored = frozenset({"pk", "id", relation.field.name, relation.field.attname})
            fields.append(ComparedField(name, name.replace("_", " "), _CHILDREN, ignored))
    return tuple(fields)


def _kind(field: models.Field[Any, Any]) -> str:
    from wagtail.fields import StreamField

    if isinstance(field, StreamField):
        return _JSON
    if field.is_relation or looks_secret(field.name):
        return _NAME
    if isinstance(field, models.CharField):
        short = field.max_length is not None and field.max_length <= SHORT_TEXT_LENGTH
        return _VALUES if short else _NAME
    if isinstance(field, _SCALAR_FIELDS):
        return _VALUES
    return _NAME


def _children(value: Any, ignored: frozenset[str]) -> Any:
    if not isinstance(value, list):
        return value
    return [
        {key: item for key, item in child.items() if key not in ignored}
        if isinstance(child, dict)
        else child
        for child in value
    ]


def _parsed(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
