#!/usr/bin/env python
"""Deliveries per second through the real worker, against a bare HTTP loop; and the latency
from a publish's commit to the request reaching its destination.

Run from the repository root::

    .venv/bin/python benchmarks/worker_throughput.py

One run, one temporary SQLite database. Everything is real: ``manage.py db_worker``
subprocesses (django-tasks-db) deliver signed webhooks to a sink on 127.0.0.1
(``ThreadingHTTPServer``, HTTP/1.1 keep-alive, ``TCP_NODELAY``). The script prints figures; it
asserts nothing.

Throughput
    N deliveries to one webhook destination are recorded in one transaction, with one delivery
    run enqueued per worker, while W ``db_worker`` processes are already running (``--interval
    0.1``). The clock runs from the commit until the sink has received all N requests. The
    baseline is a ``requests.Session`` loop in this process posting the same N bodies to the
    same sink, one after the other, measured in the same run: the ratio says what the worker's
    bookkeeping costs on top of the HTTP requests themselves. Each W is measured after a
    baseline of its own, and the baseline is also run with W threads, to show where the sink
    saturates.

Latency
    With one ``db_worker`` at its default settings (``--interval 1``), a real publish
    (``page.save_revision().publish()``) is timed from the return of ``publish()`` (the commit)
    to the sink receiving the request, over a number of publishes spaced at random intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
WEBHOOK = "wagtail_publish_hooks.backends.webhook.WebhookBackend"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a fixed, throwaway test secret
GOAL_RATIO = 0.5


# --------------------------------------------------------------------------------------------
# The loopback sink
# --------------------------------------------------------------------------------------------


class SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        # Without it each keep-alive request waits ~40 ms for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.received(body)  # type: ignore[attr-defined]
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
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), SinkHandler)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="sink", daemon=True)
        self.reset(0)

    def reset(self, expected: int) -> None:
        with self._lock:
            self.count = 0
            self.expected = expected
            self.done = threading.Event()
            self.arrivals: dict[str, float] = {}

    def received(self, body: bytes) -> None:
        now = time.perf_counter()
        with self._lock:
            self.count += 1
            if body.startswith(b"{"):
                try:
                    event_id = json.loads(body).get("id")
                except ValueError:
                    event_id = None
                if event_id:
                    self.arrivals.setdefault(event_id, now)
            if self.expected and self.count >= self.expected:
                self.done.set()

    def url(self, path: str = "/hooks") -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}{path}"

    def start(self) -> Sink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


# --------------------------------------------------------------------------------------------
# Django and the workers
# --------------------------------------------------------------------------------------------


def hooks_settings(sink: Sink) -> dict[str, Any]:
    return {
        "DESTINATIONS": {
            "sink": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url(), "SECRET": SECRET}}
        },
        "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"],
    }


def setup_django(db_path: Path, hooks: dict[str, Any], journal_mode: str) -> dict[str, str]:
    """Configure this process, migrate, and return the environment for worker processes."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        TEST_SQLITE_PATH=str(db_path),
        PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(hooks),
        PYTHONPATH=str(REPO_ROOT),
    )
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "TEST_SQLITE_PATH")})
    os.environ["PUBLISH_HOOKS_TEST_SETTINGS"] = env["PUBLISH_HOOKS_TEST_SETTINGS"]
    sys.path.insert(0, str(REPO_ROOT))

    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    if settings.DATABASES["default"]["NAME"] != str(db_path):
        raise RuntimeError(f"expected the database {db_path}, got {settings.DATABASES}")
    with connection.cursor() as cursor:  # persistent: the workers' connections see it too
        cursor.execute(f"PRAGMA journal_mode={journal_mode}")
    call_command("migrate", verbosity=0, interactive=False)
    return env


def build_page() -> Any:
    from benchmark_site import draft_blog_page

    return draft_blog_page()


class Workers:
    def __init__(self, env: dict[str, str], count: int, *args: str) -> None:
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "django", "db_worker", *args],
                env=env,
                cwd=REPO_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(count)
        ]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                _, err = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                _, err = process.communicate()
            if err and ("Error" in err or process.returncode not in (0, -15)):
                print(f"worker {process.pid}:\n{err[-3000:]}", file=sys.stderr)


def wait_ready(seconds: float) -> None:
    # db_worker takes a moment to import Django and start polling; the clock must not
    # include that.
    time.sleep(seconds)


def record_deliveries(page: Any, count: int, runs: int) -> list[str]:
    """``count`` events to the sink in one transaction, with ``runs`` delivery runs enqueued."""
    from django.db import transaction

    from wagtail_publish_hooks.outbox import record_event
    from wagtail_publish_hooks.signal_handlers import page_event_data
    from wagtail_publish_hooks.tasks import _enqueue

    data = page_event_data(page)
    ids = []
    with transaction.atomic():
        for _ in range(count):
            event = record_event("page.published", data=data, instance=page)
            assert event is not None
            ids.append(event.event_id)
        for _ in range(runs - 1):  # record_event enqueued the first run in this transaction
            _enqueue()
    return ids


def bodies_for(ids: list[str]) -> list[bytes]:
    from wagtail_publish_hooks.models import Event

    return [
        json.dumps(payload).encode()
        for payload in Event.objects.filter(event_id__in=ids).values_list("payload", flat=True)
    ]


def bare_loop(sink: Sink, bodies: list[bytes], threads: int) -> float:
    """Seconds for ``requests.Session`` loops (one per thread) to post ``bodies``."""
    import requests

    headers = {"content-type": "application/json"}
    url = sink.url()

    def post_all(chunk: list[bytes]) -> None:
        with requests.Session() as session:
            for body in chunk:
                session.post(url, data=body, headers=headers, timeout=10).raise_for_status()

    chunks = [bodies[n::threads] for n in range(threads)]
    sink.reset(len(bodies))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(post_all, chunks))
    return time.perf_counter() - started


def clear_outbox() -> None:
    from django_tasks_db.models import DBTaskResult

    from wagtail_publish_hooks.models import Event

    Event.objects.all().delete()
    DBTaskResult.objects.all().delete()


def throughput(env: dict[str, str], sink: Sink, page: Any, count: int, workers: int) -> dict:
    from wagtail_publish_hooks.models import Delivery, DeliveryStatus

    clear_outbox()
    pool = Workers(env, workers, "--interval", "0.1", "--no-startup-delay")
    try:
        wait_ready(4 + workers)
        sink.reset(count)
        started = time.perf_counter()
        ids = record_deliveries(page, count, workers)
        committed = time.perf_counter()
        finished = sink.done.wait(timeout=max(120, count / 5))
        elapsed = time.perf_counter() - committed
    finally:
        pool.stop()
    delivered = Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count()
    bodies = bodies_for(ids)
    bare_1 = bare_loop(sink, bodies, 1)
    bare_w = bare_loop(sink, bodies, workers) if workers > 1 else bare_1
    return {
        "workers": workers,
        "count": count,
        "finished": finished,
        "delivered": delivered,
        "record_seconds": committed - started,
        "worker_rate": count / elapsed,
        "bare_rate": count / bare_1,
        "bare_rate_w": count / bare_w,
    }


def latency(env: dict[str, str], sink: Sink, page: Any, samples: int) -> list[float]:
    clear_outbox()
    pool = Workers(env, 1)  # db_worker's defaults: --interval 1, a random startup delay
    results = []
    try:
        wait_ready(6)
        from wagtail_publish_hooks.models import Event

        for n in range(samples):
            time.sleep(random.uniform(0.2, 1.2))  # not phase-locked to polling
            sink.reset(1)
            page.intro = f"Revision {n}"
            page.save_revision().publish()
            committed = time.perf_counter()
            if not sink.done.wait(timeout=30):
                print(f"publish {n}: not delivered within 30 s", file=sys.stderr)
                continue
            event_id = Event.objects.order_by("-pk").values_list("event_id", flat=True).first()
            arrived = sink.arrivals.get(event_id or "")
            if arrived is not None:
                results.append(arrived - committed)
    finally:
        pool.stop()
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1000, help="per throughput run")
    parser.add_argument(
        "--workers", default="1,2,4", help="comma-separated db_worker process counts"
    )
    parser.add_argument("--latency-samples", type=int, default=30, help="0 skips it")
    parser.add_argument("--journal-mode", choices=("delete", "wal"), default="wal")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="wph-worker-bench-"))
    sink = Sink().start()
    try:
        env = setup_django(tmp / "bench.sqlite3", hooks_settings(sink), args.journal_mode)
        page = build_page()
        page.save_revision().publish()  # warms the payload caches; delivered by nobody
        import django

        print(
            f"Python {sys.version.split()[0]}, Django {django.get_version()}, "
            f"SQLite journal mode {args.journal_mode}, {os.cpu_count()} CPUs"
        )
        print()
        print(
            f"{'workers':>7}  {'deliveries':>10}  {'worker/s':>9}  {'bare/s':>8}  "
            f"{'ratio':>6}  {'bare x W/s':>10}  {'vs 1 worker':>11}"
        )
        first_rate = None
        for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
            result = throughput(env, sink, page, args.deliveries, workers)
            first_rate = first_rate or result["worker_rate"]
            note = "" if result["finished"] else f"  (only {result['delivered']} delivered)"
            print(
                f"{workers:>7}  {args.deliveries:>10}  {result['worker_rate']:>9.0f}  "
                f"{result['bare_rate']:>8.0f}  {result['worker_rate'] / result['bare_rate']:>6.2f}"
                f"  {result['bare_rate_w']:>10.0f}  "
                f"{result['worker_rate'] / first_rate:>10.2f}x{note}"
            )
        print(f"\nGoal: ratio >= {GOAL_RATIO} with 1 worker.")
        if args.latency_samples:
            values = latency(env, sink, page, args.latency_samples)
            if values:
                print(
                    f"\nCommit to delivery, 1 db_worker with default settings, "
                    f"{len(values)} publishes: p50 {percentile(values, 0.5) * 1000:.0f} ms, "
                    f"p95 {percentile(values, 0.95) * 1000:.0f} ms, "
                    f"max {max(values) * 1000:.0f} ms, "
                    f"mean {statistics.mean(values) * 1000:.0f} ms"
                )
    finally:
        sink.stop()
        if args.keep_db:
            print(f"\nDatabase kept: {tmp / 'bench.sqlite3'}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
