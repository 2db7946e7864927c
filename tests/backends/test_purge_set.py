"""The purge set of each event, rule by rule, from real publishes, moves, unpublishes, deletes."""

from __future__ import annotations

import pytest
from wagtail.models import Page, ReferenceIndex, Site

from tests.support.media import media_root  # noqa: F401 -- a fixture
from tests.testapp.models import Advert, BlogIndexPage, BlogPage, PromoPage
from wagtail_publish_hooks.models import CaptureFailure, Delivery, Event
from wagtail_publish_hooks.purge import ancestor_paths, language_variants
from wagtail_publish_hooks.registry import get_backend

pytestmark = pytest.mark.django_db(transaction=True)

FRONTEND_CACHE = "wagtail_publish_hooks.backends.frontend_cache.FrontendCacheBackend"
HTTP_BACKEND = "wagtail.contrib.frontend_cache.backends.HTTPBackend"


def extra_feed_urls(page):
    """An ``EXTRA_URLS`` callable: a site-wide feed and a full URL."""
    return ["/feeds/all.xml", f"https://static.example/pages/{page.pk}.json"]


@pytest.fixture
def cdn(configure):
    """A frontend-cache destination whose window never closes during a test."""

    def apply(events=None, **options):
        configure(
            DESTINATIONS={
                "cdn": {
                    "BACKEND": FRONTEND_CACHE,
                    **({"EVENTS": events} if events else {}),
                    "OPTIONS": {
                        "BACKENDS": {
                            "varnish": {"BACKEND": HTTP_BACKEND, "LOCATION": "http://127.0.0.1:9"}
                        },
                        "COALESCE_SECONDS": 3600,
                        **options,
                    },
                }
            }
        )

    apply()
    return apply


@pytest.fixture
def purged():
    """``purged(action)``: the purge set of the events ``action`` records, as a set."""

    def run(action) -> set[str]:
        Delivery.objects.all().delete()
        Event.objects.all().delete()
        action()
        delivery = Delivery.objects.get(destination="cdn")
        urls, _ = get_backend("cdn").urls_for(delivery)
        assert len(urls) == len(set(urls)), "URLs are purged once each"
        return set(urls)

    return run


def publish(page):
    page.save_revision().publish()
    return page


def add_live(parent, page):
    parent.add_child(instance=page)
    return publish(page)


@pytest.fixture
def post(blog_index):
    return add_live(blog_index, BlogPage(title="Post", slug="post"))


def test_a_publish_purges_the_page_on_every_site_and_its_parent(cdn, purged, site_root, post):
    Site.objects.create(hostname="other.example", port=8080, root_page=site_root)
    assert purged(lambda: publish(post)) == {
        "http://localhost/news/post/",
        "http://other.example:8080/news/post/",
        "http://localhost/news/",
        "http://other.example:8080/news/",
    }


def test_cached_paths_are_joined_to_every_url(cdn, purged, site_root, post, monkeypatch):
    Site.objects.create(hostname="other.example", port=80, root_page=site_root)
    monkeypatch.setattr(BlogPage, "get_cached_paths", lambda self: ["/", "/?page=2", "amp/"])
    urls = purged(lambda: publish(post))
    for host in ("localhost", "other.example"):
        assert {
            f"http://{host}/news/post/",
            f"http://{host}/news/post/?page=2",
            f"http://{host}/news/post/amp/",
        } <= urls


def test_a_model_that_routes_itself_gets_its_own_url_too(cdn, purged, post, monkeypatch):
    def get_url_parts(self, request=None):
        return (None, "https://shop.example", "/p/" + self.slug)

    monkeypatch.setattr(BlogPage, "get_url_parts", get_url_parts)
    assert purged(lambda: publish(post)) == {
        "https://shop.example/p/post",
        "http://localhost/news/post/",
        "http://localhost/news/",
    }


def test_a_page_outside_every_site_purges_nothing_of_its_own(cdn, purged, site_root):
    root = Page.get_first_root_node()
    orphan = add_live(root, BlogIndexPage(title="Elsewhere", slug="elsewhere"))
    assert purged(lambda: publish(orphan)) == set()


def test_managed_languages_get_a_url_each(settings):
    settings.USE_I18N = True
    settings.WAGTAILFRONTENDCACHE_LANGUAGES = ["en", "fr", "de"]
    assert language_variants(
        ["https://example.com/en/news/", "https://example.com/feeds/all.xml"]
    ) == [
        "https://example.com/en/news/",
        "https://example.com/fr/news/",
        "https://example.com/de/news/",
        "https://example.com/feeds/all.xml",
    ]
    settings.USE_I18N = False
    assert language_variants(["https://example.com/en/news/"]) == ["https://example.com/en/news/"]


def test_languages_apply_to_the_whole_purge_set(cdn, purged, post, settings):
    settings.USE_I18N = True
    settings.WAGTAILFRONTENDCACHE_LANGUAGES = ["en", "fr"]
    # Without i18n_patterns the URLs carry no language prefix: nothing to rewrite.
    assert purged(lambda: publish(post)) == {
        "http://localhost/news/post/",
        "http://localhost/news/",
    }


def test_a_move_purges_old_and_new_urls_of_the_page_its_descendants_and_both_parents(
    cdn, purged, site_root, blog_index, post
):
    archive = add_live(site_root, BlogIndexPage(title="Archive", slug="archive"))
    child = add_live(post, BlogPage(title="Child", slug="child"))
    urls = purged(lambda: post.move(archive, pos="last-child"))
    assert urls == {
        "http://localhost/news/post/",
        "http://localhost/archive/post/",
        "http://localhost/news/post/child/",
        "http://localhost/archive/post/child/",
        "http://localhost/news/",
        "http://localhost/archive/",
    }
    assert child.pk  # the descendant's old and new URLs are above


def test_a_slug_change_purges_the_old_and_the_new_url(cdn, purged, post):
    def rename():
        post.slug = "renamed"
        publish(post)

    urls = purged(rename)
    assert {"http://localhost/news/post/", "http://localhost/news/renamed/"} <= urls
    assert "http://localhost/news/" in urls


def test_an_unpublish_purges_the_urls_the_page_had(cdn, purged, post):
    assert purged(lambda: post.unpublish()) == {
        "http://localhost/news/post/",
        "http://localhost/news/",
    }


def test_a_delete_purges_what_linked_to_the_page_although_the_references_are_gone(
    cdn, purged, site_root, post
):
    link = f'<p><a linktype="page" id="{post.pk}">the post</a></p>'
    promo = add_live(site_root, PromoPage(title="Promo", slug="promo", body=link))
    assert ReferenceIndex.get_references_to(post).exists()
    post_pk = post.pk

    urls = purged(lambda: Page.objects.get(pk=post_pk).delete())

    # By delivery time Wagtail has removed the references to the deleted page: only what was
    # captured with the event names the linking page.
    assert not ReferenceIndex.get_references_to(BlogPage(pk=post_pk)).exists()
    assert urls == {
        "http://localhost/news/post/",
        "http://localhost/news/",
        "http://localhost/promo/",
        f"http://localhost/feeds/promo-{promo.pk}.xml",
    }


def test_a_deleted_section_purges_every_page_in_it(cdn, purged, site_root, blog_index, post):
    other = add_live(blog_index, BlogPage(title="Other", slug="other"))
    urls = purged(lambda: Page.objects.get(pk=blog_index.pk).delete())
    assert {
        "http://localhost/news/",
        "http://localhost/news/post/",
        "http://localhost/news/other/",
        "http://localhost/",  # the section's parent
    } <= urls
    assert other.pk


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        (0, {"http://localhost/news/2026/post/"}),
        (1, {"http://localhost/news/2026/post/", "http://localhost/news/2026/"}),
        (
            2,
            {
                "http://localhost/news/2026/post/",
                "http://localhost/news/2026/",
                "http://localhost/news/",
            },
        ),
        (
            5,
            {
                "http://localhost/news/2026/post/",
                "http://localhost/news/2026/",
                "http://localhost/news/",
                "http://localhost/",
            },
        ),
    ],
)
def test_ancestors_to_the_configured_depth(cdn, purged, blog_index, depth, expected):
    year = add_live(blog_index, BlogIndexPage(title="2026", slug="2026"))
    page = add_live(year, BlogPage(title="Post", slug="post"))
    cdn(PURGE_ANCESTORS=depth)
    assert purged(lambda: publish(page)) == expected


def test_ancestor_paths():
    assert ancestor_paths("/home/news/post/", 1) == ["/home/news/"]
    assert ancestor_paths("/home/news/post/", 9) == ["/home/news/", "/home/"]
    assert ancestor_paths("/home/", 1) == []


def test_ancestors_that_are_not_live_are_left_out(cdn, purged, blog_index, post):
    blog_index.unpublish()
    assert purged(lambda: publish(post)) == {"http://localhost/news/post/"}


def test_pages_linking_to_the_page_are_purged(cdn, purged, site_root, post):
    link = f'<p><a linktype="page" id="{post.pk}">the post</a></p>'
    promo = add_live(site_root, PromoPage(title="Promo", slug="promo", body=link))
    draft = PromoPage(title="Draft promo", slug="draft-promo", body=link, live=False)
    site_root.add_child(instance=draft)
    urls = purged(lambda: publish(post))
    assert {"http://localhost/promo/", f"http://localhost/feeds/promo-{promo.pk}.xml"} <= urls
    assert not any("draft-promo" in url for url in urls)  # not live: not in any cache

    cdn(PURGE_REFERENCING_PAGES=False)
    assert purged(lambda: publish(post)) == {
        "http://localhost/news/post/",
        "http://localhost/news/",
    }


def test_a_snippet_change_purges_the_pages_that_use_it(cdn, purged, site_root):
    cdn(events=["page.*", "snippet.*"])
    advert = Advert.objects.create(text="Buy now", live=False)
    promo = add_live(site_root, PromoPage(title="Promo", slug="promo", advert=advert))
    add_live(site_root, PromoPage(title="No advert", slug="plain"))

    def publish_advert():
        advert.text = "Buy later"
        advert.save_revision().publish()

    assert purged(publish_advert) == {
        "http://localhost/promo/",
        f"http://localhost/feeds/promo-{promo.pk}.xml",
    }


def test_alias_pages_are_purged_with_their_original(cdn, purged, site_root, blog_index, post):
    elsewhere = add_live(site_root, BlogIndexPage(title="Elsewhere", slug="elsewhere"))
    post.create_alias(parent=elsewhere, update_slug="alias-of-post")
    urls = purged(lambda: publish(post))
    assert {
        "http://localhost/news/post/",
        "http://localhost/elsewhere/alias-of-post/",
        "http://localhost/elsewhere/",  # the alias's own event purges its parent
    } <= urls


def test_the_page_models_hook_and_extra_urls(cdn, purged, site_root, post):
    Site.objects.create(hostname="other.example", port=80, root_page=site_root)
    promo = add_live(site_root, PromoPage(title="Promo", slug="promo"))
    cdn(EXTRA_URLS={"testapp.BasePage": "tests.backends.test_purge_set.extra_feed_urls"})
    urls = purged(lambda: publish(promo))
    # The model's hook: a path, joined to each site the page is on.
    assert {
        f"http://localhost/feeds/promo-{promo.pk}.xml",
        f"http://other.example/feeds/promo-{promo.pk}.xml",
    } <= urls
    assert not any("all.xml" in url for url in urls)  # PromoPage is not a BasePage

    urls = purged(lambda: publish(post))  # BlogPage is a BasePage: EXTRA_URLS applies
    assert {
        "http://localhost/feeds/all.xml",
        "http://other.example/feeds/all.xml",
        f"https://static.example/pages/{post.pk}.json",
    } <= urls


def test_events_in_one_window_are_purged_together_once_each(cdn, blog_index):
    pages = [add_live(blog_index, BlogPage(title=f"P{i}", slug=f"p{i}")) for i in range(3)]
    Delivery.objects.all().delete()
    for page in pages:
        publish(page)
    delivery = Delivery.objects.get(destination="cdn")
    urls, event_ids = get_backend("cdn").urls_for(delivery)
    assert len(event_ids) == 3
    assert urls.count("http://localhost/news/") == 1
    assert set(urls) == {"http://localhost/news/"} | {
        f"http://localhost/news/p{i}/" for i in range(3)
    }


def test_queries_do_not_grow_with_the_number_of_linking_pages(
    cdn, site_root, post, django_assert_max_num_queries
):
    link = f'<p><a linktype="page" id="{post.pk}">the post</a></p>'
    for i in range(60):
        kind = PromoPage if i % 2 else BlogPage
        extra = {"body": link}
        add_live(site_root, kind(title=f"Linking {i}", slug=f"linking-{i}", **extra))
    Delivery.objects.all().delete()
    publish(post)
    delivery = Delivery.objects.get(destination="cdn")
    delivery = Delivery.objects.select_related("event").get(pk=delivery.pk)
    # Events (2), references (1), site roots (1), pages (1 + 1 per page type): not one per page.
    with django_assert_max_num_queries(8):
        urls, _ = get_backend("cdn").urls_for(delivery)
    assert {f"http://localhost/linking-{i}/" for i in range(60)} <= set(urls)


def test_a_capture_that_fails_never_breaks_the_delete(cdn, purged, post, monkeypatch, caplog):
    from wagtail_publish_hooks.backends.frontend_cache import FrontendCacheBackend

    def broken(self, event_type, instance):
        raise RuntimeError("boom")

    monkeypatch.setattr(FrontendCacheBackend, "capture", broken)
    post_pk = post.pk
    urls = purged(lambda: Page.objects.get(pk=post_pk).delete())
    assert not Page.objects.filter(pk=post_pk).exists()
    # What the event's payload holds is still purged: the page's URLs, and its live parent.
    assert urls == {"http://localhost/news/post/", "http://localhost/news/"}
    assert "could not capture data for page.deleted" in caplog.text
    # Kept as a capture failure of that destination.
    failure = CaptureFailure.objects.get()
    assert (failure.event_type, failure.destination) == ("page.deleted", "cdn")
    assert failure.object_id == str(post_pk)
    assert failure.error_type == "builtins.RuntimeError"


# -- Images and documents ----------------------------------------------------------------------


@pytest.fixture
def image(media_root):  # noqa: F811
    from tests.support.media import make_image

    return make_image()


def media_pages(parent, image, count, start=0):
    import json

    from tests.testapp.models import MediaPage

    for i in range(start, start + count):
        fields = (
            {"image": image}
            if i % 2
            else {"body": json.dumps([{"type": "image", "value": image.pk}])}
        )
        add_live(parent, MediaPage(title=f"Uses {i}", slug=f"uses-{i}", **fields))


def rename(image):
    def action():
        image.title = f"{image.title}, renamed"
        image.save()

    return action


def test_an_image_change_purges_its_urls_on_every_site_and_the_pages_using_it(
    cdn, purged, site_root, image
):
    cdn(events=["image.*"])
    Site.objects.create(hostname="other.localhost", root_page=site_root)
    media_pages(site_root, image, 2)
    rendition = image.get_rendition("fill-10x10")
    add_live(site_root, BlogPage(title="Unrelated", slug="unrelated"))
    assert purged(rename(image)) == {
        f"http://{host}{path}"
        for host in ("localhost", "other.localhost")
        for path in (image.file.url, rendition.url, "/uses-0/", "/uses-1/")
    }


def test_full_media_urls_are_purged_once_and_relative_ones_on_every_site(
    cdn, purged, site_root, image, settings
):
    cdn(events=["image.*"])
    Site.objects.create(hostname="other.localhost", root_page=site_root)
    settings.MEDIA_URL = "https://cdn.example.com/media/"
    assert purged(rename(image)) == {f"https://cdn.example.com/media/{image.file.name}"}


def test_pages_using_an_image_are_left_alone_without_purge_referencing_pages(
    cdn, purged, site_root, image
):
    cdn(events=["image.*"], PURGE_REFERENCING_PAGES=False)
    media_pages(site_root, image, 2)
    assert purged(rename(image)) == {f"http://localhost{image.file.url}"}


@pytest.mark.parametrize("count", [3, 30])
def test_the_pages_using_an_image_cost_the_same_queries_at_3_and_30(
    cdn, site_root, image, count, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cdn(events=["image.*"])
    media_pages(site_root, image, count)
    Delivery.objects.all().delete()
    rename(image)()
    delivery = Delivery.objects.select_related("event").get(destination="cdn")
    backend = get_backend("cdn")
    with CaptureQueriesContext(connection) as queries:
        urls, _ = backend.urls_for(delivery)
    assert {f"http://localhost/uses-{i}/" for i in range(count)} <= set(urls)
    # Events (2), references (1), site roots (1), pages (1 + 1 per page type): not one per page.
    assert len(queries) == 6, [query["sql"] for query in queries]
