"""The deliveries screens as one Wagtail viewset, under ``/admin/publish-hooks/``, and their item
of the "Publish hooks" menu."""

from __future__ import annotations

from typing import Any

from django.urls import path, reverse_lazy
from django.utils.translation import gettext_lazy as _
from wagtail.admin.menu import MenuItem
from wagtail.admin.viewsets.base import ViewSet

from ..permissions import can_view_deliveries
from .actions import BulkCancelView, BulkRedeliverView, CancelView, RedeliverView
from .detail import DeliveryDetailView
from .display import NAMESPACE
from .views import DeliveryIndexView, PageDeliveriesView, SnippetDeliveriesView


class DeliveriesViewSet(ViewSet):
    name = NAMESPACE
    url_prefix = "publish-hooks"
    icon = "resubmit"

    def get_urlpatterns(self) -> list[Any]:
        index = DeliveryIndexView
        page = PageDeliveriesView
        snippet = SnippetDeliveriesView
        return [
            path("deliveries/", index.as_view(), name="deliveries"),
            path(
                "deliveries/results/",
                index.as_view(results_only=True),
                name="deliveries_results",
            ),
            path(
                "deliveries/redeliver-failed/",
                BulkRedeliverView.as_view(),
                name="redeliver_failed",
            ),
            path(
                "deliveries/cancel-pending/",
                BulkCancelView.as_view(),
                name="cancel_pending",
            ),
            path("deliveries/<int:pk>/", DeliveryDetailView.as_view(), name="delivery"),
            path(
                "deliveries/<int:pk>/redeliver/",
                RedeliverView.as_view(),
                name="redeliver",
            ),
            path("deliveries/<int:pk>/cancel/", CancelView.as_view(), name="cancel"),
            path("pages/<int:page_id>/", page.as_view(), name="page_deliveries"),
            path(
                "pages/<int:page_id>/results/",
                page.as_view(results_only=True),
                name="page_deliveries_results",
            ),
            path(
                "snippets/<str:app_label>/<str:model_name>/<str:pk>/",
                snippet.as_view(),
                name="snippet_deliveries",
            ),
            path(
                "snippets/<str:app_label>/<str:model_name>/<str:pk>/results/",
                snippet.as_view(results_only=True),
                name="snippet_deliveries_results",
            ),
        ]


class DeliveriesMenuItem(MenuItem):
    def is_shown(self, request: Any) -> bool:
        return can_view_deliveries(request.user)


def deliveries_menu_item() -> MenuItem:
    return DeliveriesMenuItem(
        _("Deliveries"),
        reverse_lazy(f"{NAMESPACE}:deliveries"),
        name="publish-hooks-deliveries",
        icon_name="resubmit",
        order=100,
    )
