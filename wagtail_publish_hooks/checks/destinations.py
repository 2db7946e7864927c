"""The checks of one destination, defined in settings or managed in the admin: its alias, keys,
backend and the backend's ``OPTIONS``. The admin's destination form runs them too."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.core import checks
from django.utils.module_loading import import_string

from ..backends.base import BaseBackend
from ..conf import (
    DEFAULTS,
    DESTINATION_KEYS,
    RECEIVER_PREFIX,
    WATCH_PREFIX,
    WATCHERS_ALIAS,
    RetryPolicy,
    is_receiver_alias,
    is_watch_alias,
    raw_settings,
)
from ..custom_events import is_custom_event_pattern, is_reserved
from ..events import BUILTIN_EVENT_TYPES
from ..events import is_known_event_pattern as is_builtin_event_pattern
from ..includes import KNOWN_INCLUDES
from ..limits import SETTING_LIMITS, OutOfLimits, parse_number
from ..registry import managed_backend_class, managed_backend_paths
from ..validation import (
    about_managed,
    backend_not_managed,
    check_number,
    check_positive_number,
    did_you_mean,
    error,
    is_about_managed,
    is_number,
    managed_option_problems,
    warning,
)
from .api import check_api_projection
from .filters import check_filters


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
    with about_managed(managed):
        return _check_destination(alias, config)


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
    if is_watch_alias(alias):
        messages.append(
            error(
                63,
                f"the destination alias {WATCHERS_ALIAS!r} and aliases starting with "
                f"{WATCH_PREFIX!r} are reserved: watching records its notifications under "
                "such names. This destination is ignored.",
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
                    hint=did_you_mean(key, DESTINATION_KEYS),
                )
            )
    messages += _check_events(alias, config.get("EVENTS"), "EVENTS" in config)
    messages += _check_models(alias, config.get("MODELS"), "MODELS" in config)
    if "EXCLUDE_ALIASES" in config and not isinstance(config["EXCLUDE_ALIASES"], bool):
        messages.append(error(21, "must be True or False.", alias=alias, keys=("EXCLUDE_ALIASES",)))
    messages += _check_include(alias, config.get("INCLUDE"), "INCLUDE" in config)
    messages += check_filters(alias, config)
    messages += check_api_projection(alias, config)
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
    if is_about_managed():
        # Options that name code are refused before any check could import them: the
        # backend's own checks see the rest only.
        trust = managed_option_problems(backend_class, alias, options)
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
                        hint=did_you_mean(key, known),
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
    if is_about_managed():
        # Compared with the registry's strings before anything is imported.
        managed_class = managed_backend_class(path)
        if managed_class is None:
            messages.append(backend_not_managed(alias, path, managed_backend_paths()))
        return managed_class
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


def check_delays(schedule: Any, *, alias: str | None, kind_error: int) -> list[checks.CheckMessage]:
    """Each delay of a ``RETRY_SCHEDULE`` (the global's or a destination's) within the bounds."""
    messages: list[checks.CheckMessage] = []
    for index, delay in enumerate(schedule):
        messages += check_number(
            delay,
            "RETRY_SCHEDULE",
            SETTING_LIMITS["RETRY_SCHEDULE"],
            alias=alias,
            keys=("RETRY_SCHEDULE", str(index)),
            kind_error=kind_error,
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
            SETTING_LIMITS["MAX_ATTEMPTS"],
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
            messages += check_delays(schedule, alias=alias, kind_error=52)
    if messages:
        return messages
    return _check_retries_against_disabling(alias, config)


def _check_retries_against_disabling(
    alias: str, config: Mapping[str, Any]
) -> list[checks.CheckMessage]:
    raw = raw_settings()
    window = raw.get("DISABLE_AFTER_FAILING_FOR", DEFAULTS["DISABLE_AFTER_FAILING_FOR"])
    if window is None or not is_number(window) or not math.isfinite(window):
        return []
    schedule = config.get("RETRY_SCHEDULE") or raw.get("RETRY_SCHEDULE")
    attempts = config.get("MAX_ATTEMPTS") or raw.get("MAX_ATTEMPTS")
    try:
        policy = RetryPolicy(
            schedule=tuple(
                parse_number("RETRY_SCHEDULE", delay, SETTING_LIMITS["RETRY_SCHEDULE"])
                for delay in (schedule or DEFAULTS["RETRY_SCHEDULE"])
            ),
            max_attempts=int(
                parse_number(
                    "MAX_ATTEMPTS",
                    attempts or DEFAULTS["MAX_ATTEMPTS"],
                    SETTING_LIMITS["MAX_ATTEMPTS"],
                )
            ),
        )
    except (OutOfLimits, TypeError):
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


def is_known_event_pattern(pattern: str) -> bool:
    """A built-in event type or pattern, or a well-formed custom one (``"shop.order_shipped"``,
    ``"shop.*"``). A typo in a reserved namespace (``"page.publish"``) is not known."""
    return is_builtin_event_pattern(pattern) or is_custom_event_pattern(pattern)


def unknown_event_hint(pattern: str) -> str | None:
    if is_reserved(pattern):
        return did_you_mean(pattern, BUILTIN_EVENT_TYPES)
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
            hint=unknown_event_hint(item),
        )
        for item in value
        if not is_known_event_pattern(item)
    ]


def _check_include(alias: str, value: Any, present: bool) -> list[checks.CheckMessage]:
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
            hint=did_you_mean(item, KNOWN_INCLUDES),
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
