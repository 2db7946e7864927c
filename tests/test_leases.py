"""Claims and leases: a delivery is held by one worker at a time."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from wagtail_publish_hooks.delivery import Lease, claim_due_deliveries
from wagtail_publish_hooks.models import Delivery, DeliveryStatus, Event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deliveries():
    event = Event.objects.create(event_type="page.published", payload={})
    return [Delivery.objects.create(event=event, destination=f"d{i}") for i in range(3)]


def test_a_claim_is_exclusive(deliveries):
    token, first = claim_due_deliveries(10, lease_seconds=60)
    assert {d.pk for d in first} == {d.pk for d in deliveries}
    assert all(d.status == DeliveryStatus.SENDING and d.lease_token == token for d in first)
    _, second = claim_due_deliveries(10, lease_seconds=60)
    assert second == []


def test_an_expired_claim_can_be_taken_over(deliveries):
    claim_due_deliveries(10, lease_seconds=60)
    Delivery.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    token, taken = claim_due_deliveries(10, lease_seconds=60)
    assert len(taken) == 3 and all(d.lease_token == token for d in taken)


def test_claims_respect_the_batch_size_and_due_time(deliveries):
    Delivery.objects.filter(pk=deliveries[0].pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5), status=DeliveryStatus.RETRYING
    )
    _, batch = claim_due_deliveries(1, lease_seconds=60)
    assert [d.pk for d in batch] == [deliveries[1].pk]


def test_lease_renewal_skips_a_delivery_taken_over(deliveries):
    token, batch = claim_due_deliveries(10, lease_seconds=60)
    # Another worker took the last delivery after this worker's lease lapsed.
    Delivery.objects.filter(pk=batch[2].pk).update(lease_token=uuid.uuid4())
    lease = Lease(token, 0)  # renew before every delivery
    assert lease.hold(batch[0], batch) is True
    assert lease.hold(batch[1], batch[1:]) is True
    assert lease.hold(batch[2], batch[2:]) is False
    renewed = Delivery.objects.get(pk=batch[1].pk).lease_expires_at
    assert renewed >= timezone.now() - timedelta(seconds=1)


def test_cron_commands_are_quiet_with_verbosity_0(deliveries, configure):
    configure(DESTINATIONS={}, TASK_BACKEND="missing")
    out = io.StringIO()
    call_command("publish_hooks", "prune", verbosity=0, stdout=out)
    assert out.getvalue() == ""
