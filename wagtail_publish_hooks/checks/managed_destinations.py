"""The checks of the destinations managed in the admin: the rows of the table, read without
importing anything they name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core import checks
from django.db import connections, router

from ..conf import raw_settings
from ..encryption import (
    DecryptionError,
    encrypted_values,
    is_encrypted,
    map_secret_values,
    under_current_key,
)
from ..models import ManagedDestination
from ..registry import check_managed_trust, secret_option_rule
from ..validation import about_managed, managed_alias_taken, undecryptable, warning
from .destinations import check_destination


def check_managed_destinations(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The destinations managed in the admin: valid, and not shadowed by one in settings.

    Their mistakes are warnings, not errors: they are data, and must not stop ``migrate`` or a
    deploy. A row that names code (W020) is never built. A row whose secrets cannot be
    decrypted (E047) is an error: the keys that encrypted them are gone from the settings,
    which is the operator's to fix. Nothing is reported while the table cannot be read (before
    ``migrate``). Nothing a row names is imported.
    """
    rows = managed_destination_rows()
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


def _as_w014(row: Any, message: checks.CheckMessage) -> checks.CheckMessage:
    return _quoted_as_warning(
        14, row, message, "The destination cannot deliver until it is fixed in the admin."
    )


def _quoted_as_warning(
    number: int, row: Any, message: checks.CheckMessage, consequence: str, hint: Any = None
) -> checks.CheckMessage:
    """A check message about a stored row, quoted in a warning: the table's contents must never
    stop ``migrate`` or a deploy."""
    with about_managed():
        return warning(
            number,
            f"{getattr(message, 'text', message.msg)} ({message.id}) {consequence}",
            alias=row.alias,
            keys=getattr(message, "setting_keys", ()),
            hint=hint if hint is not None else message.hint,
        )


def managed_destination_rows() -> list[Any]:
    using = router.db_for_read(ManagedDestination)
    try:
        connection = connections[using]
        if ManagedDestination._meta.db_table not in connection.introspection.table_names():
            return []
        return list(ManagedDestination.objects.using(using).order_by("alias"))
    except Exception:  # no database at hand (yet): nothing to check
        return []
