"""Who watches an event: the subscriptions it matches, the users they reach, what each user may
see, and how each wants to be told.

Everything here works on many users at once in a fixed number of queries, so that telling a
thousand watchers costs what telling one does. Access follows the Wagtail admin, by the rules
the deliveries report applies to a delivery's object: a user is told about a page only if they
may use the admin and hold a page permission (:data:`PAGE_ACTIONS`) on the page or a page above
it, and about a snippet (or any other model) only if they may use the admin and hold a
permission (:data:`MODEL_ACTIONS`) on its model. Superusers see everything; inactive users are
never told.

Capture asks only :func:`subscriptions_exist`, which a process keeps in memory (dropped when it
saves or deletes a subscription itself, looked at again at most every
``DESTINATIONS_REFRESH_SECONDS`` for the changes of other processes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import DatabaseError, transaction
from django.db.models import Q

from .conf import get_settings
from .subscription_models import (
    SUBSCRIBABLE_EVENT_TYPES,
    Frequency,
    NotificationPreferences,
    Subscription,
)

logger = logging.getLogger("wagtail_publish_hooks")

#: Seconds a recipient's notifications wait, gathering others into one digest, by frequency.
FREQUENCY_SECONDS = {
    Frequency.IMMEDIATE: 0.0,
    Frequency.HOURLY: 3600.0,
    Frequency.DAILY: 86400.0,
}


#: Page permissions that give access to a page (and the pages below it): those that show it in
#: Wagtail's page explorer. The deliveries report applies the same rule.
PAGE_ACTIONS = frozenset({"add", "change", "publish", "bulk_delete", "lock", "unlock"})
#: Model permissions that give access to a snippet (or another model's instance).
MODEL_ACTIONS = frozenset({"add", "change", "delete", "view"})

#: Wagtail's treebeard paths: four characters a level.
STEP_LENGTH = 4


def is_subscribable(event_type: str) -> bool:
    return event_type in SUBSCRIBABLE_EVENT_TYPES


# -- Capture: is anyone watching at all? ---------------------------------------------------------


class SubscriptionsPresent:
    """This process's answer to "is there any subscription?", one ``EXISTS`` query at most
    every ``DESTINATIONS_REFRESH_SECONDS``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = False
        self._next_check = 0.0

    def get(self) -> bool:
        if time.monotonic() < self._next_check:
            return self._value
        with self._lock:
            try:
                self._value = Subscription.objects.exists()
            except DatabaseError:
                # Before migrate: nobody watches anything yet.
                return False
            try:
                interval = max(0.0, float(get_settings().DESTINATIONS_REFRESH_SECONDS))
            except (TypeError, ValueError):
                interval = 10.0
            self._next_check = time.monotonic() + interval
            return self._value

    def invalidate(self) -> None:
        self._next_check = 0.0


subscriptions_present = SubscriptionsPresent()


def subscriptions_exist() -> bool:
    """Whether any subscription exists (cached; see the module's docstring)."""
    return subscriptions_present.get()


def _subscriptions_changed(**kwargs: Any) -> None:
    subscriptions_present.invalidate()
    transaction.on_commit(subscriptions_present.invalidate)


def _invalidate(**kwargs: Any) -> None:
    subscriptions_present.invalidate()


def connect_signals() -> None:
    """Drop this process's answer when it saves or deletes a subscription, and after
    ``migrate`` or ``flush`` (rows written with ``bulk_create`` or a queryset's ``update`` send
    no signal: they are seen within ``DESTINATIONS_REFRESH_SECONDS``)."""
    from django.db.models.signals import post_delete, post_migrate, post_save

    post_save.connect(_subscriptions_changed, sender=Subscription, dispatch_uid="wph_subs_saved")
    post_delete.connect(
        _subscriptions_changed, sender=Subscription, dispatch_uid="wph_subs_deleted"
    )
    post_migrate.connect(_invalidate, dispatch_uid="wph_subs_migrated")


# -- What an event is about ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What subscriptions and permissions are matched against, read from a recorded event."""

    event_type: str
    content_type_id: int | None
    object_id: str
    #: The page's id and treebeard path (``""`` for an event not about a page).
    page_id: int | None
    page_path: str
    #: The workflow task the object was in (``workflow.*`` events).
    task_id: int | None
    actor_id: int | None

    @property
    def path_prefixes(self) -> list[str]:
        """The paths of the page and of every page above it."""
        path = self.page_path
        return [path[:end] for end in range(STEP_LENGTH, len(path) + 1, STEP_LENGTH)]


def target_of(event: Any, captured: Mapping[str, Any] | None = None) -> Target:
    """The :class:`Target` of an :class:`~wagtail_publish_hooks.models.Event`; ``captured``:
    what the fan-out kept at capture (the page's path, gone by delivery time for a deletion).
    Looks the path up (one query) only if it was not kept."""
    data = _mapping((event.payload or {}).get("data"))
    page = _mapping(data.get("page"))
    page_id = _int(page.get("id"))
    path = str((captured or {}).get("path") or "")
    if page_id is not None and not path:
        from wagtail.models import Page

        path = Page.objects.filter(pk=page_id).values_list("path", flat=True).first() or ""
    task = _mapping(_mapping(data.get("workflow")).get("task"))
    actor = _mapping(data.get("actor"))
    return Target(
        event_type=event.event_type,
        content_type_id=event.content_type_id,
        object_id=str(event.object_id or ""),
        page_id=page_id,
        page_path=path,
        task_id=_int(task.get("id")),
        actor_id=_int(actor.get("id")),
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


# -- Who watches it ------------------------------------------------------------------------------


def model_content_type_ids(model: type[Any] | None) -> list[int]:
    """The content types of ``model`` and of the models it inherits from: a subscription to a
    model concerns its subclasses too, as ``MODELS`` does. Read from Django's content type
    cache (no query once it holds them)."""
    if model is None:
        return []
    from django.contrib.contenttypes.models import ContentType
    from django.db import models

    parents = [
        klass
        for klass in model.__mro__
        if isinstance(klass, type)
        and issubclass(klass, models.Model)
        and klass is not models.Model
        and not klass._meta.abstract
    ]
    found = ContentType.objects.get_for_models(*parents, for_concrete_models=False)
    return sorted({content_type.pk for content_type in found.values()})


def subscriptions_about(
    *,
    page_id: int | None = None,
    page_path: str = "",
    content_type_ids: Iterable[int] = (),
    object_id: str = "",
    task_id: int | None = None,
) -> Q:
    """Which subscriptions concern an object: on the page, on a page above it with its
    subpages, on its model (or one it inherits from) for every object or for this one, or on
    the workflow task it is in. The one rule of both the fan-out and the admin's watchers
    list; event types are left to the caller."""
    where = Q(pk__in=[])
    if page_id is not None:
        where |= Q(page_id=page_id)
        if page_path:
            prefixes = [page_path[:end] for end in range(STEP_LENGTH, len(page_path), STEP_LENGTH)]
            where |= Q(include_subpages=True, page__path__in=prefixes)
    content_type_ids = list(content_type_ids)
    if content_type_ids:
        where |= Q(content_type_id__in=content_type_ids, object_id__in=["", object_id])
    if task_id is not None:
        where |= Q(task_id=task_id)
    return where


def watchers_of(target: Target) -> set[int]:
    """The ids of the users subscribed to ``target`` (directly or through a group; each
    once), in two queries: the matching subscriptions, then the members of their groups."""
    model = None
    if target.content_type_id is not None:
        from django.contrib.contenttypes.models import ContentType

        model = ContentType.objects.get_for_id(target.content_type_id).model_class()
    content_type_ids = model_content_type_ids(model)
    if not content_type_ids and target.content_type_id is not None:
        content_type_ids = [target.content_type_id]  # a model no longer installed
    where = subscriptions_about(
        page_id=target.page_id,
        page_path=target.page_path,
        content_type_ids=content_type_ids,
        object_id=target.object_id,
        task_id=target.task_id,
    )
    users: set[int] = set()
    groups: set[int] = set()
    for user_id, group_id, events in Subscription.objects.filter(where).values_list(
        "user_id", "group_id", "events"
    ):
        # Filtered here: a JSON list's membership is not portable SQL.
        if not isinstance(events, list) or target.event_type not in events:
            continue
        if user_id is not None:
            users.add(user_id)
        elif group_id is not None:
            groups.add(group_id)
    if groups:
        membership = get_user_model().groups.through
        users.update(
            membership.objects.filter(group_id__in=groups).values_list("user_id", flat=True)
        )
    return users


# -- What each may see ---------------------------------------------------------------------------


def users_with_access(user_ids: Iterable[int], target: Target) -> set[int]:
    """Those of ``user_ids`` who may see the object of ``target`` in the admin (see the
    module's docstring), in at most four queries whatever their number."""
    ids = set(user_ids)
    if not ids:
        return set()
    user_model = get_user_model()
    fields = {field.name for field in user_model._meta.get_fields()}
    users = user_model._default_manager.filter(pk__in=ids)
    if "is_active" in fields:
        users = users.filter(is_active=True)
    superusers: set[int] = set()
    if "is_superuser" in fields:
        rows = list(users.values_list("pk", "is_superuser"))
        superusers = {pk for pk, is_superuser in rows if is_superuser}
        others = {pk for pk, is_superuser in rows if not is_superuser}
    else:
        others = set(users.values_list("pk", flat=True))
    if not others:
        return superusers
    admin_access = _permissions([("wagtailadmin", "access_admin")])
    candidates = user_model._default_manager.filter(pk__in=others).filter(
        Q(user_permissions__in=admin_access) | Q(groups__permissions__in=admin_access)
    )
    if target.page_id is not None:
        from wagtail.models import GroupPagePermission

        if not target.page_path:
            return superusers
        page_groups = GroupPagePermission.objects.filter(
            page__path__in=target.path_prefixes,
            permission__content_type__app_label="wagtailcore",
            permission__codename__in=[f"{action}_page" for action in PAGE_ACTIONS],
        ).values("group_id")
        candidates = candidates.filter(groups__in=page_groups)
    else:
        model_permissions = _model_permissions(target.content_type_id)
        if model_permissions is None:
            return superusers
        allowed = user_model._default_manager.filter(
            Q(user_permissions__in=model_permissions) | Q(groups__permissions__in=model_permissions)
        ).values("pk")
        candidates = candidates.filter(pk__in=allowed)
    return superusers | set(candidates.values_list("pk", flat=True).distinct())


def _permissions(names: list[tuple[str, str]]) -> Any:
    where = Q(pk__in=[])
    for app_label, codename in names:
        where |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(where).values("pk")


def _model_permissions(content_type_id: int | None) -> Any:
    """The permissions of the model of ``content_type_id`` that open it in the admin (any of
    :data:`MODEL_ACTIONS`, as Wagtail's snippet views require), or ``None`` for no model."""
    if content_type_id is None:
        return None
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_id(content_type_id)
    model = content_type.model_class()
    if model is None:
        return None
    concrete = ContentType.objects.get_for_model(model)  # permissions are on the concrete model
    name = model._meta.model_name
    return Permission.objects.filter(
        content_type=concrete, codename__in=[f"{action}_{name}" for action in MODEL_ACTIONS]
    ).values("pk")


# -- How each wants to be told -------------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    channel: str = "email"
    frequency: str = Frequency.IMMEDIATE
    skip_own_actions: bool = True

    @property
    def window(self) -> float:
        return FREQUENCY_SECONDS.get(self.frequency, 0.0)  # type: ignore[call-overload]


def preferences_of(user_ids: Iterable[int]) -> dict[int, Preferences]:
    """Each user's preferences (the defaults for a user who never set any), in one query."""
    ids = list(user_ids)
    found = {
        row.user_id: Preferences(row.channel, row.frequency, row.skip_own_actions)
        for row in NotificationPreferences.objects.filter(user_id__in=ids)
    }
    return {user_id: found.get(user_id, Preferences()) for user_id in ids}


def recipients_of(target: Target) -> dict[int, Preferences]:
    """Who is told about ``target``, with their preferences: its watchers, less the actor if
    they asked to be left out of their own actions, less those who may not see the object.
    In a fixed number of queries, whatever the number of watchers."""
    watchers = watchers_of(target)
    if not watchers:
        return {}
    preferences = preferences_of(watchers)
    if target.actor_id is not None:
        own = preferences.get(target.actor_id)
        if own is not None and own.skip_own_actions:
            del preferences[target.actor_id]
    allowed = users_with_access(preferences, target)
    return {user_id: prefs for user_id, prefs in preferences.items() if user_id in allowed}
