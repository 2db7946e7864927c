"""An editor (page and snippet permissions, nothing of this package's) sees none of it but
their own watching.

No menu item, no "Deliveries" in a page's header menu, no dashboard panel, no button in the
snippet listing, nothing in the site history, and 403 from every URL of the package's admin
except watching's, which are every editor's for what they can edit (tests/admin/test_watching.py).
Each check is made against a superuser too, so that it cannot pass by looking for the wrong
thing.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from tests.support.admin import admin_url, make_delivery
from tests.support.admin_users import admin_user
from tests.testapp.models import Advert, BlogIndexPage
from tests.trust.test_permission_matrix import package_urls, url_arguments
from wagtail_publish_hooks.models import DeliveryStatus, DestinationState

pytestmark = pytest.mark.django_db

#: The editor's own watching: open to every editor, for what they can edit.
WATCHING = "publish_hooks_watching:"
PANEL = 'id="publish-hooks-deliveries-section"'


@pytest.fixture
def section(site_root):
    return site_root.add_child(instance=BlogIndexPage(title="Newsroom", slug="newsroom"))


@pytest.fixture
def editor(section):
    """An editor of the whole site (Wagtail's own "Moderators" group, page permissions on the
    root) who also edits adverts."""
    user = admin_user(
        "editor",
        "testapp.add_advert",
        "testapp.change_advert",
        "testapp.delete_advert",
        "testapp.publish_advert",
        pages={section: ("add_page", "change_page", "publish_page", "lock_page", "unlock_page")},
    )
    moderators = Group.objects.filter(name="Moderators").first()
    if moderators is not None:
        user.groups.add(moderators)
    return user


@pytest.fixture
def superuser():
    return admin_user("root", superuser=True)


@pytest.fixture
def trouble(section):
    """Something the dashboard panel would report: a failure and a disabled destination."""
    make_delivery(instance=section, status=DeliveryStatus.FAILED)
    DestinationState.objects.create(
        alias="consumer", disabled_at=timezone.now(), disabled_reason="HTTP 410 Gone"
    )


def page(client, user, url: str) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_no_menu_item_and_no_dashboard_panel(client, editor, superuser, trouble):
    home = reverse("wagtailadmin_home")
    content = page(client, superuser, home)
    assert "publish-hooks-deliveries" in content and PANEL in content
    content = page(client, editor, home)
    assert "publish-hooks" not in content
    assert PANEL not in content
    assert admin_url("deliveries") not in content


def test_no_deliveries_item_in_a_pages_header(client, editor, superuser, section):
    deliveries = admin_url("page_deliveries", section.pk)
    for url in (
        reverse("wagtailadmin_pages:edit", args=(section.pk,)),
        reverse("wagtailadmin_explore", args=(section.pk,)),
    ):
        assert deliveries in page(client, superuser, url)
        assert deliveries not in page(client, editor, url)


def test_no_button_in_the_snippet_listing(client, editor, superuser):
    advert = Advert.objects.create(text="Spring sale")
    listing = reverse("wagtailsnippets_testapp_advert:list")
    deliveries = admin_url("snippet_deliveries", "testapp", "advert", advert.pk)
    assert deliveries in page(client, superuser, listing)
    content = page(client, editor, listing)
    assert "Spring sale" in content  # the editor does see the advert
    assert deliveries not in content


def test_nothing_in_the_site_history(client, editor, superuser, section):
    delivery = make_delivery(instance=section, status=DeliveryStatus.FAILED)
    client.force_login(superuser)
    client.post(admin_url("redeliver", delivery.pk))
    history = reverse("wagtailadmin_reports:site_history")
    label = f"#{delivery.pk} page.published"
    assert label in page(client, superuser, history)
    assert label not in page(client, editor, history)


def test_every_url_answers_403(client, editor, section):
    client.force_login(editor)
    urls = package_urls()
    assert urls
    for name, pattern in sorted(urls.items()):
        if name.startswith(WATCHING):
            continue
        url = reverse(name, kwargs=url_arguments(pattern, section))
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 403, f"{method.upper()} {url}"
            assert "Newsroom" not in response.content.decode()


def test_page_permissions_add_nothing_to_the_package_permissions(client, section):
    """An editor given view_delivery is a delivery viewer: the page permissions neither add
    nor take away (the matrix covers the rest)."""
    user = admin_user(
        "viewer",
        "wagtail_publish_hooks.view_delivery",
        pages={section: ("change_page",)},
    )
    client.force_login(user)
    assert client.get(admin_url("page_deliveries", section.pk)).status_code == 200
    assert client.post(admin_url("cancel_pending")).status_code == 403
