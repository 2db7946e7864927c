"""Secrets stay secret: signing secrets, credential headers and webhook URLs (whose paths are
credentials) never appear in logs, exception messages, command output or stored attempts.

The tests run the whole pipeline through success, HTTP failures, refused connections, hostile
answers and a crashing hook, with every logger at DEBUG, then search everything captured.
"""

from __future__ import annotations

import json
import logging
import secrets as secrets_module
from collections.abc import Iterator
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core import checks
from django.core.management import CommandError, call_command
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from tests.conftest import WEBHOOK, make_secret
from tests.support import sinks
from wagtail_publish_hooks.conf import get_settings
from wagtail_publish_hooks.exceptions import DeliveryError
from wagtail_publish_hooks.http import close_session, post
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus, DestinationState, Event
from wagtail_publish_hooks.registry import get_backend, get_destinations

pytestmark = pytest.mark.django_db(transaction=True)

BACKENDS = "wagtail_publish_hooks.backends"


def token() -> str:
    return "tok" + secrets_module.token_hex(12)


class Switch:
    """A sink behaviour that can be changed while the sink runs."""

    def __init__(self, behaviour: sinks.Behaviour) -> None:
        self.behaviour = behaviour

    def __call__(self, conn, sink) -> None:
        self.behaviour(conn, sink)


def failing_tags(payload):
    raise RuntimeError("the tags hook crashed")


@pytest.fixture(autouse=True)
def fresh_session() -> Iterator[None]:
    close_session()
    yield
    close_session()


@pytest.fixture
def switch() -> Switch:
    return Switch(sinks.respond(keep_alive=False))


@pytest.fixture
def sink(switch) -> Iterator[sinks.Sink]:
    with sinks.Sink(switch) as server:
        yield server


@pytest.fixture
def everything(configure, sink, secret):
    """Every kind of destination, all pointing at the sink, each with its own secrets."""
    values = {
        "webhook secret": secret,
        "old webhook secret": make_secret(),
        "authorization": token(),
        "revalidate secret": token(),
        "slack": token(),
        "discord": token(),
        "teams": token(),
        "build hook": token(),
    }
    base = sink.url("")
    destinations = {
        "consumer": {
            "BACKEND": WEBHOOK,
            "OPTIONS": {
                "URL": f"{base}/hooks",
                "SECRET": [values["webhook secret"], values["old webhook secret"]],
                "HEADERS": {"Authorization": f"Bearer {values['authorization']}"},
                "TIMEOUT": 1,
            },
        },
        "frontend": {
            "BACKEND": f"{BACKENDS}.revalidate.RevalidateBackend",
            "OPTIONS": {
                "URL": f"{base}/api/revalidate",
                "SECRET": values["revalidate secret"],
                "COALESCE_SECONDS": 0,
                "TIMEOUT": 1,
            },
        },
        "team": {
            "BACKEND": f"{BACKENDS}.slack.SlackBackend",
            "OPTIONS": {
                "URL": f"{base}/services/T000/B000/{values['slack']}",
                "MIN_INTERVAL": 0,
                "TIMEOUT": 1,
            },
        },
        "discord": {
            "BACKEND": f"{BACKENDS}.discord.DiscordBackend",
            "OPTIONS": {"URL": f"{base}/api/webhooks/123/{values['discord']}", "TIMEOUT": 1},
        },
        "teams": {
            "BACKEND": f"{BACKENDS}.teams.TeamsBackend",
            "OPTIONS": {
                "URL": f"{base}/workflows/abc/triggers/manual/paths/invoke?sig={values['teams']}",
                "TIMEOUT": 1,
            },
        },
        "builds": {
            "BACKEND": f"{BACKENDS}.build_hook.BuildHookBackend",
            "OPTIONS": {
                "URL": f"{base}/build_hooks/{values['build hook']}",
                "COALESCE_SECONDS": 0,
                "TIMEOUT": 1,
            },
        },
    }
    configure(DESTINATIONS=destinations, RETRY_SCHEDULE=[0], MAX_ATTEMPTS=2)
    return values, destinations


def stored_rows() -> str:
    """Every column of every attempt, delivery, event and destination state, as text."""
    parts = []
    for model in (Attempt, Delivery, Event, DestinationState):
        for row in model.objects.values():
            parts.append(json.dumps(row, default=str, ensure_ascii=False))
    return "\n".join(parts)


def leaks(values: dict[str, str], texts: dict[str, str]) -> list[str]:
    """Which secrets appear where (by name: the report must not show the values either)."""
    found = []
    for where, text in texts.items():
        for name, value in values.items():
            # The JSON-escaped spelling too.
            if value in text or value.replace("/", "\\/") in text:
                found.append(f"the {name} in {where}")
    return found


def test_no_secret_anywhere_through_success_failure_and_commands(
    everything, switch, sink, draft_blog_page, caplog, capsys, settings, free_port
):
    values, destinations = everything
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []

    # 1. Everything accepted.
    draft_blog_page.save_revision().publish()
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    assert len(sink.requests) == len(destinations)

    # 2. Every receiver failing with 500, echoing what it was sent back in the body.
    switch.behaviour = sinks.respond(500, b"server error", keep_alive=False)
    draft_blog_page.title = "Second"
    draft_blog_page.save_revision().publish()

    # 3. Receivers that stall, reset or answer garbage.
    for behaviour in (sinks.stall, sinks.reset, sinks.garbage()):
        switch.behaviour = behaviour
        draft_blog_page.save_revision().publish()

    # 4. A hook of the site's that crashes (logged with its traceback).
    settings.WAGTAIL_PUBLISH_HOOKS["DESTINATIONS"]["frontend"]["OPTIONS"]["TAGS"] = (
        "tests.test_secrets.failing_tags"
    )
    settings.WAGTAIL_PUBLISH_HOOKS = dict(settings.WAGTAIL_PUBLISH_HOOKS)  # setting_changed
    draft_blog_page.save_revision().publish()
    assert Delivery.objects.filter(status=DeliveryStatus.FAILED).exists()

    # 5. The operator's commands.
    switch.behaviour = sinks.respond(503, b"down", keep_alive=False)
    call_command("publish_hooks", "status")
    for alias in destinations:
        try:
            call_command("publish_hooks", "test", alias, "--wait", "0.1")
        except CommandError as exc:
            outputs.append(str(exc))
    call_command("publish_hooks", "redeliver", "--failed")
    call_command("publish_hooks", "redeliver", "--id", str(Delivery.objects.first().pk))
    call_command("publish_hooks", "status")

    # 6. A receiver that cannot be reached at all.
    for config in settings.WAGTAIL_PUBLISH_HOOKS["DESTINATIONS"].values():
        config["OPTIONS"]["URL"] = config["OPTIONS"]["URL"].replace(
            f":{sink.port}/", f":{free_port}/"
        )
    settings.WAGTAIL_PUBLISH_HOOKS = dict(settings.WAGTAIL_PUBLISH_HOOKS)
    draft_blog_page.save_revision().publish()

    # 7. What a developer might print: reprs of the settings, destinations and backends.
    outputs.append(repr(get_settings()))
    outputs.append(repr(get_destinations()))
    for alias in destinations:
        backend = get_backend(alias)
        outputs += [repr(backend), str(backend), backend.describe()]
    outputs += [m.msg + (m.hint or "") for m in checks.run_checks(tags=["wagtail_publish_hooks"])]

    captured = capsys.readouterr()
    assert "Delivery #" in captured.out  # the commands did report
    assert Attempt.objects.filter(error__contains="HTTP 500").exists()
    assert Attempt.objects.filter(error__contains="within 1 s").exists()
    assert "the tags hook crashed" in caplog.text  # tracebacks were logged
    found = leaks(
        values,
        {
            "the log": caplog.text,
            "log messages": "\n".join(record.getMessage() for record in caplog.records),
            "stdout": captured.out,
            "stderr": captured.err,
            "stored rows": stored_rows(),
            "reprs, errors and checks": "\n".join(outputs),
        },
    )
    assert not found, found


def test_exception_messages_hide_the_url_path(settings, free_port):
    settings.WAGTAIL_PUBLISH_HOOKS = {"ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"]}
    secret_path = token()
    url = f"http://127.0.0.1:{free_port}/services/T0/B0/{secret_path}?token={secret_path}"
    with pytest.raises(DeliveryError) as caught:
        post(url, body=b"{}", headers={"X-Api-Key": secret_path}, timeout=1)
    text = " ".join([str(caught.value), repr(caught.value), json.dumps(caught.value.__dict__)])
    assert f"127.0.0.1:{free_port}" in text
    assert secret_path not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_refusals_hide_the_url_path(settings):
    settings.WAGTAIL_PUBLISH_HOOKS = {"ALLOW_PRIVATE_NETWORKS": False}
    secret_path = token()
    with pytest.raises(DeliveryError) as caught:
        post(f"http://127.0.0.1/{secret_path}", body=b"", headers={}, timeout=1)
    assert "non-public address" in str(caught.value)
    assert secret_path not in str(caught.value)


# -- Signature rotation -------------------------------------------------------------------------


def test_two_secrets_sign_twice_and_each_verifies_alone_on_every_attempt(
    configure, switch, sink, draft_blog_page
):
    old, new = make_secret(), make_secret()
    switch.behaviour = sinks.cycle(
        sinks.respond(503, b"", keep_alive=False), sinks.respond(keep_alive=False)
    )
    configure(
        DESTINATIONS={
            "consumer": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url(), "SECRET": [new, old]}}
        },
        RETRY_SCHEDULE=[0],
    )
    draft_blog_page.save_revision().publish()

    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert len(sink.requests) == 2  # a failed attempt, then a successful one
    for request in sink.requests:
        headers = {
            name: request.header(name)
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        }
        signatures = headers["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
        when = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        expected = {
            Webhook(key).sign(headers["webhook-id"], when, request.body.decode())
            for key in (new, old)
        }
        # One signature per secret, the new one first: each holder verifies on its own.
        assert signatures == [next(iter(expected - {signatures[1]})), signatures[1]]
        assert set(signatures) == expected
        for key in (old, new):
            Webhook(key).verify(request.body, headers)
    # The same event id on both attempts: the receiver's idempotency key.
    assert len({request.header("webhook-id") for request in sink.requests}) == 1


# -- Destinations managed in the admin: encrypted at rest ----------------------------------------


def test_the_database_holds_no_secret_of_a_managed_destination(configure, admin_client):
    """Created through the admin's form, every kind of secret; then the whole database dumped
    (``dumpdata``) and the table read with raw SQL, every column."""
    from django.db import connection

    from wagtail_publish_hooks.models import ManagedDestination

    configure(DESTINATIONS={})
    values = {
        "signing": make_secret(),
        "bearer": token(),
        "revalidate": token(),
        "slack": token(),
        "discord": token(),
        "teams": token(),
        "build hook": token(),
        "api key": token(),
    }
    forms = [
        ("hooks", "webhook.WebhookBackend", "enter", values["signing"],
         {"URL": "https://consumer.example/hooks",
          "HEADERS": {"Authorization": f"Bearer {values['bearer']}",
                      "X-Api-Key": values["api key"]}}),
        ("frontend", "revalidate.RevalidateBackend", "enter", values["revalidate"],
         {"URL": "https://frontend.example/api/revalidate"}),
        ("team", "slack.SlackBackend", "none", "",
         {"URL": f"https://hooks.slack.com/services/T0/B0/{values['slack']}"}),
        ("discord", "discord.DiscordBackend", "none", "",
         {"URL": f"https://discord.com/api/webhooks/1/{values['discord']}"}),
        ("teams", "teams.TeamsBackend", "none", "",
         {"URL": f"https://x.logic.azure.com/workflows/a/triggers/manual/paths/invoke?sig={values['teams']}"}),
        ("deploy", "build_hook.BuildHookBackend", "none", "",
         {"URL": f"https://api.netlify.com/build_hooks/{values['build hook']}"}),
    ]  # fmt: skip
    for alias, backend, mode, secret_value, options in forms:
        response = admin_client.post(
            reverse("publish_hooks_destinations:add"),
            {
                "alias": alias,
                "backend": f"{BACKENDS}.{backend}",
                "options": json.dumps(options),
                "secret_mode": mode,
                "secret_value": secret_value,
                "exclude_aliases": "unknown",
            },
        )
        assert response.status_code == 302, response.content[:2000]
    assert ManagedDestination.objects.count() == len(forms)
    # Each still reaches its consumer with its secrets.
    assert get_destinations()["team"].options["URL"].endswith(values["slack"])
    assert get_destinations()["hooks"].options["SECRET"] == values["signing"]

    out = StringIO()
    call_command("dumpdata", stdout=out)
    dumped = out.getvalue()
    assert "wagtail_publish_hooks.manageddestination" in dumped
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(ManagedDestination._meta.db_table)
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 -- a model's own table
        rows = cursor.fetchall()
    assert len(rows) == len(forms)
    raw = repr(rows)
    assert "consumer.example" in raw  # what is not secret stays readable
    for name, value in values.items():
        assert value not in dumped, name
        assert value not in raw, name
