"""Capture that cannot hurt the publish and cannot vanish.

A query that fails inside capture (payload building, a destination's own capture) is injected
into real publishes, unpublishes, moves and an admin delete: the Wagtail action succeeds, the
failure is kept as a ``CaptureFailure`` (shown in the admin and by ``publish_hooks status``),
a ``publish_hooks.capture_failed`` event reaches a real loopback sink, and ``reconcile``
records again what can be recorded again.

On PostgreSQL a failed query aborts the transaction around it, so these tests show there that
capture runs in a savepoint (``make test-postgres``); on SQLite they show it by a row that
capture wrote before failing, which must be rolled back with it.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse
from standardwebhooks.webhooks import Webhook
from wagtail.models import Page, PageLogEntry

from tests.conftest import WEBHOOK
from tests.support.admin_users import admin_user
from tests.testapp.models import Advert, BlogIndexPage, BlogPage
from wagtail_publish_hooks import events
from wagtail_publish_hooks.backends.webhook import WebhookBackend
from wagtail_publish_hooks.models import CaptureFailure, Delivery, DeliveryStatus, Event
from wagtail_publish_hooks.outbox import CAPTURE_FAILED

pytestmark = pytest.mark.django_db(transaction=True)

ON_POSTGRES = connection.vendor == "postgresql"
#: A row capture writes before its query fails: it must be rolled back with capture's savepoint.
WRITTEN_DURING_CAPTURE = "written during capture"


def failing_query() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM wph_no_such_table")


@pytest.fixture
def sink(configure, httpserver, secret):
    """``consumer`` receives page and snippet events, ``ops`` the capture failures."""
    httpserver.expect_request("/hooks").respond_with_data("ok")
    httpserver.expect_request("/ops").respond_with_data("ok")

    def apply(**consumer):
        configure(
            DESTINATIONS={
                "consumer": {
                    "BACKEND": WEBHOOK,
                    "EVENTS": ["page.*", "snippet.*"],
                    "OPTIONS": {"URL": httpserver.url_for("/hooks"), "SECRET": secret},
                    **consumer,
                },
                "ops": {
                    "BACKEND": WEBHOOK,
                    "EVENTS": [CAPTURE_FAILED],
                    "OPTIONS": {"URL": httpserver.url_for("/ops"), "SECRET": secret},
                },
            },
            RETRY_SCHEDULE=[0],
        )

    apply()
    return apply


def received(httpserver, secret, path: str) -> list[dict]:
    return [
        Webhook(secret).verify(request.get_data(), dict(request.headers))
        for request, _ in httpserver.log
        if request.path == path
    ]


@pytest.fixture
def failing_payload(monkeypatch):
    """Building a page's payload writes a row, then runs a query the database refuses."""
    real = events.page_payload

    def page_payload(page, **kwargs):
        Group.objects.create(name=WRITTEN_DURING_CAPTURE)
        failing_query()
        return real(page, **kwargs)

    monkeypatch.setattr(events, "page_payload", page_payload)


@pytest.fixture
def live_post(blog_index) -> BlogPage:
    page = BlogPage(title="Secret plans", slug="secret-plans", live=False)
    blog_index.add_child(instance=page)
    page.save_revision().publish()
    Event.objects.all().delete()
    return BlogPage.objects.get(pk=page.pk)


def status() -> str:
    out = StringIO()
    call_command("publish_hooks", "status", stdout=out)
    return out.getvalue()


def assert_failure_recorded(page, event_type: str, httpserver, secret) -> CaptureFailure:
    """The failure is kept, reported to ``ops``, shown by ``status``; capture left nothing."""
    assert not Group.objects.filter(name=WRITTEN_DURING_CAPTURE).exists()
    assert not Event.objects.filter(event_type=event_type).exists()
    failure = CaptureFailure.objects.get()
    assert failure.event_type == event_type
    assert failure.content_type.model_class() is BlogPage
    assert failure.object_id == str(page.pk)
    assert failure.object_repr == page.title
    assert failure.error_type.startswith("django.db.utils.")
    assert failure.message
    assert failure.destination == ""
    assert failure.resolved_at is None

    [body] = received(httpserver, secret, "/ops")
    assert body["type"] == CAPTURE_FAILED
    reported = body["data"]["capture_failure"]
    assert reported["id"] == failure.pk
    assert reported["event_type"] == event_type
    assert reported["object"] == {"type": "testapp.BlogPage", "id": str(page.pk)}
    # Named by type and id: the event is about no object, so its title is not in it.
    assert page.title not in str(body)
    assert Delivery.objects.get(destination="ops").status == DeliveryStatus.DELIVERED

    text = status()
    assert "1 capture failure not resolved" in text
    assert f"#{failure.pk} " in text and event_type in text and "testapp.blogpage" in text
    return failure


def test_a_failing_query_in_a_publish_leaves_the_publish_whole(
    sink, httpserver, secret, blog_index, failing_payload
):
    page = BlogPage(title="Secret plans", slug="secret-plans", live=False)
    blog_index.add_child(instance=page)
    # In a transaction, as with ATOMIC_REQUESTS or a workflow approval: the failed query would
    # abort it on PostgreSQL, and the log entry written after the signal would fail.
    with transaction.atomic():
        revision = page.save_revision()
        revision.publish()
        assert PageLogEntry.objects.filter(revision=revision, action="wagtail.publish").exists()
    page.refresh_from_db()
    assert page.live and page.live_revision_id == revision.pk
    assert_failure_recorded(page, events.PAGE_PUBLISHED, httpserver, secret)


def test_a_failing_query_in_an_unpublish_leaves_the_unpublish_whole(
    sink, httpserver, secret, live_post, failing_payload
):
    with transaction.atomic():
        live_post.unpublish()
        Group.objects.create(name="after")  # the transaction is still usable
    assert Group.objects.filter(name="after").exists()
    live_post.refresh_from_db()
    assert not live_post.live
    assert_failure_recorded(live_post, events.PAGE_UNPUBLISHED, httpserver, secret)


def test_a_failing_query_in_a_move_leaves_the_move_whole(
    sink, httpserver, secret, site_root, live_post, failing_payload
):
    archive = site_root.add_child(instance=BlogIndexPage(title="Archive", slug="archive"))
    with transaction.atomic():
        live_post.move(archive, pos="last-child")
        assert PageLogEntry.objects.filter(page=live_post, action="wagtail.move").exists()
    live_post.refresh_from_db()
    assert live_post.url_path.endswith("/archive/secret-plans/")
    assert_failure_recorded(live_post, events.PAGE_MOVED, httpserver, secret)


def test_a_failing_query_in_an_admin_delete_leaves_the_delete_whole(
    sink, httpserver, secret, live_post, failing_payload, client
):
    client.force_login(admin_user("boss", superuser=True))
    response = client.post(reverse("wagtailadmin_pages:delete", args=(live_post.pk,)))
    assert response.status_code == 302, response.content[:2000]
    assert not Page.objects.filter(pk=live_post.pk).exists()
    assert PageLogEntry.objects.filter(page_id=live_post.pk, action="wagtail.delete").exists()
    assert_failure_recorded(live_post, events.PAGE_DELETED, httpserver, secret)


@pytest.mark.skipif(
    not ON_POSTGRES, reason="statement_timeout is PostgreSQL's; SQLite has no statement timeout"
)
def test_a_statement_timeout_in_capture_leaves_the_delete_whole(
    sink, httpserver, secret, live_post, monkeypatch, client
):
    real = events.page_payload

    def slow_payload(page, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = '50ms'")
            cursor.execute("SELECT pg_sleep(2)")
        return real(page, **kwargs)

    monkeypatch.setattr(events, "page_payload", slow_payload)
    client.force_login(admin_user("boss", superuser=True))
    response = client.post(reverse("wagtailadmin_pages:delete", args=(live_post.pk,)))
    assert response.status_code == 302
    assert not Page.objects.filter(pk=live_post.pk).exists()
    failure = CaptureFailure.objects.get()
    assert failure.event_type == events.PAGE_DELETED
    assert failure.message == "canceling statement due to statement timeout"
    assert [body["type"] for body in received(httpserver, secret, "/ops")] == [CAPTURE_FAILED]


def test_a_failure_while_deciding_what_happened_is_recorded(
    sink, httpserver, secret, live_post, monkeypatch
):
    """The query the unpublish receiver makes before building anything is covered too."""
    from wagtail_publish_hooks import signal_handlers

    monkeypatch.setattr(signal_handlers, "is_alias_page", lambda *a, **k: failing_query())
    with transaction.atomic():
        live_post.unpublish()
    live_post.refresh_from_db()
    assert not live_post.live
    assert CaptureFailure.objects.get().event_type == events.PAGE_UNPUBLISHED


def test_a_failure_while_recording_the_failure_does_not_recurse(
    sink, httpserver, secret, blog_index, monkeypatch
):
    """Every event id is the same: the page event fails to insert, then so does the
    ``capture_failed`` event; the second failure is kept, and not reported again."""
    import wagtail_publish_hooks.outbox as outbox

    page = BlogPage(title="Post", slug="post", live=False)
    blog_index.add_child(instance=page)
    page.save_revision().publish()
    # From now on every new event takes the id this one already has.
    monkeypatch.setattr(outbox, "new_event_id", lambda: "evt_duplicate")
    Event.objects.update(event_id="evt_duplicate")
    with transaction.atomic():
        revision = page.save_revision()
        revision.publish()
    page.refresh_from_db()
    assert page.live_revision_id == revision.pk
    failures = list(CaptureFailure.objects.order_by("pk"))
    assert [f.event_type for f in failures] == [events.PAGE_PUBLISHED, CAPTURE_FAILED]
    assert all(f.error_type == "django.db.utils.IntegrityError" for f in failures)
    assert received(httpserver, secret, "/ops") == []


class FailingCaptureBackend(WebhookBackend):
    """A webhook whose own capture (like a frontend cache's purge set) runs a failing query."""

    def capture(self, event_type, instance):
        failing_query()


def test_a_destination_whose_own_capture_fails_is_sent_the_event_and_the_failure_kept(
    sink, httpserver, secret, blog_index
):
    sink(BACKEND="tests.capture.test_failures.FailingCaptureBackend")
    page = BlogPage(title="Post", slug="post", live=False)
    blog_index.add_child(instance=page)
    with transaction.atomic():
        page.save_revision().publish()
    [body] = received(httpserver, secret, "/hooks")
    assert body["type"] == events.PAGE_PUBLISHED
    failure = CaptureFailure.objects.get()
    assert (failure.event_type, failure.destination) == (events.PAGE_PUBLISHED, "consumer")
    [report] = received(httpserver, secret, "/ops")
    assert report["data"]["destination"] == "consumer"
    assert "[destination consumer]" in status()


def test_a_destination_is_not_told_of_the_failure_of_its_own_capture(
    sink, httpserver, secret, blog_index
):
    sink(
        BACKEND="tests.capture.test_failures.FailingCaptureBackend",
        EVENTS=["page.*", CAPTURE_FAILED],
    )
    page = BlogPage(title="Post", slug="post", live=False)
    blog_index.add_child(instance=page)
    with transaction.atomic():
        page.save_revision().publish()
    assert [body["type"] for body in received(httpserver, secret, "/hooks")] == [
        events.PAGE_PUBLISHED
    ]
    [report] = received(httpserver, secret, "/ops")
    assert report["data"]["destination"] == "consumer"


def test_emit_whose_object_cannot_be_described_is_recorded(sink, monkeypatch, site_root):
    from wagtail_publish_hooks import emit

    def describe(instance):
        Group.objects.create(name=WRITTEN_DURING_CAPTURE)
        failing_query()

    monkeypatch.setattr("wagtail_publish_hooks.custom_events.describe_object", describe)
    with transaction.atomic():
        assert emit("shop.order_shipped", instance=site_root) is None
        Group.objects.create(name="after")  # the transaction is still usable
    assert not Group.objects.filter(name=WRITTEN_DURING_CAPTURE).exists()
    assert CaptureFailure.objects.get().event_type == "shop.order_shipped"


# -- The admin ----------------------------------------------------------------------------------


def test_the_admin_lists_failures_and_withholds_titles_of_hidden_objects(
    sink, live_post, failing_payload, client
):
    live_post.unpublish()
    url = reverse("publish_hooks_capture_failures:index")

    client.force_login(admin_user("boss", superuser=True))
    page = client.get(url).content.decode()
    assert "page.unpublished" in page and "Secret plans" in page
    assert "Not resolved" in page

    viewer = admin_user("viewer", "wagtail_publish_hooks.view_delivery")
    client.force_login(viewer)
    page = client.get(url).content.decode()
    assert "page.unpublished" in page and f"testapp.blogpage {live_post.pk}" in page
    assert "Secret plans" not in page
    assert "not shown" in page

    editor = admin_user("editor", pages={live_post: ("change_page",)})
    client.force_login(editor)
    assert client.get(url).status_code == 403


def test_the_settings_menu_links_the_failures_for_delivery_viewers(client, site_root):
    url = reverse("publish_hooks_capture_failures:index")
    client.force_login(admin_user("viewer", "wagtail_publish_hooks.view_delivery"))
    assert url in client.get(reverse("wagtailadmin_home")).content.decode()
    client.force_login(admin_user("editor"))
    assert url not in client.get(reverse("wagtailadmin_home")).content.decode()


# -- Reconcile ----------------------------------------------------------------------------------


def reconcile() -> str:
    out = StringIO()
    call_command("publish_hooks", "reconcile", "--grace", "0s", stdout=out)
    return out.getvalue()


def test_reconcile_records_again_a_publish_whose_capture_failed(
    sink, httpserver, secret, blog_index, monkeypatch
):
    page = BlogPage(title="Post", slug="post", live=False)
    blog_index.add_child(instance=page)
    with monkeypatch.context() as patch:
        patch.setattr(events, "page_payload", lambda *a, **k: failing_query())
        page.save_revision().publish()
    failure = CaptureFailure.objects.get()
    # Older than reconcile's window: found from the failure, not from the content.
    CaptureFailure.objects.update(occurred_at=failure.occurred_at.replace(year=2020))
    BlogPage.objects.filter(pk=page.pk).update(
        last_published_at=failure.occurred_at.replace(year=2020)
    )

    out = StringIO()
    call_command("publish_hooks", "reconcile", "--grace", "0s", "--dry-run", stdout=out)
    assert f"Would record page.published testapp.BlogPage {page.pk}" in out.getvalue()
    assert f"(capture failure #{failure.pk})" in out.getvalue()
    assert CaptureFailure.objects.unresolved().count() == 1

    out = reconcile()
    assert f"(capture failure #{failure.pk})" in out
    [body] = received(httpserver, secret, "/hooks")
    assert body["type"] == events.PAGE_PUBLISHED and body["reconciled"] is True
    failure.refresh_from_db()
    assert failure.resolved_at is not None
    assert failure.resolution == f"recorded again as {body['id']}"
    assert "capture failure" not in status()

    assert "No missing events" in reconcile()
    assert len(received(httpserver, secret, "/hooks")) == 1


def test_reconcile_resolves_a_failure_a_later_event_superseded(
    sink, httpserver, secret, live_post, monkeypatch
):
    with monkeypatch.context() as patch:
        patch.setattr(events, "page_payload", lambda *a, **k: failing_query())
        live_post.save_revision().publish()
    live_post.save_revision().publish()  # recorded
    reconcile()
    failure = CaptureFailure.objects.get()
    later = Event.objects.get(event_type=events.PAGE_PUBLISHED)
    assert failure.resolution == f"superseded by {later.event_id}"
    assert Event.objects.filter(event_type=events.PAGE_PUBLISHED).count() == 1


def test_reconcile_records_again_a_snippet_unpublish(sink, httpserver, secret, monkeypatch):
    advert = Advert.objects.create(text="Advert", live=False)
    advert.save_revision().publish()
    advert = Advert.objects.get(pk=advert.pk)
    with monkeypatch.context() as patch:
        patch.setattr(events, "object_payload", lambda *a, **k: failing_query())
        advert.unpublish()
    failure = CaptureFailure.objects.get()
    assert (failure.event_type, failure.object_id) == (events.SNIPPET_UNPUBLISHED, str(advert.pk))
    reconcile()
    failure.refresh_from_db()
    assert failure.resolution.startswith("recorded again as ")
    bodies = received(httpserver, secret, "/hooks")
    assert [b["type"] for b in bodies] == [events.SNIPPET_PUBLISHED, events.SNIPPET_UNPUBLISHED]
    assert bodies[-1]["reconciled"] is True


def test_reconcile_leaves_a_deletion_it_cannot_record_again(
    sink, httpserver, secret, live_post, failing_payload
):
    live_post.delete()
    out = reconcile()
    failure = CaptureFailure.objects.get()
    assert failure.event_type == events.PAGE_DELETED and failure.resolved_at is None
    assert "capture failure" not in out
    assert "1 capture failure not resolved" in status()
