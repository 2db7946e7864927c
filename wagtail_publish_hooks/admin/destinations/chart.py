"""Each destination's attempts per hour by outcome over the last seven days, as inline SVG.

The counts come from :mod:`wagtail_publish_hooks.attempt_counts` (the hours that are over are
kept; two queries serve every destination on a screen); the chart is plain SVG drawn on the
server, with a text alternative giving the totals.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape  # Django's escape() costs more per call: it checks for lazy text

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ...attempt_counts import HOURS, attempts_per_hour
from ...models import AttemptOutcome

__all__ = ["HOURS", "HourlyOutcomes", "chart_svg", "hourly_outcomes"]

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
            for outcome, count in hour.items():
                total[outcome] += count
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


def hourly_outcomes(
    aliases: Iterable[str], *, now: datetime | None = None
) -> dict[str, HourlyOutcomes]:
    """The attempts of the last seven days per destination, hour and outcome: two queries
    whatever the number of destinations (see :mod:`wagtail_publish_hooks.attempt_counts`)."""
    aliases = list(aliases)
    if not aliases:
        return {}
    start, hours = attempts_per_hour(aliases, now=now)
    series = {alias: HourlyOutcomes(alias, start) for alias in aliases}
    for (destination, hour), counts in hours.items():
        index = int((hour - start).total_seconds() // 3600)
        if destination in series and 0 <= index < HOURS:
            bar = series[destination].hours[index]
            for outcome, count in counts.items():
                if count:
                    bar[outcome] = count  # each destination's hour comes once
    return series


def chart_svg(
    series: HourlyOutcomes, *, height: int = 32, bar_width: int = 2, hour_labels: bool = True
) -> SafeString:
    """A stacked bar per hour (successes, retries, failures), scaled to the busiest hour.

    With ``hour_labels``, each hour's bar says what it counts when pointed at; without (the
    destinations list, whose bars are 2 pixels wide), the bars of each outcome are one path,
    a screen of charts then costs a fraction of the time, and the chart's text alternative
    still gives the totals.
    """
    peak = max((sum(hour.values()) for hour in series.hours), default=0)
    width = HOURS * bar_width
    title_id = f"wph-chart-{hashlib.sha256(series.alias.encode()).hexdigest()[:12]}-{height}"
    bar_drawn = max(bar_width - 0.5, 0.5)
    draw = _labelled_bars if hour_labels else _bar_paths
    bars = draw(series, peak, height=height, bar_width=bar_width, bar_drawn=bar_drawn)
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


# Plain formatting rather than format_html per bar (a week has up to 500 of them, a screen 20
# charts or more): the numbers are ours, the colours constants, each label escaped.


def _labelled_bars(
    series: HourlyOutcomes, peak: int, *, height: int, bar_width: int, bar_drawn: float
) -> SafeString:
    outcomes = [(outcome, colour, str(outcome.label).lower()) for outcome, colour in OUTCOMES]
    rects = []
    for index, hour in enumerate(series.hours):
        if not hour:
            continue
        counts = [(hour.get(outcome, 0), colour, label) for outcome, colour, label in outcomes]
        if not any(count for count, _colour, _label in counts):
            continue
        at = series.start + timedelta(hours=index)
        title = escape(
            f"{at:%Y-%m-%d %H:00} UTC: "
            + ", ".join(f"{count} {label}" for count, _colour, label in counts if count)
        )
        bottom = float(height)
        x = index * bar_width
        rects.append(f"<g><title>{title}</title>")
        for count, colour, _label in counts:
            if not count:
                continue
            bar = height * count / peak
            bottom -= bar
            rects.append(
                f'<rect x="{x}" y="{bottom:.2f}" width="{bar_drawn}" height="{bar:.2f}" '
                f'style="fill: {colour}" />'
            )
        rects.append("</g>")
    return mark_safe("".join(rects))  # noqa: S308 (numbers, constant colours, escaped labels)


def _bar_paths(
    series: HourlyOutcomes, peak: int, *, height: int, bar_width: int, bar_drawn: float
) -> SafeString:
    segments: dict[str, list[str]] = {outcome: [] for outcome, _colour in OUTCOMES}
    for index, hour in enumerate(series.hours):
        if not hour:
            continue
        bottom = float(height)
        x = index * bar_width
        for outcome, _colour in OUTCOMES:
            count = hour.get(outcome)
            if not count:
                continue
            bar = height * count / peak
            bottom -= bar
            segments[outcome].append(f"M{x} {bottom:.2f}h{bar_drawn}v{bar:.2f}h-{bar_drawn}z")
    return mark_safe(  # noqa: S308 (numbers and constant colours)
        "".join(
            f'<path d="{"".join(segments[outcome])}" style="fill: {colour}" />'
            for outcome, colour in OUTCOMES
            if segments[outcome]
        )
    )
