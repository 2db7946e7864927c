"""The deliveries report, a delivery's detail, redeliver and cancel, and an object's deliveries."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.generic import TemplateView
from wagtail.admin import messages
from wagtail.admin.ui.menus import MenuItem
from wagtail.admin.ui.tables import Column, DateColumn, NumberColumn, StatusTagColumn, TitleColumn
from wagtail.admin.utils import get_valid_next_url_from_request
from wagtail.admin.views.generic import IndexView, WagtailAdminTemplateMixin
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin
from wagtail.admin.widgets.button import HeaderButton
from wagtail.log_actions import log
from wagtail.models import Page

from ..delivery import cancel_deliveries, redeliver
from ..models import DUE_STATUSES, Attempt, Delivery, DeliveryStatus, Event
from ..redaction import headers_to_show as redact_headers
from .audit import CANCEL, REDELIVER, delivery_label, log_data, log_delivery_actions
from .filters import DeliveryFilterSet, filterable_content_type_ids
from .permissions import ObjectAccess, can_redeliver, is_page_model, is_snippet_model

NAMESPACE = "wagtail_publish_hooks"

#: How many deliveries a bulk action updates per statement.
BULK_CHUNK = 500

#: Query parameters of the report that are not filters.
REPORT_PARAMETERS = ("q", "p", "ordering", "_w_filter_fragment", "next")

#: Shown instead of the title of an object the user may not see.
WITHHELD = gettext_lazy("(not shown: you have no access to it)")


def url(name: str, *args: Any) -> str:
    return reverse(f"{NAMESPACE}:{name}", args=args)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def deliveries_queryset() -> QuerySet[Delivery]:
    """Deliveries with their event, without the event's (possibly large) documents."""
    return Delivery.objects.select_related("event").defer("event__payload", "event__included_data")


def search_deliveries(
    queryset: QuerySet[Delivery], query: str, access: ObjectAccess
) -> QuerySet[Delivery]:
    """Search by the title of the page or object (and by event id, for support requests).

    Titles are searched only among the objects the user may see: a search that matched hidden
    titles would let anyone spell them out one letter at a time.
    """
    query = query.strip()
    if not query:
        return queryset
    title = Q(event__object_repr__icontains=query)
    if not access.sees_everything:
        title &= access.condition()
    return queryset.filter(title | Q(event__event_id=query))


def filter_errors(request: HttpRequest, filters: DeliveryFilterSet) -> list[str]:
    """Why the filters in ``request.GET`` cannot select deliveries, if they cannot: an invalid
    value, an unknown parameter or one given twice. A bulk action refuses such a selection
    rather than act on more than the user asked for."""
    errors = []
    unknown = filters.unknown_parameters(allowed=REPORT_PARAMETERS)
    if unknown:
        errors.append(_("Unknown or repeated filter: %(names)s.") % {"names": ", ".join(unknown)})
    if not filters.is_valid():
        for name, messages_ in filters.errors.items():
            label = filters.form.fields[name].label if name in filters.form.fields else name
            errors.append(
                _("Invalid filter “%(label)s”: %(error)s")
                % {"label": label, "error": " ".join(str(m) for m in messages_)}
            )
    return errors


def filtered_deliveries(
    request: HttpRequest, base: QuerySet[Delivery]
) -> tuple[QuerySet[Delivery], list[str]]:
    """``base`` narrowed by the report's filters and search in ``request.GET``, and the errors
    that make the filters unusable (then the queryset selects nothing)."""
    filters = DeliveryFilterSet(data=request.GET, request=request)
    errors = filter_errors(request, filters)
    if errors:
        return base.none(), errors
    queryset = filters.filter_queryset(base)
    access = ObjectAccess(request.user)
    return search_deliveries(queryset, request.GET.get("q", ""), access), []


def report_querystring(request: HttpRequest) -> str:
    """The report's filters and search, without pagination or ordering."""
    query = request.GET.copy()
    for name in ("p", "ordering", "_w_filter_fragment", "next"):
        query.pop(name, None)
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else ""


def shown_title(delivery: Delivery) -> str:
    """The title of the delivery's object, if the user may see that object (``object_visible``,
    annotated by :class:`ObjectAccess`)."""
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


def find_instance(model: type[models.Model], raw_pk: Any) -> Any:
    """The instance of ``model`` whose primary key is ``raw_pk`` (as given in a URL), or 404:
    a key of the wrong shape or beyond the column's range is a missing object, not an error."""
    try:
        pk = model._meta.pk.to_python(raw_pk)  # type: ignore[union-attr]
        instance = model._default_manager.filter(pk=pk).first()
    except (ValidationError, ValueError, TypeError, OverflowError):
        raise Http404 from None
    if instance is None:
        raise Http404
    return instance


class ForbiddenMixin:
    """Answer a user without the permission with HTTP 403 (a page in the admin's style), rather
    than the redirect to the dashboard that Wagtail's admin would make of it: scripts and
    monitoring see a refusal, not a success."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        except PermissionDenied:
            return TemplateResponse(
                request,
                "wagtail_publish_hooks/admin/forbidden.html",
                {"page_title": _("Permission denied")},
                status=403,
            )


class StatusColumn(StatusTagColumn):
    """A delivery's status as a Wagtail status tag; delivered ones are highlighted."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            "status",
            accessor="get_status_display",
            label=gettext_lazy("Status"),
            sort_key="status",
            primary=lambda delivery: delivery.status == DeliveryStatus.DELIVERED,
            **kwargs,
        )


def last_response(delivery: Delivery) -> str:
    parts = []
    if delivery.last_status_code:
        parts.append(f"HTTP {delivery.last_status_code}")
    if delivery.last_error:
        error = delivery.last_error
        parts.append(error if len(error) <= 80 else error[:79] + "…")
    return " · ".join(parts)


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

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        # No spreadsheet export: it would read the whole table in one request.
        self.is_export = False

    @cached_property
    def access(self) -> ObjectAccess:
        return ObjectAccess(self.request.user)

    def get_base_queryset(self) -> QuerySet[Delivery]:
        return self.access.annotate(deliveries_queryset())

    def search_queryset(self, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        if not self.is_searching:
            return queryset
        return search_deliveries(queryset, self.search_query, self.access)

    def order_queryset(self, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        ordering = self.ordering or self.default_ordering
        # The primary key breaks ties, so pages never overlap or skip rows.
        return queryset.order_by(ordering, "-pk" if ordering.startswith("-") else "pk")

    @cached_property
    def columns(self) -> list[Any]:
        title_column_class = self._get_title_column_class(TitleColumn)
        return [
            title_column_class(
                "event_type",
                label=gettext_lazy("Event"),
                accessor="event.event_type",
                get_url=lambda delivery: url("delivery", delivery.pk),
            ),
            Column("object", label=gettext_lazy("Page or object"), accessor=shown_title),
            Column("destination", label=gettext_lazy("Destination"), sort_key="destination"),
            StatusColumn(),
            NumberColumn("attempts", label=gettext_lazy("Attempts"), sort_key="attempts"),
            Column("last_response", label=gettext_lazy("Last response"), accessor=last_response),
            DateColumn("created_at", label=gettext_lazy("Created"), sort_key="created_at"),
            DateColumn("delivered_at", label=gettext_lazy("Delivered")),
        ]

    def get_inspect_url(self, instance: Delivery) -> str:
        return url("delivery", instance.pk)

    @cached_property
    def can_redeliver(self) -> bool:
        return can_redeliver(self.request.user)

    def get_list_more_buttons(self, instance: Delivery) -> list[MenuItem]:
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
        # The user may see the object (checked above): its title is shown on every row.
        return (
            deliveries_queryset()
            .filter(
                event__content_type_id__in=self.content_type_ids,
                event__object_id=str(self.object.pk),
            )
            .annotate(object_visible=models.Value(True))
        )

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
        query = self.request.GET.copy()
        for name in ("p", "ordering", "_w_filter_fragment", "next"):
            query.pop(name, None)
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


class DeliveryDetailView(
    ForbiddenMixin, PermissionCheckedMixin, WagtailAdminTemplateMixin, TemplateView
):
    """One delivery: the event, the events it covers, and every attempt with what came back."""

    model = Delivery
    permission_required = "view"
    template_name = "wagtail_publish_hooks/admin/delivery_detail.html"
    header_icon = "resubmit"

    @cached_property
    def access(self) -> ObjectAccess:
        return ObjectAccess(self.request.user)

    @cached_property
    def delivery(self) -> Delivery:
        # Looked up after the permission check (see ObjectDeliveriesView).
        return find_instance_in(
            self.access.annotate(Delivery.objects.select_related("event", "event__actor")),
            self.kwargs["pk"],
        )

    def get_page_title(self) -> str:
        return _("Delivery #%(id)s") % {"id": self.delivery.pk}

    def get_page_subtitle(self) -> str:
        return shown_label(self.delivery)

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [
            *self.breadcrumbs_items,
            {"url": url("deliveries"), "label": _("Deliveries")},
            {"url": "", "label": self.get_page_title()},
        ]

    @cached_property
    def can_redeliver(self) -> bool:
        return can_redeliver(self.request.user)

    @cached_property
    def header_buttons(self) -> list[HeaderButton]:
        if not self.can_redeliver:
            return []
        buttons = []
        if self.delivery.status != DeliveryStatus.SENDING:
            buttons.append(
                HeaderButton(
                    _("Redeliver"), url=url("redeliver", self.delivery.pk), icon_name="resubmit"
                )
            )
        if self.delivery.status in DUE_STATUSES:
            buttons.append(
                HeaderButton(
                    _("Cancel"), url=url("cancel", self.delivery.pk), icon_name="circle-xmark"
                )
            )
        return buttons

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        delivery = self.delivery
        event = delivery.event
        # What reveals the object (its title, the payload with its title, URLs and API data,
        # what the destination answered about it, links to it) is shown only to a user who
        # may see the object.
        visible = bool(delivery.object_visible)  # type: ignore[attr-defined]
        attempts = [
            {
                "attempt": attempt,
                "request_headers": redact_headers(attempt.request_headers),
                "response_headers": redact_headers(attempt.response_headers),
                "detail": pretty_json(attempt.detail) if attempt.detail and visible else "",
                "response_body": attempt.response_body if visible else "",
            }
            for attempt in Attempt.objects.filter(delivery=delivery).order_by("-number")
        ]
        merged = list(
            self.access.annotate(delivery.coalesced_events.order_by("created_at", "pk"), prefix="")
        )
        event.object_visible = visible  # type: ignore[attr-defined]
        covered = [
            {
                "event": covered_event,
                "title": (
                    covered_event.object_repr if covered_event.object_visible else str(WITHHELD)
                ),
            }
            for covered_event in [event, *merged]
        ]
        context.update(
            delivery=delivery,
            event=event,
            object_visible=visible,
            object_title=shown_title(delivery),
            payload=pretty_json(delivery.payload) if visible else "",
            covered_events=covered if len(covered) > 1 else [],
            attempts=attempts,
            object_url=object_admin_url(event) if visible else None,
            object_deliveries_url=object_deliveries_url(event) if visible else None,
            can_redeliver=self.can_redeliver,
            status_classname=(
                "w-status--primary" if delivery.status == DeliveryStatus.DELIVERED else ""
            ),
        )
        return context


def find_instance_in(queryset: QuerySet[Any], raw_pk: Any) -> Any:
    try:
        instance = queryset.filter(pk=raw_pk).first()
    except (ValidationError, ValueError, TypeError, OverflowError):
        raise Http404 from None
    if instance is None:
        raise Http404
    return instance


def object_admin_url(event: Event) -> str | None:
    """Where the event's page or snippet is edited, if it still exists."""
    if not event.content_type_id or not event.object_id:
        return None
    model = ContentType.objects.get_for_id(event.content_type_id).model_class()
    if model is None:
        return None
    if issubclass(model, Page):
        if Page.objects.filter(pk=event.object_id).exists():
            return reverse("wagtailadmin_pages:edit", args=(event.object_id,))
        return None
    from wagtail.admin.admin_url_finder import AdminURLFinder

    instance = model._default_manager.filter(pk=event.object_id).first()
    return AdminURLFinder().get_edit_url(instance) if instance is not None else None


def object_deliveries_url(event: Event) -> str | None:
    if not event.content_type_id or not event.object_id:
        return None
    content_type = ContentType.objects.get_for_id(event.content_type_id)
    model = content_type.model_class()
    if model is not None and issubclass(model, Page):
        return url("page_deliveries", event.object_id)
    return url("snippet_deliveries", content_type.app_label, content_type.model, event.object_id)


class DeliveryActionView(
    ForbiddenMixin, PermissionCheckedMixin, WagtailAdminTemplateMixin, TemplateView
):
    """Confirm (GET) and carry out (POST) an action on one delivery."""

    model = Delivery
    permission_required = "redeliver"
    template_name = "wagtail_publish_hooks/admin/confirm_action.html"
    header_icon = "resubmit"
    action_label: Any = ""
    confirmation_message: Any = ""

    @cached_property
    def delivery(self) -> Delivery:
        access = ObjectAccess(self.request.user)
        return find_instance_in(
            access.annotate(Delivery.objects.select_related("event")), self.kwargs["pk"]
        )

    def get_page_subtitle(self) -> str:
        return shown_label(self.delivery)

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [
            *self.breadcrumbs_items,
            {"url": url("deliveries"), "label": _("Deliveries")},
            {"url": url("delivery", self.delivery.pk), "label": f"#{self.delivery.pk}"},
            {"url": "", "label": self.get_page_title()},
        ]

    def success_url(self) -> str:
        return get_valid_next_url_from_request(self.request) or url("delivery", self.delivery.pk)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            action_url=self.request.get_full_path(),
            action_label=self.action_label,
            confirmation_message=self.get_confirmation_message(),
            cancel_url=self.success_url(),
            next_url=get_valid_next_url_from_request(self.request),
        )
        return context

    def get_confirmation_message(self) -> str:
        return self.confirmation_message

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.perform(request)
        return HttpResponseRedirect(self.success_url())

    def perform(self, request: HttpRequest) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement perform()")


class RedeliverView(DeliveryActionView):
    page_title = gettext_lazy("Redeliver")
    action_label = gettext_lazy("Yes, redeliver")

    def get_confirmation_message(self) -> str:
        return _(
            "Send this delivery to “%(destination)s” again, with a fresh retry cycle? The "
            "receiver gets the same event id, so it can tell a repeat."
        ) % {"destination": self.delivery.destination}

    def perform(self, request: HttpRequest) -> None:
        if not redeliver(Delivery.objects.filter(pk=self.delivery.pk)):
            messages.error(request, _("This delivery is being sent right now; try again soon."))
            return
        log(
            instance=self.delivery,
            action=REDELIVER,
            user=request.user,
            title=delivery_label(self.delivery),
            data=log_data(self.delivery),
        )
        messages.success(request, _("Delivery #%(id)s queued again.") % {"id": self.delivery.pk})


class CancelView(DeliveryActionView):
    page_title = gettext_lazy("Cancel delivery")
    action_label = gettext_lazy("Yes, cancel it")

    def get_confirmation_message(self) -> str:
        return _(
            "Withdraw this delivery to “%(destination)s”? It will not be sent unless it is "
            "redelivered."
        ) % {"destination": self.delivery.destination}

    def perform(self, request: HttpRequest) -> None:
        if not cancel_deliveries(Delivery.objects.filter(pk=self.delivery.pk)):
            messages.error(
                request,
                _("This delivery could not be cancelled: it is being sent or already finished."),
            )
            return
        log(
            instance=self.delivery,
            action=CANCEL,
            user=request.user,
            title=delivery_label(self.delivery),
            data=log_data(self.delivery),
        )
        messages.success(request, _("Delivery #%(id)s cancelled.") % {"id": self.delivery.pk})


class BulkActionView(
    ForbiddenMixin, PermissionCheckedMixin, WagtailAdminTemplateMixin, TemplateView
):
    """Confirm (GET) and carry out (POST) an action on every matching delivery.

    The selection is the report's filters and search, from the query string, narrowed to the
    statuses the action applies to. Filters that cannot be applied as given (an invalid value,
    an unknown or repeated parameter) refuse the action: it never acts on more than the report
    with those filters shows.
    """

    model = Delivery
    permission_required = "redeliver"
    template_name = "wagtail_publish_hooks/admin/confirm_action.html"
    header_icon = "resubmit"
    statuses: tuple[str, ...] = ()
    action_label: Any = ""
    log_action = ""

    def selection(self) -> QuerySet[Delivery]:
        return self.filtered[0]

    @cached_property
    def filtered(self) -> tuple[QuerySet[Delivery], list[str]]:
        base = Delivery.objects.filter(status__in=self.statuses)
        return filtered_deliveries(self.request, base)

    @property
    def filter_errors(self) -> list[str]:
        return self.filtered[1]

    def report_url(self) -> str:
        return url("deliveries") + report_querystring(self.request)

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [
            *self.breadcrumbs_items,
            {"url": self.report_url(), "label": _("Deliveries")},
            {"url": "", "label": self.get_page_title()},
        ]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        errors = self.filter_errors
        count = 0 if errors else self.selection().count()
        context.update(
            action_url=self.request.get_full_path(),
            action_label=self.action_label if count else "",
            confirmation_message=(
                _("Nothing was done: the filters cannot select deliveries as given.")
                if errors
                else self.get_confirmation_message(count)
            ),
            errors=errors,
            cancel_url=get_valid_next_url_from_request(self.request) or self.report_url(),
            next_url=get_valid_next_url_from_request(self.request),
            count=count,
        )
        return context

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().get(request, *args, **kwargs)
        if self.filter_errors:
            response.status_code = 400
        return response

    def get_confirmation_message(self, count: int) -> str:
        raise NotImplementedError(f"{type(self).__name__} must describe its action")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if self.filter_errors:
            return self.get(request, *args, **kwargs)
        with transaction.atomic():
            # One transaction: one delivery run is enqueued, when it commits.
            done = self.apply_in_chunks(request)
        self.report(request, done)
        return HttpResponseRedirect(get_valid_next_url_from_request(request) or self.report_url())

    def apply_in_chunks(self, request: HttpRequest) -> int:
        done = 0
        last_pk = 0
        # In chunks by primary key: every statement stays small whatever the selection's size,
        # and each chunk is taken once even if its deliveries come back to the same status.
        while True:
            chunk = list(
                self.selection()
                .filter(pk__gt=last_pk)
                .select_related("event")
                .only(
                    "pk",
                    "destination",
                    "event__event_id",
                    "event__event_type",
                    "event__content_type_id",
                    "event__object_id",
                )
                .order_by("pk")[:BULK_CHUNK]
            )
            if not chunk:
                break
            last_pk = chunk[-1].pk
            changed = self.apply(Delivery.objects.filter(pk__in=[d.pk for d in chunk]))
            if changed:
                done += changed
                log_delivery_actions(chunk, self.log_action, request.user)
        return done

    def apply(self, deliveries: QuerySet[Delivery]) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement apply()")

    def report(self, request: HttpRequest, count: int) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement report()")


class BulkRedeliverView(BulkActionView):
    page_title = gettext_lazy("Redeliver failed deliveries")
    action_label = gettext_lazy("Yes, redeliver them")
    statuses = (DeliveryStatus.FAILED,)
    log_action = REDELIVER

    def get_confirmation_message(self, count: int) -> str:
        if not count:
            return _("No failed deliveries match the current filters.")
        return ngettext(
            "Send the %(count)s failed delivery matching the current filters again?",
            "Send the %(count)s failed deliveries matching the current filters again?",
            count,
        ) % {"count": count}

    def apply(self, deliveries: QuerySet[Delivery]) -> int:
        return redeliver(deliveries.filter(status=DeliveryStatus.FAILED))

    def report(self, request: HttpRequest, count: int) -> None:
        messages.success(
            request,
            ngettext(
                "%(count)s delivery queued again.", "%(count)s deliveries queued again.", count
            )
            % {"count": count},
        )


class BulkCancelView(BulkActionView):
    page_title = gettext_lazy("Cancel pending deliveries")
    action_label = gettext_lazy("Yes, cancel them")
    statuses = DUE_STATUSES
    log_action = CANCEL

    def get_confirmation_message(self, count: int) -> str:
        if not count:
            return _("No pending or retrying deliveries match the current filters.")
        return ngettext(
            "Withdraw the %(count)s pending or retrying delivery matching the current filters?",
            "Withdraw the %(count)s pending or retrying deliveries matching the current filters?",
            count,
        ) % {"count": count}

    def apply(self, deliveries: QuerySet[Delivery]) -> int:
        return cancel_deliveries(deliveries)

    def report(self, request: HttpRequest, count: int) -> None:
        messages.success(
            request,
            ngettext("%(count)s delivery cancelled.", "%(count)s deliveries cancelled.", count)
            % {"count": count},
        )
