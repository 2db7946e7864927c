"""Watching through the pipeline: subscriptions turn real publishes into per-user deliveries,
merged into digests by each user's frequency, checked for access when resolved and again when
sent, and mailed through Django's mail outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from wagtail.models import GroupApprovalTask, GroupPagePermission, Workflow, WorkflowTask

from tests.support.admin_users import admin_user
from tests.support.slack_api import FakeSlackApi
from tests.testapp.models import Advert, BlogIndexPage, BlogPage
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus
from wagtail_publish_hooks.subscription_models import NotificationPreferences, Subscription

pytestmark = pytest.mark.django_db(transaction=True)

PAGE_EVENTS = ["page.published", "page.unpublished", "page.moved", "page.deleted"]


@pytest.fixture(autouse=True)
def watching(configure, settings):
    settings.WAGTAILADMIN_BASE_URL = "https://cms.example"
    configure()


@pytest.fixture
def publisher(db):
    return admin_user("publisher", superuser=True)


def editor_of(page, username="editor", **preferences):
    user = admin_user(username, pages={page: ("add_page", "change_page", "publish_page")})
    user.email = f"{username}@example.com"
    user.save()
    if preferences:
        NotificationPreferences.objects.create(user=user, **preferences)
    return user


def watch(user=None, *, group=None, events=PAGE_EVENTS, **target):
    return Subscription.objects.create(user=user, group=group, events=list(events), **target)


def add_page(parent, title):
    page = BlogPage(title=title, slug=slugify(title), live=False)
    parent.add_child(instance=page)
    return page


def publish(page, user):
    page.save_revision(user=user).publish(user=user)


def watch_deliveries(user):
    return Delivery.objects.filter(destination=f"watch:{user.pk}")


def close_windows():
    """Let every digest's window pass, as the clock would."""
    Delivery.objects.filter(status=DeliveryStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_an_hourly_digest_lists_three_pages_in_one_email(blog_index, publisher, deliver):
    editor = editor_of(blog_index, frequency="hourly")
    watch(editor, page=blog_index, include_subpages=True)
    pages = [add_page(blog_index, title) for title in ("Alpha", "Beta", "Gamma")]
    for page in pages:
        publish(page, publisher)

    # One fan-out delivery per event, sent at once; one digest for the editor, still waiting.
    fan_out = Delivery.objects.filter(destination="watchers")
    assert fan_out.count() == 3
    assert set(fan_out.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    digest = watch_deliveries(editor).get()
    assert digest.status == DeliveryStatus.PENDING
    assert len(digest.covered_events()) == 3
    assert 3500 < (digest.next_attempt_at - digest.created_at).total_seconds() <= 3600
    assert mail.outbox == []

    close_windows()
    deliver()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["editor@example.com"]
    assert "3 changes" in message.subject
    for page in pages:
        assert f"“{page.title}” was published by publisher" in message.body
        assert f"https://cms.example/admin/pages/{page.pk}/edit/" in message.body
    html = message.alternatives[0].content
    assert "Alpha" in html and "Gamma" in html
    digest.refresh_from_db()
    assert digest.status == DeliveryStatus.DELIVERED
    assert Attempt.objects.get(delivery=digest).detail["sent"] == ["editor@example.com"]


def test_an_unwatched_section_sends_nothing(blog_index, publisher, deliver):
    editor = editor_of(blog_index)
    subscription = watch(editor, page=blog_index, include_subpages=True)
    publish(add_page(blog_index, "First"), publisher)
    deliver()
    assert len(mail.outbox) == 1  # at once, by default

    subscription.delete()
    publish(add_page(blog_index, "Second"), publisher)
    deliver()
    assert len(mail.outbox) == 1
    assert Delivery.objects.filter(destination="watchers").count() == 1


def test_a_page_outside_the_watched_section_sends_nothing(site_root, blog_index, publisher):
    other = BlogIndexPage(title="Other", slug="other")
    site_root.add_child(instance=other)
    editor = editor_of(site_root)
    watch(editor, page=blog_index, include_subpages=True)
    watch(editor, page=other)  # the page alone, not below it
    publish(add_page(other, "Elsewhere"), publisher)
    assert not watch_deliveries(editor).exists()
    assert mail.outbox == []


def test_a_subscriber_who_lost_access_is_never_told(blog_index, publisher, deliver):
    editor = editor_of(blog_index)
    watch(editor, page=blog_index, include_subpages=True)
    GroupPagePermission.objects.filter(group__user=editor).delete()

    publish(add_page(blog_index, "Private"), publisher)
    assert not watch_deliveries(editor).exists()  # left out when resolved
    assert mail.outbox == []


def test_access_is_checked_again_when_the_digest_is_sent(blog_index, publisher, deliver):
    editor = editor_of(blog_index, frequency="daily")
    watch(editor, page=blog_index, include_subpages=True)
    publish(add_page(blog_index, "Secret plans"), publisher)
    digest = watch_deliveries(editor).get()
    assert (digest.next_attempt_at - digest.created_at).total_seconds() > 86000

    GroupPagePermission.objects.filter(group__user=editor).delete()
    close_windows()
    deliver()
    assert mail.outbox == []
    digest.refresh_from_db()
    assert digest.status == DeliveryStatus.DELIVERED  # nothing to send is not a failure
    assert "nothing to send" in Attempt.objects.get(delivery=digest).response_body


def test_an_inactive_user_is_not_told(blog_index, publisher, deliver):
    editor = editor_of(blog_index)
    watch(editor, page=blog_index, include_subpages=True)
    editor.is_active = False
    editor.save()
    publish(add_page(blog_index, "Hidden"), publisher)
    assert not watch_deliveries(editor).exists()


def test_the_actor_is_not_told_of_their_own_action_when_they_said_so(blog_index, deliver):
    quiet = editor_of(blog_index, "quiet")  # skip_own_actions defaults to True
    chatty = editor_of(blog_index, "chatty", skip_own_actions=False)
    watch(quiet, page=blog_index, include_subpages=True)
    watch(chatty, page=blog_index, include_subpages=True)

    publish(add_page(blog_index, "Mine"), quiet)
    publish(add_page(blog_index, "Also mine"), chatty)
    deliver()
    # quiet is told about chatty's page; chatty about both, their own included.
    assert sorted((m.to[0], m.subject.split("] ")[-1]) for m in mail.outbox) == [
        ("chatty@example.com", "Page published: Also mine"),
        ("chatty@example.com", "Page published: Mine"),
        ("quiet@example.com", "Page published: Also mine"),
    ]


def test_a_group_subscription_reaches_each_member_once(blog_index, publisher, deliver):
    group = Group.objects.create(name="Desk")
    members = [editor_of(blog_index, name) for name in ("ann", "bob")]
    for member in members:
        member.groups.add(group)
    watch(group=group, page=blog_index, include_subpages=True)
    page = add_page(blog_index, "Shared")
    watch(members[0], page=page)  # ann also watches the page herself

    publish(page, publisher)
    deliver()
    for member in members:
        assert watch_deliveries(member).count() == 1
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.com", "bob@example.com"]


def test_snippet_subscriptions_need_the_models_permission(publisher, deliver):
    reader = admin_user("reader", "testapp.view_advert")
    outsider = admin_user("outsider")
    for user in (reader, outsider):
        user.email = f"{user.username}@example.com"
        user.save()
    advert = Advert.objects.create(text="Spring sale", live=False)
    content_type = ContentType.objects.get_for_model(Advert)
    watch(reader, content_type=content_type, events=["snippet.published"])
    watch(
        outsider,
        content_type=content_type,
        object_id=str(advert.pk),
        events=["snippet.published"],
    )

    advert.save_revision(user=publisher).publish(user=publisher)
    deliver()
    assert [m.to for m in mail.outbox] == [["reader@example.com"]]
    assert "Spring sale" in mail.outbox[0].body
    assert not watch_deliveries(outsider).exists()


def test_a_workflow_task_subscription(draft_blog_page, blog_index, publisher, deliver):
    legal = Group.objects.create(name="Legal")
    task = GroupApprovalTask.objects.create(name="Legal review")
    task.groups.add(legal)
    workflow = Workflow.objects.create(name="Editorial")
    WorkflowTask.objects.create(workflow=workflow, task=task, sort_order=0)
    lawyer = editor_of(blog_index, "lawyer")
    lawyer.groups.add(legal)
    watch(group=legal, task=task, events=["workflow.submitted"])

    workflow.start(draft_blog_page, publisher)
    deliver()
    # Wagtail mails the task's approvers itself; ours is the one about what they watch.
    ours = [m for m in mail.outbox if "you watch" in m.body]
    assert [m.to for m in ours] == [["lawyer@example.com"]]
    assert "task Legal review" in ours[0].body
    event = Delivery.objects.get(destination=f"watch:{lawyer.pk}").event
    assert event.payload["data"]["workflow"]["task"] == {"id": task.pk, "name": "Legal review"}


def test_a_slack_user_without_a_bot_is_told_by_email(blog_index, publisher, deliver):
    # The account settings show a Slack choice left from a removed bot as email: so it is.
    slack = editor_of(blog_index, "slacker", channel="slack")
    watch(slack, page=blog_index, include_subpages=True)
    publish(add_page(blog_index, "News"), publisher)
    deliver()
    assert [m.to for m in mail.outbox] == [["slacker@example.com"]]
    assert watch_deliveries(slack).get().status == DeliveryStatus.DELIVERED


def test_watching_off_routes_nothing(configure, blog_index, publisher):
    configure(WATCHING=False)
    watch(editor_of(blog_index), page=blog_index, include_subpages=True)
    publish(add_page(blog_index, "Quiet"), publisher)
    assert not Delivery.objects.exists()


def test_a_bulk_publish_in_one_transaction_is_one_digest(blog_index, publisher, deliver):
    editor = editor_of(blog_index, frequency="hourly")
    watch(editor, page=blog_index, include_subpages=True)
    pages = [add_page(blog_index, f"Bulk {n}") for n in range(5)]
    with transaction.atomic():
        for page in pages:
            publish(page, publisher)
    assert len(watch_deliveries(editor).get().covered_events()) == 5


def test_section_watchers_are_told_of_a_deletion(blog_index, publisher, deliver):
    editor = editor_of(blog_index)
    watch(editor, page=blog_index, include_subpages=True)
    page = add_page(blog_index, "Doomed")
    publish(page, publisher)
    page.delete(user=publisher)
    deliver()
    subjects = sorted(m.subject.split("] ")[-1] for m in mail.outbox)
    assert subjects == ["Page deleted: Doomed", "Page published: Doomed"]


def test_a_watched_page_is_followed_across_a_move(site_root, blog_index, publisher, deliver):
    elsewhere = BlogIndexPage(title="Elsewhere", slug="elsewhere")
    site_root.add_child(instance=elsewhere)
    editor = editor_of(site_root)
    page = add_page(blog_index, "Wanderer")
    watch(editor, page=page, events=["page.published"])
    page.move(elsewhere, pos="last-child", user=publisher)
    page.refresh_from_db()
    publish(page, publisher)
    deliver()
    assert [m.subject.split("] ")[-1] for m in mail.outbox] == ["Page published: Wanderer"]


def test_a_slack_user_gets_one_direct_message_per_digest(
    blog_index, publisher, deliver, httpserver, configure
):
    # The Slack bot's real client, against the look-alike of Slack's Web API on loopback.
    token = "xoxb-" + "7" * 24
    api = FakeSlackApi(token, {"slacker@example.com": "U0SLACKER"})
    configure(SLACK_BOT={"TOKEN": token, "API_URL": api.install(httpserver)})
    user = editor_of(blog_index, "slacker", channel="slack", frequency="hourly")
    watch(user, page=blog_index, include_subpages=True)
    for title in ("One & two", "<Three>"):
        publish(add_page(blog_index, title), publisher)
    close_windows()
    deliver()

    [message] = api.messages
    assert message["channel"] == "U0SLACKER"
    assert "“One & two” was published by publisher." in message["text"]
    texts = [block["text"]["text"] for block in message["blocks"]]
    assert [text.split(" <")[0] for text in texts] == [
        "“One &amp; two” was published by publisher. First published.",
        "“&lt;Three&gt;” was published by publisher. First published.",
    ]
    assert texts[0].endswith("/edit/|Edit>")
    assert watch_deliveries(user).get().status == DeliveryStatus.DELIVERED
    assert mail.outbox == []


def test_a_model_subscription_covers_its_subclasses_here_and_in_the_watchers_list(
    blog_index, publisher, deliver
):
    """A subscription to ``BasePage`` reaches a ``BlogPage`` publish (subclasses match, as
    ``MODELS`` does), and the page's watchers list names the same subscriber: one rule."""
    from tests.testapp.models import BasePage
    from wagtail_publish_hooks.admin.watching.targets import subscriptions_matching_page

    editor = editor_of(blog_index)
    subscription = watch(
        editor, content_type=ContentType.objects.get_for_model(BasePage), events=["page.published"]
    )
    page = add_page(blog_index, "Inherited")
    assert list(subscriptions_matching_page(page)) == [subscription]
    assert list(subscriptions_matching_page(blog_index)) == []  # not a BasePage

    publish(page, publisher)
    deliver()
    [message] = mail.outbox
    assert message.to == ["editor@example.com"]
    assert "“Inherited” was published" in message.body


def test_subscriptions_are_removed_with_their_user_and_group(blog_index, publisher, deliver):
    editor = editor_of(blog_index)
    team = Group.objects.create(name="Desk")
    watch(editor, page=blog_index, include_subpages=True)
    watch(group=team, page=blog_index)
    NotificationPreferences.objects.create(user=editor, frequency="daily")
    editor.delete()
    team.delete()
    assert not Subscription.objects.exists()
    assert not NotificationPreferences.objects.exists()
    publish(add_page(blog_index, "After"), publisher)
    deliver()
    assert not Delivery.objects.filter(destination__startswith="watch:").exists()
    assert mail.outbox == []
