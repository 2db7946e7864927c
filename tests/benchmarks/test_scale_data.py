"""The generated history the benchmarks at scale run on (benchmarks/scale_data.py), at a small
size: consistent rows the package's own code reads as it reads real ones."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from benchmarks.scale_data import DESTINATIONS, Size, populate
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus, Event

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = Size(deliveries=3_000, events=1_000, attempts=6_000, events_per_page=20)


def test_the_history_has_the_sizes_spread_and_statuses_asked_for(draft_blog_page):
    before = timezone.now()
    counts = populate(SMALL, pages=[draft_blog_page])

    assert counts["events"] == Event.objects.count() == 1_000
    assert counts["deliveries"] == Delivery.objects.count() == 3_000
    assert counts["attempts"] == Attempt.objects.count()
    assert 5_000 < counts["attempts"] < 7_000  # about two per delivery
    # Spread over 60 days, to the 20 destinations.
    oldest = Event.objects.order_by("created_at").first()
    assert oldest.created_at < before - timedelta(days=55)
    assert set(Delivery.objects.values_list("destination", flat=True)) == set(DESTINATIONS)
    statuses = Counter(Delivery.objects.values_list("status", flat=True))
    assert 0.07 < statuses[DeliveryStatus.FAILED] / 3_000 < 0.13
    assert statuses[DeliveryStatus.DELIVERED] > 2_500
    # The real page has a history of its own.
    assert (
        Event.objects.filter(
            content_type_id=draft_blog_page.content_type_id, object_id=str(draft_blog_page.pk)
        ).count()
        == 20
    )


def test_rows_hang_together_and_new_rows_follow_them(draft_blog_page):
    populate(SMALL, pages=[draft_blog_page])

    # Each delivery's attempt count is its attempt rows, numbered from 1.
    sample = Delivery.objects.order_by("?")[:50]
    for delivery in sample:
        numbers = list(delivery.attempt_set.values_list("number", flat=True))
        assert numbers == list(range(1, delivery.attempts + 1))
    failed = Delivery.objects.filter(status=DeliveryStatus.FAILED).first()
    assert failed.last_error and failed.delivered_at is None
    # The payload is what the package reads.
    event = Event.objects.first()
    assert event.payload["id"] == event.event_id and event.payload["type"] == event.event_type
    # Ids and sequences were moved past the generated rows: the package writes after them.
    new = Event.objects.create(event_type="page.published", payload={})
    assert new.pk > Event.objects.exclude(pk=new.pk).order_by("-pk").first().pk
    Delivery.objects.create(event=new, destination="dest-00")


def test_the_same_seed_gives_the_same_rows():
    from datetime import UTC, datetime

    from benchmarks.scale_data import build_rows

    def rows():
        return build_rows(
            SMALL,
            now=datetime(2026, 12, 1, tzinfo=UTC),
            first_ids={"event": 1, "delivery": 1, "attempt": 1, "coalesced": 1},
            content_types={"page": [1, 2], "snippet": [3], "image": [4], "document": [5]},
        )

    first, second = rows(), rows()
    assert first.deliveries == second.deliveries and first.events == second.events


def test_the_destinations_of_the_history_are_valid_settings():
    from benchmarks.scale_data import destination_settings
    from wagtail_publish_hooks.checks.destinations import check_destination

    configured = destination_settings("http://127.0.0.1:9/")

    assert sorted(configured) == DESTINATIONS
    for alias, config in configured.items():
        assert check_destination(alias, config) == []
