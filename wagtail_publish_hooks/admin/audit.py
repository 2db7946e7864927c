"""Wagtail audit log entries for what people do to deliveries (redeliver, cancel)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.models import ModelLogEntry

from ..models import Delivery

REDELIVER = "wagtail_publish_hooks.redeliver"
CANCEL = "wagtail_publish_hooks.cancel"

#: (action, label, message) for Wagtail's ``register_log_actions`` hook.
LOG_ACTIONS = (
    (REDELIVER, _("Redeliver"), _("Redelivered")),
    (CANCEL, _("Cancel delivery"), _("Delivery cancelled")),
)


def delivery_label(delivery: Delivery) -> str:
    """How a delivery is named in the audit log: "#12 page.published "Hello" → consumer"."""
    event = delivery.event
    about = f" “{event.object_repr}”" if event.object_repr else ""
    return f"#{delivery.pk} {event.event_type}{about} → {delivery.destination}"[:255]


def log_delivery_actions(deliveries: Iterable[Delivery], action: str, user: Any) -> None:
    """Write one audit log entry per delivery, sharing one id for one person's action.

    The entries are written in bulk: a bulk redelivery may touch thousands of deliveries.
    """
    content_type = ContentType.objects.get_for_model(Delivery)
    shared = uuid.uuid4()
    now = timezone.now()
    entries = [
        ModelLogEntry(
            content_type=content_type,
            object_id=str(delivery.pk),
            label=delivery_label(delivery),
            action=action,
            timestamp=now,
            uuid=shared,
            user=user if getattr(user, "is_authenticated", False) else None,
            data={
                "destination": delivery.destination,
                "event_id": delivery.event.event_id,
                "event_type": delivery.event.event_type,
                "object": delivery.event.object_repr,
            },
        )
        for delivery in deliveries
    ]
    ModelLogEntry.objects.bulk_create(entries, batch_size=500)
