"""What a user may watch, found from a URL: a page or a snippet the user has access to, or 404
(nothing there) or 403 (there, but not for them). A refusal never names the object."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from wagtail.models import DraftStateMixin, Page, WorkflowMixin

from ...subscribers import model_content_type_ids, subscriptions_about
from ...subscription_models import Subscription
from ..deliveries.selection import find_instance
from ..permissions import ObjectAccess, is_snippet_model

#: The events of a page an editor may watch, with their labels.
PAGE_EVENTS = (
    ("page.published", _("Published")),
    ("page.unpublished", _("Unpublished")),
    ("page.moved", _("Moved or renamed")),
    ("page.deleted", _("Deleted")),
    ("workflow.submitted", _("Submitted to a workflow")),
    ("workflow.approved", _("Approved in a workflow")),
    ("workflow.rejected", _("Rejected in a workflow")),
)
SNIPPET_EVENTS = (
    ("snippet.published", _("Published")),
    ("snippet.unpublished", _("Unpublished")),
)
WORKFLOW_EVENTS = PAGE_EVENTS[4:]
EVENT_LABELS = dict(PAGE_EVENTS + SNIPPET_EVENTS)


def watchable_page(user: Any, raw_page_id: Any) -> Page:
    page = find_instance(Page, raw_page_id)
    if not ObjectAccess(user).can_see_page(page):
        raise PermissionDenied
    return page.specific_deferred


def snippet_model(app_label: str, model_name: str) -> type[DraftStateMixin]:
    """A snippet model with a publishing state (the only ones with events to watch), or 404."""
    try:
        content_type = ContentType.objects.get_by_natural_key(app_label, model_name)
    except (ContentType.DoesNotExist, ValueError):
        raise Http404 from None
    model = content_type.model_class()
    if model is None or not is_snippet_model(model) or not issubclass(model, DraftStateMixin):
        raise Http404
    return model


def watchable_snippet(user: Any, app_label: str, model_name: str, raw_pk: Any) -> Any:
    model = snippet_model(app_label, model_name)
    access = ObjectAccess(user)
    # A user without any permission on the model learns nothing, not even whether the object
    # exists.
    if not access.can_see_model(model):
        raise PermissionDenied
    instance = find_instance(model, raw_pk)
    if not access.can_see_instance(instance):
        raise PermissionDenied
    return instance


def snippet_events(model: type[Any]) -> tuple[tuple[str, Any], ...]:
    if issubclass(model, WorkflowMixin):
        return SNIPPET_EVENTS + WORKFLOW_EVENTS
    return SNIPPET_EVENTS


def own_page_subscription(user: Any, page: Page) -> Subscription | None:
    return Subscription.objects.filter(user=user, page=page).first()


def own_object_subscription(user: Any, instance: Any) -> Subscription | None:
    content_type = ContentType.objects.get_for_model(instance, for_concrete_model=False)
    return Subscription.objects.filter(
        user=user, content_type=content_type, object_id=str(instance.pk)
    ).first()


def subscriptions_matching_page(page: Page) -> QuerySet[Subscription]:
    """The subscriptions that concern ``page``, by the fan-out's own rule
    (:func:`~wagtail_publish_hooks.subscribers.subscriptions_about`)."""
    return Subscription.objects.filter(
        subscriptions_about(
            page_id=page.pk,
            page_path=page.path,
            content_type_ids=model_content_type_ids(type(page.specific_deferred)),
            object_id=str(page.pk),
        )
    )
