"""What a response means for a delivery: which statuses succeed, fail or are retried, and what
of a response is kept (``docs/explanation/guarantees.md``)."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from ..conf import MAX_RETRY_AFTER_SECONDS
from ..exceptions import DeliveryError, DestinationGone

#: How much of a response body is kept in the delivery log.
RESPONSE_EXCERPT_BYTES = 4096
#: How much of a response body is read at most; beyond it the connection is dropped, not reused.
RESPONSE_READ_LIMIT = 64 * 1024

#: Status codes worth another attempt, besides 5xx.
RETRYABLE_STATUS_CODES = frozenset({408, 425, 429})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds, from either of its forms; ``None`` if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    seconds: float | None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), float(MAX_RETRY_AFTER_SECONDS))


@dataclass
class HttpResult:
    """What came back from a request, ready to record.

    ``status_code`` is ``None`` for what was not one HTTP exchange (an email, a purge through
    several of Wagtail's backends): the attempt then records no status.
    """

    status_code: int | None
    response_headers: dict[str, str]
    response_body: str
    request_headers: dict[str, str]
    duration_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: The body as read (at most ``RESPONSE_READ_LIMIT`` bytes, not decoded), for a caller that
    #: must read the answer rather than its status (Slack's Web API answers ``200`` with
    #: ``"ok": false``). Never recorded: ``response_body`` is what is kept.
    body: bytes = field(default=b"", repr=False, compare=False)


def raise_for_status(result: HttpResult) -> None:
    """Apply the delivery rules to an HTTP status (``docs/explanation/guarantees.md``)."""
    status = result.status_code
    if status is None or 200 <= status < 300:
        return

    def failure(cls: type[DeliveryError], message: str, **kwargs: Any) -> DeliveryError:
        return error_for(result, message, cls=cls, **kwargs)

    if status == 410:
        raise failure(DestinationGone, "HTTP 410 Gone: the destination is disabled")
    if status in RETRYABLE_STATUS_CODES or 500 <= status < 600:
        retry_after = parse_retry_after(_header(result.response_headers, "Retry-After"))
        raise failure(DeliveryError, f"HTTP {status}", retryable=True, retry_after=retry_after)
    if 300 <= status < 400:
        raise failure(
            DeliveryError,
            f"HTTP {status}: redirects are not followed; point the destination at the final URL",
            retryable=False,
        )
    raise failure(DeliveryError, f"HTTP {status}", retryable=(status < 200))


def error_for(
    result: HttpResult, message: str, *, cls: type[DeliveryError] = DeliveryError, **kwargs: Any
) -> DeliveryError:
    """A failure about ``result``: its status, headers and body excerpt go on the record."""
    return cls(
        message,
        status_code=result.status_code,
        response_headers=result.response_headers,
        response_body=result.response_body,
        request_headers=result.request_headers,
        **kwargs,
    )


def _header(headers: dict[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def read_limited(response: requests.Response) -> tuple[bytes, bool]:
    """Up to ``RESPONSE_READ_LIMIT`` bytes of the body as sent (not decoded), and whether that
    was all of it. The deadline watch ends a body that trickles in for too long."""
    raw = response.raw
    chunks: list[bytes] = []
    size = 0
    while size < RESPONSE_READ_LIMIT:
        chunk = raw.read(min(8192, RESPONSE_READ_LIMIT - size), decode_content=False)
        if not chunk:
            raw.release_conn()
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def excerpt(raw: bytes, encoding: str | None) -> str:
    head = raw[:RESPONSE_EXCERPT_BYTES]
    try:
        text = head.decode(encoding or "utf-8", errors="replace")
    except LookupError:
        # A charset Python does not know (``charset=x-bogus``) says nothing about whether the
        # request succeeded: the status does. Read it as UTF-8, replacing what does not fit.
        text = head.decode("utf-8", errors="replace")
    if len(raw) > RESPONSE_EXCERPT_BYTES:
        text += "…"
    return text
