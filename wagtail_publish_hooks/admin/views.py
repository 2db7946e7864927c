"""The deliveries report, a delivery's detail, redeliver and cancel, and an object's deliveries."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
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
from .audit import CANCEL, REDELIVER, delivery_label, log_delivery_actions
from .filters import DeliveryFilterSet
from .permissions import can_redeliver

NAMESPACE = "wagtail_publish_hooks"

#: Header names whose values are never shown, whatever a backend recorded.
SECRET_HEADER_WORDS = ("authorization", "signature", "secret", "token", "cookie", "key", "auth")
REDACTED = "[redacted]"

#: How many deliveries a bulk action updates per statement.
BULK_CHUNK = 500


def url(name: str, *args: Any) -> str:
    return reverse(f"{NAMESPACE}:{name}", args=args)


def redact_headers(headers: Any) -> list[tuple[str, str]]:
    """Headers as (name, value) pairs to show; secret-looking values are replaced."""
    if not isinstance(headers, dict):
        return []
    shown = []
    for name, value in sorted(headers.items(), key=lambda item: str(item[0]).lower()):
        lowered = str(name).lower()
        if any(word in lowered for word in SECRET_HEADER_WORDS):
            value = REDACTED
        shown.append((str(name), str(value)))
    return shown


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def deliveries_queryset() -> QuerySet[Delivery]:
    """Deliveries with their event, without the event's (possibly large) documents."""
    return Delivery.objects.select_related("event").defer("event__payload", "event__included_data")


def search_deliveries(queryset: QuerySet[Delivery], query: str) -> QuerySet[Delivery]:
    """Search by the title of the page or object (and by event id, for support requests)."""
    query = query.strip()
    if not query:
        return queryset
    return queryset.filter(Q(event__object_repr__icontains=query) | Q(event__event_id=query))


def filtered_deliveries(request: HttpRequest, base: QuerySet[Delivery]) -> QuerySet[Delivery]:
    """``base`` narrowed by the report's filters and search in ``request.GET``."""
    filters = DeliveryFilterSet(data=request.GET, request=request)
    queryset = filters.filter_queryset(base) if filters.is_valid() else base
    return search_deliveries(queryset, request.GET.get("q", ""))


def report_querystring(request: HttpRequest) -> str:
    """The report's filters and search, without pagination or ordering."""
    query = request.GET.copy()
    for name in ("p", "ordering", "_w_filter_fragment", "next"):
        query.pop(name, None)
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else ""


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

    def get_base_queryset(self) -> QuerySet[Delivery]:
        return deliveries_queryset()

    def search_queryset(self, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        return search_deliveries(queryset, self.search_query) if self.is_searching else queryset

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
            Column("object", label=gettext_lazy("Page or object"), accessor="event.object_repr"),
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
        raise NotImplementedError(f"{type(self).__name__} must say which object it shows")

    def get_base_queryset(self) -> QuerySet[Delivery]:
        return deliveries_queryset().filter(
            event__content_type_id__in=self.content_type_ids,
            event__object_id=str(self.object.pk),
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
        page = get_object_or_404(Page, pk=self.kwargs["page_id"])
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
        except ContentType.DoesNotExist:
            raise Http404 from None
        model = content_type.model_class()
        if model is None:
            raise Http404
        instance = get_object_or_404(model, pk=self.kwargs["pk"])
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
    def delivery(self) -> Delivery:
        # Looked up after the permission check (see ObjectDeliveriesView).
        return get_object_or_404(
            Delivery.objects.select_related("event", "event__actor"), pk=self.kwargs["pk"]
        )

    def get_page_title(self) -> str:
        return _("Delivery #%(id)s") % {"id": self.delivery.pk}

    def get_page_subtitle(self) -> str:
        return delivery_label(self.delivery)

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
        attempts = [
            {
                "attempt": attempt,
                "request_headers": redact_headers(attempt.request_headers),
                "response_headers": redact_headers(attempt.response_headers),
                "detail": pretty_json(attempt.detail) if attempt.detail else "",
            }
            for attempt in Attempt.objects.filter(delivery=delivery).order_by("-number")
        ]
        covered = delivery.covered_events()
        context.update(
            delivery=delivery,
            event=event,
            payload=pretty_json(delivery.payload),
            covered_events=covered if len(covered) > 1 else [],
            attempts=attempts,
            object_url=object_admin_url(event),
            object_deliveries_url=object_deliveries_url(event),
            can_redeliver=self.can_redeliver,
            status_classname=(
                "w-status--primary" if delivery.status == DeliveryStatus.DELIVERED else ""
            ),
        )
        return context


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
        return get_object_or_404(Delivery.objects.select_related("event"), pk=self.kwargs["pk"])

    def get_page_subtitle(self) -> str:
        return delivery_label(self.delivery)

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
            data=_log_data(self.delivery),
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
            data=_log_data(self.delivery),
        )
        messages.success(request, _("Delivery #%(id)s cancelled.") % {"id": self.delivery.pk})


def _log_data(delivery: Delivery) -> dict[str, Any]:
    return {
        "destination": delivery.destination,
        "event_id": delivery.event.event_id,
        "event_type": delivery.event.event_type,
        "object": delivery.event.object_repr,
    }


class BulkActionView(
    ForbiddenMixin, PermissionCheckedMixin, WagtailAdminTemplateMixin, TemplateView
):
    """Confirm (GET) and carry out (POST) an action on every matching delivery.

    The selection is the report's filters and search, from the query string, narrowed to the
    statuses the action applies to.
    """

    model = Delivery
    permission_required = "redeliver"
    template_name = "wagtail_publish_hooks/admin/confirm_action.html"
    header_icon = "resubmit"
    statuses: tuple[str, ...] = ()
    action_label: Any = ""
    log_action = ""

    def selection(self) -> QuerySet[Delivery]:
        base = Delivery.objects.filter(status__in=self.statuses)
        return filtered_deliveries(self.request, base)

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
        count = self.selection().count()
        context.update(
            action_url=self.request.get_full_path(),
            action_label=self.action_label if count else "",
            confirmation_message=self.get_confirmation_message(count),
            cancel_url=get_valid_next_url_from_request(self.request) or self.report_url(),
            next_url=get_valid_next_url_from_request(self.request),
            count=count,
        )
        return context

    def get_confirmation_message(self, count: int) -> str:
        raise NotImplementedError(f"{type(self).__name__} must describe its action")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
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
                    "event__object_repr",
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
