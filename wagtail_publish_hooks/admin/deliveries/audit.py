"""Wagtail audit log entries for what people do to deliveries (redeliver, cancel)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.models import ModelLogEntry

from ...models import Delivery

REDELIVER = "wagtail_publish_hooks.redeliver"
CANCEL = "wagtail_publish_hooks.cancel"

#: (action, label, message) for Wagtail's ``register_log_actions`` hook.
LOG_ACTIONS = (
    (REDELIVER, _("Redeliver"), _("Redelivered")),
    (CANCEL, _("Cancel delivery"), _("Delivery cancelled")),
)


def delivery_label(delivery: Delivery) -> str:
    """How a delivery is named in the audit log: "#12 page.published → consumer".

    Without the object's title: Wagtail shows these entries to everyone who may view
    deliveries, and the title is the object's, shown only to those who may see the object.
    """
    return f"#{delivery.pk} {delivery.event.event_type} → {delivery.destination}"[:255]


def log_data(delivery: Delivery) -> dict[str, Any]:
    """What an entry records: the event and the object it is about, by type and id."""
    event = delivery.event
    return {
        "destination": delivery.destination,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "content_type": event.content_type_id,
        "object_id": event.object_id,
    }


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
            data=log_data(delivery),
        )
        for delivery in deliveries
    ]
    ModelLogEntry.objects.bulk_create(entries, batch_size=500)
