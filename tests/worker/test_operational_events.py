"""Operational events end to end: a destination that fails for good, or is disabled, is reported
to the destinations that asked (a Slack look-alike on loopback), coalesced, never to itself."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from werkzeug import Request, Response

from tests.conftest import WEBHOOK
from tests.support.sinks import Sink, respond
from tests.testapp.models import BlogPage
from wagtail_publish_hooks import operational
from wagtail_publish_hooks.backends import slack
from wagtail_publish_hooks.events import DELIVERY_FAILED, DESTINATION_DISABLED
from wagtail_publish_hooks.models import Delivery, DeliveryStatus, DestinationState, Event

pytestmark = pytest.mark.django_db(transaction=True)

SLACK = "wagtail_publish_hooks.backends.slack.SlackBackend"
TOKEN = "xT0k3nS3cr3tx"
PATH = f"/services/T000/B000/{TOKEN}"


@pytest.fixture(autouse=True)
def fresh_pacer():
    slack.pacer.reset()
    yield
    slack.pacer.reset()


@pytest.fixture
def failing_sink():
    """A real webhook consumer on loopback that answers every request with HTTP 500."""
    with Sink(respond(500, b"down")) as sink:
        yield sink


def slack_lookalike(httpserver, status: int = 200) -> None:
    def handler(request: Request) -> Response:
        return Response("ok" if status == 200 else "down", status=status, content_type="text/html")

    httpserver.expect_request(PATH, method="POST").respond_with_handler(handler)


def alerts(httpserver) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


def destinations(sink, httpserver, *, consumer: dict | None = None, team: dict | None = None):
    return {
        # Asks for every operational event too: it must still never get those about itself.
        "consumer": {
            "BACKEND": WEBHOOK,
            "EVENTS": ["page.*", "publish_hooks.*"],
            "OPTIONS": {"URL": sink.url("/hooks/whsec-in-path")},
            "MAX_ATTEMPTS": 2,
            "RETRY_SCHEDULE": [0],
            **(consumer or {}),
        },
        "team": {
            "BACKEND": SLACK,
            "EVENTS": ["publish_hooks.*"],
            "OPTIONS": {"URL": httpserver.url_for(PATH), "MIN_INTERVAL": 0},
            **(team or {}),
        },
    }


def publish_new(parent, title: str) -> BlogPage:
    with transaction.atomic():
        page = BlogPage(title=title, slug=title.lower().replace(" ", "-"), live=False)
        parent.add_child(instance=page)
        page.save_revision().publish()
    return page


def test_a_destination_failing_for_good_makes_one_coalesced_slack_message(
    configure, failing_sink, httpserver, blog_index, deliver
):
    slack_lookalike(httpserver)
    configure(
        DESTINATIONS=destinations(failing_sink, httpserver),
        MAX_ATTEMPTS=8,  # the destination's own 2 wins
        # Long enough that a loaded machine cannot let it pass between the publishes; the end of
        # the window is then brought forward below rather than slept through.
        OPERATIONAL_COALESCE_SECONDS=600,
    )
    for n in range(3):
        publish_new(blog_index, f"Post {n}")

    failed = Delivery.objects.filter(destination="consumer")
    assert [d.status for d in failed] == [DeliveryStatus.FAILED] * 3
    assert {d.attempts for d in failed} == {2}
    assert len(failing_sink.requests) == 6
    # One event gathers the three failures; it waits out its window before it is sent.
    event = Event.objects.get(event_type=DELIVERY_FAILED)
    assert [d.destination for d in event.deliveries.all()] == ["team"]
    assert httpserver.log == []
    data = event.payload["data"]
    assert data["destination"] == "consumer"
    assert data["count"] == 3
    assert data["delivery_ids"] == sorted(d.pk for d in failed)
    assert data["first_failure"]["delivery_id"] == min(d.pk for d in failed)
    assert data["last_failure"]["delivery_id"] == max(d.pk for d in failed)
    assert data["last_failure"]["status_code"] == 500
    assert data["last_failure"]["attempts"] == 2
    assert data["last_failure"]["object"] == "Post 2"
    assert data["admin_url"].startswith("http://testserver/")
    assert "destination=consumer" in data["admin_url"]
    assert "whsec-in-path" not in json.dumps(event.payload)

    deliver()
    assert httpserver.log == []  # still within its window
    Delivery.objects.filter(event=event).update(next_attempt_at=timezone.now())
    deliver()
    messages = alerts(httpserver)
    assert len(messages) == 1
    text = messages[0]["text"]
    assert "consumer" in text
    assert "was failing: 3 deliveries failed after the last attempt (last: " in text
    assert "HTTP 500" in text
    assert messages[0]["blocks"][0]["text"]["text"] == "Deliveries failed"
    # None to the failing destination itself: it only ever saw the three page events.
    bodies = [json.loads(request.body) for request in failing_sink.requests]
    assert {body["type"] for body in bodies} == {"page.published"}
    assert Delivery.objects.get(event=event).status == DeliveryStatus.DELIVERED

    # Once sent, the next failure opens a new event rather than changing the one sent.
    publish_new(blog_index, "Post 3")
    assert Event.objects.filter(event_type=DELIVERY_FAILED).count() == 2
    assert Event.objects.get(pk=event.pk).payload["data"]["count"] == 3


def test_no_event_about_a_delivery_of_an_operational_event(
    configure, failing_sink, httpserver, blog_index, deliver
):
    """A fails → an event to B; B fails too → nothing about it goes back to A (no loop)."""
    slack_lookalike(httpserver, status=500)
    configure(
        DESTINATIONS=destinations(
            failing_sink, httpserver, consumer={"MAX_ATTEMPTS": 1}, team={"MAX_ATTEMPTS": 1}
        ),
        OPERATIONAL_COALESCE_SECONDS=0,
    )
    publish_new(blog_index, "Post")
    deliver()

    event = Event.objects.get(event_type=DELIVERY_FAILED)
    assert event.payload["data"]["destination"] == "consumer"
    assert Delivery.objects.get(event=event).status == DeliveryStatus.FAILED  # B failed too
    assert len(httpserver.log) == 1
    assert Event.objects.filter(event_type=DELIVERY_FAILED).count() == 1
    assert [json.loads(r.body)["type"] for r in failing_sink.requests] == ["page.published"]


def test_the_default_events_do_not_receive_operational_events(
    configure, failing_sink, httpserver, blog_index
):
    slack_lookalike(httpserver)
    configure(
        DESTINATIONS=destinations(failing_sink, httpserver, team={"EVENTS": ["*"]}),
        OPERATIONAL_COALESCE_SECONDS=0,
    )
    publish_new(blog_index, "Post")
    assert Delivery.objects.get(destination="consumer").status == DeliveryStatus.FAILED
    assert not Event.objects.filter(event_type=DELIVERY_FAILED).exists()
    # "*" took the page event; alerts must be asked for by name.
    assert [m["blocks"][0]["text"]["text"] for m in alerts(httpserver)] == ["Page published"]


def test_sustained_failure_disables_once_and_enable_resets_the_streak(
    configure, failing_sink, httpserver, blog_index, deliver
):
    slack_lookalike(httpserver)
    configure(
        DESTINATIONS=destinations(failing_sink, httpserver, consumer={"MAX_ATTEMPTS": 1}),
        DISABLE_AFTER_FAILING_FOR=3600,
    )
    publish_new(blog_index, "First")
    state = DestinationState.objects.get(alias="consumer")
    assert not state.is_disabled
    first_failure = state.failing_since
    assert first_failure is not None and state.consecutive_failures == 1
    assert not Event.objects.filter(event_type=DESTINATION_DISABLED).exists()

    # Two hours of nothing but failures: the next failure disables it.
    DestinationState.objects.filter(alias="consumer").update(
        failing_since=timezone.now() - timedelta(hours=2)
    )
    publish_new(blog_index, "Second")
    state.refresh_from_db()
    assert state.is_disabled
    assert "every attempt failed for more than 1 hour" in state.disabled_reason
    event = Event.objects.get(event_type=DESTINATION_DISABLED)
    assert event.payload["data"]["destination"] == "consumer"
    assert event.payload["data"]["cause"] == "sustained_failure"
    assert event.payload["data"]["consecutive_failures"] == 2
    messages = [
        m for m in alerts(httpserver) if m["blocks"][0]["text"]["text"] != "Deliveries failed"
    ]
    assert len(messages) == 1
    assert "was disabled: every attempt failed for more than 1 hour" in messages[0]["text"]

    # Disabled: later deliveries fail at once, with no second event of either kind for them.
    sent = len(failing_sink.requests)
    publish_new(blog_index, "Third")
    assert len(failing_sink.requests) == sent
    assert Event.objects.filter(event_type=DESTINATION_DISABLED).count() == 1

    call_command("publish_hooks", "enable", "consumer")
    state.refresh_from_db()
    assert (state.is_disabled, state.failing_since, state.consecutive_failures) == (False, None, 0)
    # A fresh streak: one failure does not disable it again.
    publish_new(blog_index, "Fourth")
    state.refresh_from_db()
    assert not state.is_disabled and state.failing_since is not None


def test_a_success_ends_the_failing_streak(configure, httpserver, blog_index):
    replies = [Response("down", status=500), Response("ok")]
    httpserver.expect_request("/hooks").respond_with_handler(lambda request: replies.pop(0))
    configure(
        DESTINATIONS={
            "consumer": {
                "BACKEND": WEBHOOK,
                "OPTIONS": {"URL": httpserver.url_for("/hooks")},
                "MAX_ATTEMPTS": 1,
            }
        }
    )
    publish_new(blog_index, "One")
    assert DestinationState.objects.get(alias="consumer").failing_since is not None
    publish_new(blog_index, "Two")
    assert DestinationState.objects.get(alias="consumer").failing_since is None


def test_gone_disables_and_is_reported_once(configure, httpserver, blog_index):
    slack_lookalike(httpserver)
    with Sink(respond(410, b"gone")) as gone:
        configure(DESTINATIONS=destinations(gone, httpserver), OPERATIONAL_COALESCE_SECONDS=0)
        publish_new(blog_index, "One")
        publish_new(blog_index, "Two")
        assert len(gone.requests) == 1
    assert DestinationState.objects.get(alias="consumer").is_disabled
    event = Event.objects.get(event_type=DESTINATION_DISABLED)
    assert event.payload["data"]["cause"] == "gone"
    assert "410" in event.payload["data"]["reason"]
    assert event.payload["data"]["admin_url"] == (
        "http://testserver/admin/publish-hooks/destinations/view/consumer"
    )
    # A 410 is reported as a disabling, not also as a failed delivery.
    assert not Event.objects.filter(event_type=DELIVERY_FAILED).exists()
    messages = alerts(httpserver)
    assert len(messages) == 1
    assert messages[0]["blocks"][0]["text"]["text"] == "Destination disabled"


def test_a_failure_to_emit_never_breaks_the_worker(
    configure, failing_sink, httpserver, blog_index, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("the alert could not be written")

    monkeypatch.setattr(operational, "deliveries_failed", broken)
    configure(DESTINATIONS=destinations(failing_sink, httpserver), OPERATIONAL_COALESCE_SECONDS=0)
    with caplog.at_level("ERROR", logger="wagtail_publish_hooks"):
        publish_new(blog_index, "Post")
    assert Delivery.objects.get(destination="consumer").status == DeliveryStatus.FAILED
    assert "could not emit publish_hooks.delivery_failed for 'consumer'" in caplog.text


def test_emitted_only_once_the_outcome_is_committed(
    configure, failing_sink, httpserver, blog_index, monkeypatch
):
    """A rolled back outcome transaction emits nothing."""
    from wagtail_publish_hooks import worker as delivery_module

    configure(
        DESTINATIONS=destinations(failing_sink, httpserver, consumer={"MAX_ATTEMPTS": 1}),
        OPERATIONAL_COALESCE_SECONDS=0,
        TASK_BACKEND="missing",
    )
    publish_new(blog_index, "Post")

    def fail_after(*args, **kwargs):
        raise RuntimeError("the commit failed")

    real = delivery_module.operational.outcomes_recorded

    def record_then_fail(outcomes):
        real(outcomes)
        fail_after()

    monkeypatch.setattr(delivery_module.operational, "outcomes_recorded", record_then_fail)
    with pytest.raises(RuntimeError):
        delivery_module.run_due_deliveries(max_seconds=10, enqueue_successor=False)
    assert not Event.objects.filter(event_type=DELIVERY_FAILED).exists()
    assert Delivery.objects.get(destination="consumer").status != DeliveryStatus.FAILED


FAILED_PAYLOAD = {
    "id": "evt_1",
    "type": DELIVERY_FAILED,
    "timestamp": "2026-12-01T10:00:00Z",
    "data": {
        "destination": "consumer",
        "count": 12,
        "window_seconds": 300,
        "first_failure": {"delivery_id": 1, "status_code": 500, "error": "HTTP 500"},
        "last_failure": {"delivery_id": 12, "status_code": 503, "error": "HTTP 503 Unavailable"},
        "delivery_ids": list(range(1, 13)),
        "admin_url": "https://admin.example/admin/publish-hooks/deliveries/?destination=consumer",
    },
}
DISABLED_PAYLOAD = {
    "id": "evt_2",
    "type": DESTINATION_DISABLED,
    "timestamp": "2026-12-01T10:00:00Z",
    "data": {"destination": "build", "cause": "gone", "reason": "HTTP 410 Gone", "admin_url": None},
}


@pytest.mark.parametrize(
    ("payload", "sentence", "label"),
    [
        (
            FAILED_PAYLOAD,
            "“consumer” was failing: 12 deliveries failed after the last attempt "
            "(last: HTTP 503 Unavailable)",
            "Deliveries failed",
        ),
        (DISABLED_PAYLOAD, "“build” was disabled: HTTP 410 Gone", "Destination disabled"),
        (
            {
                "id": "e",
                "type": "publish_hooks.capture_failed",
                "data": {"error": "OperationalError"},
            },
            "“publish_hooks.capture_failed” was not captured (OperationalError)",
            "Capture failed",
        ),
        (
            {
                "id": "e",
                "type": "publish_hooks.capture_failed",
                "data": {
                    "capture_failure": {
                        "id": 3,
                        "event_type": "page.published",
                        "object": {"type": "testapp.BlogPage", "id": "12"},
                        "error": "OperationalError",
                    },
                    "destination": None,
                },
            },
            "“page.published of testapp.BlogPage 12” was not captured (OperationalError)",
            "Capture failed",
        ),
        (
            {"id": "e", "type": DELIVERY_FAILED, "data": {"destination": "x", "count": True}},
            "“x” was failing: 1 delivery failed after the last attempt",
            "Deliveries failed",
        ),
    ],
)
def test_chat_and_email_summaries_read_well(payload, sentence, label):
    from wagtail_publish_hooks.backends import discord, teams
    from wagtail_publish_hooks.summary import summarize

    summary = summarize(payload)
    assert (summary.sentence, summary.label, summary.tone) == (sentence, label, "danger")
    assert discord.build_message(payload)["content"] == discord.escape_markdown(sentence)
    card = teams.build_message(payload)["attachments"][0]["content"]
    assert teams.escape_markdown(sentence) in [block.get("text") for block in card["body"]]
    message = slack.SlackBackend(alias="team", options={"URL": "https://x.example/"})
    assert message.build_message(payload)["blocks"][0]["text"]["text"] == label


def test_the_admin_link_of_a_summary_is_absolute_or_absent():
    from wagtail_publish_hooks.summary import summarize

    assert summarize(FAILED_PAYLOAD).url == FAILED_PAYLOAD["data"]["admin_url"]
    relative = {**FAILED_PAYLOAD, "data": {**FAILED_PAYLOAD["data"], "admin_url": "/admin/"}}
    assert summarize(relative).url is None
    assert summarize(DISABLED_PAYLOAD).url is None


def test_a_failing_python_receiver_is_reported_but_never_disabled(
    configure, httpserver, blog_index
):
    from wagtail_publish_hooks import on
    from wagtail_publish_hooks.receivers import unregister

    slack_lookalike(httpserver)
    configure(
        DESTINATIONS={
            "team": {
                "BACKEND": SLACK,
                "EVENTS": ["publish_hooks.*"],
                "OPTIONS": {"URL": httpserver.url_for(PATH), "MIN_INTERVAL": 0},
            }
        },
        MAX_ATTEMPTS=1,
        OPERATIONAL_COALESCE_SECONDS=0,
        DISABLE_AFTER_FAILING_FOR=60,
    )

    @on("page.published", name="boom")
    def boom(event):
        raise RuntimeError("the receiver broke")

    try:
        publish_new(blog_index, "One")
        DestinationState.objects.filter(alias="python:boom").update(
            failing_since=timezone.now() - timedelta(hours=1)
        )
        publish_new(blog_index, "Two")
    finally:
        unregister(boom)
    assert not DestinationState.objects.get(alias="python:boom").is_disabled
    assert not Event.objects.filter(event_type=DESTINATION_DISABLED).exists()
    reported = Event.objects.filter(event_type=DELIVERY_FAILED)
    assert [e.payload["data"]["destination"] for e in reported] == ["python:boom"] * 2
    assert len(alerts(httpserver)) == 2
