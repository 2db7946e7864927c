"""System checks: every configuration mistake gets a stable id naming the alias and the key.

Ids are never reused; a retired id stays listed in ``docs/reference/checks.md``.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import math
import numbers
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from django.apps import apps
from django.core import checks
from django.utils.module_loading import import_string

from . import limits
from .conf import (
    DEFAULTS,
    DESTINATION_KEYS,
    RECEIVER_PREFIX,
    SETTING_NAME,
    is_receiver_alias,
    raw_settings,
)

if TYPE_CHECKING:
    from .backends.base import BaseBackend

ID_PREFIX = "wagtail_publish_hooks"

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

# Ids raised by backend modules rather than here, listed so that none is taken twice:
# E026 and W006, the Slack backend (``backends/slack.py``).
# E027, the Discord backend (``backends/discord.py``).
# E028 to E031 and W007, the email backend (``backends/email.py``).
# E032 and E033, the build hook backend (``backends/build_hook.py``).
# E034 to E036 and W008, the revalidation backend (``backends/revalidate.py``).
# E037 to E041 and W009, the frontend cache backend (``backends/frontend_cache.py``).
# E042 (MANAGED_ALLOW_PRIVATE_NETWORKS) and W018 (purge locations) are raised here.
# E045, ``BaseBackend.check_managed_options`` (``backends/base.py``) and its overrides.


#: Where the destination being checked is written: in settings, or in the admin's table.
SETTINGS_DESTINATIONS = f"{SETTING_NAME}['DESTINATIONS']"
MANAGED_DESTINATIONS = "wagtail_publish_hooks.ManagedDestination"
_destinations_path: ContextVar[str] = ContextVar(
    "wagtail_publish_hooks_destinations_path", default=SETTINGS_DESTINATIONS
)


def _path(alias: str | None = None, *keys: str) -> str:
    path = SETTING_NAME
    if alias is not None:
        path = f"{_destinations_path.get()}[{alias!r}]"
    for key in keys:
        path += f"[{key!r}]"
    return path


_Message = TypeVar("_Message", bound=checks.CheckMessage)


def _annotate(message: _Message, msg: str, keys: Iterable[str]) -> _Message:
    # The key path and the bare text, so that a form can put the message on the right field.
    message.setting_keys = tuple(keys)  # type: ignore[attr-defined]
    message.text = msg  # type: ignore[attr-defined]
    return message


def error(
    number: int,
    msg: str,
    *,
    alias: str | None = None,
    keys: Iterable[str] = (),
    hint: str | None = None,
    subject: str | None = None,
) -> checks.Error:
    """An error about a setting (``alias`` and ``keys``), or about ``subject`` if given."""
    keys = tuple(keys)
    where = subject if subject is not None else _path(alias, *keys)
    return _annotate(
        checks.Error(f"{where}: {msg}", hint=hint, id=f"{ID_PREFIX}.E{number:03d}"), msg, keys
    )


def warning(
    number: int,
    msg: str,
    *,
    alias: str | None = None,
    keys: Iterable[str] = (),
    hint: str | None = None,
) -> checks.Warning:
    keys = tuple(keys)
    return _annotate(
        checks.Warning(f"{_path(alias, *keys)}: {msg}", hint=hint, id=f"{ID_PREFIX}.W{number:03d}"),
        msg,
        keys,
    )


def _did_you_mean(key: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    return f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(sorted(known))}."


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# -- Helpers the backends use for their OPTIONS --------------------------------------------------


def check_callable_path(
    number: int, path: Any, *, alias: str, keys: Iterable[str]
) -> list[checks.CheckMessage]:
    """Error ``number`` unless ``path`` is the dotted path of an importable callable."""
    if not isinstance(path, str) or not path:
        return [error(number, "must be the dotted path of a callable.", alias=alias, keys=keys)]
    try:
        target = import_string(path)
    except ImportError as exc:
        return [error(number, f"{path!r} cannot be imported ({exc}).", alias=alias, keys=keys)]
    if not callable(target):
        return [error(number, f"{path!r} is not callable.", alias=alias, keys=keys)]
    return []


def check_url_option(
    alias: str, options: Mapping[str, Any], key: str = "URL", *, required: bool = True
) -> list[checks.CheckMessage]:
    keys = ("OPTIONS", key)
    value = options.get(key)
    if value in (None, ""):
        if required:
            return [error(11, "is required and missing.", alias=alias, keys=keys)]
        return []
    if not isinstance(value, str):
        return [error(12, "must be a URL string.", alias=alias, keys=keys)]
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return [error(12, "is not a valid URL.", alias=alias, keys=keys)]
    if parts.scheme not in ("http", "https") or not hostname:
        return [
            error(
                12,
                "must be an absolute http:// or https:// URL with a host.",
                alias=alias,
                keys=keys,
            )
        ]
    messages: list[checks.CheckMessage] = []
    if parts.username or parts.password:
        messages.append(
            error(
                13,
                "contains credentials; they would be logged by proxies and servers.",
                alias=alias,
                keys=keys,
                hint="Send credentials in a header (OPTIONS['HEADERS']) or use a signing secret.",
            )
        )
    if parts.scheme == "http" and hostname not in LOOPBACK_HOSTS:
        messages.append(
            warning(
                3,
                "uses plain http://; payloads and signatures travel unencrypted.",
                alias=alias,
                keys=keys,
            )
        )
    return messages


def check_secret_option(
    alias: str, options: Mapping[str, Any], key: str = "SECRET"
) -> list[checks.CheckMessage]:
    keys = ("OPTIONS", key)
    value = options.get(key)
    if value is None:
        return [
            warning(
                4,
                "is not set: requests are sent unsigned and consumers cannot verify them.",
                alias=alias,
                keys=keys,
                hint='Generate one with: python -c "import base64, os; '
                "print('whsec_' + base64.b64encode(os.urandom(24)).decode())\"",
            )
        ]
    secrets = [value] if isinstance(value, str) else value
    if not isinstance(secrets, list | tuple) or not secrets:
        return [
            error(
                14, "must be a secret string or a non-empty list of them.", alias=alias, keys=keys
            )
        ]
    for index, secret in enumerate(secrets):
        where = keys if isinstance(value, str) else (*keys, str(index))
        if not isinstance(secret, str) or not secret.startswith("whsec_"):
            return [
                error(
                    14,
                    "must start with 'whsec_' followed by base64 (Standard Webhooks format).",
                    alias=alias,
                    keys=where,
                )
            ]
        try:
            decoded = base64.b64decode(secret[len("whsec_") :] + "==", validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) < 16:
            return [
                error(
                    14,
                    "must be 'whsec_' followed by base64 of at least 16 random bytes.",
                    alias=alias,
                    keys=where,
                )
            ]
    return []


def check_headers_option(
    alias: str, options: Mapping[str, Any], key: str = "HEADERS", reserved: Iterable[str] = ()
) -> list[checks.CheckMessage]:
    keys = ("OPTIONS", key)
    value = options.get(key)
    if value is None:
        return []
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return [
            error(19, "must be a dict of header names to string values.", alias=alias, keys=keys)
        ]
    reserved_set = {name.lower() for name in reserved}
    clashes = sorted(name for name in value if name.lower() in reserved_set)
    if clashes:
        return [
            error(
                19,
                f"may not set {', '.join(clashes)}: the backend sets it.",
                alias=alias,
                keys=keys,
            )
        ]
    bad = sorted(name for name, v in value.items() if "\n" in v or "\r" in v or not name.strip())
    if bad:
        return [error(19, f"has an invalid header: {', '.join(bad)}.", alias=alias, keys=keys)]
    return []


def check_positive_number(
    alias: str | None,
    options: Mapping[str, Any],
    key: str,
    *,
    integer: bool = False,
    allow_zero: bool = False,
    in_options: bool = True,
    limit: limits.Limit | None = None,
) -> list[checks.CheckMessage]:
    """E015 (not a number of the right kind, or too small) or E048 (not finite, or above the
    bound) for a number: bounded by ``limit``, else by the package's table for the key
    (:mod:`wagtail_publish_hooks.limits`), else by ``integer`` and ``allow_zero`` alone."""
    keys = ("OPTIONS", key) if in_options else (key,)
    if key not in options:
        return []
    if limit is None:
        table = limits.OPTION_LIMITS if in_options else limits.SETTING_LIMITS
        limit = table.get(key) or limits.Limit(
            0, math.inf, integer=integer, above_minimum=not allow_zero, unit=""
        )
    return check_number(options[key], key, limit, alias=alias, keys=keys)


def check_number(
    value: Any,
    key: str,
    limit: limits.Limit,
    *,
    alias: str | None,
    keys: Iterable[str],
    kind_error: int = 15,
) -> list[checks.CheckMessage]:
    """Error ``kind_error`` (E015 unless told) when ``value`` is no number of the wanted kind or
    is below ``limit``; E048 when it is NaN, an infinity or above ``limit``."""
    try:
        limits.parse_number(key, value, limit)
    except limits.OutOfLimits as exc:
        number = 48 if exc.problem in (limits.NOT_FINITE, limits.TOO_HIGH) else kind_error
        return [error(number, f"{exc.requirement}.", alias=alias, keys=keys)]
    return []


# -- The checks -----------------------------------------------------------------------------------


def _check_delays(
    schedule: Any, *, alias: str | None, kind_error: int
) -> list[checks.CheckMessage]:
    """Each delay of a ``RETRY_SCHEDULE`` (the global's or a destination's) within the bounds."""
    messages: list[checks.CheckMessage] = []
    for index, delay in enumerate(schedule):
        messages += check_number(
            delay,
            "RETRY_SCHEDULE",
            limits.SETTING_LIMITS["RETRY_SCHEDULE"],
            alias=alias,
            keys=("RETRY_SCHEDULE", str(index)),
            kind_error=kind_error,
        )
    return messages


def check_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    from django.conf import settings

    if not hasattr(settings, SETTING_NAME):
        return []
    raw = getattr(settings, SETTING_NAME)
    if not isinstance(raw, Mapping):
        return [error(1, f"must be a dict, not {type(raw).__name__}.")]
    messages: list[checks.CheckMessage] = []
    for key in raw:
        if key not in DEFAULTS:
            messages.append(
                error(
                    2,
                    "is not a known setting.",
                    keys=(str(key),),
                    hint=_did_you_mean(key, DEFAULTS),
                )
            )
    messages += _check_globals(raw)
    messages += _check_managed_settings(raw)
    destinations = raw.get("DESTINATIONS", {})
    if not isinstance(destinations, Mapping):
        messages.append(error(3, "must be a dict of alias to destination.", keys=("DESTINATIONS",)))
        return messages
    for alias, config in destinations.items():
        messages += check_destination(alias, config)
    messages += _check_lease_against_timeouts(raw.get("LEASE_SECONDS"), destinations)
    return messages


#: The request timeout of the shipped HTTP backends when ``OPTIONS["TIMEOUT"]`` is not given.
DEFAULT_REQUEST_TIMEOUT = 15.0


def _check_lease_against_timeouts(
    lease: Any, destinations: Mapping[Any, Any]
) -> list[checks.CheckMessage]:
    """W017 and E049: a send that can last as long as the lease, or half of it.

    Before each send a worker confirms its claim and extends it by ``LEASE_SECONDS``, and it
    cuts the send's requests off before the claim runs out, keeping the end of it
    (``delivery.RECORD_SHARE``) to record the outcome. A destination whose send can take as
    long as the lease (E049) has its slower responses cut off, and a send the worker cannot
    cut (one that is not an HTTP request) could outlive its claim and be sent twice at once.
    Half the lease (W017) leaves a stalled worker little room.
    """
    if lease is None:
        lease = DEFAULTS["LEASE_SECONDS"]
    if not _is_number(lease) or lease <= 0:
        return []  # reported by the checks of the setting itself
    messages: list[checks.CheckMessage] = []
    for alias, config in destinations.items():
        if not isinstance(config, Mapping) or not isinstance(config.get("OPTIONS", {}), Mapping):
            continue
        messages += lease_against_send_time(str(alias), config, lease)
    return messages


def lease_against_send_time(
    alias: str, config: Mapping[str, Any], lease: float, *, managed: bool = False
) -> list[checks.CheckMessage]:
    """E049 or W017 (W022 for a destination managed in the admin) for one destination."""
    send, keys = worst_case_send_seconds(config)
    if send is None or send < lease / 2:
        return []
    hint = f"Set LEASE_SECONDS above {2 * send:g}, or lower TIMEOUT."
    if send >= lease:
        text = (
            f"a send may take {send:g} s, as long as a claim lasts (LEASE_SECONDS, "
            f"{lease:g} s): its requests are cut off before the claim runs out, so slower "
            "responses never count, and another worker could send it at the same time."
        )
    else:
        text = (
            f"a request may take {send:g} s, half of LEASE_SECONDS ({lease:g} s) or more: a "
            "request still running in the last quarter of the lease is cut off, and a worker "
            "that stalls during such a send could see its claim taken over."
        )
    if managed:
        token = _destinations_path.set(MANAGED_DESTINATIONS)
        try:
            return [warning(22, text, alias=alias, keys=keys, hint=hint)]
        finally:
            _destinations_path.reset(token)
    if send >= lease:
        return [error(49, text, alias=alias, keys=keys, hint=hint)]
    return [warning(17, text, alias=alias, keys=keys, hint=hint)]


def worst_case_send_seconds(config: Mapping[str, Any]) -> tuple[float | None, tuple[str, ...]]:
    """The longest one send to a destination can take, and the option keys it comes from.

    For the shipped HTTP backends: ``OPTIONS["TIMEOUT"]`` (the deadline of a whole request,
    connecting included), or the backend's default, plus Slack's ``MIN_INTERVAL`` (a send
    waits for its turn). ``None`` when nothing can be said (an option that is not a number).
    """
    options = config.get("OPTIONS", {})
    if not isinstance(options, Mapping):
        return None, ()
    backend = config.get("BACKEND")
    default = DEFAULT_REQUEST_TIMEOUT
    if isinstance(backend, str) and backend.startswith("wagtail_publish_hooks.backends."):
        default = BACKEND_REQUEST_TIMEOUTS.get(backend.rsplit(".", 1)[-1], default)
    timeout = options.get("TIMEOUT", default)
    if not _is_number(timeout) or not math.isfinite(timeout):
        return None, ()
    send = float(timeout)
    if backend == "wagtail_publish_hooks.backends.slack.SlackBackend":
        interval = options.get("MIN_INTERVAL", 1.0)
        if _is_number(interval) and math.isfinite(interval):
            send += float(interval)
    return send, ("OPTIONS", "TIMEOUT")


#: The shipped backends whose request timeout is not ``DEFAULT_REQUEST_TIMEOUT``.
BACKEND_REQUEST_TIMEOUTS = {"SlackBackend": 10.0}


def check_managed_send_times(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """W022: W017 and E049 for the destinations managed in the admin, as warnings (they are
    data). Nothing a row names is imported."""
    rows = _managed_destination_rows()
    if not rows:
        return []
    raw = raw_settings()
    lease = raw.get("LEASE_SECONDS", DEFAULTS["LEASE_SECONDS"])
    if not _is_number(lease) or lease <= 0:
        return []
    in_settings = raw.get("DESTINATIONS")
    taken = set(in_settings) if isinstance(in_settings, Mapping) else set()
    messages: list[checks.CheckMessage] = []
    for row in rows:
        if row.alias in taken or not isinstance(row.options, Mapping):
            continue
        config = {"BACKEND": row.backend, "OPTIONS": row.options}
        messages += lease_against_send_time(row.alias, config, lease, managed=True)
    return messages


def check_destination(
    alias: Any, config: Any, *, managed: bool = False
) -> list[checks.CheckMessage]:
    """Every mistake in one destination: its alias, keys, backend and the backend's OPTIONS.

    The system checks run it on each destination of the settings, and on each one managed in
    the admin (``managed``: messages then name ``wagtail_publish_hooks.ManagedDestination``
    rather than the setting); the admin's form runs it on what was entered. Each message
    carries ``setting_keys``, the keys it is about (``("OPTIONS", "URL")``), and ``text``, the
    message without the path.
    """
    token = _destinations_path.set(MANAGED_DESTINATIONS if managed else SETTINGS_DESTINATIONS)
    try:
        return _check_destination(alias, config)
    finally:
        _destinations_path.reset(token)


def _check_globals(raw: Mapping[str, Any]) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if "ENABLED" in raw and not isinstance(raw["ENABLED"], bool):
        messages.append(error(16, "must be True or False.", keys=("ENABLED",)))
    for key in ("MAX_ATTEMPTS", "RETENTION_DAYS", "BATCH_SIZE", "LEASE_SECONDS", "CONCURRENCY"):
        messages += check_positive_number(None, raw, key, integer=True, in_options=False)
    messages += check_positive_number(None, raw, "MAX_RUN_SECONDS", in_options=False)
    messages += check_positive_number(
        None, raw, "DESTINATIONS_REFRESH_SECONDS", allow_zero=True, in_options=False
    )
    if "RETRY_SCHEDULE" in raw:
        schedule = raw["RETRY_SCHEDULE"]
        if (
            not isinstance(schedule, list | tuple)
            or not schedule
            or not all(_is_number(item) and item >= 0 for item in schedule)
        ):
            messages.append(
                error(
                    20,
                    "must be a non-empty list of delays in seconds, each zero or more.",
                    keys=("RETRY_SCHEDULE",),
                )
            )
        else:
            messages += _check_delays(schedule, alias=None, kind_error=20)
    if "ALLOW_PRIVATE_NETWORKS" in raw:
        messages += _check_private_networks(raw["ALLOW_PRIVATE_NETWORKS"])
    if "MANAGED_ALLOW_PRIVATE_NETWORKS" in raw:
        messages += _check_private_networks(
            raw["MANAGED_ALLOW_PRIVATE_NETWORKS"], key="MANAGED_ALLOW_PRIVATE_NETWORKS", number=42
        )
    for key in ("TASK_BACKEND", "QUEUE_NAME"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key]):
            messages.append(error(18, "must be a non-empty string.", keys=(key,)))
    for key in ("DISABLE_AFTER_FAILING_FOR", "OPERATIONAL_COALESCE_SECONDS"):
        if key in raw and not (key == "DISABLE_AFTER_FAILING_FOR" and raw[key] is None):
            messages += check_number(
                raw[key],
                key,
                limits.SETTING_LIMITS[key],
                alias=None,
                keys=(key,),
                kind_error=53,
            )
    return messages


def _check_retry_policy(alias: str, config: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """E052 (E048 above the bounds): a destination's ``RETRY_SCHEDULE`` or ``MAX_ATTEMPTS``,
    held to the bounds of the globals of the same names. W023: its retries outlast
    ``DISABLE_AFTER_FAILING_FOR``."""
    messages: list[checks.CheckMessage] = []
    if config.get("MAX_ATTEMPTS") is not None:
        messages += check_number(
            config["MAX_ATTEMPTS"],
            "MAX_ATTEMPTS",
            limits.SETTING_LIMITS["MAX_ATTEMPTS"],
            alias=alias,
            keys=("MAX_ATTEMPTS",),
            kind_error=52,
        )
    schedule = config.get("RETRY_SCHEDULE")
    if schedule is not None:
        if isinstance(schedule, str) or not isinstance(schedule, list | tuple) or not schedule:
            messages.append(
                error(
                    52,
                    "must be a non-empty list of delays in seconds, each zero or more.",
                    alias=alias,
                    keys=("RETRY_SCHEDULE",),
                )
            )
        else:
            messages += _check_delays(schedule, alias=alias, kind_error=52)
    if messages:
        return messages
    return _check_retries_against_disabling(alias, config)


def _check_retries_against_disabling(
    alias: str, config: Mapping[str, Any]
) -> list[checks.CheckMessage]:
    from .conf import RetryPolicy

    raw = raw_settings()
    window = raw.get("DISABLE_AFTER_FAILING_FOR", DEFAULTS["DISABLE_AFTER_FAILING_FOR"])
    if window is None or not _is_number(window) or not math.isfinite(window):
        return []
    schedule = config.get("RETRY_SCHEDULE") or raw.get("RETRY_SCHEDULE")
    attempts = config.get("MAX_ATTEMPTS") or raw.get("MAX_ATTEMPTS")
    try:
        policy = RetryPolicy(
            schedule=tuple(
                limits.parse_number(
                    "RETRY_SCHEDULE", delay, limits.SETTING_LIMITS["RETRY_SCHEDULE"]
                )
                for delay in (schedule or DEFAULTS["RETRY_SCHEDULE"])
            ),
            max_attempts=int(
                limits.parse_number(
                    "MAX_ATTEMPTS",
                    attempts or DEFAULTS["MAX_ATTEMPTS"],
                    limits.SETTING_LIMITS["MAX_ATTEMPTS"],
                )
            ),
        )
    except (limits.OutOfLimits, TypeError):
        return []  # reported by the checks of the globals
    if policy.span <= window:
        return []
    return [
        warning(
            23,
            f"its retries span {policy.span:g} s, longer than DISABLE_AFTER_FAILING_FOR "
            f"({window:g} s): a destination that stays down is disabled before a delivery's "
            "last attempt, which then fails at once.",
            alias=alias,
            keys=("RETRY_SCHEDULE",),
            hint="Shorten the retry schedule or MAX_ATTEMPTS, or raise "
            "DISABLE_AFTER_FAILING_FOR (None: never disabled for failing).",
        )
    ]


def _check_private_networks(
    value: Any, *, key: str = "ALLOW_PRIVATE_NETWORKS", number: int = 17
) -> list[checks.CheckMessage]:
    keys = (key,)
    if isinstance(value, bool):
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return [
            error(number, "must be True, False, or a list of networks in CIDR notation.", keys=keys)
        ]
    for item in value:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            return [error(number, f"{item!r} is not a network in CIDR notation.", keys=keys)]
    return []


def _check_destination(alias: Any, config: Any) -> list[checks.CheckMessage]:
    if not isinstance(alias, str) or not alias or len(alias) > 100:
        return [
            error(
                3,
                f"destination alias {alias!r} must be a string of 1 to 100 characters.",
                keys=("DESTINATIONS",),
            )
        ]
    if not isinstance(config, Mapping):
        return [error(3, "must be a dict with a 'BACKEND' key.", alias=alias)]
    messages: list[checks.CheckMessage] = []
    if is_receiver_alias(alias):
        messages.append(
            error(
                23,
                f"destination aliases may not start with {RECEIVER_PREFIX!r}: deliveries to "
                "Python receivers are recorded under such names. This destination is ignored.",
                alias=alias,
            )
        )
    for key in config:
        if key not in DESTINATION_KEYS:
            messages.append(
                error(
                    7,
                    "is not a known destination key.",
                    alias=alias,
                    keys=(str(key),),
                    hint=_did_you_mean(key, DESTINATION_KEYS),
                )
            )
    messages += _check_events(alias, config.get("EVENTS"), "EVENTS" in config)
    messages += _check_models(alias, config.get("MODELS"), "MODELS" in config)
    if "EXCLUDE_ALIASES" in config and not isinstance(config["EXCLUDE_ALIASES"], bool):
        messages.append(error(21, "must be True or False.", alias=alias, keys=("EXCLUDE_ALIASES",)))
    messages += _check_include(alias, config.get("INCLUDE"), "INCLUDE" in config)
    messages += _check_retry_policy(alias, config)

    backend_class = _check_backend(alias, config, messages)
    options = config.get("OPTIONS", {})
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        messages.append(error(10, "must be a dict.", alias=alias, keys=("OPTIONS",)))
        return messages
    if backend_class is None:
        return messages
    if _destinations_path.get() == MANAGED_DESTINATIONS:
        # Options that name code are refused before any check could import them: the
        # backend's own checks see the rest only.
        trust = _check_managed_options(backend_class, alias, options)
        messages += trust
        where: list[tuple[str, ...]] = [getattr(m, "setting_keys", ()) for m in trust]
        # A message about OPTIONS as a whole (a broken check) leaves the backend's checks none.
        flagged = {keys[1] if len(keys) > 1 else None for keys in where}
        if None in flagged:
            return messages
        options = {key: value for key, value in options.items() if key not in flagged}
    known = backend_class.option_keys
    if backend_class.supports_coalescing:
        # Every coalescing backend takes the merging window.
        if known is not None:
            known = known | {"COALESCE_SECONDS"}
        messages += check_positive_number(alias, options, "COALESCE_SECONDS", allow_zero=True)
    if known is not None:
        for key in options:
            if key not in known:
                messages.append(
                    error(
                        10,
                        f"is not an option of {backend_class.__name__}.",
                        alias=alias,
                        keys=("OPTIONS", str(key)),
                        hint=_did_you_mean(key, known),
                    )
                )
    try:
        messages += backend_class.check_options(alias, options)
    except Exception as exc:  # a broken custom backend check must not hide the others
        messages.append(
            error(
                6,
                f"{backend_class.__name__}.check_options() raised {type(exc).__name__}.",
                alias=alias,
                keys=("BACKEND",),
            )
        )
    return messages


def _check_backend(
    alias: str, config: Mapping[str, Any], messages: list
) -> type[BaseBackend] | None:
    from .backends.base import BaseBackend

    path = config.get("BACKEND")
    if not path or not isinstance(path, str):
        messages.append(
            error(
                4,
                "is required: the dotted path of a backend class.",
                alias=alias,
                keys=("BACKEND",),
                hint="For example 'wagtail_publish_hooks.backends.webhook.WebhookBackend'.",
            )
        )
        return None
    if _destinations_path.get() == MANAGED_DESTINATIONS:
        return _check_managed_backend(alias, path, messages)
    try:
        backend_class = import_string(path)
    except ImportError as exc:
        messages.append(
            error(5, f"{path!r} cannot be imported ({exc}).", alias=alias, keys=("BACKEND",))
        )
        return None
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseBackend)):
        messages.append(
            error(
                6,
                f"{path!r} is not a subclass of wagtail_publish_hooks.backends.base.BaseBackend.",
                alias=alias,
                keys=("BACKEND",),
            )
        )
        return None
    return backend_class


def is_known_event_pattern(pattern: str) -> bool:
    """A built-in event type or pattern, or a well-formed custom one (``"shop.order_shipped"``,
    ``"shop.*"``). A typo in a reserved namespace (``"page.publish"``) is not known."""
    from .custom_events import is_custom_event_pattern
    from .events import is_known_event_pattern as is_builtin_event_pattern

    return is_builtin_event_pattern(pattern) or is_custom_event_pattern(pattern)


def _unknown_event_hint(pattern: str) -> str | None:
    from .custom_events import is_reserved
    from .events import BUILTIN_EVENT_TYPES

    if is_reserved(pattern):
        return _did_you_mean(pattern, BUILTIN_EVENT_TYPES)
    return (
        "Custom event types are dotted names of lowercase letters, digits, '_' and '-', such "
        "as 'shop.order_shipped'; patterns end in '.*'."
    )


def _check_events(alias: str, value: Any, present: bool) -> list[checks.CheckMessage]:
    if not present:
        return []
    keys = ("EVENTS",)
    if (
        isinstance(value, str)
        or not isinstance(value, list | tuple)
        or not all(isinstance(item, str) for item in value)
    ):
        return [error(8, "must be a list of event types.", alias=alias, keys=keys)]
    if not value:
        return [warning(5, "is empty: this destination receives nothing.", alias=alias, keys=keys)]
    return [
        error(
            8,
            f"{item!r} is not a known event type.",
            alias=alias,
            keys=keys,
            hint=_unknown_event_hint(item),
        )
        for item in value
        if not is_known_event_pattern(item)
    ]


def _check_include(alias: str, value: Any, present: bool) -> list[checks.CheckMessage]:
    from .includes import KNOWN_INCLUDES

    if not present:
        return []
    keys = ("INCLUDE",)
    if (
        isinstance(value, str)
        or not isinstance(value, list | tuple)
        or not all(isinstance(item, str) for item in value)
    ):
        return [error(22, "must be a list of names, such as ['api'].", alias=alias, keys=keys)]
    return [
        error(
            22,
            f"{item!r} is not something a destination can include.",
            alias=alias,
            keys=keys,
            hint=_did_you_mean(item, KNOWN_INCLUDES),
        )
        for item in value
        if item not in KNOWN_INCLUDES
    ]


def _check_models(alias: str, value: Any, present: bool) -> list[checks.CheckMessage]:
    if not present:
        return []
    keys = ("MODELS",)
    if (
        isinstance(value, str)
        or not isinstance(value, list | tuple)
        or not all(isinstance(item, str) for item in value)
    ):
        return [
            error(
                9, "must be a list of model labels such as 'blog.BlogPage'.", alias=alias, keys=keys
            )
        ]
    if not value:
        return [warning(5, "is empty: this destination receives nothing.", alias=alias, keys=keys)]
    messages: list[checks.CheckMessage] = []
    for label in value:
        try:
            apps.get_model(label)
        except (LookupError, ValueError):
            messages.append(
                error(
                    9,
                    f"{label!r} is not an installed model ('app_label.Model').",
                    alias=alias,
                    keys=keys,
                )
            )
    return messages


def check_task_backend(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    from .tasks import get_task_backend, task_backend_is_immediate

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
    if type(backend).__module__.split(".")[0] == "django_tasks_rq":
        messages.extend(_check_rq_job_class(alias))
    if type(backend).__module__.split(".")[0] == "django_tasks_fennel":
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
    from django.conf import settings as django_settings

    rq_settings = getattr(django_settings, "RQ", None)
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
            if _is_number(timeout) and math.isfinite(timeout):
                timeouts.append(timeout)
    if not _is_number(max_run):
        return messages  # reported by the checks of the setting itself
    shortest_run = max_run + max(timeouts)
    for name, limit in limits_.items():
        if _is_number(limit) and 0 < limit <= shortest_run:
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


def check_receivers(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The ``@on`` receivers: their model labels are installed models, their types are known."""
    from .receivers import registered_receivers

    messages: list[checks.CheckMessage] = []
    for receiver in registered_receivers():
        subject = f"Receiver {receiver.name!r}"
        for spec in receiver.models or ():
            if not isinstance(spec, str):
                continue
            try:
                apps.get_model(spec)
            except (LookupError, ValueError):
                messages.append(
                    error(
                        24,
                        f"{spec!r} is not an installed model ('app_label.Model'); the receiver "
                        "would never be called for it.",
                        subject=subject,
                        hint=_model_hint(spec),
                    )
                )
        for pattern in receiver.events:
            if not is_known_event_pattern(pattern):
                messages.append(
                    error(
                        25,
                        f"{pattern!r} is not a known event type.",
                        subject=subject,
                        hint=_unknown_event_hint(pattern),
                    )
                )
    return messages


def _model_hint(label: str) -> str | None:
    known = [model._meta.label for model in apps.get_models()]
    close = difflib.get_close_matches(label, known, n=1)
    return f"Did you mean {close[0]!r}?" if close else None


def check_managed_destinations(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The destinations managed in the admin: valid, and not shadowed by one in settings.

    Their mistakes are warnings, not errors: they are data, and must not stop ``migrate`` or a
    deploy. A row that names code (W020) is never built. A row whose secrets cannot be
    decrypted (E047) is an error: the keys that encrypted them are gone from the settings,
    which is the operator's to fix. Nothing is reported while the table cannot be read (before
    ``migrate``). Nothing a row names is imported.
    """
    from .encryption import DecryptionError

    rows = _managed_destination_rows()
    if not rows:
        return []
    raw = raw_settings().get("DESTINATIONS")
    in_settings = set(raw) if isinstance(raw, Mapping) else set()
    messages: list[checks.CheckMessage] = []
    for row in rows:
        if row.alias in in_settings:
            messages.append(managed_alias_taken(row.alias))
            continue
        trust = check_managed_trust(row.alias, row.backend, row.options)
        if trust:
            messages += [_as_w020(row, message) for message in trust]
            continue
        try:
            config = row.to_config()
        except DecryptionError:
            messages.append(undecryptable(row.alias))
            continue
        for message in check_destination(row.alias, config, managed=True):
            messages.append(message if message.level < checks.ERROR else _as_w014(row, message))
    messages += _check_encryption_current(rows)
    return messages


def check_managed_trust(alias: str, backend: Any, options: Any) -> list[checks.CheckMessage]:
    """E044 and E045: a destination managed in the admin that names code, found by comparing
    strings and keys only (nothing it names is imported or called)."""
    token = _destinations_path.set(MANAGED_DESTINATIONS)
    try:
        messages: list[checks.CheckMessage] = []
        if not isinstance(backend, str) or not backend:
            return [error(4, "is required.", alias=alias, keys=("BACKEND",))]
        backend_class = _check_managed_backend(alias, backend, messages)
        if backend_class is None or not isinstance(options, Mapping):
            return messages
        return _check_managed_options(backend_class, alias, options)
    finally:
        _destinations_path.reset(token)


def _check_managed_backend(alias: str, path: str, messages: list) -> type[BaseBackend] | None:
    from .registry import managed_backend_class, managed_backend_paths

    backend_class = managed_backend_class(path)
    if backend_class is None:
        messages.append(
            error(
                44,
                f"{path!r} is not a backend that destinations managed in the admin may use.",
                alias=alias,
                keys=("BACKEND",),
                hint="Choose one of: "
                + ", ".join(managed_backend_paths())
                + ". The operator may allow others in WAGTAIL_PUBLISH_HOOKS['MANAGED_BACKENDS'].",
            )
        )
    return backend_class


def _check_managed_options(
    backend_class: type[BaseBackend], alias: str, options: Mapping[str, Any]
) -> list[checks.CheckMessage]:
    try:
        return list(backend_class.check_managed_options(alias, options))
    except Exception as exc:  # a broken custom backend: refuse rather than trust
        return [
            error(
                45,
                f"{backend_class.__name__}.check_managed_options() raised {type(exc).__name__}.",
                alias=alias,
                keys=("OPTIONS",),
            )
        ]


def undecryptable(alias: str) -> checks.CheckMessage:
    """E047: the secrets of a destination managed in the admin cannot be decrypted."""
    token = _destinations_path.set(MANAGED_DESTINATIONS)
    try:
        return error(
            47,
            "its secrets cannot be decrypted with the configured keys; the destination is not "
            "used until they can be, or until they are entered again in the admin.",
            alias=alias,
            hint="Put the key that encrypted them back: the previous SECRET_KEY into "
            "SECRET_KEY_FALLBACKS, or the previous key into "
            "WAGTAIL_PUBLISH_HOOKS['ENCRYPTION_KEYS'] (after the current one).",
        )
    finally:
        _destinations_path.reset(token)


def _as_w020(row: Any, message: checks.CheckMessage) -> checks.CheckMessage:
    return _quoted_as_warning(
        20,
        row,
        message,
        "The destination names code the admin may not name: it is never built nor delivered to.",
        hint="Fix or delete it in the admin, or define it in settings.",
    )


def _check_encryption_current(rows: list[Any]) -> list[checks.CheckMessage]:
    """W021: secrets stored in plaintext, or under a key that no longer encrypts."""
    from .encryption import encrypted_values, is_encrypted, map_secret_values, under_current_key
    from .registry import secret_option_rule

    stale = []
    for row in rows:
        values = [*(row.secrets or []), *encrypted_values(row.options or {})]
        plain_options: list[Any] = []

        def note(value: Any, found: list[Any] = plain_options) -> None:
            if not is_encrypted(value):
                found.append(value)

        map_secret_values(row.options or {}, secret_option_rule(row.backend), note)
        plaintext = bool(plain_options) or any(not is_encrypted(v) for v in row.secrets or [])
        if plaintext or not all(under_current_key(value) for value in values):
            stale.append(row.alias)
    if not stale:
        return []
    return [
        warning(
            21,
            f"the secrets of {len(stale)} destination(s) managed in the admin "
            f"({', '.join(map(repr, stale[:10]))}) are not encrypted with the current key.",
            keys=("ENCRYPTION_KEYS",),
            hint="Run 'manage.py publish_hooks reencrypt'.",
        )
    ]


def _check_managed_settings(raw: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """E046: ``MANAGED_BACKENDS`` and ``ENCRYPTION_KEYS``."""
    from cryptography.fernet import Fernet

    from .backends.base import BaseBackend

    messages: list[checks.CheckMessage] = []
    value = raw.get("MANAGED_BACKENDS")
    keys = ("MANAGED_BACKENDS",)
    if value is not None:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            messages.append(error(46, "must be a list of dotted paths.", keys=keys))
        else:
            for path in value:
                if not isinstance(path, str) or not path:
                    messages.append(error(46, f"{path!r} is not a dotted path.", keys=keys))
                    continue
                try:
                    backend_class = import_string(path)
                except ImportError as exc:
                    messages.append(error(46, f"{path!r} cannot be imported ({exc}).", keys=keys))
                    continue
                if not (isinstance(backend_class, type) and issubclass(backend_class, BaseBackend)):
                    messages.append(
                        error(
                            46,
                            f"{path!r} is not a subclass of "
                            "wagtail_publish_hooks.backends.base.BaseBackend.",
                            keys=keys,
                        )
                    )
    value = raw.get("ENCRYPTION_KEYS")
    keys = ("ENCRYPTION_KEYS",)
    if value is not None:
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            messages.append(
                error(
                    46,
                    "must be None or a non-empty list of Fernet keys, the one that encrypts first.",
                    keys=keys,
                    hint='Generate one with: python -c "from cryptography.fernet import '
                    'Fernet; print(Fernet.generate_key().decode())"',
                )
            )
        else:
            for index, key in enumerate(value):
                try:
                    Fernet(key.encode() if isinstance(key, str) else key)
                except (ValueError, TypeError, AttributeError):
                    # Never the value: it is a key.
                    messages.append(
                        error(
                            46,
                            f"item {index} is not a Fernet key (32 url-safe base64-encoded bytes).",
                            keys=keys,
                        )
                    )
    return messages


def _as_w014(row: Any, message: checks.CheckMessage) -> checks.CheckMessage:
    return _quoted_as_warning(
        14, row, message, "The destination cannot deliver until it is fixed in the admin."
    )


def _quoted_as_warning(
    number: int, row: Any, message: checks.CheckMessage, consequence: str, hint: Any = None
) -> checks.CheckMessage:
    """A check message about a stored row, quoted in a warning: the table's contents must never
    stop ``migrate`` or a deploy."""
    token = _destinations_path.set(MANAGED_DESTINATIONS)
    try:
        return warning(
            number,
            f"{getattr(message, 'text', message.msg)} ({message.id}) {consequence}",
            alias=row.alias,
            keys=getattr(message, "setting_keys", ()),
            hint=hint if hint is not None else message.hint,
        )
    finally:
        _destinations_path.reset(token)


def managed_alias_taken(alias: str) -> checks.CheckMessage:
    """The alias of a destination managed in the admin is also one in settings."""
    token = _destinations_path.set(MANAGED_DESTINATIONS)
    try:
        return warning(
            13,
            "has the alias of a destination in WAGTAIL_PUBLISH_HOOKS['DESTINATIONS']; the "
            "destination of the settings is used, this one is ignored.",
            alias=alias,
            hint="Rename or delete one of the two.",
        )
    finally:
        _destinations_path.reset(token)


def _managed_destination_rows() -> list[Any]:
    from django.db import connections, router

    from .models import ManagedDestination

    using = router.db_for_read(ManagedDestination)
    try:
        connection = connections[using]
        if ManagedDestination._meta.db_table not in connection.introspection.table_names():
            return []
        return list(ManagedDestination.objects.using(using).order_by("alias"))
    except Exception:  # no database at hand (yet): nothing to check
        return []


FRONTEND_CACHE_BACKEND = "wagtail_publish_hooks.backends.frontend_cache.FrontendCacheBackend"


def check_purge_locations(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """W018: an HTTP purge backend (``HTTPBackend``) used by a frontend-cache destination has
    its ``LOCATION`` on a literal address (or ``localhost``) that the destination's address
    policy refuses: every purge through it would be refused.

    A host name is not looked up here; only what the setting itself says is judged.
    """
    from .http import managed_policy, settings_policy

    messages: list[checks.CheckMessage] = []
    raw = raw_settings().get("DESTINATIONS")
    in_settings = raw if isinstance(raw, Mapping) else {}
    for alias, config in in_settings.items():
        if not isinstance(config, Mapping) or not _is_frontend_cache(config.get("BACKEND")):
            continue
        options = config.get("OPTIONS")
        option = options.get("BACKENDS") if isinstance(options, Mapping) else None
        messages += _refused_purge_locations(str(alias), option, settings_policy())
    token = _destinations_path.set(MANAGED_DESTINATIONS)
    try:
        for row in _managed_destination_rows():
            if row.alias in in_settings or row.backend != FRONTEND_CACHE_BACKEND:
                continue  # a shadowed row is reported by W013
            if not isinstance(row.options, Mapping):
                continue
            option = row.options.get("BACKENDS")
            if isinstance(option, Mapping):
                continue  # named classes: refused outright for a managed destination
            messages += _refused_purge_locations(row.alias, option, managed_policy())
    finally:
        _destinations_path.reset(token)
    return messages


def _is_frontend_cache(path: Any) -> bool:
    if not isinstance(path, str):
        return False
    try:
        from .backends.frontend_cache import FrontendCacheBackend

        backend_class = import_string(path)
    except ImportError:
        return False
    return isinstance(backend_class, type) and issubclass(backend_class, FrontendCacheBackend)


def _purge_backend_configs(option: Any) -> dict[str, Any]:
    """The Wagtail purge backend configurations a destination's ``BACKENDS`` stands for."""
    from django.conf import settings as django_settings

    if isinstance(option, Mapping):
        return dict(option)
    configured = getattr(django_settings, "WAGTAILFRONTENDCACHE", None)
    if configured is None:
        location = getattr(django_settings, "WAGTAILFRONTENDCACHE_LOCATION", None)
        if location is None:
            return {}
        configured = {
            "default": {
                "BACKEND": "wagtail.contrib.frontend_cache.backends.HTTPBackend",
                "LOCATION": location,
            }
        }
    if not isinstance(configured, Mapping):
        return {}
    if isinstance(option, list | tuple):
        return {name: configured[name] for name in option if name in configured}
    return dict(configured)


def _literal_address(location: Any) -> Any:
    """The address a ``LOCATION`` names literally (``localhost`` as 127.0.0.1), else ``None``."""
    if not isinstance(location, str):
        return None
    try:
        host = urlsplit(location).hostname
    except ValueError:
        return None
    if not host:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _refused_purge_locations(alias: str, option: Any, policy: Any) -> list[checks.CheckMessage]:
    from wagtail.contrib.frontend_cache.backends.http import HTTPBackend

    messages: list[checks.CheckMessage] = []
    for name, config in _purge_backend_configs(option).items():
        if not isinstance(config, Mapping) or not isinstance(config.get("BACKEND"), str):
            continue  # reported by E037
        try:
            backend_class = import_string(config["BACKEND"])
        except ImportError:
            continue  # reported by E037
        if not (isinstance(backend_class, type) and issubclass(backend_class, HTTPBackend)):
            continue
        address = _literal_address(config.get("LOCATION"))
        kind = policy.refusal(address) if address is not None else None
        if kind is None:
            continue
        messages.append(
            warning(
                18,
                f"purge backend {name!r} has its LOCATION on a {kind} address, which "
                f"{policy.setting} does not allow: every purge through it will be refused.",
                alias=alias,
                keys=("OPTIONS", "BACKENDS"),
                hint=(
                    f"Add the cache's network to {policy.setting}"
                    + (
                        " (a metadata address only as a network that contains it)."
                        if kind == "metadata"
                        else ", such as ['127.0.0.0/8'] for a cache on this machine."
                    )
                ),
            )
        )
    return messages


#: The SQLite options recommended for a database the worker writes to beside the web processes.
SQLITE_OPTIONS = {"transaction_mode": "IMMEDIATE", "timeout": 20}


def check_sqlite_transactions(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A SQLite database that the worker writes to beside the editors' publishes should begin
    its transactions ``IMMEDIATE`` and wait for the lock: in the default (deferred) mode, a
    publish transaction that has read cannot take the write lock while the worker holds it,
    and SQLite fails it at once with "database is locked" instead of waiting."""
    from django.db import connections, router

    from .models import Event
    from .tasks import get_task_backend, task_backend_is_immediate

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


def register() -> None:
    checks.register(check_settings, "wagtail_publish_hooks")
    checks.register(check_managed_destinations, "wagtail_publish_hooks")
    checks.register(check_managed_send_times, "wagtail_publish_hooks")
    checks.register(check_receivers, "wagtail_publish_hooks")
    checks.register(check_task_backend, "wagtail_publish_hooks")
    checks.register(check_purge_locations, "wagtail_publish_hooks")
    checks.register(check_sqlite_transactions, "wagtail_publish_hooks")
