"""Who may see deliveries, and who may act on them.

``view_delivery`` (Django's default permission) opens the deliveries report, its detail view, a
page's deliveries and the dashboard panel; ``redeliver_delivery`` allows redelivering and
cancelling. Both go through Wagtail's permission policy, so superusers pass and group
permissions apply as everywhere else in the admin.
"""

from __future__ import annotations

from typing import Any

from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.permissions import policy_registry

from ..models import Delivery


def delivery_policy() -> ModelPermissionPolicy:
    policy = policy_registry.get_by_type(Delivery)
    assert isinstance(policy, ModelPermissionPolicy)
    return policy


def can_view_deliveries(user: Any) -> bool:
    return delivery_policy().user_has_permission(user, "view")


def can_redeliver(user: Any) -> bool:
    return delivery_policy().user_has_permission(user, "redeliver")
