"""Shared fixtures: a Wagtail site, real page publishes, destinations and loopback servers."""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest
from wagtail.models import Locale, Page, Site

from tests.testapp.models import BlogIndexPage, BlogPage
from wagtail_publish_hooks.registry import managed_destinations
from wagtail_publish_hooks.subscribers import subscriptions_present
from wagtail_publish_hooks.worker import run_due_deliveries

try:
    import django.tasks  # noqa: F401

    IMMEDIATE_BACKEND = "django.tasks.backends.immediate.ImmediateBackend"
except ImportError:
    IMMEDIATE_BACKEND = "django_tasks.backends.immediate.ImmediateBackend"

WEBHOOK = "wagtail_publish_hooks.backends.webhook.WebhookBackend"


class Secret(str):
    """A signing secret that does not show itself in tracebacks or assertion output."""

    def __repr__(self) -> str:
        return "'whsec_[redacted]'"


#: Tests that use a database but whose result does not depend on which one: what a backend sends
#: and how it words it, the address policy, the checks of settings, the destination form, the
#: browser walk-through, the sandbox, the wheel and the soak. The PostgreSQL row leaves them to the
#: SQLite row. (The purge set is computed with queries, so its tests stay.)
DATABASE_NEUTRAL = (
    "tests/backends/",
    "tests/checks/",
    "tests/http/",
    "tests/admin/test_browser.py",
    "tests/admin/test_browser_watching.py",
    "tests/admin/test_destinations.py",
    "tests/test_sandbox.py",
    "tests/test_distribution.py",
    "tests/worker/test_soak.py",
    "tests/watching/test_reserved_aliases.py",
)
DATABASE_DEPENDENT = ("tests/backends/test_purge_set.py",)


def pytest_collection_modifyitems(config, items):
    """On the PostgreSQL row, run only the tests whose result depends on the database.

    A test that uses neither the ``django_db`` mark nor a database fixture gives the same result on
    either database, and so do those of :data:`DATABASE_NEUTRAL`; the SQLite row has run them
    already. ``PUBLISH_HOOKS_TEST_ALL=1`` runs everything anyway.
    """
    if os.environ.get("PUBLISH_HOOKS_TEST_DB") != "postgres" or os.environ.get(
        "PUBLISH_HOOKS_TEST_ALL"
    ):
        return
    keep, skip = [], []
    for item in items:
        path = item.nodeid.split("::")[0]
        uses_db = item.get_closest_marker("django_db") is not None or (
            "_django_db_helper" in getattr(item, "fixturenames", ())
        )
        neutral = path.startswith(DATABASE_NEUTRAL) and not path.startswith(DATABASE_DEPENDENT)
        (keep if uses_db and not neutral else skip).append(item)
    if skip:
        config.hook.pytest_deselected(items=skip)
        items[:] = keep


def make_secret() -> str:
    return Secret("whsec_" + base64.b64encode(os.urandom(24)).decode())


@pytest.fixture(autouse=True)
def immediate_tasks(settings):
    """Run the real delivery task synchronously on commit, unless a test asks for a worker."""
    settings.TASKS = {"default": {"BACKEND": IMMEDIATE_BACKEND}}


@pytest.fixture(autouse=True)
def fresh_subscriptions_answer():
    """Each test starts without this process's cached "is anyone watching?": a test whose
    subscriptions were rolled back (no signal says so) must not route the next one's events."""
    subscriptions_present.invalidate()


@pytest.fixture(autouse=True)
def fresh_managed_destinations():
    """Each test reads the admin-managed destinations afresh: those of a test whose rows were
    rolled back or flushed (no signal says so) must not take the next test's events."""
    managed_destinations.invalidate()


@pytest.fixture
def configure(settings) -> Callable[..., dict[str, Any]]:
    """Set ``WAGTAIL_PUBLISH_HOOKS``: ``configure(DESTINATIONS={...}, MAX_ATTEMPTS=3)``."""

    def apply(**values: Any) -> dict[str, Any]:
        config = {"ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8", "::1/128"], **values}
        settings.WAGTAIL_PUBLISH_HOOKS = config
        return config

    return apply


@pytest.fixture
def secret() -> str:
    return make_secret()


@pytest.fixture
def webhook_destination(configure, httpserver, secret) -> Callable[..., dict[str, Any]]:
    """Configure one webhook destination ``consumer`` posting to the loopback server."""

    def apply(path: str = "/hooks", options: dict | None = None, **destination: Any):
        config = {
            "BACKEND": WEBHOOK,
            "OPTIONS": {"URL": httpserver.url_for(path), "SECRET": secret, **(options or {})},
            **destination,
        }
        return configure(DESTINATIONS={"consumer": config}, RETRY_SCHEDULE=[0])

    return apply


@pytest.fixture
def site_root(db) -> Page:
    """The default site's home page. Transactional tests flush the tree, so build it again."""
    site = Site.objects.filter(is_default_site=True).select_related("root_page").first()
    if site is not None:
        return site.root_page.specific
    locale, _ = Locale.objects.get_or_create(language_code="en")
    root = Page.get_first_root_node() or Page.add_root(
        instance=Page(title="Root", slug="root", locale=locale)
    )
    home = Page(title="Home", slug="home", locale=locale)
    root.add_child(instance=home)
    Site.objects.create(hostname="localhost", port=80, root_page=home, is_default_site=True)
    return home


@pytest.fixture
def blog_index(site_root) -> BlogIndexPage:
    index = BlogIndexPage(title="News", slug="news")
    site_root.add_child(instance=index)
    return index


@pytest.fixture
def draft_blog_page(blog_index) -> BlogPage:
    page = BlogPage(title="Hello world", slug="hello-world", intro="Hi", live=False)
    blog_index.add_child(instance=page)
    page.save_revision()
    return page


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def deliver() -> Callable[[], Any]:
    """Run the worker's delivery loop in this process (what a task run does)."""

    def run() -> Any:
        return run_due_deliveries(max_seconds=30, enqueue_successor=False)

    return run
