"""Watching's fan-out: the backend of the built-in destination ``"watchers"``.

Capture records one delivery to ``"watchers"`` for an event that subscriptions may concern
(:func:`wagtail_publish_hooks.routing.routes_for`), whatever the number of watchers. The worker
sends it here: its recipients are resolved
(:func:`~wagtail_publish_hooks.subscribers.recipients_of`: the subscriptions it matches, their
groups' members, less the actor when they asked, less who may not see the object) and one
delivery per recipient is recorded to ``"watch:<user id>"``, merged with that recipient's open
one by their frequency, so that a digest lists every event
(:func:`~wagtail_publish_hooks.outbox.record_deliveries`). Those are sent by
:class:`~wagtail_publish_hooks.backends.watch.WatchBackend`.

The registry builds this backend by its dotted path, as it builds a destination's: it records
deliveries, so it sits above the outbox, out of the registry's reach by import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

from .backends.base import BaseBackend
from .backends.watch import captured_for_watching, watch_alias
from .http.responses import HttpResult
from .outbox import record_deliveries
from .subscribers import recipients_of, target_of

if TYPE_CHECKING:
    from .models import Delivery


class WatchersBackend(BaseBackend):
    """Turns one event into a delivery per user who watches it."""

    option_keys = frozenset()

    def describe(self) -> str:
        return "The users who watch what the event is about"

    def capture(self, event_type: str, instance: models.Model | None) -> dict[str, Any] | None:
        """The page's treebeard path: a subscription to a section matches a page by it, and a
        deleted page has none by delivery time."""
        path = getattr(instance, "path", None)
        return {"path": path} if isinstance(path, str) and path else None

    def deliver(self, delivery: Delivery) -> HttpResult:
        lines = []
        for event in delivery.covered_events():
            recipients = recipients_of(target_of(event, captured_for_watching(event)))
            recorded = record_deliveries(
                event,
                {
                    watch_alias(user_id): prefs.window
                    for user_id, prefs in sorted(recipients.items())
                },
            )
            lines.append(f"{event.event_id}: {len(recipients)} recipient(s), {recorded} recorded")
        return HttpResult(
            status_code=None,
            response_headers={},
            response_body="\n".join(lines),
            request_headers={},
        )
