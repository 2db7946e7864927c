"""Which destinations an event goes to: by event type and by model, subclasses included."""

from __future__ import annotations

import functools
import logging

from django.apps import apps
from django.db import models

from .conf import Destination, get_destinations
from .events import DEFAULT_EVENT_PATTERNS, event_type_matches

logger = logging.getLogger("wagtail_publish_hooks")


@functools.lru_cache(maxsize=512)
def resolve_model(label: str) -> type[models.Model] | None:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        logger.error("Publish hooks: MODELS names %r, which is not an installed model", label)
        return None


def model_matches(model: type[models.Model] | None, labels: tuple[str, ...] | None) -> bool:
    """Whether ``model`` is one of ``labels`` or a subclass of one (``None`` matches all)."""
    if labels is None:
        return True
    if model is None:
        return False
    for label in labels:
        target = resolve_model(label)
        if target is not None and issubclass(model, target):
            return True
    return False


def destination_matches(
    destination: Destination, event_type: str, model: type[models.Model] | None
) -> bool:
    patterns = destination.events if destination.events is not None else DEFAULT_EVENT_PATTERNS
    return event_type_matches(event_type, patterns) and model_matches(model, destination.models)


def destinations_for(
    event_type: str, model: type[models.Model] | None, *, is_alias: bool = False
) -> list[str]:
    """Aliases of the destinations that receive ``event_type`` for an instance of ``model``.

    ``is_alias``: the event is about an alias page re-published with its original.
    """
    return [
        alias
        for alias, destination in get_destinations().items()
        if destination_matches(destination, event_type, model)
    ]
