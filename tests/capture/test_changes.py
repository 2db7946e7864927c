"""``data.changes`` and ``first_publish``: what a publish changed since the previous publish.

Real publishes through Wagtail (scripts, the admin edit view, aliases, snippets), with drafts
saved in between, and the webhook bodies a loopback consumer received.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from wagtail.models import PageLogEntry, Revision
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text

from tests.conftest import WEBHOOK
from tests.testapp.models import (
    Advert,
    BlogPage,
    EventPage,
    LinksPage,
    LinksPageLink,
    MediaPage,
)
from wagtail_publish_hooks.changes import publish_changes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def published(configure, httpserver):
    """The ``data`` of every ``*.published`` event the loopback consumer received, in order."""
    configure(
        DESTINATIONS={
            "all": {
                "BACKEND": WEBHOOK,
                "EVENTS": ["page.published", "snippet.published"],
                "EXCLUDE_ALIASES": False,
                "OPTIONS": {"URL": httpserver.url_for("/hooks")},
            }
        },
        RETRY_SCHEDULE=[0],
    )
    httpserver.expect_request("/hooks").respond_with_data("ok")

    def read() -> list[dict]:
        return [json.loads(request.get_data())["data"] for request, _ in httpserver.log]

    read.clear = httpserver.clear_log  # type: ignore[attr-defined]
    return read


@pytest.fixture
def live_page(blog_index) -> BlogPage:
    page = BlogPage(title="Hello world", slug="hello-world", intro="Hi", body="<p>One</p>")
    blog_index.add_child(instance=page)
    page.save_revision().publish()
    return page


def edit(page, **values):
    """A fresh copy of ``page`` with ``values`` set, as an editor's form would."""
    page = type(page).objects.get(pk=page.pk)
    for name, value in values.items():
        setattr(page, name, value)
    return page


def test_a_first_publish(published, draft_blog_page):
    draft_blog_page.save_revision().publish()

    [data] = published()
    assert data["first_publish"] is True
    assert data["changes"] == []


def test_short_text_carries_old_and_new_values_and_rich_text_only_its_name(published, live_page):
    published.clear()
    edit(live_page, title="Hello again", intro="Hello", body="<p>Two</p>").save_revision().publish()

    [data] = published()
    assert data["first_publish"] is False
    assert data["changes"] == [
        {"field": "title", "label": "title", "old": "Hello world", "new": "Hello again"},
        {"field": "body", "label": "body"},
        {"field": "intro", "label": "intro", "old": "Hi", "new": "Hello"},
    ]


def test_dates_compare_as_stored_and_are_sent_as_text(published, blog_index):
    """A revision just saved holds a ``datetime`` in memory, the stored one its JSON text: the
    two compare as stored, and the values sent are the text."""
    starts = timezone.now().replace(microsecond=123456)
    page = EventPage(title="Launch", slug="launch", starts_at=starts)
    blog_index.add_child(instance=page)
    page.save_revision().publish()
    edit(page).save_revision().publish()  # the same date again
    later = starts + timedelta(days=1)
    edit(page, starts_at=later).save_revision().publish()

    first, same, moved = published()
    assert first["first_publish"] is True
    assert (same["first_publish"], same["changes"]) == (False, [])
    [change] = moved["changes"]
    assert change["field"] == "starts_at"
    assert change["old"].startswith(starts.strftime("%Y-%m-%dT%H:%M:%S.123"))
    assert change["new"].startswith(later.strftime("%Y-%m-%dT%H:%M:%S.123"))


def test_drafts_saved_in_between_do_not_count(published, live_page):
    published.clear()
    edit(live_page, intro="A draft").save_revision()
    edit(live_page, title="Draft title").save_revision()
    # Back to the published intro and title, with a new body: only the body changed since the
    # publish, whatever the drafts said.
    edit(live_page, intro="Hi", title="Hello world", body="<p>Two</p>").save_revision().publish()

    [data] = published()
    assert data["changes"] == [{"field": "body", "label": "body"}]


def test_a_republish_with_no_change(published, live_page):
    published.clear()
    edit(live_page, intro="A draft").save_revision()
    draft = edit(live_page).get_latest_revision()
    draft.publish()  # the draft as it was saved: intro changed
    draft.publish()  # the same revision again: nothing changed
    edit(live_page).save_revision().publish()  # a new revision, the same content

    first, second, third = published()
    assert first["changes"] == [{"field": "intro", "label": "intro", "old": "Hi", "new": "A draft"}]
    assert (second["first_publish"], second["changes"]) == (False, [])
    assert (third["first_publish"], third["changes"]) == (False, [])


def test_streamfield_by_name_and_subtitle_by_value(published, site_root):
    page = MediaPage(
        title="Media", slug="media", subtitle="Old", body=[("text", rich_text("<p>A</p>"))]
    )
    site_root.add_child(instance=page)
    page.save_revision().publish()
    published.clear()

    edit(page, subtitle="New").save_revision().publish()  # the StreamField saved as it was
    page = edit(page)
    page.body.append(("text", rich_text("<p>B</p>")))
    page.save_revision().publish()

    subtitle_only, body_only = published()
    assert subtitle_only["changes"] == [
        {"field": "subtitle", "label": "subtitle", "old": "Old", "new": "New"}
    ]
    assert body_only["changes"] == [{"field": "body", "label": "body"}]


def test_a_snippet_first_publish_then_a_change(published):
    advert = Advert.objects.create(text="Summer sale", live=False)
    advert.save_revision().publish()
    advert = Advert.objects.get(pk=advert.pk)
    advert.text = "Winter sale"
    advert.save_revision().publish()

    first, second = published()
    assert (first["first_publish"], first["changes"]) == (True, [])
    assert second["first_publish"] is False
    assert second["changes"] == [
        {"field": "text", "label": "text", "old": "Summer sale", "new": "Winter sale"}
    ]


def test_a_publish_from_the_admin_edit_view(published, client, django_user_model, live_page):
    admin = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    published.clear()
    data = nested_form_data(
        {
            "title": "Edited in the admin",
            "slug": live_page.slug,
            "body": rich_text("<p>One</p>"),
            "comments": inline_formset([]),
            "action-publish": "action-publish",
        }
    )
    response = client.post(f"/admin/pages/{live_page.pk}/edit/", data)
    assert response.status_code == 302, response.content[:2000]

    [data] = published()
    assert data["first_publish"] is False
    assert data["changes"] == [
        {"field": "title", "label": "title", "old": "Hello world", "new": "Edited in the admin"}
    ]


def test_unpublished_then_published_again_compares_with_the_last_publish(published, live_page):
    live_page.unpublish()
    edit(live_page, intro="Back").save_revision().publish()

    [_, data] = published()
    assert data["first_publish"] is False
    assert data["changes"] == [{"field": "intro", "label": "intro", "old": "Hi", "new": "Back"}]


def test_an_alias_reports_the_changes_of_its_original(published, live_page):
    alias = live_page.create_alias(update_slug="hello-alias")
    published.clear()
    edit(live_page, intro="Both").save_revision().publish()

    by_page = {data["page"]["id"]: data for data in published()}
    expected = [{"field": "intro", "label": "intro", "old": "Hi", "new": "Both"}]
    assert by_page[live_page.pk]["changes"] == expected
    assert by_page[alias.pk]["alias"] is True
    assert by_page[alias.pk]["changes"] == expected


def test_a_scheduled_publish_compares_with_the_live_revision(published, live_page):
    page = edit(live_page, intro="Tomorrow", go_live_at=timezone.now() + timedelta(hours=1))
    revision = page.save_revision()
    revision.publish()  # only scheduled: the live page stays as it is
    edit(live_page, intro="A later draft").save_revision()
    past = timezone.now() - timedelta(minutes=1)  # the time has come
    revision.content["go_live_at"] = past.isoformat()
    revision.approved_go_live_at = past
    revision.save(update_fields=["content", "approved_go_live_at"])
    published.clear()
    call_command("publish_scheduled")

    [data] = published()
    assert data["scheduled"] is True
    # go_live_at is scheduling, not content: only the intro changed.
    assert data["changes"] == [{"field": "intro", "label": "intro", "old": "Hi", "new": "Tomorrow"}]


def test_published_before_the_log_existed_changes_are_unknown(published, live_page):
    PageLogEntry.objects.filter(page=live_page).delete()
    published.clear()
    edit(live_page, intro="Later").save_revision().publish()

    [data] = published()
    assert data["first_publish"] is False
    assert data["changes"] is None


def test_a_purged_revision_leaves_changes_unknown(published, live_page):
    live_revision_id = BlogPage.objects.get(pk=live_page.pk).live_revision_id
    Revision.objects.filter(pk=live_revision_id).delete()  # as purge_revisions may
    published.clear()
    edit(live_page, intro="After the purge").save_revision().publish()

    [data] = published()
    assert (data["first_publish"], data["changes"]) == (False, None)


def test_a_content_that_cannot_be_compared_leaves_changes_unknown(published, live_page):
    # The previously published revision's stored content is not an object any more.
    live_revision_id = BlogPage.objects.get(pk=live_page.pk).live_revision_id
    Revision.objects.filter(pk=live_revision_id).update(content=["not", "a", "page"])
    published.clear()
    edit(live_page, intro="Still sent").save_revision().publish()

    [data] = published()
    assert data["page"]["id"] == live_page.pk
    assert data["first_publish"] is False
    assert data["changes"] is None


def test_bookkeeping_is_not_a_change(published, live_page):
    published.clear()
    page = edit(live_page)
    page.save_revision()  # moves latest_revision, draft_title and the timestamps
    page = edit(live_page, show_in_menus=True)
    page.save_revision(changed=False).publish()

    [data] = published()
    assert data["changes"] == [
        {"field": "show_in_menus", "label": "show in menus", "old": False, "new": True}
    ]


def publish_queries(page: BlogPage, **values) -> list[str]:
    revision = edit(page, **values).save_revision()
    with CaptureQueriesContext(connection) as queries:
        revision.publish()
    return [query["sql"] for query in queries.captured_queries]


def test_the_comparison_is_one_query_whatever_the_number_of_changed_fields(published, live_page):
    one = publish_queries(live_page, intro="One field")
    many = publish_queries(
        live_page,
        intro="Many fields",
        body="<p>Many</p>",
        seo_title="Many",
        search_description="Many",
        show_in_menus=True,
    )
    assert len(one) == len(many)
    assert len(published()[-1]["changes"]) == 5

    # And that is the one query the comparison adds to a publish.
    page = edit(live_page, intro="Alone")
    revision = page.save_revision()
    with CaptureQueriesContext(connection) as queries:
        result = publish_changes(page, revision)
    assert len(queries.captured_queries) == 1
    assert result["changes"] == [
        {"field": "intro", "label": "intro", "old": "Many fields", "new": "Alone"}
    ]


def test_a_child_relation_is_named_when_one_of_its_objects_changed(published, site_root):
    page = LinksPage(title="Links", slug="links", intro="See")
    page.links = [LinksPageLink(title="Wagtail", url="https://wagtail.org/")]
    site_root.add_child(instance=page)
    page.save_revision().publish()

    page = edit(page)
    page.save_revision().publish()  # the same links, saved again
    page = edit(page)
    page.links = [
        LinksPageLink(title="Wagtail", url="https://wagtail.org/"),
        LinksPageLink(title="Django", url="https://www.djangoproject.com/"),
    ]
    page.save_revision().publish()  # saved with new ids: the revision held them without
    edit(page).save_revision().publish()  # the same links, with their ids now
    page = edit(page)
    [first, second] = page.links.all()
    first.title = "Wagtail CMS"
    page.links = [first, second]
    page.save_revision().publish()

    created, unchanged, added, same_with_ids, edited = published()
    assert (created["first_publish"], created["changes"]) == (True, [])
    assert unchanged["changes"] == []
    assert added["changes"] == [{"field": "links", "label": "links"}]
    assert same_with_ids["changes"] == []
    assert edited["changes"] == [{"field": "links", "label": "links"}]
