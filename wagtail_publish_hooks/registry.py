"""Where destinations come from, and how their backends are built: the one module that knows.

Destinations are those of ``WAGTAIL_PUBLISH_HOOKS["DESTINATIONS"]``, then those managed in the
Wagtail admin (``ManagedDestination`` rows; one whose alias is taken in settings is ignored).
Python receivers (``@on``) are not destinations, but their deliveries are sent through a backend
too: :func:`get_backend` gives them :class:`~wagtail_publish_hooks.backends.python.PythonBackend`.

Nothing stored in the database names code. A destination managed in the admin picks its
backend from a list, :func:`managed_backend_paths`: the backends shipped with the package and
those the operator lists in ``MANAGED_BACKENDS``. A stored path is compared with the list's
strings before anything is imported, and its options are checked by the backend's
:meth:`~wagtail_publish_hooks.backends.base.BaseBackend.check_managed_options` (options that
name code are settings-only). A row that breaks either rule, or whose secrets cannot be
decrypted, is never built: routing and the worker do not know it, the system checks report it,
and the admin lists it as broken with the reason.

:func:`get_destinations` is called on every publish, so the rows are read once and kept in
memory. A process drops its copy as soon as it saves or deletes one itself; it notices the
changes made by other processes (the admin's web server, as seen by a worker) by comparing a
fingerprint of the table (one small query: each row's id and modification time) at most every
``DESTINATIONS_REFRESH_SECONDS``. A worker asked to deliver to an alias it does not know looks
again at once, so a destination created a moment ago is never reported as unknown.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core import checks
from django.db import DatabaseError, connections, router, transaction
from django.utils.module_loading import import_string

from .conf import (
    DEFAULTS,
    SETTING_NAME,
    WATCHERS_ALIAS,
    RetryPolicy,
    as_list,
    bounded_schedule,
    get_settings,
    is_builtin_alias,
    is_receiver_alias,
    is_watch_alias,
)
from .encryption import DecryptionError, configured_keys
from .http.addresses import AddressPolicy, managed_policy, settings_policy
from .limits import setting_number
from .models import ManagedDestination
from .redaction import is_secret_option
from .validation import (
    about_managed,
    backend_not_managed,
    error,
    managed_option_problems,
    undecryptable,
)

if TYPE_CHECKING:
    from .backends.base import BaseBackend

logger = logging.getLogger("wagtail_publish_hooks")


@dataclass(frozen=True)
class Destination:
    """One configured destination, as routing and delivery see it."""

    alias: str
    backend_path: str
    events: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    #: Left out of ``repr()``: URLs, secrets and headers in it are credentials.
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: Whether events about alias pages (re-published with their original) are left out.
    exclude_aliases: bool = True
    #: Extra documents captured with the event for this destination (``"api"``).
    include: tuple[str, ...] = ()
    #: Filters on what the event is about (``None``: no filter): sites (hostnames or ids, as
    #: configured), language codes, section pages (ids or url paths), field names that must have
    #: changed, collections (ids or names).
    sites: tuple[str | int, ...] | None = None
    locales: tuple[str, ...] | None = None
    sections: tuple[str | int, ...] | None = None
    changed: tuple[str, ...] | None = None
    collections: tuple[str | int, ...] | None = None
    #: The API document of ``INCLUDE ["api"]``: the viewset's dotted path (settings only) and
    #: the fields kept (``None``: the viewset's own).
    api_viewset: str | None = None
    api_fields: tuple[str, ...] | None = None
    #: Whether it is managed in the admin (a ``ManagedDestination`` row) rather than defined in
    #: settings: such a destination is held to the limits an admin user is trusted with.
    managed: bool = False
    #: The destination's ``RETRY_SCHEDULE`` and ``MAX_ATTEMPTS`` (``None``: the globals').
    retry_schedule: tuple[float, ...] | None = None
    max_attempts: int | None = None

    def get_backend(self) -> BaseBackend:
        return get_backend(self.alias)


def get_destinations() -> dict[str, Destination]:
    """Every destination well-formed enough to route to: those of the settings, then those
    managed in the admin (an admin-managed one whose alias is taken in settings is ignored).

    Cheap enough for every publish: the admin-managed ones are kept in memory and looked up
    again at most every ``DESTINATIONS_REFRESH_SECONDS``.
    """
    global _merged
    from_settings = settings_destinations()
    managed = managed_destinations.get()
    merged = _merged
    if merged is not None and merged[0] is from_settings and merged[1] is managed:
        return merged[2]
    destinations = dict(from_settings)
    for alias, destination in managed.items():
        destinations.setdefault(alias, destination)
    _merged = (from_settings, managed, destinations)
    return destinations


def refresh_destinations() -> dict[str, Destination]:
    """:func:`get_destinations`, after looking for changes to the admin-managed ones now."""
    managed_destinations.refresh()
    return get_destinations()


#: The last merge: (settings' destinations, admin-managed ones, both), rebuilt when either changes.
_merged: tuple[dict[str, Destination], dict[str, Destination], dict[str, Destination]] | None = None


@functools.cache
def settings_destinations() -> dict[str, Destination]:
    """The destinations from settings that are well-formed enough to route to."""
    destinations: dict[str, Destination] = {}
    raw = get_settings().DESTINATIONS
    if not isinstance(raw, Mapping):
        return destinations
    for alias, config in raw.items():
        if not isinstance(config, Mapping) or not isinstance(config.get("BACKEND"), str):
            logger.error("Publish hooks destination %r is malformed and is skipped", alias)
            continue
        if is_builtin_alias(str(alias)):
            logger.error(
                "Publish hooks destination %r is skipped: the name is reserved for Python "
                "receivers ('python:') or watching ('watchers', 'watch:')",
                alias,
            )
            continue
        destination = destination_from_config(str(alias), config)
        if destination is not None:
            destinations[str(alias)] = destination
    return destinations


def destination_from_config(
    alias: str, config: Any, *, managed: bool = False
) -> Destination | None:
    """A destination from its configuration (a ``DESTINATIONS`` entry), or ``None`` (logged)
    if it is too malformed to route to."""
    if not isinstance(config, Mapping) or not isinstance(config.get("BACKEND"), str):
        logger.error("Publish hooks destination %r is malformed and is skipped", alias)
        return None
    options = config.get("OPTIONS") or {}
    exclude_aliases = config.get("EXCLUDE_ALIASES")
    return Destination(
        alias=alias,
        backend_path=config["BACKEND"],
        events=_optional_tuple(config.get("EVENTS")),
        models=_optional_tuple(config.get("MODELS")),
        options=options if isinstance(options, Mapping) else {},
        exclude_aliases=(
            exclude_aliases
            if isinstance(exclude_aliases, bool)
            else backend_excludes_aliases(config["BACKEND"])
        ),
        include=_optional_tuple(config.get("INCLUDE")) or (),
        sites=_optional_ids(config.get("SITES")),
        locales=_optional_tuple(config.get("LOCALES")),
        sections=_optional_ids(config.get("SECTIONS")),
        changed=_optional_tuple(config.get("CHANGED")),
        collections=_optional_ids(config.get("COLLECTIONS")),
        # A managed destination may not name code (E062): never taken from one.
        api_viewset=(
            config["API_VIEWSET"]
            if isinstance(config.get("API_VIEWSET"), str) and not managed
            else None
        ),
        api_fields=_optional_tuple(config.get("API_FIELDS")),
        managed=managed,
        **_retry_keys(alias, config),
    )


def _retry_keys(alias: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """A destination's ``RETRY_SCHEDULE`` and ``MAX_ATTEMPTS`` within their bounds (E052 and
    E048 report them); one that cannot be used leaves the global in force, logged."""
    keys: dict[str, Any] = {}
    where = f"{SETTING_NAME}['DESTINATIONS'][{alias!r}]"
    if config.get("RETRY_SCHEDULE") is not None:
        schedule = bounded_schedule(config["RETRY_SCHEDULE"], where)
        if schedule:
            keys["retry_schedule"] = tuple(float(delay) for delay in schedule)
    if config.get("MAX_ATTEMPTS") is not None:
        value, problem = setting_number(
            "MAX_ATTEMPTS", config["MAX_ATTEMPTS"], DEFAULTS["MAX_ATTEMPTS"]
        )
        if problem:
            logger.error("%s['MAX_ATTEMPTS']: %s; the global is used", where, problem)
        else:
            keys["max_attempts"] = int(value)
    return keys


def backend_excludes_aliases(backend_path: str) -> bool:
    """The backend's default for ``EXCLUDE_ALIASES`` (``True`` if it cannot be imported)."""
    from .backends.base import BaseBackend

    try:
        backend_class = import_string(backend_path)
    except Exception:  # reported by checks E005; delivery records the failure
        return BaseBackend.exclude_aliases_by_default
    return bool(
        getattr(backend_class, "exclude_aliases_by_default", BaseBackend.exclude_aliases_by_default)
    )


@functools.cache
def get_backend(alias: str) -> BaseBackend:
    """The backend instance for a destination alias; raises ``KeyError`` for an unknown one.

    A Python receiver's name (``"python:..."``) gets the backend that calls it; watching's
    fan-out (``"watchers"``) and each recipient's notifications (``"watch:<user id>"``) theirs.
    """
    if is_receiver_alias(alias):
        from .backends.python import PythonBackend

        return PythonBackend(alias=alias, options={})
    if is_watch_alias(alias):
        from .backends.watch import WatchBackend

        if alias == WATCHERS_ALIAS:
            # Above the outbox (it records deliveries): built by its path, like a destination's.
            fan_out: BaseBackend = import_string(WATCHERS_BACKEND)(alias=alias, options={})
            return fan_out
        return WatchBackend(alias=alias, options={})
    destination = get_destinations()[alias]
    backend_class = import_string(destination.backend_path)
    backend = backend_class(alias=alias, options=dict(destination.options))
    backend.managed = destination.managed
    return backend


#: The backend of watching's fan-out destination ``"watchers"``.
WATCHERS_BACKEND = "wagtail_publish_hooks.watching.WatchersBackend"


def retry_policy(alias: str) -> RetryPolicy:
    """The retry policy of a destination: its own keys, else the globals."""
    destination = get_destinations().get(alias)
    return get_settings().retry_policy_with(
        destination.retry_schedule if destination is not None else None,
        destination.max_attempts if destination is not None else None,
    )


def clear_caches() -> None:
    settings_destinations.cache_clear()
    get_backend.cache_clear()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTING_NAME, "TASKS"):
        clear_caches()


def _optional_tuple(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(str(item) for item in as_list(value))


def _optional_ids(value: Any) -> tuple[str | int, ...] | None:
    """Like :func:`_optional_tuple`, keeping integers (object ids) as integers."""
    if value is None:
        return None
    return tuple(
        item if isinstance(item, int) and not isinstance(item, bool) else str(item)
        for item in as_list(value)
    )


# -- Destinations managed in the admin -----------------------------------------------------------


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
        get_backend.cache_clear()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _key_fingerprint() -> str:
    """A digest of the encryption keys in use (never the keys themselves)."""
    return hashlib.sha256(repr(configured_keys()).encode()).hexdigest()


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


def policy_for(alias: str) -> AddressPolicy:
    """The address policy of the destination ``alias``: the settings' for a destination of the
    settings or a Python receiver, the admin's for one managed in the admin, and the admin's
    (the stricter by default) for an alias no longer known."""
    if is_builtin_alias(alias):
        return settings_policy()
    destination = get_destinations().get(alias)
    if destination is not None and not destination.managed:
        return settings_policy()
    return managed_policy()


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
    destinations: dict[str, Destination] = {}
    for row in rows:
        if is_builtin_alias(row.alias):
            continue  # reported by the system checks (W014, E063)
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
    if using == router.db_for_read(ManagedDestination):
        managed_destinations.refresh()


def secret_option_rule(backend_path: Any) -> Callable[[str], bool]:
    """Which ``OPTIONS`` keys of a destination using ``backend_path`` hold secrets: those the
    backend declares (only a backend of :func:`managed_backend_paths` is imported to ask) and
    those whose name looks secret."""
    backend_class = managed_backend_class(backend_path)
    return lambda key: is_secret_option(backend_class, key)


def _encrypt_before_saving(*, instance: ManagedDestination, **kwargs: Any) -> None:
    instance.encrypt_secrets(secret_option_rule(instance.backend))


def connect_signals() -> None:
    """Encrypt a managed destination's secrets whenever it is saved; drop this process's copy
    whenever it changes one, so that its next publish sees the change at once; read the table
    again after ``migrate`` and ``flush``; drop the built backends when the settings change."""
    from django.apps import apps
    from django.core.signals import setting_changed
    from django.db.models.signals import post_delete, post_migrate, post_save, pre_save

    pre_save.connect(
        _encrypt_before_saving, sender=ManagedDestination, dispatch_uid="wph_managed_encrypt"
    )
    post_save.connect(_changed, sender=ManagedDestination, dispatch_uid="wph_managed_saved")
    post_delete.connect(_changed, sender=ManagedDestination, dispatch_uid="wph_managed_deleted")
    post_migrate.connect(
        _migrated,
        sender=apps.get_app_config("wagtail_publish_hooks"),
        dispatch_uid="wph_managed_migrated",
    )
    setting_changed.connect(_on_setting_changed, dispatch_uid="wagtail_publish_hooks.registry")
