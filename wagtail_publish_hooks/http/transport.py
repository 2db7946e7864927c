"""Sending a request: one pooled session per thread, and every failure said safely.

Everything that leaves this module is safe to record: error messages never include a URL's path
or query (a Slack or build-hook URL *is* a secret) nor any header value.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from http.client import HTTPException
from typing import Any

import requests
import urllib3
from requests.structures import CaseInsensitiveDict
from requests.utils import get_auth_from_url

from .._version import __version__
from ..encoding import encode_json
from ..exceptions import DeliveryError
from ..redaction import describe_url, redact_headers
from .deadlines import Watch, send_limit, watched
from .pinning import PinnedAddressAdapter
from .responses import HttpResult, excerpt, raise_for_status, read_limited

USER_AGENT = f"wagtail-publish-hooks/{__version__}"

_local = threading.local()


def get_session() -> requests.Session:
    """One pooled session per thread (``requests.Session`` is not documented thread-safe).

    Its adapter resolves each target once, refuses non-public addresses, and connects to the
    address it checked (see :func:`resolve_target`); connections are pooled per host name and
    address.
    """
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
        adapter = PinnedAddressAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


def close_session() -> None:
    """Close this thread's session and its pooled connections (the next request opens anew)."""
    session = getattr(_local, "session", None)
    if session is not None:
        session.close()
        del _local.session


def post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    connect_timeout: float | None = None,
) -> HttpResult:
    """POST ``body`` to ``url``; return the result or raise ``DeliveryError``.

    The host is resolved once, every address checked, and the connection made to a checked
    address. Redirects are never followed. The whole exchange (connecting, sending, the
    response's head and body) must end within ``timeout`` seconds, however the peer spaces its
    bytes; the response body is read up to ``RESPONSE_READ_LIMIT`` and its first
    ``RESPONSE_EXCERPT_BYTES`` kept.
    """
    return send_request(
        "POST", url, body=body, headers=headers, timeout=timeout, connect_timeout=connect_timeout
    )


def send_request(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str],
    timeout: float,
    connect_timeout: float | None = None,
) -> HttpResult:
    """:func:`post`, with another method (``PURGE``, for one): the same checks, pinning,
    deadline, limits and rules."""
    request_headers = {"User-Agent": USER_AGENT, **headers}
    # An encoded body could inflate without bound when decoded; the raw bytes are what is kept.
    request_headers.setdefault("Accept-Encoding", "identity")
    recorded_headers = redact_headers(request_headers)
    connect = min(connect_timeout or timeout, timeout)
    started = time.monotonic()
    limit = send_limit()
    if limit is not None and limit < started + timeout:
        if limit <= started:
            raise DeliveryError(
                f"not sent to {describe_url(url)}: the worker's claim on the delivery was "
                "running out (LEASE_SECONDS)",
                request_headers=recorded_headers,
            )
        timeout = limit - started
        connect = min(connect, timeout)
    with watched(started + timeout) as watch:
        return _exchange(
            method, url, body, request_headers, recorded_headers, connect, timeout, watch
        )


def _exchange(
    method: str,
    url: str,
    body: bytes,
    request_headers: dict[str, str],
    recorded_headers: dict[str, str],
    connect: float,
    timeout: float,
    watch: Watch,
) -> HttpResult:
    started = time.monotonic()

    def failure(message: str, **kwargs: Any) -> DeliveryError:
        if watch.expired and watch.sent:
            message = f"no complete response from {describe_url(url)} within {timeout:.3g} s"
        elif watch.expired:
            # The deadline passed while connecting, or before the request could be written (a
            # busy machine): the request never left, and the record says so.
            message = (
                f"not sent to {describe_url(url)}: {timeout:.3g} s passed before the request "
                "could be sent"
            )
        return DeliveryError(message, request_headers=recorded_headers, **kwargs)

    try:
        response = _send(method, url, body, request_headers, (connect, timeout))
    except requests.exceptions.ConnectTimeout:
        raise failure(f"connection to {describe_url(url)} timed out after {connect:g} s") from None
    except requests.exceptions.ReadTimeout:
        raise failure(f"no response from {describe_url(url)} within {timeout:g} s") from None
    except requests.exceptions.SSLError:
        raise failure(f"TLS error talking to {describe_url(url)}") from None
    except requests.exceptions.ConnectionError as exc:
        if watch.sent:
            raise failure(
                f"the connection to {describe_url(url)} broke: {_connection_reason(exc)}"
            ) from None
        raise failure(
            f"could not connect to {describe_url(url)}: {_connection_reason(exc)}"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise failure(f"request to {describe_url(url)} failed: {type(exc).__name__}") from None

    try:
        raw_body, complete = read_limited(response)
    except (
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,
        OSError,
        HTTPException,
    ) as exc:
        response.close()
        raise failure(
            f"response from {describe_url(url)} broke off: {type(exc).__name__}",
            status_code=response.status_code,
        ) from None
    if not complete:
        # An unread remainder would poison the pooled connection: drop it instead.
        response.close()
    if watch.expired:
        # Whatever the status said, the receiver did not finish in time: another attempt
        # is safer than guessing (deliveries are at least once).
        raise failure("")
    duration_ms = int((time.monotonic() - started) * 1000)
    result = HttpResult(
        status_code=response.status_code,
        response_headers=redact_headers(dict(response.headers)),
        response_body=excerpt(raw_body, response.encoding),
        request_headers=recorded_headers,
        duration_ms=duration_ms,
        body=raw_body,
    )
    raise_for_status(result)
    return result


def _send(
    method: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: tuple[float, float],
) -> requests.Response:
    """Send one request through this thread's session's (pinning) adapter, never following a
    redirect, the response left unread.

    This is what ``Session.request(..., allow_redirects=False, stream=True)`` does, without
    what a delivery never uses: environment settings (``trust_env`` is off), response hooks,
    the redirect that is not followed, and the session's cookie jar (a cookie one receiver
    sets is not sent to the next). The URL is prepared once per URL (:func:`_prepared_url`);
    the headers are validated at every request, as ``requests`` does.
    """
    session = get_session()
    prepared_url, has_credentials = _prepared_url(url)
    request = requests.PreparedRequest()
    request.prepare_method(method)
    request.url = prepared_url
    merged = CaseInsensitiveDict(session.headers)
    merged.update(headers)
    request.prepare_headers(merged)
    request.prepare_body(body or None, None)
    if has_credentials:
        request.prepare_auth(None)  # the URL's user and password, as Basic credentials
    adapter = session.get_adapter(prepared_url)
    return adapter.send(
        request,
        stream=True,
        timeout=timeout,
        verify=True if session.verify is None else session.verify,
        cert=session.cert,
    )


@functools.lru_cache(maxsize=256)
def _prepared_url(url: str) -> tuple[str, bool]:
    """``url`` as ``requests`` prepares it (checked, IDNA-encoded, quoted), and whether it
    holds credentials. A pure function of the text: cached for the few URLs a worker sends to."""
    request = requests.PreparedRequest()
    request.prepare_url(url, None)
    prepared = request.url or ""
    return prepared, any(get_auth_from_url(prepared))


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
        ("got more than 100 headers", "too many response headers"),
        ("linetoolong", "response line too long"),
        ("connection aborted", "connection aborted"),
    ):
        if needle in text:
            return reason
    return type(exc).__name__
