"""Watching's deliveries in the deliveries report: listed and redeliverable like any other, and
held to the report's rules on what a viewer may read."""

from __future__ import annotations

import html

import pytest
from django.core import mail

from tests.support.admin import admin_url, rows
from tests.support.admin_users import admin_user, logged_in
from tests.testapp.models import BlogIndexPage, BlogPage
from wagtail_publish_hooks.delivery import redeliver
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus
from wagtail_publish_hooks.subscription_models import Subscription

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_TITLE = "Secret merger plans"


@pytest.fixture(autouse=True)
def watching(configure):
    configure()


def test_watch_deliveries_are_listed_withheld_and_redeliverable(site_root, deliver):
    board = site_root.add_child(instance=BlogIndexPage(title="Board", slug="board"))
    news = site_root.add_child(instance=BlogIndexPage(title="News", slug="news"))
    director = admin_user("director", superuser=True)
    director.email = "director@example.com"
    director.save()
    Subscription.objects.create(
        user=director, page=board, include_subpages=True, events=["page.published"]
    )
    author = admin_user("author", superuser=True)
    secret = board.add_child(instance=BlogPage(title=SECRET_TITLE, slug="secret", live=False))
    secret.save_revision(user=author).publish(user=author)
    assert len(mail.outbox) == 1
    watch = Delivery.objects.get(destination=f"watch:{director.pk}")
    assert watch.status == DeliveryStatus.DELIVERED

    listed = rows(logged_in(director).get(admin_url("deliveries_results")))
    assert any(f"watch:{director.pk}" in row and SECRET_TITLE in row for row in listed)

    # A viewer of the report who edits only News sees the row, never the page's title.
    viewer = admin_user(
        "viewer", "wagtail_publish_hooks.view_delivery", pages={news: ("change_page",)}
    )
    response = logged_in(viewer).get(admin_url("deliveries_results"))
    content = html.unescape(response.content.decode())
    assert f"watch:{director.pk}" in content
    assert SECRET_TITLE not in content

    assert redeliver(Delivery.objects.filter(pk=watch.pk)) == 1
    deliver()
    watch.refresh_from_db()
    assert watch.status == DeliveryStatus.DELIVERED
    # As with the email backend, an address a delivery reached is never mailed again.
    last = Attempt.objects.filter(delivery=watch).order_by("-number").first()
    assert (last.number, last.response_body) == (2, "already sent: director@example.com")
    assert len(mail.outbox) == 1


def test_status_names_watchings_backends(site_root, deliver):
    from io import StringIO

    from django.core.management import call_command

    editor = admin_user("editor", superuser=True)
    editor.email = "editor@example.com"
    editor.save()
    Subscription.objects.create(user=editor, page=site_root, events=["page.published"])
    site_root.save_revision().publish()
    out = StringIO()
    call_command("publish_hooks", "status", stdout=out)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines() if line.strip()}
    assert "WatchersBackend" in lines["watchers"]
    assert "WatchBackend" in lines[f"watch:{editor.pk}"]


def test_the_report_filters_watchings_deliveries(site_root):
    editor = admin_user("editor", superuser=True)
    Subscription.objects.create(user=editor, page=site_root, events=["page.published"])
    site_root.save_revision().publish()
    client = logged_in(editor)

    def destinations(**query) -> set[str]:
        listed = rows(client.get(admin_url("deliveries_results"), query))
        return {word for row in listed for word in row.split() if word.startswith("watch")}

    assert destinations(destination="-watch") == {f"watch:{editor.pk}"}
    assert destinations(destination="watchers") == {"watchers"}
    assert destinations(destination=f"watch:{editor.pk}") == {f"watch:{editor.pk}"}
    assert destinations(destination="-removed") == set()
