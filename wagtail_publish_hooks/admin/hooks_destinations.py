"""Wagtail hooks for the destinations screens."""

from __future__ import annotations

from typing import Any

from wagtail import hooks

from .destination_views import LOG_ACTIONS
from .destination_viewset import DestinationViewSet


@hooks.register("register_admin_viewset")
def register_destinations_viewset() -> DestinationViewSet:
    return DestinationViewSet()


@hooks.register("register_log_actions")
def register_destination_log_actions(actions: Any) -> None:
    for action, label, message in LOG_ACTIONS:
        actions.register_action(action, label, message)
