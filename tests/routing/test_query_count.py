"""Routing costs the same number of queries with one destination or a hundred, every filter set;
and the same filters on ``@on`` receivers."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from wagtail.documents.models import Document
from wagtail.models import Collection

from tests.testapp.models import BlogPage
from wagtail_publish_hooks import on
from wagtail_publish_hooks.models import Delivery
from wagtail_publish_hooks.outbox import record_event
from wagtail_publish_hooks.receivers import unregister
from wagtail_publish_hooks.routing import routes_for, subject_of

pytestmark = pytest.mark.django_db(transaction=True)


def every_filter(s, n: int, collection: Collection) -> dict:
    """``n`` destinations, each with every filter set, all matching a post of the blog."""
    return {
        f"d{i}": {
            "SITES": ["www.example.test", s.shop.pk],
            "LOCALES": ["en"],
            "SECTIONS": [s.blog.pk, s.blog.url_path, f"/section-{i}/", 100_000 + i],
            "CHANGED": ["intro", f"field_{i}"],
            "COLLECTIONS": [collection.pk, collection.name, f"collection {i}"],
        }
        for i in range(n)
    }


def test_a_publish_costs_the_same_queries_for_1_and_100_filtered_destinations(
    multisite, destinations
):
    s = multisite
    root = Collection.get_first_root_node() or Collection.add_root(name="Root")
    collection = root.add_child(name="Press")

    def queries_for(n: int, slug: str) -> int:
        destinations(**every_filter(s, n, collection))
        page = BlogPage(title=slug, slug=slug, live=False)
        s.blog.add_child(instance=page)
        revision = page.save_revision()
        with CaptureQueriesContext(connection) as captured:
            revision.publish()
        assert Delivery.objects.filter(event__object_id=str(page.pk)).count() == n
        # The deliveries are one bulk insert, which the database backend may split into
        # batches (Django 5.2 on SQLite: 999 parameters each): counted apart.
        inserts = [
            query
            for query in captured.captured_queries
            if query["sql"].startswith(f'INSERT INTO "{Delivery._meta.db_table}"')
        ]
        assert len(inserts) <= 1 + n // 50
        return len(captured.captured_queries) - len(inserts)

    queries_for(1, "warm-up")
    assert queries_for(1, "one") == queries_for(100, "hundred")


def test_routing_resolves_sections_and_collections_in_one_query_each(multisite, destinations):
    s = multisite
    root = Collection.get_first_root_node() or Collection.add_root(name="Root")
    collection = root.add_child(name="Press")
    document = Document.objects.create(title="Report", collection=collection)
    post = BlogPage.objects.get(pk=s.post.pk)
    for n in (1, 100):
        destinations(**every_filter(s, n, collection))
        routes_for("page.published", BlogPage)  # settings read, destinations built
        for instance, event_type, queries in (
            (post, "page.published", 1),  # the sections
            (document, "document.changed", 1),  # the collections
        ):
            # Warm: the locale's code and the sites' root paths are cached across events.
            routes_for(event_type, type(instance), subject=subject_of(event_type, instance))
            subject = subject_of(event_type, instance, {"first_publish": True})
            with CaptureQueriesContext(connection) as captured:
                routes = routes_for(event_type, type(instance), subject=subject)
            assert len(routes) == n
            assert len(captured.captured_queries) == queries, captured.captured_queries


def test_receivers_take_the_same_filters(multisite, destinations):
    s = multisite
    destinations()
    calls: list[tuple[str, int]] = []

    @on("page.published", durable=False, sites=["shop.example.test"], name="shop_only")
    def shop_only(event):
        calls.append(("shop", event.data["page"]["id"]))

    @on("page.published", durable=False, locales="fr", sections=[s.blog_fr.pk], name="fr_blog")
    def french_blog(event):
        calls.append(("fr_blog", event.data["page"]["id"]))

    @on("page.published", durable=False, changed=["intro"], name="intro")
    def intro(event):
        calls.append(("intro", event.data["page"]["id"]))

    try:
        for page in (s.post, s.post_fr, s.product):
            page.save_revision().publish()
        record_event(
            "page.published",
            instance=s.post,
            data={"page": {"id": s.post.pk}, "first_publish": False, "changes": []},
        )
    finally:
        for name in ("shop_only", "fr_blog", "intro"):
            unregister(name)
    assert sorted(calls) == sorted(
        [
            ("shop", s.product.pk),
            ("fr_blog", s.post_fr.pk),
            # First publishes pass CHANGED; a republish whose changes hold none of its fields
            # does not.
            ("intro", s.post.pk),
            ("intro", s.post_fr.pk),
            ("intro", s.product.pk),
        ]
    )


def test_on_refuses_filters_of_the_wrong_type():
    with pytest.raises(TypeError, match="sites"):
        on("page.published", sites=[1.5])
    with pytest.raises(TypeError, match="locales"):
        on("page.published", locales=[1])
