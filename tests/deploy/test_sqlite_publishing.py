"""The worker never breaks a publish on SQLite configured as W024 asks.

An editor publishes a page 100 times through Wagtail's edit view (the test client posting the
form with ``action-publish``) while a real ``db_worker`` process, on the same SQLite file,
delivers each publish to a slow sink on 127.0.0.1. Twice: with the database options a fresh
``wagtail start`` site has (none: deferred transactions, which W024 reports; publishes may fail
with "database is locked", which is recorded, not required), and with the recommended ones
(``IMMEDIATE`` and a busy timeout: all 100 publishes succeed and are delivered).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.urls import reverse
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text

from tests.conftest import WEBHOOK
from tests.support.sink_log import Sink
from wagtail_publish_hooks.checks.database import SQLITE_OPTIONS, check_sqlite_transactions
from wagtail_publish_hooks.models import Delivery, DeliveryStatus

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="about SQLite's locking; PostgreSQL waits anyway"
    ),
]

ROOT = Path(__file__).resolve().parents[2]
PUBLISHES = 100
#: What a fresh ``wagtail start`` project's settings give SQLite: nothing.
WAGTAIL_START_OPTIONS: dict = {}
TIMEOUT = 60  # a guard against a hang, not a timing


@pytest.fixture
def sink():
    with Sink(delay=0.03) as server:
        yield server


@pytest.fixture
def site(settings, sink, tmp_path):
    """The site's settings, and ``site.use(options)``: the database options of this process
    and of the ``db_worker`` it starts."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    config = {
        "DESTINATIONS": {"frontend": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url("/hooks")}}},
        "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"],
        "RETRY_SCHEDULE": [1],
    }
    settings.WAGTAIL_PUBLISH_HOOKS = config
    original = dict(connection.settings_dict["OPTIONS"])
    workers: list[subprocess.Popen] = []

    class Site:
        def use(self, options: dict) -> None:
            connection.close()
            connection.settings_dict["OPTIONS"] = dict(options)

        def start_worker(self, options: dict) -> subprocess.Popen:
            module = f"wph_site_settings_{len(workers)}"
            (tmp_path / f"{module}.py").write_text(
                "from tests.settings import *  # noqa\n"
                f"DATABASES['default']['OPTIONS'] = {options!r}\n"
            )
            env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
            env.update(
                DJANGO_SETTINGS_MODULE=module,
                PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(config),
                TEST_SQLITE_PATH=str(connection.settings_dict["NAME"]),
                PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}",
            )
            log = (tmp_path / f"{module}.log").open("w")
            command = [sys.executable, "-m", "django", "db_worker", "--no-startup-delay"]
            worker = subprocess.Popen(
                [*command, "--interval", "0.25"],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            workers.append(worker)
            return worker

    yield Site()
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    connection.close()
    connection.settings_dict["OPTIONS"] = original


@pytest.fixture
def editor(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("editor", "e@example.com", "pw"))
    return client


def publish_repeatedly(client, page, times: int) -> tuple[int, list[str]]:
    """Publish ``page`` from its edit view ``times`` times. (successes, errors)."""
    url = reverse("wagtailadmin_pages:edit", args=[page.pk])
    succeeded, errors = 0, []
    for n in range(times):
        data = nested_form_data(
            {
                "title": f"Edition {n}",
                "slug": page.slug,
                "intro": "",
                "body": rich_text(f"<p>Edition {n}</p>"),
                "starts_at": "",
                "comments": inline_formset([]),
                "action-publish": "action-publish",
            }
        )
        try:
            response = client.post(url, data)
        except OperationalError as exc:
            errors.append(str(exc))
            continue
        if response.status_code == 302:
            succeeded += 1
        else:
            errors.append(f"HTTP {response.status_code}")
        time.sleep(0.01)
    return succeeded, errors


def wait_until_sent(count: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() >= count:
            return
        time.sleep(0.1)


def test_recommended_sqlite_options_keep_every_publish_safe_beside_the_worker(
    site, sink, editor, draft_blog_page, capsys
):
    # A fresh `wagtail start` site: W024 says what to add.
    site.use(WAGTAIL_START_OPTIONS)
    warnings = check_sqlite_transactions()
    assert [message.id for message in warnings] == ["wagtail_publish_hooks.W024"]
    assert "'transaction_mode': 'IMMEDIATE', 'timeout': 20" in warnings[0].hint

    worker = site.start_worker(WAGTAIL_START_OPTIONS)
    started = time.monotonic()
    succeeded, errors = publish_repeatedly(editor, draft_blog_page, PUBLISHES)
    with capsys.disabled():
        print(
            f"\nwagtail start's SQLite options: {succeeded}/{PUBLISHES} publishes succeeded; "
            f"errors: {sorted(set(errors)) or 'none'} in {time.monotonic() - started:.1f}s"
        )
    assert succeeded + len(errors) == PUBLISHES
    assert all("locked" in error for error in errors), errors
    worker.terminate()
    worker.wait(timeout=30)

    # With the options W024 recommends, nothing is left to warn about, and every publish
    # succeeds and is delivered.
    site.use(SQLITE_OPTIONS)
    assert check_sqlite_transactions() == []
    Delivery.objects.all().delete()
    before = len(sink.snapshot())
    site.start_worker(SQLITE_OPTIONS)
    succeeded, errors = publish_repeatedly(editor, draft_blog_page, PUBLISHES)
    assert errors == []
    assert succeeded == PUBLISHES
    wait_until_sent(PUBLISHES)
    assert Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == PUBLISHES
    received = sink.snapshot()[before:]
    assert len({record.webhook_id for record in received}) == PUBLISHES


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, "its transactions are DEFERRED"),
        ({"transaction_mode": "DEFERRED", "timeout": 20}, "its transactions are DEFERRED"),
        ({"transaction_mode": "IMMEDIATE", "timeout": 0}, "its busy timeout is 0 seconds"),
        ({"transaction_mode": "IMMEDIATE", "timeout": 20}, None),
        ({"transaction_mode": "exclusive"}, None),  # Python's default timeout, 5 s
    ],
)
def test_w024_names_the_database_and_the_options_to_add(settings, options, problem):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    original = connection.settings_dict["OPTIONS"]
    connection.settings_dict["OPTIONS"] = options
    try:
        messages = check_sqlite_transactions()
    finally:
        connection.settings_dict["OPTIONS"] = original
    if problem is None:
        assert messages == []
        return
    (message,) = messages
    assert message.id == "wagtail_publish_hooks.W024"
    assert message.msg.startswith("DATABASES['default'] is SQLite")
    assert problem in message.msg
    assert "\"OPTIONS\": {'transaction_mode': 'IMMEDIATE', 'timeout': 20}" in message.hint


def test_w024_is_silent_without_a_worker(settings):
    from tests.conftest import IMMEDIATE_BACKEND

    settings.TASKS = {"default": {"BACKEND": IMMEDIATE_BACKEND}}
    original = connection.settings_dict["OPTIONS"]
    connection.settings_dict["OPTIONS"] = {}
    try:
        assert check_sqlite_transactions() == []
    finally:
        connection.settings_dict["OPTIONS"] = original
