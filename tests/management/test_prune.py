"""``publish_hooks prune`` at any size: batches of set-based deletes, each bounded and short.

What goes is exactly what Django's cascade from the old, finished events would delete (their
deliveries, attempts and coalesced links, in both directions), except that an event merged into
a delivery still to be sent stays with it. The statements are counted and their rows bounded;
their plans use indexes. The speed is measured in ``benchmarks/prune_scale.py``.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta
from itertools import count

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from wagtail_publish_hooks import tasks, upkeep
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus, Event, Upkeep
from wagtail_publish_hooks.upkeep import PruneResult, old_finished_events, prune

pytestmark = pytest.mark.django_db

OLD = timedelta(days=40)
LINKS = Delivery.coalesced_events.through
_numbers = count(1)


def event(age: timedelta = OLD) -> Event:
    return Event.objects.create(
        event_type="page.published",
        object_repr=f"Page {next(_numbers)}",
        payload={},
        created_at=timezone.now() - age,
    )


def delivery(of: Event, status: str = DeliveryStatus.DELIVERED, attempts: int = 1) -> Delivery:
    made = Delivery.objects.create(
        event=of, destination=f"dest-{next(_numbers)}", status=status, attempts=attempts
    )
    Attempt.objects.bulk_create(
        Attempt(delivery=made, number=n, outcome="success") for n in range(1, attempts + 1)
    )
    return made


def pks(queryset) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


def command(*args: str) -> str:
    out = io.StringIO()
    call_command("publish_hooks", "prune", *args, stdout=out)
    return out.getvalue()


class Rowcounts:
    """The rows each ``DELETE`` of a block removed, by table."""

    def __init__(self) -> None:
        self.deletes: list[tuple[str, int]] = []

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith("DELETE"):
            table = re.search(r'DELETE FROM "?(\w+)', sql).group(1)
            self.deletes.append((table, context["cursor"].rowcount))
        return result


def test_exactly_the_old_finished_events_go_with_what_hangs_on_them():
    finished = event()
    finished_deliveries = [
        delivery(finished, DeliveryStatus.DELIVERED, attempts=2),
        delivery(finished, DeliveryStatus.FAILED, attempts=3),
        delivery(finished, DeliveryStatus.CANCELLED, attempts=0),
    ]
    no_deliveries = event()
    unfinished = event()
    delivery(unfinished, DeliveryStatus.DELIVERED)
    open_ones = [
        delivery(unfinished, status, attempts=1)
        for status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRYING)
    ]
    recent = event(age=timedelta(days=1))
    recent_delivery = delivery(recent)
    # Links, as a coalescing destination writes them: a kept delivery carrying an event that
    # goes (the link goes, as with Django's cascade), an old delivery that goes carrying a kept
    # event (likewise), and an old event merged into a delivery still to be sent (it stays).
    merged_old = event()
    delivery(merged_old)
    recent_delivery.coalesced_events.add(merged_old)
    finished_deliveries[0].coalesced_events.add(recent)
    waiting_old = event()
    delivery(waiting_old)
    still_open = delivery(event(age=timedelta(days=1)), DeliveryStatus.PENDING, attempts=0)
    still_open.coalesced_events.add(waiting_old)
    kept_events = {unfinished.pk, recent.pk, waiting_old.pk, still_open.event_id}

    assert pks(old_finished_events(30)) == {finished.pk, no_deliveries.pk, merged_old.pk}
    done = prune(30, pause=0)

    assert (done.events, done.deliveries, done.attempts, done.links) == (3, 4, 6, 2)
    assert done.finished
    assert pks(Event.objects.all()) == kept_events
    assert not Delivery.objects.filter(pk__in=[d.pk for d in finished_deliveries]).exists()
    assert {d.pk for d in open_ones} <= pks(Delivery.objects.all())
    assert Attempt.objects.filter(delivery__event=unfinished).count() == 4
    assert not Attempt.objects.filter(delivery__event_id=finished.pk).exists()
    assert list(recent_delivery.coalesced_events.all()) == []
    assert list(still_open.coalesced_events.all()) == [waiting_old]
    assert LINKS.objects.count() == 1
    # Nothing dangles: every delivery has its event, every attempt its delivery.
    assert not Delivery.objects.exclude(event_id__in=Event.objects.values("pk")).exists()
    assert not Attempt.objects.exclude(delivery_id__in=Delivery.objects.values("pk")).exists()


def test_batches_are_bounded_and_counted():
    for _ in range(30):
        delivery(event(), attempts=1)
    counts = Rowcounts()
    with connection.execute_wrapper(counts), CaptureQueriesContext(connection) as queries:
        done = prune(30, batch_size=10, pause=0)

    assert done.batches == 3 and done.events == 30 and done.attempts == 30
    assert not Event.objects.exists() and not Attempt.objects.exists()
    # The range of event ids, read once; then each batch: one selection, then the DELETEs
    # (deliveries, attempts, the links from either side, events), each of at most 10 rows. The
    # attempts, counted from the deliveries' counters, are deleted in statements of at most a
    # batch until one deletes fewer: here the first deleted 10, so a second finds none. The walk
    # ends at the last event id, with no selection finding nothing. The first statement of a
    # batch's transaction is a write: SQLite takes its write lock there, and never has to turn
    # a read lock into a write lock while a publish writes.
    # (Outside a transaction, on PostgreSQL, the batch's attempts are also read ahead: below.)
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    work = [s for s in statements if s in ("SELECT", "DELETE")]
    assert work == ["SELECT"] + (["SELECT"] + ["DELETE"] * 6) * 3
    tables = [table.rsplit("_", 1)[-1] for table, _ in counts.deletes]
    assert tables == ["delivery", "attempt", "attempt", "events", "events", "event"] * 3
    assert [rows for _, rows in counts.deletes] == [10, 10, 0, 0, 0, 10] * 3


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_batchs_attempts_are_read_before_its_transaction():
    # So that its DELETE finds their pages in memory rather than reading them from disk with
    # its locks held. On SQLite a read would hold the lock a publish's commit waits for: none.
    for _ in range(12):
        delivery(event(), attempts=2)
    seen: list[tuple[str, bool]] = []

    def record(execute, sql, params, many, context):
        seen.append((" ".join(sql.split()), connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        done = prune(30, batch_size=10, pause=0)

    assert (done.events, done.attempts) == (12, 24) and done.batches > 1
    reads = [n for n, (sql, _) in enumerate(seen) if "COUNT(duration_ms)" in sql]
    if connection.vendor == "postgresql":
        assert len(reads) == done.batches
    else:
        assert reads == []
    ids = re.compile(r"IN \(([\d, ]+)\)")
    for n in reads:
        sql, in_transaction = seen[n]
        assert not in_transaction
        assert "_attempt" in sql.split(" WHERE ")[0]
        # The next statement opens the batch: its deliveries' DELETE, of the same deliveries.
        following, in_transaction = seen[n + 1]
        assert following.startswith("DELETE") and "_delivery" in following.split(" WHERE ")[0]
        assert in_transaction
        assert ids.search(sql).group(1) == ids.search(following).group(1)

    # Inside a transaction of the caller's, the locks last until its end: no reading ahead.
    seen.clear()
    with transaction.atomic(), connection.execute_wrapper(record):
        for _ in range(3):
            delivery(event(), attempts=2)
        assert prune(30, batch_size=10, pause=0).attempts == 6
    assert seen and not [sql for sql, _ in seen if "COUNT(duration_ms)" in sql]


def test_an_event_with_more_rows_than_a_batch_goes_in_several_bounded_statements():
    big = event()
    delivery(big, attempts=25)
    for _ in range(3):
        delivery(event(), attempts=1)
    counts = Rowcounts()
    with connection.execute_wrapper(counts):
        done = prune(30, batch_size=10, pause=0)

    assert (done.events, done.attempts) == (4, 28)
    assert not Attempt.objects.exists()
    assert max(rows for _, rows in counts.deletes) <= 10
    assert sum(rows for table, rows in counts.deletes if table.endswith("_attempt")) == 28


def test_attempts_beyond_a_deliverys_counter_still_go_in_bounded_statements():
    # The selection sizes a batch by the deliveries' attempts counters, an estimate: the
    # statements deleting attempts are bounded whatever the rows turn out to be.
    old = event()
    made = delivery(old, attempts=0)
    Attempt.objects.bulk_create(
        Attempt(delivery=made, number=n, outcome="success") for n in range(1, 26)
    )
    counts = Rowcounts()
    with connection.execute_wrapper(counts):
        done = prune(30, batch_size=10, pause=0)

    assert (done.events, done.deliveries, done.attempts) == (1, 1, 25)
    assert not Attempt.objects.exists()
    attempts = [rows for table, rows in counts.deletes if table.endswith("_attempt")]
    assert attempts == [10, 10, 5]


def test_the_walk_crosses_kept_events_and_gaps_in_the_ids(monkeypatch):
    # Old events apart from each other, among recent ones and after a run of them longer than
    # the widest window of ids one selection reads: each window is walked, none is skipped.
    monkeypatch.setattr(upkeep, "PRUNE_WINDOW", 4)
    old = []
    for n in range(12):
        old.append(event())
        if n % 3 == 0:
            event(age=timedelta(days=1))
    recent = [event(age=timedelta(days=1)) for _ in range(15)]
    old += [event() for _ in range(3)]
    for made in old:
        delivery(made)

    done = prune(30, batch_size=2, pause=0)

    assert (done.events, done.deliveries) == (15, 15)
    assert not Event.objects.filter(pk__in=[e.pk for e in old]).exists()
    assert pks(Event.objects.all()) >= {e.pk for e in recent}
    assert Event.objects.count() == 4 + 15


def test_a_batch_grows_when_quick_and_shrinks_when_slow_within_its_bounds():
    size = upkeep._next_size
    target = upkeep.PRUNE_BATCH_SECONDS
    # Quick: at most twice as many rows, never more than the batch size asked for.
    assert size(200, rows=400, took=target / 100, most=2000) == 400
    assert size(1500, rows=3000, took=target / 100, most=2000) == 2000
    # Slow: the rows that fit in the time aimed at, at most halved, never below the least.
    assert size(1000, rows=2000, took=target * 2, most=2000) == 500
    assert size(1000, rows=2000, took=target * 1.25, most=2000) == 800
    assert size(60, rows=120, took=target * 100, most=2000) == upkeep.PRUNE_MIN_BATCH
    assert size(5, rows=10, took=target * 100, most=5) == 5
    assert size(200, rows=0, took=0.0, most=2000) == 400


def test_a_delivery_redelivered_after_the_selection_stays_with_its_event_and_attempts():
    old = event()
    gone = delivery(old)
    redelivered = delivery(old, attempts=2)
    with connection.cursor() as cursor:
        tables = upkeep._Tables(connection)
        cutoff = connection.ops.adapt_datetimefield_value(timezone.now() - timedelta(days=30))
        candidates, _, _ = upkeep._candidates(
            cursor, tables, after=0, until=old.pk, cutoff=cutoff, limit=10
        )
    assert [c.event for c in candidates] == [old.pk]
    Delivery.objects.filter(pk=redelivered.pk).redeliver()  # between selection and delete

    done = upkeep._prune_batch(connection, tables, candidates, 100)

    assert (done.events, done.deliveries, done.attempts) == (0, 1, 1)
    assert pks(Event.objects.all()) == {old.pk}
    assert pks(Delivery.objects.all()) == {redelivered.pk}
    assert Attempt.objects.filter(delivery=redelivered).count() == 2
    assert not Delivery.objects.filter(pk=gone.pk).exists()


def test_an_event_merged_into_a_delivery_redelivered_after_the_selection_stays():
    old = event()
    delivery(old)
    carrier = delivery(event(age=timedelta(days=1)))
    carrier.coalesced_events.add(old)
    with connection.cursor() as cursor:
        tables = upkeep._Tables(connection)
        cutoff = connection.ops.adapt_datetimefield_value(timezone.now() - timedelta(days=30))
        candidates, _, _ = upkeep._candidates(
            cursor, tables, after=0, until=old.pk, cutoff=cutoff, limit=10
        )
    assert [c.event for c in candidates] == [old.pk]
    Delivery.objects.filter(pk=carrier.pk).redeliver()

    done = upkeep._prune_batch(connection, tables, candidates, 100)

    # Its own delivery was finished and goes; the event stays with the delivery carrying it.
    assert (done.events, done.deliveries, done.links) == (0, 1, 0)
    assert list(carrier.coalesced_events.all()) == [old]


def test_the_prune_reads_and_deletes_through_indexes():
    for _ in range(5):
        old = event()
        delivery(old, attempts=2).coalesced_events.add(event())
    with CaptureQueriesContext(connection) as queries:
        prune(30, batch_size=4, pause=0)
    statements = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith(("SELECT", "DELETE"))
    ]
    assert statements
    big = ("_event", "_delivery", "_attempt")
    with connection.cursor() as cursor:
        for sql in statements:
            if connection.vendor == "postgresql":
                # A table this small is read whole; with that made dear, every read of a big
                # table must find an index to use.
                cursor.execute("SET enable_seqscan = off")
                cursor.execute("EXPLAIN " + sql)
                plan = [row[0] for row in cursor.fetchall()]
                scans = [m for line in plan for m in re.findall(r"Seq Scan on (\w+)", line)]
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + sql)
                plan = [str(row[-1]) for row in cursor.fetchall()]
                scans = [
                    line.split()[1]
                    for line in plan
                    if line.startswith("SCAN ") and " USING " not in line
                ]
            assert not [s for s in scans if s.endswith(big)], (sql, plan)
        if connection.vendor == "postgresql":
            cursor.execute("SET enable_seqscan = on")


def test_a_run_of_the_task_stops_in_time_and_the_next_goes_on_soon(settings, monkeypatch):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.WAGTAIL_PUBLISH_HOOKS = {"DESTINATIONS": {}, "RETENTION_DAYS": 30}
    for _ in range(3):
        delivery(event())
    assert prune(30, batch_size=1, pause=0, max_seconds=0) == PruneResult(
        events=1, deliveries=1, attempts=1, links=0, batches=1, finished=False
    )

    settings.WAGTAIL_PUBLISH_HOOKS = {**settings.WAGTAIL_PUBLISH_HOOKS, "MAX_RUN_SECONDS": 1e-9}
    monkeypatch.setattr(upkeep, "PRUNE_BATCH_SIZE", 1)
    tasks.ensure_upkeep(force=True)
    token = str(Upkeep.objects.get(name="prune").token)
    before = timezone.now()
    result = tasks.run_scheduled("prune", token)
    assert result["result"] == "1 event(s) deleted, more to delete"
    row = Upkeep.objects.get(name="prune")
    assert row.next_run_at < before + timedelta(seconds=upkeep.PRUNE_CONTINUE_AFTER + 5)
    assert Event.objects.count() == 1


def test_the_command_prunes_in_batches_and_says_so(settings):
    settings.WAGTAIL_PUBLISH_HOOKS = {"DESTINATIONS": {}, "RETENTION_DAYS": 30}
    for _ in range(4):
        delivery(event(), attempts=2)
    recent = event(age=timedelta(days=2))
    output = command("--batch-size", "4", "--pause", "0")
    assert "Deleted 4 event(s) older than 30 day(s)" in output
    assert "with their 4 deliveries and 8 attempts, in 2 batch(es)." in output
    assert pks(Event.objects.all()) == {recent.pk}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be between 1 and 100000."),
        (["--pause", "-1"], "--pause must be between 0 and 60 seconds."),
    ],
)
def test_the_command_refuses_a_batch_size_or_pause_out_of_bounds(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        command(*args)
