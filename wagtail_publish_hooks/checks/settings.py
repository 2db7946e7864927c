"""The checks of the ``WAGTAIL_PUBLISH_HOOKS`` setting: its keys, the global settings, and each
destination defined there."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from ..backends.base import BaseBackend
from ..conf import DEFAULTS, SETTING_NAME
from ..limits import SETTING_LIMITS
from ..validation import check_number, check_positive_number, did_you_mean, error, is_number
from .destinations import check_delays, check_destination
from .filters import check_object_sites
from .leases import check_lease_against_timeouts


def check_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """``WAGTAIL_PUBLISH_HOOKS``: its keys, the global settings, each destination defined in
    it, and each one's send time against the lease."""
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
                    hint=did_you_mean(key, DEFAULTS),
                )
            )
    messages += _check_globals(raw)
    messages += _check_managed_settings(raw)
    messages += check_object_sites(raw)
    destinations = raw.get("DESTINATIONS", {})
    if not isinstance(destinations, Mapping):
        messages.append(error(3, "must be a dict of alias to destination.", keys=("DESTINATIONS",)))
        return messages
    for alias, config in destinations.items():
        messages += check_destination(alias, config)
    messages += check_lease_against_timeouts(raw.get("LEASE_SECONDS"), destinations)
    return messages


def _check_globals(raw: Mapping[str, Any]) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for key in ("ENABLED", "WATCHING"):
        if key in raw and not isinstance(raw[key], bool):
            messages.append(error(16, "must be True or False.", keys=(key,)))
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
            or not all(is_number(item) and item >= 0 for item in schedule)
        ):
            messages.append(
                error(
                    20,
                    "must be a non-empty list of delays in seconds, each zero or more.",
                    keys=("RETRY_SCHEDULE",),
                )
            )
        else:
            messages += check_delays(schedule, alias=None, kind_error=20)
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
                SETTING_LIMITS[key],
                alias=None,
                keys=(key,),
                kind_error=53,
            )
    return messages


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


def _check_managed_settings(raw: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """E046: ``MANAGED_BACKENDS`` and ``ENCRYPTION_KEYS``."""
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
