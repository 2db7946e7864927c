"""The routing filters in the form of a destination managed in the admin: sites, languages,
sections (stored as page ids), changed fields and collections."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from wagtail.models import Collection

from tests.conftest import WEBHOOK
from tests.support.admin_users import admin_user, logged_in
from tests.support.sites import multisite
from wagtail_publish_hooks.models import ManagedDestination
from wagtail_publish_hooks.registry import refresh_destinations

__all__ = ["multisite"]

pytestmark = pytest.mark.django_db

NS = "publish_hooks_destinations"


def url(name, *args):
    return reverse(f"{NS}:{name}", args=args)


def form(**overrides):
    values = {
        "alias": "frontend",
        "backend": WEBHOOK,
        "options": json.dumps({"URL": "https://consumer.example/hooks"}),
        "secret_mode": "none",
        "secret_value": "",
        "events": "",
        "model_labels": "",
        "exclude_aliases": "unknown",
    }
    values.update(overrides)
    return values


@pytest.fixture
def superuser():
    return logged_in(admin_user("root", superuser=True))


@pytest.fixture
def press():
    root = Collection.get_first_root_node() or Collection.add_root(name="Root")
    return root.add_child(name="Press")


def test_filters_are_stored_as_ids_and_route(multisite, superuser, press):
    s = multisite
    response = superuser.post(
        url("add"),
        form(
            sites=[str(s.shop.pk), str(s.www.pk)],
            locales=["fr"],
            sections=f"{s.blog.url_path}\n{s.about.pk}\n{s.blog.url_path.strip('/')}",
            changed_fields="title\n\nintro\n",
            collections=[str(press.pk)],
        ),
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    row = ManagedDestination.objects.get(alias="frontend")
    assert sorted(row.sites) == sorted([s.shop.pk, s.www.pk])
    assert row.locales == ["fr"]
    assert row.sections == [s.blog.pk, s.about.pk]  # paths resolved, duplicates dropped
    assert row.changed_fields == ["title", "intro"]
    assert row.collections == [press.pk]
    destination = refresh_destinations()["frontend"]
    assert destination.sections == (s.blog.pk, s.about.pk)
    assert destination.changed == ("title", "intro")


def test_empty_filters_are_no_filters(multisite, superuser):
    response = superuser.post(url("add"), form())
    assert response.status_code == 302
    row = ManagedDestination.objects.get(alias="frontend")
    assert (row.sites, row.locales, row.sections, row.changed_fields, row.collections) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert "SITES" not in row.to_config()


def test_an_unknown_section_is_refused_on_its_field(multisite, superuser):
    response = superuser.post(url("add"), form(sections="/nowhere/\n999999"))
    assert response.status_code == 200
    errors = response.context["form"].errors["sections"]
    assert errors == [
        "No page “/nowhere/” that you can see: enter a page id or a url path such as /home/blog/.",
        "No page “999999” that you can see: enter a page id or a url path such as /home/blog/.",
    ]
    assert not ManagedDestination.objects.exists()


def test_check_messages_land_on_the_filter_fields(multisite, superuser):
    response = superuser.post(url("add"), form(changed_fields="colour", events="page.unpublished"))
    # W028 is a warning: saved, and shown once saved.
    assert response.status_code == 302
    follow = superuser.get(response["Location"])
    assert "W028" in follow.content.decode()


def test_the_edit_form_shows_sections_as_url_paths(multisite, superuser):
    s = multisite
    ManagedDestination.objects.create(
        alias="frontend",
        backend=WEBHOOK,
        options={"URL": "https://x.example"},
        sections=[s.blog.pk],
    )
    row = ManagedDestination.objects.get(alias="frontend")
    page = superuser.get(url("edit", row.pk)).content.decode()
    assert f'id="id_sections">\n{s.blog.url_path}</textarea>' in page


def test_check_errors_land_on_the_filter_field(multisite, superuser):
    """A language stored before it left WAGTAIL_CONTENT_LANGUAGES: E057, on the field."""
    row = ManagedDestination.objects.create(
        alias="frontend", backend=WEBHOOK, options={"URL": "https://x.example"}, locales=["de"]
    )
    response = superuser.post(url("edit", row.pk), form(locales=["de", "fr"]))
    assert response.status_code == 200
    [error] = response.context["form"].errors["locales"]
    assert "'de' is not a content language of this site. (wagtail_publish_hooks.E057)" in error
