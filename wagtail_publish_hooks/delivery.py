"""Claiming, sending and recording deliveries: the worker side of the pipeline.

A run claims a batch of due deliveries with a lease (so no two workers send one at once), asks
each destination's backend to send, records every attempt, and decides what happens next:
delivered, another attempt later, or failed. Outcomes are committed a few at a time (at most
``FLUSH_SIZE`` of them, none held back longer than ``FLUSH_SECONDS``), so a crash re-sends at
most those few deliveries (with the same ``webhook-id``) and a fast destination does not wait
for one commit per delivery.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import OperationalError, connection, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import operational
from .conf import (
    RECEIVER_PREFIX,
    get_backend,
    get_destinations,
    get_settings,
    refresh_destinations,
)
from .events import json_safe
from .exceptions import DeliveryError, DestinationGone
from .http import HttpResult, address_policy, policy_for
from .limits import OutOfLimits
from .models import (
    DUE_STATUSES,
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    DestinationState,
)

logger = logging.getLogger("wagtail_publish_hooks")

T = TypeVar("T")

#: Longest error text kept on a delivery or attempt.
MAX_ERROR_LENGTH = 2000

#: How many times a run tries to claim when SQLite reports the database locked.
CLAIM_TRIES = 5

#: Outcomes committed together at most, and the longest an outcome waits for its commit.
FLUSH_SIZE = 25
FLUSH_SECONDS = 0.25


@dataclass
class RunSummary:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    retry_times: set[datetime] = field(default_factory=set)
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


def claim_due_deliveries(limit: int, *, lease_seconds: int) -> tuple[uuid.UUID, list[Delivery]]:
    """Atomically take up to ``limit`` due deliveries for this worker.

    The conditional ``UPDATE`` re-checks due-ness row by row, so two workers that picked the
    same candidates cannot both win them; on databases with ``SKIP LOCKED`` they do not even
    pick the same candidates.
    """
    now = timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        candidates = Delivery.objects.due(now).order_by("next_attempt_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        ids = list(candidates.values_list("pk", flat=True)[:limit])
        if not ids:
            return token, []
        Delivery.objects.due(now).filter(pk__in=ids).update(
            status=DeliveryStatus.SENDING,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
    claimed = list(
        Delivery.objects.filter(lease_token=token)
        .select_related("event")
        .order_by("next_attempt_at", "pk")
    )
    return token, claimed


def claim_with_retries(limit: int, lease_seconds: int) -> tuple[uuid.UUID, list[Delivery]]:
    """Claim, trying again a few times if SQLite reports the database locked.

    SQLite cannot turn a read transaction into a write one while another connection has
    written since it began: it fails at once instead of waiting. With several workers on one
    SQLite file, a claim (a read, then a write) can meet that; another try a moment later
    succeeds. (``"transaction_mode": "IMMEDIATE"`` in the database's ``OPTIONS`` avoids it.)
    """
    for attempt in range(CLAIM_TRIES):
        try:
            return claim_due_deliveries(limit, lease_seconds=lease_seconds)
        except OperationalError:
            if (
                connection.vendor != "sqlite"
                or connection.in_atomic_block
                or attempt == CLAIM_TRIES - 1
            ):
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def run_due_deliveries(
    *,
    max_seconds: float | None = None,
    enqueue_successor: bool = True,
) -> RunSummary:
    """Drain due deliveries in batches. Called by the task; also usable inline."""
    from .tasks import enqueue_delivery_run

    settings = get_settings()
    summary = RunSummary()
    deadline = time.monotonic() + (
        max_seconds if max_seconds is not None else settings.MAX_RUN_SECONDS
    )
    out_of_time = False
    while not out_of_time:
        token, batch = claim_with_retries(settings.BATCH_SIZE, settings.LEASE_SECONDS)
        if not batch:
            break
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
                send_in_order(group, token, summary, states=states, deadline=deadline)
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
                        token,
                        summary,
                        states=states,
                        deadline=deadline,
                    )
                    for group in groups.values()
                ]
                results = [future.result() for future in futures]
        out_of_time = any(results)
    if out_of_time and enqueue_successor:
        enqueue_delivery_run()
    # One deferred run per distinct retry second; the run finds whatever is due by then.
    # Retries already due were taken by this run's own loop.
    now = timezone.now()
    for when in sorted(summary.retry_times):
        if when > now:
            enqueue_delivery_run(run_after=when)
    return summary


def send_in_order(
    deliveries: list[Delivery],
    token: uuid.UUID,
    summary: RunSummary,
    *,
    states: dict[str, DestinationState],
    deadline: float,
) -> bool:
    """Send claimed deliveries one after the other. Returns whether time ran out."""
    lease = Lease(token, get_settings().LEASE_SECONDS)
    recorder = OutcomeRecorder(token)
    try:
        for index, delivery in enumerate(deliveries):
            if recorder.is_due():
                recorder.flush()
            if time.monotonic() > deadline:
                recorder.flush()
                release_deliveries(deliveries[index:], token)
                return True
            if not lease.hold(delivery, deliveries[index:]):
                continue  # the lease ran out and another worker took this delivery over
            attempt_delivery(delivery, token, summary, states=states, recorder=recorder)
    finally:
        recorder.flush()
    return False


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

    def __init__(self, token: uuid.UUID) -> None:
        self.token = token
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
        now = timezone.now()
        with transaction.atomic():
            Attempt.objects.bulk_create([outcome.attempt for outcome in outcomes])
            for (status, next_attempt_at, status_code, error_text), pks in kinds.items():
                changes: dict[str, Any] = {}
                if next_attempt_at is not None:
                    changes["next_attempt_at"] = next_attempt_at
                # Only rows this run still holds: one whose lease was lost belongs to another.
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
                _update_destination_state(alias, results)
            # Disables (410, sustained failure) and alerts, these emitted once committed.
            operational.outcomes_recorded(outcomes)


def in_own_connection(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``function`` in a pool thread, closing the database connection it opened."""
    try:
        return function(*args, **kwargs)
    finally:
        connections.close_all()


class Lease:
    """A run's claim on its batch, renewed before it runs short.

    A batch of slow destinations can outlast ``LEASE_SECONDS``; renewing the remaining
    claims when less than half the lease is left keeps other workers off them, and a delivery
    whose claim was lost anyway (the worker stalled) is skipped rather than sent twice.
    """

    def __init__(self, token: uuid.UUID, seconds: int) -> None:
        self.token = token
        self.seconds = seconds
        self.renew_at = time.monotonic() + seconds / 2
        self.lost: set[int] = set()

    def hold(self, delivery: Delivery, remaining: list[Delivery]) -> bool:
        if time.monotonic() >= self.renew_at:
            ids = [item.pk for item in remaining]
            expires = timezone.now() + timedelta(seconds=self.seconds)
            Delivery.objects.filter(pk__in=ids, lease_token=self.token).update(
                lease_expires_at=expires
            )
            held = set(
                Delivery.objects.filter(pk__in=ids, lease_token=self.token).values_list(
                    "pk", flat=True
                )
            )
            self.lost.update(set(ids) - held)
            self.renew_at = time.monotonic() + self.seconds / 2
        return delivery.pk not in self.lost


def release_deliveries(deliveries: Iterable[Delivery], token: uuid.UUID) -> None:
    """Give claimed but unsent deliveries back, for the next run."""
    ids = [delivery.pk for delivery in deliveries]
    Delivery.objects.filter(pk__in=ids, lease_token=token).update(
        status=DeliveryStatus.PENDING,
        lease_token=None,
        lease_expires_at=None,
    )


def attempt_delivery(
    delivery: Delivery,
    token: uuid.UUID,
    summary: RunSummary,
    *,
    states: dict[str, DestinationState],
    recorder: OutcomeRecorder | None = None,
) -> None:
    """Send one claimed delivery and record what happened (through ``recorder``, which may
    hold the record back a moment to commit it with others; without one, at once).

    ``states`` holds the batch's destination states; it is updated when a destination is
    disabled, so the rest of the batch sees it.
    """
    settings = get_settings()
    started_at = timezone.now()
    started = time.monotonic()
    result: HttpResult | None = None
    error: DeliveryError | None = None
    gone = False

    configured = delivery.destination in get_destinations() or delivery.destination.startswith(
        RECEIVER_PREFIX
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
            with address_policy(policy_for(delivery.destination)):
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
    policy = settings.retry_policy(delivery.destination)  # the destination's, else the globals
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

    error_text = error.message[:MAX_ERROR_LENGTH] if error is not None else ""
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
        request_headers=getattr(source, "request_headers", {}) or {},
        response_headers=getattr(source, "response_headers", {}) or {},
        response_body=getattr(source, "response_body", "") or "",
        detail=_recordable_detail(
            result.extra if result is not None else getattr(error, "detail", None)
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
        recorder = OutcomeRecorder(token)
        recorder.add(record)
        recorder.flush()
    else:
        recorder.add(record)
    if gone:
        states[delivery.destination] = DestinationState(
            alias=delivery.destination, disabled_at=now, disabled_reason=error_text
        )

    summary.count(status, next_attempt_at)
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


def _update_destination_state(alias: str, outcomes: list[Outcome]) -> None:
    """Count a destination's attempts, in the order made, in its health: one ``UPDATE``."""
    successes = [index for index, outcome in enumerate(outcomes) if outcome.success]
    failures = [outcome.at for outcome in outcomes if not outcome.success]
    trailing = len(outcomes) - 1 - successes[-1] if successes else len(outcomes)
    changes: dict[str, Any] = {}
    if successes:
        changes["last_success_at"] = outcomes[successes[-1]].at
        changes["consecutive_failures"] = trailing
    else:
        changes["consecutive_failures"] = F("consecutive_failures") + trailing
    if failures:
        changes["last_failure_at"] = max(failures)
    changes["failing_since"] = operational.failing_since(outcomes)
    if not DestinationState.objects.filter(alias=alias).update(**changes):
        create = {**changes, "consecutive_failures": trailing}
        create["failing_since"] = operational.failing_since(outcomes, new=True)
        DestinationState.objects.get_or_create(alias=alias, defaults=create)


def _ceil_second(value: datetime) -> datetime:
    whole = value.replace(microsecond=0)
    return whole if whole == value else whole + timedelta(seconds=1)


def redeliver(deliveries) -> int:
    """Queue deliveries to be sent again, each with a fresh retry cycle. Returns the count."""
    now = timezone.now()
    count = deliveries.exclude(status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        attempts_at_redelivery=F("attempts"),
        lease_token=None,
        lease_expires_at=None,
        updated_at=now,
    )
    if count:
        from .outbox import schedule_dispatch

        schedule_dispatch()
    return count


def cancel_deliveries(deliveries) -> int:
    """Withdraw deliveries that are waiting to be sent. Returns the count.

    Only pending and retrying ones are cancelled, and one being sent only if its worker's lease
    has run out: the conditional ``UPDATE`` re-checks this row by row, so a delivery a worker
    holds is never withdrawn under it (it finishes, and its outcome stands).
    """
    now = timezone.now()
    lease_free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)
    cancellable = (Q(status__in=DUE_STATUSES) & lease_free) | Q(
        status=DeliveryStatus.SENDING, lease_expires_at__lte=now
    )
    return deliveries.filter(cancellable).update(
        status=DeliveryStatus.CANCELLED,
        lease_token=None,
        lease_expires_at=None,
        updated_at=now,
    )


def release_expired_leases() -> int:
    """Put deliveries whose worker died mid-send back in line. Returns the count."""
    now = timezone.now()
    expired = Delivery.objects.filter(status=DeliveryStatus.SENDING, lease_expires_at__lte=now)
    return expired.update(
        status=DeliveryStatus.RETRYING, lease_token=None, lease_expires_at=None, updated_at=now
    )


def seconds_until(value: datetime) -> int:
    return max(0, math.ceil((value - timezone.now()).total_seconds()))
