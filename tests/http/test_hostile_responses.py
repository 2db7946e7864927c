"""Receivers that misbehave: the worker stays within its deadline and its memory, records the
failure on the attempt, and schedules another attempt.

Each receiver is a raw socket server on 127.0.0.1 (``tests/support/sinks.py``). The delivery runs in
this process, as a worker's task run would, under ``tracemalloc``.
"""

from __future__ import annotations

import re
import time
import tracemalloc
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import WEBHOOK
from tests.support import sinks
from wagtail_publish_hooks.exceptions import DeliveryError
from wagtail_publish_hooks.http import close_session, post
from wagtail_publish_hooks.http.responses import RESPONSE_EXCERPT_BYTES
from wagtail_publish_hooks.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)

#: The destination's TIMEOUT in these tests, in seconds.
TIMEOUT = 1
#: Generous room for a loaded machine; a missing deadline overshoots by far more.
MARGIN = 3.0
#: The most a delivery run may allocate at its peak (the unbounded cases reach hundreds of MB).
PEAK_MEMORY_BYTES = 24 * 1024 * 1024

SLOW_RESPONSE = sinks.response_bytes(200, b"ok, eventually")


@dataclass(frozen=True)
class Case:
    name: str
    behaviour: sinks.Behaviour
    error: str  # a regular expression the attempt's error must match


CASES = [
    Case("stall", sinks.stall, rf"within {TIMEOUT} s"),
    Case("reset", sinks.reset, r"connection (reset|aborted)|remote end closed"),
    Case("endless 503 body", sinks.endless_body(503), r"^HTTP 503$"),
    Case("endless chunked 502 body", sinks.endless_body(502, chunked=True), r"^HTTP 502$"),
    Case("endless chunk-size line", sinks.endless_chunk_size, r"broke off"),
    Case("random bytes", sinks.garbage(), r"invalid HTTP response"),
    Case("bad status line", sinks.garbage(b"HTTP/1.1 two hundred OK\r\n\r\n"), r"invalid HTTP"),
    Case("no status line", sinks.garbage(b""), r"remote end closed|connection aborted"),
    # Each byte comes well within the read timeout; the whole takes many times the deadline.
    Case("byte by byte", sinks.trickle(SLOW_RESPONSE, 0.1), rf"within {TIMEOUT} s"),
    Case("too many headers", sinks.huge_headers(), r"too many response headers"),
    Case("endless header line", sinks.huge_headers(single_line=True), r"line too long"),
]


@pytest.fixture
def queued_only(settings):
    """Publishing records and enqueues deliveries; the test runs the worker's loop itself."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture(autouse=True)
def fresh_session():
    close_session()
    yield
    close_session()


def run_worker(deliver):
    """The worker's delivery loop, timed and with its memory peak traced."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        summary = deliver()
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return summary, elapsed, peak


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_receiver(case, configure, queued_only, draft_blog_page, deliver):
    with sinks.Sink(case.behaviour) as sink:
        configure(
            DESTINATIONS={
                "consumer": {
                    "BACKEND": WEBHOOK,
                    "OPTIONS": {"URL": sink.url(), "TIMEOUT": TIMEOUT, "CONNECT_TIMEOUT": TIMEOUT},
                }
            },
            RETRY_SCHEDULE=[60],
            MAX_ATTEMPTS=3,
        )
        draft_blog_page.save_revision().publish()
        assert Delivery.objects.get().status == DeliveryStatus.PENDING
        summary, elapsed, peak = run_worker(deliver)
        assert len(sink.requests) == 1  # the request did reach the receiver

    assert summary.as_dict() == {"delivered": 0, "retrying": 1, "failed": 0}
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.attempts == 1
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=50)
    attempt = Attempt.objects.get()
    assert attempt.outcome == AttemptOutcome.RETRY
    assert re.search(case.error, attempt.error), attempt.error
    assert delivery.last_error == attempt.error
    assert len(attempt.response_body) <= RESPONSE_EXCERPT_BYTES + 1
    assert elapsed < TIMEOUT + MARGIN, f"{case.name}: the run took {elapsed:.1f} s"
    assert peak < PEAK_MEMORY_BYTES, f"{case.name}: peak {peak / 2**20:.1f} MiB"


def test_an_endless_body_after_a_success_status_is_cut_and_the_delivery_counts(
    configure, queued_only, draft_blog_page, deliver
):
    """The status decides; the body is read up to its limit, then the connection is dropped."""
    with sinks.Sink(sinks.endless_body(200)) as sink:
        configure(
            DESTINATIONS={
                "consumer": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url(), "TIMEOUT": 5}}
            }
        )
        draft_blog_page.save_revision().publish()
        summary, elapsed, peak = run_worker(deliver)
    assert summary.delivered == 1
    attempt = Attempt.objects.get()
    assert attempt.outcome == AttemptOutcome.SUCCESS
    assert attempt.response_body == "x" * RESPONSE_EXCERPT_BYTES + "…"
    assert peak < PEAK_MEMORY_BYTES
    assert elapsed < 5 + MARGIN


def test_a_good_request_after_a_broken_one_reuses_nothing_broken(settings):
    """A connection dropped mid-body is not handed to the next request."""
    settings.WAGTAIL_PUBLISH_HOOKS = {"ALLOW_PRIVATE_NETWORKS": ["127.0.0.1/32"]}
    behaviour = sinks.cycle(sinks.endless_body(200), sinks.respond(keep_alive=False))
    with sinks.Sink(behaviour) as sink:
        first = post(sink.url(), body=b"{}", headers={}, timeout=5)
        second = post(sink.url(), body=b"{}", headers={}, timeout=5)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.response_body == "ok"
    assert sink.connections == 2


def test_the_deadline_covers_the_whole_exchange(settings):
    """Headers trickling in one byte at a time end at the deadline, not at the last byte."""
    settings.WAGTAIL_PUBLISH_HOOKS = {"ALLOW_PRIVATE_NETWORKS": ["127.0.0.1/32"]}
    with sinks.Sink(sinks.trickle(SLOW_RESPONSE, 0.05)) as sink:
        started = time.monotonic()
        with pytest.raises(DeliveryError, match=r"no complete response .* within 0\.5 s") as caught:
            post(sink.url(), body=b"{}", headers={}, timeout=0.5)
        elapsed = time.monotonic() - started
    assert caught.value.retryable is True
    # The full response would take len(SLOW_RESPONSE) * 0.05 s, several seconds.
    assert len(SLOW_RESPONSE) * 0.05 > 2
    assert elapsed < 0.5 + MARGIN


@pytest.mark.parametrize("charset", ["x-bogus", "windows-9999"])
def test_a_2xx_with_an_unknown_charset_is_a_success(charset, configure, draft_blog_page):
    """The status decides: a charset Python does not know is read as UTF-8 with replacement."""
    body = "d\u00e9j\u00e0 re\u00e7u".encode() + b" \xff"
    headers = {"Content-Type": f"text/plain; charset={charset}"}
    with sinks.Sink(sinks.respond(200, body, headers)) as sink:
        configure(DESTINATIONS={"consumer": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url()}}})
        draft_blog_page.save_revision().publish()
        assert len(sink.requests) == 1
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    attempt = Attempt.objects.get()
    assert attempt.outcome == AttemptOutcome.SUCCESS
    assert attempt.status_code == 200
    assert attempt.response_body == "d\u00e9j\u00e0 re\u00e7u \ufffd"
