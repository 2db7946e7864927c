"""Redeliver and cancel: one delivery, or every delivery the report's filters select."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.generic import TemplateView
from wagtail.admin import messages
from wagtail.admin.utils import get_valid_next_url_from_request
from wagtail.admin.views.generic import WagtailAdminTemplateMixin
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin
from wagtail.log_actions import log

from ...delivery import cancel_deliveries, redeliver
from ...models import DUE_STATUSES, Delivery, DeliveryStatus
from ..permissions import ForbiddenMixin, ObjectAccess
from .audit import CANCEL, REDELIVER, delivery_label, log_data, log_delivery_actions
from .display import shown_label, url
from .selection import filtered_deliveries, find_instance_in, report_querystring

#: How many deliveries a bulk action updates per statement.
BULK_CHUNK = 500


class DeliveryActionView(
    ForbiddenMixin, PermissionCheckedMixin, WagtailAdminTemplateMixin, TemplateView
):
    """Confirm (GET) and carry out (POST) an action on one delivery."""

    model = Delivery
    permission_required = "redeliver"
    template_name = "wagtail_publish_hooks/admin/deliveries/confirm_action.html"
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
    template_name = "wagtail_publish_hooks/admin/deliveries/confirm_action.html"
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
