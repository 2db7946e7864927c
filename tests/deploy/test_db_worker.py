"""django-tasks-db's real ``db_worker``, as a subprocess, delivers what a publish enqueued."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult
from standardwebhooks.webhooks import Webhook
from werkzeug import Response

from tests.conftest import WEBHOOK
from tests.support.workers import db_worker
from wagtail_publish_hooks.models import Delivery, DeliveryStatus

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture
def worker_env(settings, httpserver, secret):
    settings.TASKS = DB_TASKS
    config = {
        "DESTINATIONS": {
            "consumer": {
                "BACKEND": WEBHOOK,
                "OPTIONS": {"URL": httpserver.url_for("/hooks"), "SECRET": secret},
            }
        },
        "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"],
        "RETRY_SCHEDULE": [1],
    }
    settings.WAGTAIL_PUBLISH_HOOKS = config
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(config),
        TEST_SQLITE_PATH=str(connection.settings_dict["NAME"]),
        PYTHONPATH=str(ROOT),
    )
    return env


def test_db_worker_delivers_what_a_publish_enqueued(
    worker_env, httpserver, secret, draft_blog_page
):
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()

    # Nothing is sent in the publishing process: it only recorded and enqueued.
    assert httpserver.log == []
    assert Delivery.objects.get().status == DeliveryStatus.PENDING
    assert DBTaskResult.objects.filter(status="READY").count() >= 1

    result = subprocess.run(
        db_worker(worker_env, "--batch"),
        env=worker_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    assert len(httpserver.log) == 1
    request, _ = httpserver.log[0]
    payload = Webhook(secret).verify(request.get_data(), dict(request.headers))
    assert payload["data"]["page"]["id"] == draft_blog_page.pk
    assert secret not in result.stdout + result.stderr


def test_db_worker_runs_a_deferred_retry(worker_env, httpserver, draft_blog_page):
    replies = [Response("busy", status=503), Response("ok")]
    httpserver.expect_request("/hooks").respond_with_handler(lambda request: replies.pop(0))
    draft_blog_page.save_revision().publish()

    worker = subprocess.Popen(
        db_worker(worker_env),
        env=worker_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        delivery = Delivery.objects.get()
        while time.monotonic() < deadline:
            delivery.refresh_from_db()
            if delivery.status == DeliveryStatus.DELIVERED:
                break
            time.sleep(0.2)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    assert delivery.status == DeliveryStatus.DELIVERED, output
    assert delivery.attempts == 2
    first, second = [request for request, _ in httpserver.log]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    # The retry ran from a task deferred with run_after, not from a sweep.
    runs = DBTaskResult.objects.filter(task_path__endswith="deliver_due_deliveries")
    deferred = [run for run in runs if run.task_result.task.run_after is not None]
    assert runs.count() == 2
    assert len(deferred) == 1
