"""Receivers on Wagtail's signals. They never raise into Wagtail.

They are connected without a sender: Wagtail sends page signals with the specific page class as
sender, so ``connect(receiver, sender=Page)`` would never fire for a subclass. Routing matches
models with ``issubclass`` instead.
"""

from __future__ import annotations

import logging
from typing import Any

from wagtail.log_actions import get_active_log_context
from wagtail.signals import page_published, page_unpublished

from . import events
from .conf import capture_enabled
from .outbox import record_event

logger = logging.getLogger("wagtail_publish_hooks")


def current_actor() -> Any:
    """The user Wagtail attributes the current action to (its log context), if any."""
    user = get_active_log_context().user
    return user if getattr(user, "is_authenticated", False) else None


def page_event_data(page: Any, *, revision: Any = None, alias: bool = False) -> dict[str, Any]:
    actor = current_actor()
    return {
        "page": events.page_payload(page, revision=revision),
        "actor": events.actor_payload(actor),
        "scheduled": False,
        "alias": bool(alias),
    }


def handle_page_published(
    sender: Any, instance: Any, revision: Any = None, alias: bool = False, **kwargs: Any
) -> None:
    if not capture_enabled():
        return
    try:
        if not instance.live:
            # A publish that only scheduled a future go_live_at: the scheduled publish will
            # send the event when the page really goes live.
            return
        record_event(
            events.PAGE_PUBLISHED,
            data=lambda: page_event_data(instance, revision=revision, alias=alias),
            instance=instance,
            actor=current_actor(),
        )
    except Exception:
        logger.exception(
            "Publish hooks could not record page.published for page %s",
            getattr(instance, "pk", None),
        )


def handle_page_unpublished(sender: Any, instance: Any, **kwargs: Any) -> None:
    if not capture_enabled():
        return
    try:

        def data() -> dict[str, Any]:
            payload = page_event_data(instance)
            # Wagtail's delete path unpublishes a re-fetched copy that still says live=True.
            payload["page"]["live"] = False
            return payload

        record_event(
            events.PAGE_UNPUBLISHED,
            data=data,
            instance=instance,
            actor=current_actor(),
        )
    except Exception:
        logger.exception(
            "Publish hooks could not record page.unpublished for page %s",
            getattr(instance, "pk", None),
        )


def connect() -> None:
    from django.db.models.signals import post_delete, post_save

    for signal in (post_save, post_delete):
        signal.connect(
            events.forget_locales,
            sender="wagtailcore.Locale",
            dispatch_uid=f"wagtail_publish_hooks.locales.{signal is post_save}",
        )
    page_published.connect(handle_page_published, dispatch_uid="wagtail_publish_hooks.published")
    page_unpublished.connect(
        handle_page_unpublished, dispatch_uid="wagtail_publish_hooks.unpublished"
    )
