"""SITES, LOCALES, SECTIONS, CHANGED and COLLECTIONS on real publishes and moves of a
multi-site, two-locale site: each destination receives exactly the events its filters select."""

from __future__ import annotations

import logging

import pytest
from wagtail.documents.models import Document
from wagtail.images.tests.utils import get_test_image_file
from wagtail.models import Collection, Site

from tests.testapp.models import Advert
from wagtail_publish_hooks.outbox import record_event

pytestmark = pytest.mark.django_db(transaction=True)

PUBLISHED = "page.published"


def publish(*pages):
    for page in pages:
        page.save_revision().publish()


def ids(*objects) -> set[tuple[str, str]]:
    return {(PUBLISHED, str(obj.pk)) for obj in objects}


# -- SITES ----------------------------------------------------------------------------------------


def test_sites_by_hostname_and_by_id(multisite, destinations, routed):
    s = multisite
    destinations(
        www={"SITES": ["www.example.test"]},
        shop={"SITES": [s.shop.pk]},
        both={"SITES": ["WWW.example.test", s.shop.pk]},
        unknown={"SITES": ["nowhere.example.test", 999_999]},
        everything={},
    )
    publish(s.post, s.post_fr, s.product)
    got = routed()
    # The French tree is a translation of the www site's root: the same site.
    assert got["www"] == ids(s.post, s.post_fr)
    assert got["shop"] == ids(s.product)
    assert got["both"] == got["everything"] == ids(s.post, s.post_fr, s.product)
    assert "unknown" not in got


def test_without_i18n_a_site_is_its_root_page_tree_only(multisite, destinations, routed, settings):
    s = multisite
    settings.WAGTAIL_I18N_ENABLED = False
    Site.clear_site_root_paths_cache()
    destinations(
        www={"SITES": ["www.example.test"]}, any_site={"SITES": ["www.example.test", s.shop.pk]}
    )
    publish(s.post, s.post_fr, s.product)
    got = routed()
    # The French tree is no site's: no SITES destination receives it.
    assert got["www"] == ids(s.post)
    assert got["any_site"] == ids(s.post, s.product)


def test_a_page_moved_to_another_site_matches_both_for_the_move_then_only_the_new(
    multisite, destinations, routed
):
    s = multisite
    publish(s.about)
    destinations(www={"SITES": ["www.example.test"]}, shop={"SITES": ["shop.example.test"]})
    s.refreshed(s.about).move(s.shop_home, "last-child")
    got = routed()
    assert got["www"] == got["shop"] == {("page.moved", str(s.about.pk))}

    publish(s.refreshed(s.about))
    assert routed() == {"shop": ids(s.about)}


def advert_sites(advert):
    """OBJECT_SITES callable of the tests: shop adverts by id, others by Site object."""
    if advert.text.startswith("shop"):
        return [Site.objects.get(hostname="shop.example.test").pk]
    return Site.objects.filter(hostname="www.example.test")


def broken_sites(advert):
    raise RuntimeError("the operator's callable failed")


def test_snippets_belong_to_every_site_unless_object_sites_says(
    multisite, destinations, routed, settings
):
    s = multisite
    destinations(www={"SITES": ["www.example.test"]}, shop={"SITES": [s.shop.pk]})
    every = Advert.objects.create(text="everywhere", live=False)
    every.save_revision().publish()
    snippet = {("snippet.published", str(every.pk))}
    assert routed() == {"www": snippet, "shop": snippet}

    settings.WAGTAIL_PUBLISH_HOOKS = {
        **settings.WAGTAIL_PUBLISH_HOOKS,
        "OBJECT_SITES": {"testapp.Advert": f"{__name__}.advert_sites"},
    }
    shop_ad = Advert.objects.create(text="shop sale", live=False)
    www_ad = Advert.objects.create(text="www news", live=False)
    shop_ad.save_revision().publish()
    www_ad.save_revision().publish()
    assert routed() == {
        "shop": {("snippet.published", str(shop_ad.pk))},
        "www": {("snippet.published", str(www_ad.pk))},
    }


def test_a_failing_object_sites_callable_sends_to_every_site_and_is_logged(
    multisite, destinations, routed, settings, caplog
):
    destinations(www={"SITES": ["www.example.test"]}, shop={"SITES": ["shop.example.test"]})
    settings.WAGTAIL_PUBLISH_HOOKS = {
        **settings.WAGTAIL_PUBLISH_HOOKS,
        "OBJECT_SITES": {"testapp.Advert": f"{__name__}.broken_sites"},
    }
    advert = Advert.objects.create(text="x", live=False)
    with caplog.at_level(logging.ERROR, logger="wagtail_publish_hooks"):
        advert.save_revision().publish()
    assert set(routed()) == {"www", "shop"}
    assert "OBJECT_SITES['testapp.Advert'] failed" in caplog.text


# -- LOCALES --------------------------------------------------------------------------------------


def test_locales(multisite, destinations, routed):
    s = multisite
    destinations(
        english={"LOCALES": ["en"]},
        french={"LOCALES": ["FR"]},
        french_canadian={"LOCALES": ["fr-ca"]},
        snippets={"LOCALES": ["fr"], "EVENTS": ["snippet.*"]},
    )
    publish(s.post, s.post_fr, s.product)
    advert = Advert.objects.create(text="no locale", live=False)
    advert.save_revision().publish()
    got = routed()
    # A snippet without a locale is not judged by LOCALES: every destination takes it.
    snippet = {("snippet.published", str(advert.pk))}
    assert got["english"] == ids(s.post, s.product) | snippet
    assert got["french"] == ids(s.post_fr) | snippet
    assert got["french_canadian"] == snippet  # "fr" pages are not "fr-ca"
    assert got["snippets"] == snippet


# -- SECTIONS -------------------------------------------------------------------------------------


def test_sections_by_id_and_by_url_path(multisite, destinations, routed):
    s = multisite
    destinations(
        blog_by_id={"SECTIONS": [s.blog.pk]},
        blog_by_path={"SECTIONS": [s.blog.url_path]},
        blog_by_bare_path={"SECTIONS": [s.blog.url_path.strip("/")]},
        french_blog={"SECTIONS": [s.blog_fr.pk]},
        whole_www={"SECTIONS": [s.home.url_path]},
        missing={"SECTIONS": [999_999, "/nowhere/"]},
    )
    publish(s.blog, s.post, s.about, s.post_fr, s.product)
    got = routed()
    assert got["blog_by_id"] == got["blog_by_path"] == ids(s.blog, s.post)
    assert got["blog_by_bare_path"] == ids(s.blog, s.post)
    assert got["french_blog"] == ids(s.post_fr)
    assert got["whole_www"] == ids(s.blog, s.post, s.about)
    assert "missing" not in got


def test_a_page_moved_out_of_a_section_stops_matching(multisite, destinations, routed):
    s = multisite
    publish(s.blog, s.post)
    destinations(blog={"SECTIONS": [s.blog.pk]}, everything={})
    s.refreshed(s.post).move(s.home, "last-child")
    # The move itself concerns the section it left (its old URL was there).
    assert routed() == {
        "blog": {("page.moved", str(s.post.pk))},
        "everything": {("page.moved", str(s.post.pk))},
    }
    publish(s.refreshed(s.post))
    assert routed() == {"everything": ids(s.post)}


def test_a_page_moved_into_a_section_starts_matching(multisite, destinations, routed):
    s = multisite
    publish(s.blog, s.about)
    destinations(blog={"SECTIONS": [s.blog.pk]})
    s.refreshed(s.about).move(s.blog, "last-child")
    assert routed() == {"blog": {("page.moved", str(s.about.pk))}}
    publish(s.refreshed(s.about))
    assert routed() == {"blog": ids(s.about)}


def test_an_id_follows_its_section_across_moves_a_url_path_follows_the_path(
    multisite, destinations, routed
):
    s = multisite
    old_path = s.blog.url_path
    destinations(by_id={"SECTIONS": [s.blog.pk]}, by_path={"SECTIONS": [old_path]})
    s.refreshed(s.blog).move(s.about, "last-child")  # now /home/about/blog/
    routed()
    publish(s.refreshed(s.post))
    assert routed() == {"by_id": ids(s.post)}


# -- COLLECTIONS ----------------------------------------------------------------------------------


@pytest.fixture
def collections(db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)  # the image files the test uploads
    # Transactional tests flush the tree that Wagtail's migration made: build it again.
    root = Collection.get_first_root_node() or Collection.add_root(name="Root")
    press = root.add_child(name="Press")
    archive = press.add_child(name="Archive")
    other = root.add_child(name="Other")
    return root, press, archive, other


def test_collections_by_id_and_name_including_descendants(
    collections, destinations, routed, multisite
):
    _root, press, archive, other = collections
    destinations(
        press_by_name={"COLLECTIONS": ["Press"]},
        press_by_id={"COLLECTIONS": [press.pk]},
        other={"COLLECTIONS": [other.pk]},
    )
    from wagtail.images import get_image_model

    image = get_image_model().objects.create(
        title="Logo", file=get_test_image_file(), collection=archive
    )
    document = Document.objects.create(title="Report", collection=press)
    elsewhere = Document.objects.create(title="Menu", collection=other)
    for instance, kind in ((image, "image"), (document, "document"), (elsewhere, "document")):
        record_event(f"{kind}.changed", instance=instance, data={kind: {"id": instance.pk}})
    publish(multisite.post)
    got = routed()
    in_press = {("image.changed", str(image.pk)), ("document.changed", str(document.pk))}
    # Pages have no collection: COLLECTIONS does not judge them.
    page = ids(multisite.post)
    assert got["press_by_name"] == got["press_by_id"] == in_press | page
    assert got["other"] == {("document.changed", str(elsewhere.pk))} | page


# -- CHANGED --------------------------------------------------------------------------------------


def test_changed_reads_first_publish_and_changes(multisite, destinations, routed):
    s = multisite
    destinations(intro={"CHANGED": ["intro"]}, title={"CHANGED": ["title", "slug"]}, all={})
    calls = []

    def data(first: bool, *fields: str):
        def build():
            calls.append(1)
            return {
                "page": {"id": s.post.pk},
                "first_publish": first,
                "changes": [{"field": f, "label": f.title()} for f in fields],
            }

        return build

    record_event(PUBLISHED, instance=s.post, data=data(True))
    assert routed() == {name: ids(s.post) for name in ("intro", "title", "all")}
    record_event(PUBLISHED, instance=s.post, data=data(False, "intro", "body"))
    assert routed() == {"intro": ids(s.post), "all": ids(s.post)}
    record_event(PUBLISHED, instance=s.post, data=data(False, "slug"))
    assert routed() == {"title": ids(s.post), "all": ids(s.post)}
    record_event(PUBLISHED, instance=s.post, data=data(False))
    assert routed() == {"all": ids(s.post)}
    # The lazy data was built once per event, though several destinations judged it.
    assert len(calls) == 4

    # CHANGED judges only page.published and snippet.published.
    record_event("page.unpublished", instance=s.post, data={"page": {"id": s.post.pk}})
    assert set(routed()) == {"intro", "title", "all"}
    advert = Advert.objects.create(text="x")
    record_event(
        "snippet.published",
        instance=advert,
        data={"snippet": {}, "first_publish": False, "changes": [{"field": "text"}]},
    )
    assert set(routed()) == {"all"}


def test_changed_lets_events_that_say_nothing_of_changes_pass(multisite, destinations, routed):
    destinations(intro={"CHANGED": ["intro"]})
    record_event(PUBLISHED, instance=multisite.post, data={"page": {}})
    assert routed() == {"intro": ids(multisite.post)}


def test_data_is_not_built_when_no_destination_is_routed(multisite, destinations, routed):
    destinations(shop={"SITES": ["shop.example.test"], "CHANGED": ["intro"]})

    def data():
        raise AssertionError("built for nobody")

    assert record_event(PUBLISHED, instance=multisite.post, data=data) is None


# -- Everything at once ---------------------------------------------------------------------------


def test_filters_combine(multisite, destinations, routed):
    s = multisite
    destinations(
        french_blog_on_www={
            "SITES": ["www.example.test"],
            "LOCALES": ["fr"],
            "SECTIONS": [s.blog_fr.url_path],
        },
        english_shop={"SITES": ["shop.example.test"], "LOCALES": ["en"]},
    )
    publish(s.post, s.post_fr, s.product, s.about)
    assert routed() == {"french_blog_on_www": ids(s.post_fr), "english_shop": ids(s.product)}


def test_values_no_row_can_hold_match_nothing_and_cost_the_others_nothing(
    multisite, destinations, routed
):
    """Written past the checks (which report them): an id out of any column's range, a NUL."""
    destinations(bad={"SECTIONS": [2**70, "/home/\x00/"]}, good={})
    publish(multisite.post)
    assert routed() == {"good": ids(multisite.post)}
