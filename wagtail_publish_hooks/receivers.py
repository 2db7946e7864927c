"""Python receivers: functions registered with :func:`on` that receive events after commit.

A durable receiver (the default) is a destination whose backend calls Python: every event it
matches gets a delivery named ``python:<module>.<qualname>``, sent by the worker with the same
leases, retries and record as any other destination. A ``durable=False`` receiver is called in the
capturing process right after commit instead, and has no delivery.

Registering touches neither the database nor the app registry, so ``@on`` is safe at import time;
model labels are resolved when events are routed. The registry is filled as the site's modules are
imported, so a receiver must live in a module every process imports at startup, the workers
included (``models.py``, or a module imported in ``AppConfig.ready()``).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models, transaction

from .conf import RECEIVER_PREFIX, is_receiver_alias
from .events import apply_includes

if TYPE_CHECKING:
    from .models import Delivery

logger = logging.getLogger("wagtail_publish_hooks")

#: Longest receiver name: the ``Delivery.destination`` column holds 100 characters.
MAX_NAME_LENGTH = 100

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, eq=False)
class ReceivedEvent:
    """What a receiver is called with: one event, read-only.

    ``data`` is the event's ``data`` document, as a webhook destination would receive it (a
    fresh copy for each call). ``instance`` is the object the event is about, fetched from the
    database when first read, as it is *then* (``None`` if it no longer exists or the event is
    about no object); a ``durable=False`` receiver gets the very instance that was captured.
    """

    id: str
    type: str
    timestamp: datetime
    data: Mapping[str, Any]
    #: The label of the object's model (``"blog.BlogPage"``), or ``None``.
    object_type: str | None = None
    #: The object's primary key, as a string, or ``None``.
    object_id: str | None = None
    #: 1 for the first attempt; higher when a durable receiver is retried or redelivered.
    attempt: int = 1

    @cached_property
    def instance(self) -> models.Model | None:
        if self.object_type is None or self.object_id is None:
            return None
        from django.apps import apps

        try:
            model = apps.get_model(self.object_type)
        except (LookupError, ValueError):
            return None
        return model._default_manager.filter(pk=self.object_id).first()

    @classmethod
    def from_delivery(cls, delivery: Delivery) -> ReceivedEvent:
        from django.contrib.contenttypes.models import ContentType

        event = delivery.event
        object_type = None
        if event.content_type_id is not None:
            content_type = ContentType.objects.get_for_id(event.content_type_id)
            model = content_type.model_class()
            object_type = (
                model._meta.label
                if model is not None
                else f"{content_type.app_label}.{content_type.model}"
            )
        payload = delivery.payload
        return cls(
            id=event.event_id,
            type=event.event_type,
            timestamp=event.created_at,
            data=copy.deepcopy(payload.get("data") or {}),
            object_type=object_type,
            object_id=event.object_id or None,
            attempt=delivery.attempts + 1,
        )

    @classmethod
    def captured(
        cls,
        *,
        event_id: str,
        event_type: str,
        timestamp: datetime,
        data: Mapping[str, Any],
        instance: models.Model | None,
    ) -> ReceivedEvent:
        """An event for an in-process receiver, holding the captured instance itself."""
        event = cls(
            id=event_id,
            type=event_type,
            timestamp=timestamp,
            data=data,
            object_type=instance._meta.label if instance is not None else None,
            object_id=str(instance.pk) if instance is not None else None,
        )
        event.__dict__["instance"] = instance  # what cached_property would have stored
        return event


@dataclass(frozen=True)
class Receiver:
    """One registered receiver, as routing and delivery see it."""

    name: str
    function: Callable[[ReceivedEvent], Any]
    events: tuple[str, ...]
    #: Model classes or labels; ``None`` matches every model (and events about none).
    models: tuple[type[models.Model] | str, ...] | None
    durable: bool = True
    exclude_aliases: bool = True
    include: tuple[str, ...] = ()
    #: The filters a destination has, with the same meaning (``None``: no filter).
    sites: tuple[str | int, ...] | None = None
    locales: tuple[str, ...] | None = None
    sections: tuple[str | int, ...] | None = None
    changed: tuple[str, ...] | None = None
    collections: tuple[str | int, ...] | None = None

    def same_registration(self, other: Receiver) -> bool:
        return (
            self.events == other.events
            and self.models == other.models
            and self.durable == other.durable
            and self.exclude_aliases == other.exclude_aliases
            and self.include == other.include
            and self.filters() == other.filters()
        )

    def filters(self) -> tuple[Any, ...]:
        return (self.sites, self.locales, self.sections, self.changed, self.collections)


_registry: dict[str, Receiver] = {}
_lock = threading.Lock()


def receiver_name(function: Callable[..., Any]) -> str:
    """The default name: ``python:`` and the function's module and qualified name."""
    module = getattr(function, "__module__", None) or "unknown"
    qualname = getattr(function, "__qualname__", None) or repr(function)
    return f"{RECEIVER_PREFIX}{module}.{qualname}"


def on(
    event_type: str | Iterable[str],
    *models_: type[models.Model] | str,
    durable: bool = True,
    exclude_aliases: bool = True,
    include: Iterable[str] = (),
    name: str | None = None,
    sites: Iterable[str | int] | None = None,
    locales: Iterable[str] | None = None,
    sections: Iterable[str | int] | None = None,
    changed: Iterable[str] | None = None,
    collections: Iterable[str | int] | None = None,
) -> Callable[[F], F]:
    """Register the decorated function to receive ``event_type`` for instances of ``models_``.

    ``event_type`` is a type (``"page.published"``), a pattern (``"page.*"``, ``"*"``), or a list
    of them. ``models_`` are model classes or ``"app_label.ModelName"`` labels; subclasses match;
    none means every model. Durable receivers run in the worker after commit and are retried
    when they raise; ``durable=False`` runs them in this process right after commit, once,
    logging what they raise. ``sites``, ``locales``, ``sections``, ``changed`` and
    ``collections`` filter like a destination's ``SITES``, ``LOCALES``, ``SECTIONS``,
    ``CHANGED`` and ``COLLECTIONS``. Returns the function unchanged.
    """
    events = _event_patterns(event_type)
    filters = {
        "sites": _filter_values("sites", sites, (str, int)),
        "locales": _filter_values("locales", locales, (str,)),
        "sections": _filter_values("sections", sections, (str, int)),
        "changed": _filter_values("changed", changed, (str,)),
        "collections": _filter_values("collections", collections, (str, int)),
    }
    model_specs = tuple(models_)
    for spec in model_specs:
        if not (
            isinstance(spec, str) or (isinstance(spec, type) and issubclass(spec, models.Model))
        ):
            raise TypeError(f"@on() takes model classes or 'app_label.Model' labels, not {spec!r}")
    includes = _includes(include)

    def register(function: F) -> F:
        if not callable(function):
            raise TypeError(f"@on() decorates a function, not {function!r}")
        full_name = name if name is not None else receiver_name(function)
        if not is_receiver_alias(full_name):
            full_name = RECEIVER_PREFIX + full_name
        if len(full_name) > MAX_NAME_LENGTH:
            raise ValueError(
                f"The receiver name {full_name!r} is longer than {MAX_NAME_LENGTH} characters; "
                "give it a shorter one with @on(..., name='...')."
            )
        receiver = Receiver(
            name=full_name,
            function=function,
            events=events,
            models=model_specs or None,
            durable=bool(durable),
            exclude_aliases=bool(exclude_aliases),
            include=includes,
            **filters,
        )
        with _lock:
            existing = _registry.get(full_name)
            if existing is not None and not existing.same_registration(receiver):
                raise ValueError(
                    f"A receiver named {full_name!r} is already registered for other events or "
                    "models. List several event types in one @on([...]), or give each "
                    "registration its own name with @on(..., name='...')."
                )
            # The same registration again (a module imported twice) replaces the first.
            _registry[full_name] = receiver
        return function

    return register


def unregister(receiver: Callable[..., Any] | str) -> bool:
    """Remove a receiver, given its function or its name. Returns whether one was removed."""
    with _lock:
        if isinstance(receiver, str):
            name = receiver if is_receiver_alias(receiver) else RECEIVER_PREFIX + receiver
            return _registry.pop(name, None) is not None
        names = [n for n, r in _registry.items() if r.function is receiver]
        for name in names:
            del _registry[name]
        return bool(names)


def get_receiver(name: str) -> Receiver | None:
    return _registry.get(name)


def registered_receivers() -> list[Receiver]:
    return list(_registry.values())


def call_in_process(receiver: Receiver, event: ReceivedEvent) -> None:
    """Run a ``durable=False`` receiver. Never raises: what it raises is logged."""
    try:
        receiver.function(event)
    except Exception:
        logger.exception(
            "Publish hooks receiver %s raised for event %s (%s)",
            receiver.name,
            event.id,
            event.type,
        )


def _event_patterns(value: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        patterns: tuple[Any, ...] = (value,)
    elif isinstance(value, Iterable):
        patterns = tuple(value)
    else:
        patterns = ()
    if not patterns or not all(isinstance(item, str) and item for item in patterns):
        raise TypeError(
            f"@on() takes an event type such as 'page.published', or a list of them, not {value!r}"
        )
    return patterns


def _filter_values(name: str, value: Any, kinds: tuple[type, ...]) -> tuple[Any, ...] | None:
    if value is None:
        return None
    items = (value,) if isinstance(value, str | int) else tuple(value)
    if not all(isinstance(item, kinds) and not isinstance(item, bool) for item in items):
        wanted = " or ".join(kind.__name__ for kind in kinds)
        raise TypeError(f"@on({name}=...) takes a list of {wanted}, not {value!r}")
    return items


def _includes(value: Iterable[str]) -> tuple[str, ...]:
    from .includes import KNOWN_INCLUDES

    names = (value,) if isinstance(value, str) else tuple(value)
    unknown = [name for name in names if name not in KNOWN_INCLUDES]
    if unknown:
        raise ValueError(
            f"@on(include=...) knows {', '.join(sorted(KNOWN_INCLUDES))}, not {unknown[0]!r}"
        )
    return names


def call_after_commit(
    receivers: list[Receiver],
    *,
    event_id: str,
    event_type: str,
    timestamp: datetime,
    payload: dict[str, Any],
    included_data: dict[str, Any],
    instance: models.Model | None,
    using: str,
) -> None:
    """Call ``durable=False`` receivers once the transaction commits (at once outside one)."""

    def call() -> None:
        for receiver in receivers:
            try:
                body = apply_includes(payload, included_data, receiver.include)
                event = ReceivedEvent.captured(
                    event_id=event_id,
                    event_type=event_type,
                    timestamp=timestamp,
                    data=copy.deepcopy(body.get("data") or {}),
                    instance=instance,
                )
            except Exception:
                logger.exception("Publish hooks could not prepare event %s", event_id)
                continue
            call_in_process(receiver, event)

    transaction.on_commit(call, using=using, robust=True)
