"""Watching in a real headless Chromium: an editor watches a section from the page's header
menu, asks for an hourly digest in the account settings, then unwatches it from there; an
administrator subscribes a group to a section with the page chooser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from tests.support.admin_users import admin_user
from tests.support.browser import browser_page, log_in, screenshot_dir  # noqa: F401
from tests.testapp.models import BlogPage
from wagtail_publish_hooks.models import Delivery, DeliveryStatus
from wagtail_publish_hooks.subscription_models import (
    Frequency,
    NotificationPreferences,
    Subscription,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_editor_watches_a_section_sets_a_digest_and_unwatches(
    browser_page,  # noqa: F811
    screenshot_dir,  # noqa: F811
    live_server,
    blog_index,
    deliver,
):
    editor = admin_user("eddie", pages={blog_index: ("add_page", "change_page", "publish_page")})
    editor.set_password("password")
    editor.email = "eddie@example.com"
    editor.first_name, editor.last_name = "Eddie", "Tor"
    editor.save()
    page = browser_page
    base = live_server.url
    log_in(page, base, "eddie", "password")

    # "Watch…" in the page editor's header menu.
    page.goto(f"{base}/admin/pages/{blog_index.pk}/edit/")
    page.locator("#w-slim-header-buttons [data-w-dropdown-target='toggle']").first.click()
    page.get_by_role("link", name="Watch…").wait_for()
    page.wait_for_timeout(500)  # the menu fades in
    page.screenshot(path=str(screenshot_dir / "watch-menu.png"))
    page.get_by_role("link", name="Watch…").click()
    page.wait_for_url(f"{base}/admin/publish-hooks/watching/pages/{blog_index.pk}/*")
    page.get_by_label("This page and its subpages").check()
    page.get_by_label("Published", exact=True).check()
    page.get_by_label("Unpublished").check()
    page.locator("main").evaluate("main => main.scrollIntoView()")
    page.screenshot(path=str(screenshot_dir / "watch-page.png"))
    page.get_by_role("button", name="Watch", exact=True).click()
    page.wait_for_url(f"{base}/admin/pages/{blog_index.pk}/edit/")
    subscription = Subscription.objects.get()
    assert subscription.user_id == editor.pk and subscription.page_id == blog_index.pk
    assert subscription.include_subpages
    assert sorted(subscription.events) == ["page.published", "page.unpublished"]
    # The menu now says so.
    page.locator("#w-slim-header-buttons [data-w-dropdown-target='toggle']").first.click()
    assert page.get_by_role("link", name="Watching").is_visible()

    # An hourly digest, in the account settings' "Notifications" tab.
    page.goto(f"{base}/admin/account/")
    page.get_by_role("tab", name="Notifications").click()
    panel = page.locator("#publish_hooks-section, section:has-text('Publishing notifications')")
    assert "News and its subpages" in panel.first.inner_text()
    page.get_by_label("Hourly digest").check()
    page.set_viewport_size({"width": 1280, "height": 1300})
    page.screenshot(path=str(screenshot_dir / "watch-account-settings.png"))
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    assert "Your account settings have been changed" in page.content()
    preferences = NotificationPreferences.objects.get(user=editor)
    assert preferences.frequency == Frequency.HOURLY

    # Another user publishes three pages in the section: one email, once the hour is over.
    publisher = admin_user("pat", pages={blog_index: ("add_page", "change_page", "publish_page")})
    publish_stories(blog_index, publisher, 1, 2, 3)
    deliver()  # the fan-out records one digest delivery for the editor
    assert not emails_to("eddie@example.com")  # the hour is not over
    close_windows()
    deliver()
    [digest] = emails_to("eddie@example.com")
    assert all(f"Story {n}" in digest.body for n in (1, 2, 3))

    # Unwatch from the same panel: one POST, CSRF token included.
    page.get_by_role("tab", name="Notifications").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Unwatch").click()
    assert "You no longer watch it" in page.content()
    assert not Subscription.objects.exists()
    assert (screenshot_dir / "watch-account-settings.png").stat().st_size > 10_000
    page.get_by_role("tab", name="Notifications").click()
    assert "You watch nothing yet" in page.content()
    # The preferences stay.
    assert NotificationPreferences.objects.get(user=editor).frequency == Frequency.HOURLY

    # The next publish tells the editor nothing.
    mail.outbox.clear()
    publish_stories(blog_index, publisher, 4)
    deliver()
    close_windows()
    deliver()
    assert not emails_to("eddie@example.com")


def publish_stories(parent, user, *numbers):
    for n in numbers:
        story = parent.add_child(
            instance=BlogPage(title=f"Story {n}", slug=f"story-{n}", intro="x", live=False)
        )
        story.save_revision(user=user).publish(user=user)


def close_windows():
    """As if the digest window were over."""
    Delivery.objects.filter(status=DeliveryStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def emails_to(address):
    return [message for message in mail.outbox if address in message.to]


def test_an_administrator_subscribes_a_group_to_a_section(
    browser_page,  # noqa: F811
    screenshot_dir,  # noqa: F811
    live_server,
    admin_user,
    blog_index,
):
    from django.contrib.auth.models import Group

    legal = Group.objects.create(name="Legal")
    page = browser_page
    base = live_server.url
    log_in(page, base, "admin", "password")
    page.get_by_role("button", name="Settings").click()
    page.get_by_role("button", name="Publish hooks").click()
    page.get_by_role("link", name="Subscriptions").click()
    page.wait_for_url(f"{base}/admin/publish-hooks/subscriptions/")
    page.get_by_role("link", name="Add subscription").first.click()
    page.get_by_label("Group").select_option(label="Legal")
    page.get_by_label("A page or section").check()
    page.get_by_role("button", name="Choose a page").click()
    modal = page.locator(".modal-content")
    home = blog_index.get_parent()
    modal.locator(f"a.navigate-pages[href*='/choose-page/{home.pk}/']").first.click()
    modal.get_by_role("link", name="News", exact=True).first.click()
    page.get_by_label("And its subpages").check()
    page.get_by_label("page.published", exact=True).check()
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.locator("main").evaluate("main => main.scrollIntoView()")
    page.screenshot(path=str(screenshot_dir / "watch-admin-subscription.png"))
    with page.expect_navigation():
        page.get_by_role("button", name="Create").first.click()
    subscription = Subscription.objects.get()
    assert subscription.group == legal and subscription.page_id == blog_index.pk
    assert subscription.include_subpages and subscription.events == ["page.published"]
    assert "News and its subpages" in page.locator("table.listing").inner_text()
