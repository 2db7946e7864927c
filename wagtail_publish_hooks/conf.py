"""The one accessor for ``settings.WAGTAIL_PUBLISH_HOOKS``: the defaults, the constants, and
whether capture is on.

Settings are read when used, not at import, so ``override_settings`` works; the parsed form is
cached and dropped on ``setting_changed``. Nothing here raises on a bad value: the system checks
report those, and run time takes the nearest bound, logged. A leaf: it imports nothing from the
package but ``limits``. Where destinations come from, and how their backends are built, is
:mod:`wagtail_publish_hooks.registry`'s business.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings

from .limits import SETTING_LIMITS, setting_number

logger = logging.getLogger("wagtail_publish_hooks")

SETTING_NAME = "WAGTAIL_PUBLISH_HOOKS"

#: Every global key with its default. A key not listed here is reported by check E002.
DEFAULTS: dict[str, Any] = {
    "DESTINATIONS": {},
    "ENABLED": True,
    "MAX_ATTEMPTS": 8,
    "RETRY_SCHEDULE": [5, 300, 1800, 7200, 18000, 36000, 36000],
    "ALLOW_PRIVATE_NETWORKS": False,
    # The same for destinations managed in the admin, which ALLOW_PRIVATE_NETWORKS does not
    # cover: an admin user may not reach internal networks unless the operator says so here.
    "MANAGED_ALLOW_PRIVATE_NETWORKS": False,
    "TASK_BACKEND": "default",
    "QUEUE_NAME": "default",
    "RETENTION_DAYS": 30,
    # How many deliveries one task run claims at a time, and how long a claim is held before
    # another worker may take the delivery over (a crashed worker's claims expire).
    "BATCH_SIZE": 50,
    "LEASE_SECONDS": 300,
    # A task run stops draining after this long and enqueues its successor, so one busy
    # destination cannot hold a worker for ever.
    "MAX_RUN_SECONDS": 60,
    # Deliveries to different destinations are sent side by side, by up to this many threads
    # of a run, so that one slow destination does not hold up the others.
    "CONCURRENCY": 4,
    # How often a process looks for destinations added, changed or removed in the admin by
    # another process (its own changes are seen at once).
    "DESTINATIONS_REFRESH_SECONDS": 10,
    # Backends, besides the shipped ones, that destinations managed in the admin may use:
    # dotted paths of BaseBackend subclasses (see wagtail_publish_hooks.registry).
    "MANAGED_BACKENDS": [],
    # Fernet keys for the secrets of destinations managed in the admin: the first encrypts,
    # all decrypt. None: keys derived from SECRET_KEY and SECRET_KEY_FALLBACKS.
    "ENCRYPTION_KEYS": None,
    # A destination whose attempts have all failed for this long (seconds; no success since the
    # first of them) is disabled, and publish_hooks.destination_disabled is emitted. None: never.
    "DISABLE_AFTER_FAILING_FOR": 5 * 24 * 3600,
    # How long a publish_hooks.delivery_failed event waits, gathering the other deliveries to
    # the same destination that fail meanwhile, before it is sent (0: one event per failure).
    "OPERATIONAL_COALESCE_SECONDS": 300,
    # Which sites a snippet or media object belongs to, for the SITES filter of destinations:
    # {"app_label.Model": "dotted.path.to.callable"}, the callable taking the object and
    # returning Site objects or ids. Settings only. An object of a model not listed belongs to
    # every site.
    "OBJECT_SITES": {},
    # Whether events that subscriptions may concern are routed to the built-in fan-out
    # destination "watchers", which tells the users who watch them (False: nobody is told).
    "WATCHING": True,
    # The Slack app whose bot sends direct messages to Wagtail users (watching): {"TOKEN":
    # "xoxb-...", "API_URL": "https://slack.com/api/"}. None: no Slack bot (see slack_bot.py).
    "SLACK_BOT": None,
}

#: Keys a destination may have.
DESTINATION_KEYS = frozenset(
    {
        "BACKEND",
        "EVENTS",
        "MODELS",
        "EXCLUDE_ALIASES",
        "INCLUDE",
        # Filters on what an event is about (see routing.py).
        "SITES",
        "LOCALES",
        "SECTIONS",
        "CHANGED",
        "COLLECTIONS",
        # The API document of INCLUDE ["api"]: the viewset that builds it (settings only) and
        # the fields it keeps.
        "API_VIEWSET",
        "API_FIELDS",
        "OPTIONS",
        # The destination's own retry policy, overriding the globals of the same names.
        "RETRY_SCHEDULE",
        "MAX_ATTEMPTS",
    }
)

#: Deliveries to Python receivers (``@on``) are recorded under ``"python:<module>.<qualname>"``;
#: destination aliases may not start with it (check E023).
RECEIVER_PREFIX = "python:"


def is_receiver_alias(alias: str) -> bool:
    """Whether ``alias`` names a Python receiver (``@on``) rather than a destination."""
    return alias.startswith(RECEIVER_PREFIX)


#: The built-in fan-out destination of watching: one delivery per event that subscriptions may
#: concern; its worker records one delivery per recipient, named ``"watch:<user id>"``. Both
#: names are reserved (check E063).
WATCHERS_ALIAS = "watchers"
WATCH_PREFIX = "watch:"


def is_watch_alias(alias: str) -> bool:
    """Whether ``alias`` names the fan-out of watching or one recipient's notifications."""
    return alias == WATCHERS_ALIAS or alias.startswith(WATCH_PREFIX)


def is_builtin_alias(alias: str) -> bool:
    """Whether ``alias`` is one the package records deliveries under by itself (a Python
    receiver, watching): no destination may take it, and the registry builds its backend."""
    return is_receiver_alias(alias) or is_watch_alias(alias)


#: Retry-After values beyond this are capped, so a hostile or broken endpoint cannot park a
#: delivery for years.
MAX_RETRY_AFTER_SECONDS = 24 * 3600


class PublishHooksSettings:
    """Typed access to the global settings, with the defaults filled in."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.numbers = _bounded_numbers(raw)
        #: The parsed network settings (read at every request's address check).
        self.networks: dict[
            str, bool | tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
        ] = {}

    def __getattr__(self, name: str) -> Any:
        if name in DEFAULTS:
            if name in self.numbers:
                return self.numbers[name]
            return self.raw.get(name, DEFAULTS[name])
        raise AttributeError(name)

    def retry_delay(self, attempts_made: int) -> float:
        """Seconds to wait after the ``attempts_made``-th failed attempt."""
        schedule = list(self.RETRY_SCHEDULE) or [0]
        index = min(max(attempts_made, 1), len(schedule)) - 1
        return float(schedule[index])

    def retry_policy_with(
        self, schedule: Iterable[float] | None = None, max_attempts: int | None = None
    ) -> RetryPolicy:
        """A retry policy: a destination's own ``RETRY_SCHEDULE`` and ``MAX_ATTEMPTS`` where
        given, else the globals (:func:`wagtail_publish_hooks.registry.retry_policy` looks a
        destination's up)."""
        return RetryPolicy(
            schedule=tuple(schedule or self.RETRY_SCHEDULE) or (0.0,),
            max_attempts=int(max_attempts or self.MAX_ATTEMPTS),
        )

    def private_networks_allowed(
        self,
    ) -> bool | tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``True`` (everything allowed), ``False``, or the allowed networks."""
        return self._networks("ALLOW_PRIVATE_NETWORKS")

    def managed_private_networks_allowed(
        self,
    ) -> bool | tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """:meth:`private_networks_allowed` for the destinations managed in the admin."""
        return self._networks("MANAGED_ALLOW_PRIVATE_NETWORKS")

    def _networks(
        self, name: str
    ) -> bool | tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        if name not in self.networks:
            self.networks[name] = self._parse_networks(name)
        return self.networks[name]

    def _parse_networks(
        self, name: str
    ) -> bool | tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        value = getattr(self, name)
        if isinstance(value, bool):
            return value
        networks = []
        for cidr in as_list(value):
            try:
                networks.append(ipaddress.ip_network(str(cidr), strict=False))
            except ValueError:
                logger.error("%s: %r is not a network; ignored", name, cidr)
        return tuple(networks)


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and after how long, a destination's deliveries are tried again."""

    schedule: tuple[float, ...]
    max_attempts: int

    def delay(self, attempts_made: int) -> float:
        """Seconds to wait after the ``attempts_made``-th failed attempt (the last entry
        repeats)."""
        index = min(max(attempts_made, 1), len(self.schedule)) - 1
        return float(self.schedule[index])

    @property
    def span(self) -> float:
        """Seconds from the first attempt to the last, retries waiting their full delays."""
        return sum(self.delay(n) for n in range(1, self.max_attempts))


def _bounded_numbers(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The numeric globals as run time uses them: each within its bounds (``limits.py``).

    The checks refuse a value out of bounds (E015, E020, E048); should one reach run time
    anyway, it is taken to the nearest bound or replaced by its default, and logged, so that a
    worker never sleeps for years nor fails on an overflow.
    """
    numbers: dict[str, Any] = {}
    for key in SETTING_LIMITS:
        if key not in raw or key == "RETRY_SCHEDULE":
            continue
        if raw[key] is None and key == "DISABLE_AFTER_FAILING_FOR":
            numbers[key] = None  # never disabled for failing
            continue
        numbers[key], problem = setting_number(key, raw[key], DEFAULTS[key])
        if problem:
            logger.error("%s[%r]: %s", SETTING_NAME, key, problem)
    if "RETRY_SCHEDULE" in raw:
        schedule = bounded_schedule(raw["RETRY_SCHEDULE"], SETTING_NAME)
        numbers["RETRY_SCHEDULE"] = schedule or list(DEFAULTS["RETRY_SCHEDULE"])
    return numbers


def bounded_schedule(schedule: Any, where: str) -> list[int | float] | None:
    """A ``RETRY_SCHEDULE`` as run time uses it, each delay within its bounds; ``None`` (logged)
    when it is no list at all."""
    if not isinstance(schedule, list | tuple) or not schedule:
        logger.error("%s['RETRY_SCHEDULE'] is not a list; the default is used", where)
        return None
    bounded = []
    for delay in schedule:
        value, problem = setting_number("RETRY_SCHEDULE", delay, 0)
        if problem:
            logger.error("%s['RETRY_SCHEDULE']: %s", where, problem)
        bounded.append(value)
    return bounded


_suspensions: ContextVar[int] = ContextVar("wagtail_publish_hooks_suspensions", default=0)


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """Capture nothing inside the block (data migrations, imports, fixtures loading).

    Nests, and is local to the current thread or async task.
    """
    token = _suspensions.set(_suspensions.get() + 1)
    try:
        yield
    finally:
        _suspensions.reset(token)


def capture_enabled() -> bool:
    """Whether events are captured now: ``ENABLED`` and not inside :func:`suspended`."""
    return bool(get_settings().ENABLED) and _suspensions.get() == 0


def raw_settings() -> Mapping[str, Any]:
    value = getattr(django_settings, SETTING_NAME, {})
    return value if isinstance(value, Mapping) else {}


@functools.cache
def get_settings() -> PublishHooksSettings:
    return PublishHooksSettings(raw_settings())


def clear_caches() -> None:
    get_settings.cache_clear()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTING_NAME, "TASKS"):
        clear_caches()


def connect_setting_changed() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_on_setting_changed, dispatch_uid="wagtail_publish_hooks.conf")


def as_list(value: Any) -> list[Any]:
    """A string as a one-item list; any other iterable as a list; anything else in a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    return [value]
