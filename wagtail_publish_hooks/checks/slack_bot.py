"""The checks of the Slack bot (``SLACK_BOT``) and of the users who chose it."""

from __future__ import annotations

from django.core import checks
from django.db import connections, router

from ..block_kit import INSTALL_HINT, slack_sdk_installed
from ..conf import raw_settings
from ..slack_bot import SETTING_KEY, setting_problems
from ..subscription_models import Channel, NotificationPreferences
from ..validation import error, warning


def check_slack_bot(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E064: ``SLACK_BOT`` malformed; E065: set while ``slack_sdk`` is not installed; W034:
    users chose Slack direct messages while no bot is configured."""
    value = raw_settings().get(SETTING_KEY)
    if value is None:
        return _check_slack_chosen_without_a_bot()
    messages: list[checks.CheckMessage] = [
        error(
            64,
            message,
            keys=(SETTING_KEY, *keys),
            hint="Set it to {'TOKEN': 'xoxb-…'} (the bot token of the Slack app), and "
            "'API_URL' only for a proxy of Slack's Web API.",
        )
        for keys, message in setting_problems(value)
    ]
    if not slack_sdk_installed():
        messages.append(
            error(
                65,
                "is set, but slack_sdk, which validates the messages, is not installed: no "
                "direct message can be sent.",
                keys=(SETTING_KEY,),
                hint=INSTALL_HINT,
            )
        )
    return messages


def _check_slack_chosen_without_a_bot() -> list[checks.CheckMessage]:
    """W034, read from the database; nothing while its table cannot be read (before
    ``migrate``)."""
    using = router.db_for_read(NotificationPreferences)
    try:
        connection = connections[using]
        if NotificationPreferences._meta.db_table not in connection.introspection.table_names():
            return []
        count = NotificationPreferences.objects.using(using).filter(channel=Channel.SLACK).count()
    except Exception:  # no database at hand (yet): nothing to check
        return []
    if not count:
        return []
    return [
        warning(
            34,
            f"is not set, but {count} user(s) chose Slack direct messages for their "
            "notifications: they are told nothing until a Slack bot is configured.",
            keys=(SETTING_KEY,),
            hint="Set SLACK_BOT to the Slack app's bot token, or have those users choose email "
            "in their account settings.",
        )
    ]
