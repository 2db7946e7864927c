"""Destinations managed in the Wagtail admin, as routing and delivery see them.

Nothing stored in the database names code. A destination managed in the admin picks its
backend from a registry, :func:`managed_backend_paths`: the backends shipped with the package
and those the operator lists in ``MANAGED_BACKENDS``. A stored path is compared with the
registry's strings before anything is imported, and its options are checked by the backend's
:meth:`~wagtail_publish_hooks.backends.base.BaseBackend.check_managed_options` (options that
name code are settings-only). A row that breaks either rule, or whose secrets cannot be
decrypted, is never built: routing and the worker do not know it, the system checks report it,
and the admin lists it as broken with the reason.

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

from django.core import checks
from django.db import DatabaseError, connections, router, transaction
from django.utils.module_loading import import_string

from .validation import (
    about_managed,
    backend_not_managed,
    error,
    managed_option_problems,
    undecryptable,
)

if TYPE_CHECKING:
    from .backends.base import BaseBackend
    from .conf import Destination

logger = logging.getLogger("wagtail_publish_hooks")


class ManagedDestinations:
    """The in-memory copy of the admin-managed destinations of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._destinations: dict[str, Destination] = {}
        self._fingerprint: frozenset[tuple[Any, ...]] | None = None
        self._next_check = 0.0
        self._context: tuple[Any, ...] | None = None

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
            # What decides which rows may be built changes with the settings too.
            context = (managed_backend_paths(), _key_fingerprint())
            if fingerprint == self._fingerprint and context == self._context:
                return
            rows = list(ManagedDestination.objects.using(using).order_by("alias"))
        self._destinations = build_destinations(rows)
        self._fingerprint = frozenset((row.pk, row.alias, row.updated_at) for row in rows)
        self._context = context
        from .conf import get_backend

        get_backend.cache_clear()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _key_fingerprint() -> str:
    """A digest of the encryption keys in use (never the keys themselves)."""
    import hashlib

    from .encryption import _configured_keys

    return hashlib.sha256(repr(_configured_keys()).encode()).hexdigest()


def _seconds(value: Any) -> float:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 10.0


#: The backends shipped with the package, which every destination managed in the admin may use.
SHIPPED_BACKENDS = (
    "wagtail_publish_hooks.backends.webhook.WebhookBackend",
    "wagtail_publish_hooks.backends.slack.SlackBackend",
    "wagtail_publish_hooks.backends.teams.TeamsBackend",
    "wagtail_publish_hooks.backends.discord.DiscordBackend",
    "wagtail_publish_hooks.backends.build_hook.BuildHookBackend",
    "wagtail_publish_hooks.backends.revalidate.RevalidateBackend",
    "wagtail_publish_hooks.backends.frontend_cache.FrontendCacheBackend",
    "wagtail_publish_hooks.backends.email.EmailBackend",
)


def managed_backend_paths() -> tuple[str, ...]:
    """The registry: dotted paths of the backends a destination managed in the admin may use,
    the shipped ones first, then the operator's ``MANAGED_BACKENDS``."""
    from .conf import get_settings

    extra = get_settings().MANAGED_BACKENDS
    if isinstance(extra, str) or not isinstance(extra, list | tuple):
        extra = ()  # reported by check E046
    paths = [*SHIPPED_BACKENDS, *(path for path in extra if isinstance(path, str) and path)]
    return tuple(dict.fromkeys(paths))


def managed_backend_class(path: Any) -> type[BaseBackend] | None:
    """The backend class of a registry member, or ``None``.

    ``path`` is compared with the registry's strings before anything is imported: a path that
    is not a member is never imported, whatever it names.
    """
    from .backends.base import BaseBackend

    if not isinstance(path, str) or path not in managed_backend_paths():
        return None
    try:
        backend_class = import_string(path)
    except Exception:  # an operator's MANAGED_BACKENDS entry: reported by check E046
        return None
    if isinstance(backend_class, type) and issubclass(backend_class, BaseBackend):
        return backend_class
    return None


def managed_backend_choices() -> list[tuple[str, str]]:
    """(path, name) of each backend of the registry, for the admin's backend field."""
    choices = []
    for path in managed_backend_paths():
        backend_class = managed_backend_class(path)
        if backend_class is not None:
            choices.append((path, str(backend_class.display_name or backend_class.__name__)))
    return choices


def check_managed_trust(alias: str, backend: Any, options: Any) -> list[checks.CheckMessage]:
    """E044 and E045: a destination managed in the admin that names code, found by comparing
    strings and keys only (nothing it names is imported or called)."""
    with about_managed():
        if not isinstance(backend, str) or not backend:
            return [error(4, "is required.", alias=alias, keys=("BACKEND",))]
        backend_class = managed_backend_class(backend)
        if backend_class is None:
            return [backend_not_managed(alias, backend, managed_backend_paths())]
        if not isinstance(options, Mapping):
            return []
        return managed_option_problems(backend_class, alias, options)


def managed_problems(row: Any) -> list[checks.CheckMessage]:
    """Why a stored destination may not be built, found without importing anything it names:
    its backend is outside the registry (E044), an option names code (E045), or its secrets
    cannot be decrypted (E047). Empty when it may be built."""
    from .encryption import DecryptionError

    messages = check_managed_trust(row.alias, row.backend, row.options)
    if messages:
        return messages
    try:
        row.to_config()
    except DecryptionError:
        return [undecryptable(row.alias)]
    return []


def build_destinations(rows: Any) -> dict[str, Destination]:
    """Destinations from model instances, skipping those routing could not use, and those that
    may not be built (see :func:`managed_problems`)."""
    from .conf import RECEIVER_PREFIX, destination_from_config
    from .encryption import DecryptionError

    destinations: dict[str, Destination] = {}
    for row in rows:
        if row.alias.startswith(RECEIVER_PREFIX):
            continue  # reported by the system checks (W014)
        problems = managed_problems(row)
        if problems:
            logger.warning(
                "Publish hooks destination %r (managed in the admin) is not built: %s",
                row.alias,
                "; ".join(f"{getattr(m, 'text', m.msg)} ({m.id})" for m in problems),
            )
            continue
        try:
            config: Mapping[str, Any] = row.to_config()
        except DecryptionError:
            continue  # cannot happen after managed_problems(); never a crash here
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
