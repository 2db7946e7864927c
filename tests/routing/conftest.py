"""Fixtures of the routing tests: the multi-site, two-locale set-up and routed deliveries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.sites import multisite
from wagtail_publish_hooks.models import Delivery

__all__ = ["multisite"]

RECORDING = "tests.support.backends.RecordingBackend"


@pytest.fixture
def destinations(configure, settings) -> Callable[..., None]:
    """Configure destinations by alias: ``destinations(www={"SITES": [...]}, ...)``; deliveries
    stay in the database (a database task queue no worker runs)."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

    def apply(**filters: dict[str, Any]) -> None:
        configure(
            DESTINATIONS={
                alias: {"BACKEND": RECORDING, "EVENTS": ["*"], **config}
                for alias, config in filters.items()
            }
        )

    return apply


@pytest.fixture
def routed() -> Callable[[], dict[str, set[tuple[str, str]]]]:
    """What each destination received since the last call: ``{alias: {(type, object id)}}``."""
    seen: set[int] = set()

    def read() -> dict[str, set[tuple[str, str]]]:
        result: dict[str, set[tuple[str, str]]] = {}
        for delivery in Delivery.objects.select_related("event").exclude(pk__in=seen):
            seen.add(delivery.pk)
            result.setdefault(delivery.destination, set()).add(
                (delivery.event.event_type, delivery.event.object_id)
            )
        return result

    return read
