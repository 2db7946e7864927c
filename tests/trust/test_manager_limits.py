"""A destination manager against the bounds of numbers: nothing they type, nor any row forced
into the table, breaks a publish, stops events for other destinations or hangs a worker.

The manager holds ``add_manageddestination`` and ``change_manageddestination`` only, and works
through the real admin form. Every numeric option of every shipped backend is tried with NaN,
the infinities, 1e12, negatives, booleans, huge integers, strings and nested values.
"""

from __future__ import annotations

import json
import math
import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import WEBHOOK
from tests.support.admin_users import destination_manager
from wagtail_publish_hooks.models import (
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    DestinationState,
    Event,
    ManagedDestination,
)
from wagtail_publish_hooks.worker import run_due_deliveries

pytestmark = pytest.mark.django_db(transaction=True)

BACKENDS = "wagtail_publish_hooks.backends"
SLACK = f"{BACKENDS}.slack.SlackBackend"
FRONTEND_CACHE = f"{BACKENDS}.frontend_cache.FrontendCacheBackend"

#: Each shipped backend with options it accepts, and every option of it read as a number.
NUMERIC_OPTIONS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    WEBHOOK: ({"URL": "https://consumer.example/hooks"}, ("TIMEOUT", "CONNECT_TIMEOUT")),
    SLACK: (
        {"URL": "https://hooks.slack.com/services/T0/B0/x"},
        ("TIMEOUT", "CONNECT_TIMEOUT", "MIN_INTERVAL"),
    ),
    f"{BACKENDS}.teams.TeamsBackend": (
        {"URL": "https://prod.example/workflows/x"},
        ("TIMEOUT", "CONNECT_TIMEOUT"),
    ),
    f"{BACKENDS}.discord.DiscordBackend": (
        {"URL": "https://discord.example/api/webhooks/1/x"},
        ("TIMEOUT", "CONNECT_TIMEOUT"),
    ),
    f"{BACKENDS}.build_hook.BuildHookBackend": (
        {"URL": "https://api.netlify.com/build_hooks/x"},
        ("TIMEOUT", "CONNECT_TIMEOUT", "COALESCE_SECONDS"),
    ),
    f"{BACKENDS}.revalidate.RevalidateBackend": (
        {"URL": "https://frontend.example/api/revalidate"},
        ("TIMEOUT", "CONNECT_TIMEOUT", "COALESCE_SECONDS"),
    ),
    FRONTEND_CACHE: (
        {"BACKENDS": ["varnish"]},
        ("PURGE_ANCESTORS", "BATCH_SIZE", "COALESCE_SECONDS"),
    ),
}
CASES = [(backend, key) for backend, (_, keys) in NUMERIC_OPTIONS.items() for key in keys]

INTEGERS = ("PURGE_ANCESTORS", "BATCH_SIZE")
#: Values as typed into the options field (JSON text, as Python's parser reads it).
HOSTILE_JSON = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e12",
    "1e308",
    "1e400",  # read as infinity
    "-1",
    "-1e-300",
    "true",
    "false",
    "null",
    '"15"',
    '"NaN"',
    "123456789012345678901234567890",
    "[1]",
    "[]",
    '{"$numberDouble": "NaN"}',
    '{"value": 1}',
]
#: Values written straight into the table, past the form. (JSON has no NaN nor infinity, and
#: the database checks that it holds JSON; but ``1e400`` is valid JSON that Python reads as
#: infinity: those are written as text.)
FORCED: list[Any] = [1e12, 1e308, -1, "15", True, 10**30, {"$gt": 0}, "1e400", "-1e400"]
AS_TEXT = ("1e400", "-1e400")
#: A value each option accepts, to show that the refusals are about the values.
ACCEPTED = {
    "TIMEOUT": "30",
    "CONNECT_TIMEOUT": "2.5",
    "MIN_INTERVAL": "0",
    "COALESCE_SECONDS": "3600",
    "PURGE_ANCESTORS": "2",
    "BATCH_SIZE": "30",
}
VARNISH = {
    "varnish": {
        "BACKEND": "wagtail.contrib.frontend_cache.backends.HTTPBackend",
        "LOCATION": "http://127.0.0.1:9",
    }
}


@pytest.fixture
def manager(django_user_model) -> Client:
    """A user who may add and change managed destinations, and nothing else of ours."""
    return destination_manager("add_manageddestination", "change_manageddestination")


@pytest.fixture
def frontend_cache(settings):
    settings.WAGTAILFRONTENDCACHE = VARNISH


def options_text(backend: str, key: str, raw: str) -> str:
    base = json.dumps(NUMERIC_OPTIONS[backend][0])
    return f'{base[:-1]}, "{key}": {raw}}}'


def post_form(client: Client, backend: str, options: str, alias: str = "managed"):
    data = {
        "alias": alias,
        "backend": backend,
        "options": options,
        "secret_mode": "none",
        "secret_value": "",
        "events": "",
        "model_labels": "",
        "exclude_aliases": "unknown",
    }
    return client.post(reverse("publish_hooks_destinations:add"), data)


def errors_about(response, key: str) -> list[str]:
    assert response.status_code == 200, response.status_code
    form = response.context["form"]
    return [text for text in form.errors.get("options", []) if f"OPTIONS['{key}']" in text]


# -- The admin form ----------------------------------------------------------------------------


@pytest.mark.usefixtures("frontend_cache")
@pytest.mark.parametrize(("backend", "key"), CASES)
def test_the_form_refuses_every_hostile_number_with_the_key_the_kind_and_the_bounds(
    manager, configure, backend, key
):
    configure(DESTINATIONS={})
    accepted = post_form(manager, backend, options_text(backend, key, ACCEPTED[key]), "fine")
    if accepted.status_code != 302:  # refused for another reason (none is expected)
        assert errors_about(accepted, key) == []
    ManagedDestination.objects.filter(alias="fine").delete()
    for raw in HOSTILE_JSON:
        if key == "BATCH_SIZE" and raw == '{"value": 1}':
            continue  # a batch size per purge backend: allowed
        response = post_form(manager, backend, options_text(backend, key, raw))
        assert response.status_code == 200, raw
        errors = errors_about(response, key)
        assert len(errors) == 1, (raw, response.context["form"].errors)
        text = errors[0]
        assert "must be" in text and "at most" in text, (raw, text)  # the bounds
        assert any(
            f"(wagtail_publish_hooks.{check})" in text for check in ("E015", "E039", "E048")
        ), (raw, text)
        if raw in ("NaN", "Infinity", "-Infinity", "1e400"):
            assert "E048" in text and ("not NaN" in text or "infinity" in text), (raw, text)
        if raw in ("1e12", "1e308") and key in INTEGERS:
            assert "not a number with a decimal point" in text, (raw, text)
        elif raw in ("1e12", "1e308", "123456789012345678901234567890"):
            assert "E048" in text and "not a number above" in text, (raw, text)
        if raw in ('"15"', '"NaN"'):
            assert "not a string" in text, (raw, text)
        if raw in ("true", "false"):
            assert "not a boolean" in text, (raw, text)
    assert not ManagedDestination.objects.exists()


@pytest.mark.usefixtures("frontend_cache")
def test_batch_sizes_per_purge_backend_are_bounded_too(manager, configure):
    configure(DESTINATIONS={})
    for raw, check in [
        ('{"varnish": NaN}', "E048"),
        ('{"varnish": 1e12}', "E039"),  # a float where an integer is wanted
        ('{"varnish": 10000000000000000}', "E048"),
        ('{"varnish": 100000}', "E048"),
        ('{"varnish": {"size": 30}}', "E039"),
        ('{"varnish": true}', "E039"),
    ]:
        response = post_form(
            manager, FRONTEND_CACHE, options_text(FRONTEND_CACHE, "BATCH_SIZE", raw)
        )
        errors = errors_about(response, "BATCH_SIZE")
        assert len(errors) == 1 and check in errors[0], (raw, errors)
    assert not ManagedDestination.objects.exists()


def test_editing_a_destination_cannot_slip_a_bad_number_in(manager, configure):
    configure(DESTINATIONS={})
    row = ManagedDestination.objects.create(
        alias="managed", backend=WEBHOOK, options={"URL": "https://consumer.example/hooks"}
    )
    data = {
        "alias": "managed",
        "backend": WEBHOOK,
        "options": '{"URL": "https://consumer.example/hooks", "TIMEOUT": Infinity}',
        "secret_mode": "none",
        "secret_value": "",
        "events": "",
        "model_labels": "",
        "exclude_aliases": "unknown",
    }
    response = manager.post(reverse("publish_hooks_destinations:edit", args=[row.pk]), data)
    assert len(errors_about(response, "TIMEOUT")) == 1
    row.refresh_from_db()
    assert "TIMEOUT" not in row.options


# -- Rows forced into the table ----------------------------------------------------------------


def forced_rows() -> dict[str, str]:
    """A managed destination for every numeric option of every backend with every bad value,
    written past the form; returns each alias's option."""
    rows = {}
    for index, (backend, key) in enumerate(CASES):
        base = NUMERIC_OPTIONS[backend][0]
        for number, value in enumerate(FORCED):
            alias = f"forced-{index}-{number}"
            row = ManagedDestination.objects.create(
                alias=alias, backend=backend, options={**base, key: value}
            )
            if value in AS_TEXT:
                text = f'{json.dumps(base)[:-1]}, "{key}": {value}}}'
                table = connection.ops.quote_name(ManagedDestination._meta.db_table)
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {table} SET options = %s WHERE id = %s",  # noqa: S608
                        [text, row.pk],
                    )
                row.refresh_from_db()
                # SQLite reads the text back as an infinity; PostgreSQL's jsonb keeps it as an
                # exact number with 400 digits. Both are far out of every bound.
                forced = row.options[key]
                assert forced in (math.inf, -math.inf) or abs(forced) > 10**300
            rows[alias] = key
    return rows


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("frontend_cache")
def test_forced_rows_cost_other_destinations_nothing_and_show_why_they_failed(
    configure, httpserver, draft_blog_page, admin_client
):
    configure(
        DESTINATIONS={
            "healthy": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/healthy")}}
        },
        RETRY_SCHEDULE=[0],
    )
    httpserver.expect_request("/healthy", method="POST").respond_with_data("ok")
    rows = forced_rows()

    draft_blog_page.save_revision().publish()

    draft_blog_page.refresh_from_db()
    assert draft_blog_page.live
    event = Event.objects.get()
    healthy = Delivery.objects.get(destination="healthy")
    assert healthy.status == DeliveryStatus.DELIVERED, healthy.last_error
    assert len(httpserver.log) == 1
    assert json.loads(httpserver.log[0][0].get_data())["id"] == event.event_id

    broken = {d.destination: d for d in Delivery.objects.exclude(destination="healthy")}
    assert set(broken) == set(rows)
    for alias, delivery in broken.items():
        key = rows[alias]
        assert delivery.status == DeliveryStatus.FAILED, alias
        assert delivery.event_id == event.pk
        assert delivery.last_error.startswith(f"could not be recorded: {key} must be "), (
            alias,
            delivery.last_error,
        )
        assert "at most" in delivery.last_error
    attempt = Attempt.objects.filter(delivery__destination="forced-0-0").get()
    assert attempt.outcome == AttemptOutcome.FAILURE
    assert attempt.detail["stage"] == "record"
    assert DestinationState.objects.get(alias="forced-0-0").consecutive_failures == 1

    # The deliveries report and a delivery's page say why, without any option's value.
    report = admin_client.get(reverse("wagtail_publish_hooks:deliveries"), {"status": "failed"})
    html = report.content.decode()
    assert report.status_code == 200
    assert "could not be recorded: " in html
    detail = admin_client.get(
        reverse("wagtail_publish_hooks:delivery", args=[broken["forced-0-3"].pk])
    ).content.decode()
    assert "could not be recorded: TIMEOUT must be a number greater than zero" in detail
    assert "1e+12" not in detail and "1000000000000" not in detail

    # The destination's health in the Destinations listing, too.
    listing = admin_client.get(reverse("publish_hooks_destinations:index")).content.decode()
    assert 'data-health="warning"' in listing and "1 consecutive failure" in listing

    # And so does ``publish_hooks status``.
    out = StringIO()
    call_command("publish_hooks", "status", stdout=out)
    line = next(row for row in out.getvalue().splitlines() if row.startswith("forced-0-0 "))
    assert "1 consecutive failure" in line


@pytest.mark.timeout(60)
def test_a_worker_is_not_held_by_a_row_changed_after_its_events_were_recorded(
    configure, httpserver, draft_blog_page
):
    """The event was recorded while the row was sound; then MIN_INTERVAL became a billion
    seconds. The worker refuses the destination at once and goes on with the others."""
    configure(
        DESTINATIONS={
            "healthy": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/healthy")}}
        },
        RETRY_SCHEDULE=[0],
        TASK_BACKEND="default",
    )
    httpserver.expect_request("/healthy", method="POST").respond_with_data("ok")
    row = ManagedDestination.objects.create(
        alias="team",
        backend=SLACK,
        options={"URL": httpserver.url_for("/slack"), "MIN_INTERVAL": 1e9},
    )
    event = Event.objects.create(event_type="page.published", payload={"type": "page.published"})
    now = timezone.now()
    stuck = Delivery.objects.create(event=event, destination=row.alias, next_attempt_at=now)
    # A second message to the webhook is the one that would wait out MIN_INTERVAL.
    second = Event.objects.create(event_type="page.published", payload={"type": "x"})
    Delivery.objects.create(event=second, destination=row.alias, next_attempt_at=now)
    other = Delivery.objects.create(event=event, destination="healthy", next_attempt_at=now)

    started = time.monotonic()
    run_due_deliveries(enqueue_successor=False)
    assert time.monotonic() - started < 20

    stuck.refresh_from_db()
    other.refresh_from_db()
    assert other.status == DeliveryStatus.DELIVERED, other.last_error
    assert stuck.status == DeliveryStatus.FAILED  # not retried: the same option fails again
    assert stuck.last_error.startswith(
        "the destination's options are invalid: MIN_INTERVAL must be a number zero or more and "
        "at most 60 (seconds)"
    )
    assert not [request for request, _ in httpserver.log if request.path == "/slack"]
    assert Delivery.objects.filter(destination="team", status=DeliveryStatus.FAILED).count() == 2
