"""How delivery runs are enqueued and started: ahead of Wagtail's own tasks on the database
queue, and the sends before the upkeep."""

from __future__ import annotations

import pytest

from tests.conftest import WEBHOOK
from wagtail_publish_hooks import tasks
from wagtail_publish_hooks.worker import RunSummary

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_delivery_run_is_queued_ahead_of_wagtails_tasks(
    configure, settings, httpserver, draft_blog_page
):
    """A publish queues Wagtail's search and reference index updates before the delivery run;
    db_worker takes the highest priority first, so the delivery does not wait for them."""
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    configure(
        DESTINATIONS={"a": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/a")}}}
    )
    draft_blog_page.save_revision().publish()

    rows = list(DBTaskResult.objects.values_list("task_path", "priority"))
    ours = [priority for path, priority in rows if path.endswith("deliver_due_deliveries")]
    others = [priority for path, priority in rows if not path.endswith("deliver_due_deliveries")]
    assert ours == [tasks.DATABASE_QUEUE_PRIORITY]
    assert others and max(others) < tasks.DATABASE_QUEUE_PRIORITY
    # The order db_worker takes them in.
    first = DBTaskResult.objects.ready().first()
    assert first is not None and first.task_path.endswith("deliver_due_deliveries")


def test_other_task_backends_get_the_default_priority(configure, settings, monkeypatch):
    """RQ's backend refuses any priority but the default; Celery's on Redis reads it upside
    down: only django-tasks-db gets one."""
    from tests.conftest import IMMEDIATE_BACKEND

    settings.TASKS = {"default": {"BACKEND": IMMEDIATE_BACKEND}}
    configure(DESTINATIONS={})
    seen = []

    class Recorder:
        def using(self, **options):
            seen.append(options)
            return self

        def enqueue(self):
            return None

    monkeypatch.setattr(tasks, "deliver_due_deliveries", Recorder())
    assert tasks.enqueue_delivery_run() is True
    assert seen == [{"backend": "default", "queue_name": "default"}]


def test_a_delivery_run_sends_before_it_looks_after_the_upkeep(monkeypatch):
    """A worker that forks per task (RQ) looks after the upkeep in every task: the first
    request must not wait for it."""
    order = []
    monkeypatch.setattr(tasks, "ensure_upkeep", lambda **kw: order.append("upkeep"))
    monkeypatch.setattr(
        tasks, "run_due_deliveries", lambda **kw: order.append("send") or RunSummary()
    )
    tasks.deliver_due_deliveries.call()
    assert order == ["send", "upkeep"]
