"""Who may use the admin's screens, how a refusal is answered, and which objects' titles a user
may read.

``view_delivery`` (Django's default permission) opens the deliveries report, its detail view, a
page's deliveries and the dashboard panel; ``redeliver_delivery`` allows redelivering and
cancelling. Both go through Wagtail's permission policy, so superusers pass and group
permissions apply as everywhere else in the admin.

Neither permission lets anyone read an object they could not otherwise see. A delivery is about
an object (a page, a snippet, the instance given to ``emit()``), and its title and payload are
that object's content: they are shown only to a user with access to the object itself, decided by
Wagtail's own permission policies (:class:`ObjectAccess`).

The destinations screens open with any of the model permissions on ``ManagedDestination``
(``view`` included); enabling, disabling, sending a test event and rotating a secret need
``change``.

A refusal is answered with HTTP 403 (:class:`ForbiddenMixin`), one page for every screen.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Case, CharField, Q, QuerySet, Value, When
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from wagtail.models import Page
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.permission_policies.base import BasePermissionPolicy
from wagtail.permissions import page_permission_policy, policy_registry

from ..models import Delivery, ManagedDestination

# The permissions that give access to a page (and the pages below it), or to a snippet (or
# another model's instance): watching tells users by the same rules.
from ..subscribers import MODEL_ACTIONS, PAGE_ACTIONS

#: Where the result of :func:`visible_model_content_type_ids` is kept on the user object for
#: the rest of the request (as Wagtail's policies keep their permissions).
_MODEL_CACHE = "_publish_hooks_visible_content_types"


def delivery_policy() -> ModelPermissionPolicy:
    policy = policy_registry.get_by_type(Delivery)
    assert isinstance(policy, ModelPermissionPolicy)
    return policy


def can_view_deliveries(user: Any) -> bool:
    return delivery_policy().user_has_permission(user, "view")


def can_redeliver(user: Any) -> bool:
    return delivery_policy().user_has_permission(user, "redeliver")


def destination_policy() -> ModelPermissionPolicy:
    policy = policy_registry.get_by_type(ManagedDestination)
    assert isinstance(policy, ModelPermissionPolicy)
    return policy


def can_view_destinations(user: Any) -> bool:
    return destination_policy().user_has_any_permission(user, ["view", "add", "change", "delete"])


def can_manage_destinations(user: Any) -> bool:
    """Enable, disable, test and rotate: the permission to change managed destinations."""
    return destination_policy().user_has_permission(user, "change")


def forbidden(request: HttpRequest) -> HttpResponse:
    """The refusal: HTTP 403, a page in the admin's style."""
    return TemplateResponse(
        request,
        "wagtail_publish_hooks/admin/forbidden.html",
        {"page_title": _("Permission denied")},
        status=403,
    )


class ForbiddenMixin:
    """Answer a user without the permission with HTTP 403 (:func:`forbidden`), rather than the
    redirect to the dashboard that Wagtail's admin would make of it: scripts and monitoring see
    a refusal, not a success."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        except PermissionDenied:
            return forbidden(request)


def is_page_model(model: type[models.Model] | None) -> bool:
    return model is not None and issubclass(model, Page)


def is_snippet_model(model: type[models.Model] | None) -> bool:
    from wagtail.snippets.models import get_snippet_models

    return model is not None and model in get_snippet_models()


def model_policy(model: type[models.Model]) -> BasePermissionPolicy:
    """The permission policy Wagtail applies to ``model`` (a snippet's viewset registers one),
    else Django's model permissions. Never registers a fallback: that is Wagtail's business."""
    return policy_registry.get_by_type(model, fallback=False) or ModelPermissionPolicy(model)


def page_models() -> list[type[models.Model]]:
    return [model for model in apps.get_models() if issubclass(model, Page)]


def visible_model_content_type_ids(user: Any) -> frozenset[int]:
    """Content types of the models (other than pages) on which ``user`` holds a permission.

    Decided per model from the permissions Wagtail already caches on the user, so deciding it
    for a whole report costs the same few queries whatever the number of rows.
    """
    cached = getattr(user, _MODEL_CACHE, None)
    if cached is not None:
        return cached
    visible = [
        model
        for model in apps.get_models()
        if not issubclass(model, Page)
        and model_policy(model).user_has_any_permission(user, MODEL_ACTIONS)
    ]
    content_types = ContentType.objects.get_for_models(*visible, for_concrete_models=False)
    ids = frozenset(content_type.pk for content_type in content_types.values())
    setattr(user, _MODEL_CACHE, ids)
    return ids


class ObjectAccess:
    """Which events' objects ``user`` may see, as SQL (for lists) and for one object.

    - An event about no object: visible.
    - About a page: the user holds a page permission over it (on it or on a page above it),
      as Wagtail's page permission policy decides.
    - About any other model: the user holds a permission (add, change, delete or view) on that
      model, as the model's permission policy (a snippet's viewset's) decides; one instance,
      checked on its own, goes through the policy's instance check.
    - Superusers see everything.
    """

    def __init__(self, user: Any) -> None:
        self.user = user

    @cached_property
    def sees_everything(self) -> bool:
        return bool(getattr(self.user, "is_active", False) and self.user.is_superuser)

    def condition(self, prefix: str = "event__") -> Q:
        """A filter matching the events (``prefix=""``) or deliveries whose object is visible."""
        if self.sees_everything:
            return Q()
        page_types = ContentType.objects.get_for_models(
            *page_models(), for_concrete_models=False
        ).values()
        pages = (
            page_permission_policy.instances_user_has_any_permission_for(self.user, PAGE_ACTIONS)
            .order_by()
            .annotate(object_key=Cast("pk", CharField()))
            .values("object_key")
        )
        no_object = Q(**{f"{prefix}content_type__isnull": True}) | Q(**{f"{prefix}object_id": ""})
        visible_page = Q(
            **{
                f"{prefix}content_type_id__in": [content_type.pk for content_type in page_types],
                f"{prefix}object_id__in": pages,
            }
        )
        visible_model = Q(
            **{f"{prefix}content_type_id__in": sorted(visible_model_content_type_ids(self.user))}
        )
        return no_object | visible_page | visible_model

    def annotate(self, queryset: QuerySet[Any], prefix: str = "event__") -> QuerySet[Any]:
        """``queryset`` with ``object_visible``: whether the row's object may be shown. Part of
        the rows' own query, so it costs nothing per row."""
        if self.sees_everything:
            return queryset.annotate(object_visible=Value(True))
        return queryset.annotate(
            object_visible=Case(
                When(self.condition(prefix), then=Value(True)),
                default=Value(False),
                output_field=models.BooleanField(),
            )
        )

    def can_see_page(self, page: Page) -> bool:
        return page_permission_policy.user_has_any_permission_for_instance(
            self.user, PAGE_ACTIONS, page
        )

    def can_see_instance(self, instance: models.Model) -> bool:
        if isinstance(instance, Page):
            return self.can_see_page(instance)
        return model_policy(type(instance)).user_has_any_permission_for_instance(
            self.user, MODEL_ACTIONS, instance
        )

    def can_see_model(self, model: type[models.Model]) -> bool:
        return model_policy(model).user_has_any_permission(self.user, MODEL_ACTIONS)
