"""Wagtail hooks for the capture failures screen."""

from __future__ import annotations

from wagtail import hooks

from .capture_failures import CaptureFailuresViewSet


@hooks.register("register_admin_viewset")
def register_capture_failures_viewset() -> CaptureFailuresViewSet:
    return CaptureFailuresViewSet()
