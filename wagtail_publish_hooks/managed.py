"""Destinations managed in the Wagtail admin, as routing and delivery see them.

:func:`~wagtail_publish_hooks.conf.get_destinations` is called on every publish, so the
destinations stored in the database are read once and kept in memory. A process drops its copy
as soon as it saves or deletes one itself; it notices the changes made by other processes (the
admin's web server, as seen by a worker) by comparing a fingerprint of the table (one small
query: each row's id and modification time) at most every ``DESTINATIONS_REFRESH_SECONDS``. A
worker asked to deliver to an alias it does not know looks again at once, so a destination
created a moment ago is never reported as unknown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, connections, router, transaction

if TYPE_CHECKING:
    from .conf import Destination

logger = logging.getLogger("wagtail_publish_hooks")


class ManagedDestinations:
    """The in-memory copy of the admin-managed destinations of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._destinations: dict[str, Destination] = {}
        self._fingerprint: frozenset[tuple[Any, ...]] | None = None
        self._next_check = 0.0

    def get(self) -> dict[str, Destination]:
        """The destinations, looking at the table only when the refresh interval has passed.

        The same dict object is returned until something changes.
        """
        if time.monotonic() < self._next_check:
            return self._destinations
        return self.refresh()

    def refresh(self) -> dict[str, Destination]:
        """Compare the table's fingerprint now, and reload it if it changed."""
        from .conf import get_settings

        with self._lock:
            interval = get_settings().DESTINATIONS_REFRESH_SECONDS
            try:
                self._reload_if_changed()
            except Exception as exc:
                # Before ``migrate`` (no table yet), with no database at hand, or in an async
                # context: route to the settings' destinations alone, and look again later.
                level = logging.WARNING if isinstance(exc, DatabaseError) else logging.DEBUG
                logger.log(
                    level,
                    "Publish hooks: the destinations managed in the admin cannot be read (%s)",
                    type(exc).__name__,
                )
            self._next_check = time.monotonic() + _seconds(interval)
            return self._destinations

    def invalidate(self) -> None:
        """Look at the table again on the next call."""
        self._next_check = 0.0

    def _reload_if_changed(self) -> None:
        from .models import ManagedDestination

        using = router.db_for_read(ManagedDestination)
        connection = connections[using]
        with transaction.atomic(using=using) if connection.in_atomic_block else _nothing():
            fingerprint = frozenset(
                ManagedDestination.objects.using(using).values_list("pk", "alias", "updated_at")
            )
            if fingerprint == self._fingerprint:
                return
            rows = list(ManagedDestination.objects.using(using).order_by("alias"))
        self._destinations = build_destinations(rows)
        self._fingerprint = frozenset((row.pk, row.alias, row.updated_at) for row in rows)
        from .conf import get_backend

        get_backend.cache_clear()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _seconds(value: Any) -> float:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 10.0


def build_destinations(rows: Any) -> dict[str, Destination]:
    """Destinations from model instances, skipping those routing could not use."""
    from .conf import RECEIVER_PREFIX, destination_from_config

    destinations: dict[str, Destination] = {}
    for row in rows:
        if row.alias.startswith(RECEIVER_PREFIX):
            continue  # reported by the system checks (W014)
        config: Mapping[str, Any] = row.to_config()
        destination = destination_from_config(row.alias, config, managed=True)
        if destination is not None:
            destinations[row.alias] = destination
    return destinations


#: The process's copy.
managed_destinations = ManagedDestinations()


def _changed(**kwargs: Any) -> None:
    managed_destinations.invalidate()
    transaction.on_commit(managed_destinations.invalidate)


def _migrated(*, using: str = "default", **kwargs: Any) -> None:
    from .models import ManagedDestination

    if using == router.db_for_read(ManagedDestination):
        managed_destinations.refresh()


def connect_signals() -> None:
    """Drop this process's copy whenever it changes a managed destination, so that its next
    publish sees the change at once; read the table again after ``migrate`` and ``flush``."""
    from django.apps import apps
    from django.db.models.signals import post_delete, post_migrate, post_save

    from .models import ManagedDestination

    post_save.connect(_changed, sender=ManagedDestination, dispatch_uid="wph_managed_saved")
    post_delete.connect(_changed, sender=ManagedDestination, dispatch_uid="wph_managed_deleted")
    post_migrate.connect(
        _migrated,
        sender=apps.get_app_config("wagtail_publish_hooks"),
        dispatch_uid="wph_managed_migrated",
    )
