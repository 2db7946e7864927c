"""A destination manager, in a real headless Chromium, tries to read secrets they did not type.

They create a webhook destination and see its generated signing secret once; edit it and keep
it; then switch its backend, or point it at another host, and are asked to enter the secrets
again. No page they are shown ever contains a stored secret.
"""

from __future__ import annotations

import json
import secrets

import pytest
from django.contrib.auth.models import Group, Permission

from tests.conftest import WEBHOOK
from tests.support.browser import browser_page, log_in  # noqa: F401
from wagtail_publish_hooks.models import ManagedDestination

pytestmark = pytest.mark.django_db(transaction=True)

SLACK = "wagtail_publish_hooks.backends.slack.SlackBackend"
REVALIDATE = "wagtail_publish_hooks.backends.revalidate.RevalidateBackend"
PREFIX = "/admin/publish-hooks/destinations"


@pytest.fixture
def manager(django_user_model, configure):
    configure(DESTINATIONS={})
    group = Group.objects.create(name="destination managers")
    for codename in (
        "access_admin",
        "view_manageddestination",
        "add_manageddestination",
        "change_manageddestination",
    ):
        group.permissions.add(Permission.objects.get(codename=codename))
    user = django_user_model.objects.create_user("manager", "m@example.com", "password")
    user.groups.add(group)
    return user


class Pages:
    """Every HTML page the browser was shown, to search for secrets at the end."""

    def __init__(self, page):
        self.page = page
        self.seen: list[str] = []

    def goto(self, address: str) -> None:
        self.page.goto(address)
        self.keep()

    def keep(self) -> None:
        self.page.wait_for_load_state()
        self.seen.append(self.page.content())

    def submit(self) -> None:
        self.page.locator("form button[type=submit]").last.click()
        self.keep()

    def fill_options(self, options: dict) -> None:
        self.page.fill("#id_options", json.dumps(options))

    def options_shown(self) -> dict:
        return json.loads(self.page.input_value("#id_options"))


def test_secrets_are_shown_once_kept_and_demanded_again_for_a_new_target(
    browser_page,  # noqa: F811
    live_server,
    manager,
    httpserver,
):
    page = browser_page
    base = live_server.url
    pages = Pages(page)
    log_in(page, base, "manager", "password")
    bearer = "Bearer " + secrets.token_hex(16)
    hooks_url = httpserver.url_for("/hooks")

    # Create a webhook destination: the generated signing secret is shown once.
    pages.goto(f"{base}{PREFIX}/new/")
    page.fill("#id_alias", "consumer")
    page.select_option("#id_backend", WEBHOOK)
    pages.fill_options({"URL": hooks_url, "HEADERS": {"Authorization": bearer}})
    page.check("input[name=secret_mode][value=generate]")
    pages.submit()
    signing = page.input_value("#wph-secret")
    assert signing.startswith("whsec_")
    row = ManagedDestination.objects.get(alias="consumer")
    assert row.plain_secrets() == [signing]

    # The edit form shows placeholders, never the values; saved as it is, both are kept.
    pages.goto(f"{base}{PREFIX}/edit/{row.pk}/")
    assert pages.options_shown() == {"URL": hooks_url, "HEADERS": {"Authorization": "[kept: set]"}}
    assert page.is_checked("input[name=secret_mode][value=keep]")
    page.fill("#id_events", "page.published")
    pages.submit()
    page.wait_for_url(f"{base}{PREFIX}/view/consumer")
    pages.keep()
    row.refresh_from_db()
    assert row.plain_secrets() == [signing]
    assert row.plain_options()["HEADERS"] == {"Authorization": bearer}
    assert row.events == ["page.published"]

    # Pointed at another host while keeping the header: the form demands it again.
    pages.goto(f"{base}{PREFIX}/edit/{row.pk}/")
    elsewhere = hooks_url.replace("localhost", "127.0.0.2")
    pages.fill_options({"URL": elsewhere, "HEADERS": {"Authorization": "[kept: set]"}})
    pages.submit()
    assert "enter it again" in page.content()
    assert "the target changed" in page.content()
    # The signing secret only signs: it may stay. Typed again, the header goes with the host.
    pages.fill_options({"URL": elsewhere, "HEADERS": {"Authorization": "Bearer retyped"}})
    pages.submit()
    page.wait_for_url(f"{base}{PREFIX}/view/consumer")
    row.refresh_from_db()
    assert row.plain_options() == {"URL": elsewhere, "HEADERS": {"Authorization": "Bearer retyped"}}
    assert row.plain_secrets() == [signing]

    # Switched to the revalidation backend (which sends its SECRET) while keeping the secret.
    pages.goto(f"{base}{PREFIX}/edit/{row.pk}/")
    page.select_option("#id_backend", REVALIDATE)
    pages.fill_options({"URL": elsewhere})
    pages.submit()
    assert "The stored secret is not kept: the backend changed" in page.content()
    row.refresh_from_db()
    assert row.backend == WEBHOOK

    for html in pages.seen:
        assert bearer not in html
        assert "Bearer retyped" not in html
    assert sum(signing in html for html in pages.seen) == 1  # the page that showed it once


def test_a_slack_url_never_reaches_the_page_when_the_backend_is_switched(
    browser_page,  # noqa: F811
    live_server,
    manager,
):
    page = browser_page
    base = live_server.url
    pages = Pages(page)
    token = secrets.token_hex(16)
    slack_url = f"https://hooks.slack.com/services/T0/B0/{token}"
    row = ManagedDestination.objects.create(alias="team", backend=SLACK, options={"URL": slack_url})
    log_in(page, base, "manager", "password")

    pages.goto(f"{base}{PREFIX}/edit/{row.pk}/")
    assert pages.options_shown() == {"URL": "[kept: set]"}
    page.select_option("#id_backend", WEBHOOK)
    page.check("input[name=secret_mode][value=none]")
    pages.submit()
    assert "the backend changed" in page.content()
    assert pages.options_shown() == {"URL": "[kept: set]"}
    pages.goto(f"{base}{PREFIX}/")
    pages.goto(f"{base}{PREFIX}/view/team")
    row.refresh_from_db()
    assert row.backend == SLACK and row.plain_options() == {"URL": slack_url}
    for html in pages.seen:
        assert token not in html
