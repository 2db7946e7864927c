"""The length of a send against the lease of its claim (``LEASE_SECONDS``), for the
destinations of the settings and those managed in the admin."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.core import checks

from ..conf import DEFAULTS, raw_settings
from ..validation import about_managed, error, is_number, warning
from .managed_destinations import managed_destination_rows

#: The request timeout of the shipped HTTP backends when ``OPTIONS["TIMEOUT"]`` is not given.
DEFAULT_REQUEST_TIMEOUT = 15.0


def check_lease_against_timeouts(
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
    if not is_number(lease) or lease <= 0:
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
        with about_managed():
            return [warning(22, text, alias=alias, keys=keys, hint=hint)]
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
    if not is_number(timeout) or not math.isfinite(timeout):
        return None, ()
    send = float(timeout)
    if backend == "wagtail_publish_hooks.backends.slack.SlackBackend":
        interval = options.get("MIN_INTERVAL", 1.0)
        if is_number(interval) and math.isfinite(interval):
            send += float(interval)
    return send, ("OPTIONS", "TIMEOUT")


#: The shipped backends whose request timeout is not ``DEFAULT_REQUEST_TIMEOUT``.
BACKEND_REQUEST_TIMEOUTS = {"SlackBackend": 10.0}


def check_managed_send_times(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """W022: W017 and E049 for the destinations managed in the admin, as warnings (they are
    data). Nothing a row names is imported."""
    rows = managed_destination_rows()
    if not rows:
        return []
    raw = raw_settings()
    lease = raw.get("LEASE_SECONDS", DEFAULTS["LEASE_SECONDS"])
    if not is_number(lease) or lease <= 0:
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
