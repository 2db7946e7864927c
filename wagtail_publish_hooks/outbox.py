"""Recording events and their deliveries in the caller's transaction (the transactional outbox).

The outbox writes rows and enqueues nothing: inside the transaction that wrote deliveries it
sends :data:`~wagtail_publish_hooks.signals.deliveries_recorded` with when they are due, and
:mod:`wagtail_publish_hooks.tasks` enqueues their run (in that same transaction where the task
backend stores tasks in the same database).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from .bulk_insert import can_insert_rows, insert_rows
from .capture_failures import capture_failed_data, write_capture_failure
from .conf import capture_enabled
from .events import CAPTURE_FAILED, build_body, new_event_id
from .includes import CAPTURED, build_included_data
from .models import (
    Attempt,
    AttemptOutcome,
    CaptureFailure,
    Delivery,
    DeliveryStatus,
    DestinationState,
    Event,
)
from .receivers import call_after_commit
from .routing import (
    Route,
    RoutePlan,
    capture_for_destinations,
    failure_text,
    in_process_receivers_for,
    operational_routes,
    plan_routes,
    route_to,
    routes_for,
    subject_of,
)
from .signals import deliveries_recorded

logger = logging.getLogger("wagtail_publish_hooks")


#: Set while a capture failure is being recorded: a failure then is logged, never recorded
#: again (no recursion through ``publish_hooks.capture_failed``).
_recording_failure: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "publish_hooks_recording_capture_failure", default=False
)


def capture_savepoint(using: str | None) -> contextlib.AbstractContextManager[Any]:
    """A savepoint inside a transaction, so that a failing query of capture (a statement or
    lock timeout, say) leaves the caller's transaction usable; nothing outside one, where a
    failed query aborts nothing (the writes open their own transaction)."""
    if transaction.get_connection(using).in_atomic_block:
        return transaction.atomic(using=using)
    return contextlib.nullcontext()


def record_event(
    event_type: str,
    *,
    data: dict[str, Any] | Callable[[], dict[str, Any]],
    instance: models.Model | None = None,
    actor: Any = None,
    destinations: Iterable[str] | None = None,
    is_alias: bool = False,
    reconciled: bool = False,
) -> Event | None:
    """Write an event and one delivery per destination, and dispatch them after commit.

    ``data`` may be a callable, called only once routing found a destination. ``destinations``
    bypasses routing (used to send a test event to one alias). ``is_alias`` marks an event about
    an alias page re-published or unpublished with its original: destinations and receivers
    that exclude aliases (``EXCLUDE_ALIASES``) do not receive it. ``reconciled`` marks an event
    that ``publish_hooks reconcile`` found missing (``"reconciled": true`` in the body). Extra
    documents that a routed destination asked for (``INCLUDE``) are built here and stored with
    the event.
    ``durable=False`` receivers that match are called after commit. Returns ``None`` when
    capture is disabled or no destination records it. The queries issued do not depend
    on the number of destinations.

    Never raises: all of its database work (routing, payload, included documents, the
    writes) runs in a savepoint, and a failure is recorded as a :class:`CaptureFailure`
    (:func:`record_capture_failure`) and returns ``None``.
    """
    if not capture_enabled():
        return None
    try:
        return capture_event(
            event_type,
            data=data,
            instance=instance,
            actor=actor,
            destinations=destinations,
            is_alias=is_alias,
            reconciled=reconciled,
        )
    except Exception as exc:
        record_capture_failure(event_type, instance, exc)
        return None


def capture_event(
    event_type: str,
    *,
    data: dict[str, Any] | Callable[[], dict[str, Any]],
    instance: models.Model | None = None,
    actor: Any = None,
    destinations: Iterable[str] | None = None,
    is_alias: bool = False,
    reconciled: bool = False,
) -> Event | None:
    """:func:`record_event`, raising what fails (after rolling its savepoint back)."""
    if not capture_enabled():
        return None
    using = router.db_for_write(Event)
    with capture_savepoint(using):
        return _capture(
            event_type,
            data=data,
            instance=instance,
            actor=actor,
            destinations=destinations,
            is_alias=is_alias,
            reconciled=reconciled,
            using=using,
        )


def _capture(
    event_type: str,
    *,
    data: dict[str, Any] | Callable[[], dict[str, Any]],
    instance: models.Model | None,
    actor: Any,
    destinations: Iterable[str] | None,
    is_alias: bool,
    reconciled: bool,
    using: str,
) -> Event | None:
    model = type(instance) if instance is not None else None
    # The filters call ``data`` (once) only if one needs it (CHANGED reads what changed).
    subject = subject_of(event_type, instance, data)
    if destinations is not None:
        routes = route_to(destinations)
        in_process = []
    else:
        routes = routes_for(event_type, model, is_alias=is_alias, subject=subject)
        in_process = in_process_receivers_for(event_type, model, is_alias=is_alias, subject=subject)
    if not routes and not in_process:
        return None

    payload_data: dict[str, Any] = subject.data
    event_id = new_event_id()
    now = timezone.now()
    wanted = {name for route in routes for name in route.include}
    wanted.update(name for receiver in in_process for name in receiver.include)
    included_data = (
        build_included_data(
            wanted,
            instance,
            using=using,
            on_failure=functools.partial(record_capture_failure, event_type, instance),
        )
        if wanted
        else {}
    )
    # A destination that cannot be recorded (its backend cannot be built, its merging window
    # is unusable) is set aside here, so that it costs the others nothing.
    plan = plan_routes(routes, now, coalesce=destinations is None)
    captured = capture_for_destinations(
        [route.alias for route in routes if route.alias not in plan.refused],
        event_type,
        instance,
        using=using,
        on_failure=functools.partial(record_capture_failure, event_type, instance),
    )
    if captured:
        included_data = {**included_data, CAPTURED: captured}
    payload = build_body(event_id=event_id, event_type=event_type, timestamp=now, data=payload_data)
    if reconciled:
        payload["reconciled"] = True

    if in_process:
        call_after_commit(
            in_process,
            event_id=event_id,
            event_type=event_type,
            timestamp=now,
            payload=payload,
            included_data=included_data,
            instance=instance,
            using=using,
        )
    if not routes:
        return None

    event = Event(
        event_id=event_id,
        event_type=event_type,
        created_at=now,
        payload=payload,
        included_data=included_data,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )
    if instance is not None:
        event.content_type = ContentType.objects.get_for_model(instance, for_concrete_model=False)
        event.object_id = str(instance.pk)
        event.object_repr = str(instance)[:255]
    # A savepoint, so that a failure here leaves the caller's transaction usable.
    try:
        with transaction.atomic(using=using):
            write_deliveries(event, routes, plan, now, using=using)
    except Exception:
        # Something failed that planning could not foresee (a database error, say): write
        # again with each destination in a savepoint of its own, so that only the one that
        # fails is lost, and recorded as failed.
        logger.exception(
            "Publish hooks could not record event %s at once; recording each destination alone",
            event_id,
        )
        event.pk = None
        event._state.adding = True
        with transaction.atomic(using=using):
            write_deliveries(event, routes, plan, now, using=using, isolated=True)
    if plan.refused:
        record_refused_routes(event, routes, plan.refused, now, using=using)
    return event


def record_capture_failure(
    event_type: str,
    instance: models.Model | None,
    exc: BaseException,
    destination: str = "",
) -> CaptureFailure | None:
    """Keep what is known of a capture that failed, and report it.

    A :class:`CaptureFailure` row (in a savepoint of its own) and a
    ``publish_hooks.capture_failed`` event (through :func:`record_event`, in its own savepoint).
    ``destination``: the event was recorded, but that destination's own capture failed. Never
    raises; a failure while recording a failure is logged, never recorded again.
    """
    if destination:
        logger.error(
            "Publish hooks destination %r could not capture data for %s (%s %s): %s; its "
            "delivery is sent with what the event holds",
            destination,
            event_type,
            type(instance).__name__ if instance is not None else "no object",
            getattr(instance, "pk", ""),
            type(exc).__name__,
        )
    else:
        logger.error(
            "Publish hooks could not record %s for %s %s",
            event_type,
            type(instance).__name__ if instance is not None else "no object",
            getattr(instance, "pk", ""),
            exc_info=exc,
        )
    nested = _recording_failure.get()
    token = _recording_failure.set(True)
    try:
        failure = write_capture_failure(event_type, instance, exc, destination)
        if failure is not None and not nested and event_type != CAPTURE_FAILED:
            # A failure of one destination's own capture is never reported to that destination.
            about = failure.destination or ""
            record_event(
                CAPTURE_FAILED,
                data=capture_failed_data(failure),
                destinations=(
                    [route.alias for route in operational_routes(CAPTURE_FAILED, about)]
                    if about
                    else None
                ),
            )
        return failure
    except Exception:
        logger.exception("Publish hooks could not record the capture failure of %s", event_type)
        return None
    finally:
        _recording_failure.reset(token)


def write_deliveries(
    event: Event,
    routes: list[Route],
    plan: RoutePlan,
    now: datetime,
    *,
    using: str,
    isolated: bool = False,
) -> None:
    """Insert the event and a delivery per destination not refused, and announce them
    (:data:`~wagtail_publish_hooks.signals.deliveries_recorded`).

    ``isolated``: each destination is written in a savepoint of its own, and one that fails is
    added to ``plan.refused`` instead (costs a few queries per destination: only used once the
    one-statement way has failed).
    """
    event.save(force_insert=True, using=using)
    # (alias, due, include) of each new delivery, and the pk of each one written.
    new_rows: list[tuple[str, datetime, list[str]]] = []
    pks: list[int] = []
    merged_into = []
    through = Delivery.coalesced_events.through
    for route in routes:
        alias = route.alias
        if alias in plan.refused:
            continue
        try:
            with transaction.atomic(using=using) if isolated else contextlib.nullcontext():
                if alias in plan.windows:
                    open_delivery = attach_to_open_delivery(alias, now, using=using)
                    if open_delivery is not None:
                        if isolated:
                            through.objects.using(using).create(
                                delivery_id=open_delivery, event_id=event.pk
                            )
                        else:
                            merged_into.append(open_delivery)
                        continue
                row = (
                    alias,
                    plan.due[alias],
                    [name for name in route.include if name in event.included_data]
                    if route.include
                    else [],
                )
                if isolated:
                    pks.append(insert_deliveries(event, [row], now, using=using)[0])
                new_rows.append(row)
        except Exception as exc:
            if not isolated:
                raise
            plan.refused[alias] = failure_text(exc, "its delivery could not be written ({})")
            logger.exception("Publish hooks could not record a delivery to %r", alias)
    if not isolated:
        pks = insert_deliveries(event, new_rows, now, using=using)
    for (alias, _due, _include), pk in zip(new_rows, pks, strict=True):
        if alias in plan.windows and pk is not None:
            transaction.on_commit(functools.partial(delivery_opened, alias, pk), using=using)
    if merged_into:
        through.objects.using(using).bulk_create(
            through(delivery_id=pk, event_id=event.pk) for pk in merged_into
        )
    if new_rows:
        deliveries_recorded.send(
            sender=Delivery,
            using=using,
            due_now=any(due <= now for _alias, due, _include in new_rows),
            due_later=sorted({due for _alias, due, _include in new_rows if due > now}),
        )


def insert_deliveries(
    event: Event, rows: list[tuple[str, datetime, list[str]]], now: datetime, *, using: str
) -> list[int]:
    """Insert a pending delivery of ``event`` per ``(alias, due, include)``; their pks.

    One statement however many rows (:func:`~wagtail_publish_hooks.bulk_insert.insert_rows`:
    no model instance per row), or Django's ``bulk_create`` where that cannot return the pks.
    """
    if not rows:
        return []
    if can_insert_rows(using):
        template = Delivery(event=event, destination="", next_attempt_at=now, created_at=now)
        return insert_rows(
            template, ("destination", "next_attempt_at", "include"), rows, using=using
        )
    deliveries = [
        Delivery(
            event=event, destination=alias, next_attempt_at=due, created_at=now, include=include
        )
        for alias, due, include in rows
    ]
    Delivery.objects.using(using).bulk_create(deliveries)
    return [delivery.pk for delivery in deliveries]


#: What a delivery that could not be recorded says, in the admin and ``publish_hooks status``.
NOT_RECORDED = "could not be recorded: {reason}. Fix the destination, then redeliver."


def record_refused_routes(
    event: Event, routes: list[Route], refused: dict[str, str], now: datetime, *, using: str
) -> None:
    """Record a failed delivery, with its one failed attempt, for each destination that could
    not be recorded, and count the failure in its health: visible in the deliveries report,
    the destination's health and ``publish_hooks status``, and redeliverable once fixed.

    Each in a savepoint of its own; a failure here is logged and costs nobody else anything.
    """
    includes = {route.alias: route.include for route in routes}
    for alias, reason in refused.items():
        text = NOT_RECORDED.format(reason=reason)[:2000]
        try:
            with transaction.atomic(using=using):
                delivery = Delivery.objects.using(using).create(
                    event=event,
                    destination=alias,
                    status=DeliveryStatus.FAILED,
                    attempts=1,
                    next_attempt_at=now,
                    created_at=now,
                    last_error=text,
                    include=[
                        name for name in includes.get(alias, ()) if name in event.included_data
                    ],
                )
                Attempt.objects.using(using).create(
                    delivery=delivery,
                    number=1,
                    started_at=now,
                    outcome=AttemptOutcome.FAILURE,
                    error=text,
                    detail={"stage": "record", "reason": reason},
                )
                states = DestinationState.objects.using(using)
                if not states.filter(alias=alias).update(
                    last_failure_at=now, consecutive_failures=F("consecutive_failures") + 1
                ):
                    states.get_or_create(
                        alias=alias,
                        defaults={"last_failure_at": now, "consecutive_failures": 1},
                    )
        except Exception:
            logger.exception(
                "Publish hooks could not record the failure of event %s for %r",
                event.event_id,
                alias,
            )


def attach_to_open_delivery(alias: str, now: datetime, *, using: str) -> int | None:
    """The pk of the delivery to ``alias`` still waiting out its window, now holding this event.

    The conditional ``UPDATE`` locks the row (on SQLite, the database) until the transaction
    ends, and a worker only claims a delivery once its window has passed, under the same
    condition re-checked: so an event is either merged before the claim or starts a delivery of
    its own, never merged into one already being sent.
    """
    # A delivery this transaction opened is invisible to workers until commit, so it stays
    # open however long the transaction runs (a bulk publish longer than the window).
    opened_here = opened_in_this_transaction(alias, using)
    waiting = Delivery.objects.using(using).filter(
        Q(next_attempt_at__gt=now) | Q(pk__in=opened_here),
        destination=alias,
        status=DeliveryStatus.PENDING,
        lease_token__isnull=True,
    )
    pk = waiting.order_by("next_attempt_at", "pk").values_list("pk", flat=True).first()
    if pk is None or not waiting.filter(pk=pk).update(updated_at=now):
        return None
    return pk


def delivery_opened(alias: str, pk: int) -> None:
    """Nothing to do on commit: marks a merging delivery opened in the transaction.

    Django drops the marker with a savepoint that is rolled back, and with the transaction.
    """


def opened_in_this_transaction(alias: str, using: str) -> list[int]:
    return [
        callback.args[1]
        for callback in pending_on_commit(using)
        if isinstance(callback, functools.partial)
        and callback.func is delivery_opened
        and callback.args[0] == alias
    ]


def pending_on_commit(using: str | None) -> list[Callable[[], Any]]:
    """The callbacks registered with ``transaction.on_commit`` in the current transaction of
    ``using`` (none outside one). Read from Django's private ``run_on_commit`` list of
    ``(savepoint ids, callback, robust)``, whose shape a test pins to each supported Django."""
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        return []
    return [entry[1] for entry in connection.run_on_commit]


def record_deliveries(event: Event, windows: dict[str, float], *, using: str | None = None) -> int:
    """Record deliveries of an already recorded ``event`` to ``windows``' aliases (alias:
    merging window in seconds), and announce them; returns how many aliases it was recorded
    for. The fan-out of watching uses it, in the worker.

    An alias with a window merges the event into its open delivery (one that is still waiting
    out its window, not claimed) if it has one, else opens one due at the end of the window.
    An alias that already has this event (a retried fan-out) is left alone. In a fixed number
    of queries, whatever the number of aliases.
    """
    using = using or router.db_for_write(Delivery)
    now = timezone.now()
    through = Delivery.coalesced_events.through
    with transaction.atomic(using=using):
        deliveries = Delivery.objects.using(using)
        done = set(
            deliveries.filter(event=event, destination__in=windows).values_list(
                "destination", flat=True
            )
        )
        done.update(
            through.objects.using(using)
            .filter(event_id=event.pk, delivery__destination__in=windows)
            .values_list("delivery__destination", flat=True)
        )
        merging = [alias for alias, window in windows.items() if window > 0 and alias not in done]
        open_deliveries: dict[str, int] = {}
        if merging:
            waiting = deliveries.filter(
                destination__in=merging,
                status=DeliveryStatus.PENDING,
                lease_token__isnull=True,
                next_attempt_at__gt=now,
            )
            # The conditional UPDATE takes the rows (as attach_to_open_delivery does), so no
            # worker claims them before this transaction ends; then read which it took.
            waiting.update(updated_at=now)
            for pk, alias in (
                waiting.filter(updated_at=now)
                .order_by("next_attempt_at", "pk")
                .values_list("pk", "destination")
            ):
                open_deliveries.setdefault(alias, pk)
        through.objects.using(using).bulk_create(
            through(delivery_id=pk, event_id=event.pk) for pk in open_deliveries.values()
        )
        new_deliveries = [
            Delivery(
                event=event,
                destination=alias,
                next_attempt_at=now + timedelta(seconds=window),
                created_at=now,
            )
            for alias, window in windows.items()
            if alias not in done and alias not in open_deliveries
        ]
        deliveries.bulk_create(new_deliveries, batch_size=500)
        if new_deliveries:
            deliveries_recorded.send(
                sender=Delivery,
                using=using,
                due_now=any(delivery.next_attempt_at <= now for delivery in new_deliveries),
                due_later=sorted(
                    {d.next_attempt_at for d in new_deliveries if d.next_attempt_at > now}
                ),
            )
    return len(open_deliveries) + len(new_deliveries)
