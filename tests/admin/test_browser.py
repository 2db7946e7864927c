"""The admin in a real headless Chromium: publish a page, find its delivery, redeliver it."""

from __future__ import annotations

import pytest

from tests.support.browser import browser_page, log_in, screenshot_dir  # noqa: F401
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_publish_find_the_delivery_and_redeliver_it(
    browser_page,  # noqa: F811
    screenshot_dir,  # noqa: F811
    live_server,
    admin_user,
    webhook_destination,
    httpserver,
    draft_blog_page,
):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_json({"received": True})
    page = browser_page
    base = live_server.url
    log_in(page, base, "admin", "password")

    # Publish through the page editor.
    page.goto(f"{base}/admin/pages/{draft_blog_page.pk}/edit/")
    page.locator("footer [data-w-dropdown-target='toggle']").first.click()
    page.locator('button[name="action-publish"]').click()
    page.wait_for_url(f"{base}/admin/pages/{draft_blog_page.get_parent().pk}/")
    assert len(httpserver.log) == 1
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED

    # The deliveries report, reached from the Settings menu.
    page.goto(f"{base}/admin/")
    page.get_by_role("button", name="Settings").click()
    page.get_by_role("button", name="Publish hooks").click()
    page.get_by_role("link", name="Deliveries").click()
    page.wait_for_url(f"{base}/admin/publish-hooks/deliveries/")
    row = page.locator("table.listing tbody tr").first
    assert "Hello world" in row.inner_text()
    assert "delivered" in row.inner_text().lower()
    assert "consumer" in row.inner_text()
    page.screenshot(path=str(screenshot_dir / "admin-deliveries.png"))

    # Its detail.
    row.get_by_role("link", name="page.published").click()
    page.wait_for_url(f"{base}/admin/publish-hooks/deliveries/{delivery.pk}/")
    assert page.locator('[data-attempt-number="1"]').is_visible()
    assert page.locator('[data-attempt-number="2"]').count() == 0

    # Redeliver it, confirm, and see the new attempt.
    page.get_by_role("link", name="Redeliver").click()
    page.wait_for_url(f"{base}/admin/publish-hooks/deliveries/{delivery.pk}/redeliver/")
    page.get_by_role("button", name="Yes, redeliver").click()
    page.wait_for_url(f"{base}/admin/publish-hooks/deliveries/{delivery.pk}/")
    attempt = page.locator('[data-attempt-number="2"]')
    assert attempt.is_visible()
    assert "success" in attempt.inner_text().lower()
    assert "HTTP 200" in attempt.inner_text()
    assert "queued again" in page.content()
    # Wagtail's admin scrolls inside its own layout: a taller window shows more of the page.
    page.set_viewport_size({"width": 1280, "height": 1500})
    page.screenshot(path=str(screenshot_dir / "admin-delivery-detail.png"))

    assert Attempt.objects.filter(delivery=delivery).count() == 2
    first, second = (request for request, _response in httpserver.log)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert (screenshot_dir / "admin-deliveries.png").stat().st_size > 10_000
