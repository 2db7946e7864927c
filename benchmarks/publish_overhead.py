#!/usr/bin/env python
"""What wagtail-publish-hooks adds to a Wagtail publish, against the same publish without it.

Run from the repository root::

    .venv/bin/python benchmarks/publish_overhead.py

One run, one temporary SQLite database, one process. Every scenario publishes the same BlogPage
(``page.save_revision().publish()``, a fresh revision each time) and the median wall time is
compared with the plugin-off median measured in the same run, in interleaved rounds so that
drift (a growing revision table, a busy machine) does not favour one scenario. The script prints
figures; it asserts nothing.

Scenarios:

``plugin off (ENABLED False)``
    The plugin installed, ten destinations configured, ``ENABLED: False``. The baseline.
``plugin off (no destinations)``
    The plugin enabled with an empty ``DESTINATIONS``.
``plugin, 10 webhooks``
    Ten signed webhook destinations on the django-tasks-db queue: one answers after 2 s, one
    refuses connections, eight are a fast sink. The publish records an Event and ten Delivery
    rows and enqueues one task on commit; no worker runs, so the endpoints are never called.
``naive receiver, 10 POSTs``
    The plugin off and a ``page_published`` receiver that POSTs the page as JSON with
    ``requests`` to the same ten endpoints inside the signal, as in Wagtail's documentation.
``floor, N destinations`` (``--floor``)
    The plugin off and a ``page_published`` receiver that does only what the pipeline's
    contract requires of a publish, written plainly: read what changed (the previous publish's
    revision), and in one transaction write the ``Event``, one ``Delivery`` per destination
    (one statement) and the one task row. No routing, no merging window, no
    savepoints, no failure handling: the least any implementation of the contract can add.

Every endpoint is on 127.0.0.1: a ``ThreadingHTTPServer`` started here (HTTP/1.1 keep-alive,
``TCP_NODELAY`` on every accepted socket) and a loopback port with nothing listening.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import os
import pstats
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from capture_plans import (
    added_statements,
    capture_plans,
    describe_database,
    short,
    statement_count,
)

from benchmarks.scale_data import SIZES as HISTORY_SIZES
from benchmarks.scale_data import Size, benchmark_database, populate

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
SLOW_SECONDS = 2.0
NAIVE_TIMEOUT = 5.0
GOAL_RATIO = 1.05
WEBHOOK = "wagtail_publish_hooks.backends.webhook.WebhookBackend"
BUILD_HOOK = "wagtail_publish_hooks.backends.build_hook.BuildHookBackend"
COALESCE_SECONDS = 600
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a fixed, throwaway test secret

BASELINE = "plugin off (ENABLED False)"
OFF_EMPTY = "plugin off (no destinations)"
NAIVE = "naive receiver, 10 POSTs"


# --------------------------------------------------------------------------------------------
# The loopback sink
# --------------------------------------------------------------------------------------------


class SinkHandler(BaseHTTPRequestHandler):
    """Answers every POST with ``200 {}``; paths under ``/slow`` answer after 2 s."""

    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # StreamRequestHandler sets TCP_NODELAY in setup() ...

    def setup(self) -> None:
        super().setup()
        # ... and so does this, explicitly: without it each keep-alive request waits ~40 ms
        # for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.count(self.path)  # type: ignore[attr-defined]
        if self.path.startswith("/slow"):
            time.sleep(SLOW_SECONDS)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Sink(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), SinkHandler)
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="sink", daemon=True)

    def count(self, path: str) -> None:
        with self._lock:
            self.requests[path] = self.requests.get(path, 0) + 1

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}{path}"

    def start(self) -> Sink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


def closed_loopback_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def endpoint_urls(sink: Sink, refused_port: int) -> list[str]:
    """The ten endpoints: one slow (2 s), one refusing connections, eight fast."""
    urls = [sink.url("/slow"), f"http://{LOOPBACK}:{refused_port}/refused"]
    urls += [sink.url(f"/fast/{n}") for n in range(8)]
    return urls


# --------------------------------------------------------------------------------------------
# Django
# --------------------------------------------------------------------------------------------


def build_pages() -> Any:
    """A live BlogPage under a blog index under the default site's home page."""
    from benchmark_site import draft_blog_page

    page = draft_blog_page()
    page.save_revision().publish()
    page.refresh_from_db()
    return page


def webhook(url: str) -> dict[str, Any]:
    return {"BACKEND": WEBHOOK, "OPTIONS": {"URL": url, "SECRET": SECRET, "TIMEOUT": 5}}


def destinations(sink: Sink, refused_port: int, count: int) -> dict[str, dict[str, Any]]:
    """``count`` destinations: a build hook that merges events (``COALESCE_SECONDS``, so that
    each publish looks for its open delivery), one slow (2 s), one refusing connections, and
    signed webhooks to the fast sink for the rest.

    Named as the generated history's destinations are (``dest-00``, the busiest, is the
    merging one), so that the lookups by destination meet their history.
    """
    if count < 3:
        raise ValueError("at least 3 destinations: the merging, the slow and the refused one")
    hooks = {
        "dest-00": {
            "BACKEND": BUILD_HOOK,
            "OPTIONS": {"URL": sink.url("/fast/build"), "COALESCE_SECONDS": COALESCE_SECONDS},
        },
        "dest-01": webhook(sink.url("/slow")),
        "dest-02": webhook(f"http://{LOOPBACK}:{refused_port}/refused"),
    }
    hooks.update({f"dest-{n:02d}": webhook(sink.url(f"/fast/{n}")) for n in range(3, count)})
    return hooks


def naive_receiver(urls: list[str]) -> Callable[..., None]:
    """What Wagtail's documentation shows: POST from inside ``page_published``."""
    import requests

    def post_page(sender: Any, instance: Any, **kwargs: Any) -> None:
        data = {
            "id": instance.pk,
            "type": instance._meta.label,
            "title": instance.title,
            "slug": instance.slug,
            "url_path": instance.url_path,
            "url": instance.get_full_url(),
            "last_published_at": instance.last_published_at.isoformat(),
        }
        for url in urls:
            # Catch everything requests raises: the refused endpoint must not abort the publish.
            with contextlib.suppress(requests.RequestException):
                requests.post(url, json=data, timeout=NAIVE_TIMEOUT)

    return post_page


def floor_receiver(aliases: list[str]) -> Callable[..., None]:
    """The least a publish can cost under the pipeline's contract (see ``--floor``): the
    "what changed" read that the payload's ``changes`` needs, the ``Event`` row and the
    ``Delivery`` rows in one transaction (the transactional outbox), and in it the one task row
    (django-tasks-db's queue, in the same database, as the plugin's scenarios use)."""
    from django.db import transaction
    from django.utils import timezone

    from wagtail_publish_hooks.changes import publish_changes
    from wagtail_publish_hooks.events import build_body, new_event_id
    from wagtail_publish_hooks.models import Event
    from wagtail_publish_hooks.outbox import insert_deliveries
    from wagtail_publish_hooks.tasks import DATABASE_QUEUE_PRIORITY, deliver_due_deliveries

    def record(sender: Any, instance: Any, revision: Any = None, **kwargs: Any) -> None:
        now = timezone.now()
        event_id = new_event_id()
        data = {"id": instance.pk, "title": instance.title, **publish_changes(instance, revision)}
        with transaction.atomic():
            event = Event(
                event_id=event_id,
                event_type="page.published",
                created_at=now,
                payload=build_body(
                    event_id=event_id, event_type="page.published", timestamp=now, data=data
                ),
                included_data={},
            )
            event.save(force_insert=True)
            insert_deliveries(event, [(alias, now, []) for alias in aliases], now, using="default")
            # In the same transaction: the queue is in the same database (as the plugin does).
            deliver_due_deliveries.using(priority=DATABASE_QUEUE_PRIORITY).enqueue()

    return record


def floor_name(count: int) -> str:
    return f"floor, {count} destinations"


@dataclass
class Scenario:
    name: str
    hooks: dict[str, Any]
    iterations: int
    warmup: int
    receiver: Callable[..., None] | None = None
    samples: list[float] = field(default_factory=list)

    @contextmanager
    def active(self) -> Iterator[None]:
        from django.test import override_settings
        from wagtail.signals import page_published

        with override_settings(WAGTAIL_PUBLISH_HOOKS=self.hooks):
            if self.receiver is not None:
                page_published.connect(self.receiver, dispatch_uid="bench-naive")
            try:
                yield
            finally:
                if self.receiver is not None:
                    page_published.disconnect(dispatch_uid="bench-naive")


class Publisher:
    """Publishes a fresh revision of one page: the operation every scenario times."""

    def __init__(self, page: Any, *, atomic: bool = False) -> None:
        self.page = page
        self.atomic = atomic
        self.count = 0

    def __call__(self) -> None:
        from django.db import transaction

        self.count += 1
        self.page.intro = f"Revision {self.count}"
        if self.atomic:
            with transaction.atomic():
                self.page.save_revision().publish()
        else:
            self.page.save_revision().publish()

    def timed(self) -> float:
        start = time.perf_counter()
        self()
        return (time.perf_counter() - start) * 1000.0


class AdminPublisher(Publisher):
    """Publishes a fresh revision the way an editor does: a POST of the page's edit form with
    ``action-publish``, by a logged-in superuser, through Django's test client (the whole
    request: middleware, form validation, the revision, the publish and its redirect)."""

    def __init__(self, page: Any, *, atomic: bool = False) -> None:
        from django.contrib.auth import get_user_model
        from django.test import Client
        from django.urls import reverse

        super().__init__(page, atomic=atomic)
        user = get_user_model().objects.create_superuser(
            "bench-editor", "editor@example.com", "not-used"
        )
        self.client = Client()
        self.client.force_login(user)
        self.url = reverse("wagtailadmin_pages:edit", args=[page.pk])

    def __call__(self) -> None:
        from django.db import transaction
        from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text

        self.count += 1
        data = nested_form_data(
            {
                "title": self.page.title,
                "slug": self.page.slug,
                "intro": f"Revision {self.count}",
                "body": rich_text(f"<p>Revision {self.count}</p>"),
                "comments": inline_formset([]),
                "action-publish": "action-publish",
            }
        )
        if self.atomic:
            with transaction.atomic():
                response = self.client.post(self.url, data)
        else:
            response = self.client.post(self.url, data)
        if response.status_code != 302:
            raise RuntimeError(f"the edit view answered {response.status_code}, not a redirect")


def split(total: int, parts: int) -> list[int]:
    """``total`` spread as evenly as possible over ``parts`` (``split(2, 4) == [0, 1, 0, 1]``)."""
    return [(n + 1) * total // parts - n * total // parts for n in range(parts)]


def run_rounds(scenarios: list[Scenario], publish: Publisher, rounds: int) -> None:
    """Warm up, then time the scenarios in interleaved rounds.

    By default a round is one publish per fast scenario, so a burst of load from elsewhere on
    the machine hits every scenario alike; the order rotates so none is always first.
    """
    for scenario in scenarios:
        with scenario.active():
            for _ in range(scenario.warmup):
                publish()
    shares = {s.name: split(s.iterations, rounds) for s in scenarios}
    total = sum(s.iterations for s in scenarios)
    step = max(1, rounds // 10)
    for number in range(rounds):
        gc.collect()
        order = scenarios[number % len(scenarios) :] + scenarios[: number % len(scenarios)]
        for scenario in order:
            if not shares[scenario.name][number]:
                continue
            with scenario.active():
                for _ in range(shares[scenario.name][number]):
                    scenario.samples.append(publish.timed())
        if (number + 1) % step == 0 or number + 1 == rounds:
            done = sum(len(s.samples) for s in scenarios)
            print(f"  round {number + 1}/{rounds}: {done}/{total} publishes", file=sys.stderr)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def count_queries(scenario: Scenario, publish: Publisher, n: int) -> tuple[int, list[str]]:
    """Median SQL statements per publish, and the statements of a publish with that many.

    A publish now and then issues a statement more: the look for changed admin-managed
    destinations and subscriptions, at most every ``DESTINATIONS_REFRESH_SECONDS``.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    samples: list[list[str]] = []
    with scenario.active():
        for _ in range(max(1, n)):
            with CaptureQueriesContext(connection) as ctx:
                publish()
            samples.append([q["sql"] for q in ctx.captured_queries])
    samples.sort(key=len)
    median = samples[(len(samples) - 1) // 2]
    return len(median), median


class Breakdown:
    """Wall time spent in the plugin's own functions, exclusive of the ones nested in them.

    Wraps a few module attributes of the package for one pass (never during the timed rounds)
    and puts them back. Names that do not exist (a refactor) are skipped.
    """

    TARGETS = (
        ("wagtail_publish_hooks.signal_handlers", "page_event_data", "building the payload"),
        (
            "wagtail_publish_hooks.signal_handlers",
            "publish_changes",
            "what changed (the log entry read and the comparison)",
        ),
        ("wagtail_publish_hooks.outbox", "routes_for", "routing"),
        ("wagtail_publish_hooks.outbox", "plan_routes", "planning (backends, merging windows)"),
        (
            "wagtail_publish_hooks.outbox",
            "write_deliveries",
            "outbox rows (Event, Delivery rows, merging)",
        ),
        ("wagtail_publish_hooks.tasks", "_enqueue", "enqueue (the task row)"),
        (
            "wagtail_publish_hooks.signal_handlers",
            "record_event",
            "the rest of capture, the transaction and its commit",
        ),
    )

    def __init__(self) -> None:
        self.exclusive: dict[str, list[float]] = {}
        self._stack: list[float] = []

    def _wrap(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._stack.append(0.0)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                children = self._stack.pop()
                if self._stack:
                    self._stack[-1] += elapsed
                self.exclusive.setdefault(label, []).append((elapsed - children) * 1000.0)

        return timed

    @contextmanager
    def installed(self) -> Iterator[None]:
        import importlib

        saved = []
        for module_name, attribute, label in self.TARGETS:
            module = importlib.import_module(module_name)
            original = getattr(module, attribute, None)
            if original is None:
                continue
            saved.append((module, attribute, original))
            setattr(module, attribute, self._wrap(label, original))
        try:
            yield
        finally:
            for module, attribute, original in saved:
                setattr(module, attribute, original)


def breakdown_plugin(scenario: Scenario, publish: Publisher, n: int) -> tuple[float, Breakdown]:
    """Median publish time and the plugin's share of it, over ``n`` plugin publishes."""
    breakdown = Breakdown()
    samples = []
    with scenario.active(), breakdown.installed():
        for _ in range(n):
            samples.append(publish.timed())
    return statistics.median(samples), breakdown


def profile_plugin(scenario: Scenario, publish: Publisher, n: int) -> None:
    """A cProfile listing of ``n`` plugin publishes (absolute times inflated by the profiler)."""
    profiler = cProfile.Profile()
    with scenario.active():
        profiler.enable()
        for _ in range(n):
            publish()
        profiler.disable()
    print(f"\ncProfile of {n} plugin publishes, the plugin's and the task queue's functions:")
    stats = pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative")
    stats.print_stats(r"wagtail_publish_hooks|django_tasks_db", 25)
    print("What the outbox write and the capture call, by cumulative time:")
    stats.sort_stats("cumulative").print_callees(r"write_deliveries|_capture|bulk_create", 12)


SIZES: dict[str, dict[str, int]] = {
    # For CI: checks statement counts and plans (exit 1 on a regression), never timings.
    "quick": {
        "iterations": 20,
        "naive_iterations": 0,
        "warmup": 5,
        "query_samples": 5,
        "breakdown": 0,
        "history": 50_000,
    },
    "full": {
        "iterations": 200,
        "naive_iterations": 10,
        "warmup": 20,
        "query_samples": 5,
        "breakdown": 50,
        "history": 1_000_000,
    },
}


def plugin_name(count: int) -> str:
    return f"plugin, {count} destinations"


@dataclass
class Phase:
    """One set of interleaved rounds, and what was counted and explained after it."""

    history: int
    scenarios: list[Scenario]
    samples: dict[str, list[float]] = field(default_factory=dict)
    queries: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    plans: dict[str, list[tuple[str, str, list[str]]]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


def run_phase(
    history: int,
    scenarios: list[Scenario],
    publish: Publisher,
    *,
    rounds: int,
    query_samples: int,
    counts: list[int],
    vendor: str,
) -> Phase:
    for scenario in scenarios:
        scenario.samples = []
    phase = Phase(history, scenarios)
    print(
        f"Timing {len(scenarios)} scenarios in {rounds} interleaved rounds "
        f"({history:,} delivery rows of history)...",
        file=sys.stderr,
    )
    run_rounds(scenarios, publish, rounds)
    phase.samples = {scenario.name: list(scenario.samples) for scenario in scenarios}
    for scenario in scenarios:
        if scenario.name != NAIVE:
            phase.queries[scenario.name] = count_queries(scenario, publish, query_samples)
    # Plans: on PostgreSQL with tables too small for an index to pay, the planner scans them
    # anyway; with no history, ask it with sequential scans disabled, which shows whether an
    # index can serve the statement at all.
    seqscan = history > 0 or vendor != "postgresql"
    for count in counts:
        name = plugin_name(count)
        added = added_statements(phase.queries[BASELINE][1], phase.queries[name][1])
        phase.plans[name] = capture_plans(added, vendor=vendor, seqscan=seqscan)
    return phase


def print_phase(phase: Phase, counts: list[int]) -> None:
    base_median = phase.median(BASELINE)
    print(f"\nWith {phase.history:,} delivery rows of history:\n")
    header = (
        f"{'scenario':<30} {'iterations':>10} {'median ms':>10} {'p95 ms':>9} "
        f"{'ratio':>7} {'queries':>8}"
    )
    print(header)
    print("-" * len(header))
    for scenario in phase.scenarios:
        samples = phase.samples[scenario.name]
        median = statistics.median(samples)
        p95 = percentile(samples, 0.95)
        count = str(phase.queries[scenario.name][0]) if scenario.name in phase.queries else "-"
        print(
            f"{scenario.name:<30} {len(samples):>10} {median:>10.2f} {p95:>9.2f} "
            f"{median / base_median:>6.2f}x {count:>8}"
        )
    print("(ratio: median / the plugin-off (ENABLED False) median of this phase)")
    for count in counts:
        median = phase.median(plugin_name(count))
        ratio = median / base_median
        verdict = "met" if ratio <= GOAL_RATIO else "MISSED"
        print(
            f"Goal, {count} destinations: plugin <= {GOAL_RATIO:.2f} x plugin-off. Measured: "
            f"{ratio:.2f} x (+{median - base_median:.2f} ms per publish): {verdict}."
        )


def check_statements(phases: list[Phase], counts: list[int]) -> list[str]:
    """The structural regressions: statement counts that depend on the number of destinations
    or on history, and plans that scan a big table. Timings are never checked."""
    problems = []
    shapes: dict[tuple[int, int], int] = {}
    for phase in phases:
        base = phase.queries[BASELINE][1]
        for count in counts:
            added = added_statements(base, phase.queries[plugin_name(count)][1])
            shapes[(phase.history, count)] = statement_count(added)
            for sql, _plan, scans in phase.plans[plugin_name(count)]:
                if scans:
                    problems.append(
                        f"{count} destinations, {phase.history:,} rows of history: "
                        f"{'; '.join(scans)} in the plan of: {short(sql, 90)}"
                    )
    print("\nStatements the plugin adds (a bulk insert the driver split counted once):")
    for (history, count), value in shapes.items():
        print(f"  {count:>4} destinations, {history:>9,} rows of history: {value}")
    if len(set(shapes.values())) > 1:
        problems.append(f"the statement count varies: {shapes}")
    return problems


def print_plans(phase: Phase, counts: list[int], vendor: str) -> None:
    name = plugin_name(max(counts))
    base = phase.queries[BASELINE][1]
    added = added_statements(base, phase.queries[name][1])
    print(f"\nStatements the plugin adds to a publish ({name}, {phase.history:,} rows):")
    for sql in added:
        print("  " + short(sql))
    note = "" if phase.history > 0 or vendor != "postgresql" else " (enable_seqscan off)"
    print(f"\nPlans of the statements that read or update rows{note}:")
    for sql, plan, scans in phase.plans[name]:
        print(f"\n  {short(sql, 150)}")
        for line in plan.splitlines():
            print(f"    {line}")
        if scans:
            print("    ^ SCANS A BIG TABLE")


def fill_history(rows: int, page: Any) -> dict[str, int]:
    """Add ``rows`` delivery rows of a year-like history (``benchmarks/scale_data.py``, in the
    proportions of its sizes), the published page getting events of its own."""
    full = HISTORY_SIZES["full"]
    scale = rows / full.deliveries
    size = Size(
        deliveries=rows,
        events=max(1, round(full.events * scale)),
        attempts=max(1, round(full.attempts * scale)),
        events_per_page=max(1, round(full.events_per_page * scale)),
    )
    written = populate(size, pages=[page])
    written["page log entries"] = fill_page_log(rows // 5)
    return written


def fill_page_log(rows: int) -> int:
    """Add ``rows`` entries of other pages to Wagtail's page log, over 60 days: the table that
    capture's "what changed" read looks in grows with a site's history too."""
    import random
    from datetime import timedelta

    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from django.utils import timezone
    from wagtail.models import PageLogEntry

    from tests.testapp.models import BlogPage

    rng = random.Random(20261201)
    now = timezone.now()
    content_type = ContentType.objects.get_for_model(BlogPage)
    actions = ["wagtail.publish"] * 4 + ["wagtail.edit"] * 5 + ["wagtail.unpublish"]
    PageLogEntry.objects.bulk_create(
        (
            PageLogEntry(
                content_type=content_type,
                label=f"Page {n}",
                action=rng.choice(actions),
                timestamp=now - timedelta(seconds=rng.uniform(0, 60 * 86400)),
                page_id=100_000 + rng.randrange(20_000),
            )
            for n in range(rows)
        ),
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            'ANALYZE "wagtailcore_pagelogentry"' if connection.vendor == "postgresql" else "ANALYZE"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size",
        choices=sorted(SIZES),
        default="full",
        help="quick: small, for CI (exits 1 on a statement-count or plan regression); full",
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--destinations",
        default="10,100",
        help="comma-separated destination counts, one plugin scenario each (at least 3)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=None,
        help="delivery rows of history for the second phase (0 skips it; quick 50,000, "
        "full 1,000,000)",
    )
    parser.add_argument("--iterations", type=int, default=None, help="publishes per scenario")
    parser.add_argument(
        "--naive-iterations",
        type=int,
        default=None,
        help="publishes for the naive receiver (each waits ~2 s; 0 skips it)",
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed publishes per scenario")
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="interleaved rounds (default: as many as --iterations, one publish per round)",
    )
    parser.add_argument(
        "--query-samples", type=int, default=None, help="publishes whose SQL queries are counted"
    )
    parser.add_argument(
        "--breakdown",
        type=int,
        default=None,
        help="plugin publishes timed with the plugin's functions instrumented (0 to skip)",
    )
    parser.add_argument(
        "--profile", type=int, default=0, help="plugin publishes to run under cProfile (0: none)"
    )
    parser.add_argument(
        "--atomic",
        action="store_true",
        help="wrap each publish in transaction.atomic(), as ATOMIC_REQUESTS would",
    )
    parser.add_argument(
        "--synchronous",
        choices=["full", "normal"],
        default="full",
        help="SQLite synchronous setting (full: the default; normal with wal: commits do not "
        "wait for fsync)",
    )
    parser.add_argument(
        "--via",
        choices=["api", "admin"],
        default="api",
        help="api: page.save_revision().publish(); admin: a POST of the page's edit form with "
        "action-publish, as an editor publishes",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time the floor: a receiver that does only what the contract requires of a "
        "publish, for each destination count",
    )
    parser.add_argument(
        "--journal-mode",
        choices=["delete", "wal"],
        default="delete",
        help="SQLite journal mode (delete: SQLite's and Django's default)",
    )
    args = parser.parse_args(argv)
    for key, value in SIZES[args.size].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    counts = sorted({int(part) for part in args.destinations.split(",") if part.strip()})
    rounds = max(1, min(args.rounds or args.iterations, args.iterations))

    started = time.monotonic()
    with ExitStack() as stack:
        sink = Sink().start()
        stack.callback(sink.stop)
        refused_port = closed_loopback_port()
        urls = endpoint_urls(sink, refused_port)

        print(f"Setting up Django and migrating a new {args.database} database...", file=sys.stderr)
        stack.enter_context(benchmark_database(args.database))

        import django
        import wagtail
        from django.db import connection, connections
        from django.test import override_settings

        stack.callback(connections.close_all)
        vendor = connection.vendor
        if vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA journal_mode={args.journal_mode}")
                cursor.execute(f"PRAGMA synchronous={args.synchronous}")
        database = describe_database()["label"]
        stack.enter_context(
            override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}})
        )
        page = build_pages()
        publisher = AdminPublisher if args.via == "admin" else Publisher
        publish = publisher(page, atomic=args.atomic)

        allow = ["127.0.0.0/8"]
        hooks = {count: destinations(sink, refused_port, count) for count in counts}
        off = {
            "ENABLED": False,
            "DESTINATIONS": hooks[max(counts)],
            "ALLOW_PRIVATE_NETWORKS": allow,
        }
        baseline = Scenario(BASELINE, off, args.iterations, args.warmup)
        off_empty = Scenario(
            OFF_EMPTY,
            {"DESTINATIONS": {}, "ALLOW_PRIVATE_NETWORKS": allow},
            args.iterations,
            args.warmup,
        )
        plugins = [
            Scenario(
                plugin_name(count),
                {"DESTINATIONS": hooks[count], "ALLOW_PRIVATE_NETWORKS": allow},
                args.iterations,
                args.warmup,
            )
            for count in counts
        ]
        naive = Scenario(
            NAIVE,
            off,
            args.naive_iterations,
            min(1, args.naive_iterations),
            receiver=naive_receiver(urls),
        )
        scenarios = [baseline, off_empty, *plugins]
        if args.floor:
            scenarios.extend(
                Scenario(
                    floor_name(count),
                    off,
                    args.iterations,
                    args.warmup,
                    receiver=floor_receiver(list(hooks[count])),
                )
                for count in counts
            )
        if args.naive_iterations > 0:
            scenarios.append(naive)
            estimate = (SLOW_SECONDS + 0.1) * (args.naive_iterations + 1)
            print(f"The naive receiver alone takes ~{estimate:.0f} s.", file=sys.stderr)
        options = {"rounds": rounds, "query_samples": args.query_samples, "counts": counts}
        phases = [run_phase(0, scenarios, publish, vendor=vendor, **options)]
        largest = plugins[-1]
        breakdown = breakdown_plugin(largest, publish, args.breakdown) if args.breakdown else None
        if args.history > 0:
            print(f"Filling {args.history:,} delivery rows of history...", file=sys.stderr)
            filling = time.monotonic()
            written = fill_history(args.history, page)
            print(f"  {written}", file=sys.stderr)
            print(f"  filled in {time.monotonic() - filling:.0f} s", file=sys.stderr)
            phases.append(
                run_phase(args.history, [baseline, *plugins], publish, vendor=vendor, **options)
            )

        print()
        print(
            f"wagtail-publish-hooks publish overhead, {date.today().isoformat()} "
            f"(Python {sys.version.split()[0]}, Django {django.get_version()}, "
            f"Wagtail {wagtail.__version__}, {database}, {os.cpu_count()} CPUs)"
        )
        operation = (
            "a POST of a BlogPage's edit form with action-publish (the admin's publish request)"
            if args.via == "admin"
            else "page.save_revision().publish() of a BlogPage"
        )
        print(
            f"Operation: {operation}, a fresh revision each time"
            + (", inside transaction.atomic()." if args.atomic else " (autocommit, as the admin).")
        )
        for phase in phases:
            print_phase(phase, counts)
        if len(phases) > 1:
            print(f"\nHistory: {args.history:,} rows against none (plugin medians; ratios):")
            for count in counts:
                name = plugin_name(count)
                before, after = phases[0], phases[-1]
                print(
                    f"  {name:<30} {after.median(name) / before.median(name):.2f} x the "
                    f"median; ratio to plugin-off {after.median(name) / after.median(BASELINE):.2f}"
                    f" x against {before.median(name) / before.median(BASELINE):.2f} x"
                )
        problems = check_statements(phases, counts)
        print_plans(phases[-1], counts, vendor)

        if breakdown is not None:
            median, parts = breakdown
            n = args.breakdown
            print(
                f"\nWhere the plugin's time goes ({n} more publishes, {largest.name}, median "
                f"{median:.2f} ms; median ms per call, exclusive of nested parts):"
            )
            total = 0.0
            for _module, _attribute, label in Breakdown.TARGETS:
                if label in parts.exclusive:
                    value = statistics.median(parts.exclusive[label])
                    total += value
                    print(f"  {label:<55} {value:6.2f}")
            print(f"  {'sum':<55} {total:6.2f}")

        print(f"\nSink requests (all from the naive receiver): {_requests(sink)}.")

        if args.profile > 0:
            profile_plugin(largest, publish, args.profile)
        print(f"\nTotal run time: {time.monotonic() - started:.0f} s", file=sys.stderr)
    if problems:
        print("\nREGRESSION (statement counts or plans):")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print("\nStatement counts and plans: as expected.")
    return 0


def _requests(sink: Sink) -> str:
    slow = sum(v for k, v in sink.requests.items() if k.startswith("/slow"))
    fast = sum(v for k, v in sink.requests.items() if k.startswith("/fast"))
    return f"{slow} to the 2 s endpoint, {fast} to the fast ones"


if __name__ == "__main__":
    sys.exit(main())
