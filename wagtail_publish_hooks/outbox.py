"""Recording events and their deliveries in the caller's transaction, and dispatch on commit."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from .conf import get_settings
from .events import build_body, new_event_id
from .models import Delivery, Event
from .routing import destinations_for

logger = logging.getLogger("wagtail_publish_hooks")


def record_event(
    event_type: str,
    *,
    data: dict[str, Any],
    instance: models.Model | None = None,
    actor: Any = None,
    destinations: Iterable[str] | None = None,
) -> Event | None:
    """Write an event and one delivery per destination, and dispatch them after commit.

    ``destinations`` bypasses routing (used to send a test event to one alias). Returns
    ``None`` when capture is disabled or no destination wants the event. The queries issued do
    not depend on the number of destinations.
    """
    if not get_settings().ENABLED:
        return None
    model = type(instance) if instance is not None else None
    aliases = (
        list(destinations) if destinations is not None else destinations_for(event_type, model)
    )
    if not aliases:
        return None

    event_id = new_event_id()
    now = timezone.now()
    payload = build_body(event_id=event_id, event_type=event_type, timestamp=now, data=data)
    event = Event(
        event_id=event_id,
        event_type=event_type,
        created_at=now,
        payload=payload,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )
    if instance is not None:
        event.content_type = ContentType.objects.get_for_model(instance, for_concrete_model=False)
        event.object_id = str(instance.pk)
        event.object_repr = str(instance)[:255]
    # A savepoint, so that a failure here leaves the caller's transaction usable.
    with transaction.atomic():
        event.save(force_insert=True)
        Delivery.objects.bulk_create(
            Delivery(event=event, destination=alias, next_attempt_at=now, created_at=now)
            for alias in aliases
        )
    schedule_dispatch()
    return event


def schedule_dispatch(using: str | None = None) -> None:
    """Enqueue one delivery run when the current transaction commits (at once outside one).

    However many events a transaction records, it enqueues a single run.
    """
    connection = transaction.get_connection(using)
    if connection.in_atomic_block:
        for entry in connection.run_on_commit:
            if entry[1] is dispatch_after_commit:
                return
    transaction.on_commit(dispatch_after_commit, using=using, robust=True)


def dispatch_after_commit() -> None:
    from .tasks import enqueue_delivery_run

    enqueue_delivery_run()
