"""Receivers on Wagtail's signals: every publishing path becomes exactly one event.

They are connected without a sender: Wagtail sends page signals with the specific page class as
sender, so ``connect(receiver, sender=Page)`` would never fire for a subclass. Routing matches
models with ``issubclass`` instead. They never raise into Wagtail: a failure is logged and the
publish goes on.

How each path arrives here:

- publish (admin, script, copy with ``keep_live``, workflow approval, bulk action, alias
  updates): ``page_published``, then Wagtail's generic ``published`` for the same page, which is
  ignored for pages;
- scheduled publishing (``publish_scheduled``): the same signals; the revision still carries its
  ``approved_go_live_at`` in memory, and an expired page is unpublished with ``expired`` set;
- unpublish: ``page_unpublished`` per page (descendants and aliases included);
- delete: Wagtail's ``pre_delete`` handler unpublishes each live page without saving it, so the
  row is still live in the database when ``page_unpublished`` arrives: that makes it a
  ``page.deleted``, and no ``page.unpublished`` is recorded for it;
- move and slug change: ``post_page_move`` and ``page_slug_changed``;
- snippets with ``DraftStateMixin``: the generic ``published`` / ``unpublished``;
- workflows: ``workflow_submitted`` / ``workflow_approved`` / ``workflow_rejected``.

Publishes also say what changed since the previous publish (:mod:`~wagtail_publish_hooks.changes`),
worked out before Wagtail writes the publish's own log entry, which comes after the signal.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.db import models, router
from wagtail.log_actions import get_active_log_context
from wagtail.signals import (
    page_published,
    page_slug_changed,
    page_unpublished,
    post_page_move,
    published,
    unpublished,
    workflow_approved,
    workflow_rejected,
    workflow_submitted,
)

from . import events
from .changes import publish_changes
from .conf import capture_enabled
from .models import Event
from .outbox import capture_savepoint, record_capture_failure, record_event

logger = logging.getLogger("wagtail_publish_hooks")


def current_actor() -> Any:
    """The user Wagtail attributes the current action to (its log context), if any."""
    user = get_active_log_context().user
    return user if getattr(user, "is_authenticated", False) else None


def revision_author(revision: Any) -> Any:
    """Who saved the revision: the actor of a publish made outside any request (a script).

    In the admin, Wagtail's log context names the user who pressed *Publish* (or approved the
    workflow), which may not be the author; it is asked first.
    """
    if revision is None or getattr(revision, "user_id", None) is None:
        return None
    user = revision.user
    return user if getattr(user, "is_active", False) else None


def never_raises(
    event_type: str, *, skip: Callable[[Any], bool] | None = None
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Run a receiver only while capture is enabled, in a savepoint, and never raise.

    ``skip(instance)``: a check that needs no query, for signals the receiver ignores (a page's
    generic ``published``, which ``page_published`` handled): it costs them no savepoint.

    Everything the receiver does that can query (deciding what happened, building the payload,
    routing, the writes) runs inside the savepoint: a query that fails there (a statement or
    lock timeout, say) is rolled back with it and leaves Wagtail's transaction usable, and the
    failure is recorded (:func:`~wagtail_publish_hooks.outbox.record_capture_failure`).
    """

    def decorate(receiver: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(receiver)
        def wrapper(sender: Any, instance: Any = None, **kwargs: Any) -> None:
            if not capture_enabled() or (skip is not None and skip(instance)):
                return
            try:
                with capture_savepoint(router.db_for_write(Event)):
                    receiver(sender, instance=instance, **kwargs)
            except Exception as exc:
                record_capture_failure(
                    event_type, instance if isinstance(instance, models.Model) else None, exc
                )

        return wrapper

    return decorate


def is_page(obj: Any) -> bool:
    from wagtail.models import Page

    return isinstance(obj, Page)


def is_alias_page(page: Any, alias: bool = False) -> bool:
    return bool(alias) or getattr(page, "alias_of_id", None) is not None


def page_event_data(
    page: Any,
    *,
    revision: Any = None,
    alias: bool = False,
    scheduled: bool = False,
    actor: Any = None,
    live: bool | None = None,
) -> dict[str, Any]:
    page_data = events.page_payload(page, revision=revision)
    if live is not None:
        page_data["live"] = live
    return {
        "page": page_data,
        "actor": events.actor_payload(actor),
        "scheduled": scheduled,
        "alias": is_alias_page(page, alias),
    }


# -- Pages ---------------------------------------------------------------------------------------


@never_raises(events.PAGE_PUBLISHED)
def handle_page_published(
    sender: Any, instance: Any, revision: Any = None, alias: bool = False, **kwargs: Any
) -> None:
    if not instance.live:
        # A publish that only scheduled a future go_live_at: publish_scheduled sends the event
        # when the page really goes live.
        return
    # publish_scheduled publishes revisions whose approved_go_live_at has come; Wagtail clears
    # the field in the database but not on the revision object it hands to the signal.
    scheduled = getattr(revision, "approved_go_live_at", None) is not None
    actor = None if scheduled else current_actor() or revision_author(revision)
    record_event(
        events.PAGE_PUBLISHED,
        data=lambda: {
            **page_event_data(
                instance, revision=revision, alias=alias, scheduled=scheduled, actor=actor
            ),
            **publish_changes(instance, revision),
        },
        instance=instance,
        actor=actor,
        is_alias=is_alias_page(instance, alias),
    )


@never_raises(events.PAGE_UNPUBLISHED)
def handle_page_unpublished(sender: Any, instance: Any, **kwargs: Any) -> None:
    from wagtail.models import Page

    if Page.objects.filter(pk=instance.pk, live=True).exists():
        # Unpublished in memory only, with the row still live: Wagtail's pre_delete handler,
        # the one caller that unpublishes without saving. The page is being deleted.
        event_type = events.PAGE_DELETED
        scheduled = False
    else:
        event_type = events.PAGE_UNPUBLISHED
        # publish_scheduled unpublishes expired pages with set_expired=True.
        scheduled = bool(getattr(instance, "expired", False))
    actor = None if scheduled else current_actor()
    record_event(
        event_type,
        data=lambda: page_event_data(instance, scheduled=scheduled, actor=actor, live=False),
        instance=instance,
        actor=actor,
        is_alias=is_alias_page(instance),
    )


def moved_event_data(
    page: Any, *, url_path_before: str, url_path_after: str, actor: Any
) -> dict[str, Any]:
    data = page_event_data(page, actor=actor)
    data["moved"] = {
        "url_path_before": url_path_before,
        "url_path_after": url_path_after,
        "urls_before": events.page_urls(page, url_path=url_path_before),
        "urls_after": events.page_urls(page, url_path=url_path_after),
    }
    return data


@never_raises(events.PAGE_MOVED)
def handle_post_page_move(
    sender: Any,
    instance: Any,
    url_path_before: str = "",
    url_path_after: str = "",
    **kwargs: Any,
) -> None:
    if url_path_before == url_path_after or not instance.live:
        return  # reordered among siblings, or never public: no URL changed
    page = instance.specific
    actor = current_actor()
    record_event(
        events.PAGE_MOVED,
        data=lambda: moved_event_data(
            page, url_path_before=url_path_before, url_path_after=url_path_after, actor=actor
        ),
        instance=page,
        actor=actor,
        is_alias=is_alias_page(page),
    )


@never_raises(events.PAGE_MOVED)
def handle_page_slug_changed(
    sender: Any, instance: Any, instance_before: Any = None, **kwargs: Any
) -> None:
    if instance_before is None or not (instance_before.live or instance.live):
        return  # a page that was never public had no URL to change
    if instance_before.url_path == instance.url_path:
        return
    actor = current_actor()
    record_event(
        events.PAGE_MOVED,
        data=lambda: moved_event_data(
            instance,
            url_path_before=instance_before.url_path,
            url_path_after=instance.url_path,
            actor=actor,
        ),
        instance=instance,
        actor=actor,
        is_alias=is_alias_page(instance),
    )


# -- Snippets (any DraftStateMixin model that is not a page) --------------------------------------


def snippet_event_data(
    obj: Any, *, revision: Any = None, scheduled: bool, actor: Any, live: bool | None = None
) -> dict[str, Any]:
    snippet = events.object_payload(obj, revision=revision)
    if live is not None:
        snippet["live"] = live
    return {"snippet": snippet, "actor": events.actor_payload(actor), "scheduled": scheduled}


@never_raises(events.SNIPPET_PUBLISHED, skip=is_page)
def handle_published(sender: Any, instance: Any, revision: Any = None, **kwargs: Any) -> None:
    if is_page(instance) or not getattr(instance, "live", True):
        return  # pages were handled by page_published; a future go_live_at is not a publish
    scheduled = getattr(revision, "approved_go_live_at", None) is not None
    actor = None if scheduled else current_actor() or revision_author(revision)
    record_event(
        events.SNIPPET_PUBLISHED,
        data=lambda: {
            **snippet_event_data(instance, revision=revision, scheduled=scheduled, actor=actor),
            **publish_changes(instance, revision),
        },
        instance=instance,
        actor=actor,
    )


@never_raises(events.SNIPPET_UNPUBLISHED, skip=is_page)
def handle_unpublished(sender: Any, instance: Any, **kwargs: Any) -> None:
    if is_page(instance):
        return
    scheduled = bool(getattr(instance, "expired", False))
    actor = None if scheduled else current_actor()
    record_event(
        events.SNIPPET_UNPUBLISHED,
        data=lambda: snippet_event_data(instance, scheduled=scheduled, actor=actor, live=False),
        instance=instance,
        actor=actor,
    )


# -- Workflows -----------------------------------------------------------------------------------


def workflow_event_data(state: Any, obj: Any, user: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "workflow": {
            "id": state.pk,
            "name": state.workflow.name,
            "status": state.status,
            "requested_by": events.actor_payload(state.requested_by),
            "task": workflow_task_payload(state),
        },
        "actor": events.actor_payload(user),
    }
    if is_page(obj):
        data["page"] = events.page_payload(obj)
    else:
        data["snippet"] = events.object_payload(obj)
    return data


def workflow_task_payload(state: Any) -> dict[str, Any] | None:
    """The task the object is in (``{"id", "name"}``): subscriptions to a workflow task
    match by it. ``None`` when the workflow has none in progress."""
    task_state = state.current_task_state
    task = getattr(task_state, "task", None) if task_state is not None else None
    if task is None:
        return None
    return {"id": task.pk, "name": task.name}


def workflow_handler(event_type: str) -> Callable[..., None]:
    @never_raises(event_type)
    def handle(sender: Any, instance: Any, user: Any = None, **kwargs: Any) -> None:
        obj = instance.content_object
        if obj is None:
            return
        obj = getattr(obj, "specific", obj)
        record_event(
            event_type,
            data=lambda: workflow_event_data(instance, obj, user),
            instance=obj,
            actor=user,
        )

    handle.__name__ = handle.__qualname__ = f"handle_{event_type.replace('.', '_')}"
    return handle


handle_workflow_submitted = workflow_handler(events.WORKFLOW_SUBMITTED)
handle_workflow_approved = workflow_handler(events.WORKFLOW_APPROVED)
handle_workflow_rejected = workflow_handler(events.WORKFLOW_REJECTED)


def connect() -> None:
    from django.db.models.signals import post_delete, post_save

    uid = "wagtail_publish_hooks"
    page_published.connect(handle_page_published, dispatch_uid=f"{uid}.page_published")
    page_unpublished.connect(handle_page_unpublished, dispatch_uid=f"{uid}.page_unpublished")
    post_page_move.connect(handle_post_page_move, dispatch_uid=f"{uid}.post_page_move")
    page_slug_changed.connect(handle_page_slug_changed, dispatch_uid=f"{uid}.page_slug_changed")
    published.connect(handle_published, dispatch_uid=f"{uid}.published")
    unpublished.connect(handle_unpublished, dispatch_uid=f"{uid}.unpublished")
    workflow_submitted.connect(handle_workflow_submitted, dispatch_uid=f"{uid}.wf_submitted")
    workflow_approved.connect(handle_workflow_approved, dispatch_uid=f"{uid}.wf_approved")
    workflow_rejected.connect(handle_workflow_rejected, dispatch_uid=f"{uid}.wf_rejected")
    for signal in (post_save, post_delete):
        signal.connect(
            events.forget_locales,
            sender="wagtailcore.Locale",
            dispatch_uid=f"{uid}.locales.{signal is post_save}",
        )
