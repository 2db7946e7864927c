"""The deliveries screens as one Wagtail viewset, under ``/admin/publish-hooks/``."""

from __future__ import annotations

from typing import Any

from django.urls import path
from wagtail.admin.viewsets.base import ViewSet

from . import views


class DeliveriesViewSet(ViewSet):
    name = views.NAMESPACE
    url_prefix = "publish-hooks"
    icon = "resubmit"

    def get_urlpatterns(self) -> list[Any]:
        index = views.DeliveryIndexView
        page = views.PageDeliveriesView
        snippet = views.SnippetDeliveriesView
        return [
            path("deliveries/", index.as_view(), name="deliveries"),
            path(
                "deliveries/results/",
                index.as_view(results_only=True),
                name="deliveries_results",
            ),
            path(
                "deliveries/redeliver-failed/",
                views.BulkRedeliverView.as_view(),
                name="redeliver_failed",
            ),
            path(
                "deliveries/cancel-pending/",
                views.BulkCancelView.as_view(),
                name="cancel_pending",
            ),
            path("deliveries/<int:pk>/", views.DeliveryDetailView.as_view(), name="delivery"),
            path(
                "deliveries/<int:pk>/redeliver/",
                views.RedeliverView.as_view(),
                name="redeliver",
            ),
            path("deliveries/<int:pk>/cancel/", views.CancelView.as_view(), name="cancel"),
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
