"""Retry policy (PRODUCT.md §7) against a real HTTP server on loopback."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone
from werkzeug import Request, Response

from wagtail_publish_hooks.delivery import redeliver
from wagtail_publish_hooks.http.responses import parse_retry_after
from wagtail_publish_hooks.models import (
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    DestinationState,
)

pytestmark = pytest.mark.django_db(transaction=True)


def answers(*responses):
    """A handler replying with ``responses`` in turn (the last one repeats)."""
    queue = list(responses)

    def handler(request: Request) -> Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(item):
            return item(request)
        status, headers = item if isinstance(item, tuple) else (item, {})
        return Response(f"status {status}", status=status, headers=headers)

    return handler


def test_500_twice_then_200_is_delivered_on_the_third_attempt(
    webhook_destination, httpserver, draft_blog_page
):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_handler(answers(500, 500, 200))
    draft_blog_page.save_revision().publish()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 3
    attempts = list(Attempt.objects.order_by("number"))
    assert [(a.number, a.status_code, a.outcome) for a in attempts] == [
        (1, 500, AttemptOutcome.RETRY),
        (2, 500, AttemptOutcome.RETRY),
        (3, 200, AttemptOutcome.SUCCESS),
    ]
    assert attempts[0].response_body == "status 500"
    ids = {request.headers["webhook-id"] for request, _ in httpserver.log}
    assert len(httpserver.log) == 3
    assert ids == {delivery.event.event_id}


def test_retry_after_seconds_is_honoured(webhook_destination, httpserver, draft_blog_page):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_handler(answers((429, {"Retry-After": "7"})))
    draft_blog_page.save_revision().publish()

    delivery = Delivery.objects.get()
    attempt = Attempt.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert attempt.status_code == 429
    assert delivery.next_attempt_at >= attempt.started_at + timedelta(seconds=7)
    assert delivery.next_attempt_at <= timezone.now() + timedelta(seconds=9)
    assert len(httpserver.log) == 1  # not retried before its time


def test_retry_after_http_date_is_honoured(webhook_destination, httpserver, draft_blog_page):
    webhook_destination()
    when = timezone.now() + timedelta(seconds=30)
    httpserver.expect_request("/hooks").respond_with_handler(
        answers((503, {"Retry-After": format_datetime(when, usegmt=True)}))
    )
    draft_blog_page.save_revision().publish()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.next_attempt_at >= when - timedelta(seconds=1)


def test_parse_retry_after_forms():
    now = timezone.now()
    assert parse_retry_after("7") == 7
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True)) == 0
    assert parse_retry_after("99999999") == 24 * 3600  # capped


def test_retry_schedule_sets_the_next_attempt(configure, httpserver, draft_blog_page):
    configure(
        DESTINATIONS={
            "consumer": {
                "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
                "OPTIONS": {"URL": httpserver.url_for("/hooks")},
            }
        },
        RETRY_SCHEDULE=[60, 600],
    )
    httpserver.expect_request("/hooks").respond_with_handler(answers(502))
    draft_blog_page.save_revision().publish()
    delivery = Delivery.objects.get()
    attempt = Attempt.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    gap = (delivery.next_attempt_at - attempt.started_at).total_seconds()
    assert 60 <= gap < 65


def test_410_disables_the_destination(webhook_destination, httpserver, draft_blog_page, blog_index):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_handler(answers(410))
    draft_blog_page.save_revision().publish()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    state = DestinationState.objects.get(alias="consumer")
    assert state.is_disabled
    assert "410" in state.disabled_reason

    # Later events are recorded, not sent.
    draft_blog_page.save_revision().publish()
    assert len(httpserver.log) == 1
    second = Delivery.objects.order_by("-pk").first()
    assert second.status == DeliveryStatus.FAILED
    assert "disabled" in second.last_error


def test_404_fails_at_once(webhook_destination, httpserver, draft_blog_page):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_handler(answers(404))
    draft_blog_page.save_revision().publish()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert delivery.last_status_code == 404
    assert not DestinationState.objects.get(alias="consumer").is_disabled


def test_redirect_is_not_followed(webhook_destination, httpserver, draft_blog_page):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_handler(
        answers((301, {"Location": httpserver.url_for("/elsewhere")}))
    )
    httpserver.expect_request("/elsewhere").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "redirects are not followed" in delivery.last_error
    assert [request.path for request, _ in httpserver.log] == ["/hooks"]


def test_connection_refused_retries_then_fails(
    webhook_destination, settings, free_port, draft_blog_page
):
    config = webhook_destination()
    config["DESTINATIONS"]["consumer"]["OPTIONS"]["URL"] = f"http://127.0.0.1:{free_port}/hooks"
    settings.WAGTAIL_PUBLISH_HOOKS = {**config, "MAX_ATTEMPTS": 3}
    draft_blog_page.save_revision().publish()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 3
    outcomes = list(Attempt.objects.order_by("number").values_list("outcome", flat=True))
    assert outcomes == [AttemptOutcome.RETRY, AttemptOutcome.RETRY, AttemptOutcome.FAILURE]
    assert "connection refused" in delivery.last_error
    assert str(free_port) in delivery.last_error
    assert "/hooks" not in delivery.last_error  # paths may hold secrets


def test_read_timeout_retries(webhook_destination, settings, httpserver, draft_blog_page, deliver):
    config = webhook_destination(options={"TIMEOUT": 0.3})
    settings.WAGTAIL_PUBLISH_HOOKS = {**config, "RETRY_SCHEDULE": [1]}

    def slow(request):
        time.sleep(1)
        return Response("late")

    httpserver.expect_request("/hooks").respond_with_handler(answers(slow, 200))
    draft_blog_page.save_revision().publish()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    attempt = Attempt.objects.get()
    assert attempt.outcome == AttemptOutcome.RETRY
    assert "within 0.3 s" in attempt.error
    assert attempt.duration_ms < 900

    time.sleep(1.1)
    deliver()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 2


def test_failed_delivery_is_redeliverable_with_a_fresh_cycle(
    webhook_destination, settings, httpserver, draft_blog_page, deliver
):
    config = webhook_destination()
    settings.WAGTAIL_PUBLISH_HOOKS = {**config, "MAX_ATTEMPTS": 2}
    httpserver.expect_request("/hooks").respond_with_handler(answers(500, 500, 500, 200))
    draft_blog_page.save_revision().publish()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 2

    assert redeliver(Delivery.objects.filter(pk=delivery.pk)) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED  # immediate backend ran it on commit
    assert delivery.attempts == 4
    ids = {request.headers["webhook-id"] for request, _ in httpserver.log}
    assert ids == {delivery.event.event_id}


def test_backend_that_raises_is_recorded_and_retried(configure, draft_blog_page):
    configure(
        DESTINATIONS={"broken": {"BACKEND": "tests.support.backends.ExplodingBackend"}},
        MAX_ATTEMPTS=2,
        RETRY_SCHEDULE=[0],
    )
    draft_blog_page.save_revision().publish()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 2
    assert delivery.last_error == "RuntimeError: the destination exploded"


def test_webhook_timestamp_is_the_send_time(webhook_destination, httpserver, draft_blog_page):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")
    before = int(time.time())
    draft_blog_page.save_revision().publish()
    request, _ = httpserver.log[0]
    assert before <= int(request.headers["webhook-timestamp"]) <= int(time.time())
    body = json.loads(request.get_data())
    assert body["id"] == request.headers["webhook-id"]


def test_a_destination_retry_policy_overrides_the_globals(configure, httpserver, draft_blog_page):
    """A chat message days late is noise, a build hook should keep trying: per destination."""
    httpserver.expect_request("/chat").respond_with_handler(answers(503))
    httpserver.expect_request("/build").respond_with_handler(answers(503))
    configure(
        DESTINATIONS={
            "chat": {
                "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
                "OPTIONS": {"URL": httpserver.url_for("/chat")},
                "MAX_ATTEMPTS": 2,
                "RETRY_SCHEDULE": [0],
            },
            "build": {
                "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
                "OPTIONS": {"URL": httpserver.url_for("/build")},
            },
        },
        MAX_ATTEMPTS=20,
        RETRY_SCHEDULE=[120, 3600],
    )
    draft_blog_page.save_revision().publish()

    chat = Delivery.objects.get(destination="chat")
    assert (chat.status, chat.attempts) == (DeliveryStatus.FAILED, 2)
    outcomes = list(chat.attempt_set.order_by("number").values_list("outcome", flat=True))
    assert outcomes == [AttemptOutcome.RETRY, AttemptOutcome.FAILURE]
    build = Delivery.objects.get(destination="build")
    assert (build.status, build.attempts) == (DeliveryStatus.RETRYING, 1)
    gap = (build.next_attempt_at - build.attempt_set.get().started_at).total_seconds()
    assert 120 <= gap < 125  # the global schedule


def test_a_destination_schedule_alone_keeps_the_global_max_attempts(
    configure, httpserver, draft_blog_page
):
    httpserver.expect_request("/hooks").respond_with_handler(answers(500))
    configure(
        DESTINATIONS={
            "consumer": {
                "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
                "OPTIONS": {"URL": httpserver.url_for("/hooks")},
                "RETRY_SCHEDULE": [0, 0, 900],
            }
        },
        MAX_ATTEMPTS=4,
        RETRY_SCHEDULE=[3600],
    )
    draft_blog_page.save_revision().publish()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.RETRYING, 3)
    last = delivery.attempt_set.order_by("-number").first()
    gap = (delivery.next_attempt_at - last.started_at).total_seconds()
    assert 900 <= gap < 905
