"""Slack direct messages to Wagtail users, through a Slack bot (``SLACK_BOT`` setting).

A placeholder: no bot client is configured in this version, so every call fails with a
clear, non-retryable error (recorded on the delivery, redeliverable once a bot is set up).
"""

from __future__ import annotations

from typing import Any

from .exceptions import DeliveryError


def send_direct_message(email: str, text: str, blocks: list[dict[str, Any]]) -> None:
    """Send ``text`` (the fallback) and ``blocks`` (Block Kit) to the Slack user whose
    address is ``email``."""
    raise DeliveryError(
        "Slack bot not configured: Slack direct messages cannot be sent", retryable=False
    )
