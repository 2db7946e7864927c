"""Every Wagtail hook of the package, in one place: the admin's screens, the "Publish hooks" menu,
audit log actions, the dashboard panel, the "Deliveries", "Watch…" and "Watchers" items of pages
and snippets, the "Publishing notifications" account settings panel, and the images and
documents that a bulk action moves to another collection.

Wagtail imports this module; the screens themselves live in :mod:`.admin.deliveries`,
:mod:`.admin.destinations` and :mod:`.admin.watching`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.menu import Menu, SubmenuMenuItem

from .admin.deliveries import audit as delivery_audit
from .admin.deliveries.buttons import PageDeliveriesMenuItem, snippet_deliveries_item
from .admin.deliveries.capture_failures import CaptureFailuresViewSet, capture_failures_menu_item
from .admin.deliveries.dashboard import DeliveriesPanel
from .admin.deliveries.viewset import DeliveriesViewSet, deliveries_menu_item
from .admin.destinations import audit as destination_audit
from .admin.destinations.viewset import DestinationViewSet, destinations_menu_item
from .admin.permissions import can_view_deliveries
from .admin.watching.account import PublishingNotificationsPanel
from .admin.watching.buttons import PageWatchersMenuItem, PageWatchMenuItem, snippet_watch_item
from .admin.watching.subscriptions import SubscriptionViewSet, subscriptions_menu_item
from .admin.watching.viewset import WatchingViewSet
from .media_handlers import after_bulk_action

# -- Screens ------------------------------------------------------------------------------------


@hooks.register("register_admin_viewset")
def register_capture_failures_viewset() -> CaptureFailuresViewSet:
    return CaptureFailuresViewSet()


@hooks.register("register_admin_viewset")
def register_deliveries_viewset() -> DeliveriesViewSet:
    return DeliveriesViewSet()


@hooks.register("register_admin_viewset")
def register_destinations_viewset() -> DestinationViewSet:
    return DestinationViewSet()


@hooks.register("register_admin_viewset")
def register_watching_viewset() -> WatchingViewSet:
    return WatchingViewSet()


@hooks.register("register_admin_viewset")
def register_subscriptions_viewset() -> SubscriptionViewSet:
    return SubscriptionViewSet()


# -- The "Publish hooks" item of the Settings menu ----------------------------------------------


def publish_hooks_menu_item() -> SubmenuMenuItem:
    """Deliveries, Destinations, Subscriptions and Capture failures; shown only when one of its
    items is (Wagtail hides an empty submenu)."""
    return SubmenuMenuItem(
        _("Publish hooks"),
        Menu(
            items=[
                deliveries_menu_item(),
                destinations_menu_item(),
                subscriptions_menu_item(),
                capture_failures_menu_item(),
            ]
        ),
        name="publish-hooks",
        icon_name="resubmit",
        order=900,
    )


@hooks.register("register_settings_menu_item")
def register_publish_hooks_menu_item() -> SubmenuMenuItem:
    return publish_hooks_menu_item()


# -- Audit log ----------------------------------------------------------------------------------


@hooks.register("register_log_actions")
def register_delivery_log_actions(actions: Any) -> None:
    for action, label, message in delivery_audit.LOG_ACTIONS:
        actions.register_action(action, label, message)


@hooks.register("register_log_actions")
def register_destination_log_actions(actions: Any) -> None:
    for action, label, message in destination_audit.LOG_ACTIONS:
        actions.register_action(action, label, message)


# -- The dashboard, pages and snippets ----------------------------------------------------------


@hooks.register("construct_homepage_panels")
def add_deliveries_panel(request: Any, panels: list[Any]) -> None:
    if can_view_deliveries(request.user):
        panels.append(DeliveriesPanel())


@hooks.register("register_page_header_buttons")
def page_deliveries_button(
    page: Any, user: Any, view_name: str, next_url: Any = None
) -> Iterator[Any]:
    yield PageDeliveriesMenuItem(page=page, priority=66)


@hooks.register("register_page_header_buttons")
def page_watch_buttons(page: Any, user: Any, view_name: str, next_url: Any = None) -> Iterator[Any]:
    yield PageWatchMenuItem(page=page, user=user, priority=67)
    yield PageWatchersMenuItem(page=page, priority=68)


@hooks.register("register_snippet_listing_buttons")
def snippet_deliveries_button(snippet: Any, user: Any, next_url: Any = None) -> Iterator[Any]:
    yield snippet_deliveries_item(snippet)


@hooks.register("register_snippet_action_menu_item")
def snippet_watch_button(model: Any) -> Any:
    return snippet_watch_item(model)


# -- Account settings ----------------------------------------------------------------------------


@hooks.register("register_account_settings_panel")
def publishing_notifications_panel(request: Any, user: Any, profile: Any) -> Any:
    return PublishingNotificationsPanel(request, user, profile)


# -- Images and documents moved by a bulk action --------------------------------------------------


@hooks.register("after_bulk_action")
def media_moved_by_bulk_action(request: Any, action_type: str, objects: Any, action: Any) -> None:
    form = getattr(action, "cleaned_form", None)
    collection = getattr(form, "cleaned_data", {}).get("collection") if form is not None else None
    after_bulk_action(action_type, objects, collection)
