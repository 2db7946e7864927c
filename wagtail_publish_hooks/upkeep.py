"""The package's periodic work: the sweep and the prune, and keeping them running.

Both are plain functions (``publish_hooks sweep`` and ``prune`` call them). Where the task
backend can defer tasks, they also run as self-rescheduling tasks (``tasks.run_upkeep``), started
by the worker's first delivery run, so that no cron entry is needed. One ``Upkeep`` row per job
holds the token of its one pending run; scheduling is a conditional ``UPDATE`` of that token, so
two processes that both find a job missing start it once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from .models import Delivery, DeliveryStatus, Event, Upkeep, retention_cutoff

logger = logging.getLogger("wagtail_publish_hooks")

#: Seconds between two runs of each job.
INTERVALS = {"sweep": 60, "prune": 24 * 3600}

#: How long past its time a pending run may be before it is taken for lost and started again
#: (only when the task backend cannot say whether it is still queued).
GRACE = {"sweep": 300, "prune": 3600}

#: Seconds between two looks, by one process, at whether the jobs are pending.
ENSURE_EVERY = 60

PRUNE_CHUNK = 1000

_last_ensured = -float("inf")


@dataclass
class SweepResult:
    released: int
    due: int
    enqueued: bool

    def __str__(self) -> str:
        return f"{self.released} lease(s) released, {self.due} due" + (
            ", run enqueued" if self.enqueued else ""
        )


def sweep(*, enqueue: bool = True) -> SweepResult:
    """Put deliveries whose worker died back in line, and enqueue a run if anything is due."""
    from .delivery import release_expired_leases
    from .tasks import enqueue_delivery_run

    released = release_expired_leases()
    due = Delivery.objects.due().count()
    enqueued = bool(due and enqueue and enqueue_delivery_run())
    return SweepResult(released=released, due=due, enqueued=enqueued)


def old_finished_events(days: int):
    """Events older than ``days`` days none of whose deliveries is still to be sent."""
    unfinished = Delivery.objects.exclude(
        status__in=(DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)
    ).values("event_id")
    return Event.objects.filter(created_at__lt=retention_cutoff(days)).exclude(pk__in=unfinished)


def prune(days: int, *, progress: Callable[[int], None] | None = None) -> int:
    """Delete finished events older than ``days`` days, a chunk per transaction. The count."""
    old = old_finished_events(days)
    deleted = 0
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:PRUNE_CHUNK])
        if not ids:
            return deleted
        Event.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
        if progress is not None:
            progress(deleted)


def run_job(name: str) -> str:
    """Run one job once; a short text of what it did."""
    if name == "sweep":
        return str(sweep())
    if name == "prune":
        from .conf import get_settings

        days = get_settings().RETENTION_DAYS
        if not isinstance(days, int) or days < 0:
            return "skipped: RETENTION_DAYS is not set"
        return f"{prune(days)} event(s) deleted"
    raise ValueError(f"unknown upkeep job {name!r}")


def backend_can_defer() -> bool:
    from .tasks import get_task_backend

    try:
        return bool(getattr(get_task_backend(), "supports_defer", False))
    except Exception:
        return False


def ensure_upkeep(*, force: bool = False) -> list[str]:
    """Start each job that has no pending run (at most one look a minute per process, unless
    ``force``). Never raises. Returns the jobs started."""
    global _last_ensured
    if not force and time.monotonic() - _last_ensured < ENSURE_EVERY:
        return []
    _last_ensured = time.monotonic()
    if not backend_can_defer():
        return []
    started = []
    try:
        now = timezone.now()
        for name in INTERVALS:
            row = _row(name)
            if not _is_pending(row, now) and schedule(name, expected=row.token, run_after=None):
                started.append(name)
    except Exception:
        logger.exception("Publish hooks could not check its upkeep tasks")
    return started


def _row(name: str) -> Upkeep:
    try:
        row, _ = Upkeep.objects.get_or_create(name=name)
    except IntegrityError:  # created by another process meanwhile
        row = Upkeep.objects.get(name=name)
    return row


def _is_pending(row: Upkeep, now: datetime) -> bool:
    """Whether the job's pending run can still be expected to run."""
    if row.token is None or row.next_run_at is None:
        return False
    if now <= row.next_run_at + timedelta(seconds=GRACE[row.name]):
        return True
    status = _task_status(row.task_id)
    if status == "READY":
        return True  # still queued: the workers are behind, or stopped
    if status == "RUNNING":
        # Running, unless its worker died with it long ago.
        return now <= row.next_run_at + timedelta(seconds=max(3600, GRACE[row.name]))
    return False


def _task_status(task_id: str) -> str | None:
    """The status the task backend reports for a task, where it can say; else ``None``."""
    from .tasks import get_task_backend

    if not task_id:
        return None
    try:
        backend = get_task_backend()
        if not getattr(backend, "supports_get_result", False):
            return None
        return str(backend.get_result(task_id).status)
    except Exception:
        return None


def schedule(name: str, *, expected: uuid.UUID | None, run_after: datetime | None) -> bool:
    """Make a new run of ``name`` the pending one, if the row still names run ``expected``
    (the conditional ``UPDATE`` lets one process win). Returns whether it was enqueued."""
    from .tasks import enqueue_upkeep

    token = uuid.uuid4()
    claimed = Upkeep.objects.filter(name=name)
    claimed = claimed.filter(token=expected) if expected else claimed.filter(token__isnull=True)
    if not claimed.update(token=token, task_id="", next_run_at=run_after or timezone.now()):
        return False
    task_id = enqueue_upkeep(name, token, run_after)
    if task_id is None:
        # Let the next look start it again.
        Upkeep.objects.filter(name=name, token=token).update(token=None, next_run_at=None)
        return False
    Upkeep.objects.filter(name=name, token=token).update(task_id=task_id[:64])
    return True


def run_scheduled(name: str, token: str) -> dict[str, Any]:
    """What the upkeep task does: run the job if this run is the pending one, then schedule the
    next. A run that is not (a leftover of a lost-and-restarted chain) does nothing."""
    if name not in INTERVALS:
        return {"job": name, "ran": False}
    try:
        current = uuid.UUID(str(token))
    except ValueError:
        return {"job": name, "ran": False}
    if not Upkeep.objects.filter(name=name, token=current).exists():
        return {"job": name, "ran": False}
    try:
        result = run_job(name)
    except Exception as exc:
        logger.exception("Publish hooks upkeep job %r failed", name)
        result = f"failed: {type(exc).__name__}"
    now = timezone.now()
    Upkeep.objects.filter(name=name, token=current).update(
        last_run_at=now, last_result=result[:255]
    )
    schedule(name, expected=current, run_after=now + timedelta(seconds=INTERVALS[name]))
    return {"job": name, "ran": True, "result": result}
