"""Responses whose text the database cannot store as it came: a NUL character.

PostgreSQL refuses a NUL (``\\x00``) in a ``text`` column and a ``\\u0000`` escape in ``jsonb``.
A destination that answers with one in its body or a header value must still have its attempt
recorded (the character replaced), and must cost nothing to the other deliveries committed
with it. Run on both databases: SQLite stores the text as it is, PostgreSQL would refuse it.
"""

from __future__ import annotations

import pytest

from tests.conftest import WEBHOOK
from tests.support import sinks
from wagtail_publish_hooks.encoding import storable
from wagtail_publish_hooks.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)

NUL_BODY = b"accepted\x00but odd"


@pytest.mark.parametrize(
    ("status", "expected_status", "expected_outcome"),
    [
        (200, DeliveryStatus.DELIVERED, AttemptOutcome.SUCCESS),
        (503, DeliveryStatus.RETRYING, AttemptOutcome.RETRY),
    ],
)
def test_a_nul_in_the_body_or_a_header_is_recorded_replaced(
    status, expected_status, expected_outcome, configure, draft_blog_page
):
    headers = {"Content-Type": "text/plain", "X-Odd": "a\x00b"}
    with sinks.Sink(sinks.respond(status, NUL_BODY, headers)) as sink:
        configure(
            DESTINATIONS={"consumer": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url()}}},
            RETRY_SCHEDULE=[60],
            MAX_ATTEMPTS=3,
        )
        draft_blog_page.save_revision().publish()
        assert len(sink.requests) == 1
    delivery = Delivery.objects.get()
    assert delivery.status == expected_status, delivery.last_error
    assert delivery.attempts == 1
    attempt = Attempt.objects.get()
    assert attempt.outcome == expected_outcome
    assert attempt.response_body == "accepted\ufffdbut odd"
    assert attempt.response_headers["X-Odd"] == "a\ufffdb"
    assert "\x00" not in delivery.last_error


def test_a_nul_answer_costs_nothing_to_the_outcomes_committed_with_it(
    configure, draft_blog_page, settings, deliver
):
    """Three deliveries in one batch, one commit: the odd answer in the middle is recorded
    with the others, and each keeps its own record."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    plain = sinks.respond(200, b"fine", keep_alive=False)
    odd = sinks.respond(200, NUL_BODY, {"X-Odd": "\x00"}, keep_alive=False)
    with sinks.Sink(sinks.cycle(plain, odd, plain)) as sink:
        configure(DESTINATIONS={"consumer": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url()}}})
        for _ in range(3):
            draft_blog_page.save_revision().publish()
        assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 3
        summary = deliver()
        assert len(sink.requests) == 3
    assert summary.as_dict() == {"delivered": 3, "retrying": 0, "failed": 0}
    bodies = list(Attempt.objects.order_by("delivery_id").values_list("response_body", flat=True))
    assert bodies == ["fine", "accepted\ufffdbut odd", "fine"]


def test_storable_replaces_nul_and_lone_surrogates_everywhere_in_a_document():
    document = {
        "a\x00": ["x\x00y", {"deep": "\ud800z"}, 3, None, True],
        "plain": "déjà vu",
        "pair": "\U0001f600",
    }
    assert storable(document) == {
        "a\ufffd": ["x\ufffdy", {"deep": "\ufffdz"}, 3, None, True],
        "plain": "déjà vu",
        "pair": "\U0001f600",
    }
    assert storable(("t\x00",)) == ["t\ufffd"]
    assert storable(7) == 7
