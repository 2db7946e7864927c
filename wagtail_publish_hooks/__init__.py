"""Durable, after-commit, retried and signed deliveries of Wagtail publishing events."""

from .conf import suspended
from .custom_events import emit, register_signal
from .receivers import on

__version__ = "0.1.0"

__all__ = ["__version__", "emit", "on", "register_signal", "suspended"]
