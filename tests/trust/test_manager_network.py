"""A destination manager (``add/change_manageddestination``) tries to reach the site's own
networks through a destination: a webhook, a frontend-cache purge, a cloud metadata address;
and to learn which ports are open from what the admin records.

Only loopback is ever contacted. ``ALLOW_PRIVATE_NETWORKS`` (the operator's own destinations)
allows loopback throughout; what a managed destination may reach is
``MANAGED_ALLOW_PRIVATE_NETWORKS`` alone.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest
import urllib3.util.connection

from tests.conftest import WEBHOOK
from tests.support.admin_users import destination_manager
from tests.support.sinks import Sink, respond
from wagtail_publish_hooks.http import close_session
from wagtail_publish_hooks.http.addresses import managed_policy
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus, ManagedDestination
from wagtail_publish_hooks.registry import policy_for, refresh_destinations

pytestmark = pytest.mark.django_db(transaction=True)

FRONTEND_CACHE = "wagtail_publish_hooks.backends.frontend_cache.FrontendCacheBackend"
HTTP_BACKEND = "wagtail.contrib.frontend_cache.backends.HTTPBackend"
LOOPBACK = ["127.0.0.0/8", "::1/128"]


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
def operator_allows_loopback(configure):
    """The operator's destinations may reach loopback; nothing is said for managed ones."""
    return configure(DESTINATIONS={}, ALLOW_PRIVATE_NETWORKS=LOOPBACK, RETRY_SCHEDULE=[300])


def managed_webhook(alias: str, url: str) -> ManagedDestination:
    return ManagedDestination.objects.create(alias=alias, backend=WEBHOOK, options={"URL": url})


def managed_cache(alias: str, *names: str) -> ManagedDestination:
    return ManagedDestination.objects.create(
        alias=alias,
        backend=FRONTEND_CACHE,
        options={"BACKENDS": list(names), "COALESCE_SECONDS": 0},
    )


def publish(page) -> None:
    page.save_revision().publish()


def stored_text(delivery: Delivery) -> list:
    """Everything about a delivery's attempts that an admin user can read."""
    return [
        delivery.status,
        delivery.last_status_code,
        delivery.last_error,
        *(
            (a.outcome, a.status_code, a.error, a.response_body, a.response_headers, a.detail)
            for a in Attempt.objects.filter(delivery=delivery).order_by("number")
        ),
    ]


# -- A managed webhook ---------------------------------------------------------------------------


def test_a_managed_webhook_to_loopback_is_refused_though_the_operator_allows_loopback(
    operator_allows_loopback, sink, draft_blog_page
):
    managed_webhook("mine", sink.url("/hooks"))
    publish(draft_blog_page)

    delivery = Delivery.objects.get(destination="mine")
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == (
        "refused: the target is a non-public address (loopback); allow it with "
        "MANAGED_ALLOW_PRIVATE_NETWORKS"
    )
    assert sink.connections == 0


@pytest.mark.parametrize("allowance", [True, ["127.0.0.1/32"]])
def test_a_managed_webhook_reaches_loopback_when_the_operator_allows_it_for_managed_ones(
    configure, sink, draft_blog_page, allowance
):
    configure(
        DESTINATIONS={}, ALLOW_PRIVATE_NETWORKS=False, MANAGED_ALLOW_PRIVATE_NETWORKS=allowance
    )
    managed_webhook("mine", sink.url("/hooks"))
    publish(draft_blog_page)

    assert Delivery.objects.get(destination="mine").status == DeliveryStatus.DELIVERED
    assert [request.path for request in sink.requests] == ["/hooks"]


def test_the_operators_allowance_still_covers_the_operators_destinations(
    configure, sink, draft_blog_page
):
    configure(
        DESTINATIONS={"ops": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url("/ops")}}},
        ALLOW_PRIVATE_NETWORKS=LOOPBACK,
        MANAGED_ALLOW_PRIVATE_NETWORKS=False,
    )
    managed_webhook("mine", sink.url("/mine"))
    publish(draft_blog_page)

    assert Delivery.objects.get(destination="ops").status == DeliveryStatus.DELIVERED
    assert Delivery.objects.get(destination="mine").status == DeliveryStatus.FAILED
    assert [request.path for request in sink.requests] == ["/ops"]


def test_a_name_that_resolves_to_loopback_is_refused_too(
    operator_allows_loopback, sink, draft_blog_page
):
    managed_webhook("mine", sink.url("/hooks", host="localhost"))
    publish(draft_blog_page)
    delivery = Delivery.objects.get(destination="mine")
    assert delivery.status == DeliveryStatus.FAILED
    assert "refused" in delivery.last_error
    assert sink.connections == 0


def test_an_alias_no_longer_known_gets_the_managed_policy():
    """An alias unknown to the registry (deleted meanwhile) gets the managed policy."""
    assert policy_for("no-such-destination") == managed_policy()


# -- No port-scan oracle -------------------------------------------------------------------------


def test_a_closed_port_and_an_open_port_leave_the_same_record(
    operator_allows_loopback, sink, free_port, draft_blog_page
):
    """Were the request made, 'connection refused' against 'HTTP 200' would tell which port
    is open. A refused target is not contacted, and both records read alike."""
    managed_webhook("open", sink.url("/hooks"))
    managed_webhook("closed", f"http://127.0.0.1:{free_port}/hooks")
    publish(draft_blog_page)

    opened = stored_text(Delivery.objects.get(destination="open"))
    closed = stored_text(Delivery.objects.get(destination="closed"))
    assert opened == closed
    assert str(sink.port) not in repr(opened) and str(free_port) not in repr(closed)
    assert "127.0.0.1" not in repr(opened)
    assert sink.connections == 0


def test_purges_to_a_closed_port_and_an_open_port_leave_the_same_record(
    operator_allows_loopback, sink, free_port, settings, draft_blog_page
):
    settings.WAGTAILFRONTENDCACHE = {
        "open": {"BACKEND": HTTP_BACKEND, "LOCATION": sink.url().rstrip("/")},
        "closed": {"BACKEND": HTTP_BACKEND, "LOCATION": f"http://127.0.0.1:{free_port}"},
    }
    managed_cache("purge-a", "open")
    managed_cache("purge-b", "closed")
    publish(draft_blog_page)

    opened = stored_text(Delivery.objects.get(destination="purge-a"))
    closed = stored_text(Delivery.objects.get(destination="purge-b"))
    # The records name the backend each purged through; apart from that they are the same.
    assert repr(opened).replace("'open'", "NAME").replace("open: ", "NAME: ") == repr(
        closed
    ).replace("'closed'", "NAME").replace("closed: ", "NAME: ")
    assert opened[0] == DeliveryStatus.FAILED
    assert "refused: the target is a non-public address (loopback)" in opened[2]
    for text in (repr(opened), repr(closed)):
        assert str(sink.port) not in text and str(free_port) not in text
        assert "Errno" not in text and "127.0.0.1" not in text
    assert sink.connections == 0


# -- A managed frontend-cache destination --------------------------------------------------------


def test_a_managed_purge_to_a_loopback_cache_is_refused_and_recorded(
    operator_allows_loopback, sink, settings, draft_blog_page
):
    settings.WAGTAILFRONTENDCACHE = {
        "cache": {"BACKEND": HTTP_BACKEND, "LOCATION": sink.url().rstrip("/")}
    }
    managed_cache("purge", "cache")
    publish(draft_blog_page)

    delivery = Delivery.objects.get(destination="purge")
    assert delivery.status == DeliveryStatus.FAILED  # refused: another attempt cannot help
    attempt = Attempt.objects.get(delivery=delivery)
    assert attempt.detail["failed_urls"] == attempt.detail["urls"] != []
    assert attempt.detail["errors"] == [
        "cache: refused: the target is a non-public address (loopback); allow it with "
        "MANAGED_ALLOW_PRIVATE_NETWORKS"
    ]
    assert sink.connections == 0


def test_a_managed_destination_cannot_define_purge_backends_of_its_own(
    operator_allows_loopback, sink, draft_blog_page
):
    ManagedDestination.objects.create(
        alias="purge",
        backend=FRONTEND_CACHE,
        options={
            "BACKENDS": {"mine": {"BACKEND": HTTP_BACKEND, "LOCATION": sink.url().rstrip("/")}},
            "COALESCE_SECONDS": 0,
        },
    )
    publish(draft_blog_page)
    # The registry never builds a row that defines purge backends (W020): nothing is routed to
    # it, and nothing it names is imported or contacted.
    assert not Delivery.objects.filter(destination="purge").exists()
    assert "purge" not in refresh_destinations()
    assert sink.connections == 0


class OwnPurge:
    """An operator's purge backend with code of its own (stands in for anything that is not
    an ``HTTPBackend`` nor a vendor client); it records the URLs it was asked to purge."""

    purged: list[str] = []

    def __init__(self, params):
        self.hostnames = params.get("HOSTNAMES", ["*"])

    def invalidates_hostname(self, hostname):
        return True

    def purge_batch(self, urls):
        OwnPurge.purged += urls


def test_a_purge_backend_with_code_of_its_own_is_refused_to_a_managed_destination(
    operator_allows_loopback, settings, draft_blog_page
):
    OwnPurge.purged = []
    settings.WAGTAILFRONTENDCACHE = {"own": {"BACKEND": f"{__name__}.OwnPurge"}}
    settings.WAGTAIL_PUBLISH_HOOKS = {
        **settings.WAGTAIL_PUBLISH_HOOKS,
        "MANAGED_ALLOW_PRIVATE_NETWORKS": True,
        "DESTINATIONS": {
            "ops": {
                "BACKEND": FRONTEND_CACHE,
                "OPTIONS": {"BACKENDS": ["own"], "COALESCE_SECONDS": 0},
            }
        },
    }
    managed_cache("purge", "own")
    publish(draft_blog_page)

    managed = Delivery.objects.get(destination="purge")
    assert managed.status == DeliveryStatus.FAILED
    assert "purge backend 'own' (OwnPurge) runs code of its own" in managed.last_error
    # The operator's own destination runs the operator's code.
    assert Delivery.objects.get(destination="ops").status == DeliveryStatus.DELIVERED
    assert OwnPurge.purged  # once, by the operator's destination
    assert len(OwnPurge.purged) == len(set(OwnPurge.purged))


# -- Cloud metadata: refused even when everything else is allowed --------------------------------


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "168.63.129.16", "100.100.100.200", "192.0.0.192", "fd00:ec2::254"],
)
def test_metadata_addresses_are_refused_even_when_managed_destinations_may_reach_everything(
    settings, address
):
    """Classification only: a metadata address is never contacted, even here."""
    settings.WAGTAIL_PUBLISH_HOOKS = {"MANAGED_ALLOW_PRIVATE_NETWORKS": True}
    assert managed_policy().refusal(ipaddress.ip_address(address)) == "metadata"
    settings.WAGTAIL_PUBLISH_HOOKS = {"MANAGED_ALLOW_PRIVATE_NETWORKS": ["0.0.0.0/0", "::/0"]}
    assert managed_policy().refusal(ipaddress.ip_address(address)) == "metadata"
    network = f"{address}/{128 if ':' in address else 32}"
    settings.WAGTAIL_PUBLISH_HOOKS = {"MANAGED_ALLOW_PRIVATE_NETWORKS": [network]}
    assert managed_policy().refusal(ipaddress.ip_address(address)) is None


def test_a_name_resolving_to_a_metadata_address_is_refused_before_any_connection(
    monkeypatch, draft_blog_page, configure
):
    """``metadata.test`` resolves to 169.254.169.254: refused at the check, so nothing is ever
    sent there (a refusal after connecting would show as a connection)."""
    real = socket.getaddrinfo
    connects: list = []

    def resolve(host, *args, **kwargs):
        if host == "metadata.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]
        return real(host, *args, **kwargs)

    def no_connect(*args, **kwargs):
        connects.append(args)
        raise AssertionError("no connection may be made")

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", no_connect)
    configure(DESTINATIONS={}, ALLOW_PRIVATE_NETWORKS=True, MANAGED_ALLOW_PRIVATE_NETWORKS=True)
    managed_webhook("mine", "http://metadata.test/latest/meta-data/")
    publish(draft_blog_page)

    delivery = Delivery.objects.get(destination="mine")
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("refused: the target is a cloud metadata address")
    assert "169.254" not in delivery.last_error
    assert connects == []


# -- Other spellings of loopback, and the admin's own "Send test event" --------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",
        "0x7f000001",
        "2130706433",
        "0177.0.0.1",
        "localhost",
        "LOCALHOST",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "0.0.0.0",  # connects to this machine on Linux
        "0",
    ],
)
def test_every_spelling_of_this_machine_is_refused_to_a_managed_destination(
    operator_allows_loopback, sink, draft_blog_page, host
):
    managed_webhook("mine", sink.url("/hooks", host=host))
    publish(draft_blog_page)
    delivery = Delivery.objects.get(destination="mine")
    assert delivery.status == DeliveryStatus.FAILED, delivery.last_error
    assert delivery.last_error.startswith("refused: the target is a non-public address")
    assert sink.connections == 0


def test_the_admins_send_test_event_is_refused_the_same_way(
    operator_allows_loopback, sink, django_user_model
):
    from django.urls import reverse

    client = destination_manager("view_manageddestination", "change_manageddestination")
    managed_webhook("mine", sink.url("/hooks"))

    response = client.post(reverse("publish_hooks_destinations:send_test", args=["mine"]))
    assert response.status_code in (200, 302)
    delivery = Delivery.objects.get(destination="mine")
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("refused: the target is a non-public address")
    assert sink.connections == 0
