"""The package's periodic work: the sweep and the prune.

Both are plain functions (``publish_hooks sweep`` and ``prune`` call them). Where the task
backend can defer tasks, they also run as self-rescheduling tasks (``tasks.run_upkeep``, see
:func:`wagtail_publish_hooks.tasks.ensure_upkeep`), started by the worker's first delivery run,
so that no cron entry is needed. One ``Upkeep`` row per job holds the token of its one pending
run; scheduling is a conditional ``UPDATE`` of that token, so two processes that both find a job
missing start it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Exists, OuterRef

from .attempt_counts import keep_settled_hours
from .conf import get_settings
from .models import Attempt, Delivery, DeliveryStatus, Event, retention_cutoff

#: Seconds between two runs of each job.
INTERVALS = {"sweep": 60, "prune": 24 * 3600}

#: How long past its time a pending run may be before it is taken for lost and started again
#: (only when the task backend cannot say whether it is still queued).
GRACE = {"sweep": 300, "prune": 3600}

#: Seconds between two looks, by one process, at whether the jobs are pending.
ENSURE_EVERY = 60


@dataclass
class SweepResult:
    released: int
    due: int
    #: Whether a delivery run was enqueued for what is due (by the caller: see
    #: :func:`wagtail_publish_hooks.tasks.run_sweep`).
    enqueued: bool = False

    def __str__(self) -> str:
        return f"{self.released} lease(s) released, {self.due} due" + (
            ", run enqueued" if self.enqueued else ""
        )


def sweep() -> SweepResult:
    """Put deliveries whose worker died back in line, and count those due; keep the counts of
    the attempts of the hours that are over, for the destinations' charts."""
    released = Delivery.objects.release_expired_leases()
    keep_settled_hours()
    return SweepResult(released=released, due=Delivery.objects.due().count())


# -- The prune ----------------------------------------------------------------------------------

#: The most rows one statement of the prune deletes from each table (events, deliveries,
#: attempts, coalesced links): a batch is a run of old events, in id order, whose rows stay
#: within it, deleted in one short transaction.
PRUNE_BATCH_SIZE = 2000

#: Seconds one batch's transaction should take: the batch grows or shrinks (within
#: ``PRUNE_BATCH_SIZE`` rows per table) to the rows the last batches deleted in that time, so
#: that the locks a batch holds (SQLite's write lock, which a publish waits for) stay short on a
#: slow or loaded database as well as on a fast one.
PRUNE_BATCH_SECONDS = 0.05
#: The fewest rows per table a batch is shrunk to.
PRUNE_MIN_BATCH = 50

#: The most event ids one selection walks: a range of the primary key that no plan reads
#: otherwise than in order.
PRUNE_WINDOW = 4000

#: Seconds the prune waits between two batches, at least; and how many times as long as the
#: batch took, at least: so that it takes a share of the database (a tenth of one connection's
#: time) and leaves the rest to publishes and workers, however slow the machine.
PRUNE_PAUSE = 0.05
PRUNE_REST = 9.0

#: Seconds between a prune task run that stopped at ``MAX_RUN_SECONDS`` with old events left
#: and the run that goes on with them: a worker shared with deliveries is never held for long,
#: even by the first prune of a big table.
PRUNE_CONTINUE_AFTER = 10

FINAL_STATUSES = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)
#: The statuses of a delivery still to be sent: its event, and the events merged into it, stay.
OPEN_STATUSES = tuple(status for status in DeliveryStatus if status not in FINAL_STATUSES)


def old_finished_events(days: int):
    """Events older than ``days`` days that nothing still to be sent needs: none of their
    deliveries is open, and they were not merged into a delivery that is."""
    open_deliveries = Delivery.objects.filter(event=OuterRef("pk"), status__in=OPEN_STATUSES)
    merged_into_open = Delivery.coalesced_events.through.objects.filter(
        event=OuterRef("pk"), delivery__status__in=OPEN_STATUSES
    )
    return Event.objects.filter(created_at__lt=retention_cutoff(days)).exclude(
        Exists(open_deliveries) | Exists(merged_into_open)
    )


@dataclass
class PruneResult:
    """What a prune deleted, and whether it got to the end."""

    events: int = 0
    deliveries: int = 0
    attempts: int = 0
    links: int = 0
    batches: int = 0
    #: ``False`` when it stopped at ``max_seconds`` with old events left.
    finished: bool = True

    @property
    def rows(self) -> int:
        return self.events + self.deliveries + self.attempts + self.links

    def add(self, other: PruneResult) -> None:
        """Count ``other``'s rows and batches in this one's."""
        self.events += other.events
        self.deliveries += other.deliveries
        self.attempts += other.attempts
        self.links += other.links
        self.batches += other.batches

    def __str__(self) -> str:
        return f"{self.events} event(s) deleted" + ("" if self.finished else ", more to delete")


@dataclass
class _Candidate:
    event: int
    deliveries: list[int] = field(default_factory=list)
    #: The deliveries' ``attempts`` counters: what their attempts are expected to be (the
    #: statements deleting them are bounded whatever the rows turn out to be).
    attempts: int = 0


class _Tables:
    """The quoted names of the outbox's tables on ``connection``."""

    def __init__(self, connection: Any) -> None:
        quote = connection.ops.quote_name
        self.event = quote(Event._meta.db_table)
        self.delivery = quote(Delivery._meta.db_table)
        self.attempt = quote(Attempt._meta.db_table)
        self.link = quote(Delivery.coalesced_events.through._meta.db_table)


def _ints(ids: Iterable[int]) -> str:
    # Ids read from the tables themselves, written inline: no limit on bound parameters, and
    # int() makes anything else impossible.
    return ", ".join(str(int(pk)) for pk in ids)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _candidates(
    cursor: Any, t: _Tables, *, after: int, until: int, cutoff: Any, limit: int
) -> tuple[list[_Candidate], int, int]:
    """The prunable events among the first ``limit`` old events with an id in (``after``,
    ``until``], each with its deliveries; and how many old events were read, and the last one's
    id. A range of the primary key, walked in order (whatever share of the table is old, no plan
    sorts the old events first). What keeps an event is looked at per event through indexes:
    its deliveries' statuses come with them (the event index of the deliveries), and whether it
    was merged into a delivery still to be sent is a look-up by the event index of the links:
    no plan reads every delivery still to be sent, however many there are. Each delivery's
    attempts are its counter, not a count."""
    opened = [str(status) for status in OPEN_STATUSES]
    sql = f"""
        SELECT c.id, c.merged, d.id, d.attempts, d.status
        FROM (
            SELECT e.id, EXISTS (
                SELECT 1 FROM {t.link} m INNER JOIN {t.delivery} o ON o.id = m.delivery_id
                WHERE m.event_id = e.id AND o.status IN ({_marks(opened)})) AS merged
            FROM {t.event} e
            WHERE e.id > %s AND e.id <= %s AND e.created_at < %s
            ORDER BY e.id
            LIMIT %s
        ) c
        LEFT OUTER JOIN {t.delivery} d ON d.event_id = c.id
        ORDER BY c.id, d.id
    """  # noqa: S608 (the package's own table names; values are parameters)
    cursor.execute(sql, [*opened, after, until, cutoff, limit])
    found: dict[int, _Candidate] = {}
    kept: set[int] = set()
    for event, merged, delivery, attempts, status in cursor.fetchall():
        candidate = found.get(event)
        if candidate is None:
            candidate = found[event] = _Candidate(event)
        if merged or status in opened:
            kept.add(event)
        if delivery is not None:
            candidate.deliveries.append(delivery)
            candidate.attempts += attempts or 0
    read = list(found)
    return [c for c in found.values() if c.event not in kept], len(read), read[-1] if read else 0


def _fill(candidates: list[_Candidate], size: int) -> list[_Candidate]:
    """The longest run of ``candidates`` whose deliveries and expected attempts stay within
    ``size`` (at least one: an event with more rows than that is deleted by several
    statements)."""
    taken: list[_Candidate] = []
    deliveries = attempts = 0
    for candidate in candidates:
        deliveries += len(candidate.deliveries)
        attempts += candidate.attempts
        if taken and (len(taken) >= size or max(deliveries, attempts) > size):
            break
        taken.append(candidate)
    return taken


def _next_size(size: int, rows: int, took: float, *, most: int) -> int:
    """The rows per table of the next batch: as many as the last one's pace deletes in
    ``PRUNE_BATCH_SECONDS`` (``rows`` deleted in ``took`` seconds, all tables), at most twice
    ``size`` and at least half of it, within ``PRUNE_MIN_BATCH`` and ``most``."""
    if took <= 0 or rows <= 0:
        return min(most, size * 2)
    # The batch's size counts the rows of its largest table, about half of all its rows.
    fits = round(rows / 2 * PRUNE_BATCH_SECONDS / took)
    return max(min(PRUNE_MIN_BATCH, most), min(most, size * 2, max(fits, size // 2)))


def _delete(
    cursor: Any,
    table: str,
    column: str,
    ids: list[int],
    *,
    size: int,
    exact: bool = False,
    condition: str = "",
    params: Sequence[Any] = (),
) -> int:
    """Delete the rows of ``table`` whose ``column`` is in ``ids`` (and ``condition``): one
    statement when ``exact`` (``ids`` are the table's own, at most ``size``), else statements of
    at most ``size`` rows each, until one deletes fewer."""
    if not ids:
        return 0
    where = f"{column} IN ({_ints(ids)}){condition}"
    if exact:
        cursor.execute(f"DELETE FROM {table} WHERE {where}", params)  # noqa: S608
        return max(cursor.rowcount, 0)
    deleted = 0
    while True:
        cursor.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} LIMIT {size})",  # noqa: S608
            params,
        )
        deleted += max(cursor.rowcount, 0)
        if cursor.rowcount < size:
            return deleted


def _warm(connection: Any, t: _Tables, batch: list[_Candidate]) -> None:
    """PostgreSQL: read the batch's attempts before its transaction, through the index and
    the table's own pages that their ``DELETE`` goes through, so that it finds them in memory
    instead of reading them from disk with its row locks held. (The deliveries and events were
    read by the selection.) The read locks no row. Not on SQLite, where a read holds the lock a
    publish's commit waits for; nor inside a transaction of the caller's, where the batches'
    locks are held until its end anyway."""
    deliveries = [pk for candidate in batch for pk in candidate.deliveries]
    if connection.vendor != "postgresql" or connection.in_atomic_block or not deliveries:
        return
    with connection.cursor() as cursor:
        # A column no index holds: every row's page is read, not only the index.
        cursor.execute(
            f"SELECT COUNT(duration_ms) FROM {t.attempt} "  # noqa: S608
            f"WHERE delivery_id IN ({_ints(deliveries)})"
        )
        cursor.fetchone()


def _prune_batch(connection: Any, t: _Tables, batch: list[_Candidate], size: int) -> PruneResult:
    """Delete ``batch``'s events with their deliveries, attempts and links, in one transaction.

    The deliveries go first, on the condition that they are still final: on PostgreSQL that
    row-locks them, so a redelivery made meanwhile waits for the commit and then finds nothing,
    or has already won and keeps its delivery (and with it the event); on SQLite that first
    write takes the write lock at once (a transaction that read first could not take it while
    a publish writes). The foreign keys are checked at commit, so the order within is free."""
    deliveries = [pk for candidate in batch for pk in candidate.deliveries]
    events = [candidate.event for candidate in batch]
    final = [str(status) for status in FINAL_STATUSES]
    done = PruneResult(batches=1)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        done.deliveries = _delete(
            cursor,
            t.delivery,
            "id",
            deliveries,
            size=size,
            exact=len(deliveries) <= size,
            condition=f" AND status IN ({_marks(final)})",
            params=final,
        )
        if done.deliveries < len(deliveries):  # redelivered meanwhile: it stays
            ids = _ints(deliveries)
            cursor.execute(f"SELECT id, event_id FROM {t.delivery} WHERE id IN ({ids})")  # noqa: S608
            kept = cursor.fetchall()
            deliveries = sorted(set(deliveries) - {pk for pk, _ in kept})
            events = sorted(set(events) - {event for _, event in kept})
        done.attempts = _delete(cursor, t.attempt, "delivery_id", deliveries, size=size)
        done.links = _delete(cursor, t.link, "delivery_id", deliveries, size=size)
        # An event that something still needs after all (a delivery recorded for it, or one it
        # was merged into redelivered, since the selection) stays, with its links.
        opened = [str(status) for status in OPEN_STATUSES]
        for table, column in ((t.link, "event_id"), (t.event, "id")):
            unneeded = f"""
                AND NOT EXISTS (
                    SELECT 1 FROM {t.delivery} o WHERE o.event_id = {table}.{column})
                AND NOT EXISTS (
                    SELECT 1 FROM {t.link} m INNER JOIN {t.delivery} o ON o.id = m.delivery_id
                    WHERE m.event_id = {table}.{column} AND o.status IN ({_marks(opened)}))
            """  # noqa: S608
            deleted = _delete(
                cursor,
                table,
                column,
                events,
                size=size,
                exact=table == t.event and len(events) <= size,
                condition=unneeded,
                params=opened,
            )
            if table == t.link:
                done.links += deleted
            else:
                done.events = deleted
    return done


def prune(
    days: int,
    *,
    batch_size: int = PRUNE_BATCH_SIZE,
    pause: float = PRUNE_PAUSE,
    max_seconds: float | None = None,
    progress: Callable[[PruneResult], None] | None = None,
    using: str | None = None,
) -> PruneResult:
    """Delete finished events older than ``days`` days (:func:`old_finished_events`), with
    their deliveries, attempts and coalesced links, in batches of at most ``batch_size`` rows
    per table (fewer when that many take longer than ``PRUNE_BATCH_SECONDS``), each in its own
    short transaction, ``pause`` seconds apart at least (``PRUNE_REST`` times the batch's time).

    Set-based ``DELETE``\\ s by primary key: no row is loaded into Python and no delete signal
    is sent. A link from a delivery that stays to an event that goes is removed, as Django's
    cascade would. ``max_seconds``: stop after that long (``finished`` is then ``False``)."""
    most = max(1, int(batch_size))
    connection = connections[using or router.db_for_write(Event)]
    t = _Tables(connection)
    cutoff = connection.ops.adapt_datetimefield_value(retention_cutoff(days))
    began = time.monotonic()
    total = PruneResult()
    with connection.cursor() as cursor:
        # The ids the old events lie between (the newest old one is looked for from the top of
        # the primary key down, through the recent events only).
        cursor.execute(
            f"SELECT MIN(id), MAX(id) FROM {t.event} WHERE created_at < %s",  # noqa: S608
            [cutoff],
        )
        first, last = cursor.fetchone()
    if first is None:
        return total
    # The walk: windows of ids, (after, after + span]; a window with fewer old events than
    # asked for is done, and the next one is wider.
    after, size = first - 1, min(most, 200)
    limit, span = size, min(size * 2, PRUNE_WINDOW)
    while after < last:
        started = time.monotonic()  # the rest is measured on the selection and the batch
        until = min(last, after + span)
        with connection.cursor() as cursor:
            candidates, read, last_read = _candidates(
                cursor, t, after=after, until=until, cutoff=cutoff, limit=limit
            )
        batch = _fill(candidates, size)
        if len(batch) < len(candidates):
            after = batch[-1].event
        elif read == limit:
            after = last_read
        else:
            after, span = until, min(span * 2, PRUNE_WINDOW)  # the window is done
        done = None
        if batch:
            _warm(connection, t, batch)
            done = _prune_batch(connection, t, batch, size)
        took = time.monotonic() - started  # the selection and the batch, not the progress
        if done is not None:
            total.add(done)
            size = _next_size(size, done.rows, took, most=most)
            # Ask next time for about as many events as fit in the next batch at this one's
            # density.
            rows = max(sum(len(c.deliveries) for c in batch), sum(c.attempts for c in batch), 1)
            limit = max(1, min(size, len(batch) * size * 5 // (rows * 4) + 1))
            if progress is not None:
                progress(total)
        if max_seconds is not None and time.monotonic() - began >= max_seconds:
            total.finished = after >= last
            return total
        if pause > 0 and after < last:
            # A read of a window with nothing to delete rests as well, as long as it took.
            time.sleep(max(pause, took * PRUNE_REST) if batch else took * PRUNE_REST)
    return total


def prune_now() -> PruneResult | str:
    """The prune of ``RETENTION_DAYS``, as the upkeep task runs it, for at most
    ``MAX_RUN_SECONDS``: what it did, or a short text saying why it did nothing."""
    settings = get_settings()
    days = settings.RETENTION_DAYS
    if not isinstance(days, int) or days < 0:
        return "skipped: RETENTION_DAYS is not set"
    return prune(days, batch_size=PRUNE_BATCH_SIZE, max_seconds=settings.MAX_RUN_SECONDS)
