"""A failure in the plugin or a destination never breaks a publish."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction
from wagtail.models import PageLogEntry

from wagtail_publish_hooks import events
from wagtail_publish_hooks.models import CaptureFailure, Delivery, DeliveryStatus, Event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def duplicate_event_ids(monkeypatch):
    """Every event gets the same id, so the second insert fails in the database."""
    monkeypatch.setattr(events, "new_event_id", lambda: "evt_duplicate")
    import wagtail_publish_hooks.outbox as outbox

    monkeypatch.setattr(outbox, "new_event_id", lambda: "evt_duplicate")


@pytest.mark.parametrize("in_transaction", [False, True])
def test_failing_capture_does_not_break_the_publish(
    webhook_destination, httpserver, draft_blog_page, duplicate_event_ids, caplog, in_transaction
):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()  # recorded as evt_duplicate
    assert Event.objects.count() == 1

    draft_blog_page.title = "Second"
    caplog.set_level(logging.ERROR, logger="wagtail_publish_hooks")
    if in_transaction:
        with transaction.atomic():
            revision = draft_blog_page.save_revision()
            revision.publish()  # the event insert fails with an IntegrityError
            # The surrounding transaction is still usable (the insert ran in a savepoint).
            assert PageLogEntry.objects.filter(revision=revision).exists()
    else:
        revision = draft_blog_page.save_revision()
        revision.publish()

    draft_blog_page.refresh_from_db()
    assert draft_blog_page.live
    assert draft_blog_page.live_revision_id == revision.pk
    assert draft_blog_page.title == "Second"
    assert PageLogEntry.objects.filter(
        page=draft_blog_page, action="wagtail.publish", revision=revision
    ).exists()
    assert Event.objects.count() == 1
    assert "could not record page.published" in caplog.text
    # Not silent: the failure is kept, with what is known of it.
    failure = CaptureFailure.objects.get()
    assert failure.event_type == "page.published"
    assert failure.object_id == str(draft_blog_page.pk)
    assert failure.error_type == "django.db.utils.IntegrityError"


def test_backend_that_raises_does_not_break_the_publish(configure, draft_blog_page):
    configure(DESTINATIONS={"broken": {"BACKEND": "tests.support.backends.ExplodingBackend"}})
    revision = draft_blog_page.save_revision()
    revision.publish()  # the immediate task backend delivers inside this call, on commit

    draft_blog_page.refresh_from_db()
    assert draft_blog_page.live
    assert PageLogEntry.objects.filter(
        page=draft_blog_page, action="wagtail.publish", revision=revision
    ).exists()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert "exploded" in delivery.last_error


def test_unreachable_task_backend_does_not_break_the_publish(
    configure, settings, draft_blog_page, caplog
):
    configure(
        DESTINATIONS={"broken": {"BACKEND": "tests.support.backends.ExplodingBackend"}},
        TASK_BACKEND="missing",
    )
    caplog.set_level(logging.ERROR, logger="wagtail_publish_hooks")
    revision = draft_blog_page.save_revision()
    revision.publish()

    assert PageLogEntry.objects.filter(revision=revision, action="wagtail.publish").exists()
    # The delivery waits in the outbox for `publish_hooks sweep`.
    assert Delivery.objects.get().status == DeliveryStatus.PENDING
    assert "could not enqueue a delivery run" in caplog.text
