"""The Celery deployment: django-tasks-fennel, a real redis-server broker and real ``celery worker``
processes running the site's own Celery app (``tests/support/celery_app.py``).

The publishing process only records and, on commit, sends a message to the broker; the workers
deliver. A retry is a deferred task: a message with an ``eta`` that a worker holds (unacknowledged,
in the broker's ``unacked`` hash) and runs when it is due. No ``celery beat`` is involved.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import celery
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
CELERY_TASKS = {"default": {"BACKEND": "django_tasks_fennel.CeleryBackend"}}
#: The queue the messages go to: django-tasks-fennel sends to the task's queue_name.
QUEUE = "default"


@pytest.fixture
def broker(settings, redis_url):  # noqa: F811
    """Point this process's task backend at Celery on Redis, empty; return a Redis client.

    The publishing process gets a Celery app of its own, made current as a site's ``celery.py``
    does at startup; the previous current app comes back afterwards.
    """
    import redis
    from celery import _state

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    previous = (_state._tls.current_app, _state.default_app)
    app = celery.Celery("wph-test-publisher", broker=redis_url, set_as_current=True)
    app.set_default()
    settings.TASKS = CELERY_TASKS
    yield client
    _state._tls.current_app, _state.default_app = previous
    app.close()
    client.flushdb()


@pytest.fixture
def worker_env(broker, redis_url, configure, httpserver, secret):  # noqa: F811
    def make(retry_schedule: list[int], **celery_settings: object) -> dict[str, str]:
        config = configure(
            DESTINATIONS={
                "consumer": {
                    "BACKEND": WEBHOOK,
                    "OPTIONS": {"URL": httpserver.url_for("/hooks"), "SECRET": secret},
                }
            },
            RETRY_SCHEDULE=retry_schedule,
        )
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
        env.update(
            DJANGO_SETTINGS_MODULE="tests.settings",
            PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(config),
            PUBLISH_HOOKS_TEST_CELERY_BROKER=redis_url,
            PUBLISH_HOOKS_TEST_CELERY_SETTINGS=json.dumps(celery_settings),
            TEST_SQLITE_PATH=str(connection.settings_dict["NAME"]),
            PYTHONPATH=str(ROOT),
        )
        return env

    return make


class Workers:
    """``count`` real ``celery worker`` processes (prefork, two children each), as a site runs
    them: ``celery -A <project> worker -Q default``."""

    def __init__(self, env: dict[str, str], count: int) -> None:
        # Files, not pipes: nobody reads the workers' logs until they stop, and a full pipe would
        # block them.
        self.logs = [tempfile.TemporaryFile("w+") for _ in range(count)]  # noqa: SIM115
        self.processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tests.support.celery_app",
                    "worker",
                    "--queues",
                    QUEUE,
                    "--hostname",
                    f"wph-test-{os.getpid()}-{n}@%h",
                    "--concurrency",
                    "2",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for n, log in enumerate(self.logs)
        ]

    def stop(self) -> str:
        for process in self.processes:
            process.terminate()  # warm shutdown: held deferred messages go back to the broker
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        output = []
        for log in self.logs:
            log.seek(0)
            output.append(log.read())
            log.close()
        return "\n".join(output)


def wait_for(condition, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def queued_messages(client) -> int:
    """Messages waiting in the queue. Kombu's Redis transport keeps one list per priority step
    (``default``, ``default\\x06\\x163``...) and django-tasks-fennel sends with a priority."""
    return sum(client.llen(key) for key in client.scan_iter(match=f"{QUEUE}*"))


def held_deferred_messages(client) -> list[datetime]:
    """The ETAs of the deferred delivery runs workers hold (kombu's Redis ``unacked`` hash).

    Upkeep runs (the self-rescheduling sweep and prune) are deferred messages too; they are left
    out."""
    etas = []
    for raw in client.hvals("unacked"):
        headers = json.loads(raw)[0]["headers"]
        eta = headers.get("eta")
        if eta and "deliver_due_deliveries" in headers.get("task", ""):
            etas.append(datetime.fromisoformat(eta))
    return etas


def test_celery_backend_supports_deferred_runs(broker):
    from wagtail_publish_hooks.tasks import get_task_backend

    backend = get_task_backend()
    assert type(backend).__module__.startswith("django_tasks_fennel")
    assert backend.supports_defer


def test_celery_workers_deliver_every_publish_once(
    worker_env, broker, httpserver, secret, blog_index
):
    env = worker_env([3])
    httpserver.expect_request("/hooks").respond_with_data("ok")
    pages = []
    for n in range(8):
        page = BlogPage(title=f"Post {n}", slug=f"post-{n}", live=False)
        blog_index.add_child(instance=page)
        pages.append(page)

    for page in pages:
        page.save_revision().publish()
    # The publishing process sent nothing: it recorded, then on commit put messages on the queue.
    assert httpserver.log == []
    assert queued_messages(broker) >= 1

    workers = Workers(env, 2)
    try:
        delivered = wait_for(
            lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == len(pages)
        )
        time.sleep(1)  # room for a duplicate send to show up, were there one
    finally:
        output = workers.stop()
    assert delivered, output
    assert "django_tasks:wagtail_publish_hooks.tasks.deliver_due_deliveries" in output
    assert Delivery.objects.count() == len(pages)
    assert Attempt.objects.count() == len(pages)
    ids = Counter(request.headers["webhook-id"] for request, _ in httpserver.log)
    assert len(ids) == len(pages)
    assert set(ids.values()) == {1}  # each event sent once, by one of the workers
    received = {
        Webhook(secret).verify(request.get_data(), dict(request.headers))["data"]["page"]["id"]
        for request, _ in httpserver.log
    }
    assert received == {page.pk for page in pages}
    assert secret not in output


def _retry_after_503(worker_env, broker, httpserver, draft_blog_page, delay, **celery_settings):
    replies = [Response("busy", status=503), Response("ok")]
    lock = threading.Lock()

    def reply(request):
        with lock:
            return replies.pop(0)

    httpserver.expect_request("/hooks").respond_with_handler(reply)
    workers = Workers(worker_env([delay], **celery_settings), 2)
    try:
        draft_blog_page.save_revision().publish()
        # After the 503 a worker holds a message whose ETA is the delivery's next attempt...
        held = wait_for(lambda: held_deferred_messages(broker))
        etas = held_deferred_messages(broker)
        delivery = Delivery.objects.get()
        assert delivery.status in (DeliveryStatus.RETRYING, DeliveryStatus.SENDING)
        # ...and runs it when it is due; no beat runs, and the sweep only enqueues what is due.
        delivered = wait_for(
            lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).exists()
        )
        time.sleep(1)
    finally:
        output = workers.stop()
    assert held, output
    assert delivered, output
    first, second = Attempt.objects.filter(delivery=delivery).order_by("number")
    assert first.status_code == 503 and second.status_code == 200
    scheduled = delivery.next_attempt_at.timestamp()  # as recorded after the 503
    assert scheduled >= first.started_at.timestamp() + delay
    # The held message is the run deferred to that second (run_after rounds up to a second).
    [eta] = {eta.timestamp() for eta in etas if 0 <= eta.timestamp() - scheduled < 1}
    started = second.started_at.timestamp()
    # Not before its time, and at its time rather than whenever something else came by.
    assert scheduled <= started < eta + 5, output
    first_request, second_request = [request for request, _ in httpserver.log]
    assert first_request.headers["webhook-id"] == second_request.headers["webhook-id"]
    assert Delivery.objects.get().attempts == 2
    return output


def test_a_retry_is_a_deferred_celery_task_run_at_its_time(
    worker_env, broker, httpserver, draft_blog_page
):
    _retry_after_503(worker_env, broker, httpserver, draft_blog_page, 3)


def test_a_deferred_run_outliving_the_visibility_timeout_sends_once(
    worker_env, broker, httpserver, draft_blog_page
):
    """Redis gives a held message to another worker once the visibility timeout has passed, so a
    retry deferred beyond it runs more than once; the lease keeps it to one send."""
    output = _retry_after_503(
        worker_env,
        broker,
        httpserver,
        draft_blog_page,
        8,
        BROKER_TRANSPORT_OPTIONS={
            "visibility_timeout": 2,
            # kombu looks for overdue messages every 10 x 10 s by default; here every second.
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
    )
    received = Counter(re.findall(r"deliver_due_deliveries\[(\w+)\] received", output))
    # The deferred run's message was handed out again (same task id) before it was due...
    assert max(received.values()) >= 2, output
    # ...and the helper above saw exactly two sends: the 503 and the retry.
    assert len(httpserver.log) == 2


def _check_ids(**celery_conf: object) -> list:
    from django.core import checks

    celery.current_app.conf.update(celery_conf)
    return [
        message
        for message in checks.run_checks(tags=["wagtail_publish_hooks"])
        if message.id in ("wagtail_publish_hooks.W026", "wagtail_publish_hooks.E055")
    ]


def test_a_queue_no_celery_worker_consumes_by_default_is_checked(broker, settings, configure):
    configure()
    # A site's Celery app consumes 'celery' unless told otherwise; the runs go to 'default'.
    [w026] = _check_ids()
    assert w026.id == "wagtail_publish_hooks.W026"
    assert "'default'" in w026.msg and "'-Q celery,default'" in w026.hint
    assert _check_ids(task_default_queue="default") == []
    settings.TASKS = {**CELERY_TASKS, "default": {**CELERY_TASKS["default"], "QUEUES": ["hooks"]}}
    configure(QUEUE_NAME="hooks")
    assert [m.id for m in _check_ids()] == ["wagtail_publish_hooks.W026"]
    from kombu import Queue

    assert _check_ids(task_queues=[Queue("default"), Queue("hooks")]) == []


def test_celery_time_limits_shorter_than_a_run_are_checked(broker, configure, httpserver):
    configure(
        MAX_RUN_SECONDS=30,
        DESTINATIONS={
            "slow": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/"), "TIMEOUT": 40}}
        },
    )

    def limits(hard, soft):
        return _check_ids(
            task_default_queue="default", task_time_limit=hard, task_soft_time_limit=soft
        )

    assert limits(None, None) == []
    assert limits(3600, 600) == []
    [e055] = limits(70, None)  # 30 s of claiming, then a 40 s send
    assert e055.id == "wagtail_publish_hooks.E055"
    assert "CELERY_TASK_TIME_LIMIT is 70 s" in e055.msg and "MAX_RUN_SECONDS (30 s)" in e055.msg
    [e055] = limits(3600, 60)
    assert "CELERY_TASK_SOFT_TIME_LIMIT is 60 s" in e055.msg
    assert limits(71, 71) == []
