"""An editor watches a page or a snippet from its editor, sees who watches a page, and manages
their notifications and watches in the account settings."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from tests.support.admin_users import admin_user, logged_in
from tests.testapp.models import Advert, BlogPage
from wagtail_publish_hooks.admin.watching.buttons import PageWatchersMenuItem, PageWatchMenuItem
from wagtail_publish_hooks.subscription_models import (
    Frequency,
    NotificationPreferences,
    Subscription,
)

pytestmark = pytest.mark.django_db

W = "publish_hooks_watching:"


def account_data(**ours: str) -> dict[str, str]:
    """The account settings form as a browser posts it: Wagtail's own panels, and ours."""
    return {
        "name_email-first_name": "Eddie",
        "name_email-last_name": "Tor",
        "name_email-email": "eddie@example.com",
        "theme-theme": "system",
        "theme-contrast": "system",
        "theme-density": "default",
        **{f"publish_hooks-{name}": value for name, value in ours.items()},
    }


def watch_url(page) -> str:
    return reverse(f"{W}watch_page", args=(page.pk,))


@pytest.fixture
def editor(blog_index):
    return admin_user("editor", pages={blog_index: ("add_page", "change_page", "publish_page")})


def test_page_header_menu_offers_watch_then_watching(editor, blog_index):
    client = logged_in(editor)
    edit = reverse("wagtailadmin_pages:edit", args=(blog_index.pk,))
    content = html.unescape(client.get(edit).content.decode())
    assert watch_url(blog_index) in content
    assert "Watch…" in content and "Watching" not in content
    assert reverse(f"{W}page_watchers", args=(blog_index.pk,)) in content
    Subscription.objects.create(user=editor, page=blog_index, events=["page.published"])
    content = html.unescape(client.get(edit).content.decode())
    assert "Watching" in content


def test_watch_a_section_change_it_and_stop(editor, blog_index):
    client = logged_in(editor)
    response = client.get(watch_url(blog_index))
    assert response.status_code == 200
    assert "This page and its subpages" in html.unescape(response.content.decode())

    response = client.post(
        watch_url(blog_index),
        {"scope": "subtree", "events": ["page.published", "page.moved"], "save": ""},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("wagtailadmin_pages:edit", args=(blog_index.pk,))
    subscription = Subscription.objects.get()
    assert (subscription.user, subscription.page_id) == (editor, blog_index.pk)
    assert subscription.include_subpages
    assert subscription.events == ["page.published", "page.moved"]
    assert subscription.created_by == editor

    # Saving again changes the same subscription.
    client.post(watch_url(blog_index), {"scope": "page", "events": ["page.deleted"]})
    subscription = Subscription.objects.get()
    assert not subscription.include_subpages and subscription.events == ["page.deleted"]

    client.post(watch_url(blog_index), {"stop": ""})
    assert not Subscription.objects.exists()


def test_watch_form_refuses_unknown_events(editor, blog_index):
    client = logged_in(editor)
    response = client.post(watch_url(blog_index), {"scope": "page", "events": ["shop.sold"]})
    assert response.status_code == 200
    assert not Subscription.objects.exists()
    response = client.post(watch_url(blog_index), {"scope": "page", "events": []})
    assert response.status_code == 200
    assert not Subscription.objects.exists()


def test_next_outside_the_site_is_ignored(editor, blog_index):
    client = logged_in(editor)
    response = client.post(
        watch_url(blog_index),
        {"scope": "page", "events": ["page.published"], "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("wagtailadmin_pages:edit", args=(blog_index.pk,))
    response = client.post(
        watch_url(blog_index), {"scope": "page", "events": ["page.published"], "next": "/admin/"}
    )
    assert response["Location"] == "/admin/"


def test_watchers_lists_users_and_groups_whose_subscriptions_match(
    editor, site_root, blog_index, draft_blog_page
):
    from django.contrib.auth.models import Group

    alice = admin_user("alice")
    alice.first_name, alice.last_name = "Alice", "Liddell"
    alice.save()
    bob = admin_user("bob")
    carol = admin_user("carol")
    legal = Group.objects.create(name="Legal")
    page_type = ContentType.objects.get_for_model(BlogPage)
    Subscription.objects.create(user=alice, page=site_root, include_subpages=True, events=["x"])
    Subscription.objects.create(user=bob, page=site_root, include_subpages=False, events=["x"])
    Subscription.objects.create(group=legal, content_type=page_type, events=["x"])
    Subscription.objects.create(user=carol, page=draft_blog_page, events=["x"])
    client = logged_in(editor)
    response = client.get(reverse(f"{W}page_watchers", args=(draft_blog_page.pk,)))
    content = response.content.decode()
    assert "Alice Liddell" in content and "carol" in content and "Legal" in content
    assert "bob" not in content
    # The section itself: only Alice (with its subpages) and Bob (the page) watch the home page.
    response = client.get(reverse(f"{W}page_watchers", args=(blog_index.pk,)))
    content = response.content.decode()
    assert "Alice Liddell" in content and "bob" not in content and "Legal" not in content


def test_snippet_editor_offers_watch_and_watching_saves_it(site_root):
    advert = Advert.objects.create(text="Spring sale")
    user = admin_user("snippets", "testapp.change_advert", "testapp.publish_advert")
    client = logged_in(user)
    edit = reverse("wagtailsnippets_testapp_advert:edit", args=(advert.pk,))
    url = reverse(f"{W}watch_snippet", args=("testapp", "advert", advert.pk))
    content = client.get(edit).content.decode()
    assert url in content and "Watch…" in html.unescape(content) and "Watching" not in content
    response = client.get(url)
    assert response.status_code == 200
    content = response.content.decode()
    assert "snippet.published" in content and "page.moved" not in content
    assert "subpages" not in content
    response = client.post(url, {"events": ["snippet.published"]})
    assert response.status_code == 302
    assert response["Location"] == edit
    assert "Watching" in client.get(edit).content.decode()
    subscription = Subscription.objects.get()
    assert subscription.content_type == ContentType.objects.get_for_model(Advert)
    assert subscription.object_id == str(advert.pk)
    assert subscription.page is None


def test_account_settings_panel_saves_preferences_and_lists_watches(editor, blog_index):
    Subscription.objects.create(
        user=editor, page=blog_index, include_subpages=True, events=["page.published"]
    )
    client = logged_in(editor)
    account = reverse("wagtailadmin_account")
    content = html.unescape(client.get(account).content.decode())
    assert "Publishing notifications" in content
    assert "News and its subpages" in content
    assert "Slack direct message" not in content
    response = client.post(
        account,
        account_data(channel="email", frequency="hourly", skip_own_actions="on"),
    )
    assert response.status_code == 302
    preferences = NotificationPreferences.objects.get(user=editor)
    assert preferences.frequency == Frequency.HOURLY and preferences.skip_own_actions


def test_slack_is_offered_only_with_a_bot(editor, settings):
    settings.WAGTAIL_PUBLISH_HOOKS = {
        **settings.WAGTAIL_PUBLISH_HOOKS,
        "SLACK_BOT": {"TOKEN": "xoxb-test"},
    }
    content = logged_in(editor).get(reverse("wagtailadmin_account")).content.decode()
    assert "Slack direct message" in content


def test_slack_chosen_before_the_bot_was_removed_shows_as_email(editor):
    NotificationPreferences.objects.create(user=editor, channel="slack")
    client = logged_in(editor)
    response = client.get(reverse("wagtailadmin_account"))
    form = response.context["panels_by_tab"]
    [panel] = [p for panels in form.values() for p in panels if p.name == "publish_hooks"]
    assert panel.get_form()["channel"].value() == "email"


def test_slack_without_a_bot_is_refused(editor):
    client = logged_in(editor)
    response = client.post(
        reverse("wagtailadmin_account"),
        account_data(channel="slack", frequency="daily"),
    )
    assert response.status_code == 200
    assert not NotificationPreferences.objects.exists()


def test_unwatch_from_account_settings(editor, blog_index):
    subscription = Subscription.objects.create(
        user=editor, page=blog_index, events=["page.published"]
    )
    client = logged_in(editor)
    url = reverse(f"{W}unwatch", args=(subscription.pk,))
    assert f'formaction="{url}"' in client.get(reverse("wagtailadmin_account")).content.decode()
    assert client.get(url).status_code == 405
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("wagtailadmin_account")
    assert not Subscription.objects.exists()


# -- Trying to break it ---------------------------------------------------------------------------


def test_unwatching_someone_elses_subscription_is_not_found(editor, blog_index):
    other = admin_user("other", pages={blog_index: ("change_page",)})
    theirs = Subscription.objects.create(user=other, page=blog_index, events=["page.published"])
    response = logged_in(editor).post(reverse(f"{W}unwatch", args=(theirs.pk,)))
    assert response.status_code == 404
    assert Subscription.objects.filter(pk=theirs.pk).exists()


def test_a_page_without_access_is_refused_without_its_title(site_root, blog_index):
    secret = site_root.add_child(instance=BlogPage(title="Merger plans", slug="merger"))
    client = logged_in(admin_user("outsider", pages={blog_index: ("change_page",)}))
    for url in (
        watch_url(secret),
        reverse(f"{W}page_watchers", args=(secret.pk,)),
    ):
        response = client.get(url)
        assert response.status_code == 403
        assert "Merger plans" not in response.content.decode()
    response = client.post(watch_url(secret), {"scope": "subtree", "events": ["page.published"]})
    assert response.status_code == 403
    assert not Subscription.objects.exists()
    # Missing or malformed: 404, never a 500.
    assert client.get(reverse(f"{W}watch_page", args=(999_999,))).status_code == 404
    # Nor are the menu items shown for it (they are for a page the user edits).
    outsider = client.session.get("_auth_user_id")
    user = get_user_model().objects.get(pk=outsider)
    for item in (PageWatchMenuItem, PageWatchersMenuItem):
        kwargs = {"user": user} if item is PageWatchMenuItem else {}
        assert not item(page=secret, **kwargs).is_shown(user)
        assert item(page=blog_index, **kwargs).is_shown(user)


def test_a_snippet_without_access_is_refused_without_its_text(site_root):
    advert = Advert.objects.create(text="Secret sale")
    client = logged_in(admin_user("nosnippets"))
    url = reverse(f"{W}watch_snippet", args=("testapp", "advert", advert.pk))
    for response in (client.get(url), client.post(url, {"events": ["snippet.published"]})):
        assert response.status_code == 403
        assert "Secret sale" not in response.content.decode()
    assert not Subscription.objects.exists()
    # Models that are not snippets with a publishing state, and malformed keys: 404.
    for args in (
        ("auth", "user", "1"),
        ("testapp", "advert", "not-a-number"),
        ("testapp", "nosuchmodel", "1"),
        ("wagtail_publish_hooks", "subscription", "1"),
    ):
        superuser = logged_in(admin_user("root-" + args[1], superuser=True))
        assert superuser.get(reverse(f"{W}watch_snippet", args=args)).status_code == 404


def test_watching_needs_the_csrf_token(editor, blog_index):
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    response = client.post(watch_url(blog_index), {"scope": "page", "events": ["page.published"]})
    assert response.status_code == 403
    subscription = Subscription.objects.create(
        user=editor, page=blog_index, events=["page.published"]
    )
    response = client.post(reverse(f"{W}unwatch", args=(subscription.pk,)))
    assert response.status_code == 403
    assert Subscription.objects.filter(pk=subscription.pk).exists()
