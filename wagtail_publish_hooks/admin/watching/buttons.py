"""The "Watch…" / "Watching" and "Watchers" items of a page's header menu, and "Watch…" in a
snippet's editor, shown only for what the user has access to."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.utils import quote
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from wagtail.admin.ui.menus.pages import PageMenuItem
from wagtail.models import DraftStateMixin
from wagtail.snippets.action_menu import ActionMenuItem

from ...subscription_models import Subscription
from ..permissions import ObjectAccess
from .account import NAMESPACE


class PageWatchMenuItem(PageMenuItem):
    icon_name = "view"
    url_name = f"{NAMESPACE}:watch_page"

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    @cached_property
    def label(self) -> Any:  # type: ignore[override]
        watching = Subscription.objects.filter(user=self.user, page=self.page).exists()
        return _("Watching") if watching else _("Watch…")

    def is_shown(self, user: Any) -> bool:
        return ObjectAccess(user).can_see_page(self.page)


class PageWatchersMenuItem(PageMenuItem):
    label = _("Watchers")
    icon_name = "group"
    url_name = f"{NAMESPACE}:page_watchers"

    def is_shown(self, user: Any) -> bool:
        return ObjectAccess(user).can_see_page(self.page)


class SnippetWatchMenuItem(ActionMenuItem):
    label = _("Watch…")
    name = "action-watch"
    icon_name = "view"

    def is_shown(self, context: dict[str, Any]) -> bool:
        instance = context.get("instance")
        if context.get("view") != "edit" or instance is None or instance.pk is None:
            return False
        return ObjectAccess(context["request"].user).can_see_instance(instance)

    def get_context_data(self, parent_context: dict[str, Any]) -> dict[str, Any]:
        context = super().get_context_data(parent_context)
        instance = parent_context["instance"]
        content_type = ContentType.objects.get_for_model(instance, for_concrete_model=False)
        watching = Subscription.objects.filter(
            user=parent_context["request"].user,
            content_type=content_type,
            object_id=str(instance.pk),
        ).exists()
        context["label"] = _("Watching") if watching else self.label
        return context

    def get_url(self, parent_context: dict[str, Any]) -> str:
        instance = parent_context["instance"]
        content_type = ContentType.objects.get_for_model(instance, for_concrete_model=False)
        return reverse(
            f"{NAMESPACE}:watch_snippet",
            args=(content_type.app_label, content_type.model, quote(instance.pk)),
        )


def snippet_watch_item(model: type[Any]) -> SnippetWatchMenuItem | None:
    """For snippets with a publishing state: the others have no event to watch."""
    if issubclass(model, DraftStateMixin):
        return SnippetWatchMenuItem(order=90)
    return None
