"""Secrets of admin-managed destinations, encrypted at rest.

Each secret value stored in a :class:`~wagtail_publish_hooks.models.ManagedDestination` (a
signing secret, a tokenised URL, a secret header value) is kept as one string, ``PREFIX``
followed by a Fernet token of the value's JSON. The keys come from settings:

- ``WAGTAIL_PUBLISH_HOOKS["ENCRYPTION_KEYS"]``: Fernet keys; the first encrypts, all decrypt;
- by default, keys derived from ``SECRET_KEY`` (which encrypts) and ``SECRET_KEY_FALLBACKS``
  (which still decrypt), so that a site rotating ``SECRET_KEY`` the way Django documents keeps
  its destinations.

Keys derived from ``SECRET_KEY`` and its fallbacks decrypt in either case, so that setting
``ENCRYPTION_KEYS`` on a site that has rows loses none of them; ``manage.py publish_hooks
reencrypt`` then moves every row under the first key.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings as django_settings

from .conf import get_settings
from .redaction import is_secret_option

#: What an encrypted value starts with. Values without it are plaintext (rows written before
#: encryption, or by a queryset ``update()``), read as they are and encrypted when saved.
PREFIX = "wph-encrypted:v1:"
#: Mixed into the keys derived from ``SECRET_KEY``: they serve nothing else.
KEY_PURPOSE = b"wagtail_publish_hooks.ManagedDestination.secrets"


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with any of the configured keys (keys lost)."""


def derive_key(secret_key: str | bytes) -> bytes:
    """A Fernet key derived from a Django ``SECRET_KEY``."""
    if isinstance(secret_key, str):
        secret_key = secret_key.encode()
    digest = hmac.new(secret_key, KEY_PURPOSE, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest)


def configured_keys() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ``ENCRYPTION_KEYS``, and the ``SECRET_KEY`` with its fallbacks."""
    explicit = get_settings().ENCRYPTION_KEYS or ()
    if isinstance(explicit, str):
        explicit = (explicit,)
    secret_keys = [
        django_settings.SECRET_KEY,
        *getattr(django_settings, "SECRET_KEY_FALLBACKS", ()),
    ]
    return tuple(str(key) for key in explicit), tuple(str(key) for key in secret_keys)


@functools.lru_cache(maxsize=8)
def _fernets(explicit: tuple[str, ...], secret_keys: tuple[str, ...]) -> tuple[Fernet, ...]:
    fernets = []
    for key in explicit:
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            continue  # reported by check E046
    fernets += [Fernet(derive_key(secret_key)) for secret_key in secret_keys if secret_key]
    return tuple(fernets)


def fernets() -> tuple[Fernet, ...]:
    """The keys, the one that encrypts first."""
    return _fernets(*configured_keys())


def multi_fernet() -> MultiFernet:
    return MultiFernet(list(fernets()))


def is_encrypted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def encrypt(value: Any) -> str:
    """``value`` (anything JSON can hold) as an encrypted string; an encrypted one is kept."""
    if is_encrypted(value):
        return value
    data = json.dumps(value, separators=(",", ":")).encode()
    return PREFIX + multi_fernet().encrypt(data).decode("ascii")


def decrypt(value: Any) -> Any:
    """The value an encrypted string holds; any other value is returned as it is."""
    if not is_encrypted(value):
        return value
    try:
        data = multi_fernet().decrypt(value[len(PREFIX) :].encode("ascii"))
        return json.loads(data)
    except (InvalidToken, ValueError, UnicodeError):
        raise DecryptionError(
            "a stored secret cannot be decrypted with the configured keys"
        ) from None


def under_current_key(value: Any) -> bool:
    """Whether an encrypted string is encrypted with the key that encrypts now."""
    if not is_encrypted(value):
        return False
    try:
        fernets()[0].decrypt(value[len(PREFIX) :].encode("ascii"))
    except (InvalidToken, ValueError, UnicodeError, IndexError):
        return False
    return True


def rotate(value: Any) -> Any:
    """An encrypted string encrypted again with the current key; plaintext encrypted."""
    if not is_encrypted(value):
        return encrypt(value)
    try:
        token = multi_fernet().rotate(value[len(PREFIX) :].encode("ascii"))
    except (InvalidToken, ValueError, UnicodeError):
        raise DecryptionError(
            "a stored secret cannot be decrypted with the configured keys"
        ) from None
    return PREFIX + token.decode("ascii")


# -- Secret values inside OPTIONS --------------------------------------------------------------


def map_secret_values(options: Any, is_secret: Any, transform: Any) -> Any:
    """``options`` with ``transform`` applied to each secret value.

    A top-level key is secret when ``is_secret(key)`` says so; a key nested in a mapping (a
    header name in ``HEADERS``) when its name looks secret. Empty values are left alone.
    """

    def walk(value: Any, secret_key: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: (
                    transform(item)
                    if secret_key(str(key)) and item not in (None, "")
                    else walk(item, lambda name: is_secret_option(None, name))
                )
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [walk(item, lambda name: is_secret_option(None, name)) for item in value]
        return value

    return walk(options, is_secret)


def encrypted_values(options: Any) -> Iterable[str]:
    """Every encrypted string held anywhere in ``options``."""
    if is_encrypted(options):
        yield options
    elif isinstance(options, dict):
        for item in options.values():
            yield from encrypted_values(item)
    elif isinstance(options, list):
        for item in options:
            yield from encrypted_values(item)


def decrypt_all(value: Any) -> Any:
    """``value`` with every encrypted string in it decrypted (raises :class:`DecryptionError`)."""
    if is_encrypted(value):
        return decrypt(value)
    if isinstance(value, dict):
        return {key: decrypt_all(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decrypt_all(item) for item in value]
    return value


def rotate_all(value: Any) -> Any:
    """``value`` with every encrypted string in it encrypted again with the current key."""
    if is_encrypted(value):
        return rotate(value)
    if isinstance(value, dict):
        return {key: rotate_all(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rotate_all(item) for item in value]
    return value


def clear_caches() -> None:
    _fernets.cache_clear()
