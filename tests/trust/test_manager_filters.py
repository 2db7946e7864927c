"""A destination manager tries to route by pages and collections they may not see, to learn of
them through the form, and to store code in a filter."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from wagtail.models import Collection

from tests.conftest import WEBHOOK
from tests.support.admin_users import KIND_PERMISSIONS, admin_user, logged_in
from tests.support.sites import multisite
from wagtail_publish_hooks.models import ManagedDestination

__all__ = ["multisite"]

pytestmark = pytest.mark.django_db

NS = "publish_hooks_destinations"
NOT_SEEN = "No page “{}” that you can see: enter a page id or a url path such as /home/blog/."


def url(name, *args):
    return reverse(f"{NS}:{name}", args=args)


def form(**overrides):
    values = {
        "alias": "mine",
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
def shop_manager(multisite):
    """A destination manager who edits the shop's pages only."""
    user = admin_user(
        "shopkeeper",
        *KIND_PERMISSIONS["manager"],
        pages={multisite.shop_home: ("add_page", "change_page")},
    )
    return logged_in(user)


def test_a_page_outside_the_explorer_is_refused_like_a_missing_one(multisite, shop_manager):
    s = multisite
    for line in (s.blog.url_path, str(s.blog.pk), "/no/such/page/", "987654"):
        response = shop_manager.post(url("add"), form(sections=line))
        assert response.status_code == 200
        assert response.context["form"].errors["sections"] == [NOT_SEEN.format(line)]
    assert not ManagedDestination.objects.exists()
    # Their own part of the tree is theirs to route by.
    response = shop_manager.post(url("add"), form(sections=s.product.url_path))
    assert response.status_code == 302
    assert ManagedDestination.objects.get().sections == [s.product.pk]


def test_a_manager_without_page_permissions_can_name_no_section(multisite):
    client = logged_in(admin_user("nopages", *KIND_PERMISSIONS["manager"]))
    response = client.post(url("add"), form(sections=multisite.home.url_path))
    assert response.context["form"].errors["sections"] == [NOT_SEEN.format(multisite.home.url_path)]


def test_sections_stored_by_others_stay_hidden_and_kept(multisite, shop_manager):
    s = multisite
    row = ManagedDestination.objects.create(
        alias="theirs",
        backend=WEBHOOK,
        options={"URL": "https://consumer.example/hooks"},
        sections=[s.post.pk, s.product.pk],
    )
    page = shop_manager.get(url("edit", row.pk)).content.decode()
    assert s.post.url_path not in page and s.post.title not in page  # only its id is shown
    assert f"{s.post.pk}\n{s.product.url_path}" in page
    response = shop_manager.post(
        url("edit", row.pk), form(alias="theirs", sections=f"{s.post.pk}\n{s.product.url_path}")
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.sections == [s.post.pk, s.product.pk]


def test_collections_are_those_the_manager_may_see(multisite, shop_manager):
    root = Collection.get_first_root_node() or Collection.add_root(name="Root")
    secret = root.add_child(name="Board minutes")
    page = shop_manager.get(url("add")).content.decode()
    assert "Board minutes" not in page
    response = shop_manager.post(url("add"), form(collections=[str(secret.pk)]))
    assert response.status_code == 200
    assert "collections" in response.context["form"].errors
    assert not ManagedDestination.objects.exists()


def test_no_filter_stores_code(multisite, shop_manager):
    """Sites and collections are chosen from lists; sections become ids; OBJECT_SITES, the
    one filter setting that names code, is not a destination key at all."""
    response = shop_manager.post(
        url("add"),
        form(
            sites=["tests.support.canary.sites"],
            collections=["tests.support.canary.collections"],
            sections="tests.support.canary.section",
            OBJECT_SITES=json.dumps({"testapp.Advert": "tests.support.canary.sites"}),
        ),
    )
    errors = response.context["form"].errors
    assert {"sites", "collections", "sections"} <= set(errors)
    assert not ManagedDestination.objects.exists()
    response = shop_manager.post(
        url("add"), form(OBJECT_SITES=json.dumps({"testapp.Advert": "x.y"}))
    )
    assert response.status_code == 302
    assert "OBJECT_SITES" not in ManagedDestination.objects.get().to_config()
