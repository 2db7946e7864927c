"""The toolkit for checking a destination's configuration: check messages that carry the
package's stable ids and name the exact setting, and validators of the options most backends
take (a URL, a signing secret, headers, numbers within bounds, a dotted path).

A backend's :meth:`~wagtail_publish_hooks.backends.base.BaseBackend.check_options` uses it, and
so do the package's system checks and the admin's destination form. It imports nothing of the
package but the settings' names and the bounds of numbers, so any module may use it.

Ids are never reused; a retired id stays listed in ``docs/reference/checks.md``.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from django.core import checks
from django.utils.module_loading import import_string

from .conf import SETTING_NAME
from .limits import (
    NOT_FINITE,
    OPTION_LIMITS,
    SETTING_LIMITS,
    TOO_HIGH,
    Limit,
    OutOfLimits,
    parse_number,
)

if TYPE_CHECKING:
    from .backends.base import BaseBackend

ID_PREFIX = "wagtail_publish_hooks"

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

# Ids raised by backend modules rather than by the system checks (``checks/``), listed so that
# none is taken twice:
# E026 and W006, the Slack backend (``backends/slack.py``).
# E027, the Discord backend (``backends/discord.py``).
# E028 to E031 and W007, the email backend (``backends/email.py``).
# E032 and E033, the build hook backend (``backends/build_hook.py``).
# E034 to E036 and W008, the revalidation backend (``backends/revalidate.py``).
# E037 to E041 and W009, the frontend cache backend (``backends/frontend_cache.py``).
# E042 (MANAGED_ALLOW_PRIVATE_NETWORKS) and W018 (purge locations) are raised by the checks.
# E045, ``BaseBackend.check_managed_options`` (``backends/base.py``) and its overrides.


#: Where the destination being checked is written: in settings, or in the admin's table.
SETTINGS_DESTINATIONS = f"{SETTING_NAME}['DESTINATIONS']"
MANAGED_DESTINATIONS = "wagtail_publish_hooks.ManagedDestination"
_destinations_path: ContextVar[str] = ContextVar(
    "wagtail_publish_hooks_destinations_path", default=SETTINGS_DESTINATIONS
)


@contextmanager
def about_managed(managed: bool = True) -> Iterator[None]:
    """Within it, the messages about a destination name the admin's table
    (``wagtail_publish_hooks.ManagedDestination``), or the setting if ``managed`` is false."""
    token = _destinations_path.set(MANAGED_DESTINATIONS if managed else SETTINGS_DESTINATIONS)
    try:
        yield
    finally:
        _destinations_path.reset(token)


def is_about_managed() -> bool:
    """Whether the destination being checked is one managed in the admin."""
    return _destinations_path.get() == MANAGED_DESTINATIONS


def setting_path(alias: str | None = None, *keys: str) -> str:
    """Where a value is written: ``WAGTAIL_PUBLISH_HOOKS['DESTINATIONS']['alias']['OPTIONS']``
    for ``setting_path("alias", "OPTIONS")``, the setting itself with no alias."""
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
    where = subject if subject is not None else setting_path(alias, *keys)
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
    """A warning about a setting (``alias`` and ``keys``)."""
    keys = tuple(keys)
    return _annotate(
        checks.Warning(
            f"{setting_path(alias, *keys)}: {msg}", hint=hint, id=f"{ID_PREFIX}.W{number:03d}"
        ),
        msg,
        keys,
    )


def did_you_mean(key: str, known: Iterable[str]) -> str | None:
    """A hint naming the closest of ``known`` keys, or listing them all."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    return f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(sorted(known))}."


def is_number(value: Any) -> bool:
    """A real number, and not a boolean."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# -- Validators of the OPTIONS most backends take ------------------------------------------------


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
    """``OPTIONS[key]`` as a URL to send to: E011 when required and missing, E012 unless an
    absolute ``http://`` or ``https://`` URL with a host, E013 when it carries credentials, W003
    for plain ``http://`` to a host other than this machine."""
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
    """``OPTIONS[key]`` as a Standard Webhooks signing secret, or a list of them (to rotate:
    one signature each): W004 when not set, E014 unless each is ``whsec_`` and base64 of 16
    bytes or more."""
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
    """``OPTIONS[key]`` as extra request headers: E019 unless a dict of names to string values,
    without line breaks, and without any of the ``reserved`` names the backend sets itself."""
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
    limit: Limit | None = None,
) -> list[checks.CheckMessage]:
    """E015 (not a number of the right kind, or too small) or E048 (not finite, or above the
    bound) for a number: bounded by ``limit``, else by the package's table for the key
    (:mod:`wagtail_publish_hooks.limits`), else by ``integer`` and ``allow_zero`` alone."""
    keys = ("OPTIONS", key) if in_options else (key,)
    if key not in options:
        return []
    if limit is None:
        table = OPTION_LIMITS if in_options else SETTING_LIMITS
        limit = table.get(key) or Limit(
            0, math.inf, integer=integer, above_minimum=not allow_zero, unit=""
        )
    return check_number(options[key], key, limit, alias=alias, keys=keys)


def check_number(
    value: Any,
    key: str,
    limit: Limit,
    *,
    alias: str | None,
    keys: Iterable[str],
    kind_error: int = 15,
) -> list[checks.CheckMessage]:
    """Error ``kind_error`` (E015 unless told) when ``value`` is no number of the wanted kind or
    is below ``limit``; E048 when it is NaN, an infinity or above ``limit``."""
    try:
        parse_number(key, value, limit)
    except OutOfLimits as exc:
        number = 48 if exc.problem in (NOT_FINITE, TOO_HIGH) else kind_error
        return [error(number, f"{exc.requirement}.", alias=alias, keys=keys)]
    return []


# -- Messages about destinations managed in the admin -------------------------------------------


def managed_alias_taken(alias: str) -> checks.CheckMessage:
    """W013: the alias of a destination managed in the admin is also one in settings."""
    with about_managed():
        return warning(
            13,
            "has the alias of a destination in WAGTAIL_PUBLISH_HOOKS['DESTINATIONS']; the "
            "destination of the settings is used, this one is ignored.",
            alias=alias,
            hint="Rename or delete one of the two.",
        )


def undecryptable(alias: str) -> checks.CheckMessage:
    """E047: the secrets of a destination managed in the admin cannot be decrypted."""
    with about_managed():
        return error(
            47,
            "its secrets cannot be decrypted with the configured keys; the destination is not "
            "used until they can be, or until they are entered again in the admin.",
            alias=alias,
            hint="Put the key that encrypted them back: the previous SECRET_KEY into "
            "SECRET_KEY_FALLBACKS, or the previous key into "
            "WAGTAIL_PUBLISH_HOOKS['ENCRYPTION_KEYS'] (after the current one).",
        )


def backend_not_managed(alias: str, path: str, allowed: Iterable[str]) -> checks.CheckMessage:
    """E044: a destination managed in the admin names a backend outside ``allowed``."""
    return error(
        44,
        f"{path!r} is not a backend that destinations managed in the admin may use.",
        alias=alias,
        keys=("BACKEND",),
        hint="Choose one of: "
        + ", ".join(allowed)
        + ". The operator may allow others in WAGTAIL_PUBLISH_HOOKS['MANAGED_BACKENDS'].",
    )


def managed_option_problems(
    backend_class: type[BaseBackend], alias: str, options: Mapping[str, Any]
) -> list[checks.CheckMessage]:
    """The backend's :meth:`~wagtail_publish_hooks.backends.base.BaseBackend.check_managed_options`,
    or E045 if it raises: a broken custom backend is refused rather than trusted."""
    try:
        return list(backend_class.check_managed_options(alias, options))
    except Exception as exc:
        return [
            error(
                45,
                f"{backend_class.__name__}.check_managed_options() raised {type(exc).__name__}.",
                alias=alias,
                keys=("OPTIONS",),
            )
        ]
