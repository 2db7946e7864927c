"""Secret values in a destination's ``OPTIONS``: hidden when the form shows them, kept when left
as shown, and kept only while the destination still sends where they were entered for."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ...encryption import PREFIX, encrypted_values
from ...redaction import is_secret_option
from ...registry import managed_backend_class


def generate_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


#: What the options field shows instead of a secret value that is set; left as it is, the
#: stored value is kept.
KEPT_SECRET = "[kept: set]"  # noqa: S105 -- a placeholder, not a secret
#: What the options field shows, after a mistake, instead of a secret typed in that request:
#: it is not shown back, so it must be typed again.
RETYPE_SECRET = "[not shown: enter it again]"  # noqa: S105 -- a placeholder, not a secret

_ABSENT = object()


def backend_class_of(path: str | None) -> Any:
    """The backend class of a registry member, or ``None``: nothing else is imported."""
    return managed_backend_class(path)


def hide_secret_options(
    options: Any,
    backend_class: Any,
    stored: Any = _ABSENT,
    *,
    also_secret: Any = None,
    stored_secrets: frozenset[str] = frozenset(),
) -> Any:
    """The options with each secret value replaced by a placeholder, for display.

    A value equal to the one stored at the same place (or already the placeholder) becomes
    :data:`KEPT_SECRET`; any other (typed in a request that the form refused) becomes
    :data:`RETYPE_SECRET`. Top-level keys follow the backend's ``secret_option_keys`` and the
    name rule (and ``also_secret``, the rule of the backend stored before a switch); keys nested
    in mappings follow the name rule. A value equal to any stored secret (``stored_secrets``,
    as JSON) is never shown, wherever it is put.
    """

    def is_secret(key: str) -> bool:
        return is_secret_option(backend_class, key) or bool(also_secret and also_secret(key))

    return _hide(options, stored, is_secret, stored_secrets)


def _hide(value: Any, stored: Any, is_secret: Any, stored_secrets: frozenset[str]) -> Any:
    def nested(name: str) -> bool:
        return is_secret_option(None, name)

    if isinstance(value, dict):
        stored_map = stored if isinstance(stored, dict) else {}
        hidden = {}
        for key, item in value.items():
            before = stored_map.get(key, _ABSENT)
            if is_secret(str(key)) and item not in (None, ""):
                kept = item in (KEPT_SECRET, before)
                hidden[key] = KEPT_SECRET if kept else RETYPE_SECRET
            else:
                hidden[key] = _hide(item, before, nested, stored_secrets)
        return hidden
    if isinstance(value, list):
        stored_list = stored if isinstance(stored, list) else []
        return [
            _hide(
                item,
                stored_list[index] if index < len(stored_list) else _ABSENT,
                nested,
                stored_secrets,
            )
            for index, item in enumerate(value)
        ]
    if value not in (None, "") and as_json(value) in stored_secrets:
        return KEPT_SECRET if value == stored else RETYPE_SECRET
    return value


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def keep_secret_options(
    options: Any, stored: Any, kept: list[tuple[Any, ...]] | None = None
) -> tuple[Any, list[tuple[Any, ...]]]:
    """The submitted options with each :data:`KEPT_SECRET` replaced by the stored value at the
    same place, and the places where that cannot be done (nothing stored there, or
    :data:`RETYPE_SECRET` left in). The places where it was done are appended to ``kept``."""
    unresolved: list[tuple[Any, ...]] = []

    def keep(value: Any, before: Any, path: tuple[Any, ...]) -> Any:
        if value == KEPT_SECRET and before is not _ABSENT:
            if kept is not None:
                kept.append(path)
            return before
        if value in (KEPT_SECRET, RETYPE_SECRET):
            unresolved.append(path)
            return value
        if isinstance(value, dict):
            stored_map = before if isinstance(before, dict) else {}
            return {
                key: keep(item, stored_map.get(key, _ABSENT), (*path, key))
                for key, item in value.items()
            }
        if isinstance(value, list):
            stored_list = before if isinstance(before, list) else []
            return [
                keep(item, stored_list[i] if i < len(stored_list) else _ABSENT, (*path, i))
                for i, item in enumerate(value)
            ]
        return value

    return keep(options, stored, ()), unresolved


def holds_encrypted(value: Any) -> bool:
    return any(True for _ in encrypted_values(value)) or (
        isinstance(value, dict) and any(str(key).startswith(PREFIX) for key in value)
    )


def replace_encrypted(value: Any, replacement: str) -> Any:
    if isinstance(value, str) and value.startswith(PREFIX):
        return replacement
    if isinstance(value, dict):
        return {key: replace_encrypted(item, replacement) for key, item in value.items()}
    if isinstance(value, list):
        return [replace_encrypted(item, replacement) for item in value]
    return value


def origin(url: Any) -> Any:
    """Where a URL sends to: (scheme, host, port); the text itself when it is no URL."""
    if not isinstance(url, str):
        return ("?", as_json(url))
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
        return (parts.scheme.lower(), (parts.hostname or "").lower(), port)
    except ValueError:
        return ("?", url)


def targets(backend_class: Any, options: Mapping[str, Any]) -> Any:
    """The origins a destination's requests go to: those of its ``target_option_keys``."""
    keys = getattr(backend_class, "target_option_keys", frozenset({"URL"}))
    found = {}
    for key in sorted(keys):
        value = options.get(key)
        if isinstance(value, Mapping):
            found[key] = sorted((str(k), origin(v)) for k, v in value.items())
        elif value is not None:
            found[key] = origin(value)
    return found


def backend_takes_secret(path: str) -> bool:
    """Whether the backend has a ``SECRET`` option (a backend that accepts anything has)."""
    backend_class = managed_backend_class(path)
    if backend_class is None:
        return False
    keys = backend_class.option_keys
    return keys is None or "SECRET" in keys
