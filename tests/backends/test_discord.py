"""The Discord backend against a loopback server that answers as Discord's webhooks do."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from wagtail.log_actions import LogContext
from werkzeug import Request, Response

from tests.testapp.models import BlogPage
from wagtail_publish_hooks.backends import discord
from wagtail_publish_hooks.backends.discord import (
    DiscordBackend,
    build_message,
    embed_length,
    escape_markdown,
)
from wagtail_publish_hooks.checks.settings import check_settings
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus, DestinationState

pytestmark = pytest.mark.django_db(transaction=True)

DISCORD = "wagtail_publish_hooks.backends.discord.DiscordBackend"
TOKEN = "tOkEn-0123456789abcdef"
#: Like ``/api/webhooks/<id>/<token>``: the token in the path is the secret.
PATH = f"/api/webhooks/1234567890/{TOKEN}"

GREEN, AMBER, RED, BLURPLE = 0x57F287, 0xFAA61A, 0xED4245, 0x5865F2


def assert_within_discord_limits(message: dict) -> dict:
    """Discord's documented limits for an execute-webhook body; returns the embed."""
    assert set(message) <= {"content", "embeds", "allowed_mentions", "username", "avatar_url"}
    assert message["allowed_mentions"] == {"parse": []}
    assert 0 < len(message["content"]) <= 2000
    [embed] = message["embeds"]
    assert set(embed) <= {"title", "url", "description", "color", "fields", "timestamp", "footer"}
    assert len(embed["title"]) <= 256
    assert len(embed.get("description", "")) <= 4096
    assert isinstance(embed["color"], int) and 0 <= embed["color"] <= 0xFFFFFF
    assert len(embed["fields"]) <= 25
    for field in embed["fields"]:
        assert set(field) == {"name", "value", "inline"}
        assert 0 < len(field["name"]) <= 256 and 0 < len(field["value"]) <= 1024
    assert embed["footer"] == {"text": "wagtail-publish-hooks"}
    assert embed_length(embed) <= 6000
    return embed


def fields_of(embed: dict) -> dict[str, str]:
    return {field["name"]: field["value"] for field in embed["fields"]}


def discord_answers(*responses):
    """Replies in turn (the last one repeats), as Discord does: ``204`` with no body, ``200``
    with the message for ``?wait=true``, and errors as JSON with a ``code``, a ``message`` and,
    for ``429``, ``retry_after`` and rate-limit headers."""
    queue = list(responses)

    def handler(request: Request) -> Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        status, body, headers = item if isinstance(item, tuple) else (item, None, {})
        if status == 204:
            return Response(status=204)
        if status == 200:
            body = {"id": "1", "type": 0, "content": json.loads(request.get_data())["content"]}
        return Response(
            json.dumps(body) if body is not None else "",
            status=status,
            headers=headers,
            content_type="application/json",
        )

    return handler


def rate_limited(retry_after: float, header: str, *, is_global: bool = False):
    body = {"message": "You are being rate limited.", "retry_after": retry_after}
    body["global"] = is_global
    headers = {
        "Retry-After": header,
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset-After": header,
        "X-RateLimit-Scope": "shared",
    }
    return (429, body, headers)


@pytest.fixture
def discord_destination(configure, httpserver):
    def apply(options: dict | None = None, query: str = "", **values):
        url = httpserver.url_for(PATH) + query
        destination = {"BACKEND": DISCORD, "OPTIONS": {"URL": url, **(options or {})}}
        return configure(DESTINATIONS={"chat": destination}, RETRY_SCHEDULE=[0], **values)

    return apply


def publish(page, user=None):
    with LogContext(user=user):
        page.save_revision(user=user).publish(user=user)


def expect(httpserver, *responses):
    httpserver.expect_request(PATH, method="POST").respond_with_handler(discord_answers(*responses))


def sent_messages(httpserver) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


# -- The message -------------------------------------------------------------------------------


def test_publish_posts_content_and_an_embed(
    discord_destination, httpserver, draft_blog_page, django_user_model
):
    discord_destination()
    expect(httpserver, 204)
    editor = django_user_model.objects.create_superuser("editor", "e@example.com", "pw")
    publish(draft_blog_page, editor)

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.last_status_code == 204
    request, _ = httpserver.log[0]
    assert request.headers["Content-Type"] == "application/json"
    message = json.loads(request.get_data())
    embed = assert_within_discord_limits(message)
    assert message["content"] == "“Hello world” was published by editor"
    assert "username" not in message and "avatar_url" not in message
    assert embed["title"] == "Hello world"
    assert embed["url"] == "http://localhost/news/hello-world/"
    assert embed["color"] == GREEN
    assert fields_of(embed) == {
        "Event": "Page published",
        "Type": "testapp.BlogPage",
        "By": "editor",
        "Site": "localhost",
        "Changes": "First published",
    }
    assert all(field["inline"] for field in embed["fields"])
    assert embed["timestamp"].replace("+00:00", "Z") == delivery.event.payload["timestamp"]
    assert "description" not in embed


def test_a_republish_says_what_changed(discord_destination, httpserver, draft_blog_page):
    discord_destination()
    expect(httpserver, 204)
    publish(draft_blog_page)
    page = BlogPage.objects.get(pk=draft_blog_page.pk)
    page.title, page.intro = "Hello_again", "New intro " * 20
    publish(page)

    embeds = [assert_within_discord_limits(message) for message in sent_messages(httpserver)]
    assert fields_of(embeds[0])["Changes"] == "First published"
    assert fields_of(embeds[1])["Changes"] == "Title and intro changed"
    assert "New intro" not in json.dumps(embeds[1])  # names, never values


def test_username_and_avatar_override_the_webhooks_own(
    discord_destination, httpserver, draft_blog_page
):
    discord_destination(
        options={"USERNAME": "Publishing", "AVATAR_URL": "https://cdn.example/bot.png"}
    )
    expect(httpserver, 204)
    publish(draft_blog_page)
    message = sent_messages(httpserver)[0]
    assert message["username"] == "Publishing"
    assert message["avatar_url"] == "https://cdn.example/bot.png"


def test_colour_follows_the_event(discord_destination, httpserver, draft_blog_page):
    discord_destination()
    expect(httpserver, 204)
    publish(draft_blog_page)
    draft_blog_page.slug = "renamed"
    publish(draft_blog_page)
    draft_blog_page.refresh_from_db()
    draft_blog_page.unpublish()

    embeds = {
        fields_of(embed)["Event"]: embed
        for embed in (assert_within_discord_limits(m) for m in sent_messages(httpserver))
    }
    assert embeds["Page published"]["color"] == GREEN
    assert embeds["Page unpublished"]["color"] == AMBER
    assert embeds["Page moved"]["color"] == BLURPLE
    assert embeds["Page moved"]["description"] == ("Moved from http://localhost/news/hello-world/")
    deleted = build_message({"type": "page.deleted", "data": {"page": {"title": "Old"}}})
    assert deleted["embeds"][0]["color"] == RED


def test_a_title_cannot_ping_or_format(discord_destination, httpserver, draft_blog_page):
    discord_destination()
    expect(httpserver, 204)
    draft_blog_page.title = "@everyone **free** <@123> [x](https://evil.example)"
    publish(draft_blog_page)

    message = sent_messages(httpserver)[0]
    assert message["allowed_mentions"] == {"parse": []}
    assert message["content"] == (
        r"“\@everyone \*\*free\*\* \<\@123\> \[x\]\(https\://evil.example\)” was published"
    )
    assert message["embeds"][0]["title"].startswith(r"\@everyone \*\*free\*\*")


def test_escape_markdown():
    assert escape_markdown("a_b ~c~ `d` ||e|| > f # g - h :smile:") == (
        r"a\_b \~c\~ \`d\` \|\|e\|\| \> f \# g \- h \:smile\:"
    )
    assert escape_markdown("back\\slash") == r"back\\slash"


def test_long_text_is_cut_to_discords_limits():
    payload = {
        "type": "page.moved",
        "timestamp": "2026-11-21T21:40:00.123456Z",
        "data": {
            "page": {
                "title": "*" * 3000,
                "type": "x." + "Y" * 2000,
                "url": "https://example.com/new/",
            },
            "actor": {"username": "u" * 2000},
            "moved": {"urls_before": ["https://example.com/" + "a" * 7000]},
        },
    }
    message = build_message(payload)
    embed = assert_within_discord_limits(message)
    assert len(message["content"]) == 2000 and message["content"].endswith("…")
    # 255: cutting at 256 would have split an escape in two.
    assert len(embed["title"]) == 255 and embed["title"].endswith("\\*…")
    assert len(fields_of(embed)["By"]) == len(fields_of(embed)["Type"]) == 1024
    # The description gave way so that the embed stays within 6000 characters in all.
    assert embed_length(embed) == 6000
    assert embed["description"].endswith("…")
    assert embed["timestamp"] == "2026-11-21T21:40:00.123456+00:00"


def test_a_cut_never_leaves_a_dangling_escape():
    assert discord.truncate(r"ab\*\*", 4) == "ab…"
    assert discord.truncate(r"a\*\*", 4) == r"a\*…"


def test_200_with_wait_true_is_delivered(discord_destination, httpserver, draft_blog_page):
    discord_destination(query="?wait=true")
    expect(httpserver, 200)
    publish(draft_blog_page)

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert httpserver.log[0][0].args["wait"] == "true"
    assert json.loads(Attempt.objects.get().response_body)["id"] == "1"


# -- Errors and retries ---------------------------------------------------------------------------


def test_429_json_retry_after_wins_over_a_longer_header(
    discord_destination, httpserver, draft_blog_page
):
    discord_destination()
    expect(httpserver, rate_limited(2.5, "60"))
    publish(draft_blog_page)

    delivery = Delivery.objects.get()
    attempt = Attempt.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    gap = (delivery.next_attempt_at - attempt.started_at).total_seconds()
    assert 2.5 <= gap < 10
    assert delivery.last_error == "HTTP 429: rate limited, retry after 2.5 s"
    assert len(httpserver.log) == 1


def test_429_json_retry_after_wins_over_a_shorter_header(
    discord_destination, httpserver, draft_blog_page
):
    discord_destination()
    expect(httpserver, rate_limited(45.25, "1", is_global=True))
    publish(draft_blog_page)

    delivery = Delivery.objects.get()
    attempt = Attempt.objects.get()
    assert delivery.next_attempt_at >= attempt.started_at + timedelta(seconds=45.25)
    assert delivery.last_error == "HTTP 429: global rate limit, retry after 45.25 s"


def test_429_without_json_falls_back_to_retry_after(
    discord_destination, httpserver, draft_blog_page
):
    discord_destination()
    # Cloudflare's answer in front of Discord: HTML, with only the header.
    expect(httpserver, (429, None, {"Retry-After": "20"}))
    publish(draft_blog_page)
    delivery = Delivery.objects.get()
    attempt = Attempt.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.next_attempt_at >= attempt.started_at + timedelta(seconds=20)


def test_rate_limit_then_success(discord_destination, httpserver, draft_blog_page):
    discord_destination()
    expect(httpserver, rate_limited(0, "0"), 204)
    publish(draft_blog_page)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 2


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (404, {"message": "Unknown Webhook", "code": 10015}, "the webhook was deleted"),
        (401, {"message": "Invalid Webhook Token", "code": 50027}, "token is invalid"),
    ],
)
def test_a_deleted_webhook_disables_the_destination(
    discord_destination, httpserver, draft_blog_page, status, body, reason
):
    discord_destination()
    expect(httpserver, (status, body, {}))
    publish(draft_blog_page)
    publish(draft_blog_page)

    assert len(httpserver.log) == 1
    first, second = Delivery.objects.order_by("pk")
    assert first.status == DeliveryStatus.FAILED and first.attempts == 1
    assert reason in first.last_error and body["message"] in first.last_error
    state = DestinationState.objects.get(alias="chat")
    assert state.is_disabled
    assert second.status == DeliveryStatus.FAILED and "disabled" in second.last_error


def test_other_404_fails_without_disabling(discord_destination, httpserver, draft_blog_page):
    discord_destination(query="?thread_id=99")
    expect(httpserver, (404, {"message": "Unknown Channel", "code": 10003}, {}))
    publish(draft_blog_page)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "HTTP 404: Unknown Channel (code 10003)"
    assert not DestinationState.objects.get(alias="chat").is_disabled


def test_400_invalid_form_body_fails_at_once(discord_destination, httpserver, draft_blog_page):
    discord_destination()
    body = {
        "code": 50035,
        "errors": {"username": {"_errors": [{"code": "USERNAME_INVALID_CONTAINS"}]}},
        "message": "Invalid Form Body",
    }
    expect(httpserver, (400, body, {}))
    publish(draft_blog_page)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert delivery.last_error == "HTTP 400: Invalid Form Body (code 50035)"
    assert "USERNAME_INVALID_CONTAINS" in Attempt.objects.get().response_body


def test_5xx_is_retried(discord_destination, httpserver, draft_blog_page):
    discord_destination()
    expect(httpserver, (500, {"message": "500: Internal Server Error", "code": 0}, {}), 502, 204)
    publish(draft_blog_page)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert list(Attempt.objects.order_by("number").values_list("status_code", flat=True)) == [
        500,
        502,
        204,
    ]


def test_the_token_never_shows(discord_destination, httpserver, draft_blog_page):
    discord_destination()
    expect(httpserver, 500, (404, {"message": "Unknown Webhook", "code": 10015}, {}))
    publish(draft_blog_page)

    backend = DiscordBackend(alias="chat", options={"URL": f"https://discord.com{PATH}?wait=true"})
    assert backend.describe() == "Discord webhook at https://discord.com/…"
    texts = [
        json.dumps([a.error, a.request_headers, a.response_headers, a.response_body])
        for a in Attempt.objects.all()
    ]
    texts.append(Delivery.objects.get().last_error)
    texts.append(DestinationState.objects.get(alias="chat").disabled_reason)
    for text in texts:
        assert TOKEN not in text


# -- Checks ------------------------------------------------------------------------------------


def test_checks(settings):
    def run(**options):
        settings.WAGTAIL_PUBLISH_HOOKS = {
            "DESTINATIONS": {
                "chat": {
                    "BACKEND": DISCORD,
                    "OPTIONS": {"URL": f"https://discord.com{PATH}", **options},
                }
            }
        }
        return [(m.id.rsplit(".", 1)[1], m.msg) for m in check_settings()]

    def ids(**options):
        return sorted(found for found, _ in run(**options))

    assert ids(USERNAME="Publishing bot", AVATAR_URL="https://cdn.example/a.png") == []
    assert ids(URL=None) == ["E011"]
    assert ids(URL="discord") == ["E012"]
    assert ids(TIMEOUT=-1) == ["E015"]
    assert ids(AVATAR_URL="avatar.png") == ["E012"]
    assert ids(AVATAR_URL="http://cdn.example/a.png") == []  # Discord fetches it, not us
    assert ids(CHANNEL="x") == ["E010"]
    for bad in ("", "x" * 81, 42, "Discord bot", "news@site", "here", "a:b"):
        assert ids(USERNAME=bad) == ["E027"], bad
    [(_, message)] = run(USERNAME="Everyone")
    assert "['OPTIONS']['USERNAME']" in message and "'everyone'" in message
