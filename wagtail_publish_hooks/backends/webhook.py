"""Signed JSON webhooks, as the Standard Webhooks specification describes them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.core import checks
from django.core.serializers.json import DjangoJSONEncoder
from standardwebhooks.webhooks import Webhook

from ..encoding import encode_text
from ..http.responses import HttpResult
from ..validation import check_headers_option, check_secret_option
from .http import COMMON_OPTION_KEYS, HttpBackend

if TYPE_CHECKING:
    from ..models import Delivery

#: Headers the backend sets itself; ``HEADERS`` may not replace them.
RESERVED_HEADERS = frozenset(
    {"content-type", "webhook-id", "webhook-timestamp", "webhook-signature", "user-agent"}
)


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact UTF-8 JSON."""
    return encode_text(
        json.dumps(payload, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))
    )


def secrets_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def sign(secrets: list[str], msg_id: str, timestamp: datetime, body: bytes) -> str:
    """``webhook-signature``: one ``v1,<base64>`` per secret, space-separated."""
    text = body.decode("utf-8")
    return " ".join(Webhook(secret).sign(msg_id, timestamp, text) for secret in secrets)


class WebhookBackend(HttpBackend):
    """POSTs the event as JSON, signed with Standard Webhooks headers.

    ``OPTIONS``: ``URL`` (required), ``SECRET`` (a ``whsec_`` string, or a list of them to
    rotate: one signature per secret), ``HEADERS`` (extra request headers), ``TIMEOUT`` (seconds
    to wait for the response, default 15) and ``CONNECT_TIMEOUT`` (default 5).
    """

    display_name = "Webhook (signed JSON POST)"
    secret_is_sent = False  # signs the requests; never sent

    option_keys = COMMON_OPTION_KEYS | {"SECRET", "HEADERS"}

    def __init__(self, *, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias=alias, options=options)
        self.secrets = secrets_list(options.get("SECRET"))
        self.headers = {str(k): str(v) for k, v in (options.get("HEADERS") or {}).items()}

    @classmethod
    def check_service_options(
        cls, alias: str, options: Mapping[str, Any]
    ) -> list[checks.CheckMessage]:
        messages = check_secret_option(alias, options, "SECRET")
        messages += check_headers_option(alias, options, "HEADERS", RESERVED_HEADERS)
        return messages

    def build_request(
        self, delivery: Delivery, *, now: datetime | None = None
    ) -> tuple[bytes, dict[str, str]]:
        event = delivery.event
        body = encode_body(delivery.payload)
        timestamp = now or datetime.now(UTC)
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "webhook-id": event.event_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
        }
        if self.secrets:
            headers["webhook-signature"] = sign(self.secrets, event.event_id, timestamp, body)
        return body, headers

    def longest_send_seconds(self) -> float:
        # One request, whose whole exchange ends within TIMEOUT (the guarded client's deadline).
        return self.timeout

    def deliver(self, delivery: Delivery) -> HttpResult:
        body, headers = self.build_request(delivery)
        return self.send(body, headers)
