"""Wagtail hooks for the deliveries report, the dashboard panel and a page's deliveries."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.ui.menus import MenuItem
from wagtail.admin.ui.menus.pages import PageMenuItem

from .audit import LOG_ACTIONS
from .dashboard import DeliveriesPanel
from .menu import publish_hooks_menu_item
from .permissions import ObjectAccess, can_view_deliveries
from .viewsets import DeliveriesViewSet


@hooks.register("register_admin_viewset")
def register_deliveries_viewset() -> DeliveriesViewSet:
    return DeliveriesViewSet()


@hooks.register("register_settings_menu_item")
def register_publish_hooks_menu_item() -> Any:
    return publish_hooks_menu_item()


@hooks.register("register_log_actions")
def register_delivery_log_actions(actions: Any) -> None:
    for action, label, message in LOG_ACTIONS:
        actions.register_action(action, label, message)


@hooks.register("construct_homepage_panels")
def add_deliveries_panel(request: Any, panels: list[Any]) -> None:
    if can_view_deliveries(request.user):
        panels.append(DeliveriesPanel())


class PageDeliveriesMenuItem(PageMenuItem):
    label = _("Deliveries")
    icon_name = "resubmit"
    url_name = "wagtail_publish_hooks:page_deliveries"

    def is_shown(self, user: Any) -> bool:
        # Only for a page the user has access to: the view answers 403 otherwise.
        return can_view_deliveries(user) and ObjectAccess(user).can_see_page(self.page)


@hooks.register("register_page_header_buttons")
def page_deliveries_button(page: Any, user: Any, view_name: str, next_url: Any = None) -> Any:
    yield PageDeliveriesMenuItem(page=page, priority=66)


class SnippetDeliveriesMenuItem(MenuItem):
    def __init__(self, *args: Any, instance: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance = instance

    def is_shown(self, user: Any) -> bool:
        return can_view_deliveries(user) and ObjectAccess(user).can_see_instance(self.instance)


@hooks.register("register_snippet_listing_buttons")
def snippet_deliveries_button(snippet: Any, user: Any, next_url: Any = None) -> Any:
    content_type = ContentType.objects.get_for_model(snippet, for_concrete_model=False)
    yield SnippetDeliveriesMenuItem(
        _("Deliveries"),
        url=reverse(
            "wagtail_publish_hooks:snippet_deliveries",
            args=(content_type.app_label, content_type.model, str(snippet.pk)),
        ),
        icon_name="resubmit",
        priority=60,
        instance=snippet,
    )
