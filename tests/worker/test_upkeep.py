"""No cron of ours to forget: the sweep and the prune keep themselves running as tasks.

Where the task backend can defer tasks (django-tasks-db here, with a real ``db_worker``), the
worker's first delivery run starts both jobs; each run schedules the next, at most one pending of
each. A backend that cannot defer (or runs tasks immediately) leaves them to cron.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.conftest import IMMEDIATE_BACKEND, WEBHOOK
from tests.support.load import seed
from tests.support.sink_log import Sink
from wagtail_publish_hooks import tasks as upkeep
from wagtail_publish_hooks.models import Delivery, DeliveryStatus, Event, Upkeep

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
TIMEOUT = 60  # a guard against a hang, not a timing


def pending(name: str) -> list[DBTaskResult]:
    return [
        row
        for row in DBTaskResult.objects.filter(status="READY", task_path__endswith="run_upkeep")
        if row.args_kwargs["args"][0] == name
    ]


def status() -> str:
    out = io.StringIO()
    call_command("publish_hooks", "status", stdout=out)
    return out.getvalue()


def wait_for(condition, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


# -- With a real db_worker ------------------------------------------------------------------------


@pytest.fixture
def sink():
    with Sink() as server:
        yield server


@pytest.fixture
def worker_config(settings, sink):
    settings.TASKS = DB_TASKS
    config = {
        "DESTINATIONS": {"a": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url("/a")}}},
        "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"],
        "RETRY_SCHEDULE": [1],
    }
    settings.WAGTAIL_PUBLISH_HOOKS = config
    return config


@pytest.fixture
def worker(worker_config, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(worker_config),
        TEST_SQLITE_PATH=str(connection.settings_dict["NAME"]),
        PYTHONPATH=str(ROOT),
    )
    log = (tmp_path / "worker.log").open("w")
    command = [sys.executable, "-m", "django", "db_worker", "--no-startup-delay"]
    process = subprocess.Popen(
        [*command, "--interval", "0.2"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.worker
def test_the_worker_keeps_sweep_and_prune_running_and_a_lost_enqueue_is_swept(
    sink, worker_config, settings, worker
):
    # Nothing has run yet, and status says how it will start.
    assert "Sweep: never ran as a task; starts with the worker's next delivery run." in status()

    seed(3, ["a"])  # enqueues a delivery run: the worker's first run starts the upkeep
    assert wait_for(
        lambda: (
            Upkeep.objects.filter(last_run_at__isnull=False).count() == 2
            and len(pending("sweep")) == 1
            and len(pending("prune")) == 1
        )
    ), list(Upkeep.objects.values())
    assert wait_for(lambda: len(sink.snapshot()) == 3)

    # One pending run of each, due an interval after the last.
    now = timezone.now()
    sweep_row, prune_row = Upkeep.objects.get(name="sweep"), Upkeep.objects.get(name="prune")
    assert now < pending("sweep")[0].run_after <= now + timedelta(seconds=61)
    assert now + timedelta(hours=23) < pending("prune")[0].run_after
    assert str(pending("sweep")[0].id) == sweep_row.task_id
    assert prune_row.last_result == "0 event(s) deleted"
    report = status()
    assert "Sweep: last ran " in report and "; next due " in report
    assert "Prune: last ran " in report and ": 0 event(s) deleted;" in report

    # An enqueue is lost: the task backend was unreachable when these events were recorded.
    settings.WAGTAIL_PUBLISH_HOOKS = {**worker_config, "TASK_BACKEND": "unreachable"}
    seed(4, ["a"])
    settings.WAGTAIL_PUBLISH_HOOKS = worker_config
    time.sleep(1)
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 4
    # The next sweep's time comes (brought forward, rather than waiting a minute).
    DBTaskResult.objects.filter(pk=pending("sweep")[0].pk).update(run_after=timezone.now())
    assert wait_for(lambda: len(sink.snapshot()) == 7)
    assert wait_for(lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 7)
    assert "4 due, run enqueued" in Upkeep.objects.get(name="sweep").last_result
    # ...and the chain goes on, still one pending run of each.
    assert wait_for(lambda: len(pending("sweep")) == 1 and len(pending("prune")) == 1)
    assert Upkeep.objects.get(name="sweep").token != sweep_row.token


# -- Dedupe and recovery, in this process ---------------------------------------------------------


@pytest.fixture
def db_tasks(settings):
    settings.TASKS = DB_TASKS
    settings.WAGTAIL_PUBLISH_HOOKS = {"DESTINATIONS": {}}


def test_at_most_one_pending_run_of_each_job(db_tasks):
    assert upkeep.ensure_upkeep(force=True) == ["sweep", "prune"]
    assert upkeep.ensure_upkeep(force=True) == []
    assert len(pending("sweep")) == 1 and len(pending("prune")) == 1

    # Two processes that both read the row race to replace its run: one wins.
    token = Upkeep.objects.get(name="sweep").token
    assert upkeep.schedule("sweep", expected=token, run_after=None)
    assert not upkeep.schedule("sweep", expected=token, run_after=None)

    # A run that is not the pending one (a leftover) does nothing and schedules nothing.
    before = DBTaskResult.objects.count()
    assert upkeep.run_scheduled("sweep", str(uuid.uuid4()))["ran"] is False
    assert upkeep.run_scheduled("sweep", str(token))["ran"] is False
    assert DBTaskResult.objects.count() == before
    assert Upkeep.objects.get(name="sweep").last_run_at is None


def test_the_pending_run_does_the_work_and_schedules_the_next(db_tasks):
    upkeep.ensure_upkeep(force=True)
    first = pending("prune")[0]
    Event.objects.create(event_type="page.published", payload={})
    Event.objects.filter().update(created_at=timezone.now() - timedelta(days=40))
    token = first.args_kwargs["args"][1]
    DBTaskResult.objects.filter(pk=first.pk).update(status="RUNNING")  # as a worker claims it

    assert upkeep.run_scheduled("prune", token) == {
        "job": "prune",
        "ran": True,
        "result": "1 event(s) deleted",
    }
    assert not Event.objects.exists()
    row = Upkeep.objects.get(name="prune")
    assert row.last_run_at is not None and str(row.token) != token
    (following,) = pending("prune")
    assert following.pk != first.pk
    assert following.run_after > timezone.now() + timedelta(hours=23)


def test_a_lost_run_is_started_again_but_a_queued_one_is_not_duplicated(db_tasks):
    upkeep.ensure_upkeep(force=True)
    long_ago = timezone.now() - timedelta(hours=3)
    Upkeep.objects.update(next_run_at=long_ago)

    # Overdue but still queued (the workers are stopped): left alone.
    assert upkeep.ensure_upkeep(force=True) == []
    assert len(pending("sweep")) == 1

    # Its task row is gone (a queue flushed, a worker killed): started again.
    DBTaskResult.objects.filter(task_path__endswith="run_upkeep").delete()
    assert upkeep.ensure_upkeep(force=True) == ["sweep", "prune"]
    assert len(pending("sweep")) == 1 and len(pending("prune")) == 1


def test_one_look_a_minute_per_process(db_tasks):
    upkeep.ensure_upkeep(force=True)
    DBTaskResult.objects.all().delete()
    Upkeep.objects.all().delete()
    assert upkeep.ensure_upkeep() == []  # looked a moment ago
    assert not DBTaskResult.objects.exists()


@pytest.mark.parametrize(
    "backend",
    ["tests.support.task_backends.NoDeferBackend", IMMEDIATE_BACKEND],
    ids=["no-defer", "immediate"],
)
def test_backends_that_cannot_defer_leave_upkeep_to_cron(settings, backend):
    settings.TASKS = {"default": {"BACKEND": backend}}
    settings.WAGTAIL_PUBLISH_HOOKS = {"DESTINATIONS": {}}
    assert upkeep.ensure_upkeep(force=True) == []
    assert not Upkeep.objects.exists()
    report = status()
    assert "Sweep: never ran as a task; the task backend cannot defer tasks: run it from cron." in (
        report
    )
    assert "Prune: never ran as a task; the task backend cannot defer tasks" in report
