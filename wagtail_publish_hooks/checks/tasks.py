"""The checks of the task backend that runs the deliveries: loadable, in the background, with a
queue its workers consume (RQ, Celery), and time limits that do not cut runs short."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from ..conf import DEFAULTS, raw_settings
from ..tasks import get_task_backend, task_backend_is_immediate
from ..validation import error, is_number, warning
from .leases import DEFAULT_REQUEST_TIMEOUT


def check_task_backend(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    settings_ = raw_settings()
    alias = settings_.get("TASK_BACKEND", DEFAULTS["TASK_BACKEND"])
    if not isinstance(alias, str):
        return []  # reported by E018
    try:
        backend = get_task_backend(alias)
    except Exception as exc:
        return [
            error(
                18,
                f"names task backend {alias!r}, which cannot be loaded "
                f"({type(exc).__name__}: {exc}).",
                keys=("TASK_BACKEND",),
                hint="Add it to the TASKS setting, or set TASK_BACKEND to an alias there.",
            )
        ]
    messages: list[checks.CheckMessage] = []
    if task_backend_is_immediate(backend):
        messages.append(
            warning(
                1,
                f"task backend {alias!r} is immediate: deliveries run inside the publishing "
                "request, so a slow destination slows publishing.",
                keys=("TASK_BACKEND",),
                hint="Use django-tasks-db ('django_tasks_db.DatabaseBackend') and run "
                "'manage.py db_worker', or another background backend.",
            )
        )
    elif not getattr(backend, "supports_defer", False):
        messages.append(
            warning(
                2,
                f"task backend {alias!r} cannot defer tasks: retries wait for "
                "'manage.py publish_hooks sweep'.",
                keys=("TASK_BACKEND",),
                hint="Run 'manage.py publish_hooks sweep' every minute.",
            )
        )
    if _is_a(backend, "django_tasks_rq", "RQBackend"):
        messages.extend(_check_rq_job_class(alias))
    if _is_a(backend, "django_tasks_fennel", "CeleryBackend"):
        messages.extend(_check_celery(alias, settings_))
    queue = settings_.get("QUEUE_NAME", DEFAULTS["QUEUE_NAME"])
    allowed_queues = getattr(backend, "queues", None)
    if isinstance(queue, str) and allowed_queues and queue not in allowed_queues:
        messages.append(
            error(
                18,
                f"queue {queue!r} is not one of the queues of task backend "
                f"{alias!r}: {', '.join(sorted(allowed_queues))}.",
                keys=("QUEUE_NAME",),
            )
        )
    return messages


def _check_rq_job_class(alias: str) -> list[checks.CheckMessage]:
    """django-tasks-rq's jobs need its own job class in the worker, which ``rqworker`` only
    uses when told (``RQ["JOB_CLASS"]`` or ``--job-class``); without it every run fails."""
    rq_settings = getattr(settings, "RQ", None)
    path = rq_settings.get("JOB_CLASS") if isinstance(rq_settings, Mapping) else None
    try:
        from django_tasks_rq import Job

        job_class = import_string(path) if isinstance(path, str) else None
    except ImportError:
        job_class = None
    if isinstance(job_class, type) and issubclass(job_class, Job):
        return []
    return [
        warning(
            16,
            f"task backend {alias!r} is django-tasks-rq's, but settings.RQ['JOB_CLASS'] is "
            f"{path!r}, not 'django_tasks_rq.Job': an 'rqworker' started without "
            "'--job-class django_tasks_rq.Job' fails every delivery run.",
            keys=("TASK_BACKEND",),
            hint="Set RQ = {'JOB_CLASS': 'django_tasks_rq.Job'}, or start every worker with "
            "'--job-class django_tasks_rq.Job' and silence this warning.",
        )
    ]


def _check_celery(alias: str, raw: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """Celery through django-tasks-fennel. W026: runs go to the queue ``QUEUE_NAME``, which a
    ``celery worker`` started without ``-Q`` does not consume unless the app declares it.
    E055: Celery's time limits end a run wherever it is, between a send and its record too."""
    try:
        from celery import current_app

        conf = current_app.conf
        default_queue = conf.task_default_queue
        declared = conf.task_queues or ()
        limits_ = {
            "CELERY_TASK_TIME_LIMIT": conf.task_time_limit,
            "CELERY_TASK_SOFT_TIME_LIMIT": conf.task_soft_time_limit,
        }
    except Exception:  # no usable Celery app here: django-tasks-fennel's own checks say so
        return []
    messages: list[checks.CheckMessage] = []
    queue = raw.get("QUEUE_NAME", DEFAULTS["QUEUE_NAME"])
    consumed = {default_queue} | {
        getattr(declared_queue, "name", declared_queue) for declared_queue in declared
    }
    if isinstance(queue, str) and queue not in consumed:
        messages.append(
            warning(
                26,
                f"task backend {alias!r} is Celery's (django-tasks-fennel), which sends each "
                f"delivery run to the queue {queue!r}; the Celery app's default queue is "
                f"{default_queue!r}, so a 'celery worker' started without '-Q' never runs them.",
                keys=("QUEUE_NAME",),
                hint=f"Start every worker with '-Q {default_queue},{queue}' and silence this "
                f"warning, or set CELERY_TASK_DEFAULT_QUEUE = {queue!r}.",
            )
        )
    max_run = raw.get("MAX_RUN_SECONDS", DEFAULTS["MAX_RUN_SECONDS"])
    destinations = raw.get("DESTINATIONS", {})
    timeouts: list[Any] = [DEFAULT_REQUEST_TIMEOUT]
    if isinstance(destinations, Mapping):
        for config in destinations.values():
            options = config.get("OPTIONS", {}) if isinstance(config, Mapping) else None
            timeout: Any = options.get("TIMEOUT") if isinstance(options, Mapping) else None
            if is_number(timeout) and math.isfinite(timeout):
                timeouts.append(timeout)
    if not is_number(max_run):
        return messages  # reported by the checks of the setting itself
    shortest_run = max_run + max(timeouts)
    for name, limit in limits_.items():
        if is_number(limit) and 0 < limit <= shortest_run:
            messages.append(
                error(
                    55,
                    f"{name} is {limit:g} s, but a delivery run claims deliveries for up to "
                    f"MAX_RUN_SECONDS ({max_run:g} s) and then finishes its sends (each up to "
                    f"{max(timeouts):g} s): Celery would end runs in the middle, and a run "
                    "ended between a send and its record sends that delivery again.",
                    keys=("MAX_RUN_SECONDS",),
                    hint=f"Raise {name} well above {shortest_run:g} s, or lower MAX_RUN_SECONDS.",
                )
            )
    return messages


def _is_a(backend: Any, module_name: str, class_name: str) -> bool:
    """Whether ``backend`` is an instance of ``module_name.class_name`` (or of a subclass), for a
    task backend of an optional package: never imports it (an instance of it means its module
    is imported already)."""
    module = sys.modules.get(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    return isinstance(cls, type) and isinstance(backend, cls)
