"""What counts as a secret in a destination's options."""

from __future__ import annotations

from typing import Any

from .http import looks_secret


def is_secret_option(backend_class: Any, key: str) -> bool:
    """Whether the value of the ``OPTIONS`` key ``key`` of a backend is a secret.

    It is when the backend lists the key in ``secret_option_keys``, or when the key's name
    looks secret: it contains ``auth``, ``secret``, ``token``, ``key``, ``signature``,
    ``pass``, ``cookie``, ``credential`` or ``session``, the rule that hides header values in
    the delivery log. The name rule applies to any backend, including one that does not
    subclass :class:`~wagtail_publish_hooks.backends.base.BaseBackend`, and to keys nested in
    mappings (``HEADERS``).
    """
    declared = getattr(backend_class, "secret_option_keys", None) or frozenset()
    return key in declared or looks_secret(key)
