"""A page's (and a snippet's) deliveries, reached from its edit view, and redelivered there."""

from __future__ import annotations

import html

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from werkzeug import Response

from tests.support.admin import admin_url, make_delivery, rows
from tests.testapp.models import Advert
from wagtail_publish_hooks.models import Delivery, DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_page_edit_view_links_to_its_deliveries(admin_client, draft_blog_page):
    content = admin_client.get(
        reverse("wagtailadmin_pages:edit", args=(draft_blog_page.pk,))
    ).content.decode()
    assert admin_url("page_deliveries", draft_blog_page.pk) in content


def test_page_deliveries_lists_that_page_only_and_redelivers(
    admin_client, webhook_destination, httpserver, draft_blog_page, blog_index
):
    webhook_destination()
    replies = [Response("no", status=400), Response("ok"), Response("ok")]
    httpserver.expect_request("/hooks").respond_with_handler(lambda r: replies.pop(0))
    draft_blog_page.save_revision().publish()
    make_delivery("Someone else", instance=blog_index)
    delivery = Delivery.objects.get(event__object_id=str(draft_blog_page.pk))
    assert delivery.status == DeliveryStatus.FAILED

    url = admin_url("page_deliveries", draft_blog_page.pk)
    response = admin_client.get(url)
    assert response.status_code == 200
    content = html.unescape(response.content.decode())
    assert "Deliveries for “Hello world”" in content
    [row] = rows(response)
    assert "page.published" in row and "Failed" in row
    assert "News" not in row
    # The row's redeliver action returns here.
    redeliver = admin_url("redeliver", delivery.pk)
    assert redeliver in content
    response = admin_client.post(redeliver + "?next=" + url, follow=True)
    assert response.redirect_chain[-1][0] == url
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED

    # Results-only view (filter refreshes) stays scoped to the page.
    results = admin_client.get(admin_url("page_deliveries_results", draft_blog_page.pk))
    assert "Someone else" not in results.content.decode()
    # Bulk actions from here are scoped to the page.
    page_type = ContentType.objects.get_for_model(draft_blog_page).pk
    assert f"object_id={draft_blog_page.pk}" in content
    assert f"content_type={page_type}" in content


def test_page_deliveries_of_a_missing_page_is_404(admin_client):
    assert admin_client.get(admin_url("page_deliveries", 999)).status_code == 404


def test_snippet_listing_links_to_its_deliveries(admin_client, configure):
    advert = Advert.objects.create(text="Summer sale")
    make_delivery(instance=advert, event_type="snippet.published")
    make_delivery("Not the advert")
    url = admin_url("snippet_deliveries", "testapp", "advert", advert.pk)
    listing = admin_client.get(reverse("wagtailsnippets_testapp_advert:list"))
    assert url in listing.content.decode()
    response = admin_client.get(url)
    assert response.status_code == 200
    [row] = rows(response)
    assert "snippet.published" in row and "consumer" in row
    assert "Deliveries for “Summer sale”" in response.content.decode()
    assert (
        admin_client.get(admin_url("snippet_deliveries", "testapp", "nope", 1)).status_code == 404
    )


def test_an_objects_deliveries_are_its_history_20_to_a_page(admin_client, blog_index):
    # As Wagtail's history views: 20 rows to a page, and no column repeating the object.
    for number in range(21):
        make_delivery(destination=f"dest-{number:02}", instance=blog_index)
    url = admin_url("page_deliveries", blog_index.pk)
    first = admin_client.get(url)
    assert len(rows(first)) == 20
    assert "Page 1 of 2" in first.content.decode()
    assert len(rows(admin_client.get(url + "?p=2"))) == 1
    assert "Page or object" not in first.content.decode()
    report = admin_client.get(admin_url("deliveries"))
    assert len(rows(report)) == 21
    assert "Page or object" in report.content.decode()


def test_an_objects_deliveries_offer_no_object_filters(admin_client, blog_index):
    make_delivery(instance=blog_index)
    url = admin_url("page_deliveries", blog_index.pk)
    content = admin_client.get(url).content.decode()
    assert 'name="status"' in content
    assert 'name="content_type"' not in content and 'name="object_id"' not in content
    # The view fixes the object: parameters naming another one neither narrow it nor fail.
    other = ContentType.objects.get_for_model(Advert).pk
    response = admin_client.get(url + f"?content_type={other}&object_id=999")
    assert response.status_code == 200
    assert len(rows(response)) == 1
    assert 'name="content_type"' in admin_client.get(admin_url("deliveries")).content.decode()
