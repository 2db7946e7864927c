"""Custom events: :func:`emit` records one, :func:`register_signal` turns a Django signal into them.

They travel the same way as the built-in events: recorded in the caller's transaction, routed by
type and by the instance's model, delivered after commit with retries. Their type is a dotted
name outside the namespaces the package reserves for its own events.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from .events import actor_payload, json_safe

if TYPE_CHECKING:
    from django.dispatch import Signal

    from .models import Delivery, Event

logger = logging.getLogger("wagtail_publish_hooks")

#: Namespaces of the package's own event types; :func:`emit` refuses them.
RESERVED_NAMESPACES = ("page", "snippet", "workflow", "image", "document", "publish_hooks")

#: The keys :func:`emit` sets in ``data``; the caller's ``data`` may not use them.
RESERVED_DATA_KEYS = frozenset({"object", "actor", "target"})

#: The ``Event.event_type`` column holds 100 characters.
MAX_EVENT_TYPE_LENGTH = 100

_SEGMENT = r"[a-z0-9][a-z0-9_-]*"
_EVENT_TYPE = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})+")
_EVENT_PATTERN = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*\.\*")


def is_reserved(name: str) -> bool:
    """Whether an event type or pattern lies in a namespace the package reserves."""
    return name.split(".", 1)[0] in RESERVED_NAMESPACES


def is_custom_event_type(name: Any) -> bool:
    """A well-formed dotted type (``"shop.order_shipped"``) outside the reserved namespaces."""
    return (
        isinstance(name, str)
        and len(name) <= MAX_EVENT_TYPE_LENGTH
        and _EVENT_TYPE.fullmatch(name) is not None
        and not is_reserved(name)
    )


def is_custom_event_pattern(pattern: Any) -> bool:
    """A custom type, or a prefix pattern for them (``"shop.*"``)."""
    if is_custom_event_type(pattern):
        return True
    return (
        isinstance(pattern, str)
        and _EVENT_PATTERN.fullmatch(pattern) is not None
        and not is_reserved(pattern)
    )


def validate_event_type(event_type: Any) -> str:
    """Return ``event_type`` if :func:`emit` may record it; raise ``ValueError`` otherwise."""
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise ValueError(
            f"{event_type!r} is not a valid event type: use a dotted name of lowercase letters, "
            "digits, '_' and '-', such as 'shop.order_shipped'."
        )
    if is_reserved(event_type):
        raise ValueError(
            f"{event_type!r} is in a namespace reserved for wagtail-publish-hooks' own events "
            f"({', '.join(ns + '.' for ns in RESERVED_NAMESPACES)}); use your own, such as "
            f"'shop.{event_type.split('.', 1)[1]}'."
        )
    if len(event_type) > MAX_EVENT_TYPE_LENGTH:
        raise ValueError(f"{event_type!r} is longer than {MAX_EVENT_TYPE_LENGTH} characters.")
    return event_type


def describe_object(instance: models.Model) -> dict[str, Any]:
    """``{"type": "app_label.Model", "id": ..., "repr": ...}`` for a model instance."""
    pk = instance.pk
    return {
        "type": instance._meta.label,
        "id": pk if isinstance(pk, int) or pk is None else str(pk),
        "repr": str(instance)[:255],
    }


def describe(value: Any) -> Any:
    """The JSON form of an actor or target: a user, another model instance, or a plain value."""
    if value is None:
        return None
    if isinstance(value, models.Model):
        if hasattr(value, "get_username"):
            return actor_payload(value) or describe_object(value)
        return describe_object(value)
    if getattr(value, "is_anonymous", False):  # AnonymousUser is not a model
        return None
    return _to_json(value, "the actor or target")


def event_data(
    *,
    instance: models.Model | None = None,
    actor: Any = None,
    target: Any = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``data`` document of a custom event. Raises ``TypeError`` / ``ValueError`` on misuse."""
    extra = dict(data or {})
    if not all(isinstance(key, str) for key in extra):
        raise TypeError("emit(data=...) must have string keys")
    clashes = sorted(RESERVED_DATA_KEYS & set(extra))
    if clashes:
        raise ValueError(
            f"emit(data=...) may not use the key(s) {', '.join(map(repr, clashes))}: pass them "
            "as the instance=, actor= and target= arguments."
        )
    if instance is not None and not isinstance(instance, models.Model):
        raise TypeError(f"emit(instance=...) takes a model instance, not {instance!r}")
    if instance is not None and instance.pk is None:
        raise ValueError("emit(instance=...) must be saved: an event names it by primary key")
    return {
        "object": describe_object(instance) if instance is not None else None,
        "actor": describe(actor),
        "target": describe(target),
        **_to_json(extra, "emit(data=...)"),
    }


def emit(
    event_type: str,
    instance: models.Model | None = None,
    actor: Any = None,
    target: Any = None,
    data: Mapping[str, Any] | None = None,
) -> Event | None:
    """Record the custom event ``event_type`` in the current transaction.

    It is routed like any event: by type (a destination's ``EVENTS``, a receiver's ``@on``) and
    by ``instance``'s model (``MODELS``). The ``data`` document is ``{"object", "actor",
    "target"}`` describing those arguments, plus the keys of ``data``, which must be
    JSON-serialisable (dates, decimals and UUIDs become strings).

    Raises ``ValueError`` or ``TypeError`` for a bad type or data, before recording anything.
    Returns the recorded event; ``None`` when capture is off or suspended, when no destination
    records it, or when recording failed (the error is logged, never raised).
    """
    from django.db import router

    from .conf import capture_enabled
    from .models import Event
    from .outbox import capture_savepoint, record_capture_failure, record_event

    validate_event_type(event_type)
    try:
        # Describing the objects may query (a model's __str__): in a savepoint, like the rest
        # of capture, so that a failing query leaves the caller's transaction usable.
        with capture_savepoint(router.db_for_write(Event)):
            payload = event_data(instance=instance, actor=actor, target=target, data=data)
    except (TypeError, ValueError):
        raise
    except Exception as exc:
        if capture_enabled():
            record_capture_failure(event_type, instance, exc)
        return None
    return record_event(event_type, data=payload, instance=instance, actor=actor)


def send_test_event(alias: str) -> Delivery | None:
    """Record a ``publish_hooks.test`` event for one destination, bypassing its filters, and
    return its delivery (sent after commit, like any other). ``None`` when capture is disabled.

    Used by ``manage.py publish_hooks test`` and the admin's "Send test event".
    """
    from .events import TEST
    from .outbox import capture_event

    event = capture_event(
        TEST,
        data={"message": "A test event from wagtail-publish-hooks.", "destination": alias},
        destinations=[alias],
    )
    return event.deliveries.get() if event is not None else None


def register_signal(signal: Signal, event_type: str, *, sender: Any = None) -> None:
    """Turn every ``signal`` sent (by ``sender``, if given) into an ``event_type`` event.

    The signal's ``instance`` argument, or else a sender that is a model instance, becomes the
    event's object; its ``actor`` and ``target`` arguments are taken when present; its other
    arguments go into ``data`` when they are JSON-serialisable (model instances are described),
    and are left out otherwise. Saves of fixtures (``raw=True``) are ignored. Registering the same
    signal and type twice connects once. The receiver never raises into the code that sent the
    signal: failures are logged.
    """
    validate_event_type(event_type)

    def receiver(sender: Any, **kwargs: Any) -> None:
        try:
            if kwargs.get("raw"):
                return  # loaddata: the rows are being restored, not created
            emit(event_type, **_signal_event_arguments(sender, kwargs))
        except Exception:
            logger.exception(
                "Publish hooks could not turn signal %r into event %s", signal, event_type
            )

    signal.connect(
        receiver,
        sender=sender,
        weak=False,
        dispatch_uid=f"wagtail_publish_hooks.register_signal:{event_type}",
    )


def _signal_event_arguments(sender: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs = dict(kwargs)
    kwargs.pop("signal", None)
    instance = kwargs.pop("instance", None)
    if not isinstance(instance, models.Model):
        if instance is not None:
            kwargs["instance"] = instance
        instance = sender if isinstance(sender, models.Model) else None
    actor = kwargs.pop("actor", None)
    target = kwargs.pop("target", None)
    data: dict[str, Any] = {}
    if isinstance(sender, type) and issubclass(sender, models.Model):
        data["sender"] = sender._meta.label
    elif sender is not None and sender is not instance and _is_json(sender):
        data["sender"] = sender
    for key, value in kwargs.items():
        if key in RESERVED_DATA_KEYS:
            continue
        if isinstance(value, models.Model):
            data[key] = describe_object(value)
        elif _is_json(value):
            data[key] = value
    return {
        "instance": instance,
        "actor": actor if _describable(actor) else None,
        "target": target if _describable(target) else None,
        "data": data,
    }


def _describable(value: Any) -> bool:
    return value is None or isinstance(value, models.Model) or _is_json(value)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, cls=DjangoJSONEncoder)
    except (TypeError, ValueError):
        return False
    return True


def _to_json(value: Any, what: str) -> Any:
    try:
        return json_safe(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable: {exc}") from None
