"""The destinations' attempts per hour and outcome over the last seven days, for their charts.

Counting them from the attempts means joining each attempt of the week to its delivery, a
quarter of a million rows on a busy site: too slow for a page. An hour's attempts no longer
change once every worker that could still record one has lost its claim (``LEASE_SECONDS`` after
the hour's end, plus a margin for clocks), so such an hour is counted once and kept
(:class:`~wagtail_publish_hooks.attempt_hours.AttemptHour`): by the sweep every minute, or by the
first chart that needs it. Each chart then reads the kept hours and counts only the last hour or
two from the attempts (``wph_attempt_started``).

Whatever the number of destinations, a chart costs two queries; three more (a transaction that
deletes the hours gone out of the window and writes the new ones) when hours are to be kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import DatabaseError, transaction
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from .conf import get_settings
from .models import Attempt, AttemptHour, AttemptOutcome

logger = logging.getLogger("wagtail_publish_hooks")

#: The hours a chart shows, the current one last.
HOURS = 7 * 24

#: Seconds added to ``LEASE_SECONDS`` before an hour is taken as over for good: clocks of the
#: workers and the web servers may differ a little.
CLOCK_MARGIN = 60

#: ``(destination, hour, outcome, count)``
Row = tuple[str, datetime, str, int]

#: The values of ``AttemptOutcome``, each a column of ``AttemptHour``, in the order
#: ``attempts_per_hour`` reads them.
OUTCOMES = (AttemptOutcome.SUCCESS.value, AttemptOutcome.RETRY.value, AttemptOutcome.FAILURE.value)


def window_start(now: datetime | None = None) -> datetime:
    """The first hour shown: the current hour is the last of the ``HOURS`` bars."""
    now = (now or timezone.now()).astimezone(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)


def settled_before(now: datetime) -> datetime:
    """The start of the first hour that may still get attempts: those before it are over."""
    lease = float(get_settings().LEASE_SECONDS)
    settled = now.astimezone(UTC) - timedelta(seconds=lease + CLOCK_MARGIN)
    return settled.replace(minute=0, second=0, microsecond=0)


def attempts_per_hour(
    aliases: Iterable[str], *, now: datetime | None = None
) -> tuple[datetime, dict[tuple[str, datetime], dict[str, int]]]:
    """The window's first hour, and the attempts to ``aliases`` since then by destination and
    hour: ``{(destination, hour): {outcome: count}}``. The kept hours are read, the missing ones
    counted (and kept), the last ones counted."""
    aliases = list(aliases)
    now = (now or timezone.now()).astimezone(UTC)
    start = window_start(now)
    boundary = max(start, settled_before(now))
    hours: dict[tuple[str, datetime], dict[str, int]] = {}
    marked: set[datetime] = set()
    kept = AttemptHour.objects.filter(
        hour__gte=start, hour__lt=boundary, destination__in=[*aliases, ""]
    ).values_list("destination", "hour", *OUTCOMES)
    for destination, hour, success, retry, failure in kept:
        if destination:
            hours[destination, hour] = {"success": success, "retry": retry, "failure": failure}
        else:
            marked.add(hour)
    missing = [hour for hour in _hours(start, boundary) if hour not in marked]
    if missing:
        counted = _count(missing[0], None)
        _keep(missing, counted, start)
        wanted, newly_kept = set(aliases), set(missing)
        counted = [
            row
            for row in counted
            if row[0] in wanted and (row[1] >= boundary or row[1] in newly_kept)
        ]
    else:
        counted = _count(boundary, aliases)
    for destination, hour, outcome, count in counted:
        counts = hours.setdefault((destination, hour), {})
        counts[outcome] = counts.get(outcome, 0) + count
    return start, hours


def keep_settled_hours(*, now: datetime | None = None) -> int:
    """Count and keep the hours of the window that are over and not kept yet (the sweep's
    share of the work); how many."""
    now = (now or timezone.now()).astimezone(UTC)
    start = window_start(now)
    boundary = max(start, settled_before(now))
    marked = set(
        AttemptHour.objects.filter(destination="", hour__gte=start, hour__lt=boundary).values_list(
            "hour", flat=True
        )
    )
    missing = [hour for hour in _hours(start, boundary) if hour not in marked]
    if missing:
        # Up to the boundary only: the hours after it are counted by each chart.
        _keep(missing, _count(missing[0], None, until=boundary), start)
    return len(missing)


def _hours(start: datetime, end: datetime) -> list[datetime]:
    return [start + timedelta(hours=n) for n in range(int((end - start).total_seconds()) // 3600)]


def _count(
    since: datetime, aliases: list[str] | None, *, until: datetime | None = None
) -> list[Row]:
    """The attempts started since ``since`` (to any destination when ``aliases`` is ``None``),
    per destination, hour and outcome: one query."""
    attempts = Attempt.objects.filter(started_at__gte=since)
    if until is not None:
        attempts = attempts.filter(started_at__lt=until)
    if aliases is not None:
        attempts = attempts.filter(delivery__destination__in=aliases)
    grouped = (
        attempts.annotate(hour=TruncHour("started_at", tzinfo=UTC))
        .values_list("delivery__destination", "hour", "outcome")
        .annotate(count=Count("pk"))
        .order_by()
    )
    return [
        (destination, hour.astimezone(UTC), outcome, n) for destination, hour, outcome, n in grouped
    ]


def _keep(hours: list[datetime], counted: list[Row], start: datetime) -> None:
    """Keep the counts of ``hours`` (every destination's, and a row marking each hour kept)
    and forget those older than the window. Never raises: a chart drawn from a database it may
    not write to (a replica) is still drawn, from the attempts."""
    wanted = set(hours)
    kept = {("", hour): AttemptHour(hour=hour, destination="") for hour in hours}
    for destination, hour, outcome, count in counted:
        if hour not in wanted or outcome not in OUTCOMES:
            continue
        row = kept.setdefault((destination, hour), AttemptHour(hour=hour, destination=destination))
        for each in (row, kept["", hour]):
            setattr(each, outcome, getattr(each, outcome) + count)
    objects = list(kept.values())
    try:
        with transaction.atomic():
            AttemptHour.objects.filter(hour__lt=start).delete()
            # Two processes keeping the same hour write the same counts: the first one stays.
            AttemptHour.objects.bulk_create(objects, ignore_conflicts=True, batch_size=500)
    except DatabaseError:
        logger.warning("Publish hooks could not keep the attempts per hour", exc_info=True)
