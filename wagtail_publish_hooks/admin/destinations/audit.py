"""Wagtail audit log entries for what people do to destinations (enable, disable, test, rotate
the secret); creating, editing and deleting are logged by Wagtail's generic views."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from wagtail.log_actions import log

from ...models import DestinationState, ManagedDestination
from ...registry import settings_destinations

ENABLE = "wagtail_publish_hooks.enable"
DISABLE = "wagtail_publish_hooks.disable"
TEST = "wagtail_publish_hooks.test"
ROTATE_SECRET = "wagtail_publish_hooks.rotate_secret"  # noqa: S105 -- a log action

#: (action, label, message) for Wagtail's ``register_log_actions`` hook.
LOG_ACTIONS = (
    (ENABLE, gettext_lazy("Enable destination"), gettext_lazy("Destination enabled")),
    (DISABLE, gettext_lazy("Disable destination"), gettext_lazy("Destination disabled")),
    (TEST, gettext_lazy("Send test event"), gettext_lazy("Test event sent")),
    (ROTATE_SECRET, gettext_lazy("Rotate secret"), gettext_lazy("Signing secret rotated")),
)


def log_destination_action(alias: str, action: str, user: Any, **data: Any) -> None:
    """An audit log entry on the admin-managed destination, or, for one from settings, on its
    health record (``DestinationState``)."""
    instance: Any = ManagedDestination.objects.filter(alias=alias).first()
    if instance is None or alias in settings_destinations():
        instance, _created = DestinationState.objects.get_or_create(alias=alias)
    log(instance=instance, action=action, user=user, data={"alias": alias, **data})
