"""``manage.py publish_hooks``: status, test, redeliver, sweep, prune, enable."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from standardwebhooks.webhooks import Webhook
from werkzeug import Response

from wagtail_publish_hooks.models import (
    Attempt,
    Delivery,
    DeliveryStatus,
    DestinationState,
    Event,
)

pytestmark = pytest.mark.django_db(transaction=True)


def command(*args: str) -> str:
    out = io.StringIO()
    call_command("publish_hooks", *args, stdout=out)
    return out.getvalue()


def test_status_counts_per_destination_and_state(
    webhook_destination, httpserver, secret, draft_blog_page, blog_index
):
    webhook_destination()
    replies = [Response("ok"), Response("no", status=404)]
    httpserver.expect_request("/hooks").respond_with_handler(lambda r: replies.pop(0))
    draft_blog_page.save_revision().publish()
    draft_blog_page.save_revision().publish()

    output = command("status")
    lines = output.splitlines()
    assert lines[0].split() == [
        "destination",
        "backend",
        "pending",
        "sending",
        "delivered",
        "retrying",
        "failed",
        "cancelled",
        "state",
    ]
    assert lines[1].split() == [
        "consumer",
        "WebhookBackend",
        "0",
        "0",
        "1",
        "0",
        "1",
        "0",
        "1",
        "consecutive",
        "failure",
    ]
    assert secret not in output
    assert httpserver.url_for("/hooks") not in output


def test_status_shows_disabled_destinations(webhook_destination, httpserver, draft_blog_page):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("gone", status=410)
    draft_blog_page.save_revision().publish()
    assert "disabled: HTTP 410 Gone" in command("status")


def test_test_event_goes_through_the_pipeline(webhook_destination, httpserver, secret):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")
    output = command("test", "consumer", "--wait", "5")
    assert "queued for 'consumer' (POST http://localhost:" in output
    assert "delivered" in output
    request, _ = httpserver.log[0]
    payload = Webhook(secret).verify(request.get_data(), dict(request.headers))
    assert payload["type"] == "publish_hooks.test"
    assert payload["data"]["destination"] == "consumer"
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_test_event_reports_failure(webhook_destination, httpserver):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("nope", status=403)
    with pytest.raises(CommandError, match="is failed"):
        command("test", "consumer", "--wait", "5")


def test_test_unknown_alias(webhook_destination):
    webhook_destination()
    with pytest.raises(CommandError, match=r"No destination 'nope' is configured .*consumer"):
        command("test", "nope")


def test_redeliver_failed_and_by_id(webhook_destination, httpserver, settings, draft_blog_page):
    config = webhook_destination()
    settings.WAGTAIL_PUBLISH_HOOKS = {**config, "MAX_ATTEMPTS": 1}
    replies = [
        Response("down", status=500),
        Response("down", status=500),
        Response("ok"),
        Response("ok"),
    ]
    httpserver.expect_request("/hooks").respond_with_handler(lambda r: replies.pop(0))
    draft_blog_page.save_revision().publish()
    draft_blog_page.save_revision().publish()
    first, second = Delivery.objects.order_by("pk")
    assert {first.status, second.status} == {DeliveryStatus.FAILED}

    with pytest.raises(CommandError, match="Say what to redeliver"):
        command("redeliver")
    with pytest.raises(CommandError, match="No delivery with id 999"):
        command("redeliver", "--id", "999")

    assert "1 delivery queued again" in command("redeliver", "--id", str(first.pk))
    first.refresh_from_db()
    assert first.status == DeliveryStatus.DELIVERED

    assert "0 deliveries queued again" in command(
        "redeliver", "--failed", "--destination", "elsewhere"
    )
    assert "1 delivery queued again" in command("redeliver", "--failed")
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    ids = {r.headers["webhook-id"] for r, _ in httpserver.log}
    assert ids == {first.event.event_id, second.event.event_id}


def test_sweep_recovers_a_lost_enqueue(webhook_destination, httpserver, settings, draft_blog_page):
    config = webhook_destination()
    settings.WAGTAIL_PUBLISH_HOOKS = {**config, "TASK_BACKEND": "missing"}
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()  # the enqueue fails: nothing is sent
    assert Delivery.objects.get().status == DeliveryStatus.PENDING
    assert httpserver.log == []

    settings.WAGTAIL_PUBLISH_HOOKS = config
    output = command("sweep")
    assert "1 delivery due" in output
    assert "A delivery run was enqueued" in output
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert len(httpserver.log) == 1


def test_sweep_reclaims_an_expired_lease(
    webhook_destination, httpserver, draft_blog_page, settings
):
    config = webhook_destination()
    settings.WAGTAIL_PUBLISH_HOOKS = {**config, "TASK_BACKEND": "missing"}
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    # A worker claimed it and died mid-send.
    Delivery.objects.update(
        status=DeliveryStatus.SENDING, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    settings.WAGTAIL_PUBLISH_HOOKS = config
    output = command("sweep", "--run")
    assert "1 expired lease(s) released" in output
    assert "Delivered 1" in output
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_a_live_lease_is_not_taken(webhook_destination, httpserver, draft_blog_page, settings):
    config = webhook_destination()
    settings.WAGTAIL_PUBLISH_HOOKS = {**config, "TASK_BACKEND": "missing"}
    draft_blog_page.save_revision().publish()
    Delivery.objects.update(
        status=DeliveryStatus.SENDING, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    settings.WAGTAIL_PUBLISH_HOOKS = config
    assert "0 deliveries due" in command("sweep", "--run")
    assert Delivery.objects.get().status == DeliveryStatus.SENDING
    assert httpserver.log == []


def test_prune_deletes_old_finished_events_only(
    webhook_destination, httpserver, draft_blog_page, settings
):
    config = webhook_destination()
    settings.WAGTAIL_PUBLISH_HOOKS = {**config, "RETENTION_DAYS": 30}
    httpserver.expect_request("/hooks").respond_with_data("ok")
    for _ in range(3):
        draft_blog_page.save_revision().publish()
    old, old_pending, recent = Event.objects.order_by("pk")
    Event.objects.filter(pk__in=[old.pk, old_pending.pk]).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    Delivery.objects.filter(event=old_pending).update(status=DeliveryStatus.RETRYING)

    assert "1 event(s) older than 30 day(s) would be deleted" in command("prune", "--dry-run")
    assert Event.objects.count() == 3
    output = command("prune")
    assert "Deleted 1 event(s)" in output
    assert set(Event.objects.values_list("pk", flat=True)) == {old_pending.pk, recent.pk}
    assert not Attempt.objects.filter(delivery__event=old).exists()
    # With --days 0 the recent finished event goes too; the unfinished one always stays.
    assert "Deleted 1 event(s)" in command("prune", "--days", "0")
    assert list(Event.objects.values_list("pk", flat=True)) == [old_pending.pk]


def test_prune_refuses_a_retention_beyond_its_bounds_rather_than_overflowing(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--days must be at most 36500"):
        command("prune", "--days", str(10**9))


def test_enable_a_disabled_destination(webhook_destination, httpserver, draft_blog_page):
    webhook_destination()
    replies = [Response("gone", status=410), Response("ok")]
    httpserver.expect_request("/hooks").respond_with_handler(lambda r: replies.pop(0))
    draft_blog_page.save_revision().publish()
    assert DestinationState.objects.get().is_disabled

    assert "enabled again" in command("enable", "consumer")
    assert not DestinationState.objects.get().is_disabled
    assert "was not disabled" in command("enable", "consumer")
    command("redeliver", "--failed")
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_status_says_when_sweep_and_prune_last_ran_and_run_next(settings, db):
    from wagtail_publish_hooks.models import Upkeep

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.WAGTAIL_PUBLISH_HOOKS = {"DESTINATIONS": {}}
    now = timezone.now()
    Upkeep.objects.create(
        name="sweep",
        token="00000000-0000-0000-0000-000000000001",
        next_run_at=now + timedelta(seconds=50),
        last_run_at=now - timedelta(seconds=10),
        last_result="0 lease(s) released, 0 due",
    )
    output = command("status")
    sweep_line = next(line for line in output.splitlines() if line.startswith("Sweep:"))
    assert "last ran " in sweep_line and "s ago): 0 lease(s) released, 0 due;" in sweep_line
    assert "; next due " in sweep_line and ("(in 50 s)" in sweep_line or "(in 49 s)" in sweep_line)
    assert "Prune: never ran as a task; starts with the worker's next delivery run." in output


def test_status_writes_long_waits_in_hours_and_minutes(settings, db):
    from wagtail_publish_hooks.models import Upkeep

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.WAGTAIL_PUBLISH_HOOKS = {"DESTINATIONS": {}}
    now = timezone.now()
    Upkeep.objects.create(
        name="prune",
        token="00000000-0000-0000-0000-000000000002",
        next_run_at=now + timedelta(hours=23, minutes=59, seconds=30),
        last_run_at=now - timedelta(minutes=15),
        last_result="0 event(s) deleted",
    )
    prune_line = next(line for line in command("status").splitlines() if "Prune:" in line)
    assert "(15 min ago)" in prune_line
    assert "(in 23 h 59 min)" in prune_line


def test_sweep_from_cron_also_starts_the_upkeep_tasks(settings, db):
    from wagtail_publish_hooks.models import Upkeep

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.WAGTAIL_PUBLISH_HOOKS = {"DESTINATIONS": {}}
    command("sweep")
    assert set(Upkeep.objects.filter(token__isnull=False).values_list("name", flat=True)) == {
        "sweep",
        "prune",
    }


def test_status_counts_finished_deliveries_of_a_window_and_every_one_still_to_be_sent(db):
    from tests.support.admin import make_delivery

    long_ago = timezone.now() - timedelta(days=2)
    make_delivery(destination="consumer", status=DeliveryStatus.DELIVERED, created_at=long_ago)
    make_delivery(destination="consumer", status=DeliveryStatus.FAILED, created_at=long_ago)
    make_delivery(destination="consumer", status=DeliveryStatus.RETRYING, created_at=long_ago)
    make_delivery(destination="consumer", status=DeliveryStatus.DELIVERED)

    def row(output: str) -> dict[str, str]:
        lines = output.splitlines()
        header = lines[0].split()
        consumer = next(line.split() for line in lines if line.startswith("consumer"))
        first = next(i for i, cell in enumerate(consumer) if cell.isdigit())  # after the backend
        return dict(zip(header[2:8], consumer[first : first + 6], strict=True))

    output = command("status")
    assert row(output) == {
        "pending": "0",
        "sending": "0",
        "delivered": "1",
        "retrying": "1",
        "failed": "0",
        "cancelled": "0",
    }
    assert "Delivered, failed and cancelled: created in the last 24h" in output
    assert "4 deliveries kept in all." in output or "About " in output
    assert row(command("status", "--since", "3d"))["delivered"] == "2"
    assert row(command("status", "--since", "3d"))["failed"] == "1"
    with pytest.raises(CommandError):
        command("status", "--since", "soon")
