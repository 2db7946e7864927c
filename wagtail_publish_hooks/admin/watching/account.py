"""The "Publishing notifications" panel of Wagtail's account settings: how the user is told, and
what they watch, each with an "Unwatch" button."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail.admin.views.account import BaseSettingsPanel, notifications_tab

from ...subscription_models import NotificationPreferences, Subscription
from ..deliveries.display import WITHHELD
from ..permissions import ObjectAccess
from .forms import PreferencesForm
from .targets import EVENT_LABELS

NAMESPACE = "publish_hooks_watching"


def describe(subscription: Subscription, access: ObjectAccess) -> str:
    """What a subscription is about, the title withheld from who has no access to it."""
    if subscription.page is not None:
        page = subscription.page
        title = page.get_admin_display_title() if access.can_see_page(page) else str(WITHHELD)
        return str(_("%s and its subpages") % title) if subscription.include_subpages else title
    if subscription.task is not None:
        return str(_("Workflow task “%s”") % subscription.task.name)
    content_type = subscription.content_type
    model = content_type.model_class() if content_type else None
    if model is None:
        return str(WITHHELD)
    if not subscription.object_id:
        return str(_("Every %s") % model._meta.verbose_name)
    instance = model._default_manager.filter(pk=subscription.object_id).first()
    if instance is None or not access.can_see_instance(instance):
        return str(WITHHELD)
    return str(instance)


class PublishingNotificationsPanel(BaseSettingsPanel):
    name = "publish_hooks"
    title = _("Publishing notifications")
    tab = notifications_tab
    order = 300
    template_name = "wagtail_publish_hooks/admin/watching/account_panel.html"
    form_class = PreferencesForm

    def get_form(self) -> PreferencesForm:
        instance = NotificationPreferences.objects.filter(
            user=self.user
        ).first() or NotificationPreferences(user=self.user)
        if self.request.method == "POST":
            return PreferencesForm(self.request.POST, instance=instance, prefix=self.name)
        return PreferencesForm(instance=instance, prefix=self.name)

    def get_context_data(self) -> dict[str, Any]:
        context = super().get_context_data()
        access = ObjectAccess(self.user)
        subscriptions = Subscription.objects.filter(user=self.user).select_related(
            "page", "task", "content_type"
        )
        context["watched"] = [
            {
                "label": describe(subscription, access),
                "events": ", ".join(
                    str(EVENT_LABELS.get(event, event)) for event in subscription.events
                ),
                "unwatch_url": reverse(f"{NAMESPACE}:unwatch", args=(subscription.pk,)),
            }
            for subscription in subscriptions
        ]
        return context
