"""The destinations screens: every destination with its health and chart, and one destination.

Destinations defined in settings are listed read-only; those managed in the admin are created,
edited and deleted through Wagtail's generic views (:mod:`.editing`). Both kinds can be disabled,
enabled and sent a test event (:mod:`.actions`) by users who may change managed destinations.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView
from wagtail.admin.ui.tables import Column, Table
from wagtail.admin.views import generic
from wagtail.admin.widgets.button import HeaderButton

from ...models import ManagedDestination
from ...registry import settings_destinations
from ..permissions import (
    ForbiddenMixin,
    can_manage_destinations,
    can_view_destinations,
    forbidden,
)
from .chart import chart_svg
from .rows import TEMPLATES, DestinationRow, build_rows, find_row, url


class RowColumn(Column):
    """A column drawn by a template from the row (``instance.row``) of a destination."""

    def __init__(self, name: str, template: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.cell_template_name = f"{TEMPLATES}cells/{template}.html"

    def get_cell_context_data(self, instance: Any, parent_context: Any) -> dict[str, Any]:
        context = super().get_cell_context_data(instance, parent_context)
        context["dest"] = instance if isinstance(instance, DestinationRow) else instance.row
        context["can_manage"] = parent_context.get("can_manage", False)
        context["csrf_token"] = parent_context.get("csrf_token")
        return context


def destination_columns() -> list[Column]:
    return [
        RowColumn("alias", "alias", label=gettext_lazy("Destination")),
        RowColumn("backend", "backend", label=gettext_lazy("Backend")),
        RowColumn("health", "health", label=gettext_lazy("Health")),
        RowColumn("last", "last", label=gettext_lazy("Last success / failure")),
        RowColumn("chart", "chart", label=gettext_lazy("Attempts per hour, 7 days")),
    ]


class DestinationIndexView(ForbiddenMixin, generic.IndexView):
    """Destinations from settings (read-only), then those managed in the admin."""

    template_name = f"{TEMPLATES}index.html"
    page_title = gettext_lazy("Destinations")
    any_permission_required = ["view", "add", "change", "delete"]
    paginate_by = 50

    def get_base_queryset(self) -> Any:
        return ManagedDestination.objects.order_by("alias")

    @cached_property
    def columns(self) -> list[Column]:
        return destination_columns()

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [*self.breadcrumbs_items, {"url": "", "label": _("Destinations")}]

    def get_context_data(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(*args, **kwargs)
        managed = list(context["object_list"])
        settings_rows, managed_rows = build_rows(list(settings_destinations()), managed)
        for instance, row in zip(managed, managed_rows, strict=True):
            instance.row = row  # type: ignore[attr-defined]
        context["settings_table"] = Table(destination_columns(), settings_rows)
        context["can_manage"] = can_manage_destinations(self.request.user)
        context["settings_count"] = len(settings_rows)
        return context


class DestinationDetailView(ForbiddenMixin, generic.base.WagtailAdminTemplateMixin, TemplateView):
    template_name = f"{TEMPLATES}detail.html"
    header_icon = "link-external"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not can_view_destinations(request.user):
            return forbidden(request)
        self.row = find_row(kwargs["alias"])
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return self.row.alias

    def get_page_subtitle(self) -> str:
        return _("Destination")

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [
            *self.breadcrumbs_items,
            {"url": url("index"), "label": _("Destinations")},
            {"url": "", "label": self.row.alias},
        ]

    def get_header_buttons(self) -> list[Any]:
        buttons = []
        instance = self.row.instance
        if instance is not None and can_manage_destinations(self.request.user):
            buttons.append(HeaderButton(_("Edit"), url=url("edit", instance.pk), icon_name="edit"))
        return buttons

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["row"] = self.row
        context["chart"] = chart_svg(self.row.outcomes, height=96, bar_width=4)
        context["can_manage"] = can_manage_destinations(self.request.user)
        # Disabling the operator's destinations is for superusers (see DestinationActionView).
        context["can_switch"] = context["can_manage"] and (
            self.row.managed or self.request.user.is_superuser
        )
        return context
