"""Destinations managed in the admin are routed like those of the settings, in every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tests.conftest import WEBHOOK, make_secret
from tests.testapp.models import BlogPage
from wagtail_publish_hooks.http.addresses import delivery_policy, managed_policy, settings_policy
from wagtail_publish_hooks.models import Delivery, DeliveryStatus, ManagedDestination
from wagtail_publish_hooks.registry import (
    get_backend,
    get_destinations,
    managed_destinations,
    refresh_destinations,
)

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def managed(alias, url, **fields):
    return ManagedDestination.objects.create(
        alias=alias, backend=WEBHOOK, options={"URL": url}, **fields
    )


def table_queries(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "manageddestination" in q["sql"]]


def test_a_publish_reaches_an_admin_managed_destination_signed_with_its_secret(
    configure, httpserver, draft_blog_page
):
    configure(DESTINATIONS={}, RETRY_SCHEDULE=[0], MANAGED_ALLOW_PRIVATE_NETWORKS=["127.0.0.0/8"])
    secret = make_secret()
    managed("managed", httpserver.url_for("/managed"), secrets=[secret], events=["page.*"])
    httpserver.expect_request("/managed", method="POST").respond_with_data("ok")

    draft_blog_page.save_revision().publish()

    delivery = Delivery.objects.get()
    assert delivery.destination == "managed"
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    request, _ = httpserver.log[0]
    payload = Webhook(secret).verify(request.get_data(), dict(request.headers))
    assert payload["type"] == "page.published"
    assert payload["data"]["page"]["id"] == draft_blog_page.pk


def test_a_backend_built_for_a_managed_destination_knows_it_and_takes_the_admins_policy(
    configure, httpserver
):
    configure(
        DESTINATIONS={"ops": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/")}}}
    )
    managed("managed", httpserver.url_for("/managed"), secrets=[make_secret()])
    refresh_destinations()

    assert get_backend("managed").managed is True
    assert get_backend("ops").managed is False
    # Outside a delivery (where the worker sets the policy), a backend deciding what it may
    # reach gets the policy of its own kind of destination.
    assert delivery_policy(managed=get_backend("managed").managed) == managed_policy()
    assert delivery_policy(managed=get_backend("ops").managed) == settings_policy()


def test_filters_of_a_managed_destination_apply(configure, httpserver, draft_blog_page):
    configure(DESTINATIONS={})
    managed("others-only", httpserver.url_for("/x"), model_labels=["testapp.OtherPage"])
    managed("unpublish-only", httpserver.url_for("/y"), events=["page.unpublished"])
    draft_blog_page.save_revision().publish()
    assert not Delivery.objects.exists()


def test_settings_win_an_alias_collision_and_a_check_says_so(
    configure, httpserver, settings, draft_blog_page
):
    configure(
        DESTINATIONS={
            "shared": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/settings")}}
        }
    )
    managed("shared", httpserver.url_for("/admin"))
    assert get_destinations()["shared"].options["URL"].endswith("/settings")
    messages = checks.run_checks(tags=["wagtail_publish_hooks"])
    ours = [m for m in messages if m.id == "wagtail_publish_hooks.W013"]
    assert len(ours) == 1
    assert ours[0].msg.startswith("wagtail_publish_hooks.ManagedDestination['shared']: has the")
    assert ours[0].level == checks.WARNING  # data must never stop migrate or a deploy


def test_an_invalid_managed_destination_is_a_warning_naming_the_original_check(
    configure, httpserver
):
    configure(DESTINATIONS={})
    ManagedDestination.objects.create(alias="broken", backend=WEBHOOK, options={})
    ManagedDestination.objects.create(
        alias="plain", backend=WEBHOOK, options={"URL": "http://consumer.example/hooks"}
    )
    messages = checks.run_checks(tags=["wagtail_publish_hooks"])
    by_id = {m.id: m for m in messages}
    broken = by_id["wagtail_publish_hooks.W014"]
    assert broken.msg == (
        "wagtail_publish_hooks.ManagedDestination['broken']['OPTIONS']['URL']: is required and "
        "missing. (wagtail_publish_hooks.E011) The destination cannot deliver until it is fixed "
        "in the admin."
    )
    assert not any(m.is_serious() for m in messages if "ManagedDestination" in m.msg)
    # A warning of the checks stays what it is.
    assert by_id["wagtail_publish_hooks.W003"].msg.startswith(
        "wagtail_publish_hooks.ManagedDestination['plain']['OPTIONS']['URL']"
    )
    assert "wagtail_publish_hooks.W004" in by_id  # and unsigned


def test_the_checks_do_not_fail_before_migrate(tmp_path):
    """``manage.py check`` on a database without the table (a new site, before ``migrate``)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        TEST_SQLITE_PATH=str(tmp_path / "empty.sqlite3"),
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--tag", "wagtail_publish_hooks"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


# -- The in-process copy -----------------------------------------------------------------------


def test_publishing_reads_the_table_only_after_a_change(configure, httpserver, blog_index):
    configure(DESTINATIONS={})
    destination = managed("managed", httpserver.url_for("/m"), model_labels=["testapp.OtherPage"])

    def publish(slug):
        page = BlogPage(title=slug, slug=slug)
        blog_index.add_child(instance=page)
        revision = page.save_revision()
        with CaptureQueriesContext(connection) as captured:
            revision.publish()
        return table_queries(captured)

    assert publish("first")  # saved in this process a moment ago: read again
    assert publish("second") == []  # then kept in memory
    destination.model_labels = ["testapp.BlogPage"]
    destination.save()
    assert publish("third")  # this process's own change is seen at once
    assert Delivery.objects.get().event.object_repr == "third"


def test_changes_by_other_processes_are_seen_after_the_refresh_interval(
    configure, httpserver, draft_blog_page
):
    """Another process's writes send no signal here; a queryset ``update()`` is the same."""
    configure(DESTINATIONS={}, DESTINATIONS_REFRESH_SECONDS=3600)
    refresh_destinations()
    ManagedDestination.objects.bulk_create(
        [
            ManagedDestination(
                alias="elsewhere", backend=WEBHOOK, options={"URL": "https://x.example"}
            )
        ]
    )
    assert "elsewhere" not in get_destinations()  # within the interval: not looked up
    assert "elsewhere" in refresh_destinations()  # what the interval's end does

    ManagedDestination.objects.filter(alias="elsewhere").update(
        options={"URL": "https://y.example"}, updated_at=timezone.now()
    )
    configure(DESTINATIONS={}, DESTINATIONS_REFRESH_SECONDS=0)  # look up on every call
    managed_destinations.invalidate()
    assert get_destinations()["elsewhere"].options["URL"] == "https://y.example"
    ManagedDestination.objects.filter(alias="elsewhere").delete()
    assert "elsewhere" not in get_destinations()


def test_the_status_and_test_commands_see_managed_destinations(
    configure, httpserver, draft_blog_page
):
    configure(DESTINATIONS={}, RETRY_SCHEDULE=[0], MANAGED_ALLOW_PRIVATE_NETWORKS=["127.0.0.0/8"])
    secret = make_secret()
    managed("managed", httpserver.url_for("/managed"), secrets=[secret])
    httpserver.expect_request("/managed").respond_with_data("ok")
    out = StringIO()
    call_command("publish_hooks", "test", "managed", stdout=out)
    assert "queued for 'managed'" in out.getvalue()
    call_command("publish_hooks", "status", stdout=out)
    assert "WebhookBackend" in out.getvalue()
    assert secret not in out.getvalue()
    Webhook(secret).verify(httpserver.log[0][0].get_data(), dict(httpserver.log[0][0].headers))


# -- A real worker process ---------------------------------------------------------------------


def db_worker(env):
    return subprocess.Popen(
        [sys.executable, "-m", "django", "db_worker", "--no-startup-delay", "--interval", "0.2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(delivery: Delivery, seconds: float = 60) -> Delivery:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        delivery.refresh_from_db()
        if delivery.is_final or delivery.status == DeliveryStatus.RETRYING:
            break
        time.sleep(0.2)
    return delivery


@pytest.mark.worker
def test_a_running_worker_delivers_to_destinations_created_and_changed_after_it_started(
    settings, httpserver, blog_index
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    refresh = 1
    config = {
        "DESTINATIONS": {
            "from-settings": {
                "BACKEND": WEBHOOK,
                "OPTIONS": {"URL": httpserver.url_for("/settings")},
            }
        },
        "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"],
        "MANAGED_ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"],
        "RETRY_SCHEDULE": [1],
        "DESTINATIONS_REFRESH_SECONDS": refresh,
    }
    settings.WAGTAIL_PUBLISH_HOOKS = config
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(config),
        TEST_SQLITE_PATH=str(connection.settings_dict["NAME"]),
        PYTHONPATH=str(ROOT),
    )
    httpserver.expect_request("/settings").respond_with_data("ok")
    httpserver.expect_request("/first").respond_with_data("ok")
    httpserver.expect_request("/second").respond_with_data("ok")
    secret = make_secret()

    def publish(slug):
        page = BlogPage(title=slug, slug=slug)
        blog_index.add_child(instance=page)
        page.save_revision().publish()
        return Delivery.objects.get(event__object_repr=slug, destination=destination)

    worker = db_worker(env)
    try:
        # The worker delivers, and so reads the (empty) table of managed destinations, before
        # the destination exists: it learns about it from nothing but the database.
        destination = "from-settings"
        assert wait_for(publish("zero")).status == DeliveryStatus.DELIVERED
        destination = "late"
        instance = managed("late", httpserver.url_for("/first"), secrets=[secret])
        first = wait_for(publish("one"))
        assert first.status == DeliveryStatus.DELIVERED, first.last_error

        instance.options = {"URL": httpserver.url_for("/second")}
        instance.save()
        time.sleep(refresh + 0.5)  # the worker's copy is now due for a look
        second = wait_for(publish("two"))
        assert second.status == DeliveryStatus.DELIVERED, second.last_error
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    paths = [request.path for request, _ in httpserver.log if request.path != "/settings"]
    assert paths == ["/first", "/second"], output
    for request, _ in httpserver.log:
        if request.path != "/settings":
            Webhook(secret).verify(request.get_data(), dict(request.headers))
    assert secret not in output


# -- The registry of backends a managed destination may use -------------------------------------

RECORDING = "tests.support.backends.RecordingBackend"


def test_an_operator_approved_backend_is_offered_and_delivers(configure, draft_blog_page):
    from tests.support.backends import RecordingBackend
    from wagtail_publish_hooks.registry import managed_backend_choices

    configure(DESTINATIONS={})
    ManagedDestination.objects.create(alias="custom", backend=RECORDING)
    assert "custom" not in refresh_destinations()  # not approved: never built
    configure(DESTINATIONS={}, MANAGED_BACKENDS=[RECORDING])
    assert (RECORDING, "RecordingBackend") in managed_backend_choices()
    assert ("wagtail_publish_hooks.backends.slack.SlackBackend", "Slack") in (
        managed_backend_choices()
    )
    RecordingBackend.received = []
    assert "custom" in refresh_destinations()
    draft_blog_page.save_revision().publish()
    assert [payload["type"] for payload in RecordingBackend.received] == ["page.published"]


def test_managed_backends_and_encryption_keys_are_checked(configure):
    configure(
        MANAGED_BACKENDS=["tests.support.backends.NotABackend", "tests.nope.Nope", 3],
        ENCRYPTION_KEYS=["not-a-key"],
    )
    messages = [m for m in checks.run_checks(tags=["wagtail_publish_hooks"]) if "E046" in m.id]
    texts = [m.msg for m in messages]
    assert any("NotABackend' is not a subclass" in text for text in texts)
    assert any("'tests.nope.Nope' cannot be imported" in text for text in texts)
    assert any("3 is not a dotted path" in text for text in texts)
    assert any("ENCRYPTION_KEYS']: item 0 is not a Fernet key" in text for text in texts)
    assert "not-a-key" not in str(texts)  # a key is never printed
    configure(ENCRYPTION_KEYS="one-key")
    assert any(
        "must be None or a non-empty list" in m.msg
        for m in checks.run_checks(tags=["wagtail_publish_hooks"])
        if m.id.endswith("E046")
    )


# -- Secrets at rest --------------------------------------------------------------------------


def test_secrets_are_encrypted_when_saved_and_decrypted_when_routed(configure, httpserver):
    configure(DESTINATIONS={})
    secret = make_secret()
    bearer = "Bearer tok" + os.urandom(8).hex()
    row = ManagedDestination.objects.create(
        alias="managed",
        backend=WEBHOOK,
        options={"URL": httpserver.url_for("/m"), "HEADERS": {"Authorization": bearer, "X": "y"}},
        secrets=[secret],
    )
    row.refresh_from_db()
    assert row.secrets[0].startswith("wph-encrypted:v1:")
    assert row.options["HEADERS"]["Authorization"].startswith("wph-encrypted:v1:")
    assert row.options["HEADERS"]["X"] == "y" and row.options["URL"] == httpserver.url_for("/m")
    options = refresh_destinations()["managed"].options
    assert options["SECRET"] == secret and options["HEADERS"]["Authorization"] == bearer


def test_rows_whose_keys_are_lost_are_an_error_and_never_break_a_publish(
    configure, settings, httpserver, draft_blog_page
):
    loopback = ["127.0.0.0/8", "::1/128"]
    configure(DESTINATIONS={}, MANAGED_ALLOW_PRIVATE_NETWORKS=loopback)
    managed("lost", httpserver.url_for("/lost"), secrets=[make_secret()])
    managed("fine", httpserver.url_for("/fine"))
    settings.SECRET_KEY = "another-key-altogether"
    configure(DESTINATIONS={}, MANAGED_ALLOW_PRIVATE_NETWORKS=loopback)
    assert set(refresh_destinations()) == {"fine"}
    messages = checks.run_checks(tags=["wagtail_publish_hooks"])
    lost = [m for m in messages if m.id == "wagtail_publish_hooks.E047"]
    assert [m.msg.split(":")[0] for m in lost] == [
        "wagtail_publish_hooks.ManagedDestination['lost']"
    ]
    httpserver.expect_request("/fine").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    assert list(Delivery.objects.values_list("destination", "status")) == [
        ("fine", DeliveryStatus.DELIVERED)
    ]


def test_rotating_secret_key_with_fallbacks_keeps_every_destination(configure, settings):
    configure(DESTINATIONS={})
    secret = make_secret()
    managed("managed", "https://consumer.example/hooks", secrets=[secret])
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "the-new-secret-key"
    settings.SECRET_KEY_FALLBACKS = [old]
    configure(DESTINATIONS={})
    assert refresh_destinations()["managed"].options["SECRET"] == secret
    ids = [m.id for m in checks.run_checks(tags=["wagtail_publish_hooks"])]
    assert "wagtail_publish_hooks.W021" in ids  # under the fallback: re-encrypt
    call_command("publish_hooks", "reencrypt", stdout=StringIO())
    settings.SECRET_KEY_FALLBACKS = []
    configure(DESTINATIONS={})
    assert refresh_destinations()["managed"].options["SECRET"] == secret
    ids = [m.id for m in checks.run_checks(tags=["wagtail_publish_hooks"])]
    assert "wagtail_publish_hooks.W021" not in ids


def test_encryption_keys_rotate_first_encrypts_all_decrypt(configure, settings):
    from cryptography.fernet import Fernet
    from django.core.management import CommandError

    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    configure(DESTINATIONS={}, ENCRYPTION_KEYS=[first])
    secret = make_secret()
    row = managed("managed", "https://consumer.example/hooks", secrets=[secret])
    managed("slack", "https://hooks.slack.example/services/T/B/x")
    ManagedDestination.objects.filter(alias="slack").update(
        backend="wagtail_publish_hooks.backends.slack.SlackBackend"
    )
    stored = ManagedDestination.objects.get(pk=row.pk).secrets[0]
    token = stored[len("wph-encrypted:v1:") :].encode()
    assert Fernet(first.encode()).decrypt(token)  # the first key encrypted it

    configure(DESTINATIONS={}, ENCRYPTION_KEYS=[second, first])
    assert refresh_destinations()["managed"].options["SECRET"] == secret
    by_id = {m.id: m for m in checks.run_checks(tags=["wagtail_publish_hooks"])}
    # The row saved as a webhook holds its Slack URL in plaintext: it is reported too.
    assert "'managed', 'slack'" in by_id["wagtail_publish_hooks.W021"].msg
    out = StringIO()
    call_command("publish_hooks", "reencrypt", stdout=out)
    assert "2 destination(s)" in out.getvalue()
    slack = ManagedDestination.objects.get(alias="slack")
    assert slack.options["URL"].startswith("wph-encrypted:v1:")

    configure(DESTINATIONS={}, ENCRYPTION_KEYS=[second])
    assert refresh_destinations()["managed"].options["SECRET"] == secret
    assert "wagtail_publish_hooks.W021" not in [
        m.id for m in checks.run_checks(tags=["wagtail_publish_hooks"])
    ]
    configure(DESTINATIONS={}, ENCRYPTION_KEYS=[first])  # the current key lost
    with pytest.raises(CommandError, match="'managed'"):
        call_command("publish_hooks", "reencrypt", stdout=StringIO())
    assert "managed" not in refresh_destinations()


def test_the_data_migration_encrypts_and_its_reverse_decrypts(configure):
    import importlib

    from django.db.migrations.executor import MigrationExecutor

    configure(DESTINATIONS={})
    state = MigrationExecutor(connection).loader.project_state(
        ("wagtail_publish_hooks", "0009_encrypt_managed_secrets")
    )
    apps = state.apps  # the historical model, as the migration sees it
    migration = importlib.import_module(
        "wagtail_publish_hooks.migrations.0009_encrypt_managed_secrets"
    )
    secret = make_secret()
    slack_url = "https://hooks.slack.example/services/T/B/" + os.urandom(8).hex()
    slack = "wagtail_publish_hooks.backends.slack.SlackBackend"
    ManagedDestination.objects.bulk_create(  # as the table was before: plaintext
        [
            ManagedDestination(
                alias="hook",
                backend=WEBHOOK,
                options={"URL": "https://x.example"},
                secrets=[secret],
            ),
            ManagedDestination(alias="team", backend=slack, options={"URL": slack_url}),
        ]
    )

    class Editor:
        connection = connection

    migration.encrypt_rows(apps, Editor())
    raw = json.dumps(list(ManagedDestination.objects.values("secrets", "options")))
    assert secret not in raw and slack_url not in raw and "https://x.example" in raw
    assert refresh_destinations()["team"].options["URL"] == slack_url
    migration.encrypt_rows(apps, Editor())  # twice changes nothing
    assert refresh_destinations()["hook"].options["SECRET"] == secret
    migration.decrypt_rows(apps, Editor())
    rows = {row.alias: row for row in ManagedDestination.objects.all()}
    assert rows["hook"].secrets == [secret] and rows["team"].options == {"URL": slack_url}


def test_a_stored_row_that_names_code_is_w020_and_not_built(configure):
    """The full hostile set is in tests/trust/test_manager_code.py."""
    configure(DESTINATIONS={})
    ManagedDestination.objects.bulk_create(
        [
            ManagedDestination(
                alias="tags",
                backend="wagtail_publish_hooks.backends.revalidate.RevalidateBackend",
                options={"URL": "https://x.example/api", "TAGS": "subprocess.Popen"},
            )
        ]
    )
    assert "tags" not in refresh_destinations()
    [message] = [
        m for m in checks.run_checks(tags=["wagtail_publish_hooks"]) if m.id.endswith("W020")
    ]
    assert message.msg.startswith(
        "wagtail_publish_hooks.ManagedDestination['tags']['OPTIONS']['TAGS']: names code, and "
        "may be set in settings only, not in the admin. (wagtail_publish_hooks.E045)"
    )
