"""Each destination's attempts per hour by outcome over the last seven days, as inline SVG.

One aggregate query (``TruncHour`` over ``Attempt``) serves every destination on a screen; the
chart is plain SVG drawn on the server, with a text alternative giving the totals.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ...models import Attempt, AttemptOutcome

HOURS = 7 * 24

#: Bottom to top in each bar, with the colours of Wagtail's own status tokens.
OUTCOMES = (
    (AttemptOutcome.SUCCESS, "var(--w-color-positive-100, #1b8666)"),
    (AttemptOutcome.RETRY, "var(--w-color-warning-100, #faa500)"),
    (AttemptOutcome.FAILURE, "var(--w-color-critical-200, #cd4444)"),
)


@dataclass
class HourlyOutcomes:
    """A destination's attempts: ``hours[i]`` counts the outcomes of the i-th hour."""

    alias: str
    start: datetime
    hours: list[Counter[str]] = field(default_factory=lambda: [Counter() for _ in range(HOURS)])

    @property
    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for hour in self.hours:
            total.update(hour)
        return total

    def summary(self) -> str:
        """The chart's text alternative: the totals of the seven days."""
        totals = self.totals
        attempts = sum(totals.values())
        if not attempts:
            return _("No attempts to %(alias)s in the last 7 days.") % {"alias": self.alias}
        return ngettext(
            "%(count)s attempt to %(alias)s in the last 7 days: %(success)s succeeded, "
            "%(retry)s will be retried, %(failure)s failed.",
            "%(count)s attempts to %(alias)s in the last 7 days: %(success)s succeeded, "
            "%(retry)s will be retried, %(failure)s failed.",
            attempts,
        ) % {
            "count": attempts,
            "alias": self.alias,
            "success": totals[AttemptOutcome.SUCCESS],
            "retry": totals[AttemptOutcome.RETRY],
            "failure": totals[AttemptOutcome.FAILURE],
        }


def window_start(now: datetime | None = None) -> datetime:
    """The first hour shown: the current hour is the last of the ``HOURS`` bars."""
    now = (now or timezone.now()).astimezone(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)


def hourly_outcomes(
    aliases: Iterable[str], *, now: datetime | None = None
) -> dict[str, HourlyOutcomes]:
    """The attempts of the last seven days per destination, hour and outcome: one query."""
    aliases = list(aliases)
    start = window_start(now)
    series = {alias: HourlyOutcomes(alias, start) for alias in aliases}
    if not aliases:
        return series
    rows = (
        Attempt.objects.filter(started_at__gte=start, delivery__destination__in=aliases)
        .annotate(hour=TruncHour("started_at", tzinfo=UTC))
        .values("delivery__destination", "hour", "outcome")
        .annotate(count=Count("pk"))
        .order_by()
    )
    for row in rows:
        index = int((row["hour"].astimezone(UTC) - start).total_seconds() // 3600)
        if 0 <= index < HOURS:
            series[row["delivery__destination"]].hours[index][row["outcome"]] += row["count"]
    return series


def chart_svg(series: HourlyOutcomes, *, height: int = 32, bar_width: int = 2) -> SafeString:
    """A stacked bar per hour (successes, retries, failures), scaled to the busiest hour."""
    peak = max((sum(hour.values()) for hour in series.hours), default=0)
    width = HOURS * bar_width
    title_id = f"wph-chart-{hashlib.sha256(series.alias.encode()).hexdigest()[:12]}-{height}"
    rects = []
    for index, hour in enumerate(series.hours):
        total = sum(hour.values())
        if not total:
            continue
        at = series.start + timedelta(hours=index)
        label = ", ".join(
            f"{hour[outcome]} {outcome.label.lower()}"
            for outcome, _colour in OUTCOMES
            if hour[outcome]
        )
        bottom = float(height)
        for outcome, colour in OUTCOMES:
            if not hour[outcome]:
                continue
            bar = height * hour[outcome] / peak
            bottom -= bar
            rects.append(
                (
                    index * bar_width,
                    f"{bottom:.2f}",
                    max(bar_width - 0.5, 0.5),
                    f"{bar:.2f}",
                    colour,
                    f"{at:%Y-%m-%d %H:00} UTC: {label}",
                )
            )
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" style="fill: {}"><title>{}</title></rect>',
        rects,
    )
    return format_html(
        '<svg class="wph-chart" role="img" aria-labelledby="{}" width="{}" height="{}" '
        'viewBox="0 0 {} {}" xmlns="http://www.w3.org/2000/svg" data-attempts="{}">'
        '<title id="{}">{}</title>'
        '<line x1="0" y1="{}" x2="{}" y2="{}" style="stroke: var(--w-color-border-furniture, '
        '#e0e0e0)" />{}</svg>',
        title_id,
        width,
        height,
        width,
        height,
        sum(series.totals.values()),
        title_id,
        series.summary(),
        height - 0.5,
        width,
        height - 0.5,
        bars,
    )
