"""What ``publish_hooks status`` counts, without counting a table of millions of rows."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db import connections, router
from django.db.models import Count, Q
from django.utils import timezone

from wagtail_publish_hooks.models import Delivery, DeliveryStatus

OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRYING)
FINAL_STATUSES = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)


def kept_deliveries() -> tuple[int, bool]:
    """How many deliveries the table holds, and whether that is PostgreSQL's estimate (kept
    by ``ANALYZE`` and autovacuum: counting millions of rows takes seconds)."""
    connection = connections[router.db_for_read(Delivery)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                [connection.ops.quote_name(Delivery._meta.db_table)],
            )
            row = cursor.fetchone()
        if row is not None and row[0] >= 0:  # -1: never analysed yet
            return int(row[0]), True
    return Delivery.objects.count(), False


def counts_by_destination(window: timedelta) -> dict[str, dict[str, int]]:
    """``{destination: {status: count}}``: every delivery still to be sent (few, each found
    through the status indexes), and those delivered, failed or cancelled among the deliveries
    created within ``window`` (through the index on their creation). Two queries."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for selection in (
        Q(status__in=OPEN_STATUSES),
        Q(status__in=FINAL_STATUSES, created_at__gte=timezone.now() - window),
    ):
        grouped = Delivery.objects.filter(selection).values("destination", "status")
        for count in grouped.annotate(n=Count("pk")).order_by():
            counts[count["destination"]][count["status"]] = count["n"]
    return counts
