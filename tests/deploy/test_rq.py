"""The RQ deployment: django-tasks-rq, a real redis-server and several real ``rqworker`` processes.

The publishing process only records and enqueues (after commit: Redis is not the outbox's
database); the workers deliver, and a retry goes back to Redis as a deferred job that the
worker's scheduler (``--with-scheduler``) releases when it is due.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection
from standardwebhooks.webhooks import Webhook
from werkzeug import Response

from tests.conftest import WEBHOOK
from tests.support.redis_server import redis_url  # noqa: F401 - a fixture
from tests.testapp.models import BlogPage
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
RQ_TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}


@pytest.fixture
def redis_client(settings, redis_url):  # noqa: F811
    """Point this process's task backend at Redis, empty, and return a Redis client."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    settings.RQ_QUEUES = {"default": {"URL": redis_url}}
    settings.RQ = {"JOB_CLASS": "django_tasks_rq.Job"}
    settings.TASKS = RQ_TASKS
    yield client
    client.flushdb()


@pytest.fixture
def worker_env(redis_client, redis_url, configure, httpserver, secret):  # noqa: F811
    config = configure(
        DESTINATIONS={
            "consumer": {
                "BACKEND": WEBHOOK,
                "OPTIONS": {"URL": httpserver.url_for("/hooks"), "SECRET": secret},
            }
        },
        RETRY_SCHEDULE=[3],
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(config),
        PUBLISH_HOOKS_TEST_REDIS_URL=redis_url,
        TEST_SQLITE_PATH=str(connection.settings_dict["NAME"]),
        PYTHONPATH=str(ROOT),
    )
    return env


class Workers:
    """``count`` real ``manage.py rqworker`` processes, as a deployment runs them.

    They take django-tasks-rq's job class from ``RQ["JOB_CLASS"]`` (the subprocess settings).
    """

    def __init__(self, env: dict[str, str], count: int) -> None:
        self.processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "django",
                    "rqworker",
                    "--with-scheduler",
                    "--name",
                    f"wph-test-{os.getpid()}-{n}",
                    "default",
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for n in range(count)
        ]
        self.output: list[str] = []

    def stop(self) -> str:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                self.output.append(process.communicate(timeout=30)[0])
            except subprocess.TimeoutExpired:
                process.kill()
                self.output.append(process.communicate()[0])
        return "\n".join(self.output)


def wait_for(condition, timeout: float = 40) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_rq_backend_supports_deferred_runs(redis_client):
    from wagtail_publish_hooks.tasks import get_task_backend

    backend = get_task_backend()
    assert type(backend).__name__ == "RQBackend"
    assert backend.supports_defer


def test_rq_job_class_setting_is_checked(redis_client, settings):
    from django.core import checks

    def ids():
        return [m.id for m in checks.run_checks(tags=["wagtail_publish_hooks"])]

    assert "wagtail_publish_hooks.W016" not in ids()
    settings.RQ = {}
    assert "wagtail_publish_hooks.W016" in ids()
    settings.RQ = {"JOB_CLASS": "rq.job.Job"}
    messages = checks.run_checks(tags=["wagtail_publish_hooks"])
    [w016] = [m for m in messages if m.id == "wagtail_publish_hooks.W016"]
    assert "'rq.job.Job'" in w016.msg and "--job-class django_tasks_rq.Job" in w016.msg


def test_rqworkers_deliver_every_publish_once(
    worker_env, redis_client, httpserver, secret, blog_index
):
    httpserver.expect_request("/hooks").respond_with_data("ok")
    pages = []
    for n in range(8):
        page = BlogPage(title=f"Post {n}", slug=f"post-{n}", live=False)
        blog_index.add_child(instance=page)
        pages.append(page)

    for page in pages:
        page.save_revision().publish()
    # The publishing process sent nothing: it recorded, then enqueued on commit into Redis.
    assert httpserver.log == []
    assert redis_client.llen("rq:queue:default") >= 1

    workers = Workers(worker_env, 3)
    try:
        delivered = wait_for(
            lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == len(pages)
        )
    finally:
        output = workers.stop()
    assert delivered, output
    assert Delivery.objects.count() == len(pages)
    ids = Counter(request.headers["webhook-id"] for request, _ in httpserver.log)
    assert len(ids) == len(pages)
    assert set(ids.values()) == {1}  # each event sent once, by one of the workers
    received = {
        Webhook(secret).verify(request.get_data(), dict(request.headers))["data"]["page"]["id"]
        for request, _ in httpserver.log
    }
    assert received == {page.pk for page in pages}
    assert secret not in output


def scheduled_delivery_runs(redis_client) -> int:
    """Delivery runs in RQ's scheduled registry (the upkeep tasks wait there too)."""
    return sum(
        b"deliver_due_deliveries"
        in (redis_client.hget(f"rq:job:{job_id.decode()}", "description") or b"")
        for job_id in redis_client.zrange("rq:scheduled:default", 0, -1)
    )


def test_a_retry_is_a_deferred_rq_job_run_by_the_scheduler(
    worker_env, redis_client, httpserver, draft_blog_page
):
    replies = [Response("busy", status=503), Response("ok")]
    lock = threading.Lock()

    def reply(request):
        with lock:
            return replies.pop(0)

    httpserver.expect_request("/hooks").respond_with_handler(reply)
    workers = Workers(worker_env, 2)
    try:
        draft_blog_page.save_revision().publish()
        # After the 503 the run leaves a job in RQ's scheduled registry (due 3 s later)...
        scheduled = wait_for(lambda: scheduled_delivery_runs(redis_client) >= 1)
        assert Delivery.objects.get().status in (DeliveryStatus.RETRYING, DeliveryStatus.SENDING)
        # ...which the scheduler moves to the queue when it is due; a worker delivers.
        delivered = wait_for(
            lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).exists()
        )
    finally:
        output = workers.stop()
    assert scheduled, output
    assert delivered, output
    delivery = Delivery.objects.get()
    assert delivery.attempts == 2
    first, second = Attempt.objects.filter(delivery=delivery).order_by("number")
    assert first.status_code == 503 and second.status_code == 200
    assert (second.started_at - first.started_at).total_seconds() >= 3  # not before its time
    assert scheduled_delivery_runs(redis_client) == 0
    first_request, second_request = [request for request, _ in httpserver.log]
    assert first_request.headers["webhook-id"] == second_request.headers["webhook-id"]
