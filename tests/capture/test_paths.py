"""Every publishing path becomes exactly one correct event, delivered only after commit.

Each test drives the real Wagtail path (admin views, actions, management commands, workflows)
and asserts the exact events a webhook destination subscribed to everything received.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from wagtail.actions.unpublish_page import UnpublishPageAction
from wagtail.models import GroupApprovalTask, Workflow, WorkflowTask
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text

from tests.conftest import WEBHOOK
from tests.testapp.models import Advert, BlogIndexPage, BlogPage
from wagtail_publish_hooks.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sink(configure, httpserver):
    """A webhook destination that receives every event type, aliases included."""
    configure(
        DESTINATIONS={
            "all": {
                "BACKEND": WEBHOOK,
                "EVENTS": ["*"],
                "EXCLUDE_ALIASES": False,
                "OPTIONS": {"URL": httpserver.url_for("/hooks")},
            }
        },
        RETRY_SCHEDULE=[0],
    )
    httpserver.expect_request("/hooks").respond_with_data("ok")

    class Sink:
        def bodies(self) -> list[dict]:
            return [json.loads(request.get_data()) for request, _ in httpserver.log]

        def events(self) -> list[tuple[str, int | None]]:
            """(type, page or snippet id) of everything received, in order."""
            result = []
            for body in self.bodies():
                subject = body["data"].get("page") or body["data"].get("snippet") or {}
                result.append((body["type"], subject.get("id")))
            return result

        def clear(self) -> None:
            httpserver.clear_log()

    return Sink()


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")


@pytest.fixture
def live_page(blog_index) -> BlogPage:
    page = BlogPage(title="Live", slug="live")
    blog_index.add_child(instance=page)
    page.save_revision().publish()
    return page


def publish_from_edit_view(client, page: BlogPage, **fields):
    data = nested_form_data(
        {
            "title": page.title,
            "slug": page.slug,
            "intro": page.intro,
            "body": rich_text("<p>Body</p>"),
            "starts_at": "",
            "comments": inline_formset([]),
            "action-publish": "action-publish",
            **fields,
        }
    )
    return client.post(reverse("wagtailadmin_pages:edit", args=[page.pk]), data)


# -- publish ---------------------------------------------------------------------------------------


def test_publish_from_the_admin_edit_view(sink, client, admin_user, draft_blog_page):
    client.force_login(admin_user)
    response = publish_from_edit_view(client, draft_blog_page, title="Edited")
    assert response.status_code == 302, response.content[:2000]

    assert sink.events() == [("page.published", draft_blog_page.pk)]
    body = sink.bodies()[0]
    assert body["data"]["page"]["title"] == "Edited"
    assert body["data"]["actor"] == {"id": admin_user.pk, "username": "admin"}
    assert body["data"]["scheduled"] is False


def test_copy_with_keep_live_publishes_the_copy(sink, live_page, blog_index, admin_user):
    sink.clear()
    copy = live_page.copy(
        to=blog_index,
        update_attrs={"slug": "live-copy", "title": "Copy"},
        keep_live=True,
        user=admin_user,
    )
    assert sink.events() == [("page.published", copy.pk)]


def test_workflow_approval_publishes_after_commit(sink, draft_blog_page, admin_user):
    task = GroupApprovalTask.objects.create(name="Review")
    workflow = Workflow.objects.create(name="Editorial")
    WorkflowTask.objects.create(workflow=workflow, task=task, sort_order=0)

    state = workflow.start(draft_blog_page, admin_user)
    assert sink.events() == [("workflow.submitted", draft_blog_page.pk)]
    submitted = sink.bodies()[0]["data"]
    assert submitted["workflow"]["name"] == "Editorial"
    assert submitted["workflow"]["requested_by"]["username"] == "admin"
    sink.clear()

    with transaction.atomic():
        state.current_task_state.approve(user=admin_user)
        assert sink.events() == []  # nothing is sent while the approval is uncommitted

    assert sorted(sink.events()) == [
        ("page.published", draft_blog_page.pk),
        ("workflow.approved", draft_blog_page.pk),
    ]
    published = next(b for b in sink.bodies() if b["type"] == "page.published")
    assert published["data"]["page"]["live"] is True


def test_workflow_rejection(sink, draft_blog_page, admin_user):
    task = GroupApprovalTask.objects.create(name="Review")
    workflow = Workflow.objects.create(name="Editorial")
    WorkflowTask.objects.create(workflow=workflow, task=task, sort_order=0)
    state = workflow.start(draft_blog_page, admin_user)
    sink.clear()
    state.current_task_state.reject(user=admin_user)
    assert sink.events() == [("workflow.rejected", draft_blog_page.pk)]
    assert sink.bodies()[0]["data"]["actor"]["username"] == "admin"


def test_admin_bulk_publish_gives_one_event_per_page_after_commit(
    sink, client, admin_user, blog_index
):
    pages = []
    for i in range(5):
        page = BlogPage(title=f"Bulk {i}", slug=f"bulk-{i}", live=False)
        blog_index.add_child(instance=page)
        page.save_revision()
        pages.append(page)
    client.force_login(admin_user)
    url = reverse("wagtail_bulk_action", args=("wagtailcore", "page", "publish"))
    query = "&".join(f"id={page.pk}" for page in pages)
    response = client.post(f"{url}?{query}", {"include_descendants": ""})
    assert response.status_code == 302

    assert sorted(sink.events()) == sorted(("page.published", page.pk) for page in pages)
    assert {b["data"]["actor"]["username"] for b in sink.bodies()} == {"admin"}


def test_admin_bulk_unpublish(sink, client, admin_user, blog_index):
    pages = []
    for i in range(3):
        page = BlogPage(title=f"Bulk {i}", slug=f"bulk-{i}")
        blog_index.add_child(instance=page)
        page.save_revision().publish()
        pages.append(page)
    sink.clear()
    client.force_login(admin_user)
    url = reverse("wagtail_bulk_action", args=("wagtailcore", "page", "unpublish"))
    query = "&".join(f"id={page.pk}" for page in pages)
    response = client.post(f"{url}?{query}", {"include_descendants": ""})
    assert response.status_code == 302
    assert sorted(sink.events()) == sorted(("page.unpublished", page.pk) for page in pages)


# -- scheduled -------------------------------------------------------------------------------------


def test_scheduled_publish_is_one_event_when_it_goes_live(sink, draft_blog_page, admin_user):
    draft_blog_page.go_live_at = timezone.now() + timedelta(hours=1)
    revision = draft_blog_page.save_revision(user=admin_user)
    revision.publish(user=admin_user)
    assert sink.events() == []  # only scheduled

    # An hour later: the go-live time has passed.
    past = timezone.now() - timedelta(minutes=1)
    revision.content["go_live_at"] = past.isoformat()
    revision.approved_go_live_at = past
    revision.save(update_fields=["content", "approved_go_live_at"])
    call_command("publish_scheduled")

    assert sink.events() == [("page.published", draft_blog_page.pk)]
    data = sink.bodies()[0]["data"]
    assert data["scheduled"] is True
    assert data["actor"] is None
    assert data["page"]["live"] is True


def test_expired_page_is_unpublished_by_the_schedule(sink, live_page):
    BlogPage.objects.filter(pk=live_page.pk).update(expire_at=timezone.now() - timedelta(minutes=1))
    sink.clear()
    call_command("publish_scheduled")
    assert sink.events() == [("page.unpublished", live_page.pk)]
    data = sink.bodies()[0]["data"]
    assert data["scheduled"] is True
    assert data["page"]["live"] is False


# -- unpublish, move, delete ---------------------------------------------------------------------


def live_tree(blog_index):
    section = BlogIndexPage(title="Section", slug="section")
    blog_index.add_child(instance=section)
    section.save_revision().publish()
    children = []
    for i in range(2):
        child = BlogPage(title=f"Child {i}", slug=f"child-{i}")
        section.add_child(instance=child)
        child.save_revision().publish()
        children.append(child)
    return section, children


def test_unpublish_without_and_with_descendants(sink, blog_index, admin_user):
    section, children = live_tree(blog_index)
    sink.clear()
    UnpublishPageAction(children[0], user=admin_user).execute()
    assert sink.events() == [("page.unpublished", children[0].pk)]

    sink.clear()
    UnpublishPageAction(section, include_descendants=True, user=admin_user).execute()
    # The first child was already unpublished: no second event for it.
    assert sorted(sink.events()) == sorted(
        [("page.unpublished", section.pk), ("page.unpublished", children[1].pk)]
    )


def test_move_to_another_parent(sink, blog_index, site_root):
    _section, children = live_tree(blog_index)
    sink.clear()
    children[0].move(site_root, pos="last-child")

    assert sink.events() == [("page.moved", children[0].pk)]
    moved = sink.bodies()[0]["data"]["moved"]
    assert moved == {
        "url_path_before": "/home/news/section/child-0/",
        "url_path_after": "/home/child-0/",
        "urls_before": ["http://localhost/news/section/child-0/"],
        "urls_after": ["http://localhost/child-0/"],
    }
    assert sink.bodies()[0]["data"]["page"]["url"] == "http://localhost/child-0/"


def test_reordering_siblings_is_not_a_move(sink, blog_index):
    _section, children = live_tree(blog_index)
    sink.clear()
    children[1].move(children[0], pos="left")
    assert sink.events() == []


def test_slug_change_is_a_move_and_a_publish(sink, client, admin_user, live_page):
    sink.clear()
    client.force_login(admin_user)
    response = publish_from_edit_view(client, live_page, slug="renamed")
    assert response.status_code == 302

    assert sorted(sink.events()) == [
        ("page.moved", live_page.pk),
        ("page.published", live_page.pk),
    ]
    moved = next(b for b in sink.bodies() if b["type"] == "page.moved")["data"]["moved"]
    assert moved["urls_before"] == ["http://localhost/news/live/"]
    assert moved["urls_after"] == ["http://localhost/news/renamed/"]


def test_delete_a_live_page_with_live_descendants(sink, client, admin_user, blog_index):
    section, children = live_tree(blog_index)
    sink.clear()
    client.force_login(admin_user)
    response = client.post(reverse("wagtailadmin_pages:delete", args=[section.pk]))
    assert response.status_code == 302

    received = sink.events()
    assert sorted(received) == sorted(("page.deleted", page.pk) for page in [section, *children])
    urls = {b["data"]["page"]["id"]: b["data"]["page"]["urls"] for b in sink.bodies()}
    assert urls[section.pk] == ["http://localhost/news/section/"]
    assert urls[children[1].pk] == ["http://localhost/news/section/child-1/"]
    assert all(b["data"]["page"]["live"] is False for b in sink.bodies())
    assert {b["data"]["actor"]["username"] for b in sink.bodies()} == {"admin"}


def test_deleting_a_draft_sends_nothing(sink, draft_blog_page):
    draft_blog_page.delete()
    assert sink.events() == []


def test_unpublishing_an_original_unpublishes_its_alias_flagged(sink, live_page):
    alias = live_page.create_alias(update_slug="live-alias")
    sink.clear()
    live_page.refresh_from_db()
    live_page.unpublish()
    bodies = sink.bodies()
    assert sorted(
        (b["type"], b["data"]["page"]["id"], b["data"]["alias"]) for b in bodies
    ) == sorted([("page.unpublished", live_page.pk, False), ("page.unpublished", alias.pk, True)])


# -- snippets --------------------------------------------------------------------------------------


def test_snippet_publish_and_unpublish(sink, admin_user):
    from wagtail.log_actions import LogContext

    advert = Advert.objects.create(text="Buy now", live=False)
    with LogContext(user=admin_user):
        revision = advert.save_revision(user=admin_user)
        revision.publish(user=admin_user)
    advert.refresh_from_db()
    advert.unpublish()

    assert sink.events() == [
        ("snippet.published", advert.pk),
        ("snippet.unpublished", advert.pk),
    ]
    published, unpublished = sink.bodies()
    assert published["data"]["snippet"]["type"] == "testapp.Advert"
    assert published["data"]["snippet"]["title"] == "Buy now"
    assert published["data"]["snippet"]["live"] is True
    assert published["data"]["snippet"]["revision_id"] == revision.pk
    assert published["data"]["actor"]["username"] == "admin"
    assert unpublished["data"]["snippet"]["live"] is False


def test_page_publish_is_not_also_a_generic_publish(sink, draft_blog_page):
    draft_blog_page.save_revision().publish()
    assert sink.events() == [("page.published", draft_blog_page.pk)]
    assert Event.objects.count() == 1


def test_snippet_scheduled_publish_and_expiry(sink):
    advert = Advert.objects.create(text="Later", live=False)
    advert.go_live_at = timezone.now() + timedelta(hours=1)
    revision = advert.save_revision()
    revision.publish()
    assert sink.events() == []  # only scheduled

    past = timezone.now() - timedelta(minutes=1)
    revision.content["go_live_at"] = past.isoformat()
    revision.approved_go_live_at = past
    revision.save(update_fields=["content", "approved_go_live_at"])
    call_command("publish_scheduled")
    assert sink.events() == [("snippet.published", advert.pk)]
    assert sink.bodies()[0]["data"]["scheduled"] is True

    sink.clear()
    Advert.objects.filter(pk=advert.pk).update(expire_at=timezone.now() - timedelta(minutes=1))
    call_command("publish_scheduled")
    assert sink.events() == [("snippet.unpublished", advert.pk)]
    assert sink.bodies()[0]["data"]["scheduled"] is True


def test_a_script_publish_names_the_revision_author(sink, draft_blog_page, admin_user):
    draft_blog_page.save_revision(user=admin_user).publish(user=admin_user)
    assert sink.bodies()[0]["data"]["actor"] == {"id": admin_user.pk, "username": "admin"}


def test_a_script_publish_without_a_user_has_no_actor(sink, draft_blog_page):
    draft_blog_page.save_revision().publish()
    assert sink.bodies()[0]["data"]["actor"] is None
