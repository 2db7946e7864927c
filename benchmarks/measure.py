"""Small helpers shared by the benchmarks at scale: percentiles, timing admin URLs with Django's
test client, and the query plans of what a request ran.

    from benchmarks.measure import capture_plans, percentile, seq_scans, time_get

    times = time_get(client, "/admin/publish-hooks/deliveries/", n=20, warmup=3)
    print(percentile(times, 50), percentile(times, 95))
    plans = capture_plans(lambda: client.get(url))          # PostgreSQL only
    bad = seq_scans(plans, ["wagtail_publish_hooks_delivery"])

Django must be set up before any of them is called. They assert nothing; the scripts decide what
is a regression.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: The tables that grow with the history: a sequential scan of one of them is a regression.
BIG_TABLES = (
    "wagtail_publish_hooks_delivery",
    "wagtail_publish_hooks_event",
    "wagtail_publish_hooks_attempt",
    "wagtail_publish_hooks_delivery_coalesced_events",
)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) of ``values``, interpolated between the closest ranks
    (as ``numpy.percentile`` and ``statistics.quantiles(method="inclusive")`` do)."""
    if not values:
        raise ValueError("percentile() of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def time_get(client: Any, url: str, n: int, warmup: int = 2, *, status: int = 200) -> list[float]:
    """``n`` timed ``client.get(url)`` after ``warmup`` untimed ones: milliseconds each, the
    whole request in the process (middleware, view, template). Raises if a response is not
    ``status``: a benchmark of an error page measures nothing."""
    times = []
    for i in range(warmup + n):
        began = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != status:
            raise AssertionError(f"GET {url}: HTTP {response.status_code}, expected {status}")
        if i >= warmup:
            times.append(elapsed)
    return times


def count_queries(fn: Callable[[], Any], using: str = "default") -> list[str]:
    """The SQL statements ``fn()`` ran."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections[using]) as captured:
        fn()
    return [query["sql"] for query in captured.captured_queries]


def timed_queries(fn: Callable[[], Any], using: str = "default") -> list[tuple[str, float]]:
    """The SQL statements ``fn()`` ran, each with its time in milliseconds (as Django's
    connection measured it: from sending the statement to fetching its rows)."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections[using]) as captured:
        fn()
    return [(query["sql"], float(query["time"]) * 1000) for query in captured.captured_queries]


def capture_plans(
    fn: Callable[[], Any], using: str = "default", *, analyze: bool = False
) -> list[tuple[str, str]]:
    """Run ``fn()`` and return ``(sql, plan)`` for each ``SELECT`` it ran, the plan being
    PostgreSQL's ``EXPLAIN`` of that statement with its parameters, as text. ``analyze`` runs
    each statement again under ``EXPLAIN ANALYZE`` (with timings of its nodes)."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "postgresql":
        raise RuntimeError("capture_plans() reads PostgreSQL's EXPLAIN")
    statements: list[tuple[str, Any]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not many and sql.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        fn()
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
    plans = []
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(prefix + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            plans.append((cursor.mogrify(sql, params) if hasattr(cursor, "mogrify") else sql, plan))
    return plans


def _scanned_tables(plan: str) -> set[str]:
    return set(re.findall(r"Seq Scan on (\w+)", plan))


def seq_scans(
    plans: Iterable[tuple[str, str]], tables: Iterable[str] = BIG_TABLES
) -> list[tuple[str, str]]:
    """The ``(sql, plan)`` of ``plans`` that read one of ``tables`` with a sequential scan."""
    watched = set(tables)
    return [(sql, plan) for sql, plan in plans if _scanned_tables(plan) & watched]


def full_counts(
    plans: Iterable[tuple[str, str]], tables: Iterable[str] = BIG_TABLES
) -> list[tuple[str, str]]:
    """The ``(sql, plan)`` of ``plans`` that count rows of one of ``tables`` without a bound:
    a ``COUNT(*)`` with no ``LIMIT`` inside it (an index-only scan counts every entry too)."""
    watched = tuple(tables)
    found = []
    for sql, plan in plans:
        text = sql.upper()
        if "COUNT(" not in text or not any(table.upper() in text for table in watched):
            continue
        if " LIMIT " not in text:
            found.append((sql, plan))
    return found
