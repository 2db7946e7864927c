"""System checks: every configuration mistake gets a stable id naming the alias and the key.

Ids are never reused; a retired id stays listed in ``docs/reference/checks.md``. The messages
and the validators of options are :mod:`wagtail_publish_hooks.validation`'s; this package holds
the registered checks, one module per subject.
"""

from __future__ import annotations

from django.core import checks

from .database import check_sqlite_transactions
from .leases import check_managed_send_times
from .managed_destinations import check_managed_destinations
from .purge import check_purge_locations
from .receivers import check_receivers
from .settings import check_settings
from .slack_bot import check_slack_bot
from .tasks import check_task_backend


def register() -> None:
    checks.register(check_settings, "wagtail_publish_hooks")
    checks.register(check_managed_destinations, "wagtail_publish_hooks")
    checks.register(check_managed_send_times, "wagtail_publish_hooks")
    checks.register(check_receivers, "wagtail_publish_hooks")
    checks.register(check_task_backend, "wagtail_publish_hooks")
    checks.register(check_purge_locations, "wagtail_publish_hooks")
    checks.register(check_sqlite_transactions, "wagtail_publish_hooks")
    checks.register(check_slack_bot, "wagtail_publish_hooks")
