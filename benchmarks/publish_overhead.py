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
import re
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
SLOW_SECONDS = 2.0
NAIVE_TIMEOUT = 5.0
GOAL_RATIO = 1.15
WEBHOOK = "wagtail_publish_hooks.backends.webhook.WebhookBackend"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a fixed, throwaway test secret

BASELINE = "plugin off (ENABLED False)"
OFF_EMPTY = "plugin off (no destinations)"
PLUGIN = "plugin, 10 webhooks"
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


def setup_django(db_path: Path) -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["TEST_SQLITE_PATH"] = str(db_path)

    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    # tests/settings.py reads TEST_SQLITE_PATH; never touch any other database.
    if settings.DATABASES["default"]["NAME"] != str(db_path):
        raise RuntimeError(f"expected the database {db_path}, got {settings.DATABASES}")
    call_command("migrate", verbosity=0, interactive=False)


def build_pages() -> Any:
    """A live BlogPage under a blog index under the default site's home page."""
    from benchmark_site import draft_blog_page

    page = draft_blog_page()
    page.save_revision().publish()
    page.refresh_from_db()
    return page


def destinations(urls: list[str]) -> dict[str, dict[str, Any]]:
    names = ["slow", "refused", *(f"fast{n}" for n in range(len(urls) - 2))]
    return {
        name: {"BACKEND": WEBHOOK, "OPTIONS": {"URL": url, "SECRET": SECRET, "TIMEOUT": 5}}
        for name, url in zip(names, urls, strict=True)
    }


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
    """Median SQL statements per publish, and the statements of the last publish."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    statements: list[str] = []
    with scenario.active():
        for _ in range(n):
            with CaptureQueriesContext(connection) as ctx:
                publish()
            counts.append(len(ctx.captured_queries))
            statements = [q["sql"] for q in ctx.captured_queries]
    return int(statistics.median(counts)), statements


def _normalise(sql: str) -> str:
    sql = re.sub(r"'[^']*'", "?", sql)
    sql = re.sub(r'"s\d+_x\d+"', '"sp"', sql)  # savepoint names
    return re.sub(r"\b\d+\b", "?", sql)


def added_statements(baseline: list[str], other: list[str]) -> list[str]:
    """The statements of ``other`` that ``baseline`` does not have, in order."""
    remaining = Counter(_normalise(sql) for sql in baseline)
    added = []
    for sql in other:
        key = _normalise(sql)
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            added.append(sql)
    return added


class Breakdown:
    """Wall time spent in the plugin's own functions, exclusive of the ones nested in them.

    Wraps a few module attributes of the package for one pass (never during the timed rounds)
    and puts them back. Names that do not exist (a refactor) are skipped.
    """

    TARGETS = (
        ("wagtail_publish_hooks.signal_handlers", "page_event_data", "building the payload"),
        (
            "wagtail_publish_hooks.signal_handlers",
            "record_event",
            "outbox write (Event + Delivery rows, its transaction)",
        ),
        ("wagtail_publish_hooks.tasks", "enqueue_delivery_run", "enqueue (the task row)"),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200, help="publishes per fast scenario")
    parser.add_argument(
        "--naive-iterations",
        type=int,
        default=10,
        help="publishes for the naive receiver (each waits ~2 s; 0 skips it)",
    )
    parser.add_argument("--warmup", type=int, default=20, help="untimed publishes per scenario")
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="interleaved rounds (default: as many as --iterations, one publish per round)",
    )
    parser.add_argument(
        "--query-samples", type=int, default=5, help="publishes whose SQL queries are counted"
    )
    parser.add_argument(
        "--breakdown",
        type=int,
        default=50,
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
        "--journal-mode",
        choices=["delete", "wal"],
        default="delete",
        help="SQLite journal mode (delete: SQLite's and Django's default)",
    )
    parser.add_argument(
        "--keep-db", action="store_true", help="keep the temporary database and print its path"
    )
    args = parser.parse_args(argv)
    rounds = max(1, min(args.rounds or args.iterations, args.iterations))

    tmpdir = Path(tempfile.mkdtemp(prefix="wph-bench-"))
    started = time.monotonic()
    with ExitStack() as stack:
        if not args.keep_db:
            stack.callback(shutil.rmtree, tmpdir, ignore_errors=True)
        sink = Sink().start()
        stack.callback(sink.stop)
        refused_port = closed_loopback_port()
        urls = endpoint_urls(sink, refused_port)

        print("Setting up Django and migrating a temporary SQLite database...", file=sys.stderr)
        setup_django(tmpdir / "bench.sqlite3")

        import django
        import wagtail
        from django.db import connection, connections
        from django.test import override_settings

        stack.callback(connections.close_all)
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA journal_mode={args.journal_mode}")
        stack.enter_context(
            override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}})
        )
        page = build_pages()
        publish = Publisher(page, atomic=args.atomic)

        allow = ["127.0.0.0/8"]
        ten = destinations(urls)
        off = {"ENABLED": False, "DESTINATIONS": ten, "ALLOW_PRIVATE_NETWORKS": allow}
        baseline = Scenario(BASELINE, off, args.iterations, args.warmup)
        off_empty = Scenario(
            OFF_EMPTY,
            {"DESTINATIONS": {}, "ALLOW_PRIVATE_NETWORKS": allow},
            args.iterations,
            args.warmup,
        )
        plugin = Scenario(
            PLUGIN,
            {"DESTINATIONS": ten, "ALLOW_PRIVATE_NETWORKS": allow},
            args.iterations,
            args.warmup,
        )
        naive = Scenario(
            NAIVE,
            off,
            args.naive_iterations,
            min(1, args.naive_iterations),
            receiver=naive_receiver(urls),
        )
        scenarios = [baseline, off_empty, plugin]
        if args.naive_iterations > 0:
            scenarios.append(naive)

        estimate = (SLOW_SECONDS + 0.1) * (args.naive_iterations + min(1, args.naive_iterations))
        print(
            f"Timing {len(scenarios)} scenarios in {rounds} interleaved rounds "
            f"(the naive receiver alone takes ~{estimate:.0f} s: the 2 s endpoint)...",
            file=sys.stderr,
        )
        run_rounds(scenarios, publish, rounds)

        queries = {s.name: count_queries(s, publish, args.query_samples) for s in scenarios[:3]}
        breakdown = breakdown_plugin(plugin, publish, args.breakdown) if args.breakdown else None

        print()
        print(
            f"wagtail-publish-hooks publish overhead, {date.today().isoformat()} "
            f"(Python {sys.version.split()[0]}, Django {django.get_version()}, "
            f"Wagtail {wagtail.__version__}, SQLite {_sqlite_version()} "
            f"journal_mode={args.journal_mode}, {os.cpu_count()} CPUs)"
        )
        print(
            "Operation: page.save_revision().publish() of a BlogPage, a fresh revision each time"
            + (", inside transaction.atomic()." if args.atomic else " (autocommit, as the admin).")
        )
        print()
        base_median = statistics.median(baseline.samples)
        header = (
            f"{'scenario':<30} {'iterations':>10} {'median ms':>10} {'p95 ms':>9} "
            f"{'ratio':>7} {'queries':>8}"
        )
        print(header)
        print("-" * len(header))
        for scenario in scenarios:
            median = statistics.median(scenario.samples)
            p95 = percentile(scenario.samples, 0.95)
            count = str(queries[scenario.name][0]) if scenario.name in queries else "-"
            print(
                f"{scenario.name:<30} {len(scenario.samples):>10} {median:>10.2f} {p95:>9.2f} "
                f"{median / base_median:>6.2f}x {count:>8}"
            )
        print("(ratio: median / the plugin-off (ENABLED False) median of this run)")
        plugin_median = statistics.median(plugin.samples)
        ratio = plugin_median / base_median
        verdict = "met" if ratio <= GOAL_RATIO else "MISSED"
        print()
        print(
            f"Goal: plugin <= {GOAL_RATIO:.2f} x plugin-off. Measured: {ratio:.2f} x "
            f"(+{plugin_median - base_median:.2f} ms per publish): {verdict}."
        )
        added = added_statements(queries[BASELINE][1], queries[PLUGIN][1])
        print(f"\nStatements the plugin adds to a publish ({len(added)}):")
        for sql in added:
            print("  " + (sql if len(sql) <= 110 else sql[:107] + "..."))

        if breakdown is not None:
            median, parts = breakdown
            n = args.breakdown
            print(
                f"\nWhere the plugin's time goes ({n} more plugin publishes, median "
                f"{median:.2f} ms; median ms per call, exclusive of nested parts):"
            )
            total = 0.0
            for _module, _attribute, label in Breakdown.TARGETS:
                if label in parts.exclusive:
                    value = statistics.median(parts.exclusive[label])
                    total += value
                    print(f"  {label:<55} {value:6.2f}")
            print(f"  {'sum':<55} {total:6.2f}")

        from django_tasks_db.models import DBTaskResult

        from wagtail_publish_hooks.models import Delivery, Event

        print(
            f"\nRows left: {Event.objects.count()} events, {Delivery.objects.count()} deliveries,"
            f" {DBTaskResult.objects.count()} queued tasks (no worker ran; Wagtail queues its own"
            " search and reference-index tasks too)."
        )
        print(f"Sink requests (all from the naive receiver): {_requests(sink)}.")

        if args.profile > 0:
            profile_plugin(plugin, publish, args.profile)
        if args.keep_db:
            print(f"\nDatabase kept at {tmpdir / 'bench.sqlite3'}")
        print(f"\nTotal run time: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def _requests(sink: Sink) -> str:
    slow = sum(v for k, v in sink.requests.items() if k.startswith("/slow"))
    fast = sum(v for k, v in sink.requests.items() if k.startswith("/fast"))
    return f"{slow} to the 2 s endpoint, {fast} to the fast ones"


if __name__ == "__main__":
    sys.exit(main())
