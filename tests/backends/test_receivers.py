"""``@on`` receivers: durable ones are destinations sent by the worker; others run on commit."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from datetime import UTC
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction
from wagtail.models import PageLogEntry

from tests.testapp.models import BasePage, BlogPage, EventPage, OtherPage
from wagtail_publish_hooks import on, suspended
from wagtail_publish_hooks.exceptions import DeliveryError
from wagtail_publish_hooks.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus, Event
from wagtail_publish_hooks.receivers import (
    ReceivedEvent,
    get_receiver,
    registered_receivers,
    unregister,
)

pytestmark = pytest.mark.django_db(transaction=True)

DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

received: list[ReceivedEvent] = []


def record(event: ReceivedEvent) -> None:
    received.append(event)


def also_record(event: ReceivedEvent) -> None:
    received.append(event)


def explode(event: ReceivedEvent) -> None:
    raise RuntimeError(f"receiver exploded on {event.type}")


RECORD = "python:tests.backends.test_receivers.record"


@pytest.fixture(autouse=True)
def clean_registry():
    """Receivers registered by a test are gone after it; the import-time ones stay."""
    before = {receiver.name for receiver in registered_receivers()}
    received.clear()
    yield
    for receiver in registered_receivers():
        if receiver.name not in before:
            unregister(receiver.name)
    received.clear()


def publish(parent, cls, slug: str, **fields):
    page = cls(title=slug.title(), slug=slug, **fields)
    parent.add_child(instance=page)
    revision = page.save_revision()
    revision.publish()
    return page, revision


def test_durable_receiver_runs_after_commit_for_subclasses(configure, blog_index):
    configure()
    on("page.published", "testapp.BasePage")(record)

    with transaction.atomic():
        blog, blog_revision = publish(blog_index, BlogPage, "blog")
        event_page, _ = publish(blog_index, EventPage, "event")
        publish(blog_index, OtherPage, "other")
        assert received == []  # nothing runs before commit
        assert Delivery.objects.filter(destination=RECORD).count() == 2

    assert [(e.object_type, e.object_id) for e in received] == [
        ("testapp.BlogPage", str(blog.pk)),
        ("testapp.EventPage", str(event_page.pk)),
    ]
    first = received[0]
    stored = Event.objects.get(object_id=str(blog.pk))
    assert first.id == stored.event_id
    assert first.type == "page.published"
    assert first.timestamp == stored.created_at
    assert first.timestamp.tzinfo is not None
    assert first.timestamp.utcoffset() == UTC.utcoffset(None)
    assert first.data == stored.payload["data"]
    assert first.data["page"]["id"] == blog.pk
    assert first.data["page"]["revision_id"] == blog_revision.pk
    assert first.attempt == 1
    # The instance is fetched on first use, from the worker's database, as the specific class.
    assert isinstance(first.instance, BlogPage)
    assert first.instance.pk == blog.pk
    assert first.instance.live is True

    deliveries = Delivery.objects.filter(destination=RECORD).order_by("pk")
    assert [d.status for d in deliveries] == [DeliveryStatus.DELIVERED] * 2
    assert [d.attempts for d in deliveries] == [1, 1]
    assert list(Attempt.objects.values_list("outcome", flat=True)) == [AttemptOutcome.SUCCESS] * 2


def test_model_classes_and_patterns(configure, draft_blog_page):
    configure()
    on("page.*", BasePage)(record)
    draft_blog_page.save_revision().publish()
    draft_blog_page.refresh_from_db()
    draft_blog_page.unpublish()
    assert [e.type for e in received] == ["page.published", "page.unpublished"]
    assert received[1].data["page"]["live"] is False


def test_receivers_without_models_get_every_model_and_lists_of_types(configure, blog_index):
    configure()
    on(["page.unpublished", "page.published"])(record)
    page, _ = publish(blog_index, OtherPage, "other")
    page.refresh_from_db()
    page.unpublish()
    assert [(e.type, e.object_type) for e in received] == [
        ("page.published", "testapp.OtherPage"),
        ("page.unpublished", "testapp.OtherPage"),
    ]


def test_receiver_and_webhook_destinations_side_by_side(
    webhook_destination, httpserver, draft_blog_page
):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")
    on("page.published", "testapp.BlogPage")(record)

    draft_blog_page.save_revision().publish()

    event = Event.objects.get()
    assert sorted(event.deliveries.values_list("destination", "status")) == [
        ("consumer", DeliveryStatus.DELIVERED),
        (RECORD, DeliveryStatus.DELIVERED),
    ]
    body = json.loads(httpserver.log[0][0].get_data())
    assert received[0].id == body["id"] == event.event_id
    assert received[0].data == body["data"]


def test_a_receiver_that_raises_is_retried_recorded_and_redelivered(configure, draft_blog_page):
    configure(RETRY_SCHEDULE=[3600])
    calls = []

    def flaky(event: ReceivedEvent) -> None:
        calls.append(event.attempt)
        if len(calls) == 1:
            raise RuntimeError("the search index is down")

    on("page.published", name="flaky")(flaky)
    revision = draft_blog_page.save_revision()
    revision.publish()

    # The publish is untouched by the failure.
    draft_blog_page.refresh_from_db()
    assert draft_blog_page.live
    assert PageLogEntry.objects.filter(revision=revision, action="wagtail.publish").exists()

    delivery = Delivery.objects.get()
    assert delivery.destination == "python:flaky"
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.attempts == 1
    assert delivery.last_error == "RuntimeError: the search index is down"
    attempt = Attempt.objects.get()
    assert attempt.outcome == AttemptOutcome.RETRY
    assert attempt.error == "RuntimeError: the search index is down"

    out = io.StringIO()
    call_command("publish_hooks", "status", stdout=out)
    row = next(line for line in out.getvalue().splitlines() if line.startswith("python:flaky"))
    assert row.split() == [
        *("python:flaky", "PythonBackend"),
        *("0", "0", "0", "1", "0", "0"),  # pending, sending, delivered, retrying, failed, cancelled
        *("1", "consecutive", "failure"),
    ]

    call_command("publish_hooks", "redeliver", "--id", str(delivery.pk), stdout=io.StringIO())
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 2
    assert delivery.last_error == ""
    assert calls == [1, 2]


def test_a_receiver_can_fail_at_once(configure, draft_blog_page):
    configure(RETRY_SCHEDULE=[3600])

    def refuse(event: ReceivedEvent) -> None:
        raise DeliveryError("this event cannot be processed", retryable=False)

    on("page.published", name="refuse")(refuse)
    draft_blog_page.save_revision().publish()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "this event cannot be processed"


def test_test_command_reaches_a_receiver(configure):
    configure()
    on("page.published", name="announce")(record)
    out = io.StringIO()
    call_command("publish_hooks", "test", "python:announce", "--wait", "5", stdout=out)
    assert "(Python receiver announce)" in out.getvalue()
    assert [e.type for e in received] == ["publish_hooks.test"]
    assert received[0].data["destination"] == "python:announce"
    assert received[0].instance is None


def test_non_durable_receiver_runs_on_commit_and_records_nothing(configure, draft_blog_page):
    configure()
    on("page.published", "testapp.BlogPage", durable=False)(record)

    with transaction.atomic():
        draft_blog_page.save_revision().publish()
        assert received == []

    assert len(received) == 1
    event = received[0]
    assert event.type == "page.published"
    assert event.id.startswith("evt_")
    assert event.object_type == "testapp.BlogPage"
    assert event.data["page"]["id"] == draft_blog_page.pk
    assert event.attempt == 1
    # It gets the captured instance itself, not a fresh copy from the database.
    assert isinstance(event.__dict__["instance"], BlogPage)
    assert event.instance.pk == draft_blog_page.pk
    assert Event.objects.count() == 0
    assert Delivery.objects.count() == 0


def test_non_durable_receiver_is_not_called_for_a_rolled_back_publish(configure, draft_blog_page):
    configure()
    on("page.published", durable=False)(record)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        draft_blog_page.save_revision().publish()
        1 / 0  # noqa: B018
    assert received == []


def test_non_durable_receiver_that_raises_never_reaches_the_publisher(
    configure, draft_blog_page, caplog
):
    configure()
    on("page.published", durable=False)(explode)
    on("page.published", durable=False)(record)
    caplog.set_level(logging.ERROR, logger="wagtail_publish_hooks")

    with transaction.atomic():
        revision = draft_blog_page.save_revision()
        revision.publish()

    draft_blog_page.refresh_from_db()
    assert draft_blog_page.live
    assert draft_blog_page.live_revision_id == revision.pk
    # The receiver after the one that raised still ran.
    assert [e.type for e in received] == ["page.published"]
    assert (
        "receiver python:tests.backends.test_receivers.explode raised for event evt_" in caplog.text
    )
    assert "receiver exploded on page.published" in caplog.text


def test_nothing_is_received_inside_suspended(configure, draft_blog_page):
    configure()
    on("page.published")(record)
    on("page.published", durable=False)(also_record)
    with suspended():
        draft_blog_page.save_revision().publish()
    assert received == []
    assert Event.objects.count() == 0


def test_a_receiver_unknown_to_the_worker_fails_with_a_clear_error(
    configure, settings, draft_blog_page, deliver
):
    configure()
    settings.TASKS = DB_TASKS  # recorded now, delivered below as a worker would
    on("page.published")(record)
    draft_blog_page.save_revision().publish()
    unregister(record)  # the worker process never imported the module

    deliver()
    delivery = Delivery.objects.get()
    assert delivery.destination == RECORD
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.last_error == (
        f"receiver {RECORD!r} is not registered in this worker process: the module that "
        "defines it must be imported at startup (models.py, or AppConfig.ready())"
    )
    assert received == []


def test_instance_is_none_once_the_object_is_gone(configure, settings, draft_blog_page, deliver):
    configure()
    settings.TASKS = DB_TASKS
    on("page.published")(record)
    draft_blog_page.save_revision().publish()
    page_id = draft_blog_page.pk
    draft_blog_page.delete()

    deliver()
    assert received[0].object_id == str(page_id)
    assert received[0].instance is None
    assert received[0].data["page"]["id"] == page_id


def test_alias_events_are_left_out_unless_asked_for(configure, draft_blog_page):
    configure()
    on("page.published")(record)
    on("page.published", exclude_aliases=False)(also_record)
    draft_blog_page.save_revision().publish()
    draft_blog_page.refresh_from_db()
    alias = draft_blog_page.create_alias(update_slug="hello-alias")
    received.clear()
    Delivery.objects.all().delete()

    draft_blog_page.save_revision().publish()

    deliveries = sorted(
        Delivery.objects.values_list("destination", "event__object_id"),
        key=lambda d: (d[0], int(d[1])),
    )
    assert deliveries == [
        ("python:tests.backends.test_receivers.also_record", str(draft_blog_page.pk)),
        ("python:tests.backends.test_receivers.also_record", str(alias.pk)),
        (RECORD, str(draft_blog_page.pk)),
    ]
    assert sorted((e.data["page"]["id"], e.data["alias"]) for e in received) == [
        (draft_blog_page.pk, False),
        (draft_blog_page.pk, False),
        (alias.pk, True),
    ]


# -- Registration ---------------------------------------------------------------------------------


def test_registration_is_idempotent_and_conflicts_are_refused(db):
    on("page.published", "testapp.BlogPage")(record)
    on("page.published", "testapp.BlogPage")(record)  # a module imported twice
    assert [r.name for r in registered_receivers()].count(RECORD) == 1

    with pytest.raises(ValueError, match="already registered for other events or models"):
        on("page.unpublished")(record)
    # Stacked registrations of one function need names of their own.
    on("page.unpublished", name="record-unpublished")(record)
    assert get_receiver("python:record-unpublished").events == ("page.unpublished",)

    assert unregister(record) is True
    assert get_receiver(RECORD) is None
    assert get_receiver("python:record-unpublished") is None
    assert unregister(record) is False


def test_registration_checks_its_arguments():
    with pytest.raises(TypeError, match=r"model classes or 'app_label\.Model' labels"):
        on("page.published", 42)
    with pytest.raises(TypeError, match="takes an event type"):
        on(None)
    with pytest.raises(ValueError, match="knows api, not 'apii'"):
        on("page.published", include=["apii"])
    with pytest.raises(ValueError, match="longer than 100 characters"):
        on("page.published", name="x" * 100)(record)
    assert get_receiver("python:" + "x" * 100) is None


def test_registration_needs_no_database_or_app_registry():
    """@on runs while modules import: it must not query or look models up."""
    script = (
        "from wagtail_publish_hooks import on\n"
        "from wagtail_publish_hooks.receivers import get_receiver\n"
        "@on('page.published', 'blog.BlogPage')\n"
        "def announce(event): pass\n"
        "print(get_receiver('python:__main__.announce').models)\n"
    )
    result = subprocess.run(
        [__import__("sys").executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('blog.BlogPage',)"


# -- A real worker --------------------------------------------------------------------------------


@pytest.mark.worker
def test_db_worker_calls_a_durable_receiver(configure, settings, draft_blog_page, tmp_path):
    """The worker process finds the receiver by name, because it imported it at startup."""
    import os

    from django.db import connection

    from tests.support.workers import ROOT, db_worker
    from tests.testapp.receivers import write_marker

    config = configure()
    settings.TASKS = DB_TASKS
    on("page.published", "testapp.BlogPage")(write_marker)  # as the subprocess will at startup
    marker = tmp_path / "received.jsonl"

    revision = draft_blog_page.save_revision()
    revision.publish()
    delivery = Delivery.objects.get()
    assert delivery.destination == "python:tests.testapp.receivers.write_marker"
    assert delivery.status == DeliveryStatus.PENDING
    assert not marker.exists()  # nothing ran in the publishing process

    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(config),
        PUBLISH_HOOKS_TEST_MARKER=str(marker),
        TEST_SQLITE_PATH=str(connection.settings_dict["NAME"]),
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        db_worker(env, "--batch"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    assert delivery.attempts == 1
    [line] = marker.read_text().splitlines()
    record = json.loads(line)
    assert record.pop("pid") not in (os.getpid(), None)
    assert record == {
        "id": Event.objects.get().event_id,
        "type": "page.published",
        "page_id": draft_blog_page.pk,
        "object_type": "testapp.BlogPage",
        "instance_title": "Hello world",
        "attempt": 1,
    }
