"""Outgoing HTTP shared by the backends: a pooled session, safe targets, and response rules.

Everything that leaves this module is safe to record: error messages never include a URL's path
or query (a Slack or build-hook URL *is* a secret) nor any header value.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from . import __version__
from .conf import MAX_RETRY_AFTER_SECONDS, get_settings
from .exceptions import DeliveryError, DestinationGone, UnsafeDestination

USER_AGENT = f"wagtail-publish-hooks/{__version__}"

#: How much of a response body is kept in the delivery log.
RESPONSE_EXCERPT_BYTES = 4096
#: How much of a response body is read at most; beyond it the connection is dropped, not reused.
RESPONSE_READ_LIMIT = 64 * 1024

#: Status codes worth another attempt, besides 5xx.
RETRYABLE_STATUS_CODES = frozenset({408, 425, 429})

REDACTED = "[redacted]"
_SENSITIVE_HEADER_WORDS = (
    "auth",
    "secret",
    "token",
    "key",
    "signature",
    "pass",
    "cookie",
    "credential",
    "session",
)

_local = threading.local()


def get_session() -> requests.Session:
    """One pooled session per thread (``requests.Session`` is not documented thread-safe)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        # Proxies and .netrc from the environment must not redirect or decorate deliveries,
        # but a CA bundle named there (an internal CA) is still honoured.
        session.trust_env = False
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            session.verify = ca_bundle
        _local.session = session
    return session


def describe_url(url: str) -> str:
    """The URL with its path and query hidden: safe for logs, errors and the admin."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    suffix = "/…" if (parts.path not in ("", "/") or parts.query) else "/"
    return f"{parts.scheme}://{host}{port}{suffix}"


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    redacted = {}
    for name, value in headers.items():
        lowered = name.lower()
        if any(word in lowered for word in _SENSITIVE_HEADER_WORDS):
            redacted[name] = REDACTED
        else:
            redacted[name] = value
    return redacted


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_target(url: str) -> None:
    """Refuse targets on loopback, private, link-local and reserved addresses unless allowed."""
    allowed = get_settings().private_networks_allowed()
    if allowed is True:
        return
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise UnsafeDestination(f"{describe_url(url)} has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DeliveryError(f"could not resolve {describe_url(url)}: {exc.strerror}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if is_public_address(address):
            continue
        if allowed and any(
            _network_contains(network, address)
            for network in allowed  # type: ignore[union-attr]
        ):
            continue
        raise UnsafeDestination(
            f"{describe_url(url)} resolves to {address}, a non-public address; "
            "allow it with ALLOW_PRIVATE_NETWORKS"
        )


def _network_contains(network: Any, address: Any) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.version == network.version and address in network


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
    """What came back from a request, ready to record."""

    status_code: int
    response_headers: dict[str, str]
    response_body: str
    request_headers: dict[str, str]
    duration_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    connect_timeout: float | None = None,
) -> HttpResult:
    """POST ``body`` to ``url``; return the result or raise ``DeliveryError``.

    Redirects are never followed. The response body is read up to ``RESPONSE_READ_LIMIT`` within
    the overall ``timeout``; the first ``RESPONSE_EXCERPT_BYTES`` are kept.
    """
    check_target(url)
    request_headers = {"User-Agent": USER_AGENT, **headers}
    recorded_headers = redact_headers(request_headers)
    connect = min(connect_timeout or timeout, timeout)
    started = time.monotonic()
    try:
        response = get_session().post(
            url,
            data=body,
            headers=request_headers,
            timeout=(connect, timeout),
            allow_redirects=False,
            stream=True,
        )
    except requests.exceptions.ConnectTimeout:
        raise DeliveryError(
            f"connection to {describe_url(url)} timed out after {connect:g} s",
            request_headers=recorded_headers,
        ) from None
    except requests.exceptions.ReadTimeout:
        raise DeliveryError(
            f"no response from {describe_url(url)} within {timeout:g} s",
            request_headers=recorded_headers,
        ) from None
    except requests.exceptions.SSLError:
        raise DeliveryError(
            f"TLS error talking to {describe_url(url)}", request_headers=recorded_headers
        ) from None
    except requests.exceptions.ConnectionError as exc:
        raise DeliveryError(
            f"could not connect to {describe_url(url)}: {_connection_reason(exc)}",
            request_headers=recorded_headers,
        ) from None
    except requests.exceptions.RequestException as exc:
        raise DeliveryError(
            f"request to {describe_url(url)} failed: {type(exc).__name__}",
            request_headers=recorded_headers,
        ) from None

    try:
        raw_body, complete = _read_limited(response, deadline=started + timeout)
    except (requests.exceptions.RequestException, OSError) as exc:
        response.close()
        raise DeliveryError(
            f"response from {describe_url(url)} broke off: {type(exc).__name__}",
            status_code=response.status_code,
            request_headers=recorded_headers,
        ) from None
    if not complete:
        # An unread remainder would poison the pooled connection: drop it instead.
        response.close()
    duration_ms = int((time.monotonic() - started) * 1000)
    result = HttpResult(
        status_code=response.status_code,
        response_headers=redact_headers(dict(response.headers)),
        response_body=_excerpt(raw_body, response.encoding),
        request_headers=recorded_headers,
        duration_ms=duration_ms,
    )
    raise_for_status(result)
    return result


def encode_json(document: Any) -> bytes:
    """Compact UTF-8 JSON, as the chat and build backends send it."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def post_json(
    url: str, document: Any, *, timeout: float, connect_timeout: float | None = None
) -> HttpResult:
    """:func:`post` a JSON document."""
    return post(
        url,
        body=encode_json(document),
        headers={"Content-Type": "application/json"},
        timeout=timeout,
        connect_timeout=connect_timeout,
    )


def raise_for_status(result: HttpResult) -> None:
    """Apply the delivery rules to an HTTP status (``docs/explanation/guarantees.md``)."""
    status = result.status_code
    if 200 <= status < 300:
        return

    def failure(cls: type[DeliveryError], message: str, **kwargs: Any) -> DeliveryError:
        return cls(
            message,
            status_code=status,
            response_headers=result.response_headers,
            response_body=result.response_body,
            request_headers=result.request_headers,
            **kwargs,
        )

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


def _header(headers: dict[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _read_limited(response: requests.Response, *, deadline: float) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=8192):
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_READ_LIMIT or time.monotonic() > deadline:
            return b"".join(chunks), False
    return b"".join(chunks), True


def _excerpt(raw: bytes, encoding: str | None) -> str:
    text = raw[:RESPONSE_EXCERPT_BYTES].decode(encoding or "utf-8", errors="replace")
    if len(raw) > RESPONSE_EXCERPT_BYTES:
        text += "…"
    return text


def _connection_reason(exc: BaseException) -> str:
    text = str(exc).lower()
    for needle, reason in (
        ("refused", "connection refused"),
        ("reset", "connection reset"),
        ("name or service not known", "name not resolved"),
        ("nodename nor servname", "name not resolved"),
        ("temporary failure in name resolution", "name not resolved"),
        ("remotedisconnected", "remote end closed the connection"),
        ("badstatusline", "invalid HTTP response"),
        ("connection aborted", "connection aborted"),
    ):
        if needle in text:
            return reason
    return type(exc).__name__
