"""The capture failures screen: events that could not be captured, and how each was resolved.

Opened by ``view_delivery``, like the deliveries report. A failure is about an object (a page,
a snippet); its title is shown only to a user who may see that object (:class:`ObjectAccess`),
its type and id to anyone who may open the screen.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import path, reverse_lazy
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.tables import Column, DateColumn
from wagtail.admin.views.generic import IndexView
from wagtail.admin.viewsets.base import ViewSet

from ...models import CaptureFailure
from ..permissions import ForbiddenMixin, ObjectAccess, can_view_deliveries, delivery_policy
from .display import WITHHELD

NAMESPACE = "publish_hooks_capture_failures"


def shown_object(failure: CaptureFailure) -> str:
    """``testapp.blogpage 12 · “Title”``: the title only if the user may see the object."""
    content_type = failure.content_type
    if content_type is None:
        return ""
    text = f"{content_type.app_label}.{content_type.model} {failure.object_id}".strip()
    if failure.object_repr:
        title = failure.object_repr if getattr(failure, "object_visible", False) else WITHHELD
        text += f" · “{title}”"
    return text


def shown_error(failure: CaptureFailure) -> str:
    error = failure.error_type.rsplit(".", 1)[-1]
    return f"{error}: {failure.message}" if failure.message else error


def shown_resolution(failure: CaptureFailure) -> str:
    return failure.resolution if failure.is_resolved else str(_("Not resolved"))


class CaptureFailureIndexView(ForbiddenMixin, IndexView):
    """Every capture failure, newest first."""

    model = CaptureFailure
    permission_required = "view"
    any_permission_required = None
    index_url_name = f"{NAMESPACE}:index"
    index_results_url_name = f"{NAMESPACE}:index_results"
    page_title = _("Capture failures")
    header_icon = "warning"
    default_ordering = "-occurred_at"
    paginate_by = 50

    @property
    def permission_policy(self) -> Any:
        # Seeing capture failures is seeing deliveries that could not be made.
        return delivery_policy()

    def setup(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        self.is_export = False

    def get_base_queryset(self) -> QuerySet[CaptureFailure]:
        access = ObjectAccess(self.request.user)
        return access.annotate(CaptureFailure.objects.select_related("content_type"), prefix="")

    def order_queryset(self, queryset: QuerySet[CaptureFailure]) -> QuerySet[CaptureFailure]:
        return queryset.order_by("-occurred_at", "-pk")

    def get_edit_url(self, instance: CaptureFailure) -> None:
        return None

    @cached_property
    def columns(self) -> list[Any]:
        return [
            DateColumn("occurred_at", label=_("Occurred")),
            Column("event_type", label=_("Event")),
            Column("object", label=_("Page or object"), accessor=shown_object),
            Column("destination", label=_("Destination")),
            Column("error", label=_("Error"), accessor=shown_error),
            Column("resolution", label=_("Resolution"), accessor=shown_resolution),
        ]


class CaptureFailuresViewSet(ViewSet):
    name = NAMESPACE
    url_prefix = "publish-hooks/capture-failures"
    icon = "warning"

    def get_urlpatterns(self) -> list[Any]:
        index = CaptureFailureIndexView
        return [
            path("", index.as_view(), name="index"),
            path("results/", index.as_view(results_only=True), name="index_results"),
        ]


class CaptureFailuresMenuItem(MenuItem):
    def is_shown(self, request: Any) -> bool:
        return can_view_deliveries(request.user)


def capture_failures_menu_item() -> MenuItem:
    return CaptureFailuresMenuItem(
        _("Capture failures"),
        reverse_lazy(f"{NAMESPACE}:index"),
        name="publish-hooks-capture-failures",
        icon_name="warning",
        order=300,
    )
