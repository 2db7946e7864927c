"""The "Deliveries" item of a page's header menu and of a snippet's listing menu, shown to those
who may view deliveries and see the object."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils.translation import gettext_lazy as _
from wagtail.admin.ui.menus import MenuItem
from wagtail.admin.ui.menus.pages import PageMenuItem

from ..permissions import ObjectAccess, can_view_deliveries
from .display import NAMESPACE, url


class PageDeliveriesMenuItem(PageMenuItem):
    label = _("Deliveries")
    icon_name = "resubmit"
    url_name = f"{NAMESPACE}:page_deliveries"

    def is_shown(self, user: Any) -> bool:
        # Only for a page the user has access to: the view answers 403 otherwise.
        return can_view_deliveries(user) and ObjectAccess(user).can_see_page(self.page)


class SnippetDeliveriesMenuItem(MenuItem):
    def __init__(self, *args: Any, instance: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance = instance

    def is_shown(self, user: Any) -> bool:
        return can_view_deliveries(user) and ObjectAccess(user).can_see_instance(self.instance)


def snippet_deliveries_item(snippet: Any) -> SnippetDeliveriesMenuItem:
    content_type = ContentType.objects.get_for_model(snippet, for_concrete_model=False)
    return SnippetDeliveriesMenuItem(
        _("Deliveries"),
        url=url("snippet_deliveries", content_type.app_label, content_type.model, str(snippet.pk)),
        icon_name="resubmit",
        priority=60,
        instance=snippet,
    )
