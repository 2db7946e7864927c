"""The checks of the Slack bot: E064 (a malformed SLACK_BOT), E065 (slack_sdk missing) and W034
(users chose Slack while no bot is configured)."""

from __future__ import annotations

import sys

import pytest
from django.core import checks
from django.db import connection

from wagtail_publish_hooks.subscription_models import Channel, NotificationPreferences

TOKEN = "xoxb-1111-2222-S3cr3tB0tT0k3n"


MINE = ("E064", "E065", "W034")


def run(settings, **values):
    """The registered checks' messages about the Slack bot (others, such as W001 for the
    tests' immediate task backend, are not this module's)."""
    settings.WAGTAIL_PUBLISH_HOOKS = {"ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"], **values}
    return [
        message
        for message in checks.run_checks(tags=["wagtail_publish_hooks"])
        if message.id.removeprefix("wagtail_publish_hooks.") in MINE
    ]


def ids(messages) -> list[str]:
    return [message.id.removeprefix("wagtail_publish_hooks.") for message in messages]


def test_a_well_formed_bot_passes(settings):
    assert run(settings, SLACK_BOT={"TOKEN": TOKEN}) == []
    assert run(settings, SLACK_BOT={"TOKEN": "xoxp-9-u", "API_URL": "http://127.0.0.1:9/api"}) == []
    assert run(settings, SLACK_BOT=None) == []


@pytest.mark.parametrize(
    ("value", "where", "problem"),
    [
        ("xoxb-1-S3cr3t", "['SLACK_BOT']:", "must be a dict"),
        ({}, "['SLACK_BOT']['TOKEN']:", "is required"),
        ({"TOKEN": ""}, "['SLACK_BOT']['TOKEN']:", "is required"),
        ({"TOKEN": 42}, "['SLACK_BOT']['TOKEN']:", "must be a Slack bot token (xoxb-…)"),
        ({"TOKEN": "xoxa-1-S3cr3t"}, "['SLACK_BOT']['TOKEN']:", "must be a Slack bot token"),
        ({"TOKEN": "xoxb-1-S3cr3t\n"}, "['SLACK_BOT']['TOKEN']:", "spaces or control characters"),
        ({"TOKEN": TOKEN, "API_URL": 1}, "['SLACK_BOT']['API_URL']:", "must be the URL"),
        ({"TOKEN": TOKEN, "API_URL": "ftp://x/api/"}, "['API_URL']:", "absolute https://"),
        ({"TOKEN": TOKEN, "API_URL": "https:///api/"}, "['API_URL']:", "with a host"),
        ({"TOKEN": TOKEN, "API_URL": "https://u:S3cr3t@x/api/"}, "['API_URL']:", "credentials"),
        ({"TOKEN": TOKEN, "API_URL": "https://x/api/?a=1"}, "['API_URL']:", "query"),
        ({"TOKEN": TOKEN, "API_URL": "https://x:99999/"}, "['API_URL']:", "not a valid URL"),
        ({"TOKEN": TOKEN, "TOKENS": TOKEN}, "['SLACK_BOT']['TOKENS']:", "is not a key"),
    ],
)
def test_e064_a_malformed_slack_bot_names_the_key_and_never_the_token(
    settings, value, where, problem
):
    messages = run(settings, SLACK_BOT=value)
    assert ids(messages) == ["E064"]
    message = messages[0]
    assert message.level == checks.ERROR
    assert f"WAGTAIL_PUBLISH_HOOKS{where}" in message.msg or where in message.msg
    assert problem in message.msg
    assert "S3cr3t" not in message.msg and "S3cr3t" not in (message.hint or "")


def test_e065_the_bot_without_slack_sdk(settings, monkeypatch):
    for name in [name for name in sys.modules if name.startswith("slack_sdk")]:
        monkeypatch.setitem(sys.modules, name, None)
    messages = run(settings, SLACK_BOT={"TOKEN": TOKEN})
    assert ids(messages) == ["E065"]
    assert "slack_sdk" in messages[0].msg
    assert messages[0].hint == "pip install 'wagtail-publish-hooks[slack]'"
    assert run(settings) == []  # no bot, no need for slack_sdk


@pytest.mark.django_db
def test_w034_slack_chosen_while_no_bot_is_configured(settings, django_user_model):
    ada = django_user_model.objects.create_user("ada", "ada@example.com", "pw")
    grace = django_user_model.objects.create_user("grace", "grace@example.com", "pw")
    NotificationPreferences.objects.create(user=ada, channel=Channel.EMAIL)
    assert run(settings) == []

    NotificationPreferences.objects.create(user=grace, channel=Channel.SLACK)
    messages = run(settings)
    assert ids(messages) == ["W034"]
    assert messages[0].level == checks.WARNING
    assert "1 user(s) chose Slack direct messages" in messages[0].msg
    assert "['SLACK_BOT']" in messages[0].msg

    assert run(settings, SLACK_BOT={"TOKEN": TOKEN}) == []


@pytest.mark.django_db
def test_w034_is_quiet_while_the_table_does_not_exist(settings, django_user_model, monkeypatch):
    user = django_user_model.objects.create_user("ada", "ada@example.com", "pw")
    NotificationPreferences.objects.create(user=user, channel=Channel.SLACK)
    assert ids(run(settings)) == ["W034"]
    # As before ``migrate``: the check reads no table that is not there.
    monkeypatch.setattr(connection.introspection, "table_names", lambda *a, **k: [])
    assert run(settings) == []


def test_w034_is_quiet_without_a_database(settings):
    # No database access is allowed here: the check must not fail for it.
    assert run(settings) == []
