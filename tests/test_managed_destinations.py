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
from wagtail_publish_hooks.conf import get_destinations, refresh_destinations
from wagtail_publish_hooks.managed import managed_destinations
from wagtail_publish_hooks.models import Delivery, DeliveryStatus, ManagedDestination

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[1]


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
