"""The Slack bot's direct messages, against a look-alike of Slack's Web API on loopback."""

from __future__ import annotations

import json
import logging
import sys
from datetime import timedelta

import pytest
from slack_sdk.models.blocks import DividerBlock, SectionBlock

from tests.support.slack_api import FakeSlackApi
from wagtail_publish_hooks import slack_bot
from wagtail_publish_hooks.backends.base import BaseBackend
from wagtail_publish_hooks.block_kit import InvalidBlocks, validate_blocks
from wagtail_publish_hooks.exceptions import DeliveryError, DestinationGone, UnsafeDestination
from wagtail_publish_hooks.http.addresses import address_policy, managed_policy
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus
from wagtail_publish_hooks.slack_bot import SlackUserNotFound, send_direct_message

TOKEN = "xoxb-1111-2222-S3cr3tB0tT0k3n"
ADA = "ada@example.com"
ADA_ID = "U0ADA"
BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "Pages published"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*<https://example.com/news/|News>*"}},
    {"type": "divider"},
]


@pytest.fixture(autouse=True)
def fresh_process_state():
    """Each test starts as a new worker process would: no user ids known, no waits asked."""
    slack_bot.user_ids.clear()
    slack_bot.holds.reset()
    yield
    slack_bot.user_ids.clear()
    slack_bot.holds.reset()


@pytest.fixture
def api(httpserver, configure):
    """The look-alike, and the bot configured to use it (loopback allowed, as in the tests'
    settings)."""
    fake = FakeSlackApi(TOKEN, {ADA: ADA_ID, "grace@example.com": "U0GRACE"})
    configure(SLACK_BOT={"TOKEN": TOKEN, "API_URL": fake.install(httpserver)})
    return fake


def test_a_direct_message_reaches_the_user_found_by_email_with_its_blocks(api):
    assert slack_bot.is_configured()
    send_direct_message(ADA, "3 pages were published", BLOCKS)

    lookup, post = api.calls
    assert lookup.method == "users.lookupByEmail"
    assert lookup.content_type == "application/x-www-form-urlencoded"
    assert lookup.params == {"email": ADA}
    assert post.method == "chat.postMessage"
    assert post.content_type == "application/json"
    assert post.params["unfurl_links"] is False and post.params["unfurl_media"] is False
    for call in api.calls:
        assert call.headers["Authorization"] == f"Bearer {TOKEN}"
        assert call.headers["User-Agent"].startswith("wagtail-publish-hooks/")
    assert api.messages == [{"channel": ADA_ID, "text": "3 pages were published", "blocks": BLOCKS}]


def test_slack_sdk_block_objects_are_sent_as_their_json():
    blocks = [SectionBlock(text="*Hello*"), DividerBlock()]
    assert validate_blocks(blocks) == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Hello*"}},
        {"type": "divider"},
    ]


def test_the_user_id_is_remembered_by_email_and_looked_up_again_when_it_expires(api, monkeypatch):
    send_direct_message(ADA, "one", [])
    send_direct_message(ADA.upper(), "two", [])
    send_direct_message("grace@example.com", "three", [])
    assert len(api.calls_of("users.lookupByEmail")) == 2
    assert [message["channel"] for message in api.messages] == [ADA_ID, ADA_ID, "U0GRACE"]

    monkeypatch.setattr(slack_bot, "USER_CACHE_SECONDS", 0)
    slack_bot.user_ids.clear()
    send_direct_message(ADA, "four", [])
    send_direct_message(ADA, "five", [])
    assert len(api.calls_of("users.lookupByEmail")) == 4


def test_a_user_id_slack_no_longer_knows_is_forgotten(api):
    send_direct_message(ADA, "one", [])
    api.answer_next("chat.postMessage", {"ok": False, "error": "channel_not_found"})
    with pytest.raises(DeliveryError) as caught:
        send_direct_message(ADA, "two", [])
    assert not caught.value.retryable
    send_direct_message(ADA, "three", [])
    assert len(api.calls_of("users.lookupByEmail")) == 2


def test_a_429_is_retried_after_slacks_retry_after_and_holds_the_next_calls(api):
    api.answer_next(
        "chat.postMessage",
        {"ok": False, "error": "ratelimited"},
        status=429,
        headers={"Retry-After": "30"},
    )
    with pytest.raises(DeliveryError) as caught:
        send_direct_message(ADA, "hello", BLOCKS)
    error = caught.value
    assert error.retryable
    assert error.retry_after == 30
    assert error.status_code == 429
    assert "ratelimited" in error.message and "retrying after 30 s" in error.message
    assert not isinstance(error, DestinationGone)

    posts = len(api.calls_of("chat.postMessage"))
    with pytest.raises(DeliveryError) as held:
        send_direct_message(ADA, "hello again", BLOCKS)
    assert held.value.retryable
    assert 0 < held.value.retry_after <= 30
    assert len(api.calls_of("chat.postMessage")) == posts  # Slack asked to wait: nothing sent


def test_a_ratelimited_answer_is_retried(api):
    api.answer_next(
        "users.lookupByEmail", {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "7"}
    )
    with pytest.raises(DeliveryError) as caught:
        send_direct_message(ADA, "hello", [])
    assert caught.value.retryable
    assert caught.value.retry_after == 7
    assert api.messages == []


def test_slacks_outages_are_retried(api):
    api.answer_next("chat.postMessage", "upstream unavailable", status=503)
    with pytest.raises(DeliveryError) as caught:
        send_direct_message(ADA, "hello", [])
    assert caught.value.retryable
    assert "HTTP 503" in caught.value.message
    api.answer_next("chat.postMessage", {"ok": False, "error": "internal_error"})
    with pytest.raises(DeliveryError) as caught:
        send_direct_message(ADA, "hello", [])
    assert caught.value.retryable


def test_a_410_fails_the_message_without_disabling_a_destination(api):
    api.answer_next("chat.postMessage", "", status=410)
    with pytest.raises(DeliveryError) as caught:
        send_direct_message(ADA, "hello", [])
    assert not caught.value.retryable
    assert not isinstance(caught.value, DestinationGone)


def test_a_user_unknown_to_slack_fails_for_good_without_naming_the_address(api):
    with pytest.raises(SlackUserNotFound) as caught:
        send_direct_message("nobody@example.com", "hello", BLOCKS)
    error = caught.value
    assert not error.retryable
    assert "users_not_found" in error.message
    assert "no Slack user has the Wagtail user's email address" in error.message
    assert "nobody" not in error.message
    assert api.messages == []
    with pytest.raises(SlackUserNotFound):
        send_direct_message("", "hello", BLOCKS)


@pytest.mark.parametrize(
    "code", ["invalid_auth", "not_authed", "account_inactive", "token_revoked", "missing_scope"]
)
def test_a_refused_token_fails_for_good(api, code):
    api.answer_next(
        "users.lookupByEmail", {"ok": False, "error": code, "needed": "users:read.email"}
    )
    with pytest.raises(DeliveryError) as caught:
        send_direct_message(ADA, "hello", [])
    assert not caught.value.retryable
    assert code in caught.value.message
    if code == "missing_scope":
        assert "it needs users:read.email" in caught.value.message
    else:
        assert "['SLACK_BOT']['TOKEN']" in caught.value.message


def test_the_token_never_appears_in_errors_logs_or_output(httpserver, configure, caplog, capsys):
    fake = FakeSlackApi("xoxb-the-right-one", {ADA: ADA_ID})
    configure(SLACK_BOT={"TOKEN": TOKEN, "API_URL": fake.install(httpserver)})
    caplog.set_level(logging.DEBUG)

    with pytest.raises(DeliveryError) as caught:
        send_direct_message(ADA, "hello", BLOCKS)
    error = caught.value
    assert not error.retryable
    assert "invalid_auth" in error.message
    assert fake.calls[0].headers["Authorization"] == f"Bearer {TOKEN}"  # it was sent
    recorded = [
        str(error),
        repr(error),
        repr(error.args),
        error.response_body,
        repr(error.request_headers),
        repr(error.response_headers),
        repr(error.detail),
        repr(error.__cause__),
        repr(error.__context__),
        repr(slack_bot.bot_settings()),
        repr(slack_bot.SlackBot(slack_bot.bot_settings())),
        caplog.text,
        *capsys.readouterr(),
    ]
    assert error.request_headers["Authorization"] == "[redacted]"
    for text in recorded:
        assert TOKEN not in text
        assert "S3cr3tB0tT0k3n" not in text


@pytest.mark.parametrize(
    ("blocks", "problem"),
    [
        ({"type": "divider"}, "blocks must be a list"),
        ([{"type": "bogus"}], "block 0 (bogus) is not a Block Kit block type"),
        ([{"text": "hi"}], "block 0 is not a Block Kit block type"),
        ([{"type": "image", "image_url": "https://x/y.png"}], "block 0 (image) is invalid"),
        (["divider"], "block 0 is a str"),
        ([{"type": "section"}], "block 0 (section) is invalid: text or fields"),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
            "cannot exceed 150 characters",
        ),
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}, "colour": "red"}],
            "not valid Block Kit at 'colour'",
        ),
        ([{"type": "context", "elements": []}], "not valid Block Kit at 'elements'"),
        ([{"type": "section", "text": "hi"}], "not valid Block Kit at 'text'"),
        ([{"type": "divider"}] * 51, "at most 50 blocks"),
    ],
)
def test_invalid_blocks_are_refused_before_any_request(api, blocks, problem):
    with pytest.raises(InvalidBlocks) as caught:
        send_direct_message(ADA, "hello", blocks)
    assert problem in caught.value.message
    assert not caught.value.retryable
    assert api.calls == []


def test_a_message_needs_text_or_blocks_within_slacks_limits(api):
    for text, blocks in [("", []), ("x" * 40_001, []), (None, BLOCKS)]:
        with pytest.raises(InvalidBlocks):
            send_direct_message(ADA, text, blocks)  # type: ignore[arg-type]
    assert api.calls == []


def test_a_long_answer_is_a_success_not_a_retry(api):
    """Slack echoes the message back; an answer longer than the package reads still says
    "ok": true first, and the message must not be sent twice."""
    echo = {"ok": True, "channel": "D0ADA", "message": {"text": "x" * 100_000}}
    api.answer_next("chat.postMessage", echo)
    send_direct_message(ADA, "hello", BLOCKS)


def test_a_loopback_api_url_needs_the_settings_allowance(httpserver, settings):
    fake = FakeSlackApi(TOKEN, {ADA: ADA_ID})
    settings.WAGTAIL_PUBLISH_HOOKS = {
        "SLACK_BOT": {"TOKEN": TOKEN, "API_URL": fake.install(httpserver)}
    }
    with pytest.raises(UnsafeDestination) as caught:
        send_direct_message(ADA, "hello", BLOCKS)
    assert "non-public address (loopback)" in caught.value.message
    assert "ALLOW_PRIVATE_NETWORKS" in caught.value.message
    assert not caught.value.retryable
    assert fake.calls == []


def test_the_bot_follows_the_settings_policy_whichever_destination_it_sends_for(api):
    """The worker applies the policy of the destination being delivered; the bot is the
    operator's, so the settings' allowance applies even under the admin's stricter one."""
    with address_policy(managed_policy()):
        send_direct_message(ADA, "hello", BLOCKS)
    assert len(api.messages) == 1


def test_without_a_bot_or_with_a_broken_one_nothing_is_sent(configure):
    configure()
    with pytest.raises(DeliveryError) as caught:
        send_direct_message(ADA, "hello", BLOCKS)
    assert not caught.value.retryable
    assert "no Slack bot is configured" in caught.value.message
    assert not slack_bot.is_configured()

    configure(SLACK_BOT={"TOKEN": "xoxa-1-S3cr3t"})
    with pytest.raises(DeliveryError) as caught:
        send_direct_message(ADA, "hello", BLOCKS)
    assert not caught.value.retryable
    assert "E064" in caught.value.message
    assert "S3cr3t" not in caught.value.message
    assert not slack_bot.is_configured()


def test_without_slack_sdk_the_message_fails_naming_the_extra(api, monkeypatch):
    for name in [name for name in sys.modules if name.startswith("slack_sdk")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(DeliveryError) as caught:
        send_direct_message(ADA, "hello", BLOCKS)
    assert not caught.value.retryable
    assert "wagtail-publish-hooks[slack]" in caught.value.message
    assert api.calls == []
    assert not slack_bot.is_configured()  # users are not offered Slack


# -- Through the worker ------------------------------------------------------------------------


class DirectMessageBackend(BaseBackend):
    """A destination that writes to one person, the way notifications to watchers do."""

    def deliver(self, delivery):
        send_direct_message(ADA, f"{delivery.event.event_type}", BLOCKS)


@pytest.fixture
def dm_destination(api, configure, httpserver):
    bot = {"TOKEN": TOKEN, "API_URL": httpserver.url_for("/api/")}
    backend = f"{__name__}.DirectMessageBackend"
    configure(
        SLACK_BOT=bot,
        RETRY_SCHEDULE=[1],
        DESTINATIONS={"dm": {"BACKEND": backend, "EVENTS": ["page.published"]}},
    )
    return api


@pytest.mark.django_db(transaction=True)
def test_the_worker_retries_a_rate_limit_after_retry_after_and_records_no_token(
    dm_destination, draft_blog_page
):
    dm_destination.answer_next(
        "chat.postMessage",
        {"ok": False, "error": "ratelimited"},
        status=429,
        headers={"Retry-After": "120"},
    )
    draft_blog_page.save_revision().publish()

    delivery = Delivery.objects.get()
    attempt = Attempt.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.next_attempt_at >= attempt.started_at + timedelta(seconds=119)
    assert attempt.status_code == 429
    assert "chat.postMessage" in attempt.error and "ratelimited" in attempt.error
    assert attempt.request_headers["Authorization"] == "[redacted]"
    stored = json.dumps(
        [attempt.error, attempt.request_headers, attempt.response_headers, attempt.response_body]
    )
    assert "S3cr3tB0tT0k3n" not in stored


@pytest.mark.django_db(transaction=True)
def test_the_worker_fails_a_user_unknown_to_slack_at_once(dm_destination, draft_blog_page):
    dm_destination.users.clear()
    draft_blog_page.save_revision().publish()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert "users_not_found" in Attempt.objects.get().error
