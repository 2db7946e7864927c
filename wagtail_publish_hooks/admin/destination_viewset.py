"""The destinations screens as one Wagtail ``ModelViewSet``, under
``/admin/publish-hooks/destinations/``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import path
from wagtail.admin.viewsets.model import ModelViewSet

from ..models import ManagedDestination
from . import destination_views as views
from .destination_forms import DestinationForm


class DestinationViewSet(ModelViewSet):
    model = ManagedDestination
    name = views.NAMESPACE
    url_prefix = "publish-hooks/destinations"
    icon = "link-external"
    add_to_admin_menu = False
    copy_view_enabled = False
    inspect_view_enabled = False
    index_view_class = views.DestinationIndexView
    add_view_class = views.DestinationCreateView
    edit_view_class = views.DestinationEditView
    delete_view_class = views.DestinationDeleteView
    history_view_class = views.DestinationHistoryView
    usage_view_class = views.DestinationUsageView
    create_template_name = f"{views.TEMPLATES}create.html"
    edit_template_name = f"{views.TEMPLATES}edit.html"

    def get_form_class(self, for_update: bool = False) -> type[DestinationForm]:
        return DestinationForm

    def get_permissions_to_register(self) -> Any:
        # "view" too: it opens the destinations screens without allowing changes.
        content_type = ContentType.objects.get_for_model(ManagedDestination)
        return Permission.objects.filter(content_type=content_type)

    def get_urlpatterns(self) -> list[Any]:
        return [
            *super().get_urlpatterns(),
            path("rotate-secret/<int:pk>/", views.RotateSecretView.as_view(), name="rotate_secret"),
            # The alias comes last: an alias from settings may contain anything, "/" included.
            path("enable/<path:alias>", views.EnableView.as_view(), name="enable"),
            path("disable/<path:alias>", views.DisableView.as_view(), name="disable"),
            path("test/<path:alias>", views.SendTestEventView.as_view(), name="send_test"),
            path("view/<path:alias>", views.DestinationDetailView.as_view(), name="detail"),
        ]
