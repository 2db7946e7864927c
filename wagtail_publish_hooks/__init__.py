"""Durable, after-commit, retried and signed deliveries of Wagtail publishing events."""

from ._version import __version__
from .conf import suspended
from .custom_events import emit, register_signal
from .receivers import on

__all__ = ["__version__", "emit", "on", "register_signal", "suspended"]
