"""A real publish becomes one signed webhook, after commit, with the payload of PRODUCT.md §5."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from standardwebhooks.webhooks import Webhook
from werkzeug import Response

from tests.conftest import WEBHOOK
from tests.testapp.models import BasePage, BlogPage, EventPage, OtherPage
from wagtail_publish_hooks import __version__
from wagtail_publish_hooks.backends.base import BaseBackend
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus, Event

pytestmark = pytest.mark.django_db(transaction=True)

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_publish_delivers_one_signed_request(
    webhook_destination, httpserver, secret, draft_blog_page, django_user_model
):
    webhook_destination()
    httpserver.expect_request("/hooks", method="POST").respond_with_data("ok")
    user = django_user_model.objects.create_superuser("editor", "editor@example.com", "pw")

    from wagtail.log_actions import LogContext

    with LogContext(user=user):
        revision = draft_blog_page.save_revision(user=user)
        revision.publish(user=user)

    assert len(httpserver.log) == 1
    request, _ = httpserver.log[0]
    body = request.get_data()
    headers = dict(request.headers)
    payload = Webhook(secret).verify(body, headers)

    event = Event.objects.get()
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"wagtail-publish-hooks/{__version__}"
    assert headers["Webhook-Id"] == event.event_id
    assert re.fullmatch(r"evt_[0-9a-z]{26}", event.event_id)
    assert re.fullmatch(r"v1,[A-Za-z0-9+/=]+", headers["Webhook-Signature"])

    draft_blog_page.refresh_from_db()
    assert payload["id"] == event.event_id
    assert payload["type"] == "page.published"
    assert ISO_UTC.match(payload["timestamp"])
    page = payload["data"]["page"]
    assert page == {
        "id": draft_blog_page.pk,
        "type": "testapp.BlogPage",
        "title": "Hello world",
        "slug": "hello-world",
        "url_path": draft_blog_page.url_path,
        "url": "http://localhost/news/hello-world/",
        "urls": ["http://localhost/news/hello-world/"],
        "locale": "en",
        "live": True,
        "revision_id": revision.pk,
        "first_published_at": page["first_published_at"],
        "last_published_at": page["last_published_at"],
    }
    assert ISO_UTC.match(page["first_published_at"])
    assert ISO_UTC.match(page["last_published_at"])
    assert payload["data"]["actor"] == {"id": user.pk, "username": "editor"}
    assert payload["data"]["scheduled"] is False
    assert payload["data"]["alias"] is False
    # The body is compact UTF-8 JSON, exactly the bytes that were signed.
    assert json.loads(body) == payload

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 1
    assert delivery.last_status_code == 200
    attempt = Attempt.objects.get()
    assert attempt.response_body == "ok"
    assert attempt.request_headers["webhook-signature"] == "[redacted]"
    assert secret not in json.dumps(attempt.request_headers)


def test_unpublish_is_delivered(webhook_destination, httpserver, draft_blog_page):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    draft_blog_page.refresh_from_db()
    draft_blog_page.unpublish()

    types = [json.loads(req.get_data())["type"] for req, _ in httpserver.log]
    assert types == ["page.published", "page.unpublished"]
    unpublished = json.loads(httpserver.log[1][0].get_data())
    assert unpublished["data"]["page"]["live"] is False


def test_rolled_back_publish_leaves_nothing(webhook_destination, httpserver, draft_blog_page):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        draft_blog_page.save_revision().publish()
        assert Event.objects.count() == 1  # recorded inside the transaction...
        raise Abort

    assert Event.objects.count() == 0  # ...and gone with it
    assert Delivery.objects.count() == 0
    assert httpserver.log == []


def test_request_is_made_only_after_commit(webhook_destination, httpserver, draft_blog_page):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")

    with transaction.atomic():
        draft_blog_page.save_revision().publish()
        assert httpserver.log == []
        assert Delivery.objects.get().status == DeliveryStatus.PENDING

    assert len(httpserver.log) == 1
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_model_filter_includes_subclasses(webhook_destination, httpserver, blog_index):
    webhook_destination(MODELS=["testapp.BasePage"])
    httpserver.expect_request("/hooks").respond_with_data("ok")

    for cls, slug in (
        (BlogPage, "blog"),
        (EventPage, "event"),
        (OtherPage, "other"),
        (BasePage, "base"),
    ):
        page = cls(title=slug, slug=slug)
        blog_index.add_child(instance=page)
        page.save_revision().publish()

    received = [json.loads(req.get_data())["data"]["page"]["type"] for req, _ in httpserver.log]
    assert received == ["testapp.BlogPage", "testapp.EventPage", "testapp.BasePage"]


def test_event_filter(webhook_destination, httpserver, draft_blog_page):
    webhook_destination(EVENTS=["page.unpublished"])
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    assert httpserver.log == []
    draft_blog_page.refresh_from_db()
    draft_blog_page.unpublish()
    assert [json.loads(r.get_data())["type"] for r, _ in httpserver.log] == ["page.unpublished"]


def test_future_go_live_at_sends_nothing(webhook_destination, httpserver, draft_blog_page):
    from datetime import timedelta

    from django.utils import timezone

    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.go_live_at = timezone.now() + timedelta(days=1)
    draft_blog_page.save_revision().publish()

    assert Event.objects.count() == 0
    assert httpserver.log == []


def test_alias_republish_is_flagged(webhook_destination, httpserver, draft_blog_page, blog_index):
    webhook_destination(EXCLUDE_ALIASES=False)
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    draft_blog_page.refresh_from_db()
    alias = draft_blog_page.create_alias(update_slug="hello-alias")
    httpserver.clear_log()

    draft_blog_page.title = "Hello again"
    draft_blog_page.save_revision().publish()

    bodies = [json.loads(req.get_data()) for req, _ in httpserver.log]
    assert [(b["data"]["page"]["id"], b["data"]["alias"]) for b in bodies] == [
        (draft_blog_page.pk, False),
        (alias.pk, True),
    ]


def test_no_destination_records_nothing(configure, draft_blog_page):
    configure(DESTINATIONS={})
    draft_blog_page.save_revision().publish()
    assert Event.objects.count() == 0


def test_disabled_capture_records_nothing(webhook_destination, settings, draft_blog_page):
    config = webhook_destination()
    settings.WAGTAIL_PUBLISH_HOOKS = {**config, "ENABLED": False}
    draft_blog_page.save_revision().publish()
    assert Event.objects.count() == 0


def test_publish_queries_do_not_grow_with_destinations(configure, httpserver, blog_index, settings):
    """The outbox writes one event row and one bulk insert, whatever the destination count."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

    def queries_for(n: int, slug: str) -> int:
        configure(
            DESTINATIONS={
                f"d{i}": {
                    "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
                    "OPTIONS": {"URL": httpserver.url_for(f"/{i}")},
                }
                for i in range(n)
            }
        )
        page = BlogPage(title=slug, slug=slug)
        blog_index.add_child(instance=page)
        revision = page.save_revision()
        with CaptureQueriesContext(connection) as captured:
            revision.publish()
        return len(captured.captured_queries)

    queries_for(1, "warm-up")
    one = queries_for(1, "one")
    ten = queries_for(10, "ten")
    assert one == ten
    assert Delivery.objects.filter(event__object_repr="ten").count() == 10


def test_one_enqueue_per_transaction(configure, httpserver, blog_index, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    from django_tasks_db.models import DBTaskResult

    configure(
        DESTINATIONS={
            "a": {
                "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
                "OPTIONS": {"URL": httpserver.url_for("/a")},
            }
        }
    )
    with transaction.atomic():
        for i in range(5):
            page = BlogPage(title=f"p{i}", slug=f"p{i}")
            blog_index.add_child(instance=page)
            page.save_revision().publish()
    assert Delivery.objects.count() == 5
    assert DBTaskResult.objects.filter(task_path__endswith="deliver_due_deliveries").count() == 1


def test_response_is_recorded_truncated(webhook_destination, httpserver, draft_blog_page):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_response(Response("x" * 10_000, 200))
    draft_blog_page.save_revision().publish()
    attempt = Attempt.objects.get()
    assert attempt.response_body == "x" * 4096 + "…"


def test_deleting_a_live_page_reports_it_not_live(webhook_destination, httpserver, draft_blog_page):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    draft_blog_page.delete()
    last = json.loads(httpserver.log[-1][0].get_data())
    assert last["type"] == "page.deleted"
    assert last["data"]["page"]["live"] is False


def test_a_task_backend_alias_of_its_own(configure, httpserver, draft_blog_page, settings):
    """Wagtail's tasks stay inline on 'default'; deliveries are queued on 'hooks'."""
    from django.core import checks
    from django_tasks_db.models import DBTaskResult

    from tests.conftest import IMMEDIATE_BACKEND, WEBHOOK

    settings.TASKS = {
        "default": {"BACKEND": IMMEDIATE_BACKEND},
        "hooks": {"BACKEND": "django_tasks_db.DatabaseBackend"},
    }
    configure(
        DESTINATIONS={"a": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/a")}}},
        TASK_BACKEND="hooks",
    )
    assert [m.id for m in checks.run_checks(tags=["wagtail_publish_hooks"])] == [
        "wagtail_publish_hooks.W004"  # no SECRET
    ]
    draft_blog_page.save_revision().publish()
    queued = DBTaskResult.objects.get()
    assert queued.backend_name == "hooks"
    assert queued.task_path.endswith("deliver_due_deliveries")
    assert Delivery.objects.get().status == DeliveryStatus.PENDING


def test_rolled_back_publish_leaves_no_task_row(webhook_destination, draft_blog_page, settings):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    webhook_destination()
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        draft_blog_page.save_revision().publish()
        assert DBTaskResult.objects.filter(task_path__endswith="deliver_due_deliveries").exists()
        1 / 0  # noqa: B018
    assert not DBTaskResult.objects.filter(task_path__endswith="deliver_due_deliveries").exists()
    assert Delivery.objects.count() == 0


def test_unrouted_events_cost_no_queries(configure, httpserver, blog_index, settings):
    """A publish no destination wants costs what a publish with the plugin off costs."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

    def queries_for(slug: str, **config) -> int:
        configure(**config)
        page = BlogPage(title=slug, slug=slug)
        blog_index.add_child(instance=page)
        revision = page.save_revision()
        with CaptureQueriesContext(connection) as captured:
            revision.publish()
        return len(captured.captured_queries)

    other = {
        "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
        "MODELS": ["testapp.OtherPage"],
        "OPTIONS": {"URL": httpserver.url_for("/x")},
    }
    # The warm-up also loads the destinations managed in the admin, which a process reads once
    # and then looks up again only every DESTINATIONS_REFRESH_SECONDS.
    queries_for("warm-up", DESTINATIONS={"other": other})
    off = queries_for("off", ENABLED=False)
    unrouted = queries_for("unrouted", DESTINATIONS={"other": other})
    assert unrouted == off
    assert Event.objects.count() == 0


# -- One destination that cannot be recorded costs the others nothing -------------------------


class WindowThatRaises(BaseBackend):
    """A custom coalescing backend whose merging window cannot be worked out (until fixed)."""

    supports_coalescing = True
    broken = True

    def coalesce_seconds(self) -> float:
        if WindowThatRaises.broken:
            raise RuntimeError("the window of https://user:hunter2@cdn.example/ is unknown")
        return 0.0

    def deliver(self, delivery):
        return None


class BuildRefusesBackend(BaseBackend):
    def __init__(self, *, alias, options):
        raise ImportError("optional SDK with token sk_live_123 is missing")


def test_a_destination_that_cannot_be_recorded_is_failed_visibly_and_the_others_are_sent(
    configure, httpserver, draft_blog_page, admin_client
):
    from io import StringIO

    from django.core.management import call_command
    from django.urls import reverse

    from wagtail_publish_hooks.delivery import redeliver
    from wagtail_publish_hooks.models import AttemptOutcome, DestinationState, ManagedDestination

    here = f"{__name__}"
    configure(
        DESTINATIONS={
            "healthy": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/healthy")}},
            "window": {"BACKEND": f"{here}.WindowThatRaises"},
            "unbuildable": {"BACKEND": f"{here}.BuildRefusesBackend"},
        },
        RETRY_SCHEDULE=[0],
    )
    ManagedDestination.objects.create(
        alias="frontend",
        backend="wagtail_publish_hooks.backends.revalidate.RevalidateBackend",
        options={"URL": "https://frontend.example/api/revalidate", "COALESCE_SECONDS": 1e12},
    )
    httpserver.expect_request("/healthy", method="POST").respond_with_data("ok")
    WindowThatRaises.broken = True

    draft_blog_page.save_revision().publish()

    event = Event.objects.get()
    deliveries = {d.destination: d for d in Delivery.objects.all()}
    assert deliveries["healthy"].status == DeliveryStatus.DELIVERED
    assert json.loads(httpserver.log[0][0].get_data())["id"] == event.event_id
    reasons = {
        "window": "could not be recorded: its merging window is unusable (RuntimeError).",
        "unbuildable": "could not be recorded: its backend cannot be built (ImportError).",
        "frontend": "could not be recorded: COALESCE_SECONDS must be a number zero or more and "
        "at most 86400 (seconds), not a number above 86400.",
    }
    for alias, reason in reasons.items():
        delivery = deliveries[alias]
        assert delivery.status == DeliveryStatus.FAILED
        assert delivery.last_error.startswith(reason), delivery.last_error
        attempt = delivery.attempt_set.get()
        assert attempt.outcome == AttemptOutcome.FAILURE and attempt.error == delivery.last_error
        assert DestinationState.objects.get(alias=alias).last_failure_at is not None
    everything = json.dumps(
        [list(Attempt.objects.values()), list(Delivery.objects.values())], default=str
    )
    assert "hunter2" not in everything and "sk_live" not in everything

    report = admin_client.get(reverse("wagtail_publish_hooks:deliveries")).content.decode()
    assert "could not be recorded: its merging window is unusable (RuntimeError)" in report
    out = StringIO()
    call_command("publish_hooks", "status", stdout=out)
    rows = {line.split()[0]: line for line in out.getvalue().splitlines()[1:]}
    for alias in reasons:
        assert "1 consecutive failure" in rows[alias], out.getvalue()

    # Once fixed, a redelivery sends it.
    WindowThatRaises.broken = False
    assert redeliver(Delivery.objects.filter(destination="window")) == 1
    window = Delivery.objects.get(destination="window")
    assert window.status == DeliveryStatus.DELIVERED, window.last_error
    assert window.attempts == 2


def test_a_database_error_on_one_route_is_isolated(
    configure, httpserver, draft_blog_page, monkeypatch
):
    """A failure planning cannot foresee (a query failing for one destination): the others are
    written one by one, and the publish's transaction stays usable."""
    from wagtail_publish_hooks import outbox

    configure(
        DESTINATIONS={
            "healthy": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/healthy")}},
            "merging": {"BACKEND": "tests.support.backends.CoalescingRecorder"},
        },
        RETRY_SCHEDULE=[0],
    )
    httpserver.expect_request("/healthy", method="POST").respond_with_data("ok")
    original = outbox.attach_to_open_delivery

    def attach(alias, now, *, using):
        if alias == "merging":
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table")
        return original(alias, now, using=using)

    monkeypatch.setattr(outbox, "attach_to_open_delivery", attach)
    with transaction.atomic():
        draft_blog_page.save_revision().publish()
        # The publish's own transaction is still usable.
        assert BlogPage.objects.filter(pk=draft_blog_page.pk, live=True).exists()

    assert Event.objects.count() == 1
    healthy = Delivery.objects.get(destination="healthy")
    assert healthy.status == DeliveryStatus.DELIVERED, healthy.last_error
    merging = Delivery.objects.get(destination="merging")
    assert merging.status == DeliveryStatus.FAILED
    assert re.match(
        r"could not be recorded: its delivery could not be written "
        r"\((OperationalError|ProgrammingError)\)",
        merging.last_error,
    ), merging.last_error
