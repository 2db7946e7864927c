"""The background tasks, on Django's tasks framework (``django.tasks``, or the backport), and
everything that enqueues them.

One task run drains due deliveries in batches (:mod:`~wagtail_publish_hooks.worker`); it is
enqueued once per committed transaction that recorded events, by the sweep, and (deferred) for
scheduled retries and merging windows. Where the backend can defer tasks, the sweep and the prune
(:mod:`~wagtail_publish_hooks.upkeep`) run as self-rescheduling tasks too (``run_upkeep``),
started by the worker's first delivery run, so that no cron entry is needed.

The delivery run is enqueued once per transaction. With django-tasks-db on the outbox's own
database, the task row is written in that same transaction, so it commits (or rolls back) with
the deliveries and costs no commit of its own; with any other task backend it is enqueued when
the transaction commits.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, router, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from .conf import get_settings
from .models import Upkeep
from .outbox import pending_on_commit
from .signals import deliveries_recorded
from .upkeep import (
    ENSURE_EVERY,
    GRACE,
    INTERVALS,
    PRUNE_CONTINUE_AFTER,
    PruneResult,
    SweepResult,
    prune_now,
    sweep,
)
from .worker import RunSummary, run_due_deliveries

try:  # Django 6.0+
    from django.tasks import task, task_backends
except ImportError:  # pragma: no cover - depends on the Django version
    from django_tasks import task, task_backends  # type: ignore[no-redef,assignment]

logger = logging.getLogger("wagtail_publish_hooks")

#: The task backends that run a task during ``enqueue()``, in the enqueuing process.
IMMEDIATE_BACKENDS = (
    "django.tasks.backends.immediate.ImmediateBackend",
    "django_tasks.backends.immediate.ImmediateBackend",
)


#: django-tasks-db's backend: tasks are rows in a database.
DATABASE_BACKENDS = ("django_tasks_db.backend.DatabaseBackend",)


def get_task_backend(alias: str | None = None) -> Any:
    return task_backends[alias or get_settings().TASK_BACKEND]


@functools.cache
def _classes(paths: tuple[str, ...]) -> tuple[type, ...]:
    classes = []
    for path in paths:
        try:
            classes.append(import_string(path))
        except ImportError:
            continue  # that tasks package is not installed
    return tuple(classes)


def task_backend_is_immediate(backend: Any) -> bool:
    """Whether ``backend`` runs tasks as they are enqueued (Django's ``ImmediateBackend``)."""
    return isinstance(backend, _classes(IMMEDIATE_BACKENDS))


def _default_backend_alias() -> str:
    # The task object must exist at import (workers import it by path); its backend is set
    # again from settings at every enqueue.
    alias = get_settings().TASK_BACKEND
    return alias if isinstance(alias, str) and alias in task_backends.settings else "default"


@task(backend=_default_backend_alias())
def deliver_due_deliveries() -> dict[str, int]:
    """Send every delivery that is due, in batches, until none is left or time runs out."""
    summary = run_due_deliveries()
    enqueue_follow_ups(summary)
    # The worker keeps the sweep and the prune running, where the backend can defer tasks;
    # after the sends, so that the first request never waits for it (a worker that forks per
    # task, as RQ's does, looks every time).
    ensure_upkeep()
    return summary.as_dict()


@task(backend=_default_backend_alias())
def run_upkeep(name: str, token: str) -> dict[str, Any]:
    """One run of an upkeep job (``sweep`` or ``prune``), which schedules the next one."""
    return run_scheduled(name, token)


# -- Enqueueing delivery runs ----------------------------------------------------------------------


#: The priority of delivery runs on django-tasks-db, whose ``db_worker`` takes the highest
#: first: above Wagtail's own tasks (search and reference index updates, priority 0, four of
#: them enqueued before the delivery run by each publish), so that a delivery does not wait
#: for them. Other backends keep the default: RQ's cannot set one, and Celery's maps it to a
#: number that the Redis broker reads the other way round.
DATABASE_QUEUE_PRIORITY = 50


def _enqueue(run_after: datetime | None = None) -> bool:
    settings = get_settings()
    backend = get_task_backend(settings.TASK_BACKEND)
    options: dict[str, Any] = {"backend": settings.TASK_BACKEND, "queue_name": settings.QUEUE_NAME}
    if run_after is not None and run_after > timezone.now():
        if not getattr(backend, "supports_defer", False):
            return False
        options["run_after"] = run_after
    if isinstance(backend, _classes(DATABASE_BACKENDS)):
        options["priority"] = DATABASE_QUEUE_PRIORITY
    deliver_due_deliveries.using(**options).enqueue()
    return True


def enqueues_in_transaction(using: str) -> bool:
    """Whether the task backend stores tasks in database ``using`` (django-tasks-db there)."""
    try:
        backend = get_task_backend()
    except Exception:
        return False
    database_backends = _classes(DATABASE_BACKENDS)
    if not database_backends or not isinstance(backend, database_backends):
        return False
    from django_tasks_db.models import DBTaskResult

    return router.db_for_write(DBTaskResult) == using


def enqueue_in_transaction(using: str) -> bool:
    """Write the task row inside the current transaction. Never raises; ``False`` on failure."""
    try:
        with transaction.atomic(using=using):  # a savepoint: a failure spoils nothing
            return _enqueue()
    except Exception:
        logger.exception(
            "Publish hooks could not enqueue a delivery run in the transaction; "
            "it will be enqueued after commit"
        )
        return False


def enqueue_delivery_run(run_after: datetime | None = None) -> bool:
    """Enqueue a delivery run (at ``run_after``, if the backend can defer). Never raises.

    Returns whether a run was enqueued. When it was not, ``publish_hooks sweep`` finds the
    deliveries later: they are in the database either way.
    """
    settings = get_settings()
    try:
        return _enqueue(run_after)
    except Exception:
        logger.exception(
            "Publish hooks could not enqueue a delivery run on task backend %r; "
            "'manage.py publish_hooks sweep' will pick the deliveries up",
            settings.TASK_BACKEND,
        )
        return False


# -- After commit ----------------------------------------------------------------------------------


def dispatch_recorded(
    *, using: str, due_now: bool, due_later: list[datetime], **kwargs: Any
) -> None:
    """Arrange the delivery runs that deliveries just recorded need (the receiver of
    :data:`~wagtail_publish_hooks.signals.deliveries_recorded`, in the writing transaction):
    one run for the transaction if any is due now, and a deferred run at each later time."""
    if due_now:
        schedule_dispatch(using=using)
    for when in due_later:
        transaction.on_commit(functools.partial(dispatch_at, when), using=using, robust=True)


def connect_signals() -> None:
    deliveries_recorded.connect(dispatch_recorded, dispatch_uid="wagtail_publish_hooks.tasks")


def schedule_dispatch(using: str | None = None) -> None:
    """Make sure one delivery run is enqueued for the current transaction (at once outside one).

    However many events a transaction records, it enqueues a single run.
    """
    connection = transaction.get_connection(using)
    if connection.in_atomic_block:
        for callback in pending_on_commit(using):
            if callback in (dispatch_after_commit, enqueued_in_this_transaction):
                return
        if enqueues_in_transaction(connection.alias) and enqueue_in_transaction(connection.alias):
            # A marker: Django drops it with the savepoint if the task row is rolled back.
            transaction.on_commit(enqueued_in_this_transaction, using=using)
            return
    transaction.on_commit(dispatch_after_commit, using=using, robust=True)


def dispatch_at(when: datetime) -> None:
    """Enqueue a deferred run for a delivery that waits out a merging window."""
    enqueue_delivery_run(run_after=when)


def dispatch_after_commit() -> None:
    enqueue_delivery_run()


def enqueued_in_this_transaction() -> None:
    """Nothing to do on commit: the task row commits with the deliveries."""


def enqueue_follow_ups(summary: RunSummary) -> None:
    """Enqueue what a delivery run leaves to do: its successor when it ran out of time, and one
    deferred run per distinct retry second. (Retries already due were taken by the run's own
    loop.)"""
    if summary.successor:
        enqueue_delivery_run()
    now = timezone.now()
    for when in sorted(summary.retry_times):
        if when > now:
            enqueue_delivery_run(run_after=when)


def run_sweep(*, enqueue: bool = True) -> SweepResult:
    """The sweep (:func:`wagtail_publish_hooks.upkeep.sweep`), then a delivery run enqueued if
    anything is due."""
    result = sweep()
    result.enqueued = bool(result.due and enqueue and enqueue_delivery_run())
    return result


# -- The upkeep jobs as self-rescheduling tasks ----------------------------------------------------

_last_ensured = -float("inf")


def enqueue_upkeep(name: str, token: Any, run_after: datetime | None) -> str | None:
    """Enqueue an upkeep run (deferred to ``run_after``). Never raises: the task id, or
    ``None`` when it could not be enqueued."""
    settings = get_settings()
    try:
        options: dict[str, Any] = {
            "backend": settings.TASK_BACKEND,
            "queue_name": settings.QUEUE_NAME,
        }
        if run_after is not None and run_after > timezone.now():
            options["run_after"] = run_after
        result = run_upkeep.using(**options).enqueue(name, str(token))
    except Exception:
        logger.exception(
            "Publish hooks could not enqueue its %s task on task backend %r",
            name,
            settings.TASK_BACKEND,
        )
        return None
    return str(result.id)


def backend_can_defer() -> bool:
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
    interval = INTERVALS[name]
    try:
        if name == "sweep":
            result = str(run_sweep())
        else:
            pruned = prune_now()
            result = str(pruned)
            if isinstance(pruned, PruneResult) and not pruned.finished:
                interval = PRUNE_CONTINUE_AFTER  # old rows left: go on soon, in a new run
    except Exception as exc:
        logger.exception("Publish hooks upkeep job %r failed", name)
        result = f"failed: {type(exc).__name__}"
    now = timezone.now()
    Upkeep.objects.filter(name=name, token=current).update(
        last_run_at=now, last_result=result[:255]
    )
    schedule(name, expected=current, run_after=now + timedelta(seconds=interval))
    return {"job": name, "ran": True, "result": result}
