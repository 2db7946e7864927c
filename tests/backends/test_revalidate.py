"""The revalidation backend against loopback servers that answer as a Next.js on-demand
revalidation route does (checks a secret, answers ``{"revalidated": true}``)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from wagtail.models import Page, Site
from werkzeug import Request, Response

from tests.testapp.models import BlogIndexPage, BlogPage
from wagtail_publish_hooks.backends.revalidate import RevalidateBackend, event_urls
from wagtail_publish_hooks.checks.settings import check_settings
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus, Event

pytestmark = pytest.mark.django_db(transaction=True)

REVALIDATE = "wagtail_publish_hooks.backends.revalidate.RevalidateBackend"
SECRET = "s3cr3t-revalidation-token-0123456789"


def nextjs(secret: str = SECRET, header: str = "x-revalidate-secret"):
    """Like a Next.js route handler calling ``revalidatePath`` / ``revalidateTag``."""

    def handler(request: Request) -> Response:
        if request.headers.get(header) != secret:
            return Response(
                json.dumps({"message": "Invalid secret"}),
                status=401,
                content_type="application/json",
            )
        body = json.loads(request.get_data())
        if not isinstance(body.get("paths"), list):
            return Response(json.dumps({"message": "paths missing"}), status=400)
        answer = {"revalidated": True, "now": int(time.time() * 1000)}
        return Response(json.dumps(answer), status=200, content_type="application/json")

    return handler


def blog_tags(payload: dict) -> list[str]:
    page = payload["data"]["page"]
    return [f"page:{page['id']}", "blog"]


def everything_tags(payload: dict) -> list[str]:
    return ["everything"]


def close_windows():
    Delivery.objects.filter(status=DeliveryStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def configure_revalidate(configure, url, **options):
    opts = {"URL": url, "SECRET": SECRET, **options}
    return configure(
        DESTINATIONS={"frontend": {"BACKEND": REVALIDATE, "OPTIONS": opts}}, RETRY_SCHEDULE=[1]
    )


def make_pages(parent, n: int, prefix: str = "page") -> list[BlogPage]:
    pages = []
    for i in range(n):
        page = BlogPage(title=f"{prefix} {i}", slug=f"{prefix}-{i}", live=False)
        parent.add_child(instance=page)
        pages.append(page)
    return pages


def bodies(httpserver, path: str = "/api/revalidate") -> list[dict]:
    return [json.loads(r.get_data()) for r, _ in httpserver.log if r.path == path]


@pytest.fixture
def other_site(site_root):
    """A second site, ``other.example``, with its own home page and news index."""
    root = Page.get_first_root_node()
    home = Page(title="Other home", slug="other-home")
    root.add_child(instance=home)
    Site.objects.create(hostname="other.example", port=80, root_page=home)
    index = BlogIndexPage(title="Other news", slug="news")
    home.add_child(instance=index)
    return index


def test_coalesced_paths_are_deduplicated_and_sorted(configure, httpserver, blog_index, deliver):
    httpserver.expect_request("/api/revalidate", method="POST").respond_with_handler(nextjs())
    configure_revalidate(configure, httpserver.url_for("/api/revalidate"))
    pages = make_pages(blog_index, 3)
    for page in reversed(pages):
        page.save_revision().publish()
    pages[1].save_revision().publish()  # published twice in the window
    assert httpserver.log == []
    assert Delivery.objects.count() == 1
    close_windows()
    assert deliver().delivered == 1

    [(request, _)] = httpserver.log
    body = json.loads(request.get_data())
    assert body["paths"] == ["/news/page-0/", "/news/page-1/", "/news/page-2/"]
    assert body["tags"] == []
    events = list(Event.objects.order_by("created_at", "pk").values_list("event_id", flat=True))
    assert body["events"] == events and len(events) == 4
    assert request.headers["x-revalidate-secret"] == SECRET
    assert request.headers["Content-Type"] == "application/json"

    attempt = Attempt.objects.get()
    assert attempt.outcome == "success"
    assert attempt.request_headers["x-revalidate-secret"] == "[redacted]"
    assert SECRET not in json.dumps(attempt.request_headers)
    assert '"revalidated": true' in attempt.response_body


def test_a_custom_secret_header_is_redacted_too(configure, httpserver, blog_index, deliver):
    header = "x-prerender-revalidate"
    handler = nextjs(header=header)
    httpserver.expect_request("/api/revalidate").respond_with_handler(handler)
    configure_revalidate(configure, httpserver.url_for("/api/revalidate"), SECRET_HEADER=header)
    [page] = make_pages(blog_index, 1)
    page.save_revision().publish()
    close_windows()
    deliver()
    attempt = Attempt.objects.get()
    assert attempt.outcome == "success"
    assert attempt.request_headers[header] == "[redacted]"
    assert SECRET not in json.dumps(attempt.request_headers)


def test_moves_send_old_and_new_paths_unpublish_sends_the_old(
    configure, httpserver, blog_index, site_root, deliver
):
    httpserver.expect_request("/api/revalidate").respond_with_handler(nextjs())
    configure_revalidate(configure, httpserver.url_for("/api/revalidate"))
    moving, leaving = make_pages(blog_index, 2)
    for page in (moving, leaving):
        page.save_revision().publish()
    close_windows()
    deliver()
    httpserver.clear_log()

    moving.refresh_from_db()
    moving.move(site_root, pos="last-child")
    leaving.refresh_from_db()
    leaving.unpublish()
    close_windows()
    deliver()
    [body] = bodies(httpserver)
    assert body["paths"] == ["/news/page-0/", "/news/page-1/", "/page-0/"]
    assert len(body["events"]) == 2


def test_per_site_endpoints(configure, httpserver, blog_index, other_site, deliver):
    httpserver.expect_request("/www/revalidate").respond_with_handler(nextjs())
    httpserver.expect_request("/other/revalidate").respond_with_handler(nextjs())
    configure_revalidate(
        configure,
        {
            "localhost": httpserver.url_for("/www/revalidate"),
            "other.example": httpserver.url_for("/other/revalidate"),
        },
    )
    for page in make_pages(blog_index, 2) + make_pages(other_site, 3, prefix="other"):
        page.save_revision().publish()
    assert Delivery.objects.count() == 1
    close_windows()
    assert deliver().delivered == 1

    assert len(httpserver.log) == 2
    [www] = bodies(httpserver, "/www/revalidate")
    [other] = bodies(httpserver, "/other/revalidate")
    assert www["paths"] == ["/news/page-0/", "/news/page-1/"]
    assert other["paths"] == ["/news/other-0/", "/news/other-1/", "/news/other-2/"]
    assert len(www["events"]) == 2 and len(other["events"]) == 3
    attempt = Attempt.objects.get()
    assert attempt.response_body.count("HTTP 200") == 2


def test_sites_without_an_endpoint_are_left_out_unless_star(
    configure, httpserver, blog_index, other_site, deliver
):
    httpserver.expect_request("/other/revalidate").respond_with_handler(nextjs())
    configure_revalidate(configure, {"other.example": httpserver.url_for("/other/revalidate")})
    make_pages(blog_index, 1)[0].save_revision().publish()
    close_windows()
    deliver()
    assert httpserver.log == []  # nothing for other.example
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED

    httpserver.expect_request("/rest").respond_with_handler(nextjs())
    configure_revalidate(
        configure,
        {
            "other.example": httpserver.url_for("/other/revalidate"),
            "*": httpserver.url_for("/rest"),
        },
    )
    make_pages(blog_index, 1, prefix="more")[0].save_revision().publish()
    close_windows()
    deliver()
    assert bodies(httpserver, "/rest") == [
        {"paths": ["/news/more-0/"], "tags": [], "events": [Event.objects.latest("pk").event_id]}
    ]


def test_alias_pages_are_revalidated_on_their_own_site(
    configure, httpserver, blog_index, other_site, deliver
):
    httpserver.expect_request("/www/revalidate").respond_with_handler(nextjs())
    httpserver.expect_request("/other/revalidate").respond_with_handler(nextjs())
    configure_revalidate(
        configure,
        {
            "localhost": httpserver.url_for("/www/revalidate"),
            "other.example": httpserver.url_for("/other/revalidate"),
        },
    )
    [page] = make_pages(blog_index, 1, prefix="shared")
    page.save_revision().publish()
    page.refresh_from_db()
    page.create_alias(parent=other_site)
    close_windows()
    deliver()
    httpserver.clear_log()

    page.refresh_from_db()
    page.save_revision().publish()  # the alias is re-published with it
    close_windows()
    deliver()
    assert bodies(httpserver, "/www/revalidate")[0]["paths"] == ["/news/shared-0/"]
    assert bodies(httpserver, "/other/revalidate")[0]["paths"] == ["/news/shared-0/"]


def test_tags_from_a_per_model_callable(configure, httpserver, blog_index, deliver):
    httpserver.expect_request("/api/revalidate").respond_with_handler(nextjs())
    configure_revalidate(
        configure,
        httpserver.url_for("/api/revalidate"),
        TAGS={"testapp.BlogPage": f"{__name__}.blog_tags", "*": f"{__name__}.everything_tags"},
    )
    pages = make_pages(blog_index, 2)
    for page in pages:
        page.save_revision().publish()
    blog_index.save_revision().publish()  # not a BlogPage: the "*" callable
    close_windows()
    deliver()
    [body] = bodies(httpserver)
    assert body["tags"] == sorted(
        ["blog", "everything", f"page:{pages[0].pk}", f"page:{pages[1].pk}"]
    )
    assert body["paths"] == ["/news/", "/news/page-0/", "/news/page-1/"]


def test_a_single_tags_callable(configure, httpserver, blog_index, deliver):
    httpserver.expect_request("/api/revalidate").respond_with_handler(nextjs())
    configure_revalidate(
        configure, httpserver.url_for("/api/revalidate"), TAGS=f"{__name__}.everything_tags"
    )
    make_pages(blog_index, 1)[0].save_revision().publish()
    close_windows()
    deliver()
    assert bodies(httpserver)[0]["tags"] == ["everything"]


def test_a_wrong_secret_fails_without_retrying(configure, httpserver, blog_index, deliver):
    httpserver.expect_request("/api/revalidate").respond_with_handler(nextjs(secret="other"))
    configure_revalidate(configure, httpserver.url_for("/api/revalidate"))
    make_pages(blog_index, 1)[0].save_revision().publish()
    close_windows()
    deliver()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_status_code == 401
    assert "refused the secret" in delivery.last_error
    attempt = Attempt.objects.get()
    assert attempt.request_headers["x-revalidate-secret"] == "[redacted]"


@pytest.mark.parametrize(
    ("status", "headers", "wait"), [(500, {}, 1), (503, {}, 1), (429, {"Retry-After": "90"}, 90)]
)
def test_server_errors_and_rate_limits_are_retried(
    configure, httpserver, blog_index, deliver, status, headers, wait
):
    httpserver.expect_ordered_request("/api/revalidate").respond_with_data(
        "busy", status=status, headers=headers
    )
    httpserver.expect_ordered_request("/api/revalidate").respond_with_handler(nextjs())
    configure_revalidate(configure, httpserver.url_for("/api/revalidate"))
    make_pages(blog_index, 1)[0].save_revision().publish()
    close_windows()
    before = timezone.now()
    deliver()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.next_attempt_at >= before + timedelta(seconds=wait - 0.01)
    Delivery.objects.update(next_attempt_at=timezone.now())
    deliver()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    first, second = bodies(httpserver)
    assert first == second


def test_revalidated_false_is_retried(configure, httpserver, blog_index, deliver):
    httpserver.expect_request("/api/revalidate").respond_with_json({"revalidated": False})
    configure_revalidate(configure, httpserver.url_for("/api/revalidate"))
    make_pages(blog_index, 1)[0].save_revision().publish()
    close_windows()
    deliver()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert "revalidated: false" in delivery.last_error


def test_a_failing_site_names_its_endpoint(configure, httpserver, blog_index, other_site, deliver):
    httpserver.expect_request("/www/revalidate").respond_with_handler(nextjs())
    httpserver.expect_request("/other/secret-path").respond_with_data("", status=404)
    configure_revalidate(
        configure,
        {
            "localhost": httpserver.url_for("/www/revalidate"),
            "other.example": httpserver.url_for("/other/secret-path"),
        },
    )
    make_pages(blog_index, 1)[0].save_revision().publish()
    make_pages(other_site, 1)[0].save_revision().publish()
    close_windows()
    deliver()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("http://localhost:")
    assert "HTTP 404: no revalidation endpoint" in delivery.last_error
    assert "secret-path" not in delivery.last_error


def test_a_test_event_posts_an_empty_list(configure, httpserver):
    from django.core.management import call_command

    httpserver.expect_request("/api/revalidate").respond_with_handler(nextjs())
    configure_revalidate(configure, httpserver.url_for("/api/revalidate"))
    call_command("publish_hooks", "test", "frontend", "--wait", "5")
    [body] = bodies(httpserver)
    assert body["paths"] == [] and body["tags"] == [] and len(body["events"]) == 1


def test_event_urls():
    payload = {
        "data": {
            "page": {"url": "https://a.example/x/", "urls": ["https://a.example/x/"]},
            "moved": {
                "urls_before": ["https://a.example/old/"],
                "urls_after": ["https://a.example/x/"],
            },
        }
    }
    assert event_urls(payload) == ["https://a.example/x/", "https://a.example/old/"]
    assert event_urls({"data": {"object": {"id": 1}}}) == []


def test_describe_hides_paths():
    single = RevalidateBackend(alias="f", options={"URL": "https://www.example.com/api/revalidate"})
    assert single.describe() == "Revalidation at https://www.example.com/…"
    per_site = RevalidateBackend(
        alias="f",
        options={
            "URL": {"b.example": "https://b.example/api/r", "a.example": "https://a.example/r"}
        },
    )
    assert per_site.describe() == (
        "Revalidation per site: a.example → https://a.example/…, b.example → https://b.example/…"
    )
    assert RevalidateBackend.exclude_aliases_by_default is False
    assert single.coalesce_seconds() == 30


def run_checks(settings, options):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.WAGTAIL_PUBLISH_HOOKS = {
        "DESTINATIONS": {"frontend": {"BACKEND": REVALIDATE, "OPTIONS": options}}
    }
    return [message.id.split(".")[-1] for message in check_settings()]


URL = "https://www.example.com/api/revalidate"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"URL": URL, "SECRET": "x"}, []),
        ({"URL": URL}, ["W008"]),
        ({"SECRET": "x"}, ["E011"]),
        ({"URL": {"www.example.com": URL, "*": URL}, "SECRET": "x"}, []),
        ({"URL": {}, "SECRET": "x"}, ["E034"]),
        ({"URL": {"https://www.example.com": URL}, "SECRET": "x"}, ["E034"]),
        ({"URL": {"www.example.com": "ftp://x"}, "SECRET": "x"}, ["E012"]),
        ({"URL": {"www.example.com": "http://www.example.com/r"}, "SECRET": "x"}, ["W003"]),
        ({"URL": URL, "SECRET": ""}, ["E036"]),
        ({"URL": URL, "SECRET": "x", "SECRET_HEADER": "bad header"}, ["E036"]),
        ({"URL": URL, "SECRET": "x", "TAGS": f"{__name__}.blog_tags"}, []),
        ({"URL": URL, "SECRET": "x", "TAGS": {"testapp.BlogPage": f"{__name__}.blog_tags"}}, []),
        ({"URL": URL, "SECRET": "x", "TAGS": "no.such.module"}, ["E035"]),
        ({"URL": URL, "SECRET": "x", "TAGS": f"{__name__}.SECRET"}, ["E035"]),
        ({"URL": URL, "SECRET": "x", "TAGS": {"nope.Model": f"{__name__}.blog_tags"}}, ["E035"]),
        ({"URL": URL, "SECRET": "x", "TAGS": ["x"]}, ["E035"]),
        ({"URL": URL, "SECRET": "x", "COALESCE_SECONDS": 5}, []),
        ({"URL": URL, "SECRET": "x", "PATHS": []}, ["E010"]),
    ],
)
def test_checks(settings, options, expected):
    assert run_checks(settings, options) == expected


def test_a_per_site_url_error_names_the_site(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.WAGTAIL_PUBLISH_HOOKS = {
        "DESTINATIONS": {
            "frontend": {
                "BACKEND": REVALIDATE,
                "OPTIONS": {"URL": {"www.example.com": "nope"}, "SECRET": "x"},
            }
        }
    }
    [message] = check_settings()
    assert "['OPTIONS']['URL']['www.example.com']" in message.msg
