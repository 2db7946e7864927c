"""A slow destination holds up only its own deliveries, not the others of the run."""

from __future__ import annotations

import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from tests.conftest import WEBHOOK
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slow_server():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()

    def slow(request):
        time.sleep(1.5)
        return Response("slow ok")

    server.expect_request("/slow").respond_with_handler(slow)
    yield server
    server.clear()
    server.stop()


def configure_two(configure, httpserver, slow_server, **settings):
    httpserver.expect_request("/fast").respond_with_data("fast ok")
    configure(
        DESTINATIONS={
            # "slow" is first: sent in order, it would hold "fast" up for 1.5 s.
            "slow": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": slow_server.url_for("/slow")}},
            "fast": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/fast")}},
        },
        TASK_BACKEND="missing",  # nothing runs on commit: the test runs the delivery loop
        **settings,
    )


def started(alias: str):
    return Attempt.objects.get(delivery__destination=alias).started_at


def test_destinations_are_sent_side_by_side(
    configure, httpserver, slow_server, draft_blog_page, deliver
):
    configure_two(configure, httpserver, slow_server)
    draft_blog_page.save_revision().publish()
    summary = deliver()

    assert summary.delivered == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    gap = (started("fast") - started("slow")).total_seconds()
    assert gap < 1.0  # the fast one did not wait for the slow one


def test_concurrency_1_sends_in_order(configure, httpserver, slow_server, draft_blog_page, deliver):
    configure_two(configure, httpserver, slow_server, CONCURRENCY=1)
    draft_blog_page.save_revision().publish()
    deliver()
    gap = (started("fast") - started("slow")).total_seconds()
    assert gap >= 1.4


def test_one_destination_keeps_its_order(configure, httpserver, blog_index, deliver):
    from tests.testapp.models import BlogPage

    httpserver.expect_request("/fast").respond_with_data("ok")
    configure(
        DESTINATIONS={
            "fast": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/fast")}}
        },
        TASK_BACKEND="missing",
    )
    for i in range(5):
        page = BlogPage(title=f"p{i}", slug=f"p{i}")
        blog_index.add_child(instance=page)
        page.save_revision().publish()
    deliver()
    import json

    titles = [json.loads(r.get_data())["data"]["page"]["title"] for r, _ in httpserver.log]
    assert titles == [f"p{i}" for i in range(5)]
