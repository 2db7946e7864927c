"""Registers the admin screens with Wagtail (each concern has its own module)."""

from .admin import hooks_capture_failures, hooks_deliveries, hooks_destinations  # noqa: F401
