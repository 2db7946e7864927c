"""The dashboard panel: failed deliveries in the last 24 hours and disabled destinations."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from werkzeug import Response

from tests.support.admin import admin_url, make_delivery, user_with
from wagtail_publish_hooks.models import Delivery, DeliveryStatus, DestinationState

pytestmark = pytest.mark.django_db(transaction=True)

PANEL = 'id="publish-hooks-deliveries-section"'


def dashboard(client) -> str:
    response = client.get(reverse("wagtailadmin_home"))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_panel_counts_recent_failures_and_links_to_the_report(
    admin_client, webhook_destination, httpserver, draft_blog_page
):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_handler(lambda r: Response("no", 400))
    draft_blog_page.save_revision().publish()
    draft_blog_page.save_revision().publish()
    recent = list(Delivery.objects.values_list("pk", flat=True))  # not 1 and 2 on PostgreSQL
    make_delivery(
        "Long ago", status=DeliveryStatus.FAILED, created_at=timezone.now() - timedelta(days=2)
    )
    make_delivery("Fine", status=DeliveryStatus.DELIVERED)

    content = dashboard(admin_client)
    assert PANEL in content
    assert "2 deliveries failed in the last 24 hours" in content
    link = admin_url("deliveries") + "?status=failed&period=24h"
    assert link in content
    report = admin_client.get(link)
    assert report.status_code == 200
    body = report.content.decode()
    assert sum(body.count(admin_url("delivery", pk)) for pk in recent) >= 2
    assert "Long ago" not in body and "Fine" not in body


def test_panel_lists_disabled_destinations(admin_client, site_root):
    DestinationState.objects.create(
        alias="consumer", disabled_at=timezone.now(), disabled_reason="HTTP 410 Gone"
    )
    DestinationState.objects.create(alias="healthy")
    content = dashboard(admin_client)
    assert PANEL in content
    assert "Disabled destinations" in content
    assert "HTTP 410 Gone" in content
    assert admin_url("deliveries") + "?destination=consumer" in content
    assert "healthy" not in content.split(PANEL, 1)[1]


def test_panel_is_absent_when_all_is_well(admin_client, site_root):
    make_delivery(status=DeliveryStatus.DELIVERED)
    assert PANEL not in dashboard(admin_client)


def test_panel_only_for_users_who_may_view_deliveries(client, django_user_model, site_root):
    make_delivery(status=DeliveryStatus.FAILED)
    client.force_login(user_with(django_user_model, username="plain"))
    assert PANEL not in dashboard(client)
    client.force_login(user_with(django_user_model, "view_delivery", username="viewer"))
    assert PANEL in dashboard(client)
