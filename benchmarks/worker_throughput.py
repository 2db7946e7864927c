#!/usr/bin/env python
"""Deliveries per second through the real worker, against a bare HTTP loop; the latency from a
publish's commit to the first byte at its destination, on db_worker, RQ and Celery; and the SQL
statements and commits a worker run issues per delivery.

Run from the repository root::

    .venv/bin/python benchmarks/worker_throughput.py --size quick
    .venv/bin/python benchmarks/worker_throughput.py --size full --database postgres

Everything is real: ``manage.py db_worker`` (django-tasks-db), ``rqworker`` (django-tasks-rq) and
``celery worker`` (django-tasks-fennel) subprocesses deliver signed webhooks to a sink on
127.0.0.1 (``ThreadingHTTPServer``, HTTP/1.1 keep-alive, ``TCP_NODELAY``), on a temporary SQLite
database or a throwaway PostgreSQL cluster (tests/support/pgcluster.py).

Throughput
    N deliveries to one webhook destination are recorded in one transaction, with one delivery
    run enqueued per worker, while W ``db_worker`` processes are already running (``--interval
    0.1``). The clock runs from the commit until the sink has received all N requests. The
    baseline is a ``requests.Session`` loop in this process posting the same N bodies to the
    same sink, one after the other, measured right after: the ratio says what the worker's
    bookkeeping costs on top of the HTTP requests themselves. Both are measured in rounds
    (``--rounds``), a worker run and its loop each, and the medians printed: a machine's speed
    drifts more between two runs a minute apart than the worker costs. The baseline is also
    run with W threads, to show where the sink saturates. The CPU time of the worker processes
    per delivery, and of the bare loop per request, is printed too: it varies less than wall
    time on a shared machine.

Latency
    One worker of each queue (``--queue``); a real publish (``page.save_revision().publish()``)
    is timed from the commit of the transaction that recorded its delivery to the sink receiving
    the request, over a number of publishes spaced at random intervals (after one warm-up
    publish, not counted). db_worker is measured at each ``--intervals`` value. The workers'
    settings that decide most of it are options: ``--rq-worker-class`` and
    ``--celery-db-reuse-max`` (docs/deployment.md, "Low latency").

Statements (``--size quick`` checks them)
    An in-process worker run over ``CHECK_DELIVERIES`` deliveries, its SQL statements counted
    with a connection ``execute_wrapper`` and its commits (explicit, and statements that wrote
    in autocommit) counted too. Over ``STATEMENT_BOUNDS`` the script exits with status 1: the
    only thing it checks. Timings are printed, never checked.
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
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
WEBHOOK = "wagtail_publish_hooks.backends.webhook.WebhookBackend"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a fixed, throwaway test secret
GOAL_RATIO = 0.8
LATENCY_GOAL_MS = {"p50": 25, "p95": 100}

SIZES = {
    "quick": {
        "deliveries": 300,
        "rounds": 3,
        "workers": "1",
        "latency_samples": 10,
        "queues": "db",
        "intervals": "0.1",
    },
    "full": {
        "deliveries": 2000,
        "rounds": 5,
        "workers": "1,2,4",
        "latency_samples": 50,
        "queues": "db,rq,celery",
        "intervals": "1,0.1",
    },
}

#: Deliveries of the statement check, and the most statements and commits they may take
#: (one destination, the default BATCH_SIZE 50 and FLUSH_SIZE 50). Measured on 2026-12-02:
#: 23 statements and 5 commits on SQLite, 19 and 5 on PostgreSQL (35 and 7, 27 and 7 with
#: FLUSH_SIZE 25; 40 and 29 before a claim became one UPDATE). Before a claim was confirmed in
#: the database only when it could run out, every delivery added an UPDATE and its commit (146
#: and 108 on SQLite). The bounds leave room for the groups a slow machine closes on time.
CHECK_DELIVERIES = 100
STATEMENT_BOUNDS = {"statements": 60, "commits": 12}


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

    def handle_one_request(self) -> None:
        # The first byte of a request: the moment the latency is measured to.
        self.first_byte = None
        try:
            self.rfile.peek(1)
            self.first_byte = time.perf_counter()
        except (OSError, ValueError):
            pass
        super().handle_one_request()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.received(body, self.first_byte)  # type: ignore[attr-defined]
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
            self.first: float | None = None
            self.last = 0.0

    def received(self, body: bytes, first_byte: float | None) -> None:
        now = time.perf_counter()
        with self._lock:
            self.count += 1
            self.first = self.first or first_byte or now
            self.last = now
            if body.startswith(b'{"id":'):
                event_id = body[7 : body.index(b'"', 7)].decode()
                self.arrivals.setdefault(event_id, first_byte or now)
            if self.expected and self.count >= self.expected:
                self.done.set()

    def url(self, path: str = "/hooks") -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}{path}"

    def rate(self) -> float:
        """Requests per second from the first request's first byte to the last response."""
        return (self.count - 1) / (self.last - (self.first or self.last)) if self.count > 1 else 0

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


def configure_database(database: str, workdir: Path, name: str, template: str = "") -> Any:
    """Point this process (and the workers it starts) at a fresh database ``name``: a SQLite
    file in ``workdir``, or a database of a throwaway PostgreSQL cluster (started once, by the
    first caller, and passed on to child processes in ``WPH_BENCH_PG_URL``)."""
    for key in ("TEST_SQLITE_PATH", "PUBLISH_HOOKS_TEST_DB", "DATABASE_URL"):
        os.environ.pop(key, None)
    if database == "sqlite":
        os.environ["TEST_SQLITE_PATH"] = str(workdir / f"{name}.sqlite3")
        if template:  # a migrated copy: migrating again would take longer than the run
            shutil.copyfile(template, os.environ["TEST_SQLITE_PATH"])
        return None
    sys.path.insert(0, str(REPO_ROOT))
    from tests.support.pgcluster import create_database, start_cluster

    cluster = None
    server = os.environ.get("WPH_BENCH_PG_URL")
    if not server:
        cluster = start_cluster()
        server = os.environ["WPH_BENCH_PG_URL"] = cluster.url("postgres")
    os.environ["DATABASE_URL"] = create_database(server, name, drop=True, template=template)
    os.environ["PUBLISH_HOOKS_TEST_DB_IS_TEST"] = "1"  # use the URL's database as it is
    # Workers keep their connection between tasks and polls, as deployment.md recommends.
    os.environ["PUBLISH_HOOKS_TEST_CONN_MAX_AGE"] = "60"
    return cluster


def setup_django(
    hooks: dict[str, Any], journal_mode: str = "wal", *, migrate: bool = True
) -> dict[str, str]:
    """Configure this process, migrate, and return the environment for worker processes."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(hooks),
        PYTHONPATH=str(REPO_ROOT),
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    sys.path.insert(0, str(REPO_ROOT))

    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    sqlite = connection.vendor == "sqlite"
    if sqlite:
        with connection.cursor() as cursor:  # persistent: the workers' connections see it too
            cursor.execute(f"PRAGMA journal_mode={journal_mode}")
            # Migrating a throwaway file need not wait for the disk at every commit (the
            # measurements do: this connection's setting goes back to SQLite's default).
            cursor.execute("PRAGMA synchronous=OFF")
    if migrate:
        call_command("migrate", verbosity=0, interactive=False)
    if sqlite:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=FULL")
    return env


def build_page() -> Any:
    from benchmark_site import draft_blog_page

    return draft_blog_page()


#: The queue of the package's own (``QUEUE_NAME``) on RQ and Celery, with a worker of its own:
#: on a shared queue a delivery run waits behind Wagtail's own tasks (four per publish).
OWN_QUEUE = "hooks"


def worker_command(queue: str, interval: float = 1.0, queue_name: str = "default") -> list[str]:
    if queue == "rq":
        worker_class = os.environ.get("WPH_BENCH_RQ_WORKER_CLASS")
        options = ["--worker-class", worker_class] if worker_class else []
        return [
            sys.executable,
            "-m",
            "django",
            "rqworker",
            "--with-scheduler",
            *options,
            queue_name,
        ]
    if queue == "celery":
        return [
            *(sys.executable, "-m", "celery", "-A", "tests.support.celery_app", "worker"),
            *("--queues", queue_name, "--concurrency", "1", "--without-gossip"),
            *("--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"),
            *("--hostname", f"{queue_name}@%h"),
        ]
    return [sys.executable, "-m", "django", "db_worker", "--interval", str(interval)]


class Workers:
    def __init__(self, env: dict[str, str], count: int, command: list[str]) -> None:
        self.logs = [tempfile.TemporaryFile("w+") for _ in range(count)]  # noqa: SIM115
        self.processes = [
            subprocess.Popen(
                command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, text=True
            )
            for log in self.logs
        ]

    def cpu_seconds(self) -> float:
        """User and system CPU time of the worker processes (and their finished children)."""
        total = 0
        for process in self.processes:
            try:
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process, log in zip(self.processes, self.logs, strict=True):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.seek(0)
            output = log.read()
            log.close()
            if "Traceback" in output or process.returncode not in (0, -15, 15):
                print(f"worker {process.pid} ({process.returncode}):\n{output[-3000:]}")


def record_deliveries(page: Any, count: int, runs: int) -> list[str]:
    """``count`` events to the sink in one transaction, with ``runs`` delivery runs enqueued."""
    from django.db import transaction

    from wagtail_publish_hooks.outbox import record_event
    from wagtail_publish_hooks.signal_handlers import page_event_data
    from wagtail_publish_hooks.tasks import enqueue_delivery_run

    data = page_event_data(page)
    ids = []
    with transaction.atomic():
        for _ in range(count):
            event = record_event("page.published", data=data, instance=page)
            assert event is not None
            ids.append(event.event_id)
        for _ in range(runs - 1):  # record_event enqueued the first run in this transaction
            enqueue_delivery_run()
    return ids


def bodies_for(ids: list[str]) -> list[bytes]:
    from wagtail_publish_hooks.models import Event

    return [
        json.dumps(payload).encode()
        for payload in Event.objects.filter(event_id__in=ids).values_list("payload", flat=True)
    ]


def bare_loop(sink: Sink, bodies: list[bytes], threads: int) -> tuple[float, float]:
    """Requests per second of ``requests.Session`` loops (one per thread) posting ``bodies``,
    and the CPU seconds those threads used."""
    import requests

    headers = {"content-type": "application/json"}
    url = sink.url()
    cpu: list[float] = []

    def post_all(chunk: list[bytes]) -> None:
        started = time.thread_time()
        with requests.Session() as session:
            for body in chunk:
                session.post(url, data=body, headers=headers, timeout=10).raise_for_status()
        cpu.append(time.thread_time() - started)

    chunks = [bodies[n::threads] for n in range(threads)]
    sink.reset(len(bodies))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(post_all, chunks))
    return sink.rate(), sum(cpu)


def floor_loop(sink: Sink, ids: list[str]) -> tuple[float, float, int]:
    """The least a worker can do under the pipeline's contract, written plainly, over the
    deliveries of the events ``ids`` (set due again, with no run enqueued, so that no worker
    takes them): claim ``BATCH_SIZE`` of them with a lease in one ``UPDATE``, read their payloads in
    one ``SELECT``, sign each (Standard Webhooks) and POST it with one ``requests.Session``,
    then commit the batch's attempts (one ``INSERT``: status, duration, the response's headers
    and its truncated body) and outcomes (one ``UPDATE``) in one transaction.

    No address policy, no claim confirmed before a send, no health, no retry decision, no
    failure handling: what any implementation of the contract must add to the bare loop.
    Returns the requests per second at the sink, the CPU seconds of the loop, and how many
    deliveries it recorded."""
    import requests
    from django.db import connection, transaction
    from django.utils import timezone
    from standardwebhooks.webhooks import Webhook

    from wagtail_publish_hooks.conf import get_settings
    from wagtail_publish_hooks.http.responses import RESPONSE_EXCERPT_BYTES
    from wagtail_publish_hooks.models import (
        Attempt,
        AttemptOutcome,
        Delivery,
        DeliveryStatus,
        Event,
    )
    from wagtail_publish_hooks.redaction import redact_headers

    deliveries = connection.ops.quote_name(Delivery._meta.db_table)
    events = connection.ops.quote_name(Event._meta.db_table)
    attempts_table = connection.ops.quote_name(Attempt._meta.db_table)
    token_field = Delivery._meta.get_field("lease_token")
    moment = connection.ops.adapt_datetimefield_value
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    batch = int(get_settings().BATCH_SIZE)
    signer = Webhook(SECRET)
    url = sink.url()

    now = timezone.now()
    Delivery.objects.filter(event__event_id__in=ids).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        lease_token=None,
        lease_expires_at=None,
        delivered_at=None,
    )
    recorded = 0
    sink.reset(len(ids))
    started = time.thread_time()
    with requests.Session() as session, connection.cursor() as cursor:
        while True:
            now = timezone.now()
            token = uuid.uuid4()
            # Only table names and placeholders are formatted in.
            cursor.execute(
                f"UPDATE {deliveries} SET status = %s, lease_token = %s, lease_expires_at = %s "  # noqa: S608
                f"WHERE id IN (SELECT id FROM {deliveries} WHERE status = %s "
                f"AND next_attempt_at <= %s AND lease_token IS NULL "
                f"ORDER BY next_attempt_at, id LIMIT {batch}{lock}) "
                f"RETURNING id, event_id, attempts",
                [
                    DeliveryStatus.SENDING,
                    token_field.get_db_prep_value(token, connection),
                    moment(now + timedelta(seconds=300)),
                    DeliveryStatus.PENDING,
                    moment(now),
                ],
            )
            claimed = sorted(cursor.fetchall())
            if not claimed:
                break
            marks = ", ".join(["%s"] * len(claimed))
            cursor.execute(
                f"SELECT id, event_id, payload FROM {events} WHERE id IN ({marks})",  # noqa: S608
                [event for _pk, event, _n in claimed],
            )
            payloads = {pk: (event_id, payload) for pk, event_id, payload in cursor.fetchall()}
            rows: list[Any] = []
            for pk, event, number in claimed:
                event_id, payload = payloads[event]
                text = payload if isinstance(payload, str) else json.dumps(payload)
                sent_at = timezone.now()
                headers = {
                    "content-type": "application/json",
                    "webhook-id": event_id,
                    "webhook-timestamp": str(int(sent_at.timestamp())),
                    "webhook-signature": signer.sign(event_id, sent_at, text),
                }
                clock = time.perf_counter()
                response = session.post(url, data=text.encode(), headers=headers, timeout=10)
                response.raise_for_status()
                duration = int((time.perf_counter() - clock) * 1000)
                rows.extend(
                    [
                        pk,
                        number + 1,
                        moment(sent_at),
                        duration,
                        AttemptOutcome.SUCCESS,
                        response.status_code,
                        "",
                        json.dumps(redact_headers(headers)),
                        json.dumps(dict(response.headers)),
                        response.text[:RESPONSE_EXCERPT_BYTES],
                        "{}",
                    ]
                )
            done = timezone.now()
            pks = [pk for pk, _event, _n in claimed]
            with transaction.atomic():
                values = ", ".join(["(" + ", ".join(["%s"] * 11) + ")"] * len(claimed))
                cursor.execute(
                    f"INSERT INTO {attempts_table} (delivery_id, number, started_at, "  # noqa: S608
                    f"duration_ms, outcome, status_code, error, request_headers, "
                    f"response_headers, response_body, detail) VALUES {values}",
                    rows,
                )
                cursor.execute(
                    f"UPDATE {deliveries} SET status = %s, attempts = attempts + 1, "  # noqa: S608
                    f"lease_token = NULL, lease_expires_at = NULL, last_status_code = %s, "
                    f"last_error = '', delivered_at = %s, updated_at = %s "
                    f"WHERE id IN ({', '.join(['%s'] * len(pks))}) AND lease_token = %s",
                    [
                        DeliveryStatus.DELIVERED,
                        200,
                        moment(done),
                        moment(done),
                        *pks,
                        token_field.get_db_prep_value(token, connection),
                    ],
                )
                recorded += cursor.rowcount
    seconds = time.thread_time() - started
    sink.done.wait(timeout=10)
    return sink.rate(), seconds, recorded


def clear_outbox() -> None:
    from django_tasks_db.models import DBTaskResult

    from wagtail_publish_hooks.models import Event

    Event.objects.all().delete()
    DBTaskResult.objects.all().delete()


def throughput(
    env: dict[str, str],
    sink: Sink,
    page: Any,
    count: int,
    workers: int,
    rounds: int = 1,
    *,
    floor: bool = False,
) -> dict:
    """W running ``db_worker`` processes, warmed up by a few deliveries; then ``rounds`` rounds
    of ``count`` deliveries recorded at once, each timed at the sink from the first request's
    first byte to the last request (the wait for the next poll is the latency's business, not
    this) and followed at once by the bare loop over the same bodies. Each round's ratio compares
    a worker and a loop measured seconds apart, so that a machine whose speed drifts during the
    run moves both; the ratio reported is the median of the rounds'.

    ``floor``: each round then also runs :func:`floor_loop` over the same deliveries, right
    after the bare loop, with its own ratio to that loop."""
    from wagtail_publish_hooks.models import Delivery, DeliveryStatus

    clear_outbox()
    command = [*worker_command("db", 0.1), "--no-startup-delay"]
    pool = Workers(env, workers, command)
    worker_rates: list[float] = []
    bare_rates: list[float] = []
    ratios: list[float] = []
    floor_rates: list[float] = []
    floor_ratios: list[float] = []
    floor_recorded = 0
    cpu = bare_cpu = floor_cpu = 0.0
    finished = True
    bodies: list[bytes] = []
    try:
        # Until every worker has sent something: imports, first connections, caches.
        warm_up = 20 * workers
        sink.reset(warm_up)
        record_deliveries(page, warm_up, workers)
        if not sink.done.wait(timeout=120):
            raise SystemExit("the workers did not start")
        time.sleep(0.5)
        for _ in range(max(1, rounds)):
            sink.reset(count)
            cpu_before = pool.cpu_seconds()
            ids = record_deliveries(page, count, workers)
            done = sink.done.wait(timeout=max(120, count / 5))
            finished = finished and done
            worker_rate = sink.rate()
            cpu += pool.cpu_seconds() - cpu_before
            if not done:
                break
            bodies = bodies_for(ids)
            bare_rate, seconds = bare_loop(sink, bodies, 1)
            bare_cpu += seconds
            worker_rates.append(worker_rate)
            bare_rates.append(bare_rate)
            ratios.append(worker_rate / bare_rate)
            if floor:
                floor_rate, seconds, recorded = floor_loop(sink, ids)
                floor_cpu += seconds
                floor_recorded += recorded
                floor_rates.append(floor_rate)
                floor_ratios.append(floor_rate / bare_rate)
    finally:
        pool.stop()
    delivered = Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() - warm_up
    bare_rate = median(bare_rates)
    bare_w = bare_loop(sink, bodies, workers)[0] if workers > 1 and bodies else bare_rate
    measured = max(len(ratios), 1)
    return {
        "workers": workers,
        "finished": finished,
        "delivered": delivered,
        "worker_rate": median(worker_rates),
        "bare_rate": bare_rate,
        "bare_rate_w": bare_w,
        "ratio": median(ratios),
        "ratios": ratios,
        "worker_cpu_ms": cpu / (count * measured) * 1000,
        "bare_cpu_ms": bare_cpu / (count * measured) * 1000,
        "floor_rate": median(floor_rates),
        "floor_ratios": floor_ratios,
        "floor_ratio": median(floor_ratios),
        "floor_cpu_ms": floor_cpu / (count * measured) * 1000,
        "floor_complete": floor_recorded == count * len(floor_ratios),
    }


# --------------------------------------------------------------------------------------------
# Statements and commits of a worker run
# --------------------------------------------------------------------------------------------


def count_statements(page: Any, count: int) -> dict[str, int]:
    """Run the worker in this process over ``count`` deliveries; count its statements and
    the transactions that wrote (commits, and writes made in autocommit)."""
    from django.db import connection

    from wagtail_publish_hooks.models import Delivery, DeliveryStatus
    from wagtail_publish_hooks.worker import run_due_deliveries

    clear_outbox()
    record_deliveries(page, count, 1)
    counts = {"statements": 0, "commits": 0}

    def wrapper(execute, sql, params, many, context):
        counts["statements"] += 1
        verb = sql.lstrip().split(None, 1)[0].upper()
        if not connection.in_atomic_block and verb in ("INSERT", "UPDATE", "DELETE"):
            counts["commits"] += 1
        return execute(sql, params, many, context)

    original_commit = connection.commit

    def commit() -> None:
        counts["commits"] += 1
        original_commit()

    connection.commit = commit  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(wrapper):
            summary = run_due_deliveries(max_seconds=120, enqueue_successor=False)
    finally:
        del connection.commit
    delivered = Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count()
    if summary.delivered != count or delivered != count:
        raise SystemExit(f"the statement check delivered {delivered} of {count}")
    return counts


# --------------------------------------------------------------------------------------------
# Latency (one process per queue: the task backend is chosen at start-up)
# --------------------------------------------------------------------------------------------


class CommitClock:
    """The moment the transaction that recorded the deliveries committed.

    A receiver of ``deliveries_recorded`` (sent inside that transaction) arms it; the next
    commit of the connection, before any on-commit callback (an enqueue on RQ or Celery) runs,
    stamps it.
    """

    _instance: CommitClock | None = None

    @classmethod
    def get(cls) -> CommitClock:
        cls._instance = cls._instance or cls()
        return cls._instance

    def __init__(self) -> None:
        from django.db import connection

        from wagtail_publish_hooks.signals import deliveries_recorded

        self.armed = False
        self.at: float | None = None
        deliveries_recorded.connect(self.arm, dispatch_uid="bench-commit-clock", weak=False)
        original = connection.commit

        def commit() -> None:
            original()
            if self.armed:
                self.at, self.armed = time.perf_counter(), False

        connection.commit = commit  # type: ignore[method-assign]

    def arm(self, **kwargs: Any) -> None:
        self.armed = True


def latency_child(args: argparse.Namespace) -> None:
    """Measure one queue's latency; print the result as one JSON line."""
    queue, _, interval = args.latency_child.partition(":")
    workdir = Path(tempfile.mkdtemp(prefix="wph-latency-"))
    if queue == "rq":
        os.environ["PUBLISH_HOOKS_TEST_REDIS_URL"] = args.redis_url
    elif queue == "celery":
        os.environ["PUBLISH_HOOKS_TEST_CELERY_BROKER"] = args.redis_url
    sink = Sink().start()
    try:
        configure_database(args.database, workdir, f"latency_{queue}", template=args.template)
        hooks = {**hooks_settings(sink), "QUEUE_NAME": OWN_QUEUE if args.own_queue else "default"}
        env = setup_django(hooks, migrate=False)
        if queue == "celery":
            from tests.support.celery_app import app

            app.set_current()
            app.set_default()
        if queue in ("rq", "celery"):
            import redis

            redis.Redis.from_url(args.redis_url).flushdb()
        from tests.testapp.models import BlogPage

        page = BlogPage.objects.order_by("-pk").first() if args.template else build_page()
        page.save_revision().publish()  # warms the payload caches; delivered later
        values = measure_latency(
            env,
            sink,
            page,
            queue,
            float(interval or 1),
            args.latency_samples,
            own_queue=OWN_QUEUE if args.own_queue else "",
        )
        name = f"{queue}, own queue" if args.own_queue else f"{queue}, shared queue"
        print("RESULT " + json.dumps({"queue": name, "interval": interval, "values": values}))
    finally:
        sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def measure_latency(
    env: dict[str, str],
    sink: Sink,
    page: Any,
    queue: str,
    interval: float,
    samples: int,
    own_queue: str = "",
) -> list[float]:
    clock = CommitClock.get()
    clear_outbox()
    pool = Workers(env, 1, worker_command(queue, interval, queue_name=own_queue or "default"))
    others = Workers(env, 1 if own_queue else 0, worker_command(queue))  # Wagtail's tasks
    results = []
    try:
        # The first publish waits for the worker to start, and warms it up: not counted.
        for n in range(samples + 1):
            time.sleep(random.uniform(0.2, 1.2))  # not phase-locked to polling
            sink.reset(0)
            page.intro = f"Revision {n}"
            page.save_revision().publish()
            committed = clock.at
            event_id = _last_event_id()
            deadline = time.monotonic() + (60 if n == 0 else 30)
            while event_id not in sink.arrivals and time.monotonic() < deadline:
                time.sleep(0.002)
            arrived = sink.arrivals.get(event_id)
            if arrived is None or committed is None:
                print(f"publish {n}: not delivered within 30 s", file=sys.stderr)
            elif n:  # the first publish warms the worker up: not counted
                results.append(arrived - committed)
    finally:
        pool.stop()
        others.stop()
    return results


def _last_event_id() -> str:
    from wagtail_publish_hooks.models import Event

    return Event.objects.order_by("-pk").values_list("event_id", flat=True).first() or ""


def run_latency(
    args: argparse.Namespace,
    queues: list[str],
    intervals: list[str],
    env: dict[str, str],
    sink: Sink,
    page: Any,
) -> list[dict]:
    """db_worker in this process (its task backend is the default); RQ and Celery each in a
    process of its own, configured for it from the start."""
    results = []
    if "db" in queues:
        for interval in intervals:
            values = measure_latency(env, sink, page, "db", float(interval), args.latency_samples)
            results.append({"queue": "db", "interval": interval, "values": values})
    runs = [(queue, own) for queue in queues if queue != "db" for own in args.queue_modes]
    template = template_database()
    redis_context = None
    if any(queue in ("rq", "celery") for queue in queues):
        from tests.support.redis_server import running_redis

        redis_context = running_redis()
        args.redis_url = redis_context.__enter__()
    try:
        for queue, own in runs:
            command = [
                sys.executable,
                __file__,
                "--latency-child",
                f"{queue}:",
                *(["--own-queue"] if own == "own" else []),
                "--template",
                template,
                "--latency-samples",
                str(args.latency_samples),
                "--database",
                args.database,
                "--redis-url",
                getattr(args, "redis_url", ""),
            ]
            output = subprocess.run(
                command, env=os.environ.copy(), capture_output=True, text=True, check=False
            )
            lines = [line for line in output.stdout.splitlines() if line.startswith("RESULT ")]
            if not lines:
                print(f"latency on {queue} failed:\n{output.stdout[-2000:]}{output.stderr[-3000:]}")
                continue
            results.append(json.loads(lines[-1][len("RESULT ") :]))
    finally:
        if redis_context is not None:
            redis_context.__exit__(None, None, None)
    return results


def database_version() -> str:
    from django.db import connection

    if connection.vendor == "sqlite":
        return f"SQLite {connection.Database.sqlite_version}"
    major, minor = divmod(connection.pg_version, 10000)
    return f"PostgreSQL {major}.{minor}"


def template_database() -> str:
    """What a latency process copies its database from: this process's, migrated."""
    from django.db import connection

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        name = str(connection.settings_dict["NAME"])
    else:
        name = str(connection.settings_dict["NAME"])
    connection.close()  # a template database must have no other connection
    return name


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def spread(ratios: list[float]) -> str:
    """The lowest and highest of the rounds' ratios."""
    return f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "-"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# --------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=SIZES, default="quick")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--deliveries", type=int, help="per throughput round (0 skips them)")
    parser.add_argument(
        "--rounds", type=int, help="throughput rounds per worker count, each with its bare loop"
    )
    parser.add_argument("--workers", help="comma-separated db_worker process counts")
    parser.add_argument("--latency-samples", type=int, help="per queue (0 skips them)")
    parser.add_argument("--queue", help="comma-separated: db, rq, celery")
    parser.add_argument("--intervals", help="db_worker --interval values for the latency")
    parser.add_argument("--no-check", action="store_true", help="skip the statement check")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="each throughput round also runs the floor: the least a worker must do under the "
        "contract (claim, sign, send, record), written plainly, against the same bare loop",
    )
    parser.add_argument("--journal-mode", choices=("delete", "wal"), default="wal")
    parser.add_argument(
        "--queue-modes",
        default="own",
        help="RQ and Celery: 'own' (a queue and worker of the package's own), 'shared' "
        "(Wagtail's tasks on the same queue and worker), or both: own,shared",
    )
    parser.add_argument(
        "--rq-worker-class",
        default="",
        help="rqworker --worker-class (default RQ's own, which forks a process per task; "
        "rq.worker.SimpleWorker runs them in the worker's process)",
    )
    parser.add_argument(
        "--celery-db-reuse-max",
        type=int,
        default=0,
        help="CELERY_DB_REUSE_MAX for the Celery workers (default unset: Celery's Django support "
        "closes the database connection before and after every task, whatever CONN_MAX_AGE says)",
    )
    parser.add_argument("--latency-child", help=argparse.SUPPRESS)
    parser.add_argument("--own-queue", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--template", default="", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rq_worker_class:
        os.environ["WPH_BENCH_RQ_WORKER_CLASS"] = args.rq_worker_class
    if args.celery_db_reuse_max:
        os.environ["PUBLISH_HOOKS_TEST_CELERY_SETTINGS"] = json.dumps(
            {"DB_REUSE_MAX": args.celery_db_reuse_max}
        )
    args.queue_modes = [mode.strip() for mode in args.queue_modes.split(",") if mode.strip()]
    for key, value in SIZES[args.size].items():
        attribute = "queue" if key == "queues" else key
        if getattr(args, attribute) is None:
            setattr(args, attribute, value)
    return args


def main() -> None:
    args = parse_args()
    if args.latency_child:
        latency_child(args)
        return
    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="wph-worker-bench-"))
    sink = Sink().start()
    cluster = None
    problems = []
    try:
        cluster = configure_database(args.database, workdir, "throughput")
        env = setup_django(hooks_settings(sink), args.journal_mode)
        page = build_page()
        page.save_revision().publish()  # warms the payload caches; delivered by nobody
        import django

        print(
            f"Python {sys.version.split()[0]}, Django {django.get_version()}, "
            f"{database_version()}, {os.cpu_count()} CPUs, --size {args.size} "
            f"(set up in {time.perf_counter() - began:.0f} s)"
        )
        if not args.no_check:
            counts = count_statements(page, CHECK_DELIVERIES)
            print(
                f"\nOne worker run over {CHECK_DELIVERIES} deliveries: "
                f"{counts['statements']} SQL statements, {counts['commits']} commits "
                f"(bounds {STATEMENT_BOUNDS['statements']} and {STATEMENT_BOUNDS['commits']})"
            )
            for key, bound in STATEMENT_BOUNDS.items():
                if counts[key] > bound:
                    problems.append(
                        f"{counts[key]} {key} for {CHECK_DELIVERIES} deliveries > {bound}"
                    )
        if args.deliveries:
            print(
                f"\n{args.rounds} rounds per line; per second and the ratio: the rounds' medians"
                f"\n{'workers':>7}  {'deliveries':>10}  {'worker/s':>9}  {'bare/s':>8}  "
                f"{'ratio':>6}  {'rounds':>11}  {'bare x W/s':>10}  {'vs 1 worker':>11}  "
                f"{'worker CPU ms':>13}  {'bare CPU ms':>11}"
            )
            first_rate = None
            floors: list[dict] = []
            for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
                result = throughput(
                    env, sink, page, args.deliveries, workers, args.rounds, floor=args.floor
                )
                first_rate = first_rate or result["worker_rate"] or 1.0
                note = "" if result["finished"] else f"  (only {result['delivered']} delivered)"
                print(
                    f"{workers:>7}  {args.deliveries:>10}  {result['worker_rate']:>9.0f}  "
                    f"{result['bare_rate']:>8.0f}  "
                    f"{result['ratio']:>6.2f}  {spread(result['ratios']):>11}  "
                    f"{result['bare_rate_w']:>10.0f}  "
                    f"{result['worker_rate'] / first_rate:>10.2f}x  "
                    f"{result['worker_cpu_ms']:>13.2f}  {result['bare_cpu_ms']:>11.2f}{note}",
                    flush=True,
                )
                if args.floor and result["floor_ratios"]:
                    floors.append(result)
            print(f"Goal: ratio >= {GOAL_RATIO} with 1 worker (CPU: per delivery / per request).")
            for result in floors:
                complete = "" if result["floor_complete"] else " (some deliveries not its own)"
                print(
                    f"Floor (the contract's least work, plainly, in this process), rounds of "
                    f"W={result['workers']}: {result['floor_rate']:.0f}/s, ratio "
                    f"{result['floor_ratio']:.2f} ({spread(result['floor_ratios'])}), "
                    f"CPU {result['floor_cpu_ms']:.2f} ms per delivery{complete}"
                )
        if args.latency_samples:
            queues = [q.strip() for q in args.queue.split(",") if q.strip()]
            intervals = [i.strip() for i in args.intervals.split(",") if i.strip()]
            print(
                f"\nCommit to first byte at the sink, one worker, {args.latency_samples} publishes:"
            )
            for result in run_latency(args, queues, intervals, env, sink, page):
                values = result["values"]
                if not values:
                    continue
                name = result["queue"] + (
                    f" --interval {result['interval']}" if result["interval"] else ""
                )
                print(
                    f"  {name:<22} p50 {percentile(values, 0.5) * 1000:7.1f} ms   "
                    f"p95 {percentile(values, 0.95) * 1000:7.1f} ms   "
                    f"max {max(values) * 1000:7.1f} ms   "
                    f"mean {statistics.mean(values) * 1000:7.1f} ms"
                )
            print(
                f"Goal on RQ and Celery: p50 <= {LATENCY_GOAL_MS['p50']} ms, "
                f"p95 <= {LATENCY_GOAL_MS['p95']} ms. Total {time.perf_counter() - began:.0f} s."
            )
    finally:
        sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if cluster is not None:
            cluster.stop()
    if problems:
        print("\nREGRESSION: " + "; ".join(problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
