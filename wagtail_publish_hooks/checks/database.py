"""The checks of the databases the worker shares with the publishing processes."""

from __future__ import annotations

from django.core import checks
from django.db import connections, router

from ..models import Event
from ..tasks import get_task_backend, task_backend_is_immediate
from ..validation import ID_PREFIX

#: The SQLite options recommended for a database the worker writes to beside the web processes.
SQLITE_OPTIONS = {"transaction_mode": "IMMEDIATE", "timeout": 20}


def check_sqlite_transactions(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A SQLite database that the worker writes to beside the editors' publishes should begin
    its transactions ``IMMEDIATE`` and wait for the lock: in the default (deferred) mode, a
    publish transaction that has read cannot take the write lock while the worker holds it,
    and SQLite fails it at once with "database is locked" instead of waiting."""
    try:
        backend = get_task_backend()
    except Exception:
        return []  # reported by E018
    if task_backend_is_immediate(backend):
        return []  # no worker: deliveries run in the publishing process (W001)
    aliases = {router.db_for_write(Event)}
    if type(backend).__module__.split(".")[0] == "django_tasks_db":
        from django_tasks_db.models import DBTaskResult

        aliases.add(router.db_for_write(DBTaskResult))
    messages: list[checks.CheckMessage] = []
    for alias in sorted(aliases):
        connection = connections[alias]
        name = str(connection.settings_dict.get("NAME") or "")
        if connection.vendor != "sqlite" or name == ":memory:" or "mode=memory" in name:
            continue  # not SQLite, or in memory: no other process shares it
        options = connection.settings_dict.get("OPTIONS") or {}
        mode = str(options.get("transaction_mode") or "DEFERRED").upper()
        timeout = options.get("timeout", 5)
        problems = []
        if mode not in ("IMMEDIATE", "EXCLUSIVE"):
            problems.append(f"its transactions are {mode}")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 5:
            problems.append(f"its busy timeout is {timeout!r} seconds")
        if not problems:
            continue
        messages.append(
            checks.Warning(
                f"DATABASES[{alias!r}] is SQLite, shared by the publishes and the worker that "
                f"delivers their events, and {' and '.join(problems)}: a publish can fail "
                "with 'database is locked' while the worker writes.",
                hint=f'Add to DATABASES[{alias!r}]: "OPTIONS": {SQLITE_OPTIONS!r} '
                "(Django 5.1 or later). Or use PostgreSQL.",
                id=f"{ID_PREFIX}.W024",
            )
        )
    return messages
