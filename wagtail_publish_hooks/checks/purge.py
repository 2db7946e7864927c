"""The checks of the purge backends of frontend-cache destinations against the address policy."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string
from wagtail.contrib.frontend_cache.backends.http import HTTPBackend

from ..backends.frontend_cache import FrontendCacheBackend
from ..conf import raw_settings
from ..http.addresses import managed_policy, settings_policy
from ..validation import about_managed, warning
from .managed_destinations import managed_destination_rows

FRONTEND_CACHE_BACKEND = "wagtail_publish_hooks.backends.frontend_cache.FrontendCacheBackend"


def check_purge_locations(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """W018: an HTTP purge backend (``HTTPBackend``) used by a frontend-cache destination has
    its ``LOCATION`` on a literal address (or ``localhost``) that the destination's address
    policy refuses: every purge through it would be refused.

    A host name is not looked up here; only what the setting itself says is judged.
    """
    messages: list[checks.CheckMessage] = []
    raw = raw_settings().get("DESTINATIONS")
    in_settings = raw if isinstance(raw, Mapping) else {}
    for alias, config in in_settings.items():
        if not isinstance(config, Mapping) or not _is_frontend_cache(config.get("BACKEND")):
            continue
        options = config.get("OPTIONS")
        option = options.get("BACKENDS") if isinstance(options, Mapping) else None
        messages += _refused_purge_locations(str(alias), option, settings_policy())
    with about_managed():
        for row in managed_destination_rows():
            if row.alias in in_settings or row.backend != FRONTEND_CACHE_BACKEND:
                continue  # a shadowed row is reported by W013
            if not isinstance(row.options, Mapping):
                continue
            option = row.options.get("BACKENDS")
            if isinstance(option, Mapping):
                continue  # named classes: refused outright for a managed destination
            messages += _refused_purge_locations(row.alias, option, managed_policy())
    return messages


def _is_frontend_cache(path: Any) -> bool:
    if not isinstance(path, str):
        return False
    try:
        backend_class = import_string(path)
    except ImportError:
        return False
    return isinstance(backend_class, type) and issubclass(backend_class, FrontendCacheBackend)


def _purge_backend_configs(option: Any) -> dict[str, Any]:
    """The Wagtail purge backend configurations a destination's ``BACKENDS`` stands for."""
    if isinstance(option, Mapping):
        return dict(option)
    configured = getattr(settings, "WAGTAILFRONTENDCACHE", None)
    if configured is None:
        location = getattr(settings, "WAGTAILFRONTENDCACHE_LOCATION", None)
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
