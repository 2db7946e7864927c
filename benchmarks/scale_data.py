#!/usr/bin/env python
"""A year-like delivery history, generated fast, for the benchmarks at scale.

A site that publishes 2,000 pages a day to five destinations keeps about 300,000 deliveries
within the default 30-day retention; the benchmarks at scale load more than that::

    quick:   50,000 deliveries,  15,000 events,   about 100,000 attempts  (CI, seconds)
    full: 1,000,000 deliveries, 300,000 events, about 2,000,000 attempts  (by hand, minutes)

spread over 60 days, to 20 destinations (``dest-00`` … ``dest-19``, a few busier than the
others), with about 10 % of the deliveries failed after several attempts, 1 % cancelled, the
most recent ones still pending or retrying, and 1 % of the deliveries carrying coalesced events.
Titles are drawn from a small vocabulary, so a search for a rare word finds a few hundred events
and a common one tens of thousands. Every figure is drawn from a seeded generator: two runs of
one size produce the same rows.

Rows go straight into the tables (PostgreSQL: ``COPY``; SQLite: ``executemany`` in one
transaction), with ids above the tables' current ones and the sequences moved past them, then
the tables are analysed (and vacuumed on PostgreSQL, so that index-only scans are possible), as
they would be on a site that has run for a while.

Use it from a benchmark, with Django set up and migrated::

    from benchmarks.scale_data import populate
    counts = populate("quick", pages=[page])   # a few real pages get a history of their own

or on its own, to look at the data (a throwaway PostgreSQL cluster unless ``--database sqlite``;
``--keep`` leaves it running and prints its URL)::

    .venv/bin/python benchmarks/scale_data.py --size quick
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@dataclass(frozen=True)
class Size:
    deliveries: int
    events: int
    attempts: int
    #: Real pages given a history of their own: this many events each.
    events_per_page: int


SIZES = {
    "quick": Size(deliveries=50_000, events=15_000, attempts=100_000, events_per_page=30),
    "full": Size(deliveries=1_000_000, events=300_000, attempts=2_000_000, events_per_page=300),
}

DAYS = 60
DESTINATIONS = [f"dest-{n:02d}" for n in range(20)]
#: How often each destination is chosen: a few take most events (a CDN, the search index).
DESTINATION_WEIGHTS = [8, 8, 6, 4, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
FAILURE_RATE = 0.10
CANCEL_RATE = 0.01
COALESCED_RATE = 0.01
SEED = 20261201

EVENT_TYPES = [  # (type, weight, kind of object)
    ("page.published", 70, "page"),
    ("page.unpublished", 5, "page"),
    ("page.moved", 5, "page"),
    ("page.deleted", 3, "page"),
    ("snippet.published", 10, "snippet"),
    ("image.changed", 4, "image"),
    ("document.changed", 3, "document"),
]
COMMON_WORDS = ["council", "budget", "weather", "match", "review", "election", "market", "school"]
RARE_WORDS = ["aurora", "zeppelin", "quasar", "mistral", "obsidian"]
FAILURE_ERRORS = [
    (503, "HTTP 503 Service Unavailable"),
    (500, "HTTP 500 Internal Server Error"),
    (None, "Connection refused"),
    (None, "Read timed out after 10 s"),
]


def destination_settings(url: str) -> dict[str, dict[str, Any]]:
    """``DESTINATIONS`` for the 20 aliases of the generated rows: signed webhooks to ``url``,
    which the benchmarks at scale never call (no worker runs)."""
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a fixed, throwaway test secret
    return {
        alias: {
            "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
            "OPTIONS": {"URL": url, "SECRET": secret},
            "EVENTS": ["page.*", "snippet.*"],
        }
        for alias in DESTINATIONS
    }


# --------------------------------------------------------------------------------------------
# The rows
# --------------------------------------------------------------------------------------------


def _title(rng: random.Random, n: int) -> str:
    words = [rng.choice(COMMON_WORDS), rng.choice(COMMON_WORDS)]
    if rng.random() < 0.003:
        words.insert(1, rng.choice(RARE_WORDS))
    return f"{words[0].capitalize()} {' '.join(words[1:])} {n}"


def _event_id(rng: random.Random, at: datetime) -> str:
    # The package's format (events.new_event_id): "evt_" and a lowercase ULID of that time.
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    value = (int(at.timestamp() * 1000) << 80) | rng.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(alphabet[value & 31])
        value >>= 5
    return "evt_" + "".join(reversed(chars))


@dataclass
class Tables:
    events: list[tuple]
    deliveries: list[tuple]
    attempts: list[tuple]
    coalesced: list[tuple]


EVENT_COLUMNS = (
    "id",
    "event_id",
    "event_type",
    "created_at",
    "content_type_id",
    "object_id",
    "object_repr",
    "actor_id",
    "payload",
    "included_data",
)
DELIVERY_COLUMNS = (
    "id",
    "event_id",
    "destination",
    "status",
    "attempts",
    "attempts_at_redelivery",
    "next_attempt_at",
    "lease_expires_at",
    "lease_token",
    "created_at",
    "updated_at",
    "delivered_at",
    "last_status_code",
    "last_error",
    "include",
)
ATTEMPT_COLUMNS = (
    "id",
    "delivery_id",
    "number",
    "started_at",
    "duration_ms",
    "outcome",
    "status_code",
    "error",
    "request_headers",
    "response_headers",
    "response_body",
    "detail",
)
COALESCED_COLUMNS = ("id", "delivery_id", "event_id")


def build_rows(
    size: Size,
    *,
    now: datetime,
    first_ids: dict[str, int],
    content_types: dict[str, list[int]],
    pages: Iterable[tuple[int, int, str]] = (),
    actor_id: int | None = None,
    seed: int = SEED,
) -> Tables:
    """The rows, as tuples in the column orders above. ``content_types`` maps a kind of object
    (``page``, ``snippet``, ``image``, ``document``) to content type ids; ``pages`` are real
    ``(content_type_id, id, title)`` whose histories are mixed in."""
    rng = random.Random(seed)
    start = now - timedelta(days=DAYS)
    span = DAYS * 86400.0
    types = [t for t, _, _ in EVENT_TYPES]
    type_weights = [w for _, w, _ in EVENT_TYPES]
    kinds = {t: kind for t, _, kind in EVENT_TYPES}
    real_pages = [page for page in pages for _ in range(size.events_per_page)]
    rng.shuffle(real_pages)
    events: list[tuple] = []
    deliveries: list[tuple] = []
    attempts: list[tuple] = []
    coalesced: list[tuple] = []
    event_pk = first_ids["event"]
    delivery_pk = first_ids["delivery"]
    attempt_pk = first_ids["attempt"]
    link_pk = first_ids["coalesced"]
    # Attempts for a delivered delivery: 1 most of the time; failed ones tried several times.
    # The mean of both, weighted, is size.attempts / size.deliveries.
    failed_attempts = 6
    delivered_mean = (
        size.attempts / size.deliveries - FAILURE_RATE * failed_attempts - CANCEL_RATE
    ) / (1 - FAILURE_RATE - CANCEL_RATE)
    extra_attempt_rate = min(1.0, max(0.0, delivered_mean - 1.05))
    offsets = sorted(rng.random() * span for _ in range(size.events))
    remaining_deliveries = size.deliveries
    for n, offset in enumerate(offsets):
        at = start + timedelta(seconds=offset)
        event_type = rng.choices(types, type_weights)[0]
        kind = kinds[event_type]
        if real_pages and kind == "page" and rng.random() < len(real_pages) / (size.events - n):
            content_type_id, object_id, title = real_pages.pop()
        else:
            content_type_id = rng.choice(content_types[kind])
            object_id = rng.randrange(1, 200_000)
            title = _title(rng, object_id)
        event_id = _event_id(rng, at)
        payload = {
            "id": event_id,
            "type": event_type,
            "timestamp": at.isoformat(),
            "data": {
                kind: {
                    "id": object_id,
                    "title": title,
                    "url": f"https://www.example.com/news/{object_id}/",
                    "locale": "en",
                },
                "actor": None,
                "first_publish": False,
                "changes": [{"field": "title", "label": "Title"}],
            },
        }
        events.append(
            (
                event_pk,
                event_id,
                event_type,
                at,
                content_type_id,
                str(object_id),
                title,
                actor_id,
                json.dumps(payload),
                "{}",
            )
        )
        # How many destinations take it: the remaining deliveries spread over the remaining
        # events, so that the total is exact.
        left = size.events - n
        count = min(len(DESTINATIONS), remaining_deliveries // left)
        spare = (remaining_deliveries - count * left) / left
        if count < len(DESTINATIONS) and rng.random() < spare:
            count += 1
        remaining_deliveries -= count
        chosen: set[str] = set()
        while len(chosen) < count:
            chosen.add(rng.choices(DESTINATIONS, DESTINATION_WEIGHTS)[0])
        age = (now - at).total_seconds()
        for destination in sorted(chosen):
            roll = rng.random()
            if age < 600 and roll < 0.5:
                status, tries = ("pending", 0) if roll < 0.3 else ("retrying", 1)
            elif roll < FAILURE_RATE:
                status, tries = "failed", failed_attempts + rng.randrange(-2, 3)
            elif roll < FAILURE_RATE + CANCEL_RATE:
                status, tries = "cancelled", 1
            else:
                status = "delivered"
                tries = 1 + (rng.random() < extra_attempt_rate) + (rng.random() < 0.05)
            code, error = (200, "")
            if status in ("failed", "retrying", "cancelled"):
                code, error = rng.choice(FAILURE_ERRORS)
            moment = at
            for number in range(1, tries + 1):
                last = number == tries
                if status == "delivered" and last:
                    outcome, a_code, a_error = "success", 200, ""
                elif status == "failed" and last:
                    outcome, a_code, a_error = "failure", code, error
                else:
                    outcome, a_code, a_error = "retry", *rng.choice(FAILURE_ERRORS)
                attempts.append(
                    (
                        attempt_pk,
                        delivery_pk,
                        number,
                        moment,
                        rng.randrange(5, 400),
                        outcome,
                        a_code,
                        a_error,
                        '{"Content-Type": "application/json", "webhook-id": "'
                        + event_id
                        + '", "webhook-signature": "[redacted]"}',
                        '{"Content-Type": "application/json"}',
                        "{}" if outcome == "success" else "",
                        "{}",
                    )
                )
                attempt_pk += 1
                moment += timedelta(seconds=30 * 2**number)
            finished = moment if tries else at
            deliveries.append(
                (
                    delivery_pk,
                    event_pk,
                    destination,
                    status,
                    tries,
                    0,
                    finished if status == "retrying" else at,
                    None,
                    None,
                    at,
                    finished,
                    finished if status == "delivered" else None,
                    code if tries else None,
                    error if status != "delivered" else "",
                    "[]",
                )
            )
            if n > 3 and rng.random() < COALESCED_RATE:
                for back in rng.sample(range(1, 4), rng.randrange(1, 4)):
                    coalesced.append((link_pk, delivery_pk, event_pk - back))
                    link_pk += 1
            delivery_pk += 1
        event_pk += 1
    return Tables(events, deliveries, attempts, coalesced)


# --------------------------------------------------------------------------------------------
# Writing them
# --------------------------------------------------------------------------------------------


def _table_names() -> dict[str, str]:
    from wagtail_publish_hooks.models import Attempt, Delivery, Event

    return {
        "event": Event._meta.db_table,
        "delivery": Delivery._meta.db_table,
        "attempt": Attempt._meta.db_table,
        "coalesced": Delivery.coalesced_events.through._meta.db_table,
    }


def _next_ids(cursor: Any, tables: dict[str, str]) -> dict[str, int]:
    ids = {}
    for key, table in tables.items():
        cursor.execute(f'SELECT MAX(id) FROM "{table}"')  # noqa: S608 (model tables)
        ids[key] = (cursor.fetchone()[0] or 0) + 1
    return ids


def _content_types() -> dict[str, list[int]]:
    from django.contrib.contenttypes.models import ContentType
    from wagtail.documents import get_document_model
    from wagtail.images import get_image_model

    from tests.testapp.models import Advert, BlogPage, EventPage, OtherPage

    def ids(*models: Any) -> list[int]:
        return [ContentType.objects.get_for_model(m).pk for m in models]

    return {
        "page": ids(BlogPage, EventPage, OtherPage),
        "snippet": ids(Advert),
        "image": ids(get_image_model()),
        "document": ids(get_document_model()),
    }


def _write_postgres(cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    raw = cursor.cursor  # psycopg's own cursor, under Django's wrapper
    names = ", ".join(f'"{c}"' for c in columns)
    with raw.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def _write_sqlite(cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("%s" for _ in columns)
    sql = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'  # noqa: S608 (model tables)
    for chunk in range(0, len(rows), 20_000):
        cursor.executemany(sql, rows[chunk : chunk + 20_000])


def populate(
    size: str | Size = "quick",
    *,
    pages: Iterable[Any] = (),
    actor: Any = None,
    seed: int = SEED,
    now: datetime | None = None,
) -> dict[str, int]:
    """Add a generated history to the default database and analyse it; return the number of
    rows written per table. ``pages`` (Wagtail pages) get ``events_per_page`` events each."""
    from django.db import connection, transaction

    from wagtail_publish_hooks.models import DestinationState

    chosen = SIZES[size] if isinstance(size, str) else size
    tables = _table_names()
    with connection.cursor() as cursor:
        first_ids = _next_ids(cursor, tables)
    rows = build_rows(
        chosen,
        now=now or datetime.now(UTC),
        first_ids=first_ids,
        content_types=_content_types(),
        pages=[(p.content_type_id, p.pk, p.title) for p in pages],
        actor_id=getattr(actor, "pk", None),
        seed=seed,
    )
    postgres = connection.vendor == "postgresql"
    write = _write_postgres if postgres else _write_sqlite
    with transaction.atomic(), connection.cursor() as cursor:
        for key, columns, data in (
            ("event", EVENT_COLUMNS, rows.events),
            ("delivery", DELIVERY_COLUMNS, rows.deliveries),
            ("attempt", ATTEMPT_COLUMNS, rows.attempts),
            ("coalesced", COALESCED_COLUMNS, rows.coalesced),
        ):
            write(cursor, tables[key], columns, data)
            if postgres:
                table = tables[key]
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "  # noqa: S608
                    f'(SELECT MAX(id) FROM "{table}"))'
                )
        for alias in DESTINATIONS:
            DestinationState.objects.get_or_create(alias=alias)
    with connection.cursor() as cursor:
        if postgres:
            for table in tables.values():
                cursor.execute(f'VACUUM ANALYZE "{table}"')
        else:
            cursor.execute("ANALYZE")
    return {
        "events": len(rows.events),
        "deliveries": len(rows.deliveries),
        "attempts": len(rows.attempts),
        "coalesced links": len(rows.coalesced),
    }


# --------------------------------------------------------------------------------------------
# A database for a benchmark
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def benchmark_database(database: str, *, hooks: dict[str, Any] | None = None) -> Iterator[str]:
    """Set up Django on a new database (``postgres``: a throwaway local cluster unless
    ``DATABASE_URL`` is set; ``sqlite``: a temporary file), migrated, with the test project's
    settings and ``WAGTAIL_PUBLISH_HOOKS`` = ``hooks``. Yields a description of the database."""
    tmp = Path(tempfile.mkdtemp(prefix="wph-bench-"))
    cluster = None
    for name in ("TEST_SQLITE_PATH", "PUBLISH_HOOKS_TEST_DB", "PUBLISH_HOOKS_TEST_SETTINGS"):
        os.environ.pop(name, None)
    if database == "postgres":
        if not os.environ.get("DATABASE_URL"):
            from tests.support.pgcluster import start_cluster

            cluster = start_cluster()
            os.environ["DATABASE_URL"] = cluster.url("wph")
        os.environ["PUBLISH_HOOKS_TEST_DB_IS_TEST"] = "1"  # use the URL's database as it is
    else:
        os.environ.pop("DATABASE_URL", None)
        os.environ["TEST_SQLITE_PATH"] = str(tmp / "bench.sqlite3")
    if hooks is not None:
        os.environ["PUBLISH_HOOKS_TEST_SETTINGS"] = json.dumps(hooks)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    from django.core.management import call_command

    django.setup()
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    try:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                yield f"PostgreSQL {cursor.fetchone()[0]}"
        else:
            import sqlite3

            yield f"SQLite {sqlite3.sqlite_version}"
    finally:
        connection.close()
        if cluster is not None:
            cluster.stop()
        for path in tmp.glob("*"):
            path.unlink()
        tmp.rmdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--keep", action="store_true", help="Wait for Enter before removing it.")
    args = parser.parse_args(argv)
    with benchmark_database(args.database) as description:
        began = time.perf_counter()
        counts = populate(args.size)
        elapsed = time.perf_counter() - began
        print(f"{description}: {args.size} history written in {elapsed:.1f} s")
        for table, count in counts.items():
            print(f"  {table:16} {count:>10,}")
        if args.keep:
            print(f"DATABASE_URL={os.environ.get('DATABASE_URL', '(sqlite)')}")
            input("Enter removes it. ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
