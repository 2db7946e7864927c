"""The destinations screens as one Wagtail ``ModelViewSet``, under
``/admin/publish-hooks/destinations/``, and their item of the "Publish hooks" menu."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import path, reverse_lazy
from django.utils.translation import gettext_lazy as _
from wagtail.admin.menu import MenuItem
from wagtail.admin.viewsets.model import ModelViewSet

from ...models import ManagedDestination
from ..permissions import can_view_destinations
from .actions import DisableView, EnableView, SendTestEventView
from .editing import (
    DestinationCreateView,
    DestinationDeleteView,
    DestinationEditView,
    DestinationHistoryView,
    DestinationUsageView,
    RotateSecretView,
)
from .forms import DestinationForm
from .rows import NAMESPACE, TEMPLATES
from .views import DestinationDetailView, DestinationIndexView


class DestinationViewSet(ModelViewSet):
    model = ManagedDestination
    name = NAMESPACE
    url_prefix = "publish-hooks/destinations"
    icon = "link-external"
    add_to_admin_menu = False
    copy_view_enabled = False
    inspect_view_enabled = False
    index_view_class = DestinationIndexView
    add_view_class = DestinationCreateView
    edit_view_class = DestinationEditView
    delete_view_class = DestinationDeleteView
    history_view_class = DestinationHistoryView
    usage_view_class = DestinationUsageView
    create_template_name = f"{TEMPLATES}create.html"
    edit_template_name = f"{TEMPLATES}edit.html"

    def get_form_class(self, for_update: bool = False) -> type[DestinationForm]:
        return DestinationForm

    def get_permissions_to_register(self) -> Any:
        # "view" too: it opens the destinations screens without allowing changes.
        content_type = ContentType.objects.get_for_model(ManagedDestination)
        return Permission.objects.filter(content_type=content_type)

    def get_urlpatterns(self) -> list[Any]:
        return [
            *super().get_urlpatterns(),
            path("rotate-secret/<int:pk>/", RotateSecretView.as_view(), name="rotate_secret"),
            # The alias comes last: an alias from settings may contain anything, "/" included.
            path("enable/<path:alias>", EnableView.as_view(), name="enable"),
            path("disable/<path:alias>", DisableView.as_view(), name="disable"),
            path("test/<path:alias>", SendTestEventView.as_view(), name="send_test"),
            path("view/<path:alias>", DestinationDetailView.as_view(), name="detail"),
        ]


class DestinationsMenuItem(MenuItem):
    def is_shown(self, request: Any) -> bool:
        return can_view_destinations(request.user)


def destinations_menu_item() -> MenuItem:
    """The "Destinations" item of the "Publish hooks" menu, for users who may view them."""
    return DestinationsMenuItem(
        _("Destinations"),
        reverse_lazy(f"{NAMESPACE}:index"),
        name="publish-hooks-destinations",
        icon_name="link-external",
        order=200,
    )
