"""The deliveries report and an object's deliveries (a page's or a snippet's publishing history)."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from wagtail.admin.ui.menus import MenuItem
from wagtail.admin.views.generic import IndexView
from wagtail.admin.widgets.button import HeaderButton
from wagtail.models import Page

from ...models import DUE_STATUSES, Delivery, DeliveryStatus, Event
from ..permissions import (
    ForbiddenMixin,
    ObjectAccess,
    can_redeliver,
    is_page_model,
    is_snippet_model,
)
from .cells import ActionsTitleColumn, CountColumn, HumanDateColumn, TextColumn
from .display import NAMESPACE, last_response, shown_title, status_column, url
from .filters import DeliveryFilterSet, ObjectDeliveryFilterSet, filterable_content_type_ids
from .paginator import SEARCH_COUNT_LIMIT, CappedPaginator
from .selection import (
    deliveries_queryset,
    find_instance,
    report_querystring,
    search_deliveries,
    selecting_query,
)


class DeliveryIndexView(ForbiddenMixin, IndexView):
    """Every delivery, newest first, filterable and searchable by the page's title."""

    model = Delivery
    permission_required = "view"
    any_permission_required = None
    index_url_name = f"{NAMESPACE}:deliveries"
    index_results_url_name = f"{NAMESPACE}:deliveries_results"
    page_title = gettext_lazy("Deliveries")
    header_icon = "resubmit"
    filterset_class = DeliveryFilterSet
    search_fields = ["event__object_repr"]
    default_ordering = "-created_at"
    paginate_by = 50
    # Counts at most 10,000 rows: an exact count would read the whole table on every load.
    paginator_class = CappedPaginator
    results_template_name = "wagtail_publish_hooks/admin/deliveries/index_results.html"

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        # No spreadsheet export: it would read the whole table in one request.
        self.is_export = False

    @cached_property
    def access(self) -> ObjectAccess:
        return ObjectAccess(self.request.user)

    def get_base_queryset(self) -> QuerySet[Delivery]:
        return deliveries_queryset()

    def with_visibility(self, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        """``queryset`` annotated with ``object_visible``, whether the user may see the rows'
        titles."""
        return self.access.annotate(queryset)

    def get_paginator(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_searching:
            # A title search counts fewer: for a user who may see only some titles, nothing
            # narrows the count but reading events until enough visible titles match.
            kwargs.setdefault("count_limit", SEARCH_COUNT_LIMIT)
        return super().get_paginator(*args, **kwargs)

    def paginate_queryset(self, queryset: QuerySet[Delivery], page_size: int) -> Any:
        paginator, page, rows, is_paginated = super().paginate_queryset(queryset, page_size)
        # Only the page's rows carry the access condition: the count needs neither it nor the
        # join to the events it brings.
        shown = self.with_visibility(queryset)
        shown.query.set_limits(rows.query.low_mark, rows.query.high_mark)
        page.object_list = shown
        return paginator, page, shown, is_paginated

    def search_queryset(self, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        if not self.is_searching:
            return queryset
        return search_deliveries(queryset, self.search_query, self.access)

    def order_queryset(self, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        ordering = self.ordering or self.default_ordering
        # The creation time, then the primary key, break ties, so pages never overlap or skip
        # rows; in the column's direction, so that an index on (column, created_at) serves the
        # order and a page reads 50 rows, not the table.
        descending = ordering.startswith("-")
        tie_breakers = ["-created_at", "-pk"] if descending else ["created_at", "pk"]
        if ordering.lstrip("-") == "created_at":
            tie_breakers = tie_breakers[1:]
        return queryset.order_by(ordering, *tie_breakers)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        paginator = context.get("paginator")
        if isinstance(paginator, CappedPaginator):
            context["pages_label"] = paginator.pages_label(context["page_obj"].number)
        return context

    @cached_property
    def columns(self) -> list[Any]:
        # Each cell is rendered from a stamp made once per listing (cells.py): a template per
        # cell was most of the request.
        return [
            ActionsTitleColumn(
                "event_type",
                label=gettext_lazy("Event"),
                accessor="event.event_type",
                get_url=lambda delivery: url("delivery", delivery.pk),
                buttons=self.get_list_buttons,
            ),
            TextColumn("object", label=gettext_lazy("Page or object"), accessor=shown_title),
            TextColumn("destination", label=gettext_lazy("Destination"), sort_key="destination"),
            status_column(),
            CountColumn("attempts", label=gettext_lazy("Attempts"), sort_key="attempts"),
            TextColumn(
                "last_response", label=gettext_lazy("Last response"), accessor=last_response
            ),
            HumanDateColumn("created_at", label=gettext_lazy("Created"), sort_key="created_at"),
            HumanDateColumn("delivered_at", label=gettext_lazy("Delivered")),
        ]

    def get_inspect_url(self, instance: Delivery) -> str:
        return url("delivery", instance.pk)

    @cached_property
    def can_redeliver(self) -> bool:
        return can_redeliver(self.request.user)

    def get_list_more_buttons(self, instance: Delivery) -> list[MenuItem]:
        # Rendered once per status for a listing (ActionsTitleColumn): what is shown may depend
        # on the user and the delivery's status, nothing else of the delivery.
        buttons = [
            MenuItem(_("View"), url=url("delivery", instance.pk), icon_name="view", priority=10)
        ]
        if self.can_redeliver:
            next_query = "?" + urlencode({"next": self.report_url()})
            if instance.status != DeliveryStatus.SENDING:
                buttons.append(
                    MenuItem(
                        _("Redeliver"),
                        url=url("redeliver", instance.pk) + next_query,
                        icon_name="resubmit",
                        priority=20,
                    )
                )
            if instance.status in DUE_STATUSES:
                buttons.append(
                    MenuItem(
                        _("Cancel"),
                        url=url("cancel", instance.pk) + next_query,
                        icon_name="circle-xmark",
                        priority=30,
                    )
                )
        return buttons

    def report_url(self) -> str:
        """This listing with the current filters (where the actions return to)."""
        return self.index_url + report_querystring(self.request)

    def bulk_querystring(self) -> str:
        return report_querystring(self.request)

    @cached_property
    def header_buttons(self) -> list[HeaderButton]:
        if not self.can_redeliver:
            return []
        query = self.bulk_querystring()
        return [
            HeaderButton(
                _("Redeliver failed"),
                url=url("redeliver_failed") + query,
                icon_name="resubmit",
            ),
            HeaderButton(
                _("Cancel pending"),
                url=url("cancel_pending") + query,
                icon_name="circle-xmark",
            ),
        ]


class ObjectDeliveriesView(DeliveryIndexView):
    """The deliveries of the events about one page or snippet: its publishing history."""

    # As Wagtail's history views: 20 to a page.
    paginate_by = 20
    filterset_class = ObjectDeliveryFilterSet

    # Looked up when first used, after the permission check: a user without the permission
    # learns nothing, not even whether the object exists.
    @cached_property
    def object_and_types(self) -> tuple[Any, list[int]]:
        return self.get_object_and_types()

    @property
    def object(self) -> Any:
        return self.object_and_types[0]

    @property
    def content_type_ids(self) -> list[int]:
        return self.object_and_types[1]

    def get_object_and_types(self) -> tuple[Any, list[int]]:
        """The object (404 if it is not one the package records events for, or is missing;
        403 if the user may not see it) and the content types its events are recorded with."""
        raise NotImplementedError(f"{type(self).__name__} must say which object it shows")

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.object_and_types  # noqa: B018 (404 or 403 before anything is shown)
        return super().get(request, *args, **kwargs)

    def get_base_queryset(self) -> QuerySet[Delivery]:
        return deliveries_queryset().filter(
            event__content_type_id__in=self.content_type_ids,
            event__object_id=str(self.object.pk),
        )

    def with_visibility(self, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        # The user may see the object (checked above): its title is shown on every row.
        return queryset.annotate(object_visible=models.Value(True))

    @cached_property
    def columns(self) -> list[Any]:
        # Every row is about the object the page is titled with.
        return [column for column in super().columns if column.name != "object"]

    def get_page_title(self) -> str:
        return _("Deliveries for “%(title)s”") % {"title": self.object_title()}

    def object_title(self) -> str:
        return str(self.object)

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        items = list(self.breadcrumbs_items)
        items.append({"url": reverse(self.index_url_name), "label": _("Deliveries")})
        items.append({"url": "", "label": self.object_title()})
        return items

    @cached_property
    def header_buttons(self) -> list[HeaderButton]:
        # The bulk actions are scoped to the object by its type, which must be one the filter
        # knows (the instance of a model that emit() was given may not be).
        if self.content_type_ids[0] not in filterable_content_type_ids():
            return []
        return super().header_buttons

    def bulk_querystring(self) -> str:
        query = selecting_query(self.request)
        query["content_type"] = str(self.content_type_ids[0])
        query["object_id"] = str(self.object.pk)
        return "?" + query.urlencode()


class PageDeliveriesView(ObjectDeliveriesView):
    index_url_name = f"{NAMESPACE}:deliveries"

    def get_object_and_types(self) -> tuple[Any, list[int]]:
        page = find_instance(Page, self.kwargs["page_id"])
        if not self.access.can_see_page(page):
            raise PermissionDenied
        # Events name the page's specific type; any recorded with the base type count too.
        types = [page.content_type_id, ContentType.objects.get_for_model(Page).pk]
        return page, types

    def object_title(self) -> str:
        return self.object.get_admin_display_title()

    def get_index_url(self) -> str:
        return url("page_deliveries", self.object.pk)

    def get_index_results_url(self) -> str:
        return url("page_deliveries_results", self.object.pk)

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        items = super().get_breadcrumbs_items()
        items[-1]["url"] = reverse("wagtailadmin_pages:edit", args=(self.object.pk,))
        return items


class SnippetDeliveriesView(ObjectDeliveriesView):
    def get_object_and_types(self) -> tuple[Any, list[int]]:
        try:
            content_type = ContentType.objects.get_by_natural_key(
                self.kwargs["app_label"], self.kwargs["model_name"]
            )
        except (ContentType.DoesNotExist, ValueError):
            raise Http404 from None
        model = content_type.model_class()
        # Pages have their own view. Snippets are the objects events are recorded for; another
        # model (an instance given to emit()) only when events were recorded for it and the
        # user holds a permission on it: nobody learns here about models they cannot see.
        if model is None or is_page_model(model):
            raise Http404
        if not is_snippet_model(model) and not (
            self.access.can_see_model(model)
            and Event.objects.filter(content_type=content_type).exists()
        ):
            raise Http404
        instance = find_instance(model, self.kwargs["pk"])
        if not self.access.can_see_instance(instance):
            raise PermissionDenied
        return instance, [content_type.pk]

    def url_args(self) -> tuple[str, str, str]:
        return (self.kwargs["app_label"], self.kwargs["model_name"], str(self.object.pk))

    def get_index_url(self) -> str:
        return url("snippet_deliveries", *self.url_args())

    def get_index_results_url(self) -> str:
        return url("snippet_deliveries_results", *self.url_args())
