"""Routing options: EXCLUDE_ALIASES, INCLUDE ["api"], and suspended()."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from django.db import transaction
from standardwebhooks.webhooks import Webhook

from tests.conftest import WEBHOOK
from tests.support.backends import PurgeLikeBackend
from tests.testapp.models import Advert, BlogPage, OtherPage
from wagtail_publish_hooks import emit, includes, on, suspended
from wagtail_publish_hooks.conf import capture_enabled
from wagtail_publish_hooks.models import CaptureFailure, Delivery, Event
from wagtail_publish_hooks.receivers import ReceivedEvent, unregister

pytestmark = pytest.mark.django_db(transaction=True)


def bodies(httpserver, path: str | None = None) -> list[dict]:
    return [
        json.loads(request.get_data())
        for request, _ in httpserver.log
        if path is None or request.path == path
    ]


def publish_with_an_alias(page):
    """Publish ``page`` and give it an alias: its next publish re-publishes the alias too."""
    page.save_revision().publish()
    page.refresh_from_db()
    return page.create_alias(update_slug=f"{page.slug}-alias")


# -- EXCLUDE_ALIASES ------------------------------------------------------------------------------


def test_webhooks_leave_alias_events_out_by_default(
    webhook_destination, httpserver, draft_blog_page
):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")
    alias = publish_with_an_alias(draft_blog_page)
    httpserver.clear_log()

    draft_blog_page.title = "Hello again"
    draft_blog_page.save_revision().publish()
    draft_blog_page.refresh_from_db()
    draft_blog_page.unpublish()  # unpublishes the alias too

    assert [(b["type"], b["data"]["page"]["id"]) for b in bodies(httpserver)] == [
        ("page.published", draft_blog_page.pk),
        ("page.unpublished", draft_blog_page.pk),
    ]
    # No destination wanted the alias's events: none was recorded.
    assert not Event.objects.filter(object_id=str(alias.pk)).exists()


def test_exclude_aliases_false_receives_them(webhook_destination, httpserver, draft_blog_page):
    webhook_destination(EXCLUDE_ALIASES=False)
    httpserver.expect_request("/hooks").respond_with_data("ok")
    alias = publish_with_an_alias(draft_blog_page)
    httpserver.clear_log()

    draft_blog_page.save_revision().publish()
    draft_blog_page.refresh_from_db()
    draft_blog_page.unpublish()

    assert sorted(
        (b["type"], b["data"]["page"]["id"], b["data"]["alias"]) for b in bodies(httpserver)
    ) == [
        ("page.published", draft_blog_page.pk, False),
        ("page.published", alias.pk, True),
        ("page.unpublished", draft_blog_page.pk, False),
        ("page.unpublished", alias.pk, True),
    ]


def test_the_default_comes_from_the_backend(configure, httpserver, draft_blog_page):
    httpserver.expect_request("/hooks").respond_with_data("ok")
    PurgeLikeBackend.received.clear()
    configure(
        DESTINATIONS={
            "purge": {"BACKEND": "tests.support.backends.PurgeLikeBackend"},
            "purge-no-aliases": {
                "BACKEND": "tests.support.backends.PurgeLikeBackend",
                "EXCLUDE_ALIASES": True,
            },
            "consumer": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/hooks")}},
        }
    )
    alias = publish_with_an_alias(draft_blog_page)
    Delivery.objects.all().delete()

    draft_blog_page.save_revision().publish()

    assert sorted(Delivery.objects.values_list("destination", "event__object_id")) == sorted(
        [
            ("consumer", str(draft_blog_page.pk)),
            ("purge", str(draft_blog_page.pk)),
            ("purge", str(alias.pk)),
            ("purge-no-aliases", str(draft_blog_page.pk)),
        ]
    )
    PurgeLikeBackend.received.clear()


# -- INCLUDE ["api"] ------------------------------------------------------------------------------


@pytest.fixture
def two_consumers(configure, httpserver, secret):
    """``with-api`` asks for the API document, ``plain`` does not."""
    httpserver.expect_request("/with-api").respond_with_data("ok")
    httpserver.expect_request("/plain").respond_with_data("ok")

    def apply(events=None):
        extra = {"EVENTS": events} if events else {}
        return configure(
            DESTINATIONS={
                "with-api": {
                    "BACKEND": WEBHOOK,
                    "INCLUDE": ["api"],
                    "OPTIONS": {"URL": httpserver.url_for("/with-api"), "SECRET": secret},
                    **extra,
                },
                "plain": {
                    "BACKEND": WEBHOOK,
                    "OPTIONS": {"URL": httpserver.url_for("/plain"), "SECRET": secret},
                    **extra,
                },
            }
        )

    return apply


def test_api_document_goes_only_to_the_destination_that_asked(
    two_consumers, httpserver, secret, client, draft_blog_page
):
    two_consumers()
    draft_blog_page.intro = "An intro"
    draft_blog_page.body = "<p>Some <b>rich</b> text</p>"
    with transaction.atomic():
        draft_blog_page.save_revision().publish()

    [with_api] = [
        (request, Webhook(secret).verify(request.get_data(), dict(request.headers)))
        for request, _ in httpserver.log
        if request.path == "/with-api"
    ]
    [plain] = bodies(httpserver, "/plain")
    api = with_api[1]["data"]["page"].pop("api")

    # Exactly what Wagtail's API answers for the page, built without a request.
    response = client.get(f"/api/v2/pages/{draft_blog_page.pk}/")
    assert response.status_code == 200
    assert api == response.json()
    assert api["id"] == draft_blog_page.pk
    assert api["meta"]["type"] == "testapp.BlogPage"
    assert api["meta"]["detail_url"] == f"http://localhost/api/v2/pages/{draft_blog_page.pk}/"
    assert api["meta"]["html_url"] == "http://localhost/news/hello-world/"
    assert api["meta"]["parent"]["id"] == draft_blog_page.get_parent().pk
    assert api["intro"] == "An intro"
    assert api["body"] == "<p>Some <b>rich</b> text</p>"

    # Otherwise both destinations got the same document.
    assert "api" not in plain["data"]["page"]
    assert with_api[1] == plain
    event = Event.objects.get()
    assert event.payload == plain
    assert event.included_data == {"api": api}
    assert dict(event.deliveries.values_list("destination", "include")) == {
        "with-api": ["api"],
        "plain": [],
    }


def test_api_document_is_built_only_when_a_routed_destination_asks(
    configure, httpserver, blog_index, monkeypatch
):
    httpserver.expect_request("/x").respond_with_data("ok")
    calls = []
    real = includes.api_document
    monkeypatch.setattr(
        includes, "api_document", lambda obj, *args: calls.append(obj.pk) or real(obj, *args)
    )
    configure(
        DESTINATIONS={
            "others-only": {
                "BACKEND": WEBHOOK,
                "MODELS": ["testapp.OtherPage"],
                "INCLUDE": ["api"],
                "OPTIONS": {"URL": httpserver.url_for("/x")},
            },
            "everything": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/x")}},
        }
    )
    blog = BlogPage(title="Blog", slug="blog")
    blog_index.add_child(instance=blog)
    blog.save_revision().publish()
    assert calls == []
    other = OtherPage(title="Other", slug="other")
    blog_index.add_child(instance=other)
    other.save_revision().publish()
    assert calls == [other.pk]


def test_a_page_that_cannot_be_serialised_still_sends_its_event(
    two_consumers, httpserver, draft_blog_page, monkeypatch, caplog
):
    def broken(page, *args):
        raise RuntimeError("serialiser exploded")

    monkeypatch.setattr(includes, "api_document", broken)
    caplog.set_level(logging.ERROR, logger="wagtail_publish_hooks")
    two_consumers()
    draft_blog_page.save_revision().publish()

    [with_api] = bodies(httpserver, "/with-api")
    assert with_api["data"]["page"]["api"] is None
    # Not only logged: recorded as a capture failure of the API document, for the admin.
    assert "could not capture data for page.published" in caplog.text
    failure = CaptureFailure.objects.get()
    assert (failure.event_type, failure.destination) == ("page.published", "INCLUDE api")
    assert failure.error_type.endswith("RuntimeError")


def test_custom_events_about_a_page_carry_it_as_object_api(
    two_consumers, httpserver, draft_blog_page
):
    draft_blog_page.save_revision().publish()
    two_consumers(events=["shop.*"])
    httpserver.clear_log()
    emit("shop.featured", instance=draft_blog_page)
    emit("shop.featured", instance=Advert.objects.create(text="Not a page"))

    with_api = bodies(httpserver, "/with-api")
    assert [b["data"]["object"]["type"] for b in with_api] == ["testapp.BlogPage", "testapp.Advert"]
    assert with_api[0]["data"]["object"]["api"]["id"] == draft_blog_page.pk
    assert with_api[0]["data"]["object"]["api"]["meta"]["type"] == "testapp.BlogPage"
    assert "api" not in with_api[1]["data"]["object"]  # only pages have an API document
    assert all("api" not in b["data"]["object"] for b in bodies(httpserver, "/plain"))


def test_receivers_can_ask_for_the_api_document(configure, draft_blog_page):
    configure()
    received: list[ReceivedEvent] = []

    def durable(event: ReceivedEvent) -> None:
        received.append(event)

    def in_process(event: ReceivedEvent) -> None:
        received.append(event)

    on("page.published", include=["api"])(durable)
    on("page.published", include=["api"], durable=False)(in_process)
    try:
        draft_blog_page.save_revision().publish()
    finally:
        unregister(durable)
        unregister(in_process)
    assert len(received) == 2
    assert [e.data["page"]["api"]["id"] for e in received] == [draft_blog_page.pk] * 2
    assert received[0].data["page"]["api"] == received[1].data["page"]["api"]


# -- suspended() ----------------------------------------------------------------------------------


def test_a_publish_inside_suspended_records_nothing(
    webhook_destination, httpserver, draft_blog_page, blog_index
):
    webhook_destination()
    httpserver.expect_request("/hooks").respond_with_data("ok")
    with suspended():
        draft_blog_page.save_revision().publish()
    assert Event.objects.count() == 0
    assert httpserver.log == []

    other = BlogPage(title="After", slug="after")
    blog_index.add_child(instance=other)
    other.save_revision().publish()
    assert [b["data"]["page"]["id"] for b in bodies(httpserver)] == [other.pk]


def test_suspended_nests_and_survives_exceptions(configure):
    configure()
    assert capture_enabled()
    with suspended():
        with suspended():
            assert not capture_enabled()
        assert not capture_enabled()  # still inside the outer block
        with pytest.raises(ZeroDivisionError), suspended():
            1 / 0  # noqa: B018
        assert not capture_enabled()
    assert capture_enabled()


def test_suspended_is_local_to_the_thread(configure, draft_blog_page, blog_index):
    configure(
        DESTINATIONS={"recorder": {"BACKEND": "tests.support.backends.RecordingBackend"}},
    )
    seen_in_thread = []
    other = BlogPage(title="Other thread", slug="other-thread")
    blog_index.add_child(instance=other)
    other.save_revision()

    def publish_elsewhere():
        from django.db import connection

        try:
            seen_in_thread.append(capture_enabled())
            other.get_latest_revision().publish()
        finally:
            connection.close()

    with suspended():
        draft_blog_page.save_revision().publish()
        thread = threading.Thread(target=publish_elsewhere)
        thread.start()
        thread.join()

    assert seen_in_thread == [True]
    assert list(Event.objects.values_list("object_id", flat=True)) == [str(other.pk)]


# -- Operational events -------------------------------------------------------------------------


def test_operational_events_go_only_where_events_name_them(configure):
    from wagtail_publish_hooks.events import CAPTURE_FAILED, DELIVERY_FAILED, DESTINATION_DISABLED
    from wagtail_publish_hooks.routing import destinations_for, operational_routes

    def webhook(**keys):
        return {"BACKEND": WEBHOOK, "OPTIONS": {"URL": "https://x.example/"}, **keys}

    configure(
        DESTINATIONS={
            "default": webhook(),
            "everything": webhook(EVENTS=["*"]),
            "alerts": webhook(EVENTS=["publish_hooks.*"]),
            "failures": webhook(EVENTS=["publish_hooks.delivery_failed"]),
            # MODELS filters page events only: operational events are about no model.
            "blog_alerts": webhook(
                EVENTS=["page.*", "publish_hooks.*"], MODELS=["testapp.BlogPage"]
            ),
        }
    )
    assert destinations_for(DELIVERY_FAILED, None) == ["alerts", "failures", "blog_alerts"]
    assert destinations_for(DESTINATION_DISABLED, None) == ["alerts", "blog_alerts"]
    assert destinations_for(CAPTURE_FAILED, BlogPage) == ["alerts", "blog_alerts"]
    assert destinations_for(CAPTURE_FAILED, OtherPage) == ["alerts", "blog_alerts"]
    # "*" still takes every other event.
    assert destinations_for("page.published", OtherPage) == ["default", "everything"]
    # Never to the destination the event is about.
    about_alerts = [route.alias for route in operational_routes(DELIVERY_FAILED, "alerts")]
    assert about_alerts == ["failures", "blog_alerts"]


def test_a_durable_receiver_can_take_operational_events_about_others(configure):
    from wagtail_publish_hooks.events import DELIVERY_FAILED
    from wagtail_publish_hooks.routing import operational_routes

    configure(DESTINATIONS={})

    @on("publish_hooks.delivery_failed", name="oncall")
    def page_the_on_call(event: ReceivedEvent) -> None:
        pass

    try:
        name = next(r.alias for r in operational_routes(DELIVERY_FAILED, "consumer"))
        assert name == "python:oncall"
        assert operational_routes(DELIVERY_FAILED, name) == []
    finally:
        unregister(page_the_on_call)
