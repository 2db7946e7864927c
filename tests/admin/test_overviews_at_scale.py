"""The overviews over a generated history: the destinations list and its charts, the dashboard
panel, ``publish_hooks status`` and ``sweep`` read the big tables through indexes (PostgreSQL's
``EXPLAIN``), and run as many statements with two destinations as with twenty-three."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse

from benchmarks.measure import BIG_TABLES, capture_plans, count_queries, seq_scans
from benchmarks.scale_data import DESTINATIONS, Size, destination_settings, populate
from tests.support.admin_users import admin_user, destination_manager, logged_in
from wagtail_publish_hooks.admin.deliveries.dashboard import DeliveriesPanel
from wagtail_publish_hooks.models import (
    Attempt,
    AttemptHour,
    Delivery,
    DestinationState,
    Event,
    ManagedDestination,
)
from wagtail_publish_hooks.tasks import run_sweep

#: Big enough for PostgreSQL's planner to prefer an index wherever one serves (a table of a few
#: pages is read whole, and rightly); small enough to load in a few seconds.
HISTORY = Size(deliveries=20_000, events=6_000, attempts=40_000, events_per_page=0)

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="EXPLAIN plans are PostgreSQL's: run with PUBLISH_HOOKS_TEST_DB=postgres",
)


@pytest.fixture(scope="module")
def history(django_db_setup, django_db_blocker):
    """A generated history shared by the module's tests, removed after them."""
    with django_db_blocker.unblock():
        populate(HISTORY)
        yield
        for model in (AttemptHour, Attempt, Delivery, Event, DestinationState):
            model.objects.all().delete()


@pytest.fixture
def many_destinations(configure, history, db):
    """The 20 destinations of the history in the settings, and three managed in the admin."""
    configure(DESTINATIONS=destination_settings("http://127.0.0.1:9/hooks"))
    managed("managed-a", "managed-b", "managed-c")


@pytest.fixture
def superuser(db):
    return logged_in(admin_user("root", superuser=True))


@pytest.fixture
def manager(db):
    return destination_manager(
        "view_manageddestination", "change_manageddestination", username="destinations"
    )


def destinations_list(client):
    def get():
        response = client.get(reverse("publish_hooks_destinations:index"))
        assert response.status_code == 200
        return response

    return get


def dashboard_panel():
    request = RequestFactory().get("/admin/")
    request.user = admin_user("panel-viewer", superuser=True)
    return lambda: DeliveriesPanel().render_html({"request": request})


def status():
    call_command("publish_hooks", "status", stdout=io.StringIO())


def sweep():
    run_sweep(enqueue=False)


def assert_reads_big_tables_through_indexes(run):
    run()  # the first chart keeps the hours that are over; the next ones read them
    plans = capture_plans(run)
    assert any(table in sql for sql, _plan in plans for table in BIG_TABLES)
    assert seq_scans(plans, BIG_TABLES) == []


@postgres_only
@pytest.mark.parametrize("who", ["superuser", "manager"])
def test_the_destinations_list_reads_through_indexes(many_destinations, who, request):
    assert_reads_big_tables_through_indexes(destinations_list(request.getfixturevalue(who)))
    assert "attempts to dest-00 in the last 7 days" in (
        destinations_list(request.getfixturevalue(who))().content.decode()
    )


@postgres_only
def test_the_dashboard_panel_reads_through_indexes(many_destinations):
    assert_reads_big_tables_through_indexes(dashboard_panel())


@postgres_only
def test_status_reads_through_indexes_and_counts_no_whole_table(many_destinations):
    assert_reads_big_tables_through_indexes(status)
    plans = capture_plans(status)
    for sql, _plan in plans:
        if "COUNT(" in sql.upper() and '"wagtail_publish_hooks_delivery"' in sql:
            # Those still to be sent, or those of the window: never every delivery.
            assert "IN ('pending', 'sending', 'retrying')" in sql or '"created_at" >=' in sql


@postgres_only
def test_the_sweep_reads_through_indexes(many_destinations):
    assert_reads_big_tables_through_indexes(sweep)


def managed(*aliases: str) -> None:
    for alias in aliases:
        ManagedDestination.objects.create(
            alias=alias,
            backend="wagtail_publish_hooks.backends.webhook.WebhookBackend",
            options={"URL": "http://127.0.0.1:9/managed"},
        )


def test_the_destinations_list_runs_as_many_statements_for_three_destinations_as_for_23(
    configure, history, superuser
):
    get = destinations_list(superuser)
    configure(DESTINATIONS=dict(list(destination_settings("http://127.0.0.1:9/").items())[:2]))
    managed("managed-a")
    get()
    few = len(count_queries(get))
    configure(DESTINATIONS=destination_settings("http://127.0.0.1:9/"))
    managed("managed-b", "managed-c")
    get()
    assert len(count_queries(get)) == few


def test_status_runs_as_many_statements_for_two_destinations_as_for_20(configure, history, db):
    configure(DESTINATIONS=dict(list(destination_settings("http://127.0.0.1:9/").items())[:2]))
    status()  # the admin-managed destinations are read once, then kept
    few = len(count_queries(status))
    configure(DESTINATIONS=destination_settings("http://127.0.0.1:9/"))
    status()
    many = count_queries(status)
    assert len(many) == few
    out = io.StringIO()
    call_command("publish_hooks", "status", stdout=out)
    assert all(alias in out.getvalue() for alias in DESTINATIONS)


def test_the_sweep_keeps_the_hours_that_are_over_once(history, db):
    AttemptHour.objects.all().delete()
    sweep()
    kept = AttemptHour.objects.filter(destination="").count()
    assert kept >= 7 * 24 - 2
    assert sum(AttemptHour.objects.filter(destination="").values_list("success", flat=True)) > 0
    # Nothing more to keep: a read of the kept hours and none of the attempts.
    queries = count_queries(sweep)
    assert not any('"wagtail_publish_hooks_attempt"' in sql for sql in queries)
    assert AttemptHour.objects.filter(destination="").count() == kept
