"""The Slack backend against a loopback server that answers as Slack's incoming webhooks do."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from slack_sdk.models.blocks import Block
from wagtail.log_actions import LogContext
from werkzeug import Request, Response

from tests.testapp.models import BlogPage
from wagtail_publish_hooks.backends import slack
from wagtail_publish_hooks.backends.slack import (
    SlackBackend,
    escape_mrkdwn,
    mrkdwn_link,
    truncate_mrkdwn,
)
from wagtail_publish_hooks.checks.settings import check_settings
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus, DestinationState

pytestmark = pytest.mark.django_db(transaction=True)

SLACK = "wagtail_publish_hooks.backends.slack.SlackBackend"
#: The part of the path that is the webhook's secret, as in hooks.slack.com/services/T/B/<token>.
TOKEN = "xT0k3nS3cr3tx"
PATH = f"/services/T000/B000/{TOKEN}"


@pytest.fixture(autouse=True)
def fresh_pacer():
    """The loopback server's URL is the same in every test: forget earlier sends to it."""
    slack.pacer.reset()
    yield
    slack.pacer.reset()


@pytest.fixture
def slack_destination(configure, httpserver):
    def apply(options: dict | None = None, **config):
        destination = {
            "BACKEND": SLACK,
            "OPTIONS": {"URL": httpserver.url_for(PATH), "MIN_INTERVAL": 0, **(options or {})},
        }
        return configure(DESTINATIONS={"team": destination}, **{"RETRY_SCHEDULE": [0], **config})

    return apply


def slack_answers(*responses):
    """Reply like Slack: ``ok`` with 200, or an error code as a plain-text body."""
    queue = list(responses)

    def handler(request: Request) -> Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        status, body, headers = (*item, {})[:3] if isinstance(item, tuple) else (item, "ok", {})
        return Response(body, status=status, headers=headers, content_type="text/html")

    return handler


def sent_messages(httpserver) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


def assert_valid_blocks(message: dict) -> None:
    """Every block parses into slack_sdk's models, validates, and loses nothing on the way."""
    assert message["blocks"]
    for block in message["blocks"]:
        model = Block.parse(block)
        assert model is not None, block
        model.validate_json()
        assert model.to_dict() == block


def publish(page, user=None):
    with LogContext(user=user):
        page.save_revision(user=user).publish(user=user)


def test_publish_sends_a_block_kit_message(
    slack_destination, httpserver, draft_blog_page, django_user_model
):
    slack_destination()
    httpserver.expect_request(PATH, method="POST").respond_with_handler(slack_answers(200))
    editor = django_user_model.objects.create_superuser("editor", "e@example.com", "pw")
    publish(draft_blog_page, editor)

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    request, _ = httpserver.log[0]
    assert request.headers["Content-Type"].startswith("application/json")
    message = json.loads(request.get_data())
    assert_valid_blocks(message)
    header, section, context = message["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Page published", "emoji": True},
    }
    link = "<http://localhost/news/hello-world/|Hello world>"
    text = f"*{link}* was published by editor.\nFirst published."
    assert section["text"] == {"type": "mrkdwn", "text": text}
    assert [element["text"] for element in context["elements"]] == [
        "*Event:* Page published",
        "*Type:* `testapp.BlogPage`",
        "*By:* editor",
        "*Site:* localhost",
    ]
    assert message["text"] == text
    assert Attempt.objects.get().response_body == "ok"


def test_a_republish_says_what_changed(slack_destination, httpserver, draft_blog_page):
    slack_destination()
    httpserver.expect_request(PATH, method="POST").respond_with_handler(slack_answers(200))
    publish(draft_blog_page)
    page = BlogPage.objects.get(pk=draft_blog_page.pk)
    page.title, page.intro, page.body = "Hello *again*", "New intro " * 20, "<p>Long</p>" * 50
    publish(page)
    page.save_revision().publish()  # nothing changed

    first, changed, unchanged = (m["blocks"][1]["text"]["text"] for m in sent_messages(httpserver))
    assert first.endswith("\nFirst published.")
    assert changed.endswith(" was published.\nTitle, body and intro changed.")
    assert "New intro" not in changed and "Long" not in changed  # names, never values
    assert unchanged.endswith("\nNothing changed.")


def test_unpublish_reads_as_such(slack_destination, httpserver, draft_blog_page):
    slack_destination()
    httpserver.expect_request(PATH).respond_with_handler(slack_answers(200))
    publish(draft_blog_page)
    draft_blog_page.refresh_from_db()
    draft_blog_page.unpublish()

    _first, second = sent_messages(httpserver)
    assert_valid_blocks(second)
    assert second["blocks"][0]["text"]["text"] == "Page unpublished"
    assert "was unpublished" in second["text"]
    assert "*By:*" not in json.dumps(second)


def test_user_text_is_escaped_for_mrkdwn(slack_destination, httpserver, blog_index):
    slack_destination()
    httpserver.expect_request(PATH).respond_with_handler(slack_answers(200))
    page = BlogPage(title="Q&A <!channel> <http://evil|click>", slug="qa", live=False)
    blog_index.add_child(instance=page)
    publish(page)

    message = sent_messages(httpserver)[0]
    assert_valid_blocks(message)
    text = message["blocks"][1]["text"]["text"]
    assert text.startswith(
        "*<http://localhost/news/qa/|Q&amp;A &lt;!channel&gt; &lt;http://evil¦click&gt;>*"
    )
    assert "<!channel>" not in json.dumps(message)


def test_a_template_per_destination(slack_destination, httpserver, draft_blog_page, settings):
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [
                    (
                        "django.template.loaders.locmem.Loader",
                        {
                            "custom.txt": ":rocket: {{ link }} is live "
                            '({{ object_type }}, {{ payload.data.page.slug }}) & "{{ title }}"',
                        },
                    )
                ]
            },
        }
    ]
    slack_destination(options={"TEMPLATE": "custom.txt"})
    httpserver.expect_request(PATH).respond_with_handler(slack_answers(200))
    publish(draft_blog_page)

    message = sent_messages(httpserver)[0]
    assert_valid_blocks(message)
    expected = (
        ":rocket: <http://localhost/news/hello-world/|Hello world> is live "
        '(testapp.BlogPage, hello-world) & "Hello world"'
    )
    # Rendered without HTML escaping: Slack would show "&quot;" as it is.
    assert message["text"] == expected
    assert message["blocks"][1]["text"]["text"] == expected


def test_long_text_is_truncated_to_slacks_limits_without_breaking_links(
    slack_destination, httpserver, draft_blog_page, settings
):
    filler = "word " * 596  # 2980 characters, so the link straddles the 3000 limit
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [
                    (
                        "django.template.loaders.locmem.Loader",
                        {"long.txt": filler + "{{ link }} " + "tail " * 9000},
                    )
                ]
            },
        }
    ]
    slack_destination(options={"TEMPLATE": "long.txt"})
    httpserver.expect_request(PATH).respond_with_handler(slack_answers(200))
    publish(draft_blog_page)

    message = sent_messages(httpserver)[0]
    assert_valid_blocks(message)
    section = message["blocks"][1]["text"]["text"]
    assert len(section) <= 3000
    assert section.endswith("…")
    assert "<http" not in section  # the link did not fit whole, so it is left out entirely
    assert section.count("<") == section.count(">")
    assert len(message["text"]) <= 40_000
    assert "<http://localhost/news/hello-world/|Hello world>" in message["text"]
    assert message["text"].endswith("…")


@pytest.mark.parametrize("limit", range(1, 60))
def test_truncate_never_splits_a_link_or_an_entity(limit):
    text = "Hi *<https://example.com/a|A &amp; B>* &lt;x&gt; and <https://example.com/b|b>."
    cut = truncate_mrkdwn(text, limit)
    assert len(cut) <= limit
    body = cut.removesuffix("…")
    assert text.startswith(body)
    assert body.count("<") == body.count(">")
    tail = body[body.rfind("&") :] if "&" in body else ""
    assert not tail or ";" in tail


def test_truncate_leaves_short_text_alone():
    assert truncate_mrkdwn("<https://x|y>", 13) == "<https://x|y>"


def test_escape_and_link_helpers():
    assert escape_mrkdwn("a & <b> *c*") == "a &amp; &lt;b&gt; *c*"
    assert mrkdwn_link(None, "A<B") == "A&lt;B"
    assert mrkdwn_link("https://x/?a=1&b=|", "T") == "<https://x/?a=1&amp;b=%7C|T>"


def test_a_long_title_fits_every_block(slack_destination, httpserver, blog_index):
    slack_destination()
    httpserver.expect_request(PATH).respond_with_handler(slack_answers(200))
    page = BlogPage(title="&" * 255, slug="amps", live=False)
    blog_index.add_child(instance=page)
    publish(page)
    assert_valid_blocks(sent_messages(httpserver)[0])


# -- Slack's answers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "outcome", "disabled", "error"),
    [
        (400, "invalid_payload", DeliveryStatus.FAILED, False, "invalid_payload"),
        (400, "invalid_blocks", DeliveryStatus.FAILED, False, "invalid_blocks"),
        (403, "action_prohibited", DeliveryStatus.FAILED, False, "action_prohibited"),
        (404, "channel_not_found", DeliveryStatus.FAILED, False, "channel_not_found"),
        (403, "invalid_token", DeliveryStatus.FAILED, True, "invalid_token"),
        (404, "no_service", DeliveryStatus.FAILED, True, "no_service"),
        (403, "no_service", DeliveryStatus.FAILED, True, "no_service"),
        (410, "channel_is_archived", DeliveryStatus.FAILED, True, "channel_is_archived"),
        (410, "team_disabled", DeliveryStatus.FAILED, True, "team_disabled"),
        (410, "", DeliveryStatus.FAILED, True, "HTTP 410"),
        (500, "internal_error", DeliveryStatus.RETRYING, False, "HTTP 500"),
        (503, "<html>busy</html>", DeliveryStatus.RETRYING, False, "HTTP 503"),
    ],
)
def test_slack_errors_are_recorded_and_mapped(
    slack_destination, httpserver, draft_blog_page, status, body, outcome, disabled, error
):
    slack_destination(MAX_ATTEMPTS=2, RETRY_SCHEDULE=[60])
    httpserver.expect_request(PATH).respond_with_handler(slack_answers((status, body)))
    publish(draft_blog_page)

    delivery = Delivery.objects.get()
    attempt = Attempt.objects.get()
    assert delivery.status == outcome
    assert attempt.status_code == status
    assert attempt.response_body == body
    assert error in delivery.last_error
    assert TOKEN not in delivery.last_error
    state = DestinationState.objects.filter(alias="team").first()
    assert (state is not None and state.is_disabled) is disabled
    if disabled:
        assert "disabled" in delivery.last_error


def test_a_disabled_destination_sends_nothing_more(slack_destination, httpserver, blog_index):
    slack_destination()
    httpserver.expect_request(PATH).respond_with_handler(slack_answers((404, "no_service")))
    for slug in ("one", "two"):
        page = BlogPage(title=slug, slug=slug, live=False)
        blog_index.add_child(instance=page)
        publish(page)
    assert len(httpserver.log) == 1
    assert sorted(Delivery.objects.values_list("status", flat=True)) == [
        DeliveryStatus.FAILED,
        DeliveryStatus.FAILED,
    ]


def test_429_is_retried_after_retry_after(slack_destination, httpserver, draft_blog_page):
    slack_destination()
    httpserver.expect_request(PATH).respond_with_handler(
        slack_answers((429, "rate_limited", {"Retry-After": "7"}))
    )
    publish(draft_blog_page)

    delivery = Delivery.objects.get()
    attempt = Attempt.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert attempt.status_code == 429
    assert attempt.response_body == "rate_limited"
    assert "rate_limited" in delivery.last_error
    assert delivery.next_attempt_at >= attempt.started_at + timedelta(seconds=7)
    assert len(httpserver.log) == 1


def test_after_a_429_nothing_is_sent_to_that_webhook_until_retry_after(
    slack_destination, httpserver, blog_index, deliver
):
    slack_destination()
    httpserver.expect_request(PATH).respond_with_handler(
        slack_answers((429, "rate_limited", {"Retry-After": "30"}), 200)
    )
    for slug in ("one", "two"):
        page = BlogPage(title=slug, slug=slug, live=False)
        blog_index.add_child(instance=page)
        publish(page)

    assert len(httpserver.log) == 1
    second = Delivery.objects.order_by("pk").last()
    assert second.status == DeliveryStatus.RETRYING
    assert "rate limited" in second.last_error
    assert second.next_attempt_at >= second.created_at + timedelta(seconds=28)


def test_429_then_ok_is_delivered(slack_destination, httpserver, draft_blog_page, deliver):
    slack_destination()
    httpserver.expect_request(PATH).respond_with_handler(
        slack_answers((429, "rate_limited", {"Retry-After": "0"}), 200)
    )
    publish(draft_blog_page)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 2


def test_connection_refused_is_retried(configure, free_port, draft_blog_page):
    configure(
        DESTINATIONS={
            "team": {"BACKEND": SLACK, "OPTIONS": {"URL": f"http://127.0.0.1:{free_port}{PATH}"}}
        },
        RETRY_SCHEDULE=[60],
    )
    publish(draft_blog_page)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert "connection refused" in delivery.last_error
    assert TOKEN not in delivery.last_error


# -- Pacing -----------------------------------------------------------------------------------


def test_messages_to_one_webhook_are_paced(slack_destination, httpserver, blog_index):
    slack_destination(options={"MIN_INTERVAL": 0.3})
    arrivals: list[float] = []

    def record(request: Request) -> Response:
        arrivals.append(time.monotonic())
        return Response("ok")

    httpserver.expect_request(PATH).respond_with_handler(record)
    for slug in ("one", "two", "three"):
        page = BlogPage(title=slug, slug=slug, live=False)
        blog_index.add_child(instance=page)
        publish(page)

    assert Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 2
    assert all(gap >= 0.28 for gap in gaps), gaps


def test_pacing_is_per_url_and_thread_safe():
    pacer = slack.MinimumInterval()
    starts: dict[str, list[float]] = {"a": [], "b": []}
    lock = threading.Lock()

    def send(key: str) -> None:
        pacer.wait(key, 0.2)
        with lock:
            starts[key].append(time.monotonic())

    began = time.monotonic()
    threads = [threading.Thread(target=send, args=(key,)) for key in "aaab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    a = sorted(starts["a"])
    assert all(later - earlier >= 0.18 for earlier, later in itertools.pairwise(a)), a
    assert starts["b"][0] - began < 0.1  # another webhook never waits for this one


# -- Secrets, description, checks -------------------------------------------------------------


def test_describe_hides_the_webhook_path():
    backend = SlackBackend(
        alias="team", options={"URL": f"https://hooks.slack.com/services/T0/B0/{TOKEN}"}
    )
    assert backend.describe() == "Slack https://hooks.slack.com/…"
    assert TOKEN not in repr(backend)


def test_the_url_is_not_logged(slack_destination, httpserver, draft_blog_page, caplog):
    slack_destination()
    httpserver.expect_request(PATH).respond_with_handler(slack_answers((404, "no_service")))
    with caplog.at_level(logging.DEBUG, logger="wagtail_publish_hooks"):
        publish(draft_blog_page)
    # (werkzeug's records are the test server's own access log, the receiving end.)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")
    assert "no_service" in ours
    assert TOKEN not in ours
    attempt = Attempt.objects.get()
    assert TOKEN not in json.dumps(attempt.request_headers) + attempt.error


def test_the_test_command_sends_a_valid_message(slack_destination, httpserver, site_root):
    slack_destination()
    httpserver.expect_request(PATH).respond_with_handler(slack_answers(200))
    call_command("publish_hooks", "test", "team", stdout=open("/dev/null", "w"))  # noqa: SIM115
    message = sent_messages(httpserver)[0]
    assert_valid_blocks(message)
    assert message["blocks"][0]["text"]["text"] == "Test event"


def slack_checks(settings, options):
    settings.WAGTAIL_PUBLISH_HOOKS = {
        "DESTINATIONS": {"team": {"BACKEND": SLACK, "OPTIONS": options}}
    }
    return {(message.id, message.msg) for message in check_settings()}


@pytest.mark.parametrize(
    ("options", "check_id", "text"),
    [
        ({}, "E011", "['OPTIONS']['URL']: is required"),
        ({"URL": "hooks.slack.com/services/x"}, "E012", "['OPTIONS']['URL']"),
        ({"URL": "http://hooks.slack.com/services/x"}, "W003", "plain http://"),
        (
            {"URL": "https://hooks.slack.com/triggers/T0/1/abc"},
            "W006",
            "Workflow Builder webhook",
        ),
        ({"URL": "https://hooks.slack.com/services/x", "MIN_INTERVAL": -1}, "E015", "MIN_INTERVAL"),
        ({"URL": "https://hooks.slack.com/services/x", "TIMEOUT": "5"}, "E015", "TIMEOUT"),
        ({"URL": "https://hooks.slack.com/services/x", "TEMPLATE": 3}, "E026", "template name"),
        (
            {"URL": "https://hooks.slack.com/services/x", "TEMPLATE": "nope/missing.txt"},
            "E026",
            "'nope/missing.txt' does not exist",
        ),
        ({"URL": "https://hooks.slack.com/services/x", "CHANNEL": "#a"}, "E010", "CHANNEL"),
    ],
)
def test_option_checks(settings, options, check_id, text):
    found = slack_checks(settings, options)
    assert any(
        message_id == f"wagtail_publish_hooks.{check_id}" and text in msg
        for message_id, msg in found
    ), found


def test_valid_options_pass_the_checks(settings):
    assert (
        slack_checks(
            settings,
            {
                "URL": "https://hooks.slack.com/services/T0/B0/x",
                "TEMPLATE": "wagtail_publish_hooks/slack/message.txt",
                "TIMEOUT": 5,
                "CONNECT_TIMEOUT": 2,
                "MIN_INTERVAL": 0,
            },
        )
        == set()
    )


def test_a_missing_template_fails_at_once(slack_destination, httpserver, draft_blog_page):
    slack_destination(options={"TEMPLATE": "nope/missing.txt"})
    httpserver.expect_request(PATH).respond_with_handler(slack_answers(200))
    publish(draft_blog_page)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "'nope/missing.txt' cannot be used" in delivery.last_error
    assert httpserver.log == []
