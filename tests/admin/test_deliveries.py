"""The deliveries report, a delivery's detail, redeliver and cancel, in the Wagtail admin."""

from __future__ import annotations

import html
import uuid
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry
from werkzeug import Response

from tests.support.admin import admin_url, make_delivery, rows
from wagtail_publish_hooks.delivery import cancel_deliveries, redeliver
from wagtail_publish_hooks.leases import claim_due_deliveries
from wagtail_publish_hooks.models import (
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    Event,
)

pytestmark = pytest.mark.django_db(transaction=True)

REPORT = "wagtail_publish_hooks:deliveries"


def fail_then_succeed(httpserver, failures: int = 1):
    replies = [Response("nope", status=400)] * failures

    def handler(request):
        return replies.pop(0) if replies else Response("ok")

    httpserver.expect_request("/hooks").respond_with_handler(handler)


# -- the report ----------------------------------------------------------------------------------


def test_report_lists_a_published_page_delivery(
    admin_client, webhook_destination, httpserver, draft_blog_page
):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()

    response = admin_client.get(reverse(REPORT))
    assert response.status_code == 200
    [row] = rows(response)
    assert "page.published" in row
    assert "Hello world" in row
    assert "consumer" in row
    assert "Delivered" in row
    assert "HTTP 200" in row
    delivery = Delivery.objects.get()
    assert admin_url("delivery", delivery.pk) in response.content.decode()


def test_report_filters(admin_client, blog_index):
    now = timezone.now()
    failed = make_delivery("Failing page", status=DeliveryStatus.FAILED, destination="team")
    pending = make_delivery("Waiting page", status=DeliveryStatus.PENDING)
    old = make_delivery("Old page", created_at=now - timedelta(days=10))
    moved = make_delivery("Moved page", event_type="page.moved")
    on_index = make_delivery(instance=blog_index)

    def titles(**query) -> set[str]:
        response = admin_client.get(reverse(REPORT), query)
        assert response.status_code == 200
        return {
            d.event.object_repr
            for d in Delivery.objects.select_related("event")
            if any(d.event.object_repr in row for row in rows(response))
        }

    everything = {"Failing page", "Waiting page", "Old page", "Moved page", "News"}
    assert titles() == everything
    assert titles(status="failed") == {"Failing page"}
    assert titles(status="pending") == {"Waiting page"}
    assert titles(destination="team") == {"Failing page"}
    assert titles(event_type="page.moved") == {"Moved page"}
    index_type = ContentType.objects.get_for_model(blog_index).pk
    assert titles(content_type=index_type) == {"News"}
    assert titles(object_id=str(blog_index.pk)) == {"News"}
    assert titles(period="24h") == everything - {"Old page"}
    assert titles(period="30d") == everything
    day = (now - timedelta(days=10)).date().isoformat()
    assert titles(created_at_from=day, created_at_to=day) == {"Old page"}
    assert titles(q="waiting") == {"Waiting page"}
    assert titles(q=failed.event.event_id) == {"Failing page"}
    assert titles(q="nothing like it") == set()
    # Combined: all must hold.
    assert titles(status="delivered", period="24h") == {"Moved page", "News"}
    assert pending and old and moved and on_index


def test_report_results_view_for_filter_refreshes(admin_client):
    make_delivery("Failing page", status=DeliveryStatus.FAILED)
    make_delivery("Fine page")
    response = admin_client.get(admin_url("deliveries_results"), {"status": "failed"})
    assert response.status_code == 200
    content = response.content.decode()
    assert "Failing page" in content
    assert "Fine page" not in content
    assert "<html" not in content


def test_report_sorts_by_column(admin_client):
    make_delivery("Alpha", destination="b-dest")
    make_delivery("Beta", destination="a-dest")
    response = admin_client.get(reverse(REPORT), {"ordering": "destination"})
    assert ["Beta" in row for row in rows(response)] == [True, False]
    response = admin_client.get(reverse(REPORT), {"ordering": "-destination"})
    assert ["Alpha" in row for row in rows(response)] == [True, False]


def count_queries(client, url: str, query: dict | None = None) -> int:
    """Queries one request makes, steady state: the lower of two identical requests, so that a
    one-off (a cache Wagtail fills on first use) does not count."""
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, query or {})
        assert response.status_code == 200
        counts.append(len(queries))
    return min(counts)


def test_report_queries_do_not_grow_with_the_rows(admin_client, django_assert_max_num_queries):
    for _ in range(5):
        make_delivery("Few")
    few = count_queries(admin_client, reverse(REPORT))
    for n in range(70):
        make_delivery(f"Page {n}", status=DeliveryStatus.FAILED if n % 2 else "delivered")
    many = count_queries(admin_client, reverse(REPORT))
    second_page = count_queries(admin_client, reverse(REPORT), {"p": "2"})
    filtered = count_queries(admin_client, reverse(REPORT), {"status": "failed", "q": "Page"})
    # Five rows or a full page of fifty: the same queries (no query per row).
    assert few == many == second_page
    assert filtered <= many + 1
    with django_assert_max_num_queries(many + 1):
        admin_client.get(reverse(REPORT))


def test_report_pages_through_results(admin_client):
    for n in range(55):
        make_delivery(f"Page {n:02d}")
    first = rows(admin_client.get(reverse(REPORT)))
    second = rows(admin_client.get(reverse(REPORT), {"p": "2"}))
    assert len(first) == 50
    assert len(second) == 5
    assert "Page 54" in first[0]
    assert "Page 00" in second[-1]


# -- the detail view -----------------------------------------------------------------------------


def test_detail_shows_payload_attempts_and_no_secret(
    admin_client, webhook_destination, httpserver, draft_blog_page, secret
):
    webhook_destination()
    replies = [
        Response("upstream exploded", status=500, headers={"x-request-id": "req-1"}),
        Response('{"received": true}', headers={"x-request-id": "req-2"}),
    ]
    httpserver.expect_request("/hooks").respond_with_handler(lambda r: replies.pop(0))
    draft_blog_page.save_revision().publish()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    signatures = [r.headers["webhook-signature"] for r, _ in httpserver.log]

    response = admin_client.get(admin_url("delivery", delivery.pk))
    assert response.status_code == 200
    content = html.unescape(response.content.decode())
    # The payload, pretty-printed.
    assert f'"id": "{delivery.event.event_id}"' in content
    assert '"title": "Hello world"' in content
    # Both attempts, newest first, with status, duration, headers and the bodies.
    assert content.index('data-attempt-number="2"') < content.index('data-attempt-number="1"')
    assert "HTTP 500" in content and "HTTP 200" in content
    assert "upstream exploded" in content
    assert '{"received": true}' in content
    assert "req-1" in content and "req-2" in content
    assert "webhook-id" in content
    assert " ms" in content
    # Nothing secret.
    assert "[redacted]" in content
    for signature in signatures:
        assert signature not in content
        for part in signature.split():
            assert part.split(",", 1)[1] not in content
    assert secret not in content
    assert secret.removeprefix("whsec_") not in content


def test_detail_redacts_secret_looking_headers_whatever_was_stored(admin_client):
    delivery = make_delivery()
    Attempt.objects.create(
        delivery=delivery,
        number=1,
        outcome=AttemptOutcome.SUCCESS,
        status_code=200,
        request_headers={
            "Authorization": "Bearer sk_live_SHOULD_NOT_SHOW",
            "webhook-signature": "v1,SIGNATURE_SHOULD_NOT_SHOW",
            "X-Api-Key": "KEY_SHOULD_NOT_SHOW",
            "content-type": "application/json",
        },
        response_headers={"Set-Cookie": "session=COOKIE_SHOULD_NOT_SHOW"},
        detail={"deployment_id": "dep_123", "purged": ["https://example.com/news/"]},
    )
    content = admin_client.get(admin_url("delivery", delivery.pk)).content.decode()
    assert "SHOULD_NOT_SHOW" not in content
    assert "application/json" in content
    # Attempt.detail, as JSON.
    assert "dep_123" in content
    assert "https://example.com/news/" in content


def test_detail_lists_the_events_a_coalesced_delivery_covers(admin_client):
    delivery = make_delivery("First page")
    later = make_delivery("Second page").event
    delivery.coalesced_events.add(later)
    content = admin_client.get(admin_url("delivery", delivery.pk)).content.decode()
    assert "Events in this delivery" in content
    assert delivery.event.event_id in content
    assert later.event_id in content

    single = make_delivery("Alone")
    content = admin_client.get(admin_url("delivery", single.pk)).content.decode()
    assert "Events in this delivery" not in content


def test_detail_of_a_missing_delivery_is_404(admin_client):
    assert admin_client.get(admin_url("delivery", 999)).status_code == 404


# -- redeliver and cancel ------------------------------------------------------------------------


def test_redeliver_one_sends_again_and_is_audited(
    admin_client, admin_user, webhook_destination, httpserver, draft_blog_page
):
    webhook_destination()
    fail_then_succeed(httpserver)
    draft_blog_page.save_revision().publish()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED

    confirm = admin_client.get(admin_url("redeliver", delivery.pk))
    assert confirm.status_code == 200
    assert "Yes, redeliver" in confirm.content.decode()
    assert Delivery.objects.get().status == DeliveryStatus.FAILED  # GET changes nothing

    response = admin_client.post(admin_url("redeliver", delivery.pk), follow=True)
    assert response.redirect_chain[-1][0] == admin_url("delivery", delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 2
    assert len(httpserver.log) == 2
    assert "queued again" in response.content.decode()
    assert 'data-attempt-number="2"' in response.content.decode()

    [entry] = ModelLogEntry.objects.filter(action="wagtail_publish_hooks.redeliver")
    assert entry.user == admin_user
    assert entry.object_id == str(delivery.pk)
    assert "page.published" in entry.label and "consumer" in entry.label
    assert entry.data["event_id"] == delivery.event.event_id
    # Shown in Wagtail's site history with its own label.
    history = admin_client.get(reverse("wagtailadmin_reports:site_history"))
    assert "Redelivered" in history.content.decode()


def test_redeliver_returns_to_next(admin_client):
    delivery = make_delivery(status=DeliveryStatus.CANCELLED)
    back = reverse(REPORT) + "?status=cancelled"
    response = admin_client.post(admin_url("redeliver", delivery.pk) + "?next=" + back)
    assert response.status_code == 302
    assert response["Location"] == back


def test_redeliver_refuses_one_being_sent(admin_client):
    delivery = make_delivery(status=DeliveryStatus.SENDING)
    Delivery.objects.filter(pk=delivery.pk).update(
        lease_token=uuid.uuid4(), lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    response = admin_client.post(admin_url("redeliver", delivery.pk), follow=True)
    assert "being sent right now" in response.content.decode()
    assert Delivery.objects.get().status == DeliveryStatus.SENDING
    assert not ModelLogEntry.objects.filter(action="wagtail_publish_hooks.redeliver").exists()


def test_bulk_redeliver_takes_the_failed_ones_matching_the_filters(
    admin_client, webhook_destination, httpserver
):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")
    match = [make_delivery(f"Match {n}", status=DeliveryStatus.FAILED) for n in range(3)]
    other_destination = make_delivery("Other", status=DeliveryStatus.FAILED, destination="x")
    not_failed = make_delivery("Waiting", status=DeliveryStatus.CANCELLED)
    query = "?destination=consumer"

    confirm = admin_client.get(admin_url("redeliver_failed") + query)
    assert "Send the 3 failed deliveries matching the current filters again?" in (
        html.unescape(confirm.content.decode())
    )
    response = admin_client.post(admin_url("redeliver_failed") + query, follow=True)
    assert response.redirect_chain[-1][0] == reverse(REPORT) + query
    assert "3 deliveries queued again" in response.content.decode()
    for delivery in match:
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.DELIVERED
    assert Delivery.objects.get(pk=other_destination.pk).status == DeliveryStatus.FAILED
    assert Delivery.objects.get(pk=not_failed.pk).status == DeliveryStatus.CANCELLED
    entries = ModelLogEntry.objects.filter(action="wagtail_publish_hooks.redeliver")
    assert sorted(entries.values_list("object_id", flat=True)) == sorted(str(d.pk) for d in match)
    assert len(set(entries.values_list("uuid", flat=True))) == 1


def test_bulk_redeliver_with_search_and_nothing_to_do(admin_client):
    make_delivery("Alpha", status=DeliveryStatus.FAILED)
    confirm = admin_client.get(admin_url("redeliver_failed") + "?q=beta")
    assert "No failed deliveries match" in confirm.content.decode()
    assert "Yes, redeliver them" not in confirm.content.decode()
    admin_client.post(admin_url("redeliver_failed") + "?q=beta")
    assert Delivery.objects.get().status == DeliveryStatus.FAILED


def test_cancel_one_pending_delivery(admin_client, admin_user):
    delivery = make_delivery(status=DeliveryStatus.RETRYING)
    assert admin_client.get(admin_url("cancel", delivery.pk)).status_code == 200
    response = admin_client.post(admin_url("cancel", delivery.pk), follow=True)
    assert "cancelled" in response.content.decode()
    assert Delivery.objects.get().status == DeliveryStatus.CANCELLED
    [entry] = ModelLogEntry.objects.filter(action="wagtail_publish_hooks.cancel")
    assert entry.user == admin_user


def test_cancel_leaves_a_finished_delivery_alone(admin_client):
    delivery = make_delivery(status=DeliveryStatus.DELIVERED)
    response = admin_client.post(admin_url("cancel", delivery.pk), follow=True)
    assert "could not be cancelled" in response.content.decode()
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert not ModelLogEntry.objects.filter(action="wagtail_publish_hooks.cancel").exists()


def test_bulk_cancel_pending(admin_client):
    waiting = [
        make_delivery("A", status=DeliveryStatus.PENDING),
        make_delivery("B", status=DeliveryStatus.RETRYING),
    ]
    other = make_delivery("C", status=DeliveryStatus.PENDING, destination="team")
    done = make_delivery("D", status=DeliveryStatus.DELIVERED)
    response = admin_client.post(admin_url("cancel_pending") + "?destination=consumer", follow=True)
    assert "2 deliveries cancelled" in response.content.decode()
    assert {Delivery.objects.get(pk=d.pk).status for d in waiting} == {DeliveryStatus.CANCELLED}
    assert Delivery.objects.get(pk=other.pk).status == DeliveryStatus.PENDING
    assert Delivery.objects.get(pk=done.pk).status == DeliveryStatus.DELIVERED
    assert ModelLogEntry.objects.filter(action="wagtail_publish_hooks.cancel").count() == 2


def test_report_offers_actions_by_status(admin_client):
    failed = make_delivery("Failed", status=DeliveryStatus.FAILED)
    pending = make_delivery("Pending", status=DeliveryStatus.PENDING)
    content = admin_client.get(reverse(REPORT)).content.decode()
    assert admin_url("redeliver", failed.pk) in content
    assert admin_url("cancel", failed.pk) not in content
    assert admin_url("cancel", pending.pk) in content
    assert admin_url("redeliver_failed") in content
    assert admin_url("cancel_pending") in content


# -- cancelled deliveries in the pipeline --------------------------------------------------------


def test_cancel_never_takes_one_under_a_live_lease():
    now = timezone.now()
    live = make_delivery("Live", status=DeliveryStatus.SENDING)
    expired = make_delivery("Expired", status=DeliveryStatus.SENDING)
    pending = make_delivery("Pending", status=DeliveryStatus.PENDING)
    Delivery.objects.filter(pk=live.pk).update(
        lease_token=uuid.uuid4(), lease_expires_at=now + timedelta(minutes=5)
    )
    Delivery.objects.filter(pk=expired.pk).update(
        lease_token=uuid.uuid4(), lease_expires_at=now - timedelta(seconds=1)
    )
    assert cancel_deliveries(Delivery.objects.all()) == 2
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses[live.pk] == DeliveryStatus.SENDING
    assert statuses[expired.pk] == DeliveryStatus.CANCELLED
    assert statuses[pending.pk] == DeliveryStatus.CANCELLED
    assert Delivery.objects.get(pk=expired.pk).lease_token is None


def test_nothing_claims_a_cancelled_delivery():
    delivery = make_delivery(status=DeliveryStatus.PENDING)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert cancel_deliveries(Delivery.objects.all()) == 1
    assert not Delivery.objects.due().exists()
    _token, claimed = claim_due_deliveries(10, lease_seconds=60)
    assert claimed == []
    # Not even once its (former) next attempt is long past.
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(days=1))
    assert claim_due_deliveries(10, lease_seconds=60)[1] == []


def test_redeliver_accepts_a_cancelled_delivery(webhook_destination, httpserver):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")
    delivery = make_delivery(status=DeliveryStatus.CANCELLED, attempts=0)
    assert redeliver(Delivery.objects.all()) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert len(httpserver.log) == 1


def test_prune_treats_cancelled_as_final(settings, configure):
    configure(RETENTION_DAYS=30)
    old = timezone.now() - timedelta(days=31)
    cancelled = make_delivery("Cancelled", status=DeliveryStatus.CANCELLED, created_at=old)
    pending = make_delivery("Pending", status=DeliveryStatus.PENDING, created_at=old)
    Event.objects.update(created_at=old)
    call_command("publish_hooks", "prune", verbosity=0)
    assert not Event.objects.filter(pk=cancelled.event_id).exists()
    assert Event.objects.filter(pk=pending.event_id).exists()


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"status": DeliveryStatus.FAILED}, "wph_delivery_status_created"),
        ({"destination": "consumer"}, "wph_delivery_dest_created"),
    ],
)
def test_report_filters_are_served_by_an_index(filters, index):
    from wagtail_publish_hooks.admin.deliveries.selection import deliveries_queryset

    make_delivery()
    query = deliveries_queryset().filter(**filters).order_by("-created_at", "-pk")[:50]
    plan = query.explain()
    if connection.vendor == "sqlite":
        assert index in plan
        assert "TEMP B-TREE" not in plan  # read in index order, not sorted afterwards
    else:
        # PostgreSQL plans a table this small with a scan; the index must exist all the same.
        with connection.cursor() as cursor:
            names = connection.introspection.get_constraints(cursor, Delivery._meta.db_table)
        assert index in names
