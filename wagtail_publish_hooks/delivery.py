"""Claiming, sending and recording deliveries: the worker side of the pipeline.

A run claims a batch of due deliveries with a lease (so no two workers send one at once), asks
each destination's backend to send, records every attempt, and decides what happens next:
delivered, another attempt later, or failed. Each delivery's outcome is committed as soon as it
is known, so a crash re-sends at most the delivery in flight (with the same ``webhook-id``).
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

from django.db import connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from .conf import RECEIVER_PREFIX, get_backend, get_destinations, get_settings
from .events import json_safe
from .exceptions import DeliveryError, DestinationGone
from .http import HttpResult
from .models import (
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
        token, batch = claim_due_deliveries(
            settings.BATCH_SIZE, lease_seconds=settings.LEASE_SECONDS
        )
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
    for index, delivery in enumerate(deliveries):
        if time.monotonic() > deadline:
            release_deliveries(deliveries[index:], token)
            return True
        if not lease.hold(delivery, deliveries[index:]):
            continue  # the lease ran out and another worker took this delivery over
        attempt_delivery(delivery, token, summary, states=states)
    return False


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
) -> None:
    """Send one claimed delivery and record what happened.

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
            result = get_backend(delivery.destination).deliver(delivery)
        except DestinationGone as exc:
            error, gone = exc, True
        except DeliveryError as exc:
            error = exc
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
    now = timezone.now()
    if error is None:
        outcome = AttemptOutcome.SUCCESS
        status = DeliveryStatus.DELIVERED
        next_attempt_at = delivery.next_attempt_at
    elif error.retryable and attempts_in_cycle < settings.MAX_ATTEMPTS:
        outcome = AttemptOutcome.RETRY
        status = DeliveryStatus.RETRYING
        delay = settings.retry_delay(attempts_in_cycle)
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

    with transaction.atomic():
        Attempt.objects.create(
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
        Delivery.objects.filter(pk=delivery.pk, lease_token=token).update(
            status=status,
            attempts=F("attempts") + 1,
            next_attempt_at=next_attempt_at,
            lease_token=None,
            lease_expires_at=None,
            last_status_code=status_code,
            last_error=error_text,
            delivered_at=now if status == DeliveryStatus.DELIVERED else None,
            updated_at=now,
        )
        if configured and (state is None or not state.is_disabled):
            _update_destination_state(
                delivery.destination,
                success=error is None,
                now=now,
                gone_reason=error_text if gone else None,
            )
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


def _update_destination_state(
    alias: str, *, success: bool, now: datetime, gone_reason: str | None
) -> None:
    if success:
        changes = {"last_success_at": now, "consecutive_failures": 0}
    else:
        changes = {"last_failure_at": now, "consecutive_failures": F("consecutive_failures") + 1}
    if gone_reason is not None:
        changes.update(disabled_at=now, disabled_reason=gone_reason)
    if not DestinationState.objects.filter(alias=alias).update(**changes):
        create = {
            k: (1 if k == "consecutive_failures" and not success else v) for k, v in changes.items()
        }
        DestinationState.objects.get_or_create(alias=alias, defaults=create)
    if gone_reason is not None:
        logger.warning("Publish hooks destination %r is disabled: %s", alias, gone_reason)


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


def release_expired_leases() -> int:
    """Put deliveries whose worker died mid-send back in line. Returns the count."""
    now = timezone.now()
    expired = Delivery.objects.filter(status=DeliveryStatus.SENDING, lease_expires_at__lte=now)
    return expired.update(
        status=DeliveryStatus.RETRYING, lease_token=None, lease_expires_at=None, updated_at=now
    )


def seconds_until(value: datetime) -> int:
    return max(0, math.ceil((value - timezone.now()).total_seconds()))
