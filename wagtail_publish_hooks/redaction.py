"""What is never recorded or shown as it is: secret-looking names, their values, URL paths.

One list of secret-looking words serves every place that hides something: the headers recorded
on an attempt, the headers the admin shows, and the ``OPTIONS`` keys whose values are secrets
(:func:`is_secret_option`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

#: What stands in for a hidden value.
REDACTED = "[redacted]"

#: A header or option whose name contains one of these words (in any case) carries a secret.
SECRET_WORDS = (
    "auth",
    "secret",
    "token",
    "key",
    "signature",
    "pass",
    "cookie",
    "credential",
    "session",
)


@functools.lru_cache(maxsize=1024)
def looks_secret(name: str) -> bool:
    """Whether a header or option named so carries a secret: its name contains ``auth``,
    ``secret``, ``token``, ``key``, ``signature``, ``pass``, ``cookie``, ``credential`` or
    ``session`` (in any case). (Cached: a worker redacts the same few header names at every
    request.)"""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with the value of each secret-looking one replaced by :data:`REDACTED`."""
    return {name: (REDACTED if looks_secret(name) else value) for name, value in headers.items()}


def headers_to_show(headers: Any) -> list[tuple[str, str]]:
    """Recorded headers as (name, value) pairs sorted by name, for display; secret-looking
    values are replaced, whatever a backend recorded. Anything but a dict shows nothing."""
    if not isinstance(headers, dict):
        return []
    shown = []
    for name, value in sorted(headers.items(), key=lambda item: str(item[0]).lower()):
        if looks_secret(str(name)):
            value = REDACTED
        shown.append((str(name), str(value)))
    return shown


def describe_url(url: str) -> str:
    """The URL with its path and query hidden: safe for logs, errors and the admin."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    suffix = "/…" if (parts.path not in ("", "/") or parts.query) else "/"
    return f"{parts.scheme}://{host}{port}{suffix}"


def is_secret_option(backend_class: Any, key: str) -> bool:
    """Whether the value of the ``OPTIONS`` key ``key`` of a backend is a secret.

    It is when the backend lists the key in ``secret_option_keys``, or when the key's name
    looks secret (:func:`looks_secret`), the rule that hides header values in the delivery log.
    The name rule applies to any backend, including one that does not subclass
    :class:`~wagtail_publish_hooks.backends.base.BaseBackend`, and to keys nested in mappings
    (``HEADERS``).
    """
    declared = getattr(backend_class, "secret_option_keys", None) or frozenset()
    return key in declared or looks_secret(key)
