"""Every URL of the publish hooks admin, by GET and POST, for every kind of user, from the URL conf.

The URLs are found by walking Wagtail's admin URL conf, not listed by hand: a view added later is
in the walk, and the test fails until its row is written in :data:`EXPECTED`. Each row says, for
each kind of user, what the answer must be: a page (200), a redirect after an action (302), a
refusal (403), a method the view does not answer (405), and, for anonymous visitors, the
redirect to the login page. Never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, reverse
from wagtail.admin import urls as admin_urls

from tests.support.admin import make_delivery
from tests.support.admin_users import KINDS, admin_user, user_of_kind
from tests.testapp.models import Advert, BlogIndexPage
from wagtail_publish_hooks.models import DeliveryStatus, ManagedDestination
from wagtail_publish_hooks.subscription_models import Subscription

pytestmark = pytest.mark.django_db

#: The package's admin lives under this prefix of the admin's URLs.
URL_PREFIX = "publish-hooks/"
LOGIN = "login"

#: (GET, POST) answers for each kind of user (anonymous: always the login redirect).
Row = dict[str, dict[str, Any]]


def answers(
    *,
    editor: Any = 403,
    viewer: Any = 403,
    redeliverer: Any = 403,
    manager: Any = 403,
    subscriptions: Any = 403,
    superuser: Any,
) -> dict[str, Any]:
    return {
        "anonymous": LOGIN,
        "editor": editor,
        "viewer": viewer,
        "redeliverer": redeliverer,
        "manager": manager,
        "subscriptions": subscriptions,
        "superuser": superuser,
    }


def for_delivery_viewers(code: int) -> dict[str, Any]:
    """view_delivery opens it (the redeliverer has view_delivery too)."""
    return answers(viewer=code, redeliverer=code, superuser=code)


def for_redeliverers(code: int) -> dict[str, Any]:
    """redeliver_delivery opens it."""
    return answers(redeliverer=code, superuser=code)


def for_destination_managers(code: int) -> dict[str, Any]:
    """add/change/delete_manageddestination open it."""
    return answers(manager=code, superuser=code)


def for_subscription_admins(code: int) -> dict[str, Any]:
    """The model permissions on Subscription open it."""
    return answers(subscriptions=code, superuser=code)


def for_everyone(code: int) -> dict[str, Any]:
    """Every kind of admin user (each edits the page the URL names)."""
    return answers(
        editor=code, viewer=code, redeliverer=code, manager=code, subscriptions=code, superuser=code
    )


D = "wagtail_publish_hooks:"
M = "publish_hooks_destinations:"
S = "publish_hooks_subscriptions:"
W = "publish_hooks_watching:"

EXPECTED: dict[str, Row] = {
    # The deliveries report and its filter refreshes: view only.
    f"{D}deliveries": {"GET": for_delivery_viewers(200), "POST": for_delivery_viewers(405)},
    f"{D}deliveries_results": {
        "GET": for_delivery_viewers(200),
        "POST": for_delivery_viewers(405),
    },
    f"{D}delivery": {"GET": for_delivery_viewers(200), "POST": for_delivery_viewers(405)},
    # Actions: a confirmation page, then the action and a redirect.
    f"{D}redeliver": {"GET": for_redeliverers(200), "POST": for_redeliverers(302)},
    f"{D}cancel": {"GET": for_redeliverers(200), "POST": for_redeliverers(302)},
    f"{D}redeliver_failed": {"GET": for_redeliverers(200), "POST": for_redeliverers(302)},
    f"{D}cancel_pending": {"GET": for_redeliverers(200), "POST": for_redeliverers(302)},
    # A page's deliveries: view_delivery and access to the page (every kind but the superuser
    # edits that page).
    f"{D}page_deliveries": {"GET": for_delivery_viewers(200), "POST": for_delivery_viewers(405)},
    f"{D}page_deliveries_results": {
        "GET": for_delivery_viewers(200),
        "POST": for_delivery_viewers(405),
    },
    # A snippet's deliveries: view_delivery and a permission on the snippet, which only the
    # superuser has here. POST is no method of the view whoever asks.
    f"{D}snippet_deliveries": {
        "GET": answers(viewer=403, redeliverer=403, superuser=200),
        "POST": for_delivery_viewers(405),
    },
    f"{D}snippet_deliveries_results": {
        "GET": answers(viewer=403, redeliverer=403, superuser=200),
        "POST": for_delivery_viewers(405),
    },
    # Capture failures: view only.
    "publish_hooks_capture_failures:index": {
        "GET": for_delivery_viewers(200),
        "POST": for_delivery_viewers(405),
    },
    "publish_hooks_capture_failures:index_results": {
        "GET": for_delivery_viewers(200),
        "POST": for_delivery_viewers(405),
    },
    # Destinations: the managers' screens.
    f"{M}index": {"GET": for_destination_managers(200), "POST": for_destination_managers(405)},
    f"{M}index_results": {
        "GET": for_destination_managers(200),
        "POST": for_destination_managers(405),
    },
    # An empty form: shown again with its errors.
    f"{M}add": {"GET": for_destination_managers(200), "POST": for_destination_managers(200)},
    f"{M}edit": {"GET": for_destination_managers(200), "POST": for_destination_managers(200)},
    f"{M}delete": {"GET": for_destination_managers(200), "POST": for_destination_managers(302)},
    f"{M}history": {"GET": for_destination_managers(200), "POST": for_destination_managers(405)},
    f"{M}history_results": {
        "GET": for_destination_managers(200),
        "POST": for_destination_managers(405),
    },
    f"{M}usage": {"GET": for_destination_managers(200), "POST": for_destination_managers(405)},
    # Generates a secret and shows it once.
    f"{M}rotate_secret": {
        "GET": for_destination_managers(200),
        "POST": for_destination_managers(200),
    },
    # POST-only actions.
    f"{M}enable": {"GET": for_destination_managers(405), "POST": for_destination_managers(302)},
    f"{M}disable": {"GET": for_destination_managers(405), "POST": for_destination_managers(302)},
    f"{M}send_test": {
        "GET": for_destination_managers(405),
        "POST": for_destination_managers(302),
    },
    f"{M}detail": {"GET": for_destination_managers(200), "POST": for_destination_managers(405)},
    # Watching: an editor's own, for a page they can edit (an empty form is shown again with its
    # errors); a snippet needs a permission on its model, which only the superuser has here.
    f"{W}watch_page": {"GET": for_everyone(200), "POST": for_everyone(200)},
    f"{W}page_watchers": {"GET": for_everyone(200), "POST": for_everyone(405)},
    f"{W}watch_snippet": {
        "GET": answers(superuser=200),
        "POST": answers(superuser=200),
    },
    # POST only, and only one's own subscription (each user here posts their own).
    f"{W}unwatch": {"GET": for_everyone(405), "POST": for_everyone(302)},
    # Subscriptions: the administrators' screens.
    f"{S}index": {"GET": for_subscription_admins(200), "POST": for_subscription_admins(405)},
    f"{S}index_results": {
        "GET": for_subscription_admins(200),
        "POST": for_subscription_admins(405),
    },
    f"{S}add": {"GET": for_subscription_admins(200), "POST": for_subscription_admins(200)},
    f"{S}edit": {"GET": for_subscription_admins(200), "POST": for_subscription_admins(200)},
    f"{S}delete": {"GET": for_subscription_admins(200), "POST": for_subscription_admins(302)},
    f"{S}history": {"GET": for_subscription_admins(200), "POST": for_subscription_admins(405)},
    f"{S}history_results": {
        "GET": for_subscription_admins(200),
        "POST": for_subscription_admins(405),
    },
    f"{S}usage": {"GET": for_subscription_admins(200), "POST": for_subscription_admins(405)},
}


def walk(patterns: list[Any], namespace: str = "", route: str = "") -> Iterator[tuple]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk(pattern.url_patterns, inner, route + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield namespace, pattern, route + str(pattern.pattern)


def view_module(pattern: URLPattern) -> str:
    view = getattr(pattern.callback, "view_class", pattern.callback)
    return getattr(view, "__module__", "") or ""


def package_urls() -> dict[str, URLPattern]:
    """Every named URL of the admin that is the package's: under its prefix, served by its
    code, or in a namespace where either holds."""
    found = list(walk(admin_urls.urlpatterns))
    ours = {
        namespace
        for namespace, pattern, route in found
        if route.startswith(URL_PREFIX) or view_module(pattern).startswith("wagtail_publish_hooks")
    }
    selected = {}
    for namespace, pattern, route in found:
        is_ours = (
            (namespace in ours and namespace)
            or route.startswith(URL_PREFIX)
            or view_module(pattern).startswith("wagtail_publish_hooks")
        )
        if is_ours:
            assert pattern.name, f"an unnamed URL of the package: {route}"
            selected[f"{namespace}{pattern.name}"] = pattern
    return selected


def test_every_url_of_the_package_has_a_row():
    names = set(package_urls())
    assert names, "no URL of the package found in the admin URL conf"
    missing = sorted(names - set(EXPECTED))
    assert not missing, f"URLs without a row in EXPECTED (say who may use them): {missing}"
    stale = sorted(set(EXPECTED) - names)
    assert not stale, f"rows for URLs that no longer exist: {stale}"


@pytest.fixture
def editor_page(site_root):
    return site_root.add_child(instance=BlogIndexPage(title="Team news", slug="team-news"))


def url_arguments(pattern: URLPattern, editor_page, user: Any = None) -> dict[str, Any]:
    """Real objects for the URL's arguments, made afresh for each request (an action may
    change or delete them). A subscription of one's own is ``user``'s (someone else's when
    nobody is logged in)."""
    names = set(pattern.pattern.converters)
    delivery = make_delivery(status=DeliveryStatus.FAILED, instance=editor_page)
    make_delivery(status=DeliveryStatus.PENDING)
    destination = ManagedDestination.objects.create(
        alias=f"managed-{ManagedDestination.objects.count()}",
        backend="wagtail_publish_hooks.backends.webhook.WebhookBackend",
        options={"URL": "https://hooks.example.com/publish"},
    )
    advert = Advert.objects.create(text="Advert")
    module = view_module(pattern)
    values: dict[str, Any] = {}
    if "pk" in names:
        if "app_label" in names:
            values.update(app_label="testapp", model_name="advert", pk=advert.pk)
        elif "destination" in module:
            values["pk"] = destination.pk
        elif "watching" in module:
            owner = user or admin_user(f"owner-{Subscription.objects.count()}")
            subscription = Subscription.objects.create(
                user=owner, page=editor_page, events=["page.published"]
            )
            values["pk"] = subscription.pk
        else:
            values["pk"] = delivery.pk
    if "page_id" in names:
        values["page_id"] = editor_page.pk
    if "alias" in names:
        values["alias"] = destination.alias
    unknown = names - set(values) - {"app_label", "model_name"}
    assert not unknown, f"no object known for the URL arguments {unknown}: add one here"
    return values


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_permission_matrix(client, editor_page, name):
    pattern = package_urls().get(name)
    assert pattern is not None, f"{name} is not a URL of the package any more"
    users = {kind: user_of_kind(kind, editor_page=editor_page) for kind in KINDS}
    failures = []
    for method in ("GET", "POST"):
        for kind in KINDS:
            client.logout()
            if users[kind] is not None:
                client.force_login(users[kind])
            url = reverse(name, kwargs=url_arguments(pattern, editor_page, users[kind]))
            response = client.get(url) if method == "GET" else client.post(url)
            expected = EXPECTED[name][method][kind]
            got: Any = response.status_code
            if got == 302 and response["Location"].startswith(reverse("wagtailadmin_login")):
                got = LOGIN
            if got != expected:
                failures.append(f"{method} {url} as {kind}: expected {expected}, got {got}")
    assert not failures, "\n".join(failures)
