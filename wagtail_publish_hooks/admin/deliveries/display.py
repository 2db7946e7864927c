"""How the deliveries screens name and show a delivery: its links, its object's title (withheld
from who may not see the object), its status, last response, headers and JSON documents."""

from __future__ import annotations

import json
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_lazy

from ...models import Delivery, DeliveryStatus
from .audit import delivery_label
from .cells import LabelColumn

NAMESPACE = "wagtail_publish_hooks"

#: Shown instead of the title of an object the user may not see.
WITHHELD = gettext_lazy("(not shown: you have no access to it)")


def url(name: str, *args: Any) -> str:
    return reverse(f"{NAMESPACE}:{name}", args=args)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def shown_title(delivery: Delivery) -> str:
    """The title of the delivery's object, if the user may see that object (``object_visible``,
    annotated by :class:`~wagtail_publish_hooks.admin.permissions.ObjectAccess`)."""
    title = delivery.event.object_repr
    if not title or getattr(delivery, "object_visible", False):
        return title
    return str(WITHHELD)


def shown_label(delivery: Delivery) -> str:
    """``#12 page.published → consumer``, with the object's title if the user may see it."""
    label = delivery_label(delivery)
    if delivery.event.object_repr and getattr(delivery, "object_visible", False):
        label += f" · “{delivery.event.object_repr}”"
    return label


def last_response(delivery: Delivery) -> str:
    parts = []
    if delivery.last_status_code:
        parts.append(f"HTTP {delivery.last_status_code}")
    if delivery.last_error:
        error = delivery.last_error
        parts.append(error if len(error) <= 80 else error[:79] + "…")
    return " · ".join(parts)


def status_column() -> LabelColumn:
    """A delivery's status as a Wagtail status tag; delivered ones are highlighted."""
    return LabelColumn(
        "status",
        accessor="status",
        labels=lambda: dict(DeliveryStatus.choices),
        label=gettext_lazy("Status"),
        sort_key="status",
        primary=lambda delivery: delivery.status == DeliveryStatus.DELIVERED,
    )
