"""The deliveries listings' cells, rendered by Wagtail's own cell templates once per listing and
filled in per row.

A listing shows 50 rows of 8 cells; rendering each cell's template (and, in the first cell, a
"More" dropdown component of up to three buttons) took most of a request's time. Here a column
renders its template once for each shape of cell it shows (a status tag's colour, the actions a
delivery's status allows) with holes where a row's values go, and each row fills the holes with
its values, escaped as the template would have escaped them. The markup, the links and the
labels are Wagtail's; a date is the one cell written here, as Wagtail's ``human_readable_date``
writes it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.templatetags.l10n import unlocalize
from django.utils import timezone
from django.utils.formats import date_format, get_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst
from django.utils.timezone import is_aware, localtime
from wagtail.admin.templatetags.wagtailadmin_tags import timesince_simple
from wagtail.admin.ui.tables import (
    ButtonsColumnMixin,
    Column,
    DateColumn,
    NumberColumn,
    StatusTagColumn,
    TitleColumn,
)

#: Drawn afresh by each process, so that no request can guess them: a stamp may repeat text
#: the request chose (a ``next`` URL with its query string), which must never become a hole.
_TOKEN = secrets.token_hex(12)
#: A stand-in primary key for the rows' URLs in a stamp: reversed like a real one, then made a
#: hole. Matched only as a whole path segment.
STAND_IN_PK = 2**62 + secrets.randbelow(2**61)
_HOLES = re.compile(rf"!hole-{_TOKEN}-(\d)!")


def hole(number: int) -> str:
    """A place in a stamp for a row's value: survives HTML escaping, and holds this process's
    unguessable token."""
    return f"!hole-{_TOKEN}-{number}!"


class Stamp:
    """A cell's HTML with holes, filled per row with values already escaped for HTML. Filled in
    one pass: a value that looks like a hole stays as it is."""

    def __init__(self, html: str) -> None:
        self.html = html.replace(f"/{STAND_IN_PK}/", f"/{hole(0)}/")

    def fill(self, values: Sequence[str]) -> SafeString:
        return mark_safe(_HOLES.sub(lambda match: values[int(match[1])], self.html))  # noqa: S308 (Wagtail's markup, escaped values)


def shown(value: Any) -> str:
    """``value`` as Wagtail's ``cell.html`` shows it: numbers unlocalized, ``None`` as nothing,
    escaped."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = unlocalize(value)
    return str(conditional_escape(value))


class StampedColumn(Column):
    """A column whose cells are its template rendered once per :meth:`shape` and filled per
    row."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stamps: dict[Any, Stamp] = {}

    def shape(self, instance: Any) -> Any:
        """What, besides the values filled in, makes two cells' markup differ."""
        return None

    def values(self, instance: Any) -> list[str]:
        """The row's values for the holes, escaped: the cell's value by default."""
        return [shown(self.displayed(self.get_value(instance)))]

    def displayed(self, value: Any) -> Any:
        if value is not None and not str(value).strip():
            return self.empty_value_display
        return value

    def stamp_context(self, shape: Any, parent_context: Any) -> dict[str, Any]:
        return {
            "instance": None,
            "column": self,
            "row": parent_context.get("row"),
            "table": parent_context.get("table"),
            "request": parent_context.get("request"),
            "raw_value": hole(0),
            "value": hole(0),
        }

    def stamp(self, shape: Any, parent_context: Any) -> Stamp:
        if shape not in self._stamps:
            context = self.stamp_context(shape, parent_context)
            self._stamps[shape] = Stamp(self.cell_template.render(context))
        return self._stamps[shape]

    def render_cell_html(self, instance: Any, parent_context: Any) -> SafeString:
        return self.stamp(self.shape(instance), parent_context).fill(self.values(instance))


class TextColumn(StampedColumn):
    """Wagtail's plain column."""


class CountColumn(StampedColumn, NumberColumn):
    """Wagtail's number column (grouped digits)."""

    def values(self, instance: Any) -> list[str]:
        return [str(conditional_escape(intcomma(self.get_value(instance))))]


class LabelColumn(StampedColumn, StatusTagColumn):
    """A status tag, "primary" for the rows ``primary`` says, showing ``labels[value]``."""

    def __init__(
        self, name: str, *, labels: Callable[[], Mapping[Any, Any]], **kwargs: Any
    ) -> None:
        super().__init__(name, **kwargs)
        self._labels_of = labels
        self._labels: dict[Any, str] | None = None

    def get_value(self, instance: Any) -> Any:
        if self._labels is None:
            self._labels = {key: str(label) for key, label in self._labels_of().items()}
        value = super().get_value(instance)
        return self._labels.get(value, value)

    def shape(self, instance: Any) -> Any:
        return bool(self.get_primary(instance))

    def stamp_context(self, shape: Any, parent_context: Any) -> dict[str, Any]:
        return {**super().stamp_context(shape, parent_context), "primary": shape}


class HumanDateColumn(DateColumn):
    """Wagtail's date column: the time since, the date and time in a tooltip."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._now = timezone.now()
        # "5 minutes ago" by whole minutes since: a listing's rows share a few.
        self._since: dict[int, str] = {}

    def time_since(self, value: datetime) -> str:
        elapsed = self._now - value
        if not timedelta(0) <= elapsed < timedelta(days=28):
            # Months and years depend on the calendar, not only on the time elapsed.
            return capfirst(timesince_simple(value))
        minutes = int(elapsed.total_seconds()) // 60
        if minutes not in self._since:
            self._since[minutes] = capfirst(timesince_simple(value))
        return self._since[minutes]

    def render_cell_html(self, instance: Any, parent_context: Any) -> SafeString:
        value = self.get_value(instance)
        classname = format_html(' class="{}"', self.classname) if self.classname else ""
        if not value:
            return format_html("<td{}></td>", classname)
        # As a template shows it: in the current time zone.
        local = localtime(value) if settings.USE_TZ and is_aware(value) else value
        return format_html(
            '<td{}><button type="button" class="w-human-readable-date"'
            ' data-controller="w-tooltip" data-w-tooltip-content-value="{}"'
            ' data-w-tooltip-placement-value="top">'
            '<time class="w-human-readable-date__date" datetime="{}">{}</time></button></td>',
            classname,
            date_format(local, get_format("DATETIME_FORMAT") or "N j, Y, P"),
            local.isoformat(),  # the "c" format
            self.time_since(value),
        )


class _StandIn:
    """A delivery as a stamp sees it: the stand-in key, a status, holes for its title and
    name."""

    def __init__(self, status: Any) -> None:
        self.pk = self.id = STAND_IN_PK
        self.status = status

    def __str__(self) -> str:
        return hole(2)


class ActionsTitleColumn(StampedColumn, ButtonsColumnMixin, TitleColumn):
    """The delivery's event type linking to it, with its "More" actions dropdown (the buttons
    ``get_buttons`` gives, which depend on the delivery's status only)."""

    def __init__(self, name: str, *, buttons: Callable[[Any], list[Any]], **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self._buttons = buttons

    def get_buttons(self, instance: Any, parent_context: Any) -> list[Any]:
        return self._buttons(instance)

    def shape(self, instance: Any) -> Any:
        return instance.status

    def values(self, instance: Any) -> list[str]:
        title = self.displayed(self.get_value(instance))
        return [str(instance.pk), shown(title), str(conditional_escape(str(instance)))]

    def stamp(self, shape: Any, parent_context: Any) -> Stamp:
        if shape not in self._stamps:
            stand_in = _StandIn(shape)
            context = self.get_cell_context_data(stand_in, parent_context)
            context["value"] = context["raw_value"] = hole(1)
            self._stamps[shape] = Stamp(self.cell_template.render(context))
        return self._stamps[shape]
