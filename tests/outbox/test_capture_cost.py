"""What capture costs a publish: its statements do not depend on the number of destinations, and
every statement that reads or updates the outbox's tables can be served by an index (so that it
does not grow with history)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import WEBHOOK
from tests.testapp.models import BlogPage
from wagtail_publish_hooks.bulk_insert import can_insert_rows, insert_rows
from wagtail_publish_hooks.models import Delivery, DeliveryStatus, Event
from wagtail_publish_hooks.outbox import insert_deliveries

pytestmark = pytest.mark.django_db(transaction=True)

BUILD_HOOK = "wagtail_publish_hooks.backends.build_hook.BuildHookBackend"
WINDOW = 600
BIG_TABLES = r"wagtail_publish_hooks_(delivery|event|attempt)\w*"


def destinations(httpserver, count: int) -> dict:
    """``count`` destinations, one of them a build hook that merges events."""
    hooks = {
        "build": {
            "BACKEND": BUILD_HOOK,
            "OPTIONS": {"URL": httpserver.url_for("/build"), "COALESCE_SECONDS": WINDOW},
        }
    }
    hooks.update(
        {
            f"d{n}": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for(f"/{n}")}}
            for n in range(count - 1)
        }
    )
    return hooks


@pytest.fixture
def publish_with(configure, httpserver, blog_index, settings):
    """Publish a new page with ``count`` destinations; the statements of the publish."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

    def publish(count: int, slug: str) -> list[str]:
        configure(DESTINATIONS=destinations(httpserver, count))
        page = BlogPage(title=slug, slug=slug)
        blog_index.add_child(instance=page)
        revision = page.save_revision()
        with CaptureQueriesContext(connection) as captured:
            revision.publish()
        return [query["sql"] for query in captured.captured_queries]

    return publish


def statement_count(statements: list[str]) -> int:
    """Consecutive INSERTs into one table counted once: a bulk insert that Django splits in
    batches where the database limits a statement's parameters (SQLite on Django 5.2)."""
    count, previous = 0, None
    for sql in statements:
        match = re.match(r'\s*INSERT INTO "?(\w+)"?', sql)
        table = match.group(1) if match else None
        if table is None or table != previous:
            count += 1
        previous = table
    return count


def test_publish_statements_do_not_grow_with_destinations(publish_with):
    publish_with(10, "warm-up")  # opens the build hook's merging delivery
    ten = publish_with(10, "ten")
    hundred = publish_with(100, "hundred")
    assert statement_count(ten) == statement_count(hundred)
    assert Delivery.objects.filter(event__object_repr="hundred").count() == 99
    merged = Delivery.objects.get(destination="build")
    assert sorted(merged.coalesced_events.values_list("object_repr", flat=True)) == [
        "hundred",
        "ten",
    ]


def test_the_bulk_insert_writes_what_a_model_would(publish_with):
    before = timezone.now()
    publish_with(100, "first")
    event = Event.objects.get(object_repr="first")
    rows = list(Delivery.objects.filter(event=event).order_by("pk"))
    assert [row.destination for row in rows] == ["build", *(f"d{n}" for n in range(99))]
    for row in rows:
        assert row.status == DeliveryStatus.PENDING
        assert row.attempts == row.attempts_at_redelivery == 0
        assert row.lease_token is None and row.lease_expires_at is None
        assert row.last_error == "" and row.include == []
        assert row.created_at == event.created_at
        assert before <= row.updated_at <= timezone.now()
    assert rows[0].next_attempt_at == event.created_at + timedelta(seconds=WINDOW)
    assert {row.next_attempt_at for row in rows[1:]} == {event.created_at}


@pytest.mark.skipif(
    not can_insert_rows("default"), reason="the database cannot return the rows' keys in order"
)
def test_insert_rows_returns_the_keys_in_order_across_batches(monkeypatch):
    now = timezone.now()
    event = Event.objects.create(event_id="evt_x", event_type="page.published", payload={})
    template = Delivery(event=event, destination="", next_attempt_at=now, created_at=now)
    rows = [(f"a{n}", now + timedelta(seconds=n), ["api"] if n % 2 else []) for n in range(5)]
    monkeypatch.setattr(connection.ops, "bulk_batch_size", lambda fields, objs: 2)
    with CaptureQueriesContext(connection) as captured:
        pks = insert_rows(
            template, ("destination", "next_attempt_at", "include"), rows, using="default"
        )
    # SQLite: batches of 2, 2 and 1. PostgreSQL: one statement of arrays, whatever the rows.
    assert len(captured.captured_queries) == (1 if connection.vendor == "postgresql" else 3)
    written = Delivery.objects.in_bulk(pks)
    assert [
        (written[pk].destination, written[pk].next_attempt_at, written[pk].include) for pk in pks
    ] == rows


#: Values that an array literal must quote: separators, quotes, braces, backslashes, NULL-like
#: text, the empty string, other scripts, and JSON of every shape.
AWKWARD = [
    ("plain", {"a": 1}, "{}", 200),
    ('quote " and \\ backslash', {"text": 'say "hi", {x}'}, "", None),
    ("comma, {brace} (paren)", [1, "two", None, {"three": [3]}], "NULL", 0),
    ("NULL", "just a string", "null", 599),
    ("", 0, "ünïcødé ✓ 中文", 1),
    ("x" * 90, True, "line\nbreak\ttab", 2**31 - 1),
]


@pytest.mark.skipif(
    not can_insert_rows("default"), reason="the database cannot return the rows' keys in order"
)
def test_insert_rows_keeps_awkward_values_as_they_were(monkeypatch):
    from wagtail_publish_hooks.models import Attempt

    now = timezone.now()
    event = Event.objects.create(event_id="evt_z", event_type="page.published", payload={})
    delivery = Delivery.objects.create(event=event, destination="d")
    template = Attempt(delivery=delivery, number=1, started_at=now, outcome="success")
    rows = [
        (n, error, detail, body, status_code)
        for n, (error, detail, body, status_code) in enumerate(AWKWARD, start=1)
    ]
    with CaptureQueriesContext(connection) as captured:
        pks = insert_rows(
            template,
            ("number", "error", "detail", "response_body", "status_code"),
            rows,
            using="default",
        )
    assert len(captured.captured_queries) == 1
    written = Attempt.objects.in_bulk(pks)
    assert [
        (
            written[pk].number,
            written[pk].error,
            written[pk].detail,
            written[pk].response_body,
            written[pk].status_code,
        )
        for pk in pks
    ] == rows
    for pk in pks:  # the shared values, each sent once
        assert (written[pk].delivery_id, written[pk].started_at) == (delivery.pk, now)
        assert written[pk].outcome == "success" and written[pk].request_headers == {}


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the arrays' insert is PostgreSQL's (a PostgreSQL run)",
)
def test_postgresql_sends_one_parameter_per_field_however_many_rows():
    """The statement's parameters: one per shared field, one array per varying field, so that
    the client (which quotes each parameter into the text) does work per field, not per value."""
    now = timezone.now()
    event = Event.objects.create(event_id="evt_w", event_type="page.published", payload={})
    template = Delivery(event=event, destination="", next_attempt_at=now, created_at=now)
    fields = [f for f in Delivery._meta.concrete_fields if not f.primary_key]
    seen: list[tuple[str, int]] = []

    def count_parameters(execute, sql, params, many, context):
        seen.append((sql, len(params)))
        return execute(sql, params, many, context)

    rows = [(f"dest-{n}", []) for n in range(300)]
    with connection.execute_wrapper(count_parameters):
        pks = insert_rows(template, ("destination", "include"), rows, using="default")
    [(sql, parameters)] = seen
    assert "unnest(" in sql
    assert parameters == len(fields)
    assert list(
        Delivery.objects.filter(pk__in=pks).order_by("pk").values_list("destination", flat=True)
    ) == [f"dest-{n}" for n in range(300)]


def test_insert_deliveries_falls_back_to_bulk_create(monkeypatch):
    from wagtail_publish_hooks import outbox

    monkeypatch.setattr(outbox, "can_insert_rows", lambda using: False)
    now = timezone.now()
    event = Event.objects.create(event_id="evt_y", event_type="page.published", payload={})
    pks = insert_deliveries(event, [("a", now, []), ("b", now, ["api"])], now, using="default")
    assert [Delivery.objects.get(pk=pk).destination for pk in pks] == ["a", "b"]


def explain(sql: str) -> str:
    """The plan of ``sql``; on PostgreSQL with sequential scans disabled, so that a scan left
    in the plan means that no index can serve the statement (tables this small would otherwise
    be scanned whatever the indexes)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql)
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def scans_of_big_tables(plan: str) -> list[str]:
    if connection.vendor == "postgresql":
        pattern = re.compile(rf"Seq Scan on {BIG_TABLES}")
    else:
        pattern = re.compile(rf"\bSCAN {BIG_TABLES}")
    return [line for line in plan.splitlines() if pattern.search(line)]


def test_every_capture_query_on_the_outbox_tables_uses_an_index(publish_with):
    publish_with(10, "warm-up")  # opens the merging delivery: the next publish merges into it
    statements = publish_with(10, "merged")
    reads = [
        sql
        for sql in statements
        if re.match(r"\s*(SELECT|UPDATE|DELETE)\b", sql)
        and re.search(r'"wagtail_publish_hooks_(delivery|event|attempt)', sql)
    ]
    # The open delivery's lookup and the conditional UPDATE that takes it, at least.
    assert len(reads) >= 2
    plans = {sql: explain(sql) for sql in reads}
    assert {sql: scans_of_big_tables(plan) for sql, plan in plans.items()} == {
        sql: [] for sql in reads
    }
