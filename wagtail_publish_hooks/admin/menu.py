"""The "Publish hooks" item of the Settings menu, with Deliveries and Destinations."""

from __future__ import annotations

from typing import Any

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _
from wagtail.admin.menu import Menu, MenuItem, SubmenuMenuItem

from .capture_failures import capture_failures_menu_item
from .destinations import destinations_menu_item
from .permissions import can_view_deliveries


class DeliveriesMenuItem(MenuItem):
    def is_shown(self, request: Any) -> bool:
        return can_view_deliveries(request.user)


def deliveries_menu_item() -> MenuItem:
    return DeliveriesMenuItem(
        _("Deliveries"),
        reverse_lazy("wagtail_publish_hooks:deliveries"),
        name="publish-hooks-deliveries",
        icon_name="resubmit",
        order=100,
    )


def publish_hooks_menu_item() -> SubmenuMenuItem:
    """The submenu; shown only when one of its items is (Wagtail hides an empty submenu)."""
    items = [deliveries_menu_item()]
    destinations = destinations_menu_item()
    if destinations is not None:
        items.append(destinations)
    items.append(capture_failures_menu_item())
    return SubmenuMenuItem(
        _("Publish hooks"),
        Menu(items=items),
        name="publish-hooks",
        icon_name="resubmit",
        order=900,
    )
