"""A run commits its outcomes a few at a time, and counts them in the destination's health in
the order they happened."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from werkzeug import Response

from tests.conftest import WEBHOOK
from tests.testapp.models import BlogPage
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus, DestinationState
from wagtail_publish_hooks.worker import FLUSH_SIZE

pytestmark = pytest.mark.django_db(transaction=True)


def publish_pages(parent, count: int) -> None:
    with transaction.atomic():
        for n in range(count):
            page = BlogPage(title=f"Post {n}", slug=f"post-{n}", live=False)
            parent.add_child(instance=page)
            page.save_revision().publish()


def test_outcomes_are_committed_in_groups(configure, httpserver, blog_index, deliver, monkeypatch):
    # Groups close on size here, not on age: the count below does not depend on the machine.
    monkeypatch.setattr("wagtail_publish_hooks.worker.FLUSH_SECONDS", 3600)
    httpserver.expect_request("/hooks").respond_with_data("ok")
    configure(
        DESTINATIONS={
            "sink": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/hooks")}}
        },
        TASK_BACKEND="missing",  # nothing runs on commit: the test runs the delivery loop
    )
    count = FLUSH_SIZE + 5
    publish_pages(blog_index, count)

    with CaptureQueriesContext(connection) as queries:
        summary = deliver()

    assert summary.delivered == count
    assert Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == count
    assert Attempt.objects.count() == count
    assert len(httpserver.log) == count
    attempt_inserts = [
        q
        for q in queries.captured_queries
        if q["sql"].startswith('INSERT INTO "wagtail_publish_hooks_attempt"')
    ]
    # Not one commit per delivery: one INSERT of attempts per group of FLUSH_SIZE at most.
    assert len(attempt_inserts) == 2
    commits = [q for q in queries.captured_queries if q["sql"] == "COMMIT"]
    assert len(commits) < count / 4
    assert all(d.delivered_at is not None for d in Delivery.objects.all())
    assert all(d.lease_token is None for d in Delivery.objects.all())


def test_health_counts_outcomes_in_order(configure, httpserver, blog_index, deliver):
    replies = [Response("ok"), Response("down", status=500), Response("down", status=503)]
    lock = threading.Lock()

    def reply(request):
        with lock:
            return replies.pop(0)

    httpserver.expect_request("/hooks").respond_with_handler(reply)
    configure(
        DESTINATIONS={
            "sink": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/hooks")}}
        },
        TASK_BACKEND="missing",
        RETRY_SCHEDULE=[3600],
    )
    publish_pages(blog_index, 3)
    before = timezone.now()
    summary = deliver()

    assert (summary.delivered, summary.retrying) == (1, 2)
    state = DestinationState.objects.get(alias="sink")
    assert state.consecutive_failures == 2  # the two failures after the success
    assert state.last_success_at is not None and state.last_failure_at is not None
    assert state.last_failure_at >= state.last_success_at
    retrying = Delivery.objects.filter(status=DeliveryStatus.RETRYING)
    assert sorted(retrying.values_list("last_status_code", flat=True)) == [500, 503]
    for delivery in retrying:
        assert delivery.attempts == 1
        assert delivery.next_attempt_at >= before + timedelta(seconds=3500)
        assert delivery.delivered_at is None

    # Another failing run adds to the count rather than resetting it.
    Delivery.objects.filter(status=DeliveryStatus.RETRYING).update(next_attempt_at=timezone.now())
    httpserver.clear_all_handlers()
    httpserver.expect_request("/hooks").respond_with_data("down", status=500)
    deliver()
    state.refresh_from_db()
    assert state.consecutive_failures == 4
