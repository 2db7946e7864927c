"""Operating on deliveries from code: redeliver and cancel them.

The state changes are the ``Delivery`` queryset's (``Delivery.objects.redeliver()``,
``.cancel()``); these functions, which ``manage.py publish_hooks`` and the admin call, add what
must follow the change: a delivery run enqueued after commit.
"""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Delivery, DeliveryQuerySet
from .tasks import schedule_dispatch


def redeliver(deliveries: QuerySet[Delivery]) -> int:
    """Queue deliveries to be sent again, each with a fresh retry cycle. Returns the count."""
    # Any queryset of deliveries (the base manager's too), not only the default manager's.
    count = DeliveryQuerySet.redeliver(deliveries)  # type: ignore[arg-type]
    if count:
        schedule_dispatch()
    return count


def cancel_deliveries(deliveries: QuerySet[Delivery]) -> int:
    """Withdraw deliveries that are waiting to be sent. Returns the count.

    Only pending and retrying ones are cancelled, and one being sent only if its worker's lease
    has run out: a delivery a worker holds is never withdrawn under it.
    """
    return DeliveryQuerySet.cancel(deliveries)  # type: ignore[arg-type]
