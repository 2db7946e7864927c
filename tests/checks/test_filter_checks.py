"""The checks of the filters SITES, LOCALES, SECTIONS, CHANGED, COLLECTIONS and of OBJECT_SITES."""

from __future__ import annotations

import pytest
from django.db import DatabaseError
from wagtail.models import Collection, Page, Site

from tests.checks.test_checks import dest, run

pytestmark = pytest.mark.django_db


def messages_of(settings, value) -> list[tuple[str, str]]:
    return [(message.id.rsplit(".", 1)[1], message.msg) for message in run(settings, value)]


def site_sites_and_collection():
    site = Site.objects.filter(is_default_site=True).first() or Site.objects.create(
        hostname="localhost", root_page=Page.get_first_root_node(), is_default_site=True
    )
    root = Collection.get_first_root_node() or Collection.add_root(name="Root")
    return site, root


@pytest.mark.parametrize(
    ("check_id", "key", "value", "text"),
    [
        ("E056", "SITES", "www.example.com", "must be a list of site hostnames"),
        ("E056", "SITES", [1.5], "must be a list of site hostnames"),
        ("E056", "SITES", [True], "must be a list of site hostnames"),
        ("E056", "LOCALES", [1], "must be a list of language codes"),
        ("E056", "SECTIONS", [{"id": 3}], "must be a list of page ids"),
        ("E056", "SECTIONS", ["blog"], "'blog' is not a url path"),
        ("E056", "CHANGED", "title", "must be a list of field names"),
        ("E056", "CHANGED", [""], "must be a list of field names"),
        ("E056", "COLLECTIONS", [None], "must be a list of collection ids"),
        ("E057", "LOCALES", ["xx"], "'xx' is not a content language"),
        ("W027", "SITES", ["nowhere.example.com"], "no site 'nowhere.example.com' exists"),
        ("W027", "SITES", [999_999], "no site 999999 exists"),
        ("W027", "SECTIONS", ["/nowhere/"], "no page '/nowhere/' exists"),
        ("W027", "SECTIONS", [999_999], "no page 999999 exists"),
        ("W027", "COLLECTIONS", ["Nothing"], "no collection 'Nothing' exists"),
        ("W028", "CHANGED", ["colour"], "'colour' is not a field of any of this destination"),
        ("W005", "SITES", [], "is empty"),
    ],
)
def test_each_mistake_is_reported_on_its_key(settings, check_id, key, value, text):
    found = messages_of(settings, dest(**{key: value}))
    assert any(
        found_id == check_id and f"['consumer']['{key}']: " in msg and text in msg
        for found_id, msg in found
    ), found


def test_good_filters_are_quiet(settings):
    site, collections = site_sites_and_collection()
    home = Page.objects.filter(depth=2).first() or Page.get_first_root_node()
    settings.WAGTAIL_CONTENT_LANGUAGES = settings.LANGUAGES = [("en", "English"), ("fr", "F")]
    value = dest(
        SITES=[site.hostname.upper(), site.pk],
        LOCALES=["en", "FR"],
        SECTIONS=[home.pk, home.url_path, home.url_path.lstrip("/")],
        CHANGED=["title", "intro"],  # intro: a field of a subclass of the page models
        COLLECTIONS=[collections.pk, collections.name],
        MODELS=["wagtailcore.Page"],
    )
    assert messages_of(settings, value) == []


def test_changed_fields_are_those_of_the_models_and_their_subclasses(settings):
    assert messages_of(settings, dest(MODELS=["testapp.BasePage"], CHANGED=["intro"])) == []
    found = messages_of(settings, dest(MODELS=["testapp.EventPage"], CHANGED=["intro"]))
    assert [check_id for check_id, _ in found] == ["W028"]


def test_changed_without_published_events_is_flagged(settings):
    found = messages_of(settings, dest(EVENTS=["page.unpublished"], CHANGED=["title"]))
    assert [(i, "has no effect" in m) for i, m in found] == [("W028", True)]
    assert messages_of(settings, dest(EVENTS=["snippet.*"], CHANGED=["text"])) == []


def test_unknown_data_is_not_reported_while_the_tables_cannot_be_read(settings, monkeypatch):
    from django.db.models.query import QuerySet

    def unreadable(self, *args, **kwargs):
        raise DatabaseError("no such table: wagtailcore_site")

    monkeypatch.setattr(QuerySet, "values_list", unreadable)
    assert messages_of(settings, dest(SITES=["nowhere.example.com"], SECTIONS=[5])) == []


@pytest.mark.parametrize(
    ("check_id", "value", "text"),
    [
        ("E058", ["tests.x"], "must be a dict of model label"),
        ("E058", {"testapp.Advert": 3}, "must be a dict of model label"),
        ("E058", {"testapp.Nope": "tests.routing.test_filters.advert_sites"}, "'testapp.Nope'"),
        ("E059", {"testapp.Advert": "tests.nope.sites"}, "cannot be imported"),
        ("E059", {"testapp.Advert": "tests.checks.test_filter_checks.NOT_CALLABLE"}, "callable"),
    ],
)
def test_object_sites_is_checked(settings, check_id, value, text):
    found = messages_of(settings, {"OBJECT_SITES": value})
    assert any(i == check_id and "['OBJECT_SITES']" in m and text in m for i, m in found), found


NOT_CALLABLE = 3


def test_a_good_object_sites_is_quiet(settings):
    value = {"OBJECT_SITES": {"testapp.Advert": "tests.routing.test_filters.advert_sites"}}
    assert messages_of(settings, value) == []
