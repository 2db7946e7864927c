"""The build hook backend against loopback servers that answer as Netlify, Vercel and
Cloudflare Pages deploy hooks do."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from werkzeug import Request, Response

from tests.testapp.models import BlogPage
from wagtail_publish_hooks.backends.build_hook import (
    BuildHookBackend,
    build_title,
    detect_provider,
)
from wagtail_publish_hooks.checks.settings import check_settings
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus, DestinationState

pytestmark = pytest.mark.django_db(transaction=True)

BUILD_HOOK = "wagtail_publish_hooks.backends.build_hook.BuildHookBackend"
NETLIFY_ID = "5f3a9c0e1d2b4a0011aabbcc"
NETLIFY_PATH = f"/build_hooks/{NETLIFY_ID}"
VERCEL_PATH = "/v1/integrations/deploy/prj_AbCdEf123/Xy9SecretHook"
CLOUDFLARE_PATH = "/client/v4/pages/webhooks/deploy_hooks/0b1c2d3e-secret-hook"


def netlify(status: int = 200, body: str = "", headers: dict | None = None):
    """Netlify: ``200`` with an empty body; ``404`` text for a deleted hook."""

    def handler(request: Request) -> Response:
        return Response(body, status=status, headers=headers or {}, content_type="text/plain")

    return handler


def vercel(request: Request) -> Response:
    body = {"job": {"id": "okzCd8Tg5AHg9KmzVPrD", "state": "PENDING", "createdAt": 1732200000000}}
    return Response(json.dumps(body), status=201, content_type="application/json")


def cloudflare(success: bool = True, status: int = 200):
    def handler(request: Request) -> Response:
        if success:
            body = {
                "success": True,
                "errors": [],
                "messages": [],
                "result": {"id": "3c5b7ea0-8f6e-4a3b-b6b8-1d6f3c1f9e2a"},
            }
        else:
            body = {
                "success": False,
                "errors": [{"code": 8000007, "message": "Project not found."}],
                "messages": [],
                "result": None,
            }
        return Response(json.dumps(body), status=status, content_type="application/json")

    return handler


def close_windows():
    Delivery.objects.filter(status=DeliveryStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def destination(httpserver, path: str, provider: str | None = None, **options):
    opts = {"URL": httpserver.url_for(path), **options}
    if provider:
        opts["PROVIDER"] = provider
    return {"BACKEND": BUILD_HOOK, "OPTIONS": opts}


def requests_to(httpserver, path: str) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == path]


def make_drafts(blog_index, n: int, **fields) -> list[BlogPage]:
    pages = []
    for i in range(n):
        page = BlogPage(title=f"Page {i}", slug=f"page-{i}", live=False, **fields)
        blog_index.add_child(instance=page)
        pages.append(page)
    return pages


# -- coalescing: one build per destination ---------------------------------------------------------


def test_a_bulk_publish_of_200_pages_is_one_build_per_destination(
    configure, httpserver, blog_index, client, django_user_model, deliver
):
    httpserver.expect_request(NETLIFY_PATH, method="POST").respond_with_handler(netlify())
    httpserver.expect_request(VERCEL_PATH, method="POST").respond_with_handler(vercel)
    configure(
        DESTINATIONS={
            "netlify": destination(httpserver, NETLIFY_PATH, "netlify"),
            "vercel": destination(httpserver, VERCEL_PATH, "vercel"),
        }
    )
    pages = make_drafts(blog_index, 200)
    for page in pages:
        page.save_revision()
    admin = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    url = reverse("wagtail_bulk_action", args=("wagtailcore", "page", "publish"))
    query = "&".join(f"id={page.pk}" for page in pages)
    response = client.post(f"{url}?{query}", {"include_descendants": ""})
    assert response.status_code == 302
    assert BlogPage.objects.live().count() == 200

    assert httpserver.log == []  # both still inside their window
    assert Delivery.objects.count() == 2
    close_windows()
    assert deliver().delivered == 2

    assert len(httpserver.log) == 2
    [to_netlify] = requests_to(httpserver, NETLIFY_PATH)
    [to_vercel] = requests_to(httpserver, VERCEL_PATH)
    title = "wagtail-publish-hooks: 200 pages published"
    assert parse_qs(to_netlify.query_string.decode()) == {"trigger_title": [title]}
    assert to_vercel.query_string == b""
    body = json.loads(to_netlify.get_data())
    assert body["title"] == title
    assert len(body["events"]) == 200
    assert body["counts"] == {"page.published": 200}
    assert to_netlify.headers["Content-Type"] == "application/json"

    deliver()
    assert len(httpserver.log) == 2  # nothing more to send


def test_a_publish_scheduled_run_of_200_pages_is_one_build_per_destination(
    configure, httpserver, blog_index, deliver
):
    httpserver.expect_request(CLOUDFLARE_PATH, method="POST").respond_with_handler(cloudflare())
    httpserver.expect_request("/generic-hook", method="POST").respond_with_data("ok")
    configure(
        DESTINATIONS={
            "pages": destination(httpserver, CLOUDFLARE_PATH, "cloudflare"),
            "ci": destination(httpserver, "/generic-hook", COALESCE_SECONDS=60),
        }
    )
    past = timezone.now() - timedelta(minutes=1)
    for page in make_drafts(blog_index, 200, go_live_at=past):
        page.save_revision(approved_go_live_at=past)
    assert Delivery.objects.count() == 0  # only scheduled so far

    call_command("publish_scheduled")
    assert BlogPage.objects.live().count() == 200
    assert httpserver.log == []
    assert deliver().delivered == 0  # still inside their windows
    close_windows()
    assert deliver().delivered == 2
    assert len(requests_to(httpserver, CLOUDFLARE_PATH)) == 1
    assert len(requests_to(httpserver, "/generic-hook")) == 1
    assert len(httpserver.log) == 2
    for delivery in Delivery.objects.all():
        assert len(delivery.covered_events()) == 200


def test_a_short_window_sends_when_it_closes(configure, httpserver, blog_index, deliver):
    httpserver.expect_request("/generic-hook", method="POST").respond_with_data("ok")
    configure(DESTINATIONS={"ci": destination(httpserver, "/generic-hook", COALESCE_SECONDS=0.5)})
    for page in make_drafts(blog_index, 3):
        page.save_revision().publish()
    assert httpserver.log == []
    time.sleep(0.6)
    assert deliver().delivered == 1
    [(request, _)] = httpserver.log
    assert json.loads(request.get_data())["counts"] == {"page.published": 3}


# -- what each service answers --------------------------------------------------------------------


def test_vercel_job_id_is_kept(configure, httpserver, blog_index, caplog):
    httpserver.expect_request(VERCEL_PATH, method="POST").respond_with_handler(vercel)
    configure(DESTINATIONS={"vercel": destination(httpserver, VERCEL_PATH, "vercel")})
    [page] = make_drafts(blog_index, 1)
    page.save_revision().publish()
    delivery = Delivery.objects.get()
    backend = BuildHookBackend(alias="vercel", options={"URL": httpserver.url_for(VERCEL_PATH)})
    backend.provider = "vercel"
    with caplog.at_level(logging.INFO, logger="wagtail_publish_hooks"):
        result = backend.deliver(delivery)
    assert result.status_code == 201
    assert result.extra == {"provider": "vercel", "deployment_id": "okzCd8Tg5AHg9KmzVPrD"}
    ours = [r.getMessage() for r in caplog.records if r.name == "wagtail_publish_hooks"]
    assert any("deployment okzCd8Tg5AHg9KmzVPrD" in message for message in ours)
    assert not any("Xy9SecretHook" in message for message in ours)


def test_delivered_attempt_records_the_deployment(configure, httpserver, blog_index, deliver):
    httpserver.expect_request(CLOUDFLARE_PATH, method="POST").respond_with_handler(cloudflare())
    configure(DESTINATIONS={"pages": destination(httpserver, CLOUDFLARE_PATH, "cloudflare")})
    for page in make_drafts(blog_index, 3):
        page.save_revision().publish()
    close_windows()
    deliver()
    attempt = Attempt.objects.get()
    assert attempt.outcome == "success"
    assert attempt.status_code == 200
    assert "3c5b7ea0-8f6e-4a3b-b6b8-1d6f3c1f9e2a" in attempt.response_body
    assert attempt.detail == {
        "provider": "cloudflare",
        "deployment_id": "3c5b7ea0-8f6e-4a3b-b6b8-1d6f3c1f9e2a",
    }


def test_cloudflare_success_false_fails_with_its_errors(configure, httpserver, blog_index, deliver):
    handler = cloudflare(success=False)
    httpserver.expect_request(CLOUDFLARE_PATH, method="POST").respond_with_handler(handler)
    configure(DESTINATIONS={"pages": destination(httpserver, CLOUDFLARE_PATH, "cloudflare")})
    [page] = make_drafts(blog_index, 1)
    page.save_revision().publish()
    close_windows()
    deliver()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "success: false" in delivery.last_error
    assert "Project not found. (code 8000007)" in delivery.last_error
    assert not DestinationState.objects.get(alias="pages").is_disabled


def test_cloudflare_error_status_records_its_errors(configure, httpserver, blog_index, deliver):
    handler = cloudflare(success=False, status=400)
    httpserver.expect_request(CLOUDFLARE_PATH, method="POST").respond_with_handler(handler)
    configure(DESTINATIONS={"pages": destination(httpserver, CLOUDFLARE_PATH, "cloudflare")})
    [page] = make_drafts(blog_index, 1)
    page.save_revision().publish()
    close_windows()
    deliver()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "HTTP 400: Project not found. (code 8000007)"


def test_rate_limit_is_retried_after_retry_after(configure, httpserver, blog_index, deliver):
    limited = netlify(429, "Too Many Requests", {"Retry-After": "120"})
    httpserver.expect_ordered_request(NETLIFY_PATH).respond_with_handler(limited)
    httpserver.expect_ordered_request(NETLIFY_PATH).respond_with_handler(netlify())
    configure(
        DESTINATIONS={"netlify": destination(httpserver, NETLIFY_PATH, "netlify")},
        RETRY_SCHEDULE=[1],
    )
    for page in make_drafts(blog_index, 2):
        page.save_revision().publish()
    close_windows()
    before = timezone.now()
    deliver()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.last_status_code == 429
    assert delivery.next_attempt_at >= before + timedelta(seconds=119)

    Delivery.objects.update(next_attempt_at=timezone.now())
    deliver()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert len(httpserver.log) == 2
    # The retry carries the same two events.
    bodies = [json.loads(request.get_data()) for request, _ in httpserver.log]
    assert bodies[0] == bodies[1]
    assert len(bodies[0]["events"]) == 2


def test_server_errors_are_retried(configure, httpserver, blog_index, deliver):
    httpserver.expect_request(VERCEL_PATH).respond_with_json(
        {"error": {"code": "internal_server_error", "message": "An unexpected error."}},
        status=500,
    )
    configure(DESTINATIONS={"vercel": destination(httpserver, VERCEL_PATH, "vercel")})
    [page] = make_drafts(blog_index, 1)
    page.save_revision().publish()
    close_windows()
    deliver()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.last_error == "HTTP 500: An unexpected error. (internal_server_error)"


@pytest.mark.parametrize("provider", ["netlify", "vercel", "cloudflare"])
def test_a_deleted_hook_disables_the_destination(
    configure, httpserver, blog_index, deliver, provider
):
    httpserver.expect_request(NETLIFY_PATH).respond_with_data("Not Found", status=404)
    configure(DESTINATIONS={"build": destination(httpserver, NETLIFY_PATH, provider)})
    [page] = make_drafts(blog_index, 1)
    page.save_revision().publish()
    close_windows()
    deliver()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "does not exist" in delivery.last_error
    assert NETLIFY_ID not in delivery.last_error
    assert DestinationState.objects.get(alias="build").is_disabled


def test_a_generic_404_fails_without_disabling(configure, httpserver, blog_index, deliver):
    httpserver.expect_request("/hook").respond_with_data("Not Found", status=404)
    configure(DESTINATIONS={"build": destination(httpserver, "/hook")})
    [page] = make_drafts(blog_index, 1)
    page.save_revision().publish()
    close_windows()
    deliver()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "HTTP 404"
    assert not DestinationState.objects.get(alias="build").is_disabled


def test_netlify_branch_and_existing_query(configure, httpserver, blog_index, deliver):
    httpserver.expect_request(NETLIFY_PATH).respond_with_handler(netlify())
    url = httpserver.url_for(NETLIFY_PATH) + "?trigger_title=old&keep=1"
    configure(
        DESTINATIONS={
            "netlify": {
                "BACKEND": BUILD_HOOK,
                "OPTIONS": {"URL": url, "PROVIDER": "netlify", "BRANCH": "staging"},
                "EVENTS": ["page.published", "page.unpublished"],
            }
        }
    )
    pages = make_drafts(blog_index, 3)
    for page in pages:
        page.save_revision().publish()
    pages[0].refresh_from_db()
    pages[0].unpublish()
    close_windows()
    deliver()
    [(request, _)] = httpserver.log
    assert parse_qs(request.query_string.decode()) == {
        "keep": ["1"],
        "trigger_title": ["wagtail-publish-hooks: 3 pages published, 1 page unpublished"],
        "trigger_branch": ["staging"],
    }


def test_a_test_event_triggers_one_build(configure, httpserver):
    httpserver.expect_request(NETLIFY_PATH).respond_with_handler(netlify())
    configure(DESTINATIONS={"netlify": destination(httpserver, NETLIFY_PATH, "netlify")})
    call_command("publish_hooks", "test", "netlify", "--wait", "5")
    [(request, _)] = httpserver.log
    assert request.args["trigger_title"] == "wagtail-publish-hooks: test event"


# -- pieces ---------------------------------------------------------------------------------------


def test_detect_provider():
    assert detect_provider("https://api.netlify.com/build_hooks/abc") == "netlify"
    assert detect_provider("https://api.vercel.com/v1/integrations/deploy/prj/x") == "vercel"
    assert detect_provider("https://API.Cloudflare.com/client/v4/pages/webhooks/x") == "cloudflare"
    assert detect_provider("https://ci.example.com/hook") == "generic"
    assert detect_provider("not a url") == "generic"


def test_title_is_short():
    class E:
        def __init__(self, event_type):
            self.event_type = event_type

    assert build_title([E("page.moved")]) == "wagtail-publish-hooks: 1 page moved"
    assert build_title([E("shop.order")] * 2) == "wagtail-publish-hooks: 2 shop.order"
    many = [E(f"custom.kind_{i:03d}") for i in range(50)]
    assert len(build_title(many)) == 200


def test_describe_hides_the_hook():
    backend = BuildHookBackend(
        alias="b", options={"URL": "https://api.netlify.com/build_hooks/5f3a9c0e1d2b4a0011aabbcc"}
    )
    assert backend.describe() == "Netlify build hook at https://api.netlify.com/…"
    assert backend.coalesce_seconds() == 30
    assert BuildHookBackend.exclude_aliases_by_default is True


def run_checks(settings, options):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.WAGTAIL_PUBLISH_HOOKS = {
        "DESTINATIONS": {"build": {"BACKEND": BUILD_HOOK, "OPTIONS": options}}
    }
    return [message.id.split(".")[-1] for message in check_settings()]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"URL": "https://api.netlify.com/build_hooks/x"}, []),
        ({"URL": "https://api.netlify.com/build_hooks/x", "BRANCH": "main"}, []),
        ({"URL": "https://h.example/x", "PROVIDER": "netlify", "BRANCH": "main"}, []),
        ({"URL": "https://api.netlify.com/x", "COALESCE_SECONDS": 0}, []),
        ({}, ["E011"]),
        ({"URL": "https://h.example/x", "PROVIDER": "gitlab"}, ["E032"]),
        ({"URL": "https://api.vercel.com/v1/x", "BRANCH": "main"}, ["E033"]),
        ({"URL": "https://api.netlify.com/x", "BRANCH": ""}, ["E033"]),
        ({"URL": "https://api.netlify.com/x", "TIMEOUT": 0}, ["E015"]),
        ({"URL": "https://api.netlify.com/x", "COALESCE_SECONDS": -1}, ["E015"]),
        ({"URL": "https://api.netlify.com/x", "TITLE": "x"}, ["E010"]),
    ],
)
def test_checks(settings, options, expected):
    assert run_checks(settings, options) == expected
