"""The kinds of admin users of the trust model, built from real groups and permissions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from wagtail.models import GroupPagePermission, Page

#: Every kind of user the admin is tried with.
KINDS = ("anonymous", "editor", "viewer", "redeliverer", "manager", "subscriptions", "superuser")

#: Model permissions of each kind (besides "Can access Wagtail admin").
KIND_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "editor": (),
    "viewer": ("wagtail_publish_hooks.view_delivery",),
    "redeliverer": (
        "wagtail_publish_hooks.view_delivery",
        "wagtail_publish_hooks.redeliver_delivery",
    ),
    "manager": (
        "wagtail_publish_hooks.add_manageddestination",
        "wagtail_publish_hooks.change_manageddestination",
        "wagtail_publish_hooks.delete_manageddestination",
    ),
    "subscriptions": (
        "wagtail_publish_hooks.view_subscription",
        "wagtail_publish_hooks.add_subscription",
        "wagtail_publish_hooks.change_subscription",
        "wagtail_publish_hooks.delete_subscription",
    ),
}


def permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def admin_user(
    username: str,
    *permissions: str,
    pages: dict[Page, tuple[str, ...]] | None = None,
    superuser: bool = False,
) -> Any:
    """A user in a group of their own with admin access, the given model permissions
    (``"app.codename"``) and page permissions (``{page: ("change_page", ...)}``)."""
    user_model = get_user_model()
    if superuser:
        return user_model.objects.create_superuser(username=username, password="pw")
    group = Group.objects.create(name=f"group-{username}")
    group.permissions.add(
        permission("wagtailadmin.access_admin"), *(permission(p) for p in permissions)
    )
    for page, codenames in (pages or {}).items():
        for codename in codenames:
            GroupPagePermission.objects.create(
                group=group, page=page, permission=permission(f"wagtailcore.{codename}")
            )
    user = user_model.objects.create_user(username=username, password="pw")
    user.groups.add(group)
    return user


def user_of_kind(kind: str, *, editor_page: Page | None = None) -> Any:
    """One user of ``kind`` (``None`` for anonymous). Every kind but the superuser is also an
    editor of ``editor_page`` when given: page permissions open none of the publish hooks
    admin, and add nothing to the other permissions."""
    if kind == "anonymous":
        return None
    if kind == "superuser":
        return admin_user(kind, superuser=True)
    pages = {editor_page: ("add_page", "change_page", "publish_page")} if editor_page else None
    return admin_user(kind, *KIND_PERMISSIONS[kind], pages=pages)


def logged_in(user: Any) -> Client:
    """A test client with ``user`` logged in."""
    client = Client()
    client.force_login(user)
    return client


def destination_manager(*codenames: str, username: str = "manager") -> Client:
    """A logged-in user with admin access and the given permissions of this app
    (``"add_manageddestination"``, ...), and nothing else."""
    return logged_in(admin_user(username, *(f"wagtail_publish_hooks.{c}" for c in codenames)))
