"""A delivery viewer / redeliverer tries to read objects they could not otherwise see, and to act
beyond the filter they see.

The trust model: ``view_delivery`` and ``redeliver_delivery`` let a user see and act on
deliveries; never read an object (a page, a snippet, any other model) they have no access to,
and never act on deliveries outside the filter shown to them.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from wagtail.contrib.forms.models import FormSubmission
from wagtail.models import GroupPagePermission, ModelLogEntry, Page

from tests.support.admin import admin_url, make_delivery, rows
from tests.support.admin_users import admin_user, permission
from tests.testapp.models import Advert, BlogIndexPage, BlogPage
from wagtail_publish_hooks.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus, Event

pytestmark = pytest.mark.django_db

WITHHELD = "(not shown: you have no access to it)"
PUBLIC_TITLE = "Public news item"
SECRET_TITLE = "Secret merger plans"


@pytest.fixture
def tree(site_root) -> dict[str, Page]:
    """Home → News → a public item; Home → Board → a secret page."""
    news = site_root.add_child(instance=BlogIndexPage(title="News", slug="news"))
    public = news.add_child(instance=BlogPage(title=PUBLIC_TITLE, slug="public"))
    board = site_root.add_child(instance=BlogIndexPage(title="Board", slug="board"))
    secret = board.add_child(instance=BlogPage(title=SECRET_TITLE, slug="secret"))
    return {"home": site_root, "news": news, "public": public, "board": board, "secret": secret}


def news_viewer(tree, *permissions: str, username: str = "viewer") -> Any:
    """``view_delivery`` (and ``permissions``), and an editor of the News section only."""
    return admin_user(
        username,
        "wagtail_publish_hooks.view_delivery",
        *permissions,
        pages={tree["news"]: ("add_page", "change_page")},
    )


def text(response) -> str:
    return html.unescape(response.content.decode())


def deliver_about(page: Page, **kwargs: Any) -> Delivery:
    """A delivery about ``page`` whose payload, like the real one, carries its title and URL."""
    delivery = make_delivery(instance=page, **kwargs)
    Event.objects.filter(pk=delivery.event_id).update(
        payload={
            "id": delivery.event.event_id,
            "type": "page.published",
            "data": {"page": {"title": page.title, "url": f"https://example.com/{page.slug}/"}},
        }
    )
    return delivery


# -- the per-object views accept only the objects events are recorded for ----------------------


def test_snippet_view_refuses_models_that_are_not_snippets(client, tree):
    """The reported hole: view_delivery alone opened form submissions and users."""
    client.force_login(news_viewer(tree))
    submission = FormSubmission.objects.create(
        form_data={"email": "private@example.com"}, page=tree["home"]
    )
    other = get_user_model().objects.create_user(username="victim", email="v@example.com")
    for instance in (submission, other):
        make_delivery(instance=instance, event_type="shop.something")
        label = ContentType.objects.get_for_model(instance)
        url = admin_url("snippet_deliveries", label.app_label, label.model, instance.pk)
        response = client.get(url)
        assert response.status_code == 404, url
        assert "private@example.com" not in response.content.decode()
        assert "victim" not in response.content.decode()
    # Not even a page through the snippet view.
    page_type = ContentType.objects.get_for_model(tree["secret"])
    url = admin_url("snippet_deliveries", page_type.app_label, page_type.model, tree["secret"].pk)
    assert client.get(url).status_code == 404


def test_other_models_only_with_recorded_events_and_a_permission_on_them(client, tree):
    other = get_user_model().objects.create_user(username="customer")
    url = admin_url("snippet_deliveries", "auth", "user", other.pk)
    superuser = admin_user("root", superuser=True)
    client.force_login(superuser)
    # No event was ever recorded for a user: not an object of this package's.
    assert client.get(url).status_code == 404
    make_delivery(instance=other, event_type="shop.customer_changed")
    response = client.get(url)
    assert response.status_code == 200
    # Its bulk actions could not be scoped by object type (not a filter choice): not offered.
    assert admin_url("cancel_pending") not in response.content.decode()
    # A viewer needs a permission on users to see one's deliveries (and learns nothing else).
    client.force_login(news_viewer(tree))
    assert client.get(url).status_code == 404
    client.force_login(news_viewer(tree, "auth.view_user", username="people-viewer"))
    response = client.get(url)
    assert response.status_code == 200
    assert "customer" in text(response)


@pytest.mark.parametrize(
    "pk", ["abc", "1.5", "99999999999999999999999999", "-1", "%20", "1%00", "0x10"]
)
def test_bad_snippet_keys_are_404_never_500(admin_client, pk):
    Advert.objects.create(text="Sale")
    url = f"/admin/publish-hooks/snippets/testapp/advert/{pk}/"
    assert admin_client.get(url).status_code == 404
    assert admin_client.get(url + "results/").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "pages/99999999999999999999999999/",
        "pages/999999/",
        "pages/abc/",
        "deliveries/99999999999999999999999999/",
        "deliveries/99999999999999999999999999/redeliver/",
        "deliveries/99999999999999999999999999/cancel/",
        "snippets/testapp/nope/1/",
        "snippets/nope/advert/1/",
        "snippets/testapp/advert/1/",
    ],
)
def test_missing_or_malformed_objects_are_404(admin_client, site_root, path):
    assert admin_client.get(f"/admin/publish-hooks/{path}").status_code == 404


def test_page_view_requires_access_to_the_page(client, tree):
    deliver_about(tree["secret"])
    deliver_about(tree["public"])
    client.force_login(news_viewer(tree))
    for name in ("page_deliveries", "page_deliveries_results"):
        response = client.get(admin_url(name, tree["secret"].pk))
        assert response.status_code == 403
        assert SECRET_TITLE not in text(response)
        response = client.get(admin_url(name, tree["public"].pk))
        assert response.status_code == 200
        assert "1 delivery" in text(response)
    # The title heads the page (its rows leave it out: they are all about that page).
    assert PUBLIC_TITLE in text(client.get(admin_url("page_deliveries", tree["public"].pk)))
    # An ancestor shown in the explorer (Home) is not access to the pages beside the section.
    assert client.get(admin_url("page_deliveries", tree["home"].pk)).status_code == 403


def test_an_objects_page_cannot_be_turned_to_another_object(client, tree):
    """The report's object filters, put in the URL of a page's deliveries, change nothing."""
    secret = deliver_about(tree["secret"])
    deliver_about(tree["public"])
    client.force_login(news_viewer(tree))
    query = f"?content_type={tree['secret'].content_type_id}&object_id={tree['secret'].pk}"
    for name in ("page_deliveries", "page_deliveries_results"):
        response = client.get(admin_url(name, tree["public"].pk) + query)
        assert response.status_code == 200
        assert len(rows(response)) == 1
        content = response.content.decode()
        assert SECRET_TITLE not in text(response)
        assert admin_url("delivery", secret.pk) not in content


def test_snippet_view_requires_a_permission_on_the_snippet(client, tree):
    advert = Advert.objects.create(text="Unannounced campaign")
    make_delivery(instance=advert, event_type="snippet.published")
    url = admin_url("snippet_deliveries", "testapp", "advert", advert.pk)
    client.force_login(news_viewer(tree))
    response = client.get(url)
    assert response.status_code == 403
    assert "Unannounced campaign" not in text(response)
    client.force_login(
        news_viewer(
            tree,
            "testapp.view_advert",
            "wagtail_publish_hooks.redeliver_delivery",
            username="advert-viewer",
        )
    )
    response = client.get(url)
    assert response.status_code == 200
    assert "Unannounced campaign" in text(response)
    assert admin_url("cancel_pending") + "?content_type=" in response.content.decode()


def test_page_header_item_only_for_pages_the_user_has_access_to(client, tree):
    events = tree["home"].add_child(instance=BlogIndexPage(title="Events", slug="events"))
    user = news_viewer(tree)  # and an editor of Events too:
    GroupPagePermission.objects.create(
        group=user.groups.get(), page=events, permission=permission("wagtailcore.change_page")
    )
    client.force_login(user)
    edit = client.get(reverse("wagtailadmin_pages:edit", args=(tree["public"].pk,)))
    assert admin_url("page_deliveries", tree["public"].pk) in edit.content.decode()
    # The explorer shows Home (above both sections); its deliveries are not offered.
    explore = client.get(reverse("wagtailadmin_explore", args=(tree["home"].pk,)))
    assert explore.status_code == 200
    assert admin_url("page_deliveries", tree["home"].pk) not in explore.content.decode()


# -- titles, payloads and answers about objects the user may not see ----------------------------


def test_report_withholds_titles_of_objects_the_user_may_not_see(client, tree):
    deliver_about(tree["secret"])
    deliver_about(tree["public"])
    advert = Advert.objects.create(text="Unannounced campaign")
    make_delivery(instance=advert, event_type="snippet.published")
    make_delivery("About nothing in particular")  # no object: visible
    client.force_login(news_viewer(tree))
    for name in ("deliveries", "deliveries_results"):
        response = client.get(admin_url(name))
        content = text(response)
        assert SECRET_TITLE not in content
        assert "Unannounced campaign" not in content
        assert PUBLIC_TITLE in content
        assert "About nothing in particular" in content
        assert sum(WITHHELD in row for row in rows(response)) == 2
    # A superuser sees everything.
    client.force_login(admin_user("root", superuser=True))
    content = text(client.get(admin_url("deliveries")))
    assert SECRET_TITLE in content and "Unannounced campaign" in content
    assert WITHHELD not in content


def test_a_viewer_without_any_other_permission_sees_no_title(client, tree):
    secret = deliver_about(tree["secret"])
    make_delivery("About nothing in particular")
    client.force_login(admin_user("bare", "wagtail_publish_hooks.view_delivery"))
    response = client.get(admin_url("deliveries"), {"q": "a"})
    assert [WITHHELD in row for row in rows(response)] == [False]  # the one without an object
    content = text(client.get(admin_url("deliveries")))
    assert SECRET_TITLE not in content and WITHHELD in content
    content = text(client.get(admin_url("delivery", secret.pk)))
    assert SECRET_TITLE not in content and "you do not have access to" in content


def test_search_does_not_match_hidden_titles(client, tree):
    """Else a viewer could spell out a hidden title one letter at a time."""
    secret = deliver_about(tree["secret"])
    deliver_about(tree["public"])
    client.force_login(news_viewer(tree))
    assert rows(client.get(admin_url("deliveries"), {"q": "merger"})) == []
    assert rows(client.get(admin_url("deliveries_results"), {"q": "Secret m"})) == []
    [row] = rows(client.get(admin_url("deliveries"), {"q": "news item"}))
    assert PUBLIC_TITLE in row
    # Both titles hold an "e": the count says how many the viewer may see, not how many match.
    response = client.get(admin_url("deliveries"), {"q": "e"})
    assert len(rows(response)) == 1
    assert "There is 1 match" in text(response)
    # An event id (from a receiver's log) still finds its delivery, title withheld.
    [row] = rows(client.get(admin_url("deliveries"), {"q": secret.event.event_id}))
    assert WITHHELD in row


def test_detail_withholds_what_reveals_the_object(client, tree):
    secret = deliver_about(tree["secret"], status=DeliveryStatus.FAILED)
    Attempt.objects.create(
        delivery=secret,
        number=1,
        outcome=AttemptOutcome.FAILURE,
        status_code=500,
        response_body="echo: Secret merger plans at /board/secret/",
        detail={"purged": ["https://example.com/board/secret/"]},
    )
    client.force_login(news_viewer(tree, "wagtail_publish_hooks.redeliver_delivery"))
    response = client.get(admin_url("delivery", secret.pk))
    assert response.status_code == 200
    content = text(response)
    assert "Secret merger" not in content
    assert "/board/secret/" not in content
    assert "example.com" not in content  # the payload's URL
    assert admin_url("page_deliveries", tree["secret"].pk) not in content
    assert reverse("wagtailadmin_pages:edit", args=(tree["secret"].pk,)) not in content
    assert "you do not have access to" in content  # and says why
    # What the delivery is stays visible: status, destination, event, attempts.
    assert "consumer" in content and "page.published" in content and "HTTP 500" in content
    # The confirmation pages do not name it either.
    for name in ("redeliver", "cancel"):
        confirm = client.get(admin_url(name, secret.pk))
        assert confirm.status_code == 200
        assert "Secret merger" not in text(confirm)

    public = deliver_about(tree["public"])
    content = text(client.get(admin_url("delivery", public.pk)))
    assert PUBLIC_TITLE in content and "https://example.com/public/" in content
    assert "you do not have access to" not in content


def test_detail_of_a_coalesced_delivery_withholds_the_hidden_events_titles(client, tree):
    delivery = deliver_about(tree["public"])
    delivery.coalesced_events.add(deliver_about(tree["secret"]).event)
    client.force_login(news_viewer(tree))
    content = text(client.get(admin_url("delivery", delivery.pk)))
    assert "Events in this delivery" in content
    assert PUBLIC_TITLE in content
    assert SECRET_TITLE not in content
    assert WITHHELD in content


def test_audit_log_entries_do_not_carry_titles(client, tree):
    """Wagtail shows delivery log entries to everyone who may view deliveries."""
    secret = deliver_about(tree["secret"], status=DeliveryStatus.FAILED)
    client.force_login(admin_user("root", superuser=True))
    client.post(admin_url("redeliver", secret.pk))
    client.post(admin_url("cancel_pending"))
    entries = ModelLogEntry.objects.filter(action__startswith="wagtail_publish_hooks.")
    assert entries.exists()
    for entry in entries:
        assert SECRET_TITLE not in entry.label
        assert SECRET_TITLE not in str(entry.data)
    client.force_login(news_viewer(tree))
    history = client.get(reverse("wagtailadmin_reports:site_history"))
    assert history.status_code == 200
    assert SECRET_TITLE not in text(history)


def test_no_spreadsheet_export(admin_client, tree):
    """Wagtail's ?export= would stream the whole table in one request."""
    deliver_about(tree["secret"])
    response = admin_client.get(admin_url("deliveries"), {"export": "csv"})
    assert response.status_code == 200
    assert response["content-type"].startswith("text/html")


# -- acting only on what the filter shows -------------------------------------------------------


@pytest.mark.parametrize("action", ["redeliver_failed", "cancel_pending"])
@pytest.mark.parametrize(
    "query",
    [
        "?destination=a&status=bogus",  # the reported one
        "?destination=a&event_type=Not%20A%20Type",
        "?destination=a&content_type=999999",
        "?destination=a&period=forever",
        "?destination=a&created_at_from=yesterday",
        "?destination=a%3Cscript%3E",
        "?destination=a&destinaton=b",  # misspelt: would have acted on every destination
        "?destination=a&destination=b",  # given twice: which one?
    ],
)
def test_bulk_action_with_an_invalid_filter_changes_nothing(client, tree, action, query):
    status = DeliveryStatus.FAILED if action == "redeliver_failed" else DeliveryStatus.PENDING
    for destination in ("a", "b"):
        make_delivery(destination=destination, status=status)
    client.force_login(news_viewer(tree, "wagtail_publish_hooks.redeliver_delivery"))
    confirm = client.get(admin_url(action) + query)
    assert confirm.status_code == 400
    assert "Nothing was done" in text(confirm)
    assert "Yes," not in text(confirm)  # no button to confirm
    response = client.post(admin_url(action) + query)
    assert response.status_code == 400
    assert "Nothing was done" in text(response)
    assert set(Delivery.objects.values_list("status", flat=True)) == {status}
    assert not ModelLogEntry.objects.filter(action__startswith="wagtail_publish_hooks.").exists()


def test_bulk_action_with_a_valid_filter_acts_on_that_filter_only(client, tree):
    mine = make_delivery(destination="a", status=DeliveryStatus.PENDING)
    other = make_delivery(destination="b", status=DeliveryStatus.PENDING)
    client.force_login(news_viewer(tree, "wagtail_publish_hooks.redeliver_delivery"))
    response = client.post(admin_url("cancel_pending") + "?destination=a&status=pending")
    assert response.status_code == 302
    assert Delivery.objects.get(pk=mine.pk).status == DeliveryStatus.CANCELLED
    assert Delivery.objects.get(pk=other.pk).status == DeliveryStatus.PENDING


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?destination=a",
        "?destination=-removed",  # neither is configured here
        "?destination=a&status=pending&period=7d&event_type=page.published",
        "?destination=a&event_type=shop.order_shipped&q=Hello",
        "?destination=a&created_at_from=2000-01-01&created_at_to=2999-12-31",
        "?destination=a&object_id=1&ordering=-created_at&p=1",
    ],
)
def test_valid_filters_are_not_refused(client, tree, query):
    make_delivery(destination="a", status=DeliveryStatus.PENDING)
    client.force_login(news_viewer(tree, "wagtail_publish_hooks.redeliver_delivery"))
    confirm = client.get(admin_url("cancel_pending") + query)
    assert confirm.status_code == 200
    assert "Nothing was done" not in text(confirm)


def test_bulk_search_matches_the_same_rows_as_the_report(client, tree):
    """A title search in a bulk action takes only what the report shows for it."""
    secret = deliver_about(tree["secret"], status=DeliveryStatus.PENDING)
    public = deliver_about(tree["public"], status=DeliveryStatus.PENDING)
    client.force_login(news_viewer(tree, "wagtail_publish_hooks.redeliver_delivery"))
    client.post(admin_url("cancel_pending") + "?q=plans")
    assert Delivery.objects.get(pk=secret.pk).status == DeliveryStatus.PENDING
    client.post(admin_url("cancel_pending") + "?q=news")
    assert Delivery.objects.get(pk=public.pk).status == DeliveryStatus.CANCELLED


def test_object_scoped_bulk_actions_stay_scoped(client, tree):
    public = deliver_about(tree["public"], status=DeliveryStatus.PENDING)
    elsewhere = deliver_about(tree["news"], status=DeliveryStatus.PENDING)
    client.force_login(news_viewer(tree, "wagtail_publish_hooks.redeliver_delivery"))
    content = client.get(admin_url("page_deliveries", tree["public"].pk)).content.decode()
    bulk = r'href="(/admin/publish-hooks/deliveries/cancel-pending/[^"]*)"'
    [link] = set(re.findall(bulk, content))
    link = html.unescape(link)
    assert f"object_id={tree['public'].pk}" in link
    assert client.post(link).status_code == 302
    assert Delivery.objects.get(pk=public.pk).status == DeliveryStatus.CANCELLED
    assert Delivery.objects.get(pk=elsewhere.pk).status == DeliveryStatus.PENDING


# -- filter choices come from the configuration ---------------------------------------------------


def test_filter_choices_do_not_scan_the_tables(admin_client, configure, tree):
    configure(
        DESTINATIONS={
            "consumer": {
                "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
                "EVENTS": ["page.*", "shop.order_shipped"],
                "OPTIONS": {"URL": "http://127.0.0.1:9/hooks"},
            }
        }
    )
    make_delivery(destination="gone-away", event_type="legacy.thing")
    with CaptureQueriesContext(connection) as queries:
        content = admin_client.get(admin_url("deliveries")).content.decode()
    for query in queries:
        sql = query["sql"].upper()
        assert not ("DISTINCT" in sql and ("WAGTAIL_PUBLISH_HOOKS_" in sql)), sql
    assert '<option value="consumer"' in content
    assert '<option value="shop.order_shipped"' in content
    # Nothing read from the table is offered as a choice.
    assert '<option value="gone-away"' not in content
    assert '<option value="legacy.thing"' not in content


def test_removed_destinations_stay_findable(admin_client, configure):
    configure(
        DESTINATIONS={
            "consumer": {
                "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
                "OPTIONS": {"URL": "http://127.0.0.1:9/hooks"},
            }
        }
    )
    make_delivery("To the old one", destination="old-endpoint")
    make_delivery("To the configured one", destination="consumer")

    def titles(**query: str) -> list[str]:
        response = admin_client.get(admin_url("deliveries"), query)
        assert response.status_code == 200
        return [row for row in rows(response)]

    [row] = titles(destination="-removed")
    assert "To the old one" in row
    # By name, too (the dashboard links to a disabled destination that way), and the select
    # shows it as chosen.
    [row] = titles(destination="old-endpoint")
    assert "To the old one" in row
    content = admin_client.get(admin_url("deliveries"), {"destination": "old-endpoint"})
    assert '<option value="old-endpoint" selected' in content.content.decode()
    # A name that is no alias is an invalid filter.
    response = admin_client.get(admin_url("deliveries"), {"destination": "x\x00<b>"})
    assert "<b>" not in response.content.decode()


# -- the report's queries do not grow with the table -------------------------------------------


def bulk_deliveries(count: int, pages: list[Page], advert: Advert) -> None:
    """``count`` deliveries, about visible and hidden pages, a snippet and nothing."""
    page_type = ContentType.objects.get_for_model(BlogPage)
    advert_type = ContentType.objects.get_for_model(Advert)
    events = []
    for n in range(count):
        kind = n % 4
        if kind == 3:
            about = {}
        elif kind == 2:
            about = {"content_type": advert_type, "object_id": str(advert.pk)}
        else:
            page = pages[kind]
            about = {"content_type": page_type, "object_id": str(page.pk)}
        events.append(
            Event(
                event_type="page.published",
                object_repr=f"Row {n}",
                payload={"n": n},
                **about,
            )
        )
    events = Event.objects.bulk_create(events, batch_size=500)
    if not all(event.pk for event in events):  # a backend that does not return keys
        events = list(Event.objects.order_by("pk"))
    Delivery.objects.bulk_create(
        [
            Delivery(event=event, destination="consumer", status=DeliveryStatus.FAILED)
            for event in events
        ],
        batch_size=500,
    )


def report_queries(client, query: dict[str, str] | None = None) -> int:
    counts = []
    for _ in range(2):  # the lower of two: a one-off cache fill does not count
        with CaptureQueriesContext(connection) as queries:
            response = client.get(admin_url("deliveries"), query or {})
        assert response.status_code == 200
        counts.append(len(queries))
    return min(counts)


@pytest.mark.parametrize("who", ["superuser", "viewer"])
def test_report_query_count_is_constant_at_5_50_and_5000_rows(client, tree, who):
    advert = Advert.objects.create(text="Campaign")
    user = (
        admin_user("root", superuser=True)
        if who == "superuser"
        else news_viewer(tree, "wagtail_publish_hooks.redeliver_delivery")
    )
    client.force_login(user)
    pages = [tree["public"], tree["secret"]]
    counts = {}
    made = 0
    for size in (5, 50, 5000):
        bulk_deliveries(size - made, pages, advert)
        made = size
        assert Delivery.objects.count() == size
        counts[size] = (
            report_queries(client),
            report_queries(client, {"status": "failed", "q": "Row"}),
        )
        response = client.get(admin_url("deliveries"))
        shown = rows(response)
        assert len(shown) == min(size, 50)
        if who == "viewer":
            assert any(WITHHELD in row for row in shown)
    assert counts[5] == counts[50] == counts[5000], counts
