"""The frontend-cache backend through Wagtail's own ``CloudflareBackend``, against a loopback
server that answers as Cloudflare's purge API does; its system checks; and the warning about
Wagtail's own purging signal handlers."""

from __future__ import annotations

import json
import math
import time
from datetime import timedelta

import pytest
import requests
from django.core import checks
from django.db import transaction
from django.utils import timezone
from wagtail.contrib.frontend_cache.backends import cloudflare as wagtail_cloudflare
from wagtail.contrib.frontend_cache.backends import http as wagtail_http
from wagtail.signals import page_published
from werkzeug import Response

from tests.support import sinks
from tests.testapp.models import BlogPage
from wagtail_publish_hooks.backends.frontend_cache import (
    FrontendCacheBackend,
    wagtail_signal_handlers_connected,
)
from wagtail_publish_hooks.backends.purge_http import PinnedPurgeBackend
from wagtail_publish_hooks.http import close_session
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)

FRONTEND_CACHE = "wagtail_publish_hooks.backends.frontend_cache.FrontendCacheBackend"
CLOUDFLARE = "wagtail.contrib.frontend_cache.backends.CloudflareBackend"
HTTP_BACKEND = "wagtail.contrib.frontend_cache.backends.HTTPBackend"
CLOUDFLARE_API = "https://api.cloudflare.com"
TOKEN = "cf-token-not-for-logs-0123456789"
OK = {"success": True, "errors": [], "messages": [], "result": {"id": "zone"}}


class LocalCloudflare:
    """What Wagtail's Cloudflare module sees as ``requests``: the same library, with the API's
    address replaced by the loopback server's. Wagtail's client code runs unchanged."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def post(self, url: str, **kwargs):
        assert url.startswith(CLOUDFLARE_API + "/"), url
        return requests.post(self.base_url + url[len(CLOUDFLARE_API) :], **kwargs)  # noqa: S113

    def __getattr__(self, name: str):
        return getattr(requests, name)


@pytest.fixture
def cloudflare_api(httpserver, monkeypatch):
    """The loopback Cloudflare API; returns a function listing the purge requests it got."""
    monkeypatch.setattr(wagtail_cloudflare, "requests", LocalCloudflare(httpserver.url_for("/")))

    def purges(zone: str = "zone1") -> list[dict]:
        path = f"/client/v4/zones/{zone}/purge_cache"
        return [
            {"files": json.loads(request.get_data())["files"], "headers": dict(request.headers)}
            for request, _ in httpserver.log
            if request.path == path
        ]

    return purges


def cloudflare(zone: str = "zone1", **extra) -> dict:
    return {"BACKEND": CLOUDFLARE, "ZONEID": zone, "BEARER_TOKEN": TOKEN, **extra}


@pytest.fixture
def cdn(configure):
    def apply(backends=None, **options):
        configure(
            DESTINATIONS={
                "cdn": {
                    "BACKEND": FRONTEND_CACHE,
                    "OPTIONS": {"BACKENDS": backends or {"cf": cloudflare()}, **options},
                }
            },
            RETRY_SCHEDULE=[300],
            MAX_ATTEMPTS=3,
        )

    return apply


def respond(httpserver, body, status=200, zone="zone1"):
    httpserver.clear_all_handlers()
    path = f"/client/v4/zones/{zone}/purge_cache"
    if isinstance(body, dict):
        httpserver.expect_request(path, method="POST").respond_with_json(body, status=status)
    else:
        httpserver.expect_request(path, method="POST").respond_with_response(
            Response(body, status=status)
        )


def close_windows():
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def publish(page):
    page.save_revision().publish()


def bulk_publish(blog_index, count):
    pages = []
    with transaction.atomic():
        for i in range(count):
            page = BlogPage(title=f"Page {i}", slug=f"page-{i}", live=False)
            blog_index.add_child(instance=page)
            publish(page)
            pages.append(page)
    return pages


def test_a_bulk_publish_of_100_pages_is_four_requests_of_at_most_30_urls(
    cdn, cloudflare_api, httpserver, blog_index, deliver
):
    cdn(COALESCE_SECONDS=60)
    respond(httpserver, OK)
    bulk_publish(blog_index, 100)
    assert Delivery.objects.count() == 1  # one window, one delivery
    assert deliver().delivered == 0  # still inside the window
    assert cloudflare_api() == []

    close_windows()
    assert deliver().delivered == 1

    purges = cloudflare_api()
    expected = {f"http://localhost/news/page-{i}/" for i in range(100)} | {"http://localhost/news/"}
    assert len(purges) == math.ceil(len(expected) / 30) == 4
    assert [len(p["files"]) for p in purges] == [30, 30, 30, 11]
    sent = [url for p in purges for url in p["files"]]
    assert len(sent) == len(set(sent)) and set(sent) == expected  # each URL once
    assert all(p["headers"]["Authorization"] == f"Bearer {TOKEN}" for p in purges)

    attempt = Attempt.objects.get()
    assert attempt.outcome == "success"
    assert set(attempt.detail["urls"]) == expected
    assert attempt.detail["url_count"] == 101
    assert attempt.detail["events"] == 100
    assert attempt.detail["batches"] == 4
    assert attempt.detail["backends"] == {
        "cf": {"class": "CloudflareBackend", "urls": 101, "batches": 4, "errors": 0}
    }
    record = json.dumps(
        [attempt.detail, attempt.request_headers, attempt.response_body, attempt.error]
    )
    assert TOKEN not in record


def test_batch_size_is_configurable(cdn, cloudflare_api, httpserver, blog_index, deliver):
    cdn(COALESCE_SECONDS=60, BATCH_SIZE=8)
    respond(httpserver, OK)
    bulk_publish(blog_index, 20)
    close_windows()
    deliver()
    assert [len(p["files"]) for p in cloudflare_api()] == [8, 8, 5]


def test_urls_go_to_the_backends_for_their_host(
    cdn, cloudflare_api, httpserver, site_root, blog_index, deliver
):
    from wagtail.models import Site

    Site.objects.create(hostname="shop.example", port=80, root_page=site_root)
    cdn(
        backends={
            "main": cloudflare("zone-main", HOSTNAMES=["localhost"]),
            "shop": cloudflare("zone-shop", HOSTNAMES=["shop.example"]),
        },
        COALESCE_SECONDS=0,
    )
    httpserver.expect_request("/client/v4/zones/zone-main/purge_cache").respond_with_json(OK)
    httpserver.expect_request("/client/v4/zones/zone-shop/purge_cache").respond_with_json(OK)
    page = BlogPage(title="Post", slug="post", live=False)
    blog_index.add_child(instance=page)
    publish(page)
    assert [sorted(p["files"]) for p in cloudflare_api("zone-main")] == [
        ["http://localhost/news/", "http://localhost/news/post/"]
    ]
    assert [sorted(p["files"]) for p in cloudflare_api("zone-shop")] == [
        ["http://shop.example/news/", "http://shop.example/news/post/"]
    ]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"success": False, "errors": [{"code": 1134, "message": "Zone is locked"}]},
            200,
            "Cloudflare errors 'Zone is locked'",
        ),
        ("<html>Bad gateway</html>", 502, "HTTPError: 502"),
    ],
    ids=["success-false", "http-502"],
)
def test_a_purge_cloudflare_refuses_is_retried_and_recorded(
    cdn, cloudflare_api, httpserver, blog_index, deliver, body, status, error
):
    cdn(COALESCE_SECONDS=0)
    respond(httpserver, body, status=status)
    page = BlogPage(title="Post", slug="post", live=False)
    blog_index.add_child(instance=page)
    publish(page)  # delivered on commit: Wagtail's backend logs the failure and returns

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    attempt = Attempt.objects.get()
    assert attempt.outcome == "retry"
    assert error in attempt.error
    assert set(attempt.detail["failed_urls"]) == {
        "http://localhost/news/",
        "http://localhost/news/post/",
    }
    assert attempt.detail["backends"]["cf"]["errors"] >= 1
    assert any(error in text for text in attempt.detail["errors"])
    assert TOKEN not in json.dumps([attempt.detail, attempt.error])

    respond(httpserver, OK)
    close_windows()
    assert deliver().delivered == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    last = Attempt.objects.order_by("number").last()
    assert last.outcome == "success"
    assert set(last.detail["urls"]) == {"http://localhost/news/", "http://localhost/news/post/"}
    assert len(cloudflare_api()) == 2  # the failed batch and its retry


def test_an_unreachable_api_fails_after_the_last_attempt(
    cdn, monkeypatch, free_port, blog_index, deliver
):
    monkeypatch.setattr(
        wagtail_cloudflare, "requests", LocalCloudflare(f"http://127.0.0.1:{free_port}")
    )
    cdn(COALESCE_SECONDS=0)
    page = BlogPage(title="Post", slug="post", live=False)
    blog_index.add_child(instance=page)
    publish(page)
    for _ in range(2):
        close_windows()
        deliver()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 3
    assert all("ConnectionError" in a.error for a in Attempt.objects.all())


def test_failures_logged_by_other_threads_are_not_counted(
    cdn, cloudflare_api, httpserver, blog_index
):
    import logging
    import threading

    respond(httpserver, OK)
    cdn(COALESCE_SECONDS=0)
    stop = threading.Event()

    def noisy():
        while not stop.is_set():
            logging.getLogger("wagtail.frontendcache").error("Couldn't purge '%s'", "x")

    thread = threading.Thread(target=noisy)
    thread.start()
    try:
        page = BlogPage(title="Post", slug="post", live=False)
        blog_index.add_child(instance=page)
        publish(page)
    finally:
        stop.set()
        thread.join()
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_the_test_command_purges_every_site_home_page(cdn, cloudflare_api, httpserver, site_root):
    from django.core.management import call_command

    cdn()
    respond(httpserver, OK)
    call_command("publish_hooks", "test", "cdn")
    assert [p["files"] for p in cloudflare_api()] == [["http://localhost/"]]


def test_describe_names_the_backends_without_secrets():
    backend = FrontendCacheBackend(alias="cdn", options={"BACKENDS": {"cf": cloudflare()}})
    assert backend.describe() == "Frontend cache purge through cf"
    assert TOKEN not in backend.describe()


# -- HTTP purges: the package's own transport ---------------------------------------------------


class KeepsPurge(wagtail_http.HTTPBackend):
    """A subclass that changes nothing about how it purges: sent by the package's transport."""


class OwnPurge(wagtail_http.HTTPBackend):
    """A subclass with a ``purge()`` of its own: the operator's code, run as it is."""

    purged: list[str] = []

    def purge(self, url):
        OwnPurge.purged.append(url)


def http_cdn(configure, location, *, backend=HTTP_BACKEND, **options):
    configure(
        DESTINATIONS={
            "cdn": {
                "BACKEND": FRONTEND_CACHE,
                "OPTIONS": {
                    "BACKENDS": {"cache": {"BACKEND": backend, "LOCATION": location}},
                    "COALESCE_SECONDS": 0,
                    **options,
                },
            }
        },
        RETRY_SCHEDULE=[300],
        MAX_ATTEMPTS=3,
    )


@pytest.fixture(autouse=True)
def fresh_session():
    close_session()
    yield
    close_session()


@pytest.mark.parametrize("backend", [HTTP_BACKEND, f"{__name__}.KeepsPurge"])
def test_an_http_purge_is_what_httpbackend_sends(configure, backend):
    """PURGE to the cache's LOCATION, the page URL's path and query kept, its host (and port)
    in the Host header; sent through the pinned session (a refusal proves the policy ran)."""
    with sinks.Sink(sinks.respond(200, b"Purged")) as cache:
        http_cdn(configure, cache.url().rstrip("/"), backend=backend)
        [purger] = (
            FrontendCacheBackend(alias="cdn", options=options_of("cdn")).wagtail_backends().values()
        )
        assert isinstance(purger, PinnedPurgeBackend)
        failures = purger.purge_all(
            ["http://www.example.com:8080/news/a/?page=2", "https://example.com/"]
        )
    assert failures == []
    assert [(r.method, r.path, r.header("Host")) for r in cache.requests] == [
        ("PURGE", "/news/a/?page=2", "www.example.com:8080"),
        ("PURGE", "/", "example.com"),
    ]
    assert all(r.header("User-Agent").startswith("wagtail-publish-hooks/") for r in cache.requests)


def options_of(alias):
    from wagtail_publish_hooks.registry import get_destinations

    return get_destinations()[alias].options


def test_a_purge_answered_with_an_error_status_is_retried(configure, blog_index):
    with sinks.Sink(sinks.respond(405, b"Not allowed")) as cache:
        http_cdn(configure, cache.url().rstrip("/"))
        publish_post(blog_index)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    attempt = Attempt.objects.get()
    assert attempt.detail["errors"] == ["cache: HTTP 405"]
    assert set(attempt.detail["failed_urls"]) == set(attempt.detail["urls"])


def test_one_deadline_holds_each_purge_request(configure, blog_index):
    """A cache that never answers holds the worker for TIMEOUT, not for ever (``urlopen``,
    which Wagtail's ``HTTPBackend`` uses, has no timeout at all)."""
    with sinks.Sink(sinks.stall) as cache:
        http_cdn(configure, cache.url().rstrip("/"), TIMEOUT=1, BATCH_SIZE=1)
        started = time.monotonic()
        publish_post(blog_index)
        elapsed = time.monotonic() - started
    attempt = Attempt.objects.get()
    assert attempt.outcome == "retry"
    assert "within 1 s" in attempt.error
    assert len(attempt.detail["urls"]) == 2
    assert elapsed < 2 * 1 + 3  # two requests of at most 1 s each, and room for a slow machine


def test_a_refused_cache_is_a_failure_recorded_without_a_request(configure, settings, blog_index):
    with sinks.Sink(sinks.respond()) as cache:
        http_cdn(configure, cache.url().rstrip("/"))
        settings.WAGTAIL_PUBLISH_HOOKS = {
            **settings.WAGTAIL_PUBLISH_HOOKS,
            "ALLOW_PRIVATE_NETWORKS": ["10.0.0.0/8"],
        }
        publish_post(blog_index)
        assert cache.connections == 0
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == (
        "1 purge error(s): cache: refused: the target is a non-public address (loopback); "
        "allow it with ALLOW_PRIVATE_NETWORKS"
    )


def test_a_subclass_with_its_own_purge_runs_its_own_code_for_the_operator(configure, blog_index):
    OwnPurge.purged = []
    with sinks.Sink(sinks.respond()) as cache:
        http_cdn(configure, cache.url().rstrip("/"), backend=f"{__name__}.OwnPurge")
        publish_post(blog_index)
        assert cache.connections == 0
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert sorted(OwnPurge.purged) == ["http://localhost/news/", "http://localhost/news/post/"]


def publish_post(blog_index):
    page = BlogPage(title="Post", slug="post", live=False)
    blog_index.add_child(instance=page)
    publish(page)


# -- checks ---------------------------------------------------------------------------------------


def run_checks(settings, options, allow=("127.0.0.0/8",), **destination):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.WAGTAIL_PUBLISH_HOOKS = {
        "DESTINATIONS": {"cdn": {"BACKEND": FRONTEND_CACHE, "OPTIONS": options, **destination}},
        "ALLOW_PRIVATE_NETWORKS": list(allow),
    }
    return checks.run_checks(tags=["wagtail_publish_hooks"])


VARNISH = {"varnish": {"BACKEND": HTTP_BACKEND, "LOCATION": "http://127.0.0.1:6081"}}


@pytest.mark.parametrize(
    ("options", "expected", "text"),
    [
        ({"BACKENDS": VARNISH}, [], ""),
        (
            {
                "BACKENDS": VARNISH,
                "PURGE_ANCESTORS": 0,
                "PURGE_REFERENCING_PAGES": False,
                "BATCH_SIZE": {"varnish": 10},
                "EXTRA_URLS": {"testapp.BlogPage": "tests.backends.test_purge_set.extra_feed_urls"},
                "COALESCE_SECONDS": 0,
            },
            [],
            "",
        ),
        ({}, ["E038"], "['OPTIONS']['BACKENDS']: is not set, and neither is WAGTAILFRONTENDCACHE"),
        ({"BACKENDS": {}}, ["E038"], "is an empty dict"),
        ({"BACKENDS": "varnish"}, ["E037"], "must be a dict shaped like WAGTAILFRONTENDCACHE"),
        ({"BACKENDS": {"varnish": {"LOCATION": "x"}}}, ["E037"], "'varnish' must be a dict"),
        (
            {"BACKENDS": {"cf": {"BACKEND": CLOUDFLARE, "ZONEID": "z"}}},
            ["E037"],
            "cannot be built: ImproperlyConfigured",
        ),
        (
            {"BACKENDS": {"x": {"BACKEND": "wagtail.contrib.frontend_cache.backends.Nope"}}},
            ["E037"],
            "cannot be built",
        ),
        ({"BACKENDS": ["cdn"]}, ["E041"], "'cdn' is not a backend of WAGTAILFRONTENDCACHE"),
        ({"BACKENDS": []}, ["E041"], "must be a non-empty list of names"),
        ({"BACKENDS": VARNISH, "PURGE_ANCESTORS": -1}, ["E015"], "PURGE_ANCESTORS"),
        ({"BACKENDS": VARNISH, "PURGE_ANCESTORS": True}, ["E015"], "PURGE_ANCESTORS"),
        ({"BACKENDS": VARNISH, "PURGE_REFERENCING_PAGES": "no"}, ["E039"], "True or False"),
        ({"BACKENDS": VARNISH, "BATCH_SIZE": 0}, ["E039"], "integer greater than zero"),
        ({"BACKENDS": VARNISH, "BATCH_SIZE": {"varnish": "30"}}, ["E039"], "BATCH_SIZE"),
        ({"BACKENDS": VARNISH, "EXTRA_URLS": "x.y"}, ["E040"], "must be a dict of page model"),
        (
            {
                "BACKENDS": VARNISH,
                "EXTRA_URLS": {"testapp.Advert": "tests.backends.test_purge_set.x"},
            },
            ["E040"],
            "'testapp.Advert' is not an installed page model",
        ),
        (
            {"BACKENDS": VARNISH, "EXTRA_URLS": {"*": "tests.nope.feeds"}},
            ["E040"],
            "cannot be imported",
        ),
        ({"BACKENDS": VARNISH, "EXTRA_URLS": {"*": 3}}, ["E040"], "dotted path of a callable"),
        ({"BACKENDS": VARNISH, "PURGE_ANCESTOR": 2}, ["E010"], "Did you mean"),
    ],
)
def test_checks(settings, options, expected, text):
    messages = run_checks(settings, options)
    assert [m.id.rsplit(".", 1)[1] for m in messages] == expected, messages
    if text:
        assert text in messages[0].msg + (messages[0].hint or "")
        assert messages[0].msg.startswith("WAGTAIL_PUBLISH_HOOKS['DESTINATIONS']['cdn']")


def test_backend_names_from_wagtailfrontendcache(settings):
    settings.WAGTAILFRONTENDCACHE = {**VARNISH, "cf": cloudflare()}
    assert run_checks(settings, {"BACKENDS": ["varnish"]}) == []
    assert run_checks(settings, {}) == []
    settings.WAGTAILFRONTENDCACHE = {"cf": {"BACKEND": CLOUDFLARE, "ZONEID": "z"}}
    messages = run_checks(settings, {})
    assert [m.id for m in messages] == ["wagtail_publish_hooks.E037"]
    assert messages[0].msg.startswith("WAGTAIL_PUBLISH_HOOKS['DESTINATIONS']['cdn']: ")


def test_wagtails_own_purging_handlers_are_a_warning(settings):
    """W009: ``wagtail.contrib.frontend_cache``'s app connects these for every page model."""
    from wagtail.contrib.frontend_cache.signal_handlers import page_published_signal_handler

    assert not wagtail_signal_handlers_connected()
    assert run_checks(settings, {"BACKENDS": VARNISH}) == []
    page_published.connect(page_published_signal_handler, sender=BlogPage)
    try:
        assert wagtail_signal_handlers_connected()
        messages = run_checks(settings, {"BACKENDS": VARNISH})
        assert [m.id for m in messages] == ["wagtail_publish_hooks.W009"]
        assert "purged twice" in messages[0].msg
        assert "INSTALLED_APPS" in messages[0].hint
    finally:
        page_published.disconnect(page_published_signal_handler, sender=BlogPage)
    assert run_checks(settings, {"BACKENDS": VARNISH}) == []


# -- W018: a purge location the address policy refuses -------------------------------------------


@pytest.mark.parametrize(
    ("location", "allow", "kind"),
    [
        ("http://127.0.0.1:6081", [], "loopback"),
        ("http://localhost:6081", ["10.0.0.0/8"], "loopback"),
        ("http://[::1]:6081", ["127.0.0.0/8"], "loopback"),
        ("http://10.0.5.20", ["127.0.0.0/8"], "private"),
        ("http://169.254.169.254", ["169.254.0.0/16", "0.0.0.0/0"], None),  # contains it
        ("http://169.254.169.254", [], "metadata"),
        ("http://127.0.0.1:6081", ["127.0.0.0/8"], None),
        ("http://varnish.internal:6081", [], None),  # a name: not looked up by a check
        ("http://203.0.114.1", [], None),  # public
    ],
)
def test_a_purge_location_the_policy_refuses_is_a_warning(settings, location, allow, kind):
    options = {"BACKENDS": {"varnish": {"BACKEND": HTTP_BACKEND, "LOCATION": location}}}
    messages = run_checks(settings, options, allow=allow)
    if kind is None:
        assert messages == []
        return
    assert [m.id for m in messages] == ["wagtail_publish_hooks.W018"]
    assert messages[0].msg == (
        "WAGTAIL_PUBLISH_HOOKS['DESTINATIONS']['cdn']['OPTIONS']['BACKENDS']: purge backend "
        f"'varnish' has its LOCATION on a {kind} address, which ALLOW_PRIVATE_NETWORKS does not "
        "allow: every purge through it will be refused."
    )
    assert "ALLOW_PRIVATE_NETWORKS" in messages[0].hint


def test_a_managed_destination_is_judged_by_the_managed_allowance(settings):
    """WAGTAILFRONTENDCACHE's cache on loopback: fine for the operator's destination, W018
    for the one managed in the admin until MANAGED_ALLOW_PRIVATE_NETWORKS allows it."""
    from wagtail_publish_hooks.models import ManagedDestination

    settings.WAGTAILFRONTENDCACHE = VARNISH
    ManagedDestination.objects.create(
        alias="managed-cdn", backend=FRONTEND_CACHE, options={"BACKENDS": ["varnish"]}
    )
    messages = run_checks(settings, {"BACKENDS": ["varnish"]})
    assert [(m.id, m.msg.split(":")[0]) for m in messages] == [
        (
            "wagtail_publish_hooks.W018",
            "wagtail_publish_hooks.ManagedDestination['managed-cdn']['OPTIONS']['BACKENDS']",
        )
    ]
    assert "MANAGED_ALLOW_PRIVATE_NETWORKS does not allow" in messages[0].msg
    settings.WAGTAIL_PUBLISH_HOOKS = {
        **settings.WAGTAIL_PUBLISH_HOOKS,
        "MANAGED_ALLOW_PRIVATE_NETWORKS": ["127.0.0.1/32"],
    }
    assert checks.run_checks(tags=["wagtail_publish_hooks"]) == []


def test_w018_leaves_a_malformed_backend_to_the_other_checks(settings):
    backends = {"varnish": {"BACKEND": 3, "LOCATION": "http://127.0.0.1"}}
    messages = run_checks(settings, {"BACKENDS": backends}, allow=())
    assert [m.id for m in messages] == ["wagtail_publish_hooks.E037"]
