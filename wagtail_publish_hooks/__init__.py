"""Durable, after-commit, retried and signed deliveries of Wagtail publishing events."""

__version__ = "0.1.0"

__all__ = ["__version__"]
