"""Claiming, sending and recording deliveries: the worker's loop.

A run claims a batch of due deliveries with a lease (so no two workers send one at once), asks
each destination's backend to send, records every attempt, and decides what happens next:
delivered, another attempt later, or failed. Outcomes are committed a few at a time (at most
``FLUSH_SIZE`` of them, none held back longer than ``FLUSH_SECONDS``), so a crash re-sends at
most those few deliveries (with the same ``webhook-id``) and a fast destination does not wait
for one commit per delivery.

The loop enqueues nothing: its :class:`RunSummary` says what must be scheduled next (a
successor, the retries), and the task that ran it
(:func:`wagtail_publish_hooks.tasks.deliver_due_deliveries`) enqueues that. (The operational
events it records announce their deliveries like any other:
:data:`~wagtail_publish_hooks.signals.deliveries_recorded`.)
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import connection, connections, router, transaction
from django.db.models import F
from django.utils import timezone

import wagtail_publish_hooks.operational as operational

from .bulk_insert import can_insert_rows, insert_rows
from .conf import get_settings, is_builtin_alias
from .encoding import storable
from .events import json_safe
from .exceptions import DeliveryError, DestinationGone
from .http.addresses import address_policy
from .http.deadlines import send_deadline
from .http.responses import HttpResult
from .leases import Lease, claim_with_retries, release_deliveries
from .limits import OutOfLimits
from .models import (
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    DestinationState,
)
from .registry import (
    get_backend,
    get_destinations,
    policy_for,
    refresh_destinations,
    retry_policy,
)

logger = logging.getLogger("wagtail_publish_hooks")

T = TypeVar("T")

#: Longest error text kept on a delivery or attempt.
MAX_ERROR_LENGTH = 2000

#: Outcomes committed together at most, and the longest an outcome waits for its commit.
FLUSH_SIZE = 50
FLUSH_SECONDS = 0.25


@dataclass
class RunSummary:
    """What a run did, and what it leaves to schedule."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    #: The seconds at which retries are due (each rounded up).
    retry_times: set[datetime] = field(default_factory=set)
    #: Whether the run stopped for lack of time with deliveries left: a successor is wanted.
    successor: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, status: str, next_attempt_at: datetime) -> None:
        with self.lock:
            if status == DeliveryStatus.DELIVERED:
                self.delivered += 1
            elif status == DeliveryStatus.RETRYING:
                self.retrying += 1
                self.retry_times.add(_ceil_second(next_attempt_at))
            else:
                self.failed += 1

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "retrying": self.retrying, "failed": self.failed}

    @property
    def processed(self) -> int:
        return self.delivered + self.retrying + self.failed


def run_due_deliveries(
    *,
    max_seconds: float | None = None,
    enqueue_successor: bool = True,
) -> RunSummary:
    """Drain due deliveries in batches. Called by the task; also usable inline (nothing is
    enqueued then: :func:`wagtail_publish_hooks.tasks.enqueue_follow_ups` does that with the
    summary). ``enqueue_successor``: whether a run that runs out of time asks for a successor."""
    settings = get_settings()
    summary = RunSummary()
    deadline = time.monotonic() + (
        max_seconds if max_seconds is not None else settings.MAX_RUN_SECONDS
    )
    out_of_time = False
    while not out_of_time:
        # The lease runs from here, before the claim: never later than the database's clock.
        claimed_at = time.monotonic()
        token, batch = claim_with_retries(settings.BATCH_SIZE, settings.LEASE_SECONDS)
        if not batch:
            break
        lease = Lease(token, settings.LEASE_SECONDS, claimed_at=claimed_at)
        states = {
            state.alias: state
            for state in DestinationState.objects.filter(
                alias__in={delivery.destination for delivery in batch}
            )
        }
        # Each destination's deliveries go in order; different destinations go side by side,
        # so that a slow or dead one holds up only its own deliveries.
        groups: dict[str, list[Delivery]] = {}
        for delivery in batch:
            groups.setdefault(delivery.destination, []).append(delivery)
        threads = min(int(settings.CONCURRENCY), len(groups))
        if threads <= 1 or connection.in_atomic_block:
            # (Inside a transaction other threads could not see the claims.)
            results = [
                send_in_order(group, lease, summary, states=states, deadline=deadline)
                for group in groups.values()
            ]
        else:
            with ThreadPoolExecutor(
                max_workers=threads, thread_name_prefix="publish-hooks"
            ) as pool:
                futures = [
                    pool.submit(
                        in_own_connection,
                        send_in_order,
                        group,
                        lease,
                        summary,
                        states=states,
                        deadline=deadline,
                    )
                    for group in groups.values()
                ]
                results = [future.result() for future in futures]
        out_of_time = any(results)
    summary.successor = out_of_time and enqueue_successor
    return summary


def send_in_order(
    deliveries: list[Delivery],
    lease: Lease,
    summary: RunSummary,
    *,
    states: dict[str, DestinationState],
    deadline: float,
) -> bool:
    """Send claimed deliveries one after the other. Returns whether time ran out.

    Before each send the claim is confirmed (:meth:`Lease.confirm`), together with the claims
    of the outcomes still waiting for their commit, and extended when it could run out before
    the send and its record are done: a delivery whose claim was lost (the batch waited
    longer than ``LEASE_SECONDS`` and another worker took it) is left to that worker, unsent
    and unrecorded here.
    """
    recorder = OutcomeRecorder(lease.token, summary)
    send_seconds = longest_send_seconds(deliveries[0].destination) if deliveries else None
    try:
        for index, delivery in enumerate(deliveries):
            if recorder.is_due():
                recorder.flush()
            if time.monotonic() > deadline:
                recorder.flush()
                release_deliveries(deliveries[index:], lease.token)
                return True
            # (Read only when the claims must be confirmed in the database.)
            pending = (outcome.delivery for outcome in recorder.pending)
            if not lease.confirm(delivery, pending, send_seconds=send_seconds):
                logger.info(
                    "Publish hooks: the claim on event %s to %r ran out and was taken over; "
                    "not sent by this run",
                    delivery.event.event_id,
                    delivery.destination,
                )
                continue
            attempt_delivery(
                delivery, lease.token, summary, states=states, recorder=recorder, lease=lease
            )
    finally:
        recorder.flush()
    return False


def longest_send_seconds(alias: str) -> float | None:
    """The longest one send to ``alias`` can take, if its backend can say (else ``None``)."""
    try:
        return get_backend(alias).longest_send_seconds()
    except Exception:
        return None  # not configured (any more): recorded as such by attempt_delivery()


@dataclass
class Outcome:
    """One attempt's result, waiting to be committed with others."""

    delivery: Delivery
    attempt: Attempt
    #: The destination whose health the attempt counts for (``None``: not counted).
    alias: str | None
    success: bool
    at: datetime
    gone_reason: str | None = None


class OutcomeRecorder:
    """Commits the outcomes of a run's attempts in small groups: one transaction, one
    ``INSERT`` of attempts, one ``UPDATE`` per kind of outcome (all "delivered, HTTP 200" at
    once) and one per destination's health. ``delivered_at`` is the time of that commit; each
    attempt keeps its own start and duration."""

    def __init__(self, token: uuid.UUID, summary: RunSummary | None = None) -> None:
        self.token = token
        self.summary = summary
        self.pending: list[Outcome] = []
        self.oldest = 0.0

    def add(self, outcome: Outcome) -> None:
        if not self.pending:
            self.oldest = time.monotonic()
        self.pending.append(outcome)
        if len(self.pending) >= FLUSH_SIZE or outcome.gone_reason is not None:
            self.flush()

    def is_due(self) -> bool:
        return bool(self.pending) and time.monotonic() - self.oldest >= FLUSH_SECONDS

    def flush(self) -> None:
        if not self.pending:
            return
        outcomes, self.pending = self.pending, []
        now = timezone.now()
        with transaction.atomic():
            # Only the holder of a claim records on it: an outcome whose claim was lost (the
            # worker stalled past its lease) belongs to the worker that took it over.
            held = self._still_held([outcome.delivery.pk for outcome in outcomes])
            lost = [outcome for outcome in outcomes if outcome.delivery.pk not in held]
            outcomes = [outcome for outcome in outcomes if outcome.delivery.pk in held]
            kinds: dict[tuple[Any, ...], list[int]] = {}
            for outcome in outcomes:
                delivery = outcome.delivery
                retrying = delivery.status == DeliveryStatus.RETRYING
                key = (
                    delivery.status,
                    delivery.next_attempt_at if retrying else None,
                    delivery.last_status_code,
                    delivery.last_error,
                )
                kinds.setdefault(key, []).append(delivery.pk)
            insert_attempts([outcome.attempt for outcome in outcomes])
            for (status, next_attempt_at, status_code, error_text), pks in kinds.items():
                changes: dict[str, Any] = {}
                if next_attempt_at is not None:
                    changes["next_attempt_at"] = next_attempt_at
                Delivery.objects.filter(pk__in=pks, lease_token=self.token).update(
                    status=status,
                    attempts=F("attempts") + 1,
                    lease_token=None,
                    lease_expires_at=None,
                    last_status_code=status_code,
                    last_error=error_text,
                    delivered_at=now if status == DeliveryStatus.DELIVERED else None,
                    updated_at=now,
                    **changes,
                )
            by_alias: dict[str, list[Outcome]] = {}
            for outcome in outcomes:
                if outcome.alias is not None:
                    by_alias.setdefault(outcome.alias, []).append(outcome)
            for alias, results in by_alias.items():
                operational.count_outcomes(alias, results)
            # Disables (410, sustained failure) and alerts, these emitted once committed.
            operational.outcomes_recorded(outcomes)
        if self.summary is not None:
            for outcome in outcomes:
                self.summary.count(outcome.delivery.status, outcome.delivery.next_attempt_at)
        for outcome in lost:
            logger.warning(
                "Publish hooks: attempt %d of event %s to %r is not recorded: this worker's "
                "claim on it ran out before the outcome was committed; the worker that took "
                "it over sends it again, with the same webhook-id",
                outcome.attempt.number,
                outcome.delivery.event.event_id,
                outcome.delivery.destination,
            )

    def _still_held(self, pks: list[int]) -> set[int]:
        """Which of ``pks`` this run still holds, locked until the end of the transaction so
        that no claim can come between the check and the writes."""
        rows = Delivery.objects.filter(pk__in=pks, lease_token=self.token)
        if connection.features.has_select_for_update:
            return set(rows.select_for_update().values_list("pk", flat=True))
        # SQLite locks the whole database at a transaction's first write: write first, so that
        # the lock is held from here on (and a read is never upgraded to a write, which SQLite
        # may refuse at once).
        rows.update(lease_expires_at=F("lease_expires_at"))
        return set(rows.values_list("pk", flat=True))


#: The fields of an attempt the worker sets (the rest take their defaults).
ATTEMPT_FIELDS = (
    "delivery",
    "number",
    "started_at",
    "duration_ms",
    "outcome",
    "status_code",
    "error",
    "request_headers",
    "response_headers",
    "response_body",
    "detail",
)


def insert_attempts(attempts: list[Attempt]) -> None:
    """Insert ``attempts`` in one statement, without Django preparing every field of every
    instance again (:func:`~wagtail_publish_hooks.bulk_insert.insert_rows`); with
    ``bulk_create`` where that cannot return the new rows' keys."""
    if not attempts:
        return
    using = router.db_for_write(Attempt)
    if not can_insert_rows(using):
        Attempt.objects.using(using).bulk_create(attempts)
        return
    rows = [
        [
            attempt.delivery_id if name == "delivery" else getattr(attempt, name)
            for name in ATTEMPT_FIELDS
        ]
        for attempt in attempts
    ]
    pks = insert_rows(Attempt(), ATTEMPT_FIELDS, rows, using=using)
    for attempt, pk in zip(attempts, pks, strict=True):
        attempt.pk = pk
        attempt._state.adding = False
        attempt._state.db = using


def in_own_connection(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``function`` in a pool thread, closing the database connection it opened."""
    try:
        return function(*args, **kwargs)
    finally:
        connections.close_all()


def attempt_delivery(
    delivery: Delivery,
    token: uuid.UUID,
    summary: RunSummary,
    *,
    states: dict[str, DestinationState],
    recorder: OutcomeRecorder | None = None,
    lease: Lease | None = None,
) -> None:
    """Send one claimed delivery and record what happened (through ``recorder``, which may
    hold the record back a moment to commit it with others; without one, at once).

    With ``lease``, the requests of the send end before the claim could run out.

    ``states`` holds the batch's destination states; it is updated when a destination is
    disabled, so the rest of the batch sees it.
    """
    started_at = timezone.now()
    started = time.monotonic()
    result: HttpResult | None = None
    error: DeliveryError | None = None
    gone = False

    configured = delivery.destination in get_destinations() or is_builtin_alias(
        delivery.destination
    )
    if not configured:
        # Perhaps created in the admin a moment ago, by another process.
        configured = delivery.destination in refresh_destinations()
    state = states.get(delivery.destination)
    if not configured:
        error = DeliveryError(
            f"destination {delivery.destination!r} is not configured", retryable=False
        )
    elif state is not None and state.is_disabled:
        error = DeliveryError(
            f"destination {delivery.destination!r} is disabled: {state.disabled_reason}",
            retryable=False,
        )
    else:
        try:
            # Every request the backend makes is held to its destination's address policy.
            with (
                address_policy(policy_for(delivery.destination)),
                send_deadline(lease.send_by(delivery) if lease is not None else None),
            ):
                result = get_backend(delivery.destination).deliver(delivery)
        except DestinationGone as exc:
            error, gone = exc, True
        except DeliveryError as exc:
            error = exc
        except OutOfLimits as exc:
            # Another attempt would meet the same option: fail now, redeliver once it is fixed.
            error = DeliveryError(f"the destination's options are invalid: {exc}", retryable=False)
        except Exception as exc:
            logger.exception(
                "Publish hooks destination %r raised while sending event %s",
                delivery.destination,
                delivery.event.event_id,
            )
            error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
    duration_ms = int((time.monotonic() - started) * 1000)
    if result is not None and result.duration_ms:
        duration_ms = result.duration_ms

    attempt_number = delivery.attempts + 1
    attempts_in_cycle = attempt_number - delivery.attempts_at_redelivery
    policy = retry_policy(delivery.destination)  # the destination's, else the globals
    now = timezone.now()
    if error is None:
        outcome = AttemptOutcome.SUCCESS
        status = DeliveryStatus.DELIVERED
        next_attempt_at = delivery.next_attempt_at
    elif error.retryable and attempts_in_cycle < policy.max_attempts:
        outcome = AttemptOutcome.RETRY
        status = DeliveryStatus.RETRYING
        delay = policy.delay(attempts_in_cycle)
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        next_attempt_at = now + timedelta(seconds=delay)
    else:
        outcome = AttemptOutcome.FAILURE
        status = DeliveryStatus.FAILED
        next_attempt_at = delivery.next_attempt_at

    # What the destination answered is recorded as every database can store it (a NUL in a
    # body would otherwise fail the commit of every outcome recorded with this one).
    error_text = storable(error.message[:MAX_ERROR_LENGTH]) if error is not None else ""
    status_code = result.status_code if result is not None else getattr(error, "status_code", None)
    source = result if result is not None else error

    attempt = Attempt(
        delivery=delivery,
        number=attempt_number,
        started_at=started_at,
        duration_ms=duration_ms,
        outcome=outcome,
        status_code=status_code,
        error=error_text,
        request_headers=storable(getattr(source, "request_headers", {}) or {}),
        response_headers=storable(getattr(source, "response_headers", {}) or {}),
        response_body=storable(getattr(source, "response_body", "") or ""),
        detail=storable(
            _recordable_detail(
                result.extra if result is not None else getattr(error, "detail", None)
            )
        ),
    )
    delivery.status = status
    delivery.attempts = attempt_number
    delivery.next_attempt_at = next_attempt_at
    delivery.lease_token = None
    delivery.lease_expires_at = None
    delivery.last_status_code = status_code
    delivery.last_error = error_text
    delivery.delivered_at = now if status == DeliveryStatus.DELIVERED else None
    delivery.updated_at = now
    record = Outcome(
        delivery=delivery,
        attempt=attempt,
        alias=(
            delivery.destination
            if configured and (state is None or not state.is_disabled)
            else None
        ),
        success=error is None,
        at=now,
        gone_reason=error_text if gone else None,
    )
    if recorder is None:
        recorder = OutcomeRecorder(token, summary)
        recorder.add(record)
        recorder.flush()
    else:
        recorder.add(record)
    if gone:
        states[delivery.destination] = DestinationState(
            alias=delivery.destination, disabled_at=now, disabled_reason=error_text
        )

    logger.info(
        "Publish hooks: event %s to %r: attempt %d %s%s",
        delivery.event.event_id,
        delivery.destination,
        attempt_number,
        outcome,
        f" ({error_text})" if error_text else "",
    )


def _recordable_detail(detail: Any) -> dict[str, Any]:
    """A backend's report on an attempt, as JSON; a report JSON cannot hold is noted, not lost."""
    if not detail:
        return {}
    try:
        value = json_safe(detail)
    except (TypeError, ValueError):
        return {"error": "the backend reported a detail that is not JSON-serialisable"}
    return value if isinstance(value, dict) else {"value": value}


def _ceil_second(value: datetime) -> datetime:
    whole = value.replace(microsecond=0)
    return whole if whole == value else whole + timedelta(seconds=1)
