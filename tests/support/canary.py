"""A module that must never be imported, nor anything in it called, by the package on behalf of
an admin user: importing it, or calling anything in it, writes to the file named by the
environment variable ``PUBLISH_HOOKS_CANARY``.

The hostile tests name its members wherever a dotted path could be slipped in, then check the
file does not exist and that the module is not in ``sys.modules``.
"""

from __future__ import annotations

import os
from typing import Any

from wagtail_publish_hooks.backends.base import BaseBackend


def _sing(what: str) -> None:
    path = os.environ.get("PUBLISH_HOOKS_CANARY")
    if path:
        with open(path, "a") as file:
            file.write(what + "\n")


_sing("imported")


def run(*args: Any, **kwargs: Any) -> list[str]:
    _sing("called")
    return []


class Backend(BaseBackend):
    """A publish-hooks backend that would run code when built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _sing("backend built")
        super().__init__(*args, **kwargs)

    @classmethod
    def check_options(cls, alias: str, options: Any) -> list[Any]:
        _sing("backend checked")
        return []


class PurgeBackend:
    """A Wagtail frontend-cache backend that would run code when built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _sing("purge backend built")
