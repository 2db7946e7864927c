"""One delivery: the event, the events it covers, and every attempt with what came back."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.views.generic import TemplateView
from wagtail.admin.views.generic import WagtailAdminTemplateMixin
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin
from wagtail.admin.widgets.button import HeaderButton
from wagtail.models import Page

from ...models import DUE_STATUSES, Attempt, Delivery, DeliveryStatus, Event
from ...redaction import headers_to_show
from ..permissions import ForbiddenMixin, ObjectAccess, can_redeliver
from .display import WITHHELD, pretty_json, shown_label, shown_title, url
from .selection import find_instance_in


class DeliveryDetailView(
    ForbiddenMixin, PermissionCheckedMixin, WagtailAdminTemplateMixin, TemplateView
):
    """One delivery: the event, the events it covers, and every attempt with what came back."""

    model = Delivery
    permission_required = "view"
    template_name = "wagtail_publish_hooks/admin/deliveries/detail.html"
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
                "request_headers": headers_to_show(attempt.request_headers),
                "response_headers": headers_to_show(attempt.response_headers),
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
