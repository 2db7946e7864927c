"""The Teams backend against a loopback server that answers as a Teams Workflows webhook does."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from wagtail.log_actions import LogContext
from werkzeug import Request, Response

from tests.testapp.models import BlogPage
from wagtail_publish_hooks.backends import teams
from wagtail_publish_hooks.backends.teams import TeamsBackend, build_message, escape_markdown
from wagtail_publish_hooks.checks.settings import check_settings
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus, DestinationState

pytestmark = pytest.mark.django_db(transaction=True)

TEAMS = "wagtail_publish_hooks.backends.teams.TeamsBackend"
#: Workflows trigger URLs carry their signature in the query: a secret.
PATH = "/workflows/0a1b2c/triggers/manual/paths/invoke"
SIG = "s3cr3t-sig-value"

# -- A structural check of Adaptive Cards, for the elements the backend uses ----------------------

ELEMENTS = {
    "TextBlock": {
        "required": {"type", "text"},
        "allowed": {"type", "text", "wrap", "weight", "size", "spacing", "isSubtle", "color"},
    },
    "FactSet": {"required": {"type", "facts"}, "allowed": {"type", "facts", "spacing"}},
}
ENUMS = {
    "weight": {"Default", "Lighter", "Bolder"},
    "size": {"Default", "Small", "Medium", "Large", "ExtraLarge"},
    "spacing": {"None", "Small", "Default", "Medium", "Large", "ExtraLarge", "Padding"},
}


def assert_valid_message(message: dict) -> dict:
    """What a Workflows webhook and Teams require of the message; returns the card."""
    assert set(message) == {"type", "attachments"}
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment == {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": attachment["content"],
    }
    card = attachment["content"]
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["type"] == "AdaptiveCard"
    major, minor = (int(part) for part in card["version"].split("."))
    assert (major, minor) <= (1, 5), "Teams renders Adaptive Cards up to 1.5"
    assert set(card) <= {"$schema", "type", "version", "body", "actions"}
    assert card["body"]
    for element in card["body"]:
        spec = ELEMENTS[element["type"]]
        assert spec["required"] <= set(element) <= spec["allowed"], element
        for key, allowed in ENUMS.items():
            if key in element:
                assert element[key] in allowed, element
        if element["type"] == "TextBlock":
            assert isinstance(element["text"], str) and element["text"]
            assert isinstance(element.get("wrap", False), bool)
        if element["type"] == "FactSet":
            for fact in element["facts"]:
                assert set(fact) == {"title", "value"}
                assert isinstance(fact["title"], str) and isinstance(fact["value"], str)
                assert fact["value"]
    for action in card.get("actions", []):
        assert set(action) == {"type", "title", "url"}
        assert action["type"] == "Action.OpenUrl"
        assert action["url"].startswith(("http://", "https://"))
    assert len(json.dumps(message).encode()) < 28 * 1024
    return card


def facts_of(card: dict) -> dict[str, str]:
    [fact_set] = [element for element in card["body"] if element["type"] == "FactSet"]
    return {fact["title"]: fact["value"] for fact in fact_set["facts"]}


# -- Fixtures ----------------------------------------------------------------------------------


def workflow_answers(*responses):
    """Replies in turn (the last one repeats), as Workflows does: ``202`` with an empty body,
    or an error with its JSON ``{"error": {"code", "message"}}``."""
    queue = list(responses)

    def handler(request: Request) -> Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        status, headers, body = item if isinstance(item, tuple) else (item, {}, None)
        if status == 202:
            return Response("", status=202, headers=headers)
        if body is None:
            body = {"error": {"code": "TriggerFailed", "message": f"failed with {status}"}}
        return Response(
            json.dumps(body), status=status, headers=headers, content_type="application/json"
        )

    return handler


@pytest.fixture
def teams_destination(configure, httpserver):
    def apply(options: dict | None = None, **values):
        url = httpserver.url_for(PATH) + f"?api-version=1&sp=%2Ftriggers&sv=1.0&sig={SIG}"
        destination = {"BACKEND": TEAMS, "OPTIONS": {"URL": url, **(options or {})}}
        return configure(DESTINATIONS={"team": destination}, RETRY_SCHEDULE=[0], **values)

    return apply


def publish(page, user=None):
    with LogContext(user=user):
        page.save_revision(user=user).publish(user=user)


def expect(httpserver, *responses):
    httpserver.expect_request(PATH, method="POST").respond_with_handler(
        workflow_answers(*responses)
    )


def sent_messages(httpserver) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


# -- The message -------------------------------------------------------------------------------


def test_publish_posts_an_adaptive_card(
    teams_destination, httpserver, draft_blog_page, django_user_model
):
    teams_destination()
    expect(httpserver, 202)
    editor = django_user_model.objects.create_superuser("editor", "e@example.com", "pw")
    publish(draft_blog_page, editor)

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.last_status_code == 202
    request, _ = httpserver.log[0]
    assert request.headers["Content-Type"] == "application/json"
    assert request.args["sig"] == SIG
    card = assert_valid_message(json.loads(request.get_data()))
    assert card["version"] == "1.4"
    title, sentence, _ = card["body"]
    assert title == {
        "type": "TextBlock",
        "text": "Hello world",
        "weight": "Bolder",
        "size": "Medium",
        "wrap": True,
    }
    assert sentence["text"] == "“Hello world” was published by editor"
    assert facts_of(card) == {
        "Event": "Page published",
        "Type": "testapp.BlogPage",
        "By": "editor",
        "Site": "localhost",
        "Changes": "First published",
    }
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "View page",
            "url": "http://localhost/news/hello-world/",
        }
    ]


def test_a_republish_says_what_changed(teams_destination, httpserver, draft_blog_page):
    teams_destination()
    expect(httpserver, 202)
    publish(draft_blog_page)
    page = BlogPage.objects.get(pk=draft_blog_page.pk)
    page.intro, page.body = "New intro " * 20, "<p>Long</p>" * 50
    publish(page)

    cards = [assert_valid_message(message) for message in sent_messages(httpserver)]
    assert facts_of(cards[0])["Changes"] == "First published"
    assert facts_of(cards[1])["Changes"] == "Body and intro changed"
    assert "New intro" not in json.dumps(cards[1])  # names, never values


def test_unpublish_and_move_read_as_such(teams_destination, httpserver, draft_blog_page):
    teams_destination()
    expect(httpserver, 202)
    publish(draft_blog_page)
    draft_blog_page.slug = "renamed"
    publish(draft_blog_page)
    draft_blog_page.refresh_from_db()
    draft_blog_page.unpublish()

    cards = [assert_valid_message(message) for message in sent_messages(httpserver)]
    labels = [facts_of(card)["Event"] for card in cards]
    assert labels[0] == "Page published"
    assert "Page moved" in labels
    moved = cards[labels.index("Page moved")]
    assert facts_of(moved)["Moved from"] == "http://localhost/news/hello-world/"
    assert moved["actions"][0]["url"] == "http://localhost/news/renamed/"
    unpublished = cards[labels.index("Page unpublished")]
    assert unpublished["body"][1]["text"] == "“Hello world” was unpublished"
    assert "By" not in facts_of(unpublished)


def test_markdown_in_a_title_is_shown_as_written(teams_destination, httpserver, draft_blog_page):
    teams_destination()
    expect(httpserver, 202)
    draft_blog_page.title = "- *Sale* [click](https://evil.example) _now_"
    publish(draft_blog_page)

    card = assert_valid_message(sent_messages(httpserver)[0])
    assert card["body"][0]["text"] == r"\- \*Sale\* \[click\](https://evil.example) \_now\_"
    assert card["body"][1]["text"].startswith(r"“- \*Sale\* \[click\]")


def test_escape_markdown():
    assert escape_markdown("a\\b `c` ~d~") == r"a\\b \`c\` \~d\~"
    assert escape_markdown("1. First") == r"1\. First"
    assert escape_markdown("# Heading") == r"\# Heading"
    assert escape_markdown("line\nbreak") == "line break"
    assert escape_markdown("up-to-date 2. ok") == "up-to-date 2. ok"


def test_a_long_title_is_sent_whole(teams_destination, httpserver, draft_blog_page):
    teams_destination()
    expect(httpserver, 202)
    draft_blog_page.title = "Ü" * 100 + "*" * 155  # the longest page title, escaped to 410
    publish(draft_blog_page)

    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    card = assert_valid_message(sent_messages(httpserver)[0])
    assert card["body"][0]["text"] == "Ü" * 100 + r"\*" * 155


def test_long_text_is_cut():
    payload = {
        "type": "snippet.published",
        "data": {"snippet": {"repr": "Ü" * 300 + "*" * 10_000, "type": "x.Y"}},
    }
    card = assert_valid_message(build_message(payload))
    title = card["body"][0]["text"]
    assert title == "Ü" * 300 + r"\*" * (teams.TITLE_CHARS - 301) + "…"
    # The title reads the same, cut the same, in the sentence.
    assert card["body"][1]["text"] == f"“{title}” was published"


def test_the_message_shrinks_until_it_fits():
    payload = {
        "id": "evt_1",
        "type": "page.published",
        "timestamp": "2026-11-21T21:40:00Z",
        "data": {
            "page": {"title": "\u0001" * 5000, "type": "x.Y", "url": "https://example.com/"},
            "actor": {"username": "\u0002" * 5000},
        },
    }
    message = build_message(payload)
    assert len(teams.encode(message)) <= teams.MAX_MESSAGE_BYTES
    assert_valid_message(message)


def test_an_overlong_url_gets_no_button():
    payload = {
        "type": "page.published",
        "data": {"page": {"title": "T", "url": "https://example.com/" + "a" * 3000}},
    }
    card = build_message(payload)["attachments"][0]["content"]
    assert "actions" not in card


# -- Errors and retries ---------------------------------------------------------------------------


def test_400_bad_card_fails_at_once_with_the_workflows_error(
    teams_destination, httpserver, draft_blog_page
):
    teams_destination()
    expect(
        httpserver,
        (400, {}, {"error": {"code": "InvalidRequestContent", "message": "The card is invalid."}}),
    )
    publish(draft_blog_page)

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert delivery.last_error == "HTTP 400: InvalidRequestContent: The card is invalid."
    assert not DestinationState.objects.get(alias="team").is_disabled


def test_404_deleted_flow_fails_without_disabling(teams_destination, httpserver, draft_blog_page):
    teams_destination()
    expect(httpserver, (404, {}, ""))
    publish(draft_blog_page)

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert delivery.last_status_code == 404
    assert "no workflow at this URL" in delivery.last_error
    assert not DestinationState.objects.get(alias="team").is_disabled


def test_410_disables_the_destination(teams_destination, httpserver, draft_blog_page):
    teams_destination()
    expect(httpserver, 410)
    publish(draft_blog_page)
    publish(draft_blog_page)

    assert len(httpserver.log) == 1
    assert DestinationState.objects.get(alias="team").is_disabled
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.FAILED}


def test_429_waits_for_retry_after(teams_destination, httpserver, draft_blog_page):
    teams_destination()
    expect(httpserver, (429, {"Retry-After": "30"}, None))
    publish(draft_blog_page)

    delivery = Delivery.objects.get()
    attempt = Attempt.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.next_attempt_at >= attempt.started_at + timedelta(seconds=30)
    assert len(httpserver.log) == 1


def test_5xx_is_retried_until_accepted(teams_destination, httpserver, draft_blog_page):
    teams_destination()
    expect(httpserver, 502, 503, 202)
    publish(draft_blog_page)

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert list(Attempt.objects.order_by("number").values_list("status_code", flat=True)) == [
        502,
        503,
        202,
    ]
    # Every attempt sends the same card.
    messages = sent_messages(httpserver)
    assert messages[0] == messages[1] == messages[2]


def test_refused_connection_is_retried(configure, draft_blog_page, free_port):
    url = f"http://127.0.0.1:{free_port}{PATH}?sig={SIG}"
    configure(
        DESTINATIONS={"team": {"BACKEND": TEAMS, "OPTIONS": {"URL": url}}},
        RETRY_SCHEDULE=[60],
    )
    publish(draft_blog_page)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert "connection refused" in delivery.last_error


def test_the_url_never_shows(teams_destination, httpserver, draft_blog_page):
    teams_destination()
    expect(httpserver, 500, 400)
    publish(draft_blog_page)

    backend = TeamsBackend(alias="team", options={"URL": f"https://prod.example{PATH}?sig={SIG}"})
    assert backend.describe() == "Teams workflow at https://prod.example/…"
    records = [
        json.dumps([a.error, a.request_headers, a.response_headers, a.response_body])
        for a in Attempt.objects.all()
    ]
    records.append(Delivery.objects.get().last_error)
    for text in records:
        assert SIG not in text and "workflows/0a1b2c" not in text


# -- Checks ------------------------------------------------------------------------------------


def test_checks(settings):
    def run(options):
        settings.WAGTAIL_PUBLISH_HOOKS = {
            "DESTINATIONS": {"team": {"BACKEND": TEAMS, "OPTIONS": options}}
        }
        return sorted(message.id.rsplit(".", 1)[1] for message in check_settings())

    assert run({"URL": "https://prod.example/workflows/x?sig=y", "TIMEOUT": 5}) == []
    assert run({}) == ["E011"]
    assert run({"URL": "teams"}) == ["E012"]
    assert run({"URL": "http://prod.example/x"}) == ["W003"]
    assert run({"URL": "https://prod.example/x", "TIMEOUT": 0}) == ["E015"]
    assert run({"URL": "https://prod.example/x", "SECRET": "x"}) == ["E010"]
