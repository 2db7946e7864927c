"""The destinations screens: settings-defined ones (read-only, with health), admin-managed ones."""

from __future__ import annotations

from typing import Any

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _
from wagtail.admin.menu import MenuItem


class DestinationsMenuItem(MenuItem):
    def is_shown(self, request: Any) -> bool:
        from .destination_views import can_view_destinations

        return can_view_destinations(request.user)


def destinations_menu_item() -> MenuItem:
    """The "Destinations" item of the "Publish hooks" menu, for users who may view them."""
    from .destination_views import NAMESPACE

    return DestinationsMenuItem(
        _("Destinations"),
        reverse_lazy(f"{NAMESPACE}:index"),
        name="publish-hooks-destinations",
        icon_name="link-external",
        order=200,
    )
