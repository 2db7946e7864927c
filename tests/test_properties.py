"""Property-based tests: hostile text in pages gives valid, in-limit messages; hostile settings
give system checks, never a crash.

Example counts stay moderate for the suite's sake; ``PUBLISH_HOOKS_HYPOTHESIS=thorough`` runs
many more.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core import checks
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from tests.conftest import make_secret
from wagtail_publish_hooks.backends import discord, slack, teams
from wagtail_publish_hooks.backends.webhook import encode_body
from wagtail_publish_hooks.conf import DEFAULTS, DESTINATION_KEYS
from wagtail_publish_hooks.events import BUILTIN_EVENT_TYPES, build_body, new_event_id
from wagtail_publish_hooks.http import encode_json

settings.register_profile(
    "suite",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROFILE = settings.get_profile(os.environ.get("PUBLISH_HOOKS_HYPOTHESIS", "suite"))
#: For the properties that publish real pages: fewer examples, each a database round trip.
DB_PROFILE = settings(PROFILE, max_examples=max(PROFILE.max_examples // 4, 10))

BACKENDS = "wagtail_publish_hooks.backends"

# -- Hostile text -----------------------------------------------------------------------------

METACHARACTERS = "<>&*_~|@`[]()#:-\\!/\"'\n\r\t\x00\x1b\u200b\u202e\ufeff"
TRICKS = [
    "@everyone",
    "@here",
    "<!channel>",
    "<!everyone>",
    "<@U012AB3CD>",
    "<https://evil.example|click>",
    "[link](https://evil.example)",
    "```code```",
    "&amp;&lt;",
    "# heading",
    "1. list",
    "- item",
    "> quote",
    "\\",
    "🙂" * 3,
    "e\u0301",
]
LONE_SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff", "\ud83d"]

plain_text = st.text(max_size=300)
meta_text = st.text(alphabet=METACHARACTERS + "ab ", max_size=200)
trick_text = st.lists(st.sampled_from(TRICKS) | st.text(max_size=5), max_size=12).map("".join)
surrogate_text = st.lists(
    st.sampled_from(LONE_SURROGATES) | st.text(max_size=5), min_size=1, max_size=10
).map("".join)
huge_text = st.builds(
    lambda piece, times: piece * times,
    st.text(min_size=1, max_size=8) | st.sampled_from(TRICKS),
    st.integers(min_value=100, max_value=20_000),
)
hostile_text = plain_text | meta_text | trick_text | surrogate_text | huge_text

#: Slugs as Wagtail accepts them (Unicode letters, digits, '-' and '_').
slugs = st.from_regex(r"[\w-]{1,60}", fullmatch=True)


@st.composite
def urls(draw) -> str:
    host = draw(
        st.sampled_from(["example.com", "www.example.org", "localhost", "xn--bcher-kva.ch"])
    )
    segments = draw(st.lists(slugs, max_size=draw(st.sampled_from([3, 30]))))
    return f"https://{host}/" + "".join(f"{segment}/" for segment in segments)


@st.composite
def payloads(draw) -> dict[str, Any]:
    event_type = draw(
        st.sampled_from(BUILTIN_EVENT_TYPES)
        | st.from_regex(r"[a-z]{1,9}\.[a-z_]{1,20}", fullmatch=True)
    )
    url = draw(st.none() | urls())
    page = {
        "id": draw(st.integers(min_value=1, max_value=2**31)),
        "type": draw(st.sampled_from(["testapp.BlogPage", "blog.BlogPage"]) | hostile_text),
        "title": draw(hostile_text),
        "slug": draw(slugs | hostile_text),
        "url_path": draw(hostile_text),
        "url": url,
        "urls": draw(st.lists(urls(), max_size=3)),
        "locale": draw(
            st.none() | st.sampled_from(["en", "fr", "pt-br", "zh-hant"]) | hostile_text
        ),
        "live": draw(st.booleans()),
        "revision_id": draw(st.none() | st.integers(min_value=1)),
        "first_published_at": draw(st.none() | st.just("2026-11-21T21:40:00.123456Z")),
        "last_published_at": draw(
            st.none() | st.just("2026-11-21T21:40:00.123456Z") | hostile_text
        ),
    }
    data: dict[str, Any] = {
        "page": page,
        "actor": draw(
            st.none() | st.fixed_dictionaries({"id": st.integers(), "username": hostile_text})
        ),
        "scheduled": draw(st.booleans()),
    }
    if draw(st.booleans()):
        data["moved"] = {"urls_before": draw(st.lists(urls(), min_size=1, max_size=2))}
    return build_body(
        event_id=new_event_id(),
        event_type=event_type,
        timestamp=datetime(2026, 11, 21, 21, 40, tzinfo=UTC),
        data=data,
    )


# -- The checks every message must pass -------------------------------------------------------


def assert_webhook_body(payload: dict[str, Any]) -> None:
    body = encode_body(payload)
    decoded = json.loads(body.decode("utf-8"))  # strict UTF-8: no lone surrogates on the wire
    assert decoded["id"] == payload["id"] and decoded["type"] == payload["type"]
    text = json.dumps(payload, ensure_ascii=False)
    if not any(0xD800 <= ord(char) <= 0xDFFF for char in text):
        assert decoded == json.loads(text)


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    backend = slack.SlackBackend(alias="team", options={"URL": "https://hooks.slack.com/x"})
    return backend.build_message(payload)


def assert_slack_message(payload: dict[str, Any]) -> None:
    message = slack_message(payload)
    wire = json.loads(encode_json(message).decode("utf-8"))
    assert len(wire["text"]) <= 40_000
    header, section, context = wire["blocks"]
    assert 1 <= len(header["text"]["text"]) <= slack.HEADER_TEXT_LIMIT
    assert 1 <= len(section["text"]["text"]) <= slack.SECTION_TEXT_LIMIT
    assert 1 <= len(context["elements"]) <= 10
    for element in context["elements"]:
        assert 1 <= len(element["text"]) <= slack.CONTEXT_TEXT_LIMIT
    for block in wire["blocks"]:
        model = Block.parse(block)
        assert model is not None, block
        model.validate_json()
        assert model.to_dict() == block
    # Page data cannot ping a channel or open a link of its own making.
    for text in [wire["text"], section["text"]["text"], *(e["text"] for e in context["elements"])]:
        for mention in ("<!channel>", "<!everyone>", "<!here>", "<@U012AB3CD>", "<https://evil"):
            assert mention not in text


def assert_teams_message(payload: dict[str, Any]) -> None:
    message = teams.build_message(payload)
    body = teams.encode(message)
    assert len(body) <= teams.MAX_MESSAGE_BYTES
    wire = json.loads(body.decode("utf-8"))
    assert wire["type"] == "message"
    [attachment] = wire["attachments"]
    assert attachment["contentType"] == teams.CARD_CONTENT_TYPE
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == teams.CARD_VERSION
    for element in card["body"]:
        assert element["type"] in ("TextBlock", "FactSet")
        if element["type"] == "TextBlock":
            assert isinstance(element["text"], str)
        else:
            for fact in element["facts"]:
                assert isinstance(fact["title"], str) and isinstance(fact["value"], str)
    for action in card.get("actions", []):
        assert action["type"] == "Action.OpenUrl"
        assert action["url"].startswith(("http://", "https://"))


def assert_discord_message(payload: dict[str, Any]) -> None:
    message = discord.build_message(payload)
    wire = json.loads(encode_json(message).decode("utf-8"))
    assert len(wire["content"]) <= discord.MAX_CONTENT
    assert wire["allowed_mentions"] == {"parse": []}
    assert len(wire["embeds"]) <= 10
    total = 0
    for embed in wire["embeds"]:
        assert len(embed.get("title", "")) <= discord.MAX_TITLE
        assert len(embed.get("description", "")) <= discord.MAX_DESCRIPTION
        assert len(embed.get("fields", [])) <= discord.MAX_FIELDS
        for field in embed.get("fields", []):
            assert 1 <= len(field["name"]) <= discord.MAX_FIELD_NAME
            assert 1 <= len(field["value"]) <= discord.MAX_FIELD_VALUE
        assert len(embed.get("footer", {}).get("text", "")) <= discord.MAX_FOOTER
        assert 0 <= embed["color"] <= 0xFFFFFF
        total += discord.embed_length(embed)
    assert total <= discord.MAX_EMBED_TOTAL
    # A mention in the page's title is shown, not rendered as a mention.
    assert "@everyone" not in wire["content"].replace("\\@", "")


@PROFILE
@given(payloads())
def test_any_page_data_gives_valid_messages_for_every_backend(payload):
    assert_webhook_body(payload)
    assert_slack_message(payload)
    assert_teams_message(payload)
    assert_discord_message(payload)


@PROFILE
@given(
    st.dictionaries(
        st.sampled_from(["page", "snippet", "object", "actor", "moved", "message", "scheduled"])
        | st.text(max_size=20),
        st.deferred(lambda: values) | hostile_text,
        max_size=5,
    )
)
def test_custom_event_data_gives_valid_json(data):
    payload = build_body(
        event_id=new_event_id(),
        event_type="shop.order_shipped",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        data=data,
    )
    assert_webhook_body(payload)
    assert_slack_message(payload)
    assert_teams_message(payload)
    assert_discord_message(payload)


def test_lone_surrogates_become_replacement_characters():
    payload = build_body(
        event_id="evt_1",
        event_type="page.published",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        data={"page": {"title": "a\ud800b\ud83d\ude00"}},
    )
    assert json.loads(encode_body(payload))["data"]["page"]["title"] == "a\ufffdb\U0001f600"


# -- Real pages with hostile titles, slugs, locales and rich text -------------------------------

db_titles = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
    min_size=1,
    max_size=255,
) | st.lists(st.sampled_from(TRICKS), min_size=1, max_size=10).map(lambda p: "".join(p)[:255])
rich_text = st.lists(
    st.sampled_from(
        [
            "<p>",
            "</p>",
            "<b>",
            "</b>",
            '<a href="https://x.example">',
            "</a>",
            "&amp;",
            "&lt;script&gt;",
            "<br/>",
            "<h2>",
            "</h2>",
        ]
    )
    | st.text(
        alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40
    ),
    max_size=30,
).map("".join)


@pytest.mark.django_db
@DB_PROFILE
@given(title=db_titles, slug=slugs, body=rich_text, language=st.sampled_from(["en", "fr", "pt-br"]))
def test_published_pages_give_valid_messages(
    title, slug, body, language, blog_index, configure, django_capture_on_commit_callbacks
):
    from wagtail.models import Locale

    from tests.testapp.models import BlogPage
    from wagtail_publish_hooks.models import Delivery

    configure(
        DESTINATIONS={
            "consumer": {
                "BACKEND": f"{BACKENDS}.webhook.WebhookBackend",
                "INCLUDE": ["api"],
                "OPTIONS": {"URL": "http://127.0.0.1:9/hooks", "SECRET": make_secret()},
            }
        }
    )
    locale, _ = Locale.objects.get_or_create(language_code=language)
    Delivery.objects.all().delete()
    page = BlogPage(title=title, slug=f"{slug[:50]}-{BlogPage.objects.count()}", body=body)
    page.locale = locale if blog_index.locale_id == locale.pk else blog_index.locale
    blog_index.add_child(instance=page)
    # The page is recorded; delivery would run after commit, which this test does not reach.
    with django_capture_on_commit_callbacks(execute=False):
        page.save_revision().publish()
    payload = Delivery.objects.get().payload
    assert payload["data"]["page"]["title"] == title
    assert_webhook_body(payload)
    assert_slack_message(payload)
    assert_teams_message(payload)
    assert_discord_message(payload)


# -- Hostile settings -------------------------------------------------------------------------

REAL_BACKENDS = [
    f"{BACKENDS}.webhook.WebhookBackend",
    f"{BACKENDS}.slack.SlackBackend",
    f"{BACKENDS}.teams.TeamsBackend",
    f"{BACKENDS}.discord.DiscordBackend",
    f"{BACKENDS}.build_hook.BuildHookBackend",
    f"{BACKENDS}.revalidate.RevalidateBackend",
    f"{BACKENDS}.email.EmailBackend",
]
OPTION_KEYS = sorted(
    {
        "URL",
        "SECRET",
        "HEADERS",
        "TIMEOUT",
        "CONNECT_TIMEOUT",
        "TEMPLATE",
        "MIN_INTERVAL",
        "USERNAME",
        "AVATAR_URL",
        "PROVIDER",
        "BRANCH",
        "SECRET_HEADER",
        "TAGS",
        "COALESCE_SECONDS",
        "TO_USERS",
        "TO_GROUPS",
        "TO_OWNER",
        "TO_SUBMITTER",
        "SUBJECT_TEMPLATE",
        "BODY_TEMPLATE",
        "HTML_TEMPLATE",
        "FROM_EMAIL",
        "BOGUS",
    }
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "http://127.0.0.1:9/hooks",
            "https://127.0.0.1:9/x",
            "http://[::1]:9/",
            "https://user:pw@127.0.0.1/",
            "http://127.0.0.1:99999/",
            "http://[",
            "page.published",
            "page.*",
            "testapp.BlogPage",
            "api",
            "whsec_" + "A" * 32,
            "whsec_!!",
            "10.0.0.0/8",
            "127.0.0.0/33",
            "default",
        ]
    )
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10) | st.sampled_from(OPTION_KEYS), inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def destinations(draw) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(values)
    config: dict[Any, Any] = {}
    if draw(st.integers(0, 9)):
        config["BACKEND"] = draw(st.sampled_from(REAL_BACKENDS) | values)
    for key in [*sorted(DESTINATION_KEYS - {"BACKEND", "OPTIONS"}), "BOGUS"]:
        if draw(st.booleans()):
            config[key] = draw(values)
    if draw(st.integers(0, 4)):
        config["OPTIONS"] = draw(
            st.dictionaries(st.sampled_from(OPTION_KEYS), values, max_size=6) | values
        )
    return config


@st.composite
def publish_hooks_settings(draw) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(values)
    raw: dict[Any, Any] = {}
    for key in [*DEFAULTS, "BOGUS"]:
        if key != "DESTINATIONS" and draw(st.booleans()):
            raw[key] = draw(values)
    raw["DESTINATIONS"] = draw(
        st.dictionaries(
            st.text(max_size=12) | st.sampled_from(["consumer", "python:x"]),
            destinations(),
            max_size=3,
        )
        | values
    )
    return raw


loopback_urls = st.builds(
    "{}://127.0.0.1:9/{}".format,
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[\w/-]{0,30}", fullmatch=True),
)
# Within the bounds of every numeric option (``limits.py``): larger ones are refused by E048.
positive = st.floats(min_value=0.01, max_value=300) | st.integers(min_value=1, max_value=300)
plausible_options = st.fixed_dictionaries(
    {"URL": loopback_urls},
    optional={
        "TIMEOUT": positive,
        "CONNECT_TIMEOUT": positive,
        "SECRET": st.just(make_secret()) | st.lists(st.builds(make_secret), min_size=1, max_size=3),
        "HEADERS": st.dictionaries(
            st.from_regex(r"X-[A-Za-z0-9-]{1,20}", fullmatch=True),
            st.text(alphabet=st.characters(exclude_characters="\r\n"), max_size=40),
            max_size=3,
        ),
        "MIN_INTERVAL": st.just(0),
        "USERNAME": st.text(alphabet="abcdefgh XYZ_-!", min_size=1, max_size=80),
        "BRANCH": hostile_text,
        "COALESCE_SECONDS": st.just(0) | positive,
    },
)
PLAUSIBLE_BACKENDS = {
    "webhook.WebhookBackend": {"URL", "TIMEOUT", "CONNECT_TIMEOUT", "SECRET", "HEADERS"},
    "slack.SlackBackend": {"URL", "TIMEOUT", "CONNECT_TIMEOUT", "MIN_INTERVAL"},
    "teams.TeamsBackend": {"URL", "TIMEOUT", "CONNECT_TIMEOUT"},
    "discord.DiscordBackend": {"URL", "TIMEOUT", "CONNECT_TIMEOUT", "USERNAME"},
    "build_hook.BuildHookBackend": {"URL", "TIMEOUT", "CONNECT_TIMEOUT", "COALESCE_SECONDS"},
    "revalidate.RevalidateBackend": {"URL", "TIMEOUT", "CONNECT_TIMEOUT", "COALESCE_SECONDS"},
}
event_patterns = st.sampled_from(
    ["page.published", "page.*", "*", "page.unpublished", "snippet.*", "shop.order_shipped"]
)
model_labels = st.sampled_from(["testapp.BlogPage", "testapp.BasePage", "wagtailcore.Page"])


@st.composite
def plausible_destination(draw) -> dict[str, Any]:
    backend = draw(st.sampled_from(sorted(PLAUSIBLE_BACKENDS)))
    options = {
        key: value
        for key, value in draw(plausible_options).items()
        if key in PLAUSIBLE_BACKENDS[backend]
    }
    config: dict[str, Any] = {"BACKEND": f"{BACKENDS}.{backend}", "OPTIONS": options}
    if draw(st.booleans()):
        config["EVENTS"] = draw(st.lists(event_patterns, min_size=1, max_size=3))
    if draw(st.booleans()):
        config["MODELS"] = draw(st.lists(model_labels, min_size=1, max_size=2))
    if draw(st.booleans()):
        config["EXCLUDE_ALIASES"] = draw(st.booleans())
    if draw(st.booleans()):
        config["INCLUDE"] = draw(st.sampled_from([[], ["api"]]))
    return config


@st.composite
def plausible_settings(draw) -> dict[str, Any]:
    """Settings that are mostly right, with hostile text wherever text is free-form."""
    raw: dict[str, Any] = {
        "DESTINATIONS": draw(
            st.dictionaries(
                st.text(
                    alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30
                ).filter(lambda alias: not alias.startswith("python:")),
                plausible_destination(),
                max_size=3,
            )
        )
    }
    optional = {
        "ENABLED": st.booleans(),
        "MAX_ATTEMPTS": st.integers(1, 50),
        "RETRY_SCHEDULE": st.lists(st.floats(0, 604800) | st.integers(0, 604800), min_size=1),
        "ALLOW_PRIVATE_NETWORKS": st.booleans()
        | st.lists(st.sampled_from(["127.0.0.0/8", "::1/128", "10.0.0.0/8", "fd00::/8"])),
        "RETENTION_DAYS": st.integers(1, 3650),
        "BATCH_SIZE": st.integers(1, 1000),
        "LEASE_SECONDS": st.integers(1, 86400),
        "MAX_RUN_SECONDS": positive,
        "CONCURRENCY": st.integers(1, 64),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            raw[key] = draw(strategy)
    return raw


def run_checks(django_settings, value) -> list[checks.CheckMessage]:
    django_settings.WAGTAIL_PUBLISH_HOOKS = value
    return checks.run_checks(tags=["wagtail_publish_hooks"])


@PROFILE
@given(publish_hooks_settings())
def test_any_settings_give_check_messages_never_a_crash(settings, value):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    messages = run_checks(settings, value)
    for message in messages:
        assert isinstance(message, checks.CheckMessage)
        assert message.id and message.id.startswith("wagtail_publish_hooks.")
        assert message.msg


@pytest.mark.django_db
@DB_PROFILE
@given(value=plausible_settings() | publish_hooks_settings())
def test_settings_that_pass_the_checks_never_break_a_publish(
    value, settings, draft_blog_page, caplog, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    messages = run_checks(settings, value)
    assume(not any(m.level >= checks.ERROR for m in messages))
    # Only what the publish logs counts (the records of examples refused above stay in caplog).
    caplog.clear()
    # Recording only: delivering would send to whatever the settings name.
    with (
        caplog.at_level(logging.ERROR, logger="wagtail_publish_hooks"),
        django_capture_on_commit_callbacks(execute=False),
    ):
        draft_blog_page.save_revision().publish()
    draft_blog_page.refresh_from_db()
    assert draft_blog_page.live
    problems = [r.getMessage() for r in caplog.records if r.name == "wagtail_publish_hooks"]
    assert not problems, problems


numbers_and_impostors = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.booleans()
    | st.text(max_size=6)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
NUMERIC_OPTIONS = {
    "webhook.WebhookBackend": ("TIMEOUT", "CONNECT_TIMEOUT"),
    "slack.SlackBackend": ("TIMEOUT", "CONNECT_TIMEOUT", "MIN_INTERVAL"),
    "revalidate.RevalidateBackend": ("TIMEOUT", "CONNECT_TIMEOUT", "COALESCE_SECONDS"),
    "frontend_cache.FrontendCacheBackend": ("PURGE_ANCESTORS", "BATCH_SIZE", "COALESCE_SECONDS"),
}


@PROFILE
@given(
    option=st.sampled_from(
        [(backend, key) for backend, keys in NUMERIC_OPTIONS.items() for key in keys]
    ),
    value=numbers_and_impostors,
)
def test_a_number_the_checks_accept_is_one_the_backend_can_use_and_no_other(option, value):
    """The checks and the backends read numbers with one parser: what the checks accept builds
    a backend whose numbers are finite and bounded; what they refuse, the backend refuses too."""
    import math
    from datetime import timedelta

    from django.utils.module_loading import import_string

    from wagtail_publish_hooks.checks.destinations import check_destination
    from wagtail_publish_hooks.limits import OPTION_LIMITS, OutOfLimits

    backend_name, key = option
    path = f"{BACKENDS}.{backend_name}"
    base = {"URL": "https://consumer.example/hooks", "SECRET": "x" * 20}
    if "frontend_cache" in backend_name:
        base = {"BACKENDS": {"varnish": {"BACKEND": "tests.support.backends.NotABackend"}}}
    options = {**base, key: value}
    refused = [
        m
        for m in check_destination("d", {"BACKEND": path, "OPTIONS": options})
        if getattr(m, "setting_keys", ())[:2] == ("OPTIONS", key)
    ]
    try:
        backend = import_string(path)(alias="d", options=options)
        window = backend.coalesce_seconds()
    except OutOfLimits as exc:
        assert refused, (value, exc)
        assert {m.id[-4:] for m in refused} <= {"E015", "E039", "E048"}
        return
    assert not refused, (value, [m.msg for m in refused])
    limit = OPTION_LIMITS[key]
    assert math.isfinite(window) and 0 <= window <= 86400
    datetime.now(UTC) + timedelta(seconds=window)  # never overflows
    for name in ("timeout", "connect_timeout", "min_interval"):
        number = getattr(backend, name, None)
        if number is not None:
            assert math.isfinite(number) and 0 <= number <= 300
    if key == "PURGE_ANCESTORS":
        assert 0 <= backend.ancestors <= limit.maximum
