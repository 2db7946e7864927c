"""Crash safety: a worker killed mid-run loses nothing, and a lost enqueue is swept up.

Real ``db_worker`` processes on the suite's database (SQLite, or PostgreSQL in the PostgreSQL
run) send to a logging sink on 127.0.0.1. The sink kills the worker with SIGKILL while one of
its requests is in flight, so at least that delivery was received but never recorded: it has to
be sent again, with the same ``webhook-id``, once its lease has expired.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.conftest import WEBHOOK
from tests.support.load import seed
from tests.support.sink_log import BROKEN, Sink
from wagtail_publish_hooks.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus, Event

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
EVENTS = 1000
DESTINATIONS = ["a", "b"]  # 2 x 1,000 = 2,000 deliveries
KILL_AT = 600  # the sink's request count at which the worker is killed
#: Short, so that the dead worker's claims expire soon; more than twice the requests' TIMEOUT, so
#: that a worker slowed down by a loaded machine keeps its claims through a send.
LEASE_SECONDS = 4
TIMEOUT = 180  # a guard against a hang, not a timing


@pytest.fixture
def sink():
    with Sink(delay=0.003) as server:
        yield server


@pytest.fixture
def worker_config(settings, sink):
    settings.TASKS = DB_TASKS
    config = {
        "DESTINATIONS": {
            alias: {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url(f"/{alias}"), "TIMEOUT": 1}}
            for alias in DESTINATIONS
        },
        "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"],
        "RETRY_SCHEDULE": [1],
        "LEASE_SECONDS": LEASE_SECONDS,
    }
    settings.WAGTAIL_PUBLISH_HOOKS = config
    return config


@pytest.fixture
def start_worker(worker_config, tmp_path):
    """``start_worker(*args)``: a real ``db_worker`` on this test's database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(worker_config),
        TEST_SQLITE_PATH=str(connection.settings_dict["NAME"]),
        PYTHONPATH=str(ROOT),
    )
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        log = (tmp_path / f"worker-{len(started)}.log").open("w")
        command = [sys.executable, "-m", "django", "db_worker", "--no-startup-delay"]
        command += ["--interval", "0.2", *args]
        worker = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def sweep() -> str:
    out = io.StringIO()
    call_command("publish_hooks", "sweep", stdout=out)
    return out.getvalue()


def test_a_worker_killed_mid_run_loses_nothing_and_resends_with_the_same_id(sink, start_worker):
    seed(EVENTS, DESTINATIONS)
    assert Delivery.objects.count() == 2000

    first = start_worker()
    sink.on_request = lambda count: count == KILL_AT and os.kill(first.pid, signal.SIGKILL)
    assert first.wait(timeout=TIMEOUT) == -signal.SIGKILL
    sink.on_request = None

    # The dead worker's claims are still held; part of the run is done, part not started.
    abandoned = dict(
        Delivery.objects.filter(status=DeliveryStatus.SENDING).values_list("pk", "lease_token")
    )
    assert abandoned
    assert len(set(abandoned.values())) == 1  # one batch, claimed by the dead worker
    delivered_before = Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count()
    assert 0 < delivered_before < 2000

    # A worker starts again: it takes the run the first one never reached, and once the dead
    # worker's leases have expired, a sweep (from cron) reclaims those too.
    start_worker()
    deadline = time.monotonic() + TIMEOUT
    swept = ""
    while time.monotonic() < deadline:
        left = set(
            Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).values_list("pk", flat=True)
        )
        if not left:
            break
        leases_expired = not Delivery.objects.filter(
            pk__in=left, lease_expires_at__gt=timezone.now()
        ).exists()
        if not swept and left <= set(abandoned) and leases_expired:
            swept = sweep()
        time.sleep(0.2)

    # Every delivery ended delivered; nothing lost.
    statuses = Delivery.objects.values_list("status", flat=True)
    assert set(statuses) == {DeliveryStatus.DELIVERED}, swept
    assert Delivery.objects.filter(lease_token__isnull=False).count() == 0

    # The sink received every delivery, each as often as its attempts record, except deliveries
    # the dead worker had sent without recording them: those were sent once more, never at the
    # same time as the first send, and with the same webhook-id, the id of the event numbered n.
    # (A request the kill cut off half-sent is logged as broken; it is no send. A request cut off
    # at its TIMEOUT on a loaded machine is a recorded retry, sent again like any other.)
    log = [record for record in sink.snapshot() if record.outcome != BROKEN]
    assert not [record for record in log if record.overlapped]
    event_ids = dict(Event.objects.values_list("payload__data__n", "event_id"))
    ids_by_delivery: dict[tuple[str, str], set[str]] = defaultdict(set)
    sends: dict[tuple[str, str], int] = defaultdict(int)
    for record in log:
        key = (record.path, event_ids[record.n])
        ids_by_delivery[key].add(record.webhook_id)
        sends[key] += 1
    assert len(sends) == 2000
    assert all(ids == {event_id} for (_, event_id), ids in ids_by_delivery.items())
    recorded: dict[tuple[str, str], int] = defaultdict(int)
    for alias, event_id in Attempt.objects.values_list(
        "delivery__destination", "delivery__event__event_id"
    ):
        recorded[f"/{alias}", event_id] += 1
    lost = {key for key, count in sends.items() if count != recorded[key]}
    # Each lost send is one: sent once more than recorded, and only by the dead worker's batch.
    assert all(sends[key] == recorded[key] + 1 for key in lost)
    killed_request = next(record for record in log if record.seq == KILL_AT)
    assert (killed_request.path, event_ids[killed_request.n]) in lost
    abandoned_keys = set(
        Delivery.objects.filter(pk__in=abandoned).values_list("destination", "event__event_id")
    )
    assert lost <= {(f"/{alias}", event_id) for alias, event_id in abandoned_keys}
    # The lost sends left no record; every other send is an attempt: one success per delivery,
    # and a retry for each send that timed out.
    retries = Attempt.objects.filter(outcome=AttemptOutcome.RETRY).count()
    assert Attempt.objects.filter(outcome=AttemptOutcome.SUCCESS).count() == 2000
    assert Attempt.objects.count() == 2000 + retries == len(log) - len(lost)


@pytest.mark.parametrize("loss", ["task row deleted", "never enqueued"])
def test_sweep_recovers_a_lost_enqueue(sink, start_worker, settings, worker_config, loss):
    if loss == "never enqueued":
        # The task backend is unreachable when the events are recorded.
        settings.WAGTAIL_PUBLISH_HOOKS = {**worker_config, "TASK_BACKEND": "unreachable"}
        seed(20, DESTINATIONS)
        settings.WAGTAIL_PUBLISH_HOOKS = worker_config
    else:
        seed(20, DESTINATIONS)
        DBTaskResult.objects.all().delete()
    assert not DBTaskResult.objects.exists()
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 40

    # A worker finds nothing to run: the deliveries are recorded, but nothing would send them.
    assert start_worker("--batch").wait(timeout=TIMEOUT) == 0
    assert sink.snapshot() == []
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 40

    output = sweep()
    assert "40 deliveries due" in output
    assert "A delivery run was enqueued." in output
    assert start_worker("--batch").wait(timeout=TIMEOUT) == 0
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    assert len(sink.snapshot()) == 40


# -- An attempt that recorded no response: sent or not, it says which ---------------------------


@pytest.mark.parametrize("stall", ["before taking a connection", "on a kept-alive connection"])
def test_a_request_whose_deadline_passed_before_it_was_written_is_not_sent(
    configure, deliver, monkeypatch, stall
):
    """The soak's attempts "without a response" that the sink never received.

    A request's deadline starts before a connection is taken. On a busy machine the sending
    thread can stall past it before writing a byte: the deadline watch then shut the kept-alive
    connection down under it (the write failed: nothing reached the sink, yet the attempt said
    "no complete response"), or the request went out after its deadline. Now a request is
    written only while its deadline has not passed, and the attempt says it was not sent.
    """
    from wagtail_publish_hooks.http import pinning as http

    with Sink() as sink:
        configure(
            DESTINATIONS={
                "a": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url("/a"), "TIMEOUT": 0.5}}
            },
            TASK_BACKEND="missing",
            RETRY_SCHEDULE=[3600],
        )
        stalls = iter([0.0, 0.8])  # the first send keeps its connection alive; the second stalls
        if stall == "before taking a connection":
            resolve = http.resolve_target

            def slow_resolve(*args, **kwargs):
                time.sleep(next(stalls))
                return resolve(*args, **kwargs)

            monkeypatch.setattr(http, "resolve_target", slow_resolve)
        else:
            get_conn = http._WatchedPoolMixin._get_conn

            def slow_get_conn(self, timeout=None):
                conn = get_conn(self, timeout)
                time.sleep(next(stalls))
                return conn

            monkeypatch.setattr(http._WatchedPoolMixin, "_get_conn", slow_get_conn)
        seed(2, ["a"], runs=0)
        deliver()
        time.sleep(0.2)
        log = sink.snapshot()

    first, second = Attempt.objects.order_by("delivery_id")
    assert first.status_code == 200
    assert second.status_code is None
    assert second.error.startswith("not sent to http://127.0.0.1:")
    assert second.error.endswith("0.5 s passed before the request could be sent")
    # Nothing reached the sink but the first request: the record and the sink agree.
    assert len(log) == 1
