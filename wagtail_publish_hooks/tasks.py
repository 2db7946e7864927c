"""The background task, on Django's tasks framework (``django.tasks``, or the backport).

One task run drains due deliveries in batches; it is enqueued once per committed transaction
that recorded events, by the sweep, and (deferred) for scheduled retries. Where the backend can
defer tasks, the sweep and the prune run as tasks too (``run_upkeep``, see ``upkeep.py``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import router, transaction
from django.utils import timezone

from .conf import get_settings

try:  # Django 6.0+
    from django.tasks import task, task_backends
except ImportError:  # pragma: no cover - depends on the Django version
    from django_tasks import task, task_backends  # type: ignore[no-redef,assignment]

logger = logging.getLogger("wagtail_publish_hooks")


def get_task_backend(alias: str | None = None) -> Any:
    return task_backends[alias or get_settings().TASK_BACKEND]


def task_backend_is_immediate(backend: Any) -> bool:
    return type(backend).__name__ == "ImmediateBackend"


def _default_backend_alias() -> str:
    # The task object must exist at import (workers import it by path); its backend is set
    # again from settings at every enqueue.
    alias = get_settings().TASK_BACKEND
    return alias if isinstance(alias, str) and alias in task_backends.settings else "default"


@task(backend=_default_backend_alias())
def deliver_due_deliveries() -> dict[str, int]:
    """Send every delivery that is due, in batches, until none is left or time runs out."""
    from .delivery import run_due_deliveries
    from .upkeep import ensure_upkeep

    # The worker keeps the sweep and the prune running, where the backend can defer tasks.
    ensure_upkeep()
    return run_due_deliveries().as_dict()


@task(backend=_default_backend_alias())
def run_upkeep(name: str, token: str) -> dict[str, Any]:
    """One run of an upkeep job (``sweep`` or ``prune``), which schedules the next one."""
    from .upkeep import run_scheduled

    return run_scheduled(name, token)


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


def _enqueue(run_after: datetime | None = None) -> bool:
    settings = get_settings()
    backend = get_task_backend(settings.TASK_BACKEND)
    if run_after is not None and run_after > timezone.now():
        if not getattr(backend, "supports_defer", False):
            return False
        prepared = deliver_due_deliveries.using(
            backend=settings.TASK_BACKEND, queue_name=settings.QUEUE_NAME, run_after=run_after
        )
    else:
        prepared = deliver_due_deliveries.using(
            backend=settings.TASK_BACKEND, queue_name=settings.QUEUE_NAME
        )
    prepared.enqueue()
    return True


def enqueues_in_transaction(using: str) -> bool:
    """Whether the task backend stores tasks in database ``using`` (django-tasks-db there)."""
    try:
        backend = get_task_backend()
    except Exception:
        return False
    if type(backend).__module__.split(".")[0] != "django_tasks_db":
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
