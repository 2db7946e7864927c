"""``publish_hooks reconcile``: the events of publishes whose process died before recording them.

The gaps are made for real: a subprocess publishes (or unpublishes) outside a transaction and is
SIGKILLed by a receiver that runs after Wagtail's commit and before the package's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from standardwebhooks.webhooks import Webhook

from tests.testapp.models import Advert, BlogPage
from wagtail_publish_hooks.models import Delivery, DeliveryStatus, Event
from wagtail_publish_hooks.reconcile import parse_duration

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def destination(webhook_destination, httpserver):
    httpserver.expect_request("/hooks").respond_with_data("ok")
    return webhook_destination(EVENTS=["page.*", "snippet.*"])


def kill_during(config, action: str, kind: str, pk: int) -> None:
    """Run tests/support/reconcile_kill.py: it dies after the commit, before the event is
    recorded."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(config),
        TEST_SQLITE_PATH=str(connection.settings_dict["NAME"]),
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "support" / "reconcile_kill.py"),
            action,
            kind,
            str(pk),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stdout + result.stderr


def reconcile(*args: str) -> str:
    out = StringIO()
    call_command("publish_hooks", "reconcile", "--grace", "0s", *args, stdout=out)
    return out.getvalue()


def new_page(parent, slug: str) -> BlogPage:
    page = BlogPage(title=slug.title(), slug=slug, live=False)
    parent.add_child(instance=page)
    return page


def bodies(httpserver, secret) -> list[dict]:
    return [
        Webhook(secret).verify(request.get_data(), dict(request.headers))
        for request, _ in httpserver.log
    ]


def test_a_publish_killed_before_its_event_is_reconciled(
    destination, httpserver, secret, blog_index
):
    fine = new_page(blog_index, "fine")
    lost = new_page(blog_index, "lost")
    fine.save_revision().publish()  # recorded as usual
    kill_during(destination, "publish", "page", lost.pk)

    lost.refresh_from_db()
    assert lost.live  # Wagtail committed the publish...
    assert not Event.objects.filter(object_id=str(lost.pk)).exists()  # ...the event was lost
    assert Event.objects.filter(object_id=str(fine.pk), event_type="page.published").count() == 1
    sent_before = len(httpserver.log)

    listing = reconcile("--dry-run")
    assert f"page.published testapp.BlogPage {lost.pk} 'Lost'" in listing
    assert f"BlogPage {fine.pk} " not in listing
    assert "1 missing event(s)" in listing
    assert not Event.objects.filter(object_id=str(lost.pk)).exists()  # a dry run records nothing

    output = reconcile()
    assert "1 missing event(s) recorded" in output
    event = Event.objects.get(object_id=str(lost.pk))
    assert event.event_type == "page.published"
    assert event.payload["reconciled"] is True
    assert Event.objects.filter(object_id=str(fine.pk)).count() == 1  # nothing for the other
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == DeliveryStatus.DELIVERED
    [body] = bodies(httpserver, secret)[sent_before:]
    assert body["reconciled"] is True
    assert body["type"] == "page.published"
    assert body["data"]["page"]["id"] == lost.pk
    assert body["data"]["page"]["live"] is True
    assert body["data"]["page"]["revision_id"] == lost.live_revision_id
    assert (body["data"]["first_publish"], body["data"]["changes"]) == (True, [])

    # Idempotent: the recorded event closes the gap.
    assert "No missing events" in reconcile()
    assert Event.objects.count() == 2


def test_a_republish_reconciled_does_not_say_what_it_changed(
    destination, httpserver, secret, blog_index
):
    page = new_page(blog_index, "again")
    page.save_revision().publish()
    kill_during(destination, "publish", "page", page.pk)

    reconcile()
    body = bodies(httpserver, secret)[-1]
    assert body["reconciled"] is True
    assert (body["data"]["first_publish"], body["data"]["changes"]) == (False, None)


def test_an_unpublish_killed_before_its_event_is_reconciled(
    destination, httpserver, secret, blog_index
):
    page = new_page(blog_index, "going")
    page.save_revision().publish()
    kill_during(destination, "unpublish", "page", page.pk)
    page.refresh_from_db()
    assert not page.live
    assert list(Event.objects.values_list("event_type", flat=True)) == ["page.published"]

    assert f"page.unpublished testapp.BlogPage {page.pk}" in reconcile("--dry-run")
    reconcile()
    event = Event.objects.get(event_type="page.unpublished")
    assert event.payload["reconciled"] is True
    assert event.payload["data"]["page"]["live"] is False
    assert bodies(httpserver, secret)[-1]["id"] == event.event_id
    assert "No missing events" in reconcile()
    assert Event.objects.count() == 2


def test_a_snippet_publish_killed_before_its_event_is_reconciled(destination, httpserver, secret):
    advert = Advert.objects.create(text="Sale", live=False)
    kill_during(destination, "publish", "advert", advert.pk)
    advert.refresh_from_db()
    assert advert.live
    assert not Event.objects.exists()

    reconcile()
    event = Event.objects.get()
    assert event.event_type == "snippet.published"
    assert event.payload["reconciled"] is True
    assert event.payload["data"]["snippet"]["id"] == advert.pk
    assert (event.payload["data"]["first_publish"], event.payload["data"]["changes"]) == (True, [])
    assert "No missing events" in reconcile()


def test_recorded_events_and_unrouted_changes_are_not_gaps(configure, blog_index):
    page = new_page(blog_index, "quiet")
    page.save_revision().publish()
    page.unpublish()
    # No destination: nothing was recorded, and nothing would be.
    assert not Event.objects.exists()
    assert "No missing events" in reconcile()
    assert not Event.objects.exists()


def test_recent_changes_are_left_alone_and_old_ones_out_of_the_window(destination, blog_index):
    page = new_page(blog_index, "recent")
    page.save_revision().publish()
    Event.objects.all().delete()  # as if lost

    out = StringIO()
    call_command("publish_hooks", "reconcile", stdout=out)  # default grace: one minute
    assert "No missing events" in out.getvalue()
    page.refresh_from_db()
    BlogPage.objects.filter(pk=page.pk).update(
        last_published_at=page.last_published_at - timedelta(hours=3)
    )
    assert "No missing events" in reconcile("--since", "2h")
    assert "1 missing event(s) recorded" in reconcile("--since", "1d")


def test_quiet_with_verbosity_0(destination, blog_index):
    page = new_page(blog_index, "cron")
    page.save_revision().publish()
    Event.objects.all().delete()
    out = StringIO()
    call_command("publish_hooks", "reconcile", "--grace", "0s", verbosity=0, stdout=out)
    assert out.getvalue() == ""
    assert Event.objects.get().payload["reconciled"] is True


def test_bad_durations_are_refused(destination):
    with pytest.raises(CommandError, match="is not a duration"):
        reconcile("--since", "yesterday")
    with pytest.raises(CommandError, match="RETENTION_DAYS"):
        reconcile("--since", "60d")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("0s", 0), ("2w", 1209600)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "2", "h", "2 hours", "-1h", "1h+"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
