"""Helpers for the admin tests: URLs, deliveries written straight to the outbox, users with
given permissions, and the rows of the deliveries report."""

from __future__ import annotations

import html
import re
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from wagtail_publish_hooks.models import Delivery, DeliveryStatus, Event


def admin_url(name: str, *args: Any) -> str:
    return reverse(f"wagtail_publish_hooks:{name}", args=args)


def make_delivery(
    title: str = "Hello world",
    *,
    status: str = DeliveryStatus.DELIVERED,
    destination: str = "consumer",
    event_type: str = "page.published",
    created_at=None,
    instance: Any = None,
    attempts: int = 1,
) -> Delivery:
    """A delivery written straight to the outbox, as the pipeline records one."""
    created_at = created_at or timezone.now()
    event = Event.objects.create(
        event_type=event_type,
        created_at=created_at,
        object_repr=str(instance) if instance is not None else title,
        content_type=(
            ContentType.objects.get_for_model(instance, for_concrete_model=False)
            if instance is not None
            else None
        ),
        object_id=str(instance.pk) if instance is not None else "",
        payload={"id": "evt", "type": event_type, "data": {"page": {"title": title}}},
    )
    return Delivery.objects.create(
        event=event,
        destination=destination,
        status=status,
        attempts=attempts,
        created_at=created_at,
        delivered_at=created_at if status == DeliveryStatus.DELIVERED else None,
        last_status_code=200 if status == DeliveryStatus.DELIVERED else 500,
    )


def user_with(django_user_model, *codenames: str, username: str = "editor"):
    """A non-superuser in a group with Wagtail admin access and the given permissions."""
    group = Group.objects.create(name=f"group-{username}")
    group.permissions.add(
        Permission.objects.get(content_type__app_label="wagtailadmin", codename="access_admin"),
        *(
            Permission.objects.get(content_type__app_label="wagtail_publish_hooks", codename=c)
            for c in codenames
        ),
    )
    user = django_user_model.objects.create_user(username=username, password="pw")
    user.groups.add(group)
    return user


def rows(response) -> list[str]:
    """The text of each row of the report's table."""
    content = response.content.decode()
    if '<table class="listing' not in content:
        return []
    table = content.split('<table class="listing', 1)[1]
    body = table.split("<tbody", 1)[1].split("</tbody>", 1)[0]
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split())
        for row in body.split("<tr")[1:]
    ]
