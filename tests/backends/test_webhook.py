"""The webhook backend: signatures with rotation, headers, redaction, refused targets."""

from __future__ import annotations

import json

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import WEBHOOK, make_secret
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus
from wagtail_publish_hooks.redaction import describe_url, redact_headers

pytestmark = pytest.mark.django_db(transaction=True)


def test_secret_rotation_sends_one_signature_per_secret(
    webhook_destination, httpserver, draft_blog_page
):
    old, new = make_secret(), make_secret()
    webhook_destination(options={"SECRET": [new, old]})
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()

    request, _ = httpserver.log[0]
    headers = dict(request.headers)
    assert len(headers["Webhook-Signature"].split(" ")) == 2
    # A consumer holding either secret verifies the request.
    for secret in (old, new):
        Webhook(secret).verify(request.get_data(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(make_secret()).verify(request.get_data(), headers)


def test_unsigned_when_no_secret(configure, httpserver, draft_blog_page):
    configure(
        DESTINATIONS={
            "consumer": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/hooks")}}
        }
    )
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    request, _ = httpserver.log[0]
    assert "webhook-signature" not in request.headers
    assert request.headers["webhook-id"].startswith("evt_")


def test_custom_headers_are_sent_and_redacted_in_the_record(
    webhook_destination, httpserver, draft_blog_page, secret
):
    webhook_destination(
        options={"HEADERS": {"Authorization": "Bearer t0ps3cr3t", "X-Site": "main"}}
    )
    httpserver.expect_request(
        "/hooks", headers={"Authorization": "Bearer t0ps3cr3t", "X-Site": "main"}
    ).respond_with_data("ok")
    draft_blog_page.save_revision().publish()

    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    recorded = Attempt.objects.get().request_headers
    assert recorded["X-Site"] == "main"
    assert recorded["Authorization"] == "[redacted]"
    assert recorded["webhook-signature"] == "[redacted]"
    text = json.dumps(recorded)
    assert "t0ps3cr3t" not in text and secret not in text


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "127.1", "0x7f000001", "[::1]", "[::ffff:127.0.0.1]"]
)
def test_loopback_targets_are_refused_unless_allowed(configure, httpserver, draft_blog_page, host):
    configure(
        DESTINATIONS={
            "consumer": {
                "BACKEND": WEBHOOK,
                "OPTIONS": {"URL": f"http://{host}:{httpserver.port}/hooks"},
            }
        },
        ALLOW_PRIVATE_NETWORKS=False,
    )
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED  # refused at once, not retried
    assert delivery.attempts == 1
    assert "non-public address" in delivery.last_error
    assert "ALLOW_PRIVATE_NETWORKS" in delivery.last_error
    assert httpserver.log == []


def test_a_cidr_list_allows_only_those_networks(configure, httpserver, draft_blog_page):
    configure(
        DESTINATIONS={
            "v4": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/hooks")}},
        },
        ALLOW_PRIVATE_NETWORKS=["127.0.0.2/32"],
    )
    httpserver.expect_request("/hooks").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    assert Delivery.objects.get().status == DeliveryStatus.FAILED
    assert httpserver.log == []


def test_describe_url_hides_path_and_query():
    assert describe_url("https://hooks.slack.com/services/T0/B0/XYZ") == "https://hooks.slack.com/…"
    assert describe_url("http://127.0.0.1:8000/?token=abc") == "http://127.0.0.1:8000/…"
    assert describe_url("http://[::1]:8000/") == "http://[::1]:8000/"


def test_redact_headers():
    assert redact_headers(
        {"X-Api-Key": "k", "Cookie": "c", "webhook-signature": "v1,x", "Accept": "a"}
    ) == {
        "X-Api-Key": "[redacted]",
        "Cookie": "[redacted]",
        "webhook-signature": "[redacted]",
        "Accept": "a",
    }
