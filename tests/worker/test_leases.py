"""Claims and leases: a delivery is held by one worker at a time."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.core import checks
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from tests.conftest import WEBHOOK
from tests.support.load import seed
from tests.support.sink_log import Sink
from wagtail_publish_hooks.leases import Lease, claim_due_deliveries
from wagtail_publish_hooks.models import (
    Attempt,
    Delivery,
    DeliveryStatus,
    DestinationState,
    Event,
)
from wagtail_publish_hooks.worker import (
    OutcomeRecorder,
    RunSummary,
    attempt_delivery,
    run_due_deliveries,
)

pytestmark = pytest.mark.django_db(transaction=True)

SLACK = "wagtail_publish_hooks.backends.slack.SlackBackend"


@pytest.fixture
def deliveries():
    event = Event.objects.create(event_type="page.published", payload={})
    return [Delivery.objects.create(event=event, destination=f"d{i}") for i in range(3)]


def test_a_claim_is_exclusive(deliveries):
    token, first = claim_due_deliveries(10, lease_seconds=60)
    assert {d.pk for d in first} == {d.pk for d in deliveries}
    assert all(d.status == DeliveryStatus.SENDING and d.lease_token == token for d in first)
    _, second = claim_due_deliveries(10, lease_seconds=60)
    assert second == []


def test_an_expired_claim_can_be_taken_over(deliveries):
    claim_due_deliveries(10, lease_seconds=60)
    Delivery.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    token, taken = claim_due_deliveries(10, lease_seconds=60)
    assert len(taken) == 3 and all(d.lease_token == token for d in taken)


def test_claims_respect_the_batch_size_and_due_time(deliveries):
    Delivery.objects.filter(pk=deliveries[0].pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5), status=DeliveryStatus.RETRYING
    )
    _, batch = claim_due_deliveries(1, lease_seconds=60)
    assert [d.pk for d in batch] == [deliveries[1].pk]


def test_confirm_extends_a_held_claim_and_refuses_one_taken_over(deliveries):
    token, batch = claim_due_deliveries(10, lease_seconds=60)
    # Another worker took the last delivery after this worker's claim ran out.
    taken = uuid.uuid4()
    Delivery.objects.filter(pk=batch[2].pk).update(lease_token=taken)
    lease = Lease(token, 600, claimed_at=time.monotonic())
    before = timezone.now()
    # Confirming the second also extends the first, sent but not yet recorded.
    assert lease.confirm(batch[1], [batch[0]]) is True
    for delivery in batch[:2]:
        expires = Delivery.objects.get(pk=delivery.pk).lease_expires_at
        assert expires >= before + timedelta(seconds=590)
    assert lease.confirm(batch[2]) is False
    assert Delivery.objects.get(pk=batch[2].pk).lease_token == taken


def test_only_the_holder_of_a_claim_records_an_attempt(sink_config, monkeypatch):
    """An outcome waiting for its commit whose claim was taken over is not written."""
    monkeypatch.setattr("wagtail_publish_hooks.worker.FLUSH_SECONDS", 3600)
    sink, configure = sink_config
    configure()
    seed(2, ["a"], runs=0)
    token, batch = claim_due_deliveries(10, lease_seconds=60)
    lease = Lease(token, 60, claimed_at=time.monotonic())
    summary = RunSummary()
    recorder = OutcomeRecorder(token, summary)
    for delivery in batch:
        attempt_delivery(delivery, token, summary, states={}, recorder=recorder, lease=lease)
    assert len(recorder.pending) == 2 and len(sink.snapshot()) == 2
    # The worker stalled; its claim on the first ran out and another worker took it.
    taken = uuid.uuid4()
    Delivery.objects.filter(pk=batch[0].pk).update(lease_token=taken)
    recorder.flush()

    assert list(Attempt.objects.values_list("delivery_id", flat=True)) == [batch[1].pk]
    first = Delivery.objects.get(pk=batch[0].pk)
    assert (first.status, first.attempts, first.lease_token) == (
        DeliveryStatus.SENDING,
        0,
        taken,
    )
    assert Delivery.objects.get(pk=batch[1].pk).status == DeliveryStatus.DELIVERED
    assert summary.delivered == 1
    assert DestinationState.objects.get(alias="a").last_success_at is not None


# -- The lease race, with real workers: a 2-second lease, a slow sink ------------------------------

LEASE = 2


@pytest.fixture
def sink_config(configure):
    """A sink on 127.0.0.1 and ``configure(**more)``: destinations ``a`` and ``b`` on it."""
    delays: dict[str, float] = {}
    with Sink(delay_for=lambda path, webhook_id, seen: delays.get(path, 0.0)) as sink:
        sink.delays = delays  # type: ignore[attr-defined]

        def apply(timeout: float = 1.5, **more):
            return configure(
                DESTINATIONS={
                    alias: {
                        "BACKEND": WEBHOOK,
                        "OPTIONS": {"URL": sink.url(f"/{alias}"), "TIMEOUT": timeout},
                    }
                    for alias in ("a", "b")
                },
                LEASE_SECONDS=LEASE,
                CONCURRENCY=1,
                TASK_BACKEND="missing",  # the test runs the workers
                RETRY_SCHEDULE=[3600],
                **more,
            )

        yield sink, apply


class Worker(threading.Thread):
    """A worker's delivery run, in a thread of its own with its own database connection."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.summary = run_due_deliveries(max_seconds=30, enqueue_successor=False)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            connections.close_all()


def start_second_worker_at(sink: Sink, request_count: int) -> Worker:
    """A second worker, started when the sink receives its ``request_count``-th request."""
    second = Worker("second")
    sink.on_request = lambda count: count == request_count and second.start()
    return second


def assert_each_sent_once_and_recorded_once(sink: Sink) -> None:
    log = sink.snapshot()
    assert [record.key for record in log if record.overlapped] == []
    sent = Counter(record.key for record in log)
    assert sent and set(sent.values()) == {1}, sent
    deliveries = Delivery.objects.all()
    assert {d.status for d in deliveries} == {DeliveryStatus.DELIVERED}
    assert len(sent) == deliveries.count()
    rows = Counter(Attempt.objects.values_list("delivery_id", flat=True))
    assert set(rows.values()) == {1} and len(rows) == deliveries.count()
    assert {d.attempts for d in deliveries} == {1}


def test_a_group_that_waited_past_its_lease_is_not_sent_twice(sink_config):
    """The race as found: with CONCURRENCY=1 the second destination's deliveries wait behind
    the first's, past the 2-second lease, and a second worker takes them over."""
    sink, configure = sink_config
    sink.delays.update({"/a": 0.7, "/b": 1.4})
    configure(BATCH_SIZE=10)
    seed(4, ["a"], runs=0)
    seed(2, ["b"], runs=0)
    # The fourth request to "a" comes at least 2.1 s after the claim: the claims on "b",
    # made with the batch and not yet used, have run out; "b" starts 0.7 s later at the soonest.
    second = start_second_worker_at(sink, 4)
    first = Worker("first")
    first.start()
    first.join(60)
    second.join(60)
    assert first.error is None and second.error is None, (first.error, second.error)
    assert second.summary is not None and second.summary.delivered >= 1
    assert_each_sent_once_and_recorded_once(sink)


def test_outcomes_waiting_for_their_commit_keep_their_claims(sink_config, monkeypatch):
    """Sent deliveries whose outcomes wait to be committed with others stay claimed: a second
    worker does not send them again."""
    monkeypatch.setattr("wagtail_publish_hooks.worker.FLUSH_SECONDS", 3600)
    sink, configure = sink_config
    sink.delays.update({"/a": 0.8})
    configure()
    seed(4, ["a"], runs=0)
    # The fourth request comes at least 2.4 s after the claim.
    second = start_second_worker_at(sink, 4)
    first = Worker("first")
    first.start()
    first.join(60)
    second.join(60)
    assert first.error is None and second.error is None, (first.error, second.error)
    assert first.summary is not None and first.summary.delivered == 4
    assert_each_sent_once_and_recorded_once(sink)


def test_a_send_cannot_outlive_its_claim(sink_config):
    """A request slower than the lease allows is cut off before the claim runs out."""
    sink, configure = sink_config
    sink.delays.update({"/a": 3.0})
    configure(timeout=10)
    seed(1, ["a"], runs=0)
    started = time.monotonic()
    summary = run_due_deliveries(max_seconds=30, enqueue_successor=False)
    assert time.monotonic() - started < LEASE
    assert summary.retrying == 1
    attempt = Attempt.objects.get()
    assert attempt.status_code is None
    assert "no complete response" in attempt.error
    assert attempt.duration_ms < LEASE * 1000


def test_cron_commands_are_quiet_with_verbosity_0(deliveries, configure):
    configure(DESTINATIONS={}, TASK_BACKEND="missing")
    out = io.StringIO()
    call_command("publish_hooks", "prune", verbosity=0, stdout=out)
    assert out.getvalue() == ""


# -- Checks: the lease against each destination's longest send ---------------------------------


def lease_messages() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for message in checks.run_checks(tags=["wagtail_publish_hooks"]):
        if message.id.endswith(("E049", "W017", "W022")):
            found.setdefault(message.id.rsplit(".", 1)[1], []).append(message.msg)
    return found


def test_a_send_as_long_as_the_lease_is_an_error(configure):
    configure(
        DESTINATIONS={
            "slow": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": "https://x.example/", "TIMEOUT": 30}},
            "chat": {"BACKEND": SLACK, "OPTIONS": {"URL": "https://hooks.slack.com/services/x"}},
            "quick": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": "https://x.example/", "TIMEOUT": 5}},
        },
        LEASE_SECONDS=22,
    )
    found = lease_messages()
    assert found["E049"] == [
        "WAGTAIL_PUBLISH_HOOKS['DESTINATIONS']['slow']['OPTIONS']['TIMEOUT']: a send may take "
        "30 s, as long as a claim lasts (LEASE_SECONDS, 22 s): its requests are cut off before "
        "the claim runs out, so slower responses never count, and another worker could send it "
        "at the same time."
    ]
    # Slack's 10 s requests wait their turn too (MIN_INTERVAL, 1 s): 11 s, half the lease.
    assert [text.split(":")[0] for text in found["W017"]] == [
        "WAGTAIL_PUBLISH_HOOKS['DESTINATIONS']['chat']['OPTIONS']['TIMEOUT']"
    ]
    assert "a request may take 11 s" in found["W017"][0]


def test_a_managed_destination_slower_than_the_lease_is_a_warning(configure):
    from wagtail_publish_hooks.models import ManagedDestination

    configure(DESTINATIONS={}, LEASE_SECONDS=20)
    ManagedDestination.objects.create(
        alias="slow", backend=WEBHOOK, options={"URL": "https://x.example/", "TIMEOUT": 25}
    )
    ManagedDestination.objects.create(
        alias="quick", backend=WEBHOOK, options={"URL": "https://x.example/", "TIMEOUT": 5}
    )
    found = lease_messages()
    assert "E049" not in found and "W017" not in found
    assert found["W022"] == [
        "wagtail_publish_hooks.ManagedDestination['slow']['OPTIONS']['TIMEOUT']: a send may take "
        "25 s, as long as a claim lasts (LEASE_SECONDS, 20 s): its requests are cut off before "
        "the claim runs out, so slower responses never count, and another worker could send it "
        "at the same time."
    ]


# -- Confirming a claim in the database only when it could run out --------------------------------


def _statements(function, *args, **kwargs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        result = function(*args, **kwargs)
    return result, len(captured)


def test_a_claim_with_time_left_for_the_send_is_held_without_a_statement(deliveries):
    token, batch = claim_due_deliveries(10, lease_seconds=300)
    lease = Lease(token, 300, claimed_at=time.monotonic())
    # 15 s of send and the record margin fit well within the 300 s claim.
    held, statements = _statements(lease.confirm, batch[1], [batch[0]], send_seconds=15)
    assert (held, statements) == (True, 0)


def test_a_claim_that_could_run_out_during_the_send_is_confirmed_and_extended(deliveries):
    token, batch = claim_due_deliveries(10, lease_seconds=60)
    # Claimed 50 s ago (as this worker measures it): 10 s left, less than a 15 s send needs.
    lease = Lease(token, 60, claimed_at=time.monotonic() - 50)
    before = timezone.now()
    held, statements = _statements(lease.confirm, batch[0], send_seconds=15)
    assert held is True and statements >= 1
    assert Delivery.objects.get(pk=batch[0].pk).lease_expires_at >= before + timedelta(seconds=59)
    assert lease.send_by(batch[0]) > time.monotonic() + 15


def test_a_claim_taken_over_after_it_ran_out_is_not_held(deliveries):
    token, batch = claim_due_deliveries(10, lease_seconds=60)
    lease = Lease(token, 60, claimed_at=time.monotonic() - 61)  # ran out: taken over
    Delivery.objects.filter(pk=batch[0].pk).update(lease_token=uuid.uuid4())
    assert lease.confirm(batch[0], send_seconds=1) is False


def test_a_pending_outcome_whose_claim_is_short_makes_the_confirm_ask(deliveries):
    """The claims of outcomes waiting for their commit count too: one close to its end is
    extended with the delivery's."""
    token, batch = claim_due_deliveries(10, lease_seconds=60)
    # Claimed 50 s ago: the claims run out in 10 s, before a send of 15 s would be recorded.
    lease = Lease(token, 60, claimed_at=time.monotonic() - 50)
    lease.expires[batch[1].pk] = time.monotonic() + 60  # confirmed a moment ago
    held, statements = _statements(lease.confirm, batch[1], [batch[0]], send_seconds=15)
    assert held is True and statements >= 1
    assert lease.expires_at(batch[0]) > time.monotonic() + 50
    # While the batch's claim outlasts the send, nothing is asked, however many are pending.
    fresh = Lease(token, 60, claimed_at=time.monotonic())
    held, statements = _statements(fresh.confirm, batch[-1], batch[:-1], send_seconds=15)
    assert held is True and statements == 0


def test_a_backend_that_cannot_say_how_long_it_sends_is_confirmed_every_time(deliveries):
    token, batch = claim_due_deliveries(10, lease_seconds=300)
    lease = Lease(token, 300, claimed_at=time.monotonic())
    held, statements = _statements(lease.confirm, batch[0], send_seconds=None)
    assert held is True and statements >= 1


def test_a_webhook_promises_its_timeout_and_other_backends_nothing(configure):
    from wagtail_publish_hooks.registry import get_backend

    configure(
        DESTINATIONS={
            "hook": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": "https://x.example/", "TIMEOUT": 7}},
            "team": {"BACKEND": SLACK, "OPTIONS": {"URL": "https://hooks.slack.com/services/x"}},
        }
    )
    assert get_backend("hook").longest_send_seconds() == 7
    assert get_backend("team").longest_send_seconds() is None


def test_a_run_to_a_webhook_confirms_no_claim_with_the_default_lease(configure):
    """With LEASE_SECONDS 300 and a 1.5 s timeout, no delivery's claim is confirmed by an
    UPDATE of its own: the statements do not grow with the deliveries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with Sink() as sink:
        configure(
            DESTINATIONS={
                "a": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url("/a"), "TIMEOUT": 1.5}}
            },
            CONCURRENCY=1,
            TASK_BACKEND="missing",
        )
        seed(10, ["a"], runs=0)
        with CaptureQueriesContext(connection) as captured:
            summary = run_due_deliveries(max_seconds=30, enqueue_successor=False)
        assert summary.delivered == 10 and len(sink.snapshot()) == 10
    prefix = 'UPDATE "wagtail_publish_hooks_delivery" SET "lease_expires_at" = '
    extensions = [
        q["sql"]
        for q in captured
        if q["sql"].startswith(prefix)
        # (SQLite's lock-taking no-op in the outcome recorder sets the column to itself.)
        and not q["sql"][len(prefix) :].startswith('"wagtail_publish_hooks_delivery"')
    ]
    assert extensions == []


# -- The claim: one statement before the first send ------------------------------------------------


def _claim_statements(limit):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        token, batch = claim_due_deliveries(limit, lease_seconds=60)
    transaction_control = ("BEGIN", "BEGIN IMMEDIATE", "COMMIT")
    sql = [q["sql"] for q in captured.captured_queries if q["sql"] not in transaction_control]
    return token, batch, sql


def test_a_claim_picks_and_takes_its_batch_in_one_update(deliveries):
    """The candidates are chosen in a subquery of the UPDATE that takes them (with SKIP LOCKED
    on PostgreSQL): one statement, then one to read the batch."""
    from django.db import connection

    token, batch, sql = _claim_statements(2)
    assert [statement.split()[0] for statement in sql] == ["UPDATE", "SELECT"]
    assert "LIMIT 2" in sql[0]
    if connection.vendor == "postgresql":
        # An array built once: under IN (...) PostgreSQL may run the subquery again per row,
        # each run skipping the rows the previous one locked, and take more than the limit.
        assert "= ANY(ARRAY(SELECT" in sql[0] and "FOR UPDATE SKIP LOCKED" in sql[0]
    assert [d.pk for d in batch] == [deliveries[0].pk, deliveries[1].pk]
    assert Delivery.objects.filter(lease_token=token).count() == 2
    assert Delivery.objects.get(pk=deliveries[2].pk).lease_token is None


def test_a_claim_takes_no_more_than_its_limit_of_many_due(deliveries):
    more = [
        Delivery.objects.create(event=deliveries[0].event, destination=f"e{i}") for i in range(20)
    ]
    for limit in (1, 5):
        token, batch = claim_due_deliveries(limit, lease_seconds=60)
        assert len(batch) == limit
        assert Delivery.objects.filter(lease_token=token).count() == limit
    assert Delivery.objects.filter(lease_token__isnull=True).count() == len(more) + 3 - 6


def test_a_claim_with_nothing_due_is_one_statement(deliveries):
    claim_due_deliveries(10, lease_seconds=60)
    _, batch, sql = _claim_statements(10)
    assert batch == [] and [statement.split()[0] for statement in sql] == ["UPDATE"]
