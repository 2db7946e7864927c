"""The dashboard panel: failed deliveries in the last 24 hours and disabled destinations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from wagtail.admin.ui.components import Component

from ...models import Delivery, DeliveryStatus, DestinationState


class DeliveriesPanel(Component):
    name = "publish_hooks_deliveries"
    template_name = "wagtail_publish_hooks/admin/deliveries/dashboard_panel.html"
    order = 160

    def get_context_data(self, parent_context: Any) -> dict[str, Any]:
        context = super().get_context_data(parent_context)
        since = timezone.now() - timedelta(hours=24)
        failed = Delivery.objects.filter(status=DeliveryStatus.FAILED, created_at__gte=since)
        by_destination = {
            row["destination"]: row["count"]
            for row in failed.order_by().values("destination").annotate(count=Count("pk"))
        }
        report = reverse("wagtail_publish_hooks:deliveries")
        disabled = list(
            DestinationState.objects.filter(disabled_at__isnull=False).order_by("alias")
        )
        context.update(
            failed_count=sum(by_destination.values()),
            failed_by_destination=[
                {
                    "alias": alias,
                    "count": count,
                    "url": report
                    + "?"
                    + urlencode({"status": "failed", "period": "24h", "destination": alias}),
                }
                for alias, count in sorted(by_destination.items())
            ],
            failed_url=report + "?" + urlencode({"status": "failed", "period": "24h"}),
            disabled_destinations=[
                {
                    "state": state,
                    "url": report + "?" + urlencode({"destination": state.alias}),
                }
                for state in disabled
            ],
        )
        return context
