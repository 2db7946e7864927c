"""Refusing internal targets: every address checked, the connection pinned to a checked one.

Only loopback addresses are ever contacted: names are mapped to 127.0.0.0/8 or ::1 by a
stand-in for ``socket.getaddrinfo``, and private or public addresses appear only in the table
of the pure classification function.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import WEBHOOK
from tests.support.sinks import Sink, respond
from wagtail_publish_hooks.exceptions import DeliveryError, UnsafeDestination
from wagtail_publish_hooks.http import close_session, post
from wagtail_publish_hooks.http.addresses import (
    IPV4_SPECIAL_NETWORKS,
    IPV6_SPECIAL_NETWORKS,
    METADATA_ADDRESSES,
    AddressPolicy,
    address_class,
    resolve_target,
)
from wagtail_publish_hooks.models import Delivery, DeliveryStatus


def NETS(*cidrs: str) -> tuple:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


# -- The classification, over every entry of the deny list (pure: no traffic) -----------------

#: Every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries, multicast, the IPv6
#: space outside global unicast and the metadata addresses: a first, an inner and a last address
#: of each, with the class a refusal names.
ADDRESSES = [
    # IPv4
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this network"),
    ("0.255.255.255", "this network"),
    ("10.0.0.0", "private"),
    ("10.1.2.3", "private"),
    ("10.255.255.255", "private"),
    ("100.64.0.0", "shared address space"),
    ("100.64.0.1", "shared address space"),
    ("100.127.255.254", "shared address space"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.0.1", "link-local"),
    ("169.254.255.255", "link-local"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.0.0.0", "special-purpose"),
    ("192.0.0.1", "special-purpose"),
    ("192.0.0.9", "special-purpose"),  # PCP anycast: "globally reachable", still refused
    ("192.0.0.170", "special-purpose"),
    ("192.0.0.255", "special-purpose"),
    ("192.0.2.10", "documentation"),
    ("192.31.196.1", "special-purpose"),
    ("192.52.193.1", "special-purpose"),
    ("192.88.99.1", "special-purpose"),
    ("192.168.0.0", "private"),
    ("192.168.1.1", "private"),
    ("192.168.255.255", "private"),
    ("192.175.48.1", "special-purpose"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("198.51.100.10", "documentation"),
    ("203.0.113.10", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.254", "reserved"),
    ("255.255.255.255", "broadcast"),
    # IPv6
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::2", "reserved"),
    ("::7f00:1", "reserved"),  # IPv4-compatible (deprecated)
    ("64:ff9b:1::808:808", "private"),  # local-use NAT64, of a public address
    ("64:ff9b:1::a00:1", "private"),  # local-use NAT64 of 10.0.0.1
    ("100::1", "special-purpose"),  # discard-only
    ("100:0:0:1::1", "special-purpose"),  # dummy prefix
    ("2001::1", "special-purpose"),  # Teredo
    ("2001:1::1", "special-purpose"),  # PCP anycast
    ("2001:2::1", "benchmarking"),
    ("2001:3::1", "special-purpose"),  # AMT
    ("2001:4:112::1", "special-purpose"),  # AS112-v6
    ("2001:20::1", "special-purpose"),  # ORCHIDv2
    ("2001:1ff:ffff::1", "special-purpose"),  # the end of 2001::/23
    ("2001:db8::1", "documentation"),
    ("2620:4f:8000::1", "special-purpose"),  # AS112 direct delegation
    ("3fff::1", "documentation"),
    ("3fff:fff:ffff::1", "documentation"),
    ("5f00::1", "special-purpose"),  # segment routing
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fe80::1", "link-local"),
    ("febf::1", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("4000::1", "reserved"),  # outside 2000::/3
    ("e000::1", "reserved"),
    # IPv6 carrying an IPv4 address is judged by the IPv4 address.
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.1.1", "link-local"),
    ("::ffff:100.64.0.1", "shared address space"),
    ("::ffff:192.0.0.8", "special-purpose"),
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:101", "link-local"),  # NAT64 of 169.254.1.1
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
    ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
    # Cloud metadata services, public or not, bare or carried by IPv6.
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("169.254.170.23", "metadata"),
    ("169.254.0.23", "metadata"),
    ("168.63.129.16", "metadata"),  # Azure WireServer: a public address
    ("100.100.100.200", "metadata"),  # Alibaba
    ("192.0.0.192", "metadata"),  # Oracle: "public" on Python 3.12.1
    ("fd00:ec2::254", "metadata"),
    ("fd00:ec2::23", "metadata"),
    ("fd20:ce::254", "metadata"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:168.63.129.16", "metadata"),
    ("64:ff9b::a83f:8110", "metadata"),  # NAT64 of 168.63.129.16
    ("2002:a9fe:a9fe::1", "metadata"),  # 6to4 of 169.254.169.254
    # Public addresses, next to the blocks above.
    ("8.8.8.8", None),
    ("1.1.1.1", None),
    ("1.0.0.0", None),
    ("9.255.255.255", None),
    ("11.0.0.0", None),
    ("100.63.255.255", None),
    ("100.128.0.0", None),
    ("126.255.255.255", None),
    ("128.0.0.0", None),
    ("168.63.129.17", None),
    ("169.253.255.255", None),
    ("172.15.255.255", None),
    ("172.32.0.0", None),
    ("192.0.1.0", None),
    ("192.167.255.255", None),
    ("192.169.0.0", None),
    ("198.17.255.255", None),
    ("198.20.0.0", None),
    ("223.255.255.255", None),
    ("2606:4700:4700::1111", None),
    ("2001:200::1", None),  # just past 2001::/23
    ("2002:808:808::1", None),  # 6to4 of 8.8.8.8
    ("3ffe::1", None),
    ("::ffff:8.8.8.8", None),
    ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8
]

#: ``ipaddress``'s own verdicts, which change between Python patch releases.
IPADDRESS_FLAGS = (
    "is_private",
    "is_global",
    "is_reserved",
    "is_loopback",
    "is_link_local",
    "is_multicast",
    "is_unspecified",
    "is_site_local",
)


@pytest.fixture
def no_ipaddress_flags(monkeypatch):
    """The classification must not ask ``ipaddress`` what is private: make every flag fail."""

    def refuse(self):
        raise AssertionError("ipaddress's classification flags are not to be used")

    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        for flag in IPADDRESS_FLAGS:
            if hasattr(cls, flag):
                monkeypatch.setattr(cls, flag, property(refuse))


@pytest.mark.parametrize(("address", "expected"), ADDRESSES)
def test_address_class(no_ipaddress_flags, address, expected):
    assert address_class(ipaddress.ip_address(address)) == expected


def test_the_table_covers_every_entry_of_the_deny_list():
    """Every network of the deny list, and every metadata address, is in the table above."""
    listed = [ipaddress.ip_address(address) for address, _ in ADDRESSES]
    for network, _kind in (*IPV4_SPECIAL_NETWORKS, *IPV6_SPECIAL_NETWORKS):
        assert any(address in network for address in listed), network
    assert set(listed) >= METADATA_ADDRESSES


@pytest.mark.parametrize(
    ("policy", "address", "refused"),
    [
        # True opens every non-public address but the metadata ones.
        (AddressPolicy(True), "10.0.0.1", None),
        (AddressPolicy(True), "127.0.0.1", None),
        (AddressPolicy(True), "169.254.169.254", "metadata"),
        (AddressPolicy(True), "168.63.129.16", "metadata"),
        (AddressPolicy(True), "::ffff:169.254.169.254", "metadata"),
        # A network opens what it contains; a metadata address needs one that contains it.
        (AddressPolicy(False), "10.0.0.1", "private"),
        (AddressPolicy(False), "8.8.8.8", None),
        (AddressPolicy(False), "168.63.129.16", "metadata"),
        (AddressPolicy(NETS("10.0.0.0/8")), "10.0.0.1", None),
        (AddressPolicy(NETS("10.0.0.0/8")), "192.168.0.1", "private"),
        (AddressPolicy(NETS("169.254.0.0/16")), "169.254.1.1", None),
        (AddressPolicy(NETS("169.254.0.0/16")), "169.254.169.254", None),
        (AddressPolicy(NETS("169.254.169.254/32")), "169.254.169.254", None),
        (AddressPolicy(NETS("169.254.169.254/32")), "169.254.170.2", "metadata"),
        (AddressPolicy(NETS("168.63.129.16/32")), "168.63.129.16", None),
        (AddressPolicy(NETS("0.0.0.0/0", "::/0")), "10.0.0.1", None),
        (AddressPolicy(NETS("0.0.0.0/0", "::/0")), "169.254.169.254", "metadata"),
        (AddressPolicy(NETS("0.0.0.0/0", "::/0")), "fd00:ec2::254", "metadata"),
        (AddressPolicy(NETS("fd00:ec2::/32")), "fd00:ec2::254", None),
        (AddressPolicy(NETS("127.0.0.0/8")), "::ffff:127.0.0.1", None),
    ],
)
def test_a_policy_allows_what_it_lists(policy, address, refused):
    assert policy.refusal(ipaddress.ip_address(address)) == refused


# -- A stand-in resolver for made-up names ----------------------------------------------------


class FakeDNS:
    """Answers for made-up names, in turn (the last answer repeats); real names pass through."""

    def __init__(self, real):
        self.real = real
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []

    def add(self, name: str, *answers: list[str]) -> None:
        self.answers[name] = list(answers)

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        if host not in self.answers:
            return self.real(host, port, family, type, proto, flags)
        self.lookups.append(host)
        queue = self.answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        infos = []
        for address in addresses:
            if ":" in address:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return infos


@pytest.fixture
def fake_dns(monkeypatch) -> FakeDNS:
    dns = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    return dns


@pytest.fixture(autouse=True)
def fresh_session() -> Iterator[None]:
    close_session()
    yield
    close_session()


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink(respond()) as server:
        yield server


@pytest.fixture
def sink6() -> Iterator[Sink]:
    try:
        server = Sink(respond(), host="::1")
    except OSError:
        pytest.skip("IPv6 loopback (::1) is not available on this machine")
    with server:
        yield server


def allow(settings, value) -> None:
    settings.WAGTAIL_PUBLISH_HOOKS = {"ALLOW_PRIVATE_NETWORKS": value}


def send(url: str):
    return post(url, body=b"{}", headers={"Content-Type": "application/json"}, timeout=5)


LOOPBACK_HOSTS = [
    "localhost",
    "127.0.0.1",
    "127.1",
    "0x7f000001",
    "2130706433",
    "loopback.test",  # a name that resolves to 127.0.0.1
    "[::ffff:127.0.0.1]",
]


@pytest.fixture
def loopback_name(fake_dns) -> None:
    fake_dns.add("loopback.test", ["127.0.0.1"])


@contextlib.contextmanager
def refused(caplog, address: str) -> Iterator[None]:
    """The block raises :class:`UnsafeDestination` for ``address``: the operator's log names it,
    the error (which an admin user can read) names no address at all."""
    caplog.clear()
    with (
        caplog.at_level(logging.WARNING, logger="wagtail_publish_hooks"),
        pytest.raises(UnsafeDestination) as caught,
    ):
        yield
    assert f"resolves to {address} (" in caplog.text
    assert caught.value.message.startswith("refused: the target is a non-public address")
    assert not re.search(r"\d+\.\d+\.\d+\.\d+|::", caught.value.message)


# -- Refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
@pytest.mark.parametrize("setting", [False, ["10.0.0.0/8", "fd00::/8"]])
def test_loopback_targets_are_refused(settings, sink, loopback_name, host, setting):
    allow(settings, setting)
    with pytest.raises(UnsafeDestination) as caught:
        send(sink.url(host=host))
    assert "a non-public address (loopback)" in caught.value.message
    assert "ALLOW_PRIVATE_NETWORKS" in caught.value.message
    assert caught.value.retryable is False
    assert sink.connections == 0


def test_ipv6_loopback_is_refused(settings, sink6):
    allow(settings, ["127.0.0.0/8"])
    with pytest.raises(UnsafeDestination, match=r"a non-public address \(loopback\)"):
        send(sink6.url(host="::1"))
    assert sink6.connections == 0


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_loopback_targets_are_sent_to_when_their_network_is_allowed(
    settings, sink, loopback_name, host
):
    allow(settings, ["127.0.0.0/8"])
    result = send(sink.url(path="/in", host=host))
    assert result.status_code == 200
    [request] = sink.requests
    # The request carries the name from the URL, not the address it was sent to.
    assert request.header("Host") == f"{host}:{sink.port}"
    assert request.path == "/in"


def test_ipv6_loopback_is_sent_to_when_allowed(settings, sink6):
    allow(settings, ["::1/128"])
    assert send(sink6.url(host="::1")).status_code == 200
    assert sink6.requests[0].header("Host") == f"[::1]:{sink6.port}"


def test_true_allows_every_non_public_address_but_metadata(settings, sink, loopback_name):
    allow(settings, True)
    assert send(sink.url(host="loopback.test")).status_code == 200


def test_a_cidr_list_allows_just_those_networks(settings, sink, caplog):
    allow(settings, ["127.0.0.2/32", "::1/128"])
    with refused(caplog, "127.0.0.1"):
        send(sink.url())
    assert sink.connections == 0


def test_every_address_of_a_name_is_checked(settings, fake_dns, caplog):
    """One allowed address does not excuse another that is not."""
    with Sink(respond(), host="127.0.0.2") as allowed, Sink(respond(), host="127.0.0.3") as other:
        fake_dns.add("mixed.test", ["127.0.0.2", "127.0.0.3"])
        allow(settings, ["127.0.0.2/32"])
        with refused(caplog, "127.0.0.3"):
            send(allowed.url(host="mixed.test"))
        assert allowed.connections == other.connections == 0


def test_an_unresolvable_name_is_a_retryable_error(settings, fake_dns):
    allow(settings, False)
    fake_dns.add("nowhere.test", [])
    with pytest.raises(DeliveryError, match="could not resolve") as caught:
        send("http://nowhere.test/hooks")
    assert caught.value.retryable is True


# -- Pinning: the connection goes to the address that was checked -----------------------------


def sinks_on_one_port(*hosts: str) -> list[Sink]:
    """Sinks on several loopback addresses sharing one port number (a URL has one port)."""
    for _ in range(20):
        first = Sink(respond(), host=hosts[0])
        others: list[Sink] = []
        try:
            for host in hosts[1:]:
                others.append(Sink(respond(), host=host, port=first.port))
        except OSError:
            for server in [first, *others]:
                server.close()
            continue
        return [first, *others]
    raise RuntimeError("no port free on every address")


@pytest.fixture
def two_addresses() -> Iterator[tuple[Sink, Sink]]:
    checked, rebound = sinks_on_one_port("127.0.0.2", "127.0.0.3")
    yield checked, rebound
    checked.close()
    rebound.close()


@pytest.mark.django_db(transaction=True)
def test_a_name_that_changes_between_check_and_connect_is_not_followed(
    configure, fake_dns, two_addresses, draft_blog_page
):
    """DNS rebinding: the first answer is checked and allowed, a second lookup would answer
    another address. The request goes to the checked address; the name is looked up once."""
    checked, rebound = two_addresses
    fake_dns.add("rebind.test", ["127.0.0.2"], ["127.0.0.3"])
    url = f"http://rebind.test:{checked.port}/hooks"
    configure(
        DESTINATIONS={"consumer": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": url}}},
        ALLOW_PRIVATE_NETWORKS=["127.0.0.2/32"],
    )
    draft_blog_page.save_revision().publish()

    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert [r.server_address for r in checked.requests] == ["127.0.0.2"]
    assert checked.requests[0].header("Host") == f"rebind.test:{checked.port}"
    assert rebound.connections == 0
    assert fake_dns.lookups == ["rebind.test"]


def test_a_refused_first_answer_sends_nothing_anywhere(settings, fake_dns, two_addresses, caplog):
    checked, rebound = two_addresses
    fake_dns.add("rebind.test", ["127.0.0.3"], ["127.0.0.2"])
    allow(settings, ["127.0.0.2/32"])
    with refused(caplog, "127.0.0.3"):
        send(f"http://rebind.test:{checked.port}/hooks")
    assert checked.connections == rebound.connections == 0


def test_each_attempt_resolves_afresh_and_checks_again(settings, fake_dns, two_addresses, caplog):
    checked, rebound = two_addresses
    fake_dns.add("rebind.test", ["127.0.0.2"], ["127.0.0.3"])
    allow(settings, ["127.0.0.2/32"])
    url = f"http://rebind.test:{checked.port}/hooks"
    assert send(url).status_code == 200
    with refused(caplog, "127.0.0.3"):
        send(url)  # the pooled connection to .2 is not a reason to skip the check
    assert len(checked.requests) == 1 and rebound.connections == 0


def test_the_next_checked_address_is_tried_when_one_refuses_connections(settings, fake_dns):
    live, idle = sinks_on_one_port("127.0.0.2", "127.0.0.4")
    idle.close()  # nothing listens on 127.0.0.4 any more: connections are refused
    try:
        fake_dns.add("two.test", ["127.0.0.4", "127.0.0.2"])
        allow(settings, ["127.0.0.0/8"])
        assert send(f"http://two.test:{live.port}/hooks").status_code == 200
        assert [r.server_address for r in live.requests] == ["127.0.0.2"]
    finally:
        live.close()


def test_connections_are_reused_per_name_and_address(settings, fake_dns, sink):
    fake_dns.add("one.test", ["127.0.0.1"])
    fake_dns.add("two.test", ["127.0.0.1"])
    allow(settings, ["127.0.0.1/32"])
    for name in ("one.test", "one.test", "two.test", "one.test"):
        send(sink.url(host=name))
    assert len(sink.requests) == 4
    assert sink.connections <= 2


def test_redirects_are_never_followed(settings):
    with Sink(respond(), host="127.0.0.3") as inside:
        location = inside.url("/admin")
        with Sink(respond(302, b"", {"Location": location})) as outside:
            allow(settings, ["127.0.0.0/8"])
            with pytest.raises(DeliveryError, match="redirects are not followed") as caught:
                send(outside.url())
    assert caught.value.retryable is False
    assert len(outside.requests) == 1 and inside.connections == 0


# -- TLS to a pinned address: SNI and verification use the name -------------------------------


def make_certificate(directory, name: str):
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    try:
        return {name: make_certificate(directory, name) for name in ("hooks.test", "other.test")}
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the openssl command is needed to make test certificates")


class TLSSink:
    """An HTTPS receiver on 127.0.0.1 presenting ``cert``; records the SNI names it is sent."""

    def __init__(self, cert, key):
        self.server_names: list[str | None] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
        plain = respond()

        def behaviour(conn, sink):
            conn.settimeout(5)
            try:
                wrapped = context.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                return
            plain(wrapped, sink)

        self.sink = Sink(behaviour)

    def url(self, host: str) -> str:
        return f"https://{host}:{self.sink.port}/hooks"


@pytest.fixture
def trusted(monkeypatch, certificates):
    """The session trusts the test certificates, through the CA bundle variable it honours."""
    bundle = certificates["hooks.test"][0].parent / "bundle.pem"
    bundle.write_text("".join(cert.read_text() for cert, _ in certificates.values()))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    close_session()


def test_tls_to_a_pinned_address_uses_the_name_for_sni_and_verification(
    settings, fake_dns, certificates, trusted
):
    fake_dns.add("hooks.test", ["127.0.0.1"])
    allow(settings, ["127.0.0.1/32"])
    server = TLSSink(*certificates["hooks.test"])
    try:
        result = send(server.url("hooks.test"))
    finally:
        server.sink.close()
    assert result.status_code == 200
    # The certificate names hooks.test only, not 127.0.0.1: it verified against the name.
    assert server.server_names == ["hooks.test"]
    assert server.sink.requests[0].header("Host") == f"hooks.test:{server.sink.port}"


def test_tls_with_a_certificate_for_another_name_is_refused(
    settings, fake_dns, certificates, trusted
):
    fake_dns.add("hooks.test", ["127.0.0.1"])
    allow(settings, ["127.0.0.1/32"])
    server = TLSSink(*certificates["other.test"])
    try:
        with pytest.raises(DeliveryError, match="TLS error") as caught:
            send(server.url("hooks.test"))
    finally:
        server.sink.close()
    assert caught.value.retryable is True
    assert server.server_names == ["hooks.test"]
    assert server.sink.requests == []


def test_tls_certificates_are_verified(settings, fake_dns, certificates, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    close_session()
    fake_dns.add("hooks.test", ["127.0.0.1"])
    allow(settings, ["127.0.0.1/32"])
    server = TLSSink(*certificates["hooks.test"])
    try:
        with pytest.raises(DeliveryError, match="TLS error"):
            send(server.url("hooks.test"))
    finally:
        server.sink.close()
    assert server.sink.requests == []


def test_resolve_target_returns_the_checked_addresses(settings, fake_dns):
    fake_dns.add("pair.test", ["127.0.0.5", "::1"])
    allow(settings, ["127.0.0.0/8", "::1/128"])
    target = resolve_target("https://pair.test/x")
    assert (target.hostname, target.port, target.addresses) == (
        "pair.test",
        443,
        ("127.0.0.5", "::1"),
    )


# -- E042: MANAGED_ALLOW_PRIVATE_NETWORKS is checked like ALLOW_PRIVATE_NETWORKS ------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("10.0.0.0/8", "must be True, False, or a list of networks in CIDR notation."),
        (["127.0.0.0/33"], "'127.0.0.0/33' is not a network in CIDR notation."),
        ({"10.0.0.0/8": True}, "must be True, False, or a list of networks in CIDR notation."),
    ],
)
def test_a_malformed_managed_allowance_is_an_error(settings, value, text):
    from django.core import checks

    settings.WAGTAIL_PUBLISH_HOOKS = {"MANAGED_ALLOW_PRIVATE_NETWORKS": value}
    messages = [m for m in checks.run_checks(tags=["wagtail_publish_hooks"]) if m.is_serious()]
    assert [m.id for m in messages] == ["wagtail_publish_hooks.E042"]
    assert messages[0].msg == f"WAGTAIL_PUBLISH_HOOKS['MANAGED_ALLOW_PRIVATE_NETWORKS']: {text}"


@pytest.mark.parametrize("value", [True, False, ["10.0.0.0/8", "fd00::/8"], []])
def test_a_well_formed_managed_allowance_passes(settings, value):
    from django.core import checks

    settings.WAGTAIL_PUBLISH_HOOKS = {"MANAGED_ALLOW_PRIVATE_NETWORKS": value}
    messages = checks.run_checks(tags=["wagtail_publish_hooks"])
    assert not [m for m in messages if m.is_serious()]  # a known key (no E002), well formed
