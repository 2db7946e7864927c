"""Safe targets: which addresses a destination may reach, and resolving a URL's host once.

The deny list is written out here rather than taken from ``ipaddress``'s ``is_private`` /
``is_global`` / ``is_reserved``, whose answers change between Python patch releases
(``192.0.0.192`` is "public" on 3.12.1, ``2002::/16`` "private" on 3.12.4 and later). It is
the IANA IPv4 and IPv6 Special-Purpose Address Registries, multicast, the IPv6 space outside
global unicast (``2000::/3``), and the addresses of cloud metadata services.

The address a URL resolves to is checked here; :mod:`.pinning` then connects to exactly that
address.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from urllib3.util.connection import allowed_gai_family

from ..conf import get_settings
from ..exceptions import DeliveryError, UnsafeDestination
from ..redaction import describe_url

logger = logging.getLogger("wagtail_publish_hooks")


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

HTTP_DEFAULT_PORTS = {"http": 80, "https": 443}

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


_current_policy: ContextVar[AddressPolicy | None] = ContextVar(
    "wagtail_publish_hooks_address_policy", default=None
)


@contextlib.contextmanager
def address_policy(policy: AddressPolicy) -> Iterator[None]:
    """Apply ``policy`` to every request made in this thread (or task) inside the block.

    The worker wraps each send in the policy of its destination
    (:func:`wagtail_publish_hooks.registry.policy_for`), so a
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


def delivery_policy(*, managed: bool) -> AddressPolicy:
    """The policy of the destination being delivered to, as the worker set it; outside a
    delivery, the admin's for a destination ``managed`` in the admin, else the settings'. For a
    backend that must decide which requests it may make before it makes them."""
    return _current_policy.get() or (managed_policy() if managed else settings_policy())


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
        port = parts.port or HTTP_DEFAULT_PORTS.get(parts.scheme, 80)
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
