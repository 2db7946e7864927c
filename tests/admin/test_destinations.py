"""The admin's Destinations screens: listing, forms, secrets, actions, permissions, audit, chart."""

from __future__ import annotations

import json
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils.module_loading import import_string
from standardwebhooks.webhooks import Webhook
from wagtail.models import ModelLogEntry

from tests.conftest import WEBHOOK, make_secret
from wagtail_publish_hooks.admin.destinations.chart import HOURS, chart_svg, hourly_outcomes
from wagtail_publish_hooks.admin.destinations.secret_options import KEPT_SECRET, RETYPE_SECRET
from wagtail_publish_hooks.admin.destinations.viewset import destinations_menu_item
from wagtail_publish_hooks.models import (
    Attempt,
    AttemptHour,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    DestinationState,
    Event,
    ManagedDestination,
)
from wagtail_publish_hooks.redaction import is_secret_option

pytestmark = pytest.mark.django_db(transaction=True)

NS = "publish_hooks_destinations"
SECRET_PATTERN = re.compile(r"whsec_[A-Za-z0-9+/=]{16,}")


def url(name, *args):
    return reverse(f"{NS}:{name}", args=args)


@pytest.fixture
def admin(django_user_model):
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def user_with(django_user_model, username, *codenames):
    """A non-superuser who may use the admin, in a group with the given permissions."""
    group = Group.objects.create(name=f"group-{username}")
    group.permissions.add(Permission.objects.get(codename="access_admin"))
    for codename in codenames:
        group.permissions.add(Permission.objects.get(codename=codename))
    user = django_user_model.objects.create_user(username, f"{username}@example.com", "pw")
    user.groups.add(group)
    client = Client()
    client.force_login(user)
    return user, client


def form_data(httpserver, **overrides):
    data = {
        "alias": "managed",
        "backend": WEBHOOK,
        "options": json.dumps({"URL": httpserver.url_for("/managed")}),
        "secret_mode": "generate",
        "secret_value": "",
        "events": "",
        "model_labels": "",
        "exclude_aliases": "unknown",
    }
    data.update(overrides)
    return data


def create(admin, httpserver, **overrides):
    response = admin.post(url("add"), form_data(httpserver, **overrides))
    assert response.status_code == 200, response.content[:2000]
    return response


def shown_secret(response) -> str:
    found = SECRET_PATTERN.findall(response.content.decode())
    assert len(set(found)) == 1, "the success page shows the secret once"
    return found[0]


@pytest.fixture
def settings_destination(configure, httpserver, secret):
    configure(
        DESTINATIONS={
            "from-settings": {
                "BACKEND": WEBHOOK,
                "OPTIONS": {"URL": httpserver.url_for("/settings"), "SECRET": secret},
            }
        },
        RETRY_SCHEDULE=[0],
        # The managed destinations of these tests deliver to the loopback server too.
        MANAGED_ALLOW_PRIVATE_NETWORKS=["127.0.0.0/8", "::1/128"],
    )
    return "from-settings"


# -- Listing and detail -----------------------------------------------------------------------


def test_index_lists_both_kinds_with_health_and_a_secret_free_description(
    admin, settings_destination, httpserver, secret
):
    ManagedDestination.objects.create(
        alias="managed", backend=WEBHOOK, options={"URL": httpserver.url_for("/m")}
    )
    DestinationState.objects.create(
        alias="from-settings", consecutive_failures=3, last_failure_at=datetime.now(UTC)
    )
    DestinationState.objects.create(
        alias="managed", disabled_at=datetime.now(UTC), disabled_reason="HTTP 410 Gone"
    )
    response = admin.get(url("index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Defined in settings" in html and "Managed in the admin" in html
    assert "from-settings" in html and "managed" in html
    assert "POST http://localhost:" in html  # describe(), without the path
    assert "3 consecutive failures" in html
    assert "Disabled: HTTP 410 Gone" in html
    assert secret not in html
    assert url("detail", "from-settings") in html and url("detail", "managed") in html


def test_detail_of_a_settings_destination_is_read_only(admin, settings_destination, secret):
    response = admin.get(url("detail", "from-settings"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "In settings (read-only here)" in html
    assert url("disable", "from-settings") in html
    assert url("send_test", "from-settings") in html
    assert "/edit/" not in html
    assert secret not in html


def test_detail_of_an_unknown_alias_is_404(admin, settings_destination):
    assert admin.get(url("detail", "nope")).status_code == 404
    assert admin.post(url("disable", "nope")).status_code == 404


# -- Creating, and the secret shown once -----------------------------------------------------


def test_a_generated_secret_is_shown_once_and_never_again(
    admin, settings_destination, httpserver, caplog, draft_blog_page
):
    caplog.set_level(logging.DEBUG)
    response = create(admin, httpserver)
    secret = shown_secret(response)
    assert "no-store" in response["Cache-Control"]
    destination = ManagedDestination.objects.get(alias="managed")
    assert destination.plain_secrets() == [secret]
    assert destination.plain_options() == {"URL": httpserver.url_for("/managed")}

    instance = destination.pk
    pages = [
        url("index"),
        url("detail", "managed"),
        url("edit", instance),
        url("history", instance),
        url("rotate_secret", instance),
        url("delete", instance),
    ]
    for page in pages:
        page_response = admin.get(page)
        assert page_response.status_code == 200, page
        assert secret not in page_response.content.decode(), page
    # Saving the form again keeps the secret without showing it.
    edit = admin.post(
        url("edit", instance),
        form_data(httpserver, secret_mode="keep", events="page.published"),
    )
    assert edit.status_code == 302
    assert secret not in admin.get(edit["Location"]).content.decode()
    destination.refresh_from_db()
    assert destination.plain_secrets() == [secret] and destination.events == ["page.published"]

    # Nor do the command line, the audit log or the logs show it.
    httpserver.expect_request("/managed").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    out = StringIO()
    call_command("publish_hooks", "status", stdout=out)
    assert "managed" in out.getvalue() and secret not in out.getvalue()
    for entry in ModelLogEntry.objects.all():
        assert secret not in str(entry.data) and secret not in entry.label
    assert secret not in caplog.text
    for attempt in Attempt.objects.all():
        assert secret not in str(attempt.request_headers)


def test_an_entered_secret_is_stored_and_not_shown(admin, settings_destination, httpserver):
    entered = make_secret()
    response = admin.post(
        url("add"), form_data(httpserver, secret_mode="enter", secret_value=entered)
    )
    assert response.status_code == 302
    assert ManagedDestination.objects.get().plain_secrets() == [entered]
    assert entered not in admin.get(response["Location"]).content.decode()


def test_no_secret_sends_unsigned_and_warns(admin, settings_destination, httpserver):
    response = admin.post(url("add"), form_data(httpserver, secret_mode="none"), follow=True)
    assert ManagedDestination.objects.get().plain_secrets() == []
    assert "wagtail_publish_hooks.W004" in response.content.decode()


def test_backends_without_a_secret_option_get_none(admin, settings_destination):
    response = admin.post(
        url("add"),
        {
            "alias": "team",
            "backend": "wagtail_publish_hooks.backends.slack.SlackBackend",
            "options": '{"URL": "https://hooks.slack.com/services/T0/B0/x"}',
            "secret_mode": "generate",
            "exclude_aliases": "unknown",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    assert ManagedDestination.objects.get().plain_secrets() == []


# -- Secret options: a Slack URL, a revalidation secret, a header named like a token -----------

SLACK = "wagtail_publish_hooks.backends.slack.SlackBackend"
REVALIDATE = "wagtail_publish_hooks.backends.revalidate.RevalidateBackend"


def slack_path(token: str) -> str:
    return f"/services/T0PUBHOOKS/B0PUBHOOKS/{token}"


def pages_of(destination: ManagedDestination) -> list[str]:
    return [
        url("index"),
        url("detail", destination.alias),
        url("edit", destination.pk),
        url("history", destination.pk),
        url("delete", destination.pk),
    ]


def assert_never_shown(admin, destination: ManagedDestination, *values: str) -> None:
    for page in pages_of(destination):
        response = admin.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        for value in values:
            assert value not in html, page


def edit_data(destination: ManagedDestination, options: dict, **overrides) -> dict:
    data = {
        "alias": destination.alias,
        "backend": destination.backend,
        "options": json.dumps(options),
        "secret_mode": "keep" if destination.secrets else "none",
        "secret_value": "",
        "events": "",
        "model_labels": "",
        "exclude_aliases": "unknown",
    }
    data.update(overrides)
    return data


def test_the_name_rule_makes_any_backends_option_secret():
    class Custom:  # a backend that does not subclass BaseBackend
        pass

    for key in ("API_TOKEN", "PASSWORD", "Authorization", "api_key", "CLIENT_SECRET"):
        assert is_secret_option(Custom, key), key
    assert not is_secret_option(Custom, "URL")
    slack = import_string(SLACK)
    assert is_secret_option(slack, "URL") and not is_secret_option(slack, "TEMPLATE")


def test_a_slack_url_is_never_shown_kept_by_the_placeholder_and_replaced_when_typed(
    admin, settings_destination, httpserver
):
    token = secrets.token_hex(12)
    response = admin.post(
        url("add"),
        {
            "alias": "team",
            "backend": SLACK,
            "options": json.dumps({"URL": httpserver.url_for(slack_path(token))}),
            "secret_mode": "generate",
            "exclude_aliases": "unknown",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    destination = ManagedDestination.objects.get(alias="team")
    assert_never_shown(admin, destination, token)
    edit_html = admin.get(url("edit", destination.pk)).content.decode()
    assert json.dumps(KEPT_SECRET).replace('"', "&quot;") in edit_html

    # Editing the other options leaves the placeholder: the stored URL is kept and used.
    response = admin.post(
        url("edit", destination.pk),
        edit_data(destination, {"URL": KEPT_SECRET, "MIN_INTERVAL": 0}, events="page.*"),
    )
    assert response.status_code == 302, response.content[:3000]
    destination.refresh_from_db()
    assert destination.plain_options() == {
        "URL": httpserver.url_for(slack_path(token)),
        "MIN_INTERVAL": 0,
    }
    assert destination.events == ["page.*"]
    httpserver.expect_request(slack_path(token), method="POST").respond_with_data("ok")
    admin.post(url("send_test", "team"))
    assert [request.path for request, _ in httpserver.log] == [slack_path(token)]

    # A new URL replaces it.
    new_token = secrets.token_hex(12)
    response = admin.post(
        url("edit", destination.pk),
        edit_data(
            destination, {"URL": httpserver.url_for(slack_path(new_token)), "MIN_INTERVAL": 0}
        ),
    )
    assert response.status_code == 302, response.content[:3000]
    destination.refresh_from_db()
    assert destination.plain_options()["URL"] == httpserver.url_for(slack_path(new_token))
    httpserver.expect_request(slack_path(new_token), method="POST").respond_with_data("ok")
    admin.post(url("send_test", "team"))
    assert httpserver.log[-1][0].path == slack_path(new_token)
    assert len(httpserver.log) == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    assert_never_shown(admin, destination, token, new_token)
    for entry in ModelLogEntry.objects.all():
        assert token not in str(entry.data) and new_token not in str(entry.data)


def test_a_refused_form_does_not_show_back_a_secret_typed_into_it(
    admin, settings_destination, httpserver
):
    stored = httpserver.url_for(slack_path("stored" + secrets.token_hex(8)))
    destination = ManagedDestination.objects.create(
        alias="team", backend=SLACK, options={"URL": stored}
    )
    typed = secrets.token_hex(12)
    response = admin.post(
        url("edit", destination.pk),
        edit_data(destination, {"URL": httpserver.url_for(slack_path(typed)), "TIMEOUT": -1}),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "TIMEOUT" in html and typed not in html
    assert RETYPE_SECRET in html
    # Left in, the "enter it again" placeholder is refused rather than stored.
    response = admin.post(
        url("edit", destination.pk), edit_data(destination, {"URL": RETYPE_SECRET})
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "enter the value" in html
    assert f"&quot;URL&quot;: &quot;{RETYPE_SECRET}&quot;" in html  # still not "kept"
    # A new destination has nothing to keep.
    response = admin.post(
        url("add"),
        edit_data(destination, {"URL": KEPT_SECRET}, alias="other", secret_mode="generate"),
    )
    assert response.status_code == 200
    assert "enter the value" in response.content.decode()
    destination.refresh_from_db()
    assert destination.plain_options() == {"URL": stored}
    assert ManagedDestination.objects.count() == 1


def test_a_revalidation_secret_and_a_token_header_are_never_shown_and_kept(
    admin, settings_destination, httpserver
):
    secret_value = "rv-" + secrets.token_hex(16)
    bearer = "Bearer " + secrets.token_hex(16)
    revalidate_url = httpserver.url_for("/api/revalidate")
    response = admin.post(
        url("add"),
        {
            "alias": "frontend",
            "backend": REVALIDATE,
            "options": json.dumps(
                {"URL": revalidate_url, "SECRET_HEADER": "x-frontend", "COALESCE_SECONDS": 0}
            ),
            "secret_mode": "enter",
            "secret_value": secret_value,
            "exclude_aliases": "unknown",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    hooks = ManagedDestination.objects.create(
        alias="hooks",
        backend=WEBHOOK,
        options={"URL": httpserver.url_for("/hooks"), "HEADERS": {"Authorization": bearer}},
    )
    frontend = ManagedDestination.objects.get(alias="frontend")
    assert frontend.plain_secrets() == [secret_value]
    assert_never_shown(admin, frontend, secret_value)
    assert_never_shown(admin, hooks, bearer)
    # The revalidate URL is no secret: it is shown, and the placeholders keep the rest.
    edit_html = admin.get(url("edit", frontend.pk)).content.decode()
    assert revalidate_url in edit_html

    response = admin.post(
        url("edit", frontend.pk),
        edit_data(
            frontend,
            {"URL": revalidate_url, "SECRET_HEADER": KEPT_SECRET, "COALESCE_SECONDS": 0},
            events="page.*",
        ),
    )
    assert response.status_code == 302, response.content[:3000]
    response = admin.post(
        url("edit", hooks.pk),
        edit_data(
            hooks,
            {"URL": httpserver.url_for("/hooks"), "HEADERS": {"Authorization": KEPT_SECRET}},
            events="page.*",
        ),
    )
    assert response.status_code == 302, response.content[:3000]
    frontend.refresh_from_db()
    hooks.refresh_from_db()
    assert frontend.plain_secrets() == [secret_value]
    assert frontend.plain_options()["SECRET_HEADER"] == "x-frontend"
    assert hooks.plain_options()["HEADERS"] == {"Authorization": bearer}

    httpserver.expect_request("/api/revalidate").respond_with_json({"revalidated": True})
    httpserver.expect_request("/hooks").respond_with_data("ok")
    admin.post(url("send_test", "frontend"))
    admin.post(url("send_test", "hooks"))
    received = {request.path: request.headers for request, _ in httpserver.log}
    assert received["/api/revalidate"]["x-frontend"] == secret_value
    assert received["/hooks"]["Authorization"] == bearer
    assert_never_shown(admin, frontend, secret_value)
    assert_never_shown(admin, hooks, bearer)


# -- Validation: the system checks' own messages, on the right field --------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        (
            {"options": "{}"},
            "options",
            "OPTIONS['URL']: is required and missing. (wagtail_publish_hooks.E011)",
        ),
        ({"options": '{"URL": "consumer.example/hooks"}'}, "options", "wagtail_publish_hooks.E012"),
        (
            {"options": '{"URL": "https://u:p@consumer.example/hooks"}'},
            "options",
            "wagtail_publish_hooks.E013",
        ),
        (
            {"options": '{"URL": "https://x.example", "URLS": 1}'},
            "options",
            "wagtail_publish_hooks.E010",
        ),
        (
            {"options": '{"URL": "https://x.example", "TIMEOUT": -1}'},
            "options",
            "wagtail_publish_hooks.E015",
        ),
        (
            {"options": '{"URL": "https://x.example", "HEADERS": {"webhook-id": "x"}}'},
            "options",
            "wagtail_publish_hooks.E019",
        ),
        (
            {"backend": "wagtail_publish_hooks.backends.nope.NopeBackend"},
            "backend",
            "wagtail_publish_hooks.E044",
        ),
        (
            {"backend": "tests.support.backends.NotABackend"},
            "backend",
            "wagtail_publish_hooks.E044",
        ),
        (
            {"events": "page.publish"},
            "events",
            "'page.publish' is not a known event type. (wagtail_publish_hooks.E008)",
        ),
        ({"model_labels": "blog.BlogPage"}, "model_labels", "wagtail_publish_hooks.E009"),
        ({"alias": "python:mine"}, "alias", "wagtail_publish_hooks.E023"),
        (
            {"secret_mode": "enter", "secret_value": "hunter2"},
            "secret_mode",
            "wagtail_publish_hooks.E014",
        ),
        ({"alias": "from-settings"}, "alias", "wagtail_publish_hooks.W013"),
        ({"options": "{nope"}, "options", "This is not valid JSON"),
        (
            {"options": '{"URL": "https://x.example", "SECRET": "whsec_x"}'},
            "options",
            "Signing secret",
        ),
    ],
)
def test_each_mistake_gives_the_check_message_on_its_field(
    admin, settings_destination, httpserver, overrides, field, expected
):
    response = admin.post(url("add"), form_data(httpserver, **overrides))
    assert response.status_code == 200
    form = response.context["form"]
    assert any(expected in error for error in form.errors.get(field, [])), form.errors
    assert not ManagedDestination.objects.exists()
    assert "hunter2" not in response.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"max_attempts": "0"}, "max_attempts", "must be an integer greater than zero"),
        ({"max_attempts": "0"}, "max_attempts", "wagtail_publish_hooks.E052"),
        ({"max_attempts": "101"}, "max_attempts", "wagtail_publish_hooks.E048"),
        ({"max_attempts": "2.5"}, "max_attempts", "Enter a whole number"),
        ({"retry_schedule": "5, -1"}, "retry_schedule", "wagtail_publish_hooks.E052"),
        ({"retry_schedule": "5, 604801"}, "retry_schedule", "at most 604800"),
        ({"retry_schedule": "5, soon"}, "retry_schedule", "“soon” is not a number of seconds"),
        ({"retry_schedule": "nan"}, "retry_schedule", "wagtail_publish_hooks.E048"),
    ],
)
def test_a_retry_policy_out_of_bounds_is_refused_on_its_field(
    admin, settings_destination, httpserver, overrides, field, expected
):
    response = admin.post(url("add"), form_data(httpserver, **overrides))
    assert response.status_code == 200
    form = response.context["form"]
    assert any(expected in error for error in form.errors.get(field, [])), form.errors
    assert not ManagedDestination.objects.exists()


def test_a_managed_retry_policy_overrides_the_globals_and_is_shown(
    admin, settings_destination, httpserver
):
    from wagtail_publish_hooks.worker import run_due_deliveries

    httpserver.expect_request("/managed").respond_with_data("down", status=503)
    response = admin.post(
        url("add"),
        form_data(httpserver, secret_mode="none", retry_schedule="0, 60", max_attempts="3"),
        follow=True,
    )
    assert response.status_code == 200
    row = ManagedDestination.objects.get(alias="managed")
    assert (row.retry_schedule, row.max_attempts) == ([0, 60], 3)
    detail = admin.get(url("detail", "managed")).content.decode()
    assert "Up to 3 attempts; waits 0 s, 1 min (the last one repeats) — its own" in detail
    other = admin.get(url("detail", "from-settings")).content.decode()
    assert "Up to 8 attempts; waits 0 s (the last one repeats) — the site&#x27;s" in other
    edit = admin.get(url("edit", row.pk)).content.decode()
    assert 'value="0, 60"' in edit and 'value="3"' in edit

    row.retry_schedule = [0]
    row.save()
    call_command("publish_hooks", "test", "managed", stdout=StringIO())
    run_due_deliveries(max_seconds=10, enqueue_successor=False)
    delivery = Delivery.objects.get(destination="managed")
    # The site's MAX_ATTEMPTS is 8 with RETRY_SCHEDULE [0]: its own 3 win.
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)

    # Emptied, the globals are back.
    response = admin.post(
        url("edit", row.pk),
        form_data(httpserver, secret_mode="none", retry_schedule="", max_attempts=""),
    )
    assert response.status_code == 302, response.context["form"].errors
    row.refresh_from_db()
    assert (row.retry_schedule, row.max_attempts) == (None, None)


def test_enabling_in_the_admin_starts_a_fresh_failing_streak(admin, settings_destination):
    DestinationState.objects.create(
        alias="from-settings",
        disabled_at=datetime.now(UTC),
        disabled_reason="every attempt failed for more than 5 days (DISABLE_AFTER_FAILING_FOR)",
        failing_since=datetime.now(UTC) - timedelta(days=6),
        consecutive_failures=40,
    )
    detail = admin.get(url("detail", "from-settings")).content.decode()
    assert "every attempt failed for more than 5 days" in detail
    assert "data-failing-since>—" not in detail
    admin.post(url("enable", "from-settings"))
    state = DestinationState.objects.get(alias="from-settings")
    assert (state.is_disabled, state.failing_since, state.consecutive_failures) == (False, None, 0)
    assert "data-failing-since>—" in admin.get(url("detail", "from-settings")).content.decode()


def test_include_with_an_unknown_name_is_refused(admin, settings_destination, httpserver):
    response = admin.post(url("add"), {**form_data(httpserver), "include": ["nope"]})
    assert response.status_code == 200
    assert "include" in response.context["form"].errors
    assert not ManagedDestination.objects.exists()


def test_an_alias_is_unique_among_managed_destinations(admin, settings_destination, httpserver):
    create(admin, httpserver)
    response = admin.post(url("add"), form_data(httpserver))
    assert response.status_code == 200
    assert "alias" in response.context["form"].errors
    assert ManagedDestination.objects.count() == 1


# -- Rotation --------------------------------------------------------------------------------


def test_rotating_keeps_the_previous_secret_on_request_and_is_audited(
    admin, settings_destination, httpserver
):
    first = shown_secret(create(admin, httpserver))
    destination = ManagedDestination.objects.get()
    response = admin.post(url("rotate_secret", destination.pk), {"keep_previous": "1"})
    assert response.status_code == 200
    second = shown_secret(response)
    assert second != first and first not in response.content.decode()
    destination.refresh_from_db()
    assert destination.plain_secrets() == [second, first]
    edit_html = admin.get(url("edit", destination.pk)).content.decode()
    assert first not in edit_html and second not in edit_html
    assert "Stop signing with the previous secret" in edit_html
    admin.post(
        url("edit", destination.pk),
        form_data(httpserver, secret_mode="keep", drop_previous_secrets="on"),
    )
    destination.refresh_from_db()
    assert destination.plain_secrets() == [second]
    rotate, drop = ModelLogEntry.objects.filter(
        action="wagtail_publish_hooks.rotate_secret"
    ).order_by("pk")
    assert rotate.object_id == str(destination.pk) and rotate.data["kept_previous"] is True
    assert drop.data == {"alias": "managed", "secrets": 1}  # counts, never secrets

    third = shown_secret(admin.post(url("rotate_secret", destination.pk)))
    destination.refresh_from_db()
    assert destination.plain_secrets() == [third]


# -- Enable, disable, test --------------------------------------------------------------------


def test_disable_and_enable_are_audited_and_the_command_enables_too(
    admin, settings_destination, httpserver, draft_blog_page
):
    create(admin, httpserver)
    destination = ManagedDestination.objects.get()
    response = admin.post(url("disable", "managed"))
    assert response.status_code == 302
    state = DestinationState.objects.get(alias="managed")
    assert state.is_disabled and "disabled in the admin by admin" in state.disabled_reason
    assert "Disabled: disabled in the admin by admin" in admin.get(url("index")).content.decode()

    # A publish meanwhile is recorded, and its delivery fails at once naming the reason.
    httpserver.expect_request("/managed").respond_with_data("ok")
    httpserver.expect_request("/settings").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    delivery = Delivery.objects.get(destination="managed")
    assert delivery.status == DeliveryStatus.FAILED
    assert "disabled in the admin" in delivery.last_error
    assert not [r for r, _ in httpserver.log if r.path == "/managed"]

    admin.post(url("enable", "managed"))
    assert not DestinationState.objects.get(alias="managed").is_disabled
    admin.post(url("disable", "from-settings"))
    call_command("publish_hooks", "enable", "from-settings", stdout=StringIO())
    assert not DestinationState.objects.get(alias="from-settings").is_disabled

    actions = list(ModelLogEntry.objects.order_by("pk").values_list("action", "object_id", "data"))
    ours = [a for a in actions if a[0].startswith("wagtail_publish_hooks.")]
    assert ours[0] == ("wagtail_publish_hooks.disable", str(destination.pk), {"alias": "managed"})
    assert ours[1] == ("wagtail_publish_hooks.enable", str(destination.pk), {"alias": "managed"})
    settings_state = DestinationState.objects.get(alias="from-settings")
    assert ours[2] == (
        "wagtail_publish_hooks.disable",
        str(settings_state.pk),
        {"alias": "from-settings"},
    )


def test_send_test_event_delivers_for_real_signed_with_the_stored_secret(
    admin, settings_destination, httpserver
):
    secret = shown_secret(create(admin, httpserver))
    httpserver.expect_request("/managed", method="POST").respond_with_data("ok")
    response = admin.post(url("send_test", "managed"), follow=True)
    assert "Test event evt_" in response.content.decode()
    assert len(httpserver.log) == 1
    request, _ = httpserver.log[0]
    payload = Webhook(secret).verify(request.get_data(), dict(request.headers))
    assert payload["type"] == "publish_hooks.test"
    assert payload["data"]["destination"] == "managed"
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    entry = ModelLogEntry.objects.get(action="wagtail_publish_hooks.test")
    assert entry.data["event_id"] == delivery.event.event_id
    assert secret not in response.content.decode()


def test_send_test_event_to_a_settings_destination(admin, settings_destination, httpserver):
    httpserver.expect_request("/settings").respond_with_data("ok")
    admin.post(url("send_test", "from-settings"))
    assert len(httpserver.log) == 1
    state = DestinationState.objects.get(alias="from-settings")
    assert ModelLogEntry.objects.get(action="wagtail_publish_hooks.test").object_id == str(state.pk)


def test_actions_refuse_get(admin, settings_destination):
    assert admin.get(url("disable", "from-settings")).status_code == 405
    assert not DestinationState.objects.exists()


def test_deleting_a_managed_destination_stops_routing_to_it(
    admin, settings_destination, httpserver, draft_blog_page
):
    create(admin, httpserver)
    destination = ManagedDestination.objects.get()
    assert admin.post(url("delete", destination.pk)).status_code == 302
    assert not ManagedDestination.objects.exists()
    httpserver.expect_request("/settings").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    assert list(Delivery.objects.values_list("destination", flat=True)) == ["from-settings"]


# -- Permissions -------------------------------------------------------------------------------


def test_users_without_the_permissions_see_no_menu_and_get_403(
    django_user_model, settings_destination, httpserver
):
    destination = ManagedDestination.objects.create(
        alias="managed", backend=WEBHOOK, options={"URL": httpserver.url_for("/m")}
    )
    user, client = user_with(django_user_model, "nobody")
    request = RequestFactory().get("/admin/")
    request.user = user
    assert not destinations_menu_item().is_shown(request)
    for page in (
        url("index"),
        url("detail", "managed"),
        url("add"),
        url("edit", destination.pk),
        url("delete", destination.pk),
        url("rotate_secret", destination.pk),
    ):
        assert client.get(page).status_code == 403, page
    for action in ("enable", "disable", "send_test"):
        assert client.post(url(action, "managed")).status_code == 403
    assert not DestinationState.objects.exists()
    assert (
        "publish_hooks_destinations"
        not in client.get(reverse("wagtailadmin_home")).content.decode()
    )


def test_the_view_permission_shows_but_does_not_change(
    django_user_model, settings_destination, httpserver
):
    destination = ManagedDestination.objects.create(
        alias="managed", backend=WEBHOOK, options={"URL": httpserver.url_for("/m")}
    )
    user, client = user_with(django_user_model, "viewer", "view_manageddestination")
    request = RequestFactory().get("/admin/")
    request.user = user
    assert destinations_menu_item().is_shown(request)
    assert client.get(url("index")).status_code == 200
    detail = client.get(url("detail", "managed"))
    assert detail.status_code == 200
    assert url("disable", "managed") not in detail.content.decode()
    assert client.get(url("add")).status_code == 403
    assert client.get(url("edit", destination.pk)).status_code == 403
    assert client.post(url("disable", "managed")).status_code == 403
    assert client.post(url("rotate_secret", destination.pk)).status_code == 403
    assert not DestinationState.objects.exists()


def test_the_change_permission_allows_the_actions(
    django_user_model, settings_destination, httpserver
):
    ManagedDestination.objects.create(
        alias="managed", backend=WEBHOOK, options={"URL": httpserver.url_for("/m")}
    )
    _user, client = user_with(
        django_user_model, "operator", "view_manageddestination", "change_manageddestination"
    )
    assert client.post(url("disable", "managed")).status_code == 302
    assert DestinationState.objects.get(alias="managed").is_disabled
    assert client.get(url("add")).status_code == 403  # adding needs add_manageddestination


def test_the_permissions_are_offered_in_the_group_editor(admin):
    html = admin.get(reverse("wagtailusers_groups:add")).content.decode()
    for codename in ("add", "change", "delete", "view"):
        permission = Permission.objects.get(codename=f"{codename}_manageddestination")
        assert f'value="{permission.pk}"' in html, codename


# -- The chart ---------------------------------------------------------------------------------


def attempts_at(alias: str, when: datetime, outcomes: list[str]) -> None:
    event = Event.objects.create(event_type="page.published", payload={}, created_at=when)
    delivery = Delivery.objects.create(event=event, destination=alias, created_at=when)
    for number, outcome in enumerate(outcomes, start=1):
        Attempt.objects.create(delivery=delivery, number=number, started_at=when, outcome=outcome)


def test_the_chart_counts_attempts_per_hour_and_outcome_keeping_the_hours_that_are_over(
    django_assert_num_queries, django_assert_max_num_queries
):
    now = datetime(2026, 11, 21, 12, 30, tzinfo=UTC)
    attempts_at("a", now - timedelta(minutes=20), ["success", "success"])
    attempts_at("a", now - timedelta(hours=2, minutes=5), ["retry", "failure"])
    attempts_at("b", now - timedelta(hours=5), ["retry", "retry", "success"])
    attempts_at("a", now - timedelta(days=8), ["failure"])  # outside the window
    # The first chart counts every hour and keeps those that are over (a read, a count, and
    # one transaction that writes them); the next ones read them and count the last hours.
    with django_assert_max_num_queries(6):
        first = hourly_outcomes(["a", "b", "c"], now=now)
    kept = AttemptHour.objects.filter(destination="")
    assert kept.count() == HOURS - 1  # not this hour: attempts may still be recorded in it
    with django_assert_num_queries(2):
        series = hourly_outcomes(["a", "b", "c"], now=now)
    assert {alias: s.hours for alias, s in series.items()} == {
        alias: s.hours for alias, s in first.items()
    }
    a = series["a"]
    assert a.start == datetime(2026, 11, 14, 13, 0, tzinfo=UTC)
    assert a.hours[HOURS - 1] == {"success": 2}
    assert a.hours[HOURS - 3] == {"retry": 1, "failure": 1}
    assert dict(a.totals) == {"success": 2, "retry": 1, "failure": 1}
    assert dict(series["b"].totals) == {"retry": 2, "success": 1}
    assert series["b"].hours[HOURS - 6] == {"retry": 2, "success": 1}
    assert not series["c"].totals

    svg = str(chart_svg(a))
    assert 'role="img"' in svg and "aria-labelledby" in svg
    assert "4 attempts to a in the last 7 days: 2 succeeded, 1 will be retried, 1 failed." in svg
    assert svg.count("<rect") == 3  # one hour of successes; one of a retry and a failure
    assert "2026-11-21 10:00 UTC: 1 will retry, 1 failure" in svg
    # The list's small charts: a path per outcome, the totals in the text alternative.
    small = str(chart_svg(a, hour_labels=False))
    assert small.count("<path") == 3 and "<rect" not in small and "UTC:" not in small
    assert "4 attempts to a in the last 7 days" in small
    assert "No attempts to c in the last 7 days." in str(chart_svg(series["c"]))


def test_the_listing_draws_each_destination_chart(admin, settings_destination, httpserver):
    attempts_at("from-settings", datetime.now(UTC), [AttemptOutcome.FAILURE])
    html = admin.get(url("index")).content.decode()
    assert "1 attempt to from-settings in the last 7 days: 0 succeeded" in html
    assert 'data-attempts="1"' in html


# -- Secrets follow their target -------------------------------------------------------------


def test_switching_slack_to_webhook_while_keeping_the_url_is_refused(
    admin, settings_destination, httpserver
):
    token = secrets.token_hex(12)
    stored = httpserver.url_for(slack_path(token))
    destination = ManagedDestination.objects.create(
        alias="team", backend=SLACK, options={"URL": stored}
    )
    response = admin.post(
        url("edit", destination.pk),
        edit_data(destination, {"URL": KEPT_SECRET}, backend=WEBHOOK, secret_mode="none"),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert token not in html
    assert "the backend changed" in str(response.context["form"].errors["options"])
    destination.refresh_from_db()
    assert destination.backend == SLACK and destination.plain_options() == {"URL": stored}
    # Even drawn for the webhook backend, where URL is no secret, the stored one is not shown.
    assert token not in admin.get(url("edit", destination.pk)).content.decode()


def test_a_kept_header_secret_does_not_follow_a_new_host(admin, settings_destination, httpserver):
    bearer = "Bearer " + secrets.token_hex(16)
    destination = ManagedDestination.objects.create(
        alias="hooks",
        backend=WEBHOOK,
        options={"URL": httpserver.url_for("/hooks"), "HEADERS": {"Authorization": bearer}},
    )
    kept = {"HEADERS": {"Authorization": KEPT_SECRET}}
    for elsewhere in (
        "https://attacker.example/hooks",
        httpserver.url_for("/hooks").replace("http://", "https://"),  # the scheme
        httpserver.url_for("/hooks").replace(str(httpserver.port), str(httpserver.port + 1)),
    ):
        response = admin.post(
            url("edit", destination.pk), edit_data(destination, {"URL": elsewhere, **kept})
        )
        assert response.status_code == 200, elsewhere
        errors = str(response.context["form"].errors["options"])
        assert "the target changed" in errors and "enter it again" in errors
        assert bearer not in response.content.decode()
    destination.refresh_from_db()
    assert destination.plain_options()["URL"] == httpserver.url_for("/hooks")
    # Another path on the same host keeps it; so does typing it again for a new host.
    response = admin.post(
        url("edit", destination.pk),
        edit_data(destination, {"URL": httpserver.url_for("/other"), **kept}),
    )
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.plain_options()["HEADERS"] == {"Authorization": bearer}
    response = admin.post(
        url("edit", destination.pk),
        edit_data(
            destination,
            {"URL": "https://new.example/hooks", "HEADERS": {"Authorization": "Bearer typed"}},
        ),
    )
    assert response.status_code == 302


def test_a_revalidation_secret_is_entered_again_for_a_new_host(
    admin, settings_destination, httpserver
):
    secret_value = "rv-" + secrets.token_hex(16)
    destination = ManagedDestination.objects.create(
        alias="frontend",
        backend=REVALIDATE,
        options={"URL": httpserver.url_for("/api/revalidate"), "COALESCE_SECONDS": 0},
        secrets=[secret_value],
    )
    moved = {"URL": "https://attacker.example/api/revalidate", "COALESCE_SECONDS": 0}
    response = admin.post(url("edit", destination.pk), edit_data(destination, moved))
    assert response.status_code == 200
    assert "enter a secret" in str(response.context["form"].errors["secret_mode"]).lower()
    assert secret_value not in response.content.decode()
    destination.refresh_from_db()
    assert destination.plain_options()["URL"] == httpserver.url_for("/api/revalidate")
    # Per-site endpoints: adding a host is a new target too.
    response = admin.post(
        url("edit", destination.pk),
        edit_data(
            destination,
            {
                "URL": {"*": httpserver.url_for("/api/revalidate"), "b.example": moved["URL"]},
                "COALESCE_SECONDS": 0,
            },
        ),
    )
    assert response.status_code == 200
    # Entered again, it is stored for the new host.
    response = admin.post(
        url("edit", destination.pk),
        edit_data(destination, moved, secret_mode="enter", secret_value="rv-new-one"),
    )
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.plain_secrets() == ["rv-new-one"]


def test_a_webhook_signing_secret_may_stay_when_the_host_changes(
    admin, settings_destination, httpserver
):
    """It signs the requests and never leaves this server: the new host cannot learn it."""
    signing = make_secret()
    destination = ManagedDestination.objects.create(
        alias="hooks", backend=WEBHOOK, options={"URL": httpserver.url_for("/h")}, secrets=[signing]
    )
    response = admin.post(
        url("edit", destination.pk), edit_data(destination, {"URL": "https://new.example/h"})
    )
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.plain_secrets() == [signing]
    # A change of backend does not keep it: a revalidation backend would send it.
    response = admin.post(
        url("edit", destination.pk),
        edit_data(destination, {"URL": "https://new.example/h"}, backend=REVALIDATE),
    )
    assert response.status_code == 200
    assert "the backend changed" in str(response.context["form"].errors["secret_mode"])


def test_encrypted_looking_values_are_refused(admin, settings_destination, httpserver):
    response = admin.post(
        url("add"),
        form_data(
            httpserver,
            options=json.dumps(
                {"URL": "https://x.example", "HEADERS": {"X": "wph-encrypted:v1:gAAAA"}}
            ),
        ),
    )
    assert response.status_code == 200
    assert "encrypted values" in str(response.context["form"].errors["options"])


def test_a_destination_whose_keys_are_lost_is_listed_broken_and_fixed_by_entering_secrets(
    admin, settings_destination, httpserver, settings
):
    from cryptography.fernet import Fernet

    def use_key() -> None:
        key = Fernet.generate_key().decode()
        settings.WAGTAIL_PUBLISH_HOOKS = {
            **settings.WAGTAIL_PUBLISH_HOOKS,
            "ENCRYPTION_KEYS": [key],
        }

    use_key()
    token = secrets.token_hex(12)
    destination = ManagedDestination.objects.create(
        alias="team", backend=SLACK, options={"URL": httpserver.url_for(slack_path(token))}
    )
    use_key()  # the key that encrypted it is gone
    html = admin.get(url("index")).content.decode()
    assert "Broken, not used" in html and "wagtail_publish_hooks.E047" in html
    edit = admin.get(url("edit", destination.pk))
    assert edit.status_code == 200
    assert RETYPE_SECRET in edit.content.decode() and "wph-encrypted" not in edit.content.decode()
    response = admin.post(url("edit", destination.pk), edit_data(destination, {"URL": KEPT_SECRET}))
    assert response.status_code == 200  # nothing to keep
    new_url = httpserver.url_for(slack_path("new" + secrets.token_hex(8)))
    response = admin.post(url("edit", destination.pk), edit_data(destination, {"URL": new_url}))
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.plain_options() == {"URL": new_url}
    assert "Broken, not used" not in admin.get(url("index")).content.decode()
