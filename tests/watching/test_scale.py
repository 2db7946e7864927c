"""Watching at scale: a thousand watchers of one section cost capture nothing more than one,
and the worker resolves them in a fixed number of queries."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from wagtail.models import GroupPagePermission

from tests.support.admin_users import admin_user, permission
from tests.testapp.models import BlogPage
from wagtail_publish_hooks.models import Delivery, Event
from wagtail_publish_hooks.outbox import record_deliveries
from wagtail_publish_hooks.subscribers import recipients_of, subscriptions_present, target_of
from wagtail_publish_hooks.subscription_models import NotificationPreferences, Subscription

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = ["page.published"]


@pytest.fixture(autouse=True)
def watching(configure):
    configure()


def add_watchers(section, first: int, last: int, group: Group) -> None:
    """Users ``first`` to ``last - 1``, editors of ``section`` (through ``group``), each
    watching it with an hourly digest."""
    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        user_model(username=f"watcher{n}", email=f"watcher{n}@example.com")
        for n in range(first, last)
    )
    users = list(user_model.objects.filter(username__in=[u.username for u in users]))
    user_model.groups.through.objects.bulk_create(
        user_model.groups.through(user_id=user.pk, group_id=group.pk) for user in users
    )
    NotificationPreferences.objects.bulk_create(
        NotificationPreferences(user=user, frequency="hourly") for user in users
    )
    subscriptions = [
        Subscription(user=user, page=section, include_subpages=True, events=EVENTS)
        for user in users
    ]
    subscriptions[0].save()  # one through save(), so that this process sees there are some
    Subscription.objects.bulk_create(subscriptions[1:])


def editors(section) -> Group:
    group = Group.objects.create(name="Section desk")
    group.permissions.add(permission("wagtailadmin.access_admin"))
    GroupPagePermission.objects.create(
        group=group, page=section, permission=permission("wagtailcore.change_page")
    )
    return group


def publish_counting_queries(page, user) -> int:
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        page.save_revision(user=user).publish(user=user)
    return len(queries)


@pytest.mark.stress  # about 20 s
def test_a_thousand_watchers_and_a_bulk_publish_of_a_hundred_pages(blog_index, deliver):
    started = time.monotonic()
    publisher = admin_user("publisher", superuser=True)
    group = editors(blog_index)
    pages = []
    for n in range(100):
        page = BlogPage(title=f"Page {n}", slug=f"page-{n}", live=False)
        blog_index.add_child(instance=page)
        pages.append(page)

    add_watchers(blog_index, 0, 1, group)
    publish_counting_queries(pages[0], publisher)  # warms Django's and Wagtail's caches
    subscriptions_present.invalidate()  # as adding watchers below does
    with_one = publish_counting_queries(pages[1], publisher)
    add_watchers(blog_index, 1, 1000, group)
    with_a_thousand = publish_counting_queries(pages[2], publisher)
    assert with_a_thousand == with_one

    with transaction.atomic():
        for page in pages[3:]:
            page.save_revision(user=publisher).publish(user=publisher)
    deliver()

    digests = Delivery.objects.filter(destination__startswith="watch:")
    assert digests.count() == 1000
    assert Delivery.objects.filter(destination="watchers").count() == 100
    first, last = digests.order_by("pk")[0], digests.order_by("-pk")[0]
    assert len(first.covered_events()) == 100
    assert len(last.covered_events()) == 98  # watching from the third publish on
    print(f"1,000 watchers x 100 pages: {time.monotonic() - started:.1f} s")


def test_resolution_takes_a_fixed_number_of_queries(blog_index):
    publisher = admin_user("publisher", superuser=True)
    group = editors(blog_index)
    page = BlogPage(title="Watched", slug="watched", live=False)
    blog_index.add_child(instance=page)
    add_watchers(blog_index, 0, 1, group)
    Delivery.objects.all().delete()
    page.save_revision(user=publisher).publish(user=publisher)
    event = Event.objects.get(event_type="page.published")

    def resolve() -> tuple[int, dict]:
        with CaptureQueriesContext(connection) as queries:
            recipients = recipients_of(target_of(event))
        return len(queries), recipients

    one_query_count, one = resolve()
    assert len(one) == 1
    add_watchers(blog_index, 1, 1000, group)
    many_query_count, many = resolve()
    assert len(many) == 1000
    assert many_query_count == one_query_count

    with CaptureQueriesContext(connection) as writes:
        recorded = record_deliveries(event, {f"watch:{pk}": 3600.0 for pk in many})
    # Bulk statements (split in batches by the database's limit on parameters), never one or
    # more per recipient.
    assert len(writes) < 40
    # The first watcher had theirs from the publish: a fan-out sent again records no other.
    assert recorded == 999
    assert Delivery.objects.filter(destination__startswith="watch:").count() == 1000
