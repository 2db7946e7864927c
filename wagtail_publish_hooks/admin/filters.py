"""The deliveries report's filters: status, destination, event type, object and dates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters
from django import forms
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.admin.filters import ContentTypeFilter, DateRangePickerWidget, WagtailFilterSet

from .. import events
from ..conf import get_destinations
from ..models import Delivery, DeliveryStatus, DestinationState, Event
from ..receivers import registered_receivers

#: The "Created" shortcuts: value → (label, age). The dashboard links to ``24h``.
PERIODS = {
    "24h": (_("Last 24 hours"), timedelta(hours=24)),
    "7d": (_("Last 7 days"), timedelta(days=7)),
    "30d": (_("Last 30 days"), timedelta(days=30)),
}


def destination_choices() -> list[tuple[str, str]]:
    """Every destination a delivery can name: configured ones, durable Python receivers, and
    those deliveries or health records still mention (a destination since removed)."""
    aliases = set(get_destinations())
    aliases.update(receiver.name for receiver in registered_receivers() if receiver.durable)
    aliases.update(DestinationState.objects.values_list("alias", flat=True))
    aliases.update(Delivery.objects.order_by().values_list("destination", flat=True).distinct())
    return [(alias, alias) for alias in sorted(aliases)]


def event_type_choices() -> list[tuple[str, str]]:
    types = set(events.BUILTIN_EVENT_TYPES)
    types.update(Event.objects.order_by().values_list("event_type", flat=True).distinct())
    return [(event_type, event_type) for event_type in sorted(types)]


def event_content_types(request: Any) -> QuerySet[ContentType]:
    ids = Event.objects.order_by().values_list("content_type_id", flat=True).distinct()
    return ContentType.objects.filter(pk__in=ids).order_by("app_label", "model")


class DeliveryFilterSet(WagtailFilterSet):
    status = django_filters.ChoiceFilter(
        label=_("Status"),
        choices=DeliveryStatus.choices,
        empty_label=_("All"),
        widget=forms.RadioSelect,
    )
    destination = django_filters.ChoiceFilter(
        label=_("Destination"),
        choices=destination_choices,
        empty_label=_("All"),
    )
    event_type = django_filters.ChoiceFilter(
        label=_("Event type"),
        field_name="event__event_type",
        choices=event_type_choices,
        empty_label=_("All"),
    )
    content_type = ContentTypeFilter(
        label=_("Object type"),
        field_name="event__content_type",
        queryset=event_content_types,
    )
    object_id = django_filters.CharFilter(
        label=_("Object id"),
        field_name="event__object_id",
        help_text=_("The id of the page or object the event is about."),
    )
    period = django_filters.ChoiceFilter(
        label=_("Created"),
        choices=[(value, label) for value, (label, _age) in PERIODS.items()],
        empty_label=_("Any time"),
        method="filter_period",
        widget=forms.RadioSelect,
    )
    created_at = django_filters.DateFromToRangeFilter(
        label=_("Created between"), widget=DateRangePickerWidget
    )

    class Meta:
        model = Delivery
        fields: list[str] = []

    def filter_period(self, queryset: QuerySet[Delivery], name: str, value: str):
        period = PERIODS.get(value)
        if period is None:
            return queryset
        return queryset.filter(created_at__gte=timezone.now() - period[1])
