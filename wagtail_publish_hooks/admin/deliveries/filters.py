"""The deliveries report's filters: status, destination, event type, object and dates.

Their choices come from the configuration, never from the delivery or event tables: listing the
distinct values of a large table on every load would make the report as slow as the table is big.

- Destinations: those configured (settings and admin-managed) and the durable Python receivers;
  watching's fan-out (``watchers``) and "Watchers' notifications" (every ``watch:<user id>``;
  one user's by its name in the URL); "Removed destinations" finds the deliveries to any other
  name (a destination since removed).
  A name that is not configured is still accepted when it has the shape of an alias
  (:data:`FREE_ALIAS`), so that links to a removed destination (from the dashboard, a bookmark)
  keep working.
- Event types: the built-in ones and those named by a destination's ``EVENTS`` or a receiver's
  ``@on``; any other well-formed type name (``shop.order_shipped``) is accepted from the URL.
- Object types: page models, snippet models and the models a destination or receiver names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import django_filters
import django_filters.fields
from django import forms
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import connections, models, router
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.admin.filters import ContentTypeFilter, DateRangePickerWidget, WagtailFilterSet

from ...conf import WATCH_PREFIX, WATCHERS_ALIAS
from ...events import BUILTIN_EVENT_TYPES
from ...models import Delivery, DeliveryStatus
from ...receivers import registered_receivers
from ...registry import get_destinations
from ..permissions import page_models

#: The "Created" shortcuts: value → (label, age). The dashboard links to ``24h``.
PERIODS = {
    "24h": (_("Last 24 hours"), timedelta(hours=24)),
    "7d": (_("Last 7 days"), timedelta(days=7)),
    "30d": (_("Last 30 days"), timedelta(days=30)),
}

#: The destination choice that finds deliveries to destinations no longer configured.
REMOVED = "-removed"
#: The destination choice that finds every user's watching notifications (``watch:<user id>``).
WATCH_NOTIFICATIONS = "-watch"

#: A destination name accepted from the URL although not configured (a removed destination):
#: letters, digits and ``_ . : @ / + -`` and spaces, as aliases are written, up to the column's
#: 100 characters.
FREE_ALIAS = re.compile(r"[\w.:@/+ -]{1,100}")
#: An event type name accepted from the URL although not configured: dotted, lowercase.
FREE_EVENT_TYPE = re.compile(r"[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)+")


def _is_pattern(value: Any) -> bool:
    return not isinstance(value, str) or "*" in value


def configured_aliases() -> list[str]:
    aliases = set(get_destinations())
    aliases.update(receiver.name for receiver in registered_receivers() if receiver.durable)
    return sorted(aliases)


def destination_choices() -> list[tuple[str, str]]:
    return [
        *((alias, alias) for alias in configured_aliases()),
        (WATCHERS_ALIAS, str(_("Watchers (the fan-out)"))),
        (WATCH_NOTIFICATIONS, str(_("Watchers' notifications"))),
        (REMOVED, str(_("Removed destinations"))),
    ]


def event_type_choices() -> list[tuple[str, str]]:
    types = set(BUILTIN_EVENT_TYPES)
    for destination in get_destinations().values():
        types.update(name for name in destination.events or () if not _is_pattern(name))
    for receiver in registered_receivers():
        types.update(name for name in receiver.events if not _is_pattern(name))
    return [(event_type, event_type) for event_type in sorted(types)]


def _named_models(specs: Iterable[Any]) -> list[type[models.Model]]:
    found = []
    for spec in specs:
        model = spec
        if isinstance(spec, str):
            try:
                model = apps.get_model(spec)
            except (LookupError, ValueError):
                continue  # the system checks report it; here it names nothing
        if isinstance(model, type) and issubclass(model, models.Model):
            found.append(model)
    return found


def event_models() -> list[type[models.Model]]:
    """The models the package records events for: pages, snippets, and those named in the
    configuration (a destination's ``MODELS``, a receiver's models)."""
    from wagtail.snippets.models import get_snippet_models

    found = {*page_models(), *get_snippet_models()}
    for destination in get_destinations().values():
        found.update(_named_models(destination.models or ()))
    for receiver in registered_receivers():
        found.update(_named_models(receiver.models or ()))
    return sorted(found, key=lambda model: model._meta.label_lower)


def filterable_content_type_ids() -> set[int]:
    """The content types of :func:`event_models`, the "Object type" filter's choices."""
    # get_for_models() answers from Django's content type cache once it is warm.
    content_types = ContentType.objects.get_for_models(*event_models(), for_concrete_models=False)
    return {content_type.pk for content_type in content_types.values()}


def event_content_types(request: Any) -> QuerySet[ContentType]:
    ids = sorted(filterable_content_type_ids())
    return ContentType.objects.filter(pk__in=ids).order_by("app_label", "model")


def recorded_destinations() -> list[str]:
    """The distinct destination names of the deliveries table, read by hopping through the
    ``(destination, created_at)`` index (one probe per name) rather than reading every row: the
    "Removed destinations" and "Watchers' notifications" choices filter by these names, which
    an index serves, where a ``NOT IN`` or a ``LIKE 'watch:%'`` would read the whole table."""
    connection = connections[router.db_for_read(Delivery)]
    name = connection.ops.quote_name(Delivery._meta.db_table)
    column = connection.ops.quote_name("destination")
    sql = (
        f"WITH RECURSIVE names(value) AS ("  # noqa: S608 (the model's own table and column)
        f"SELECT MIN({column}) FROM {name} "
        f"UNION ALL SELECT (SELECT MIN({column}) FROM {name} WHERE {column} > names.value) "
        f"FROM names WHERE names.value IS NOT NULL) "
        f"SELECT value FROM names WHERE value IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


class OpenChoiceField(django_filters.fields.ChoiceField):
    """A choice among the configured values, or any other value of a safe shape."""

    def __init__(self, *args: Any, free_value: re.Pattern[str], **kwargs: Any) -> None:
        self.free_value = free_value
        super().__init__(*args, **kwargs)

    def valid_value(self, value: Any) -> bool:
        return super().valid_value(value) or bool(self.free_value.fullmatch(str(value)))


class OpenChoiceFilter(django_filters.ChoiceFilter):
    field_class = OpenChoiceField


class DeliveryFilterSet(WagtailFilterSet):
    status = django_filters.ChoiceFilter(
        label=_("Status"),
        choices=DeliveryStatus.choices,
        empty_label=_("All"),
        widget=forms.RadioSelect,
    )
    destination = OpenChoiceFilter(
        label=_("Destination"),
        choices=destination_choices,
        empty_label=_("All"),
        free_value=FREE_ALIAS,
        method="filter_destination",
    )
    event_type = OpenChoiceFilter(
        label=_("Event type"),
        field_name="event__event_type",
        choices=event_type_choices,
        empty_label=_("All"),
        free_value=FREE_EVENT_TYPE,
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A value taken from the URL rather than the list (a removed destination) stays shown
        # as selected.
        for name in ("destination", "event_type"):
            value = self.data.get(name) if self.data is not None else None
            field = self.form.fields[name]
            if (
                value
                and not forms.ChoiceField.valid_value(field, value)
                and field.valid_value(value)
            ):
                field.choices = [*field.choices, (value, value)]

    def filter_destination(self, queryset: QuerySet[Delivery], name: str, value: str):
        if value == REMOVED:
            configured = {*configured_aliases(), WATCHERS_ALIAS}
            removed = [
                name
                for name in recorded_destinations()
                if name not in configured and not name.startswith(WATCH_PREFIX)
            ]
            return queryset.filter(destination__in=removed)
        if value == WATCH_NOTIFICATIONS:
            watch = [name for name in recorded_destinations() if name.startswith(WATCH_PREFIX)]
            return queryset.filter(destination__in=watch)
        return queryset.filter(destination=value)

    def filter_period(self, queryset: QuerySet[Delivery], name: str, value: str):
        period = PERIODS.get(value)
        if period is None:
            return queryset
        return queryset.filter(created_at__gte=timezone.now() - period[1])

    def unknown_parameters(self, allowed: Iterable[str] = ()) -> list[str]:
        """The query parameters that are none of this filter set's fields (nor ``allowed``),
        and those given more than once: a bulk action refuses to guess what they meant."""
        known = set(allowed)
        for name, field in self.form.fields.items():
            widget = field.widget
            if hasattr(widget, "suffixed"):  # django-filter's: created_at_from, created_at_to
                known.update(widget.suffixed(name, suffix) for suffix in widget.suffixes)
            elif isinstance(widget, forms.MultiWidget):
                known.update(f"{name}{suffix}" for suffix in widget.widgets_names)  # type: ignore[attr-defined]
            else:
                known.add(name)
        data = self.data
        problems = []
        for key in data or ():
            values = data.getlist(key) if hasattr(data, "getlist") else [data[key]]
            if key not in known or len(values) > 1:
                problems.append(key)
        return sorted(problems)


class ObjectDeliveryFilterSet(DeliveryFilterSet):
    """An object's deliveries' filters: all of the report's but the object type and the object
    id, which the view fixes (another value would only hide its rows)."""

    content_type = None  # type: ignore[assignment]
    object_id = None  # type: ignore[assignment]
