"""Outgoing HTTP shared by the backends: a pooled session, safe targets, and response rules.

Everything that leaves this module is safe to record: error messages never include a URL's path
or query (a Slack or build-hook URL *is* a secret) nor any header value.
"""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import ipaddress
import itertools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.connection import allowed_gai_family

from ._version import __version__
from .conf import MAX_RETRY_AFTER_SECONDS, get_settings
from .exceptions import DeliveryError, DestinationGone, UnsafeDestination

logger = logging.getLogger("wagtail_publish_hooks")

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


def looks_secret(name: str) -> bool:
    """Whether a header or option named so carries a secret: its name contains ``auth``,
    ``secret``, ``token``, ``key``, ``signature``, ``pass``, ``cookie``, ``credential`` or
    ``session`` (in any case)."""
    lowered = name.lower()
    return any(word in lowered for word in _SENSITIVE_HEADER_WORDS)


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    redacted = {}
    for name, value in headers.items():
        if looks_secret(name):
            redacted[name] = REDACTED
        else:
            redacted[name] = value
    return redacted


# -- Safe targets -----------------------------------------------------------------------------
#
# The deny list is written out here rather than taken from ``ipaddress``'s ``is_private`` /
# ``is_global`` / ``is_reserved``, whose answers change between Python patch releases
# (``192.0.0.192`` is "public" on 3.12.1, ``2002::/16`` "private" on 3.12.4 and later). It is
# the IANA IPv4 and IPv6 Special-Purpose Address Registries, multicast, the IPv6 space outside
# global unicast (``2000::/3``), and the addresses of cloud metadata services.


def _networks(*entries: tuple[str, str]) -> tuple[tuple[Any, str], ...]:
    return tuple((ipaddress.ip_network(network), kind) for network, kind in entries)


#: Cloud instance metadata and credential services. Some are public addresses (Azure's
#: WireServer), some sit inside a block of their own (Alibaba's in shared address space,
#: Oracle's in IETF protocol assignments); all are refused unless a listed network contains them.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure IMDS, OpenStack, DigitalOcean, Oracle, ...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS Pod Identity agent
        "169.254.0.23",  # Tencent Cloud
        "168.63.129.16",  # Azure WireServer (public address space)
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS Pod Identity agent over IPv6
        "fd20:ce::254",  # GCP metadata over IPv6
    )
)

#: IANA IPv4 Special-Purpose Address Registry, plus multicast; the first match names the class.
IPV4_SPECIAL_NETWORKS = _networks(
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "this network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "special-purpose"),  # IETF protocol assignments
    ("192.0.2.0/24", "documentation"),
    ("192.31.196.0/24", "special-purpose"),  # AS112-v4
    ("192.52.193.0/24", "special-purpose"),  # AMT
    ("192.88.99.0/24", "special-purpose"),  # deprecated 6to4 relay anycast
    ("192.168.0.0/16", "private"),
    ("192.175.48.0/24", "special-purpose"),  # AS112 direct delegation
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)

#: IANA IPv6 Special-Purpose Address Registry, plus multicast and the deprecated site-local
#: block. The blocks that carry an IPv4 address (IPv4-mapped, NAT64, 6to4) are judged by that
#: address first (see :func:`embedded_ipv4`).
IPV6_SPECIAL_NETWORKS = _networks(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "private"),  # local-use IPv4/IPv6 translation
    ("100::/64", "special-purpose"),  # discard-only
    ("100:0:0:1::/64", "special-purpose"),  # dummy prefix
    ("2001:2::/48", "benchmarking"),
    ("2001::/23", "special-purpose"),  # IETF protocol assignments: Teredo, ORCHID, AS112, ...
    ("2001:db8::/32", "documentation"),
    ("2620:4f:8000::/48", "special-purpose"),  # AS112 direct delegation
    ("3fff::/20", "documentation"),
    ("5f00::/16", "special-purpose"),  # segment routing SIDs
    ("fc00::/7", "private"),  # unique local
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)

#: The only IPv6 space allocated for global unicast; anything else not named above is reserved.
IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
#: NAT64 prefixes: the last 32 bits are an IPv4 address that a gateway will reach. The
#: well-known one is judged by that address alone, the local-use one by it and by itself.
NAT64_NETWORKS = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")

_PINNED_ADDRESS = "_publish_hooks_pinned_address"
_HTTP_DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, NAT64 or 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address in IPV4_MAPPED or any(address in network for network in NAT64_NETWORKS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
    return None


def is_metadata_address(address: IPAddress) -> bool:
    """Whether ``address`` (or the IPv4 address it carries) is a cloud metadata service's."""
    inner = embedded_ipv4(address)
    return address in METADATA_ADDRESSES or (inner is not None and inner in METADATA_ADDRESSES)


def address_class(address: IPAddress) -> str | None:
    """Why ``address`` is not a public internet address, or ``None`` if it is one.

    The classes are the words of the tables above (``"loopback"``, ``"private"``,
    ``"link-local"``, ``"metadata"``, ...). An IPv6 address that carries an IPv4 address is
    judged by that address: IPv4-mapped (``::ffff:a.b.c.d``), NAT64 (``64:ff9b::a.b.c.d``) and
    6to4 (``2002:AABB:CCDD::``) by it alone, local-use NAT64 (``64:ff9b:1::/48``) by it and by
    itself. The answer is the same on every Python version.
    """
    if is_metadata_address(address):
        return "metadata"
    inner = embedded_ipv4(address)
    if inner is not None:
        inner_class = address_class(inner)
        if inner_class is not None:
            return inner_class
        if address not in NAT64_NETWORKS[1]:
            return None
    if isinstance(address, ipaddress.IPv4Address):
        table = IPV4_SPECIAL_NETWORKS
    else:
        table = IPV6_SPECIAL_NETWORKS
    for network, kind in table:
        if address in network:
            return kind
    if isinstance(address, ipaddress.IPv6Address) and address not in IPV6_GLOBAL_UNICAST:
        return "reserved"
    return None


def is_public_address(address: IPAddress) -> bool:
    return address_class(address) is None


def _allowed_by(networks: tuple[Any, ...], address: IPAddress) -> bool:
    candidates: list[IPAddress] = [address]
    inner = embedded_ipv4(address)
    if inner is not None:
        candidates.append(inner)
    return any(
        candidate.version == network.version and candidate in network
        for network in networks
        for candidate in candidates
    )


@dataclass(frozen=True)
class AddressPolicy:
    """Which non-public addresses a destination may reach, and the setting that says so.

    ``allowed`` is ``True`` (every non-public address but the metadata ones), ``False``
    (none), or the networks allowed. A cloud metadata address is allowed only by a listed
    network that contains it (``0.0.0.0/0`` and ``::/0`` do not count), never by ``True``.
    """

    allowed: bool | tuple[Any, ...]
    #: The setting that widens it, named in refusals: ``ALLOW_PRIVATE_NETWORKS`` for the
    #: destinations of the settings, ``MANAGED_ALLOW_PRIVATE_NETWORKS`` for those of the admin.
    setting: str = "ALLOW_PRIVATE_NETWORKS"
    managed: bool = False

    def refusal(self, address: IPAddress) -> str | None:
        """The class of ``address`` if this policy refuses it, else ``None``."""
        kind = address_class(address)
        if kind is None:
            return None
        networks = self.allowed if isinstance(self.allowed, tuple) else ()
        if kind == "metadata":
            explicit = tuple(network for network in networks if network.prefixlen > 0)
            return None if _allowed_by(explicit, address) else kind
        if self.allowed is True or _allowed_by(networks, address):
            return None
        return kind

    def refusal_message(self, kind: str) -> str:
        """What is recorded for a refused target: the class, never the address or port (an
        admin user who could read addresses, ports or connection errors could map a network
        through a destination)."""
        if kind == "metadata":
            return (
                "refused: the target is a cloud metadata address (metadata); only a network "
                f"listed in {self.setting} that contains it allows it"
            )
        return f"refused: the target is a non-public address ({kind}); allow it with {self.setting}"


def settings_policy() -> AddressPolicy:
    """The policy of the destinations defined in settings: ``ALLOW_PRIVATE_NETWORKS``."""
    return AddressPolicy(get_settings().private_networks_allowed())


def managed_policy() -> AddressPolicy:
    """The policy of the destinations managed in the admin: ``MANAGED_ALLOW_PRIVATE_NETWORKS``,
    whatever ``ALLOW_PRIVATE_NETWORKS`` says."""
    return AddressPolicy(
        get_settings().managed_private_networks_allowed(),
        setting="MANAGED_ALLOW_PRIVATE_NETWORKS",
        managed=True,
    )


def policy_for(alias: str) -> AddressPolicy:
    """The policy of the destination ``alias``: the settings' for a destination of the
    settings or a Python receiver, the admin's for one managed in the admin, and the admin's
    (the stricter by default) for an alias no longer known."""
    from .conf import RECEIVER_PREFIX
    from .registry import get_destinations

    if alias.startswith(RECEIVER_PREFIX):
        return settings_policy()
    destination = get_destinations().get(alias)
    if destination is not None and not destination.managed:
        return settings_policy()
    return managed_policy()


_current_policy: ContextVar[AddressPolicy | None] = ContextVar(
    "wagtail_publish_hooks_address_policy", default=None
)


@contextlib.contextmanager
def address_policy(policy: AddressPolicy) -> Iterator[None]:
    """Apply ``policy`` to every request made in this thread (or task) inside the block.

    The worker wraps each send in the policy of its destination (:func:`policy_for`), so a
    backend's requests are checked against the right allowance without passing it around.
    """
    token = _current_policy.set(policy)
    try:
        yield
    finally:
        _current_policy.reset(token)


def current_policy() -> AddressPolicy:
    """The policy set by :func:`address_policy`, or else the settings' one."""
    return _current_policy.get() or settings_policy()


@dataclass(frozen=True)
class Target:
    """A URL's host, resolved once and checked: where the connection goes."""

    hostname: str
    port: int
    #: Addresses to connect to, in the resolver's order of preference, every one checked.
    addresses: tuple[str, ...]


def resolve_target(url: str, policy: AddressPolicy | None = None) -> Target:
    """Resolve the URL's host once and check **every** address it resolves to.

    An address in the deny list (see :func:`address_class`) raises :class:`UnsafeDestination`
    unless the policy (by default :func:`current_policy`) allows it. The message names the
    class of address and nothing more. The request is then sent to one of the returned
    addresses, never to a second resolution of the name (no DNS rebinding in between).
    """
    policy = policy or current_policy()
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or _HTTP_DEFAULT_PORTS.get(parts.scheme, 80)
    except ValueError:
        raise UnsafeDestination("the destination URL is not valid") from None
    if not host:
        raise UnsafeDestination(f"{describe_url(url)} has no host")
    try:
        infos = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise DeliveryError(f"could not resolve {describe_url(url)}: {reason}") from None
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0])
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise DeliveryError(f"could not resolve {describe_url(url)}: no address")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        kind = policy.refusal(address)
        if kind is not None:
            # The operator's log may say more than the record an admin user can read.
            logger.warning(
                "Publish hooks refused %s: it resolves to %s (%s), which %s does not allow",
                describe_url(url),
                address,
                kind,
                policy.setting,
            )
            raise UnsafeDestination(policy.refusal_message(kind))
    return Target(hostname=host, port=port, addresses=tuple(addresses))


def check_target(url: str, policy: AddressPolicy | None = None) -> None:
    """Raise :class:`UnsafeDestination` if ``url`` may not be sent to (see
    :func:`resolve_target`)."""
    resolve_target(url, policy)


class _WatchedPoolMixin:
    """Lets the current request's deadline watch find the connection it runs on."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        watch = getattr(_local, "watch", None)
        if watch is not None:
            watch.conn = conn
        return conn


class _DeadlinePassed(OSError):
    """The request's deadline passed before its first byte was written: it is not sent."""


class _WatchedConnectionMixin:
    """Writes a request only while its deadline has not passed, and tells its watch that the
    request has left, so that a failure can say whether anything was sent."""

    def send(self, data: Any) -> None:
        watch = getattr(_local, "watch", None)
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
                if index == last or not _never_connected(exc) or _watch_expired():
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
    if parts.port and parts.port != _HTTP_DEFAULT_PORTS.get(parts.scheme):
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


# -- Deadlines --------------------------------------------------------------------------------


class _Watch:
    """One request's deadline. When it passes, the request's socket is shut down, which ends
    whatever read or write is blocked on it: a peer that trickles bytes cannot hold a worker
    beyond the deadline, however short each wait for a byte."""

    __slots__ = ("conn", "deadline", "expired", "finished", "lock", "sent")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.conn: Any = None
        self.expired = False
        self.finished = False
        #: Whether the request's first byte has been written.
        self.sent = False
        self.lock = threading.Lock()

    def begin_sending(self) -> bool:
        """Called before the request's first byte: whether it may still be written."""
        with self.lock:
            if self.expired:
                return False
            self.sent = True
            return True

    def expire(self) -> bool:
        """Called at the deadline; returns whether to look again shortly (not yet connected)."""
        with self.lock:
            if self.finished:
                return False
            self.expired = True
            sock = getattr(self.conn, "sock", None)
            if sock is None:
                return True
            # The plain socket's shutdown, also for a TLS socket: it acts on the file
            # descriptor and leaves the TLS object to the thread that is reading.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            return False

    def finish(self) -> None:
        with self.lock:
            self.finished = True


class _Watchdog:
    """One thread per process that enforces every request's deadline."""

    RECHECK_SECONDS = 0.05

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, watch: _Watch) -> None:
        with self._condition:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="publish-hooks-deadlines", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (watch.deadline, next(self._counter), watch))
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while True:
                    while self._heap and self._heap[0][2].finished:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._condition.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        _, _, due = heapq.heappop(self._heap)
                        break
                    self._condition.wait(wait)
            if due.expire():
                due.deadline = time.monotonic() + self.RECHECK_SECONDS
                self.watch(due)


class _HideRequestTargets(logging.Filter):
    """urllib3 logs each request line at DEBUG, path and query included. For a delivery the
    path can be the credential (Slack, Discord, build hooks), so while this thread sends one,
    request targets in urllib3's log records are replaced by ``/…``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_local, "watch", None) is not None and isinstance(record.args, tuple):
            record.args = tuple(
                "/…" if isinstance(arg, str) and arg.startswith("/") and arg != "/" else arg
                for arg in record.args
            )
        return True


for _logger_name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection"):
    logging.getLogger(_logger_name).addFilter(_HideRequestTargets())

_watchdog = _Watchdog()
# A forked worker (RQ, for one) starts with no watchdog thread and maybe a held lock.
os.register_at_fork(after_in_child=_watchdog._reset)


_send_by: ContextVar[float | None] = ContextVar("wagtail_publish_hooks_send_by", default=None)


@contextlib.contextmanager
def send_deadline(at: float | None) -> Iterator[None]:
    """End every request made in this thread (or task) inside the block by ``at``, a
    :func:`time.monotonic` time, however long its ``timeout``; one that would begin after it is
    not sent. The worker sets it to the end of its claim on the delivery, so that no request of
    a send outlives the claim. ``None`` sets no limit."""
    token = _send_by.set(at)
    try:
        yield
    finally:
        _send_by.reset(token)


def _watch_expired() -> bool:
    watch = getattr(_local, "watch", None)
    return bool(watch is not None and watch.expired)


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
    limit = _send_by.get()
    if limit is not None and limit < started + timeout:
        if limit <= started:
            raise DeliveryError(
                f"not sent to {describe_url(url)}: the worker's claim on the delivery was "
                "running out (LEASE_SECONDS)",
                request_headers=recorded_headers,
            )
        timeout = limit - started
        connect = min(connect, timeout)
    watch = _Watch(started + timeout)
    _local.watch = watch
    _watchdog.watch(watch)
    try:
        return _exchange(
            method, url, body, request_headers, recorded_headers, connect, timeout, watch
        )
    finally:
        watch.finish()
        _local.watch = None


def _exchange(
    method: str,
    url: str,
    body: bytes,
    request_headers: dict[str, str],
    recorded_headers: dict[str, str],
    connect: float,
    timeout: float,
    watch: _Watch,
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
        response = get_session().request(
            method,
            url,
            data=body,
            headers=request_headers,
            timeout=(connect, timeout),
            allow_redirects=False,
            stream=True,
        )
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
        raw_body, complete = _read_limited(response)
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
        response_body=_excerpt(raw_body, response.encoding),
        request_headers=recorded_headers,
        duration_ms=duration_ms,
    )
    raise_for_status(result)
    return result


def encode_json(document: Any) -> bytes:
    """Compact UTF-8 JSON, as the chat and build backends send it."""
    return encode_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")))


def encode_text(text: str) -> bytes:
    """``text`` as UTF-8. Python strings can hold lone surrogates (from data handed to
    ``emit()``, say), which UTF-8 cannot: each becomes U+FFFD rather than failing every attempt.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16, a surrogate pair written as two code points becomes its character.
        repaired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return repaired.encode("utf-8")


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


def _read_limited(response: requests.Response) -> tuple[bytes, bool]:
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


def _excerpt(raw: bytes, encoding: str | None) -> str:
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
