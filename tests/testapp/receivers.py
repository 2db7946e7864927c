"""Receivers registered the way a site registers them: ``@on`` at import, imported in ready().

They listen only to ``testapp.*`` custom events, so they stay out of the way of tests about page
events. ``write_marker`` is registered only in a db_worker subprocess started by a test (which
sets ``PUBLISH_HOOKS_TEST_MARKER``); that test registers it in its own process too.
"""

from __future__ import annotations

import json
import os

from wagtail_publish_hooks import on
from wagtail_publish_hooks.receivers import ReceivedEvent

#: The events ``shipped`` received in this process; tests clear it.
shipped_events: list[ReceivedEvent] = []


@on("testapp.order_shipped", "testapp.Advert")
def shipped(event: ReceivedEvent) -> None:
    shipped_events.append(event)


def write_marker(event: ReceivedEvent) -> None:
    """Appends what it received to the file named by ``PUBLISH_HOOKS_TEST_MARKER``."""
    instance = event.instance
    record = {
        "pid": os.getpid(),
        "id": event.id,
        "type": event.type,
        "page_id": event.data["page"]["id"],
        "object_type": event.object_type,
        "instance_title": getattr(instance, "title", None),
        "attempt": event.attempt,
    }
    with open(os.environ["PUBLISH_HOOKS_TEST_MARKER"], "a", encoding="utf-8") as marker:
        marker.write(json.dumps(record) + "\n")


if os.environ.get("PUBLISH_HOOKS_TEST_MARKER"):
    on("page.published", "testapp.BlogPage")(write_marker)
