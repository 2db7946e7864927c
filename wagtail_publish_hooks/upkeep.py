"""The package's periodic work: the sweep and the prune.

Both are plain functions (``publish_hooks sweep`` and ``prune`` call them). Where the task
backend can defer tasks, they also run as self-rescheduling tasks (``tasks.run_upkeep``, see
:func:`wagtail_publish_hooks.tasks.ensure_upkeep`), started by the worker's first delivery run,
so that no cron entry is needed. One ``Upkeep`` row per job holds the token of its one pending
run; scheduling is a conditional ``UPDATE`` of that token, so two processes that both find a job
missing start it once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .attempt_counts import keep_settled_hours
from .conf import get_settings
from .models import Delivery, DeliveryStatus, Event, retention_cutoff

#: Seconds between two runs of each job.
INTERVALS = {"sweep": 60, "prune": 24 * 3600}

#: How long past its time a pending run may be before it is taken for lost and started again
#: (only when the task backend cannot say whether it is still queued).
GRACE = {"sweep": 300, "prune": 3600}

#: Seconds between two looks, by one process, at whether the jobs are pending.
ENSURE_EVERY = 60

PRUNE_CHUNK = 1000


@dataclass
class SweepResult:
    released: int
    due: int
    #: Whether a delivery run was enqueued for what is due (by the caller: see
    #: :func:`wagtail_publish_hooks.tasks.run_sweep`).
    enqueued: bool = False

    def __str__(self) -> str:
        return f"{self.released} lease(s) released, {self.due} due" + (
            ", run enqueued" if self.enqueued else ""
        )


def sweep() -> SweepResult:
    """Put deliveries whose worker died back in line, and count those due; keep the counts of
    the attempts of the hours that are over, for the destinations' charts."""
    released = Delivery.objects.release_expired_leases()
    keep_settled_hours()
    return SweepResult(released=released, due=Delivery.objects.due().count())


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


def prune_now() -> str:
    """The prune of ``RETENTION_DAYS``, as the upkeep task runs it; a short text of what it did."""
    days = get_settings().RETENTION_DAYS
    if not isinstance(days, int) or days < 0:
        return "skipped: RETENTION_DAYS is not set"
    return f"{prune(days)} event(s) deleted"
