"""The editor's watching URLs, under ``/admin/publish-hooks/watching/``."""

from __future__ import annotations

from typing import Any

from django.urls import path
from wagtail.admin.viewsets.base import ViewSet

from .account import NAMESPACE
from .views import PageWatchersView, UnwatchView, WatchPageView, WatchSnippetView


class WatchingViewSet(ViewSet):
    name = NAMESPACE
    url_prefix = "publish-hooks/watching"
    icon = "view"

    def get_urlpatterns(self) -> list[Any]:
        return [
            path("pages/<int:page_id>/", WatchPageView.as_view(), name="watch_page"),
            path("pages/<int:page_id>/watchers/", PageWatchersView.as_view(), name="page_watchers"),
            path(
                "snippets/<str:app_label>/<str:model_name>/<str:pk>/",
                WatchSnippetView.as_view(),
                name="watch_snippet",
            ),
            path("unwatch/<int:pk>/", UnwatchView.as_view(), name="unwatch"),
        ]
