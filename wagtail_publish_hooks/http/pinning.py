"""The connections a request goes over: to the address that was checked, under a deadline.

:class:`PinnedAddressAdapter` resolves each target once (:func:`.addresses.resolve_target`),
connects to a checked address, and keeps the host name for ``Host``, TLS SNI and certificate
verification. Its pools and connections tell the request's deadline watch
(:mod:`.deadlines`) which socket to shut down, and write nothing once the deadline has passed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..exceptions import UnsafeDestination
from .addresses import HTTP_DEFAULT_PORTS, Target, resolve_target
from .deadlines import current_watch, watch_expired

_PINNED_ADDRESS = "_publish_hooks_pinned_address"


class _WatchedPoolMixin:
    """Lets the current request's deadline watch find the connection it runs on."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        watch = current_watch()
        if watch is not None:
            watch.conn = conn
        return conn


class _DeadlinePassed(OSError):
    """The request's deadline passed before its first byte was written: it is not sent."""


class _WatchedConnectionMixin:
    """Writes a request only while its deadline has not passed, and tells its watch that the
    request has left, so that a failure can say whether anything was sent."""

    def send(self, data: Any) -> None:
        watch = current_watch()
        if watch is not None and not watch.sent:
            if getattr(self, "sock", None) is None and getattr(self, "auto_open", False):
                self.connect()  # type: ignore[attr-defined]
            if not watch.begin_sending():
                raise _DeadlinePassed("the request's deadline passed before it was sent")
        super().send(data)  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchedConnectionMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(_WatchedPoolMixin, HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(_WatchedPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to the address that :func:`resolve_target` checked, not to a new lookup.

    The URL's host name is kept for the ``Host`` header, TLS SNI and certificate verification;
    only the socket goes to the pinned address. Pools are keyed by scheme, address, port and
    (for TLS) host name, so keep-alive connections are reused per host and address.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPConnectionPool,
            "https": _WatchedHTTPSConnectionPool,
        }

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        target = resolve_target(request.url or "")
        if "Host" not in request.headers:
            request.headers["Host"] = _host_header(request.url or "", target)
        last = len(target.addresses) - 1
        for index, address in enumerate(target.addresses):
            setattr(request, _PINNED_ADDRESS, address)
            try:
                return super().send(request, stream, timeout, verify, cert, proxies)
            except requests.exceptions.ConnectionError as exc:
                # Nothing was sent if the connection could not be made: try the next address
                # (an IPv6 address on a host without an IPv6 route, say) while time is left.
                if index == last or not _never_connected(exc) or watch_expired():
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def get_connection_with_tls_context(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        verify: Any,
        proxies: Any = None,
        cert: Any = None,
    ) -> HTTPConnectionPool:
        address = getattr(request, _PINNED_ADDRESS, None)
        if address is None:
            raise UnsafeDestination("the request was not resolved and checked first")
        host_params, key_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs: dict[str, Any] = dict(key_kwargs)
        hostname = str(host_params["host"]).strip("[]")
        host_params["host"] = f"[{address}]" if ":" in address else address
        if host_params["scheme"] == "https":
            # SNI and certificate verification are for the name, not the address.
            pool_kwargs.update(server_hostname=hostname, assert_hostname=hostname)
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


def _host_header(url: str, target: Target) -> str:
    parts = urlsplit(url)
    host = target.hostname
    if ":" in host:
        host = f"[{host}]"
    if parts.port and parts.port != HTTP_DEFAULT_PORTS.get(parts.scheme):
        host += f":{parts.port}"
    return host


def _never_connected(exc: BaseException) -> bool:
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectTimeoutError):
            return True
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += [arg for arg in current.args if isinstance(arg, BaseException)]
    return False
