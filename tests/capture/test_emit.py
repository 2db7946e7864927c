"""Custom events: ``emit()`` and ``register_signal()`` go through the same outbox as publishes."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import Signal
from standardwebhooks.webhooks import Webhook

from tests.testapp import receivers as testapp_receivers
from tests.testapp.models import Advert
from wagtail_publish_hooks import custom_events, emit, register_signal, suspended
from wagtail_publish_hooks.models import CaptureFailure, Delivery, DeliveryStatus, Event

pytestmark = pytest.mark.django_db(transaction=True)

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

order_refunded = Signal()


@pytest.fixture
def advert() -> Advert:
    return Advert.objects.create(text="Summer sale")


@pytest.fixture
def editor(django_user_model):
    return django_user_model.objects.create_user("editor", "editor@example.com", "pw")


@pytest.fixture
def bodies(httpserver):
    """The JSON bodies the loopback consumer received, in order."""
    httpserver.expect_request("/hooks").respond_with_data("ok")

    def read() -> list[dict]:
        return [json.loads(request.get_data()) for request, _ in httpserver.log]

    return read


@pytest.fixture
def signals_cleanup():
    connected: list[tuple[Signal, str, object]] = []
    yield connected
    for signal, event_type, sender in connected:
        signal.disconnect(
            sender=sender, dispatch_uid=f"wagtail_publish_hooks.register_signal:{event_type}"
        )


def test_emit_delivers_a_signed_custom_event(
    webhook_destination, httpserver, secret, bodies, advert, editor
):
    webhook_destination(EVENTS=["shop.*"])
    other = Advert.objects.create(text="Winter sale")
    shipped_at = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    with transaction.atomic():
        event = emit(
            "shop.order_shipped",
            instance=advert,
            actor=editor,
            target=other,
            data={"carrier": "DHL", "shipped_at": shipped_at, "weight": Decimal("1.50")},
        )
        assert httpserver.log == []  # sent after commit only

    assert event is not None
    request, _ = httpserver.log[0]
    body = Webhook(secret).verify(request.get_data(), dict(request.headers))
    assert request.headers["webhook-id"] == event.event_id
    assert ISO_UTC.match(body.pop("timestamp"))
    assert body == {
        "id": event.event_id,
        "type": "shop.order_shipped",
        "data": {
            "object": {"type": "testapp.Advert", "id": advert.pk, "repr": "Summer sale"},
            "actor": {"id": editor.pk, "username": "editor"},
            "target": {"type": "testapp.Advert", "id": other.pk, "repr": "Winter sale"},
            "carrier": "DHL",
            "shipped_at": "2026-11-21T12:00:00Z",
            "weight": "1.50",
        },
    }
    stored = Event.objects.get()
    assert stored.event_type == "shop.order_shipped"
    assert stored.content_type.model_class() is Advert
    assert stored.object_id == str(advert.pk)
    assert stored.object_repr == "Summer sale"
    assert stored.actor == editor
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_emit_without_an_object(webhook_destination, bodies):
    webhook_destination(EVENTS=["shop.stock_low"])
    emit("shop.stock_low", data={"sku": "A-1", "left": 3})
    [body] = bodies()
    assert body["data"] == {
        "object": None,
        "actor": None,
        "target": None,
        "sku": "A-1",
        "left": 3,
    }
    assert Event.objects.get().content_type is None


def test_lone_surrogates_in_emitted_data_are_replaced(webhook_destination, bodies):
    # Python strings may hold them; UTF-8 and PostgreSQL's JSON cannot.
    webhook_destination(EVENTS=["shop.stock_low"])
    emit("shop.stock_low", data={"sku": "A\ud800-1", "pair": "\ud83d\ude00"})
    assert Event.objects.get().payload["data"]["sku"] == "A\ufffd-1"
    [body] = bodies()
    assert body["data"]["sku"] == "A\ufffd-1"
    assert body["data"]["pair"] == "\U0001f600"


def test_custom_events_are_routed_by_type_and_model(configure, httpserver, advert, editor):
    httpserver.expect_request("/adverts").respond_with_data("ok")
    httpserver.expect_request("/all").respond_with_data("ok")
    httpserver.expect_request("/pages").respond_with_data("ok")
    webhook = "wagtail_publish_hooks.backends.webhook.WebhookBackend"
    configure(
        DESTINATIONS={
            "adverts": {
                "BACKEND": webhook,
                "EVENTS": ["shop.order_shipped"],
                "MODELS": ["testapp.Advert"],
                "OPTIONS": {"URL": httpserver.url_for("/adverts")},
            },
            "all": {
                "BACKEND": webhook,
                "EVENTS": ["*"],
                "OPTIONS": {"URL": httpserver.url_for("/all")},
            },
            # No EVENTS: page events only.
            "pages": {"BACKEND": webhook, "OPTIONS": {"URL": httpserver.url_for("/pages")}},
        }
    )
    emit("shop.order_shipped", instance=advert)
    emit("shop.order_shipped", instance=editor)  # another model
    emit("shop.order_cancelled", instance=advert)  # another type

    received = sorted(
        (
            request.path,
            json.loads(request.get_data())["type"],
            json.loads(request.get_data())["data"]["object"]["type"],
        )
        for request, _ in httpserver.log
    )
    assert received == [
        ("/adverts", "shop.order_shipped", "testapp.Advert"),
        ("/all", "shop.order_cancelled", "testapp.Advert"),
        ("/all", "shop.order_shipped", "auth.User"),
        ("/all", "shop.order_shipped", "testapp.Advert"),
    ]


def test_unrouted_custom_event_records_nothing(webhook_destination, advert):
    webhook_destination()  # page events only
    assert emit("shop.order_shipped", instance=advert) is None
    assert Event.objects.count() == 0


def test_rolled_back_emit_leaves_nothing(webhook_destination, httpserver, bodies, advert):
    webhook_destination(EVENTS=["shop.*"])
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        emit("shop.order_shipped", instance=advert)
        assert Event.objects.count() == 1
        1 / 0  # noqa: B018
    assert Event.objects.count() == 0
    assert bodies() == []


def test_emit_records_nothing_when_suspended_or_disabled(webhook_destination, settings, advert):
    config = webhook_destination(EVENTS=["shop.*"])
    with suspended():
        assert emit("shop.order_shipped", instance=advert) is None
    settings.WAGTAIL_PUBLISH_HOOKS = {**config, "ENABLED": False}
    assert emit("shop.order_shipped", instance=advert) is None
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("event_type", "message"),
    [
        ("page.published", "reserved for wagtail-publish-hooks' own events"),
        ("page.custom_thing", "reserved"),
        ("snippet.approved", "reserved"),
        ("workflow.escalated", "reserved"),
        ("publish_hooks.ping", "reserved"),
        ("shipped", "is not a valid event type"),
        ("Shop.Shipped", "is not a valid event type"),
        ("shop..shipped", "is not a valid event type"),
        ("shop.*", "is not a valid event type"),
        ("shop.order shipped", "is not a valid event type"),
        ("shop." + "x" * 100, "longer than 100 characters"),
        (None, "is not a valid event type"),
    ],
)
def test_emit_refuses_bad_event_types(webhook_destination, event_type, message):
    webhook_destination(EVENTS=["*"])
    with pytest.raises(ValueError, match=re.escape(message)):
        emit(event_type)
    with pytest.raises(ValueError, match=re.escape(message)):
        register_signal(order_refunded, event_type)
    assert Event.objects.count() == 0


def test_emit_refuses_bad_data(webhook_destination, advert):
    webhook_destination(EVENTS=["*"])
    with pytest.raises(ValueError, match="may not use the key"):
        emit("shop.order_shipped", data={"actor": "someone"})
    with pytest.raises(TypeError, match="must be JSON-serialisable"):
        emit("shop.order_shipped", data={"callback": print})
    with pytest.raises(TypeError, match="takes a model instance"):
        emit("shop.order_shipped", instance="order 12")
    with pytest.raises(ValueError, match="must be saved"):
        emit("shop.order_shipped", instance=Advert(text="unsaved"))
    assert Event.objects.count() == 0


def test_a_failure_while_recording_is_logged_not_raised(
    webhook_destination, monkeypatch, advert, caplog
):
    import wagtail_publish_hooks.outbox as outbox

    webhook_destination(EVENTS=["shop.*"])
    monkeypatch.setattr(outbox, "new_event_id", lambda: "evt_duplicate")
    caplog.set_level(logging.ERROR, logger="wagtail_publish_hooks")
    assert emit("shop.order_shipped", instance=advert) is not None
    with transaction.atomic():
        assert emit("shop.order_shipped", instance=advert) is None  # the insert fails
        # The caller's transaction is still usable.
        Advert.objects.create(text="after the failure")
    assert Advert.objects.filter(text="after the failure").exists()
    assert "could not record shop.order_shipped for Advert" in caplog.text
    assert CaptureFailure.objects.get().event_type == "shop.order_shipped"


def test_an_on_receiver_gets_a_custom_event(configure, advert, editor):
    """tests.testapp.receivers registers @on("testapp.order_shipped", "testapp.Advert")."""
    configure()
    testapp_receivers.shipped_events.clear()
    try:
        emit("testapp.order_shipped", instance=advert, actor=editor, data={"carrier": "DHL"})
        emit("testapp.order_shipped", instance=editor)  # not an Advert: not routed to it
        [event] = testapp_receivers.shipped_events
    finally:
        testapp_receivers.shipped_events.clear()
    stored = Event.objects.get()
    assert stored.deliveries.get().destination == "python:tests.testapp.receivers.shipped"
    assert event.id == stored.event_id
    assert event.type == "testapp.order_shipped"
    assert event.data == {
        "object": {"type": "testapp.Advert", "id": advert.pk, "repr": "Summer sale"},
        "actor": {"id": editor.pk, "username": "editor"},
        "target": None,
        "carrier": "DHL",
    }
    assert event.object_type == "testapp.Advert"
    assert event.instance == advert


# -- register_signal --------------------------------------------------------------------------


def test_register_signal_turns_a_signal_into_events(
    webhook_destination, bodies, advert, editor, signals_cleanup
):
    webhook_destination(EVENTS=["shop.*"])
    register_signal(order_refunded, "shop.order_refunded")
    register_signal(order_refunded, "shop.order_refunded")  # connects once
    signals_cleanup.append((order_refunded, "shop.order_refunded", None))
    other = Advert.objects.create(text="Winter sale")

    with transaction.atomic():
        order_refunded.send(
            sender=Advert,
            instance=advert,
            actor=editor,
            target=other,
            amount=Decimal("5.00"),
            reason="damaged",
            lines=[1, 2],
            related=other,
            callback=print,  # not JSON: left out
            when=datetime(2026, 11, 21, 12, 0, tzinfo=UTC),
        )
        assert bodies() == []

    [body] = bodies()
    assert body["type"] == "shop.order_refunded"
    assert body["data"] == {
        "object": {"type": "testapp.Advert", "id": advert.pk, "repr": "Summer sale"},
        "actor": {"id": editor.pk, "username": "editor"},
        "target": {"type": "testapp.Advert", "id": other.pk, "repr": "Winter sale"},
        "sender": "testapp.Advert",
        "amount": "5.00",
        "reason": "damaged",
        "lines": [1, 2],
        "related": {"type": "testapp.Advert", "id": other.pk, "repr": "Winter sale"},
        "when": "2026-11-21T12:00:00Z",
    }
    stored = Event.objects.get()
    assert stored.object_id == str(advert.pk)
    assert stored.actor == editor


def test_a_model_instance_sender_is_the_object(
    webhook_destination, bodies, advert, signals_cleanup
):
    webhook_destination(EVENTS=["shop.*"])
    register_signal(order_refunded, "shop.order_refunded")
    signals_cleanup.append((order_refunded, "shop.order_refunded", None))
    order_refunded.send(sender=advert, reason="late")
    [body] = bodies()
    assert body["data"] == {
        "object": {"type": "testapp.Advert", "id": advert.pk, "repr": "Summer sale"},
        "actor": None,
        "target": None,
        "reason": "late",
    }


def test_model_signals_with_a_sender(webhook_destination, bodies, signals_cleanup):
    webhook_destination(EVENTS=["testapp.*"])
    register_signal(post_save, "testapp.advert_saved", sender=Advert)
    signals_cleanup.append((post_save, "testapp.advert_saved", Advert))

    advert = Advert.objects.create(text="Spring sale")
    # Fixtures being loaded (raw saves) are not events.
    post_save.send(
        sender=Advert, instance=advert, created=True, raw=True, using="default", update_fields=None
    )

    [body] = bodies()
    assert body["type"] == "testapp.advert_saved"
    assert body["data"] == {
        "object": {"type": "testapp.Advert", "id": advert.pk, "repr": "Spring sale"},
        "actor": None,
        "target": None,
        "sender": "testapp.Advert",
        "created": True,
        "update_fields": None,
        "raw": False,
        "using": "default",
    }


def test_register_signal_never_raises_into_the_sender(
    webhook_destination, monkeypatch, advert, caplog, signals_cleanup
):
    webhook_destination(EVENTS=["shop.*"])
    register_signal(order_refunded, "shop.order_refunded")
    signals_cleanup.append((order_refunded, "shop.order_refunded", None))

    def broken_emit(*args, **kwargs):
        raise RuntimeError("emit is broken")

    monkeypatch.setattr(custom_events, "emit", broken_emit)
    caplog.set_level(logging.ERROR, logger="wagtail_publish_hooks")
    responses = order_refunded.send(sender=advert)
    assert [response for _, response in responses] == [None]
    assert "could not turn signal" in caplog.text
    assert "emit is broken" in caplog.text
    assert Event.objects.count() == 0
