"""Coalescing: events within a destination's window become one delivery carrying them all."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from tests.support.backends import CoalescingRecorder
from tests.testapp.models import BlogPage
from wagtail_publish_hooks.models import Delivery, DeliveryStatus, Event

pytestmark = pytest.mark.django_db(transaction=True)

RECORDER = "tests.support.backends.CoalescingRecorder"
WEBHOOK = "wagtail_publish_hooks.backends.webhook.WebhookBackend"


@pytest.fixture(autouse=True)
def recorder():
    CoalescingRecorder.sends = []
    yield CoalescingRecorder
    CoalescingRecorder.sends = []


@pytest.fixture
def pages(blog_index):
    def make(n: int, prefix: str = "p") -> list[BlogPage]:
        made = []
        for i in range(n):
            page = BlogPage(title=f"{prefix}{i}", slug=f"{prefix}{i}", live=False)
            blog_index.add_child(instance=page)
            made.append(page)
        return made

    return make


def close_windows():
    """Let every merging window pass (as the clock would)."""
    Delivery.objects.filter(status=DeliveryStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_bulk_publish_is_one_delivery(configure, pages, deliver):
    configure(DESTINATIONS={"build": {"BACKEND": RECORDER}})
    batch = pages(200)
    with transaction.atomic():
        for page in batch:
            page.save_revision().publish()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert len(delivery.covered_events()) == 200
    window = (delivery.next_attempt_at - delivery.created_at).total_seconds()
    assert window == 30  # the default COALESCE_SECONDS
    assert deliver().delivered == 0  # still inside its window
    assert CoalescingRecorder.sends == []

    close_windows()
    assert deliver().delivered == 1
    assert len(CoalescingRecorder.sends) == 1
    assert CoalescingRecorder.sends[0] == list(
        Event.objects.order_by("created_at", "pk").values_list("event_id", flat=True)
    )


def test_a_transaction_longer_than_the_window_is_still_one_delivery(configure, pages, deliver):
    # Workers cannot see the delivery before the transaction commits, so it stays open to the
    # transaction's later events even after its window has passed.
    configure(DESTINATIONS={"build": {"BACKEND": RECORDER, "OPTIONS": {"COALESCE_SECONDS": 0.2}}})
    first, second = pages(2)
    with transaction.atomic():
        first.save_revision().publish()
        time.sleep(0.3)
        second.save_revision().publish()
    delivery = Delivery.objects.get()
    assert len(delivery.covered_events()) == 2
    deliver()
    assert [len(send) for send in CoalescingRecorder.sends] == [2]


def test_separate_publishes_within_the_window_merge(configure, pages, deliver):
    configure(DESTINATIONS={"build": {"BACKEND": RECORDER, "OPTIONS": {"COALESCE_SECONDS": 60}}})
    for page in pages(5):
        page.save_revision().publish()  # five transactions, in autocommit
    assert Delivery.objects.count() == 1
    close_windows()
    deliver()
    assert [len(send) for send in CoalescingRecorder.sends] == [5]

    # The window has passed: the next event opens a new delivery.
    pages(1, prefix="later")[0].save_revision().publish()
    assert Delivery.objects.count() == 2


def test_other_destinations_are_not_delayed(configure, httpserver, pages):
    httpserver.expect_request("/hooks").respond_with_data("ok")
    configure(
        DESTINATIONS={
            "build": {"BACKEND": RECORDER},
            "consumer": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/hooks")}},
        }
    )
    for page in pages(3):
        page.save_revision().publish()
    assert len(httpserver.log) == 3  # sent at once, after each commit
    assert Delivery.objects.filter(destination="build").count() == 1
    assert Delivery.objects.filter(destination="consumer").count() == 3


def test_a_delivery_being_sent_takes_no_more_events(configure, pages):
    configure(DESTINATIONS={"build": {"BACKEND": RECORDER}})
    first, second = pages(2)
    first.save_revision().publish()
    Delivery.objects.update(status=DeliveryStatus.SENDING, lease_token="0" * 32)
    second.save_revision().publish()
    assert Delivery.objects.count() == 2
    assert all(len(d.covered_events()) == 1 for d in Delivery.objects.all())


def test_a_rolled_back_event_leaves_the_open_delivery_as_it_was(configure, pages):
    configure(DESTINATIONS={"build": {"BACKEND": RECORDER}})
    first, second = pages(2)
    first.save_revision().publish()
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        second.save_revision().publish()
        assert len(Delivery.objects.get().covered_events()) == 2
        1 / 0  # noqa: B018
    assert len(Delivery.objects.get().covered_events()) == 1


def test_coalesce_seconds_0_sends_each_event(configure, pages):
    configure(DESTINATIONS={"build": {"BACKEND": RECORDER, "OPTIONS": {"COALESCE_SECONDS": 0}}})
    for page in pages(3):
        page.save_revision().publish()
    assert [len(send) for send in CoalescingRecorder.sends] == [1, 1, 1]


def test_a_short_window_is_sent_by_the_worker_when_it_closes(configure, pages, deliver):
    # Long enough for three publishes on a busy machine; the test waits for it to close.
    configure(DESTINATIONS={"build": {"BACKEND": RECORDER, "OPTIONS": {"COALESCE_SECONDS": 3}}})
    for page in pages(3):
        page.save_revision().publish()
    assert CoalescingRecorder.sends == []
    closes = Delivery.objects.get().next_attempt_at
    time.sleep(max(0.0, (closes - timezone.now()).total_seconds()) + 0.1)
    deliver()
    assert [len(send) for send in CoalescingRecorder.sends] == [3]


def test_a_test_event_is_not_held_back(configure):
    from django.core.management import call_command

    configure(DESTINATIONS={"build": {"BACKEND": RECORDER}})
    call_command("publish_hooks", "test", "build", "--wait", "5")
    assert len(CoalescingRecorder.sends) == 1


def test_coalesce_seconds_is_checked(settings):
    from django.core import checks

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.WAGTAIL_PUBLISH_HOOKS = {
        "DESTINATIONS": {"build": {"BACKEND": RECORDER, "OPTIONS": {"COALESCE_SECONDS": -1}}}
    }
    messages = checks.run_checks(tags=["wagtail_publish_hooks"])
    assert [m.id for m in messages] == ["wagtail_publish_hooks.E015"]
    assert "['build']['OPTIONS']['COALESCE_SECONDS']" in messages[0].msg


def test_a_deferred_run_is_enqueued_for_the_window_end(configure, pages, settings):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    configure(DESTINATIONS={"build": {"BACKEND": RECORDER}})
    with transaction.atomic():
        for page in pages(3):
            page.save_revision().publish()
    delivery = Delivery.objects.get()
    runs = [
        run.task_result.task.run_after
        for run in DBTaskResult.objects.filter(task_path__endswith="deliver_due_deliveries")
    ]
    # No immediate run (nothing is due yet), one run when the window closes.
    assert runs == [delivery.next_attempt_at]
