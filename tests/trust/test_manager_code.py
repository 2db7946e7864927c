"""A destination manager (add/change_manageddestination, nothing else) tries to make the site
import or run code, and to stop events for destinations that are not theirs.

Every dotted path they could slip in names ``tests.support.canary`` (which writes a file when it
is imported or anything in it is called) or ``subprocess.Popen`` (replaced here by a recorder
that refuses to run anything). Each attempt must be refused with nothing imported or called:
by the form, by ``manage.py check``, by routing, by the worker and by the "send test event"
action.
"""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO

import pytest
from django.core import checks
from django.core.management import call_command
from django.urls import reverse

from tests.conftest import WEBHOOK
from tests.support.admin_users import destination_manager
from wagtail_publish_hooks.models import Delivery, DeliveryStatus, DestinationState, Event
from wagtail_publish_hooks.models import ManagedDestination as Row
from wagtail_publish_hooks.registry import get_destinations, refresh_destinations

pytestmark = pytest.mark.django_db(transaction=True)

NS = "publish_hooks_destinations"
CANARY = "tests.support.canary"
FRONTEND_CACHE = "wagtail_publish_hooks.backends.frontend_cache.FrontendCacheBackend"
REVALIDATE = "wagtail_publish_hooks.backends.revalidate.RevalidateBackend"
HTTP_PURGE = "wagtail.contrib.frontend_cache.backends.HTTPBackend"


def url(name, *args):
    return reverse(f"{NS}:{name}", args=args)


class PopenRecorder:
    """Stands in for ``subprocess.Popen``: records any call, and runs nothing."""

    calls: list = []

    def __init__(self, *args, **kwargs):
        PopenRecorder.calls.append(args)
        raise RuntimeError("a process would have been started")


@pytest.fixture(autouse=True)
def canary(tmp_path, monkeypatch):
    """Fails the test if anything imported the canary module or called into it, or started
    a process through ``subprocess.Popen``."""
    sys.modules.pop(CANARY, None)
    song = tmp_path / "canary.txt"
    monkeypatch.setenv("PUBLISH_HOOKS_CANARY", str(song))
    PopenRecorder.calls = []
    monkeypatch.setattr(subprocess, "Popen", PopenRecorder)
    yield song
    assert not song.exists(), song.read_text()
    assert CANARY not in sys.modules
    assert PopenRecorder.calls == []


def test_the_canary_sings_when_imported(canary, monkeypatch):
    """The canary itself works: without this, the other tests could not fail."""
    from django.utils.module_loading import import_string

    import_string(f"{CANARY}.run")()
    assert canary.read_text() == "imported\ncalled\n"
    canary.unlink()
    sys.modules.pop(CANARY, None)
    with pytest.raises(RuntimeError):
        import_string("subprocess.Popen")(["true"])
    assert PopenRecorder.calls == [(["true"],)]
    PopenRecorder.calls = []


@pytest.fixture
def site(configure, settings, httpserver):
    configure(
        DESTINATIONS={
            "operators": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": httpserver.url_for("/ops")}}
        },
        RETRY_SCHEDULE=[0],
    )
    settings.WAGTAILFRONTENDCACHE = {
        "varnish": {"BACKEND": HTTP_PURGE, "LOCATION": httpserver.url_for("/")}
    }
    return httpserver


def manager(django_user_model, *codenames, username="manager"):
    return destination_manager(*codenames, username=username)


@pytest.fixture
def adder(django_user_model):
    return manager(django_user_model, "add_manageddestination", username="adder")


@pytest.fixture
def changer(django_user_model):
    return manager(
        django_user_model,
        "view_manageddestination",
        "change_manageddestination",
        username="changer",
    )


def data(backend, options, **overrides):
    values = {
        "alias": "mine",
        "backend": backend,
        "options": json.dumps(options),
        "secret_mode": "none",
        "secret_value": "",
        "events": "",
        "model_labels": "",
        "exclude_aliases": "unknown",
    }
    values.update(overrides)
    return values


#: (backend, options, the field refusing it, what the refusal says)
ATTEMPTS = [
    (f"{CANARY}.Backend", {}, "backend", "E044"),
    ("subprocess.Popen", {"args": ["id"]}, "backend", "E044"),
    (f"{CANARY}.run", {}, "backend", "E044"),
    # A registry member's path with something around it is not a member.
    (f" {WEBHOOK}", {"URL": "https://x.example"}, "backend", "E044"),
    (f"{WEBHOOK}\n", {"URL": "https://x.example"}, "backend", "E044"),
    (FRONTEND_CACHE, {"BACKENDS": {"x": {"BACKEND": f"{CANARY}.PurgeBackend"}}}, "options", "E045"),
    (
        FRONTEND_CACHE,
        {"BACKENDS": {"x": {"BACKEND": "subprocess.Popen", "LOCATION": "id"}}},
        "options",
        "E045",
    ),
    (FRONTEND_CACHE, {"BACKENDS": [{"BACKEND": f"{CANARY}.PurgeBackend"}]}, "options", "E045"),
    (FRONTEND_CACHE, {"BACKENDS": f"{CANARY}.PurgeBackend"}, "options", "E045"),
    (
        FRONTEND_CACHE,
        {"BACKENDS": ["varnish"], "EXTRA_URLS": {"*": f"{CANARY}.run"}},
        "options",
        "E045",
    ),
    (FRONTEND_CACHE, {"EXTRA_URLS": {"testapp.BlogPage": "subprocess.Popen"}}, "options", "E045"),
    (REVALIDATE, {"URL": "https://x.example/api", "TAGS": f"{CANARY}.run"}, "options", "E045"),
    (
        REVALIDATE,
        {"URL": "https://x.example/api", "TAGS": {"*": "subprocess.Popen"}},
        "options",
        "E045",
    ),
    # A key that differs by case is no option at all, and refused as such.
    (REVALIDATE, {"URL": "https://x.example/api", "tags": f"{CANARY}.run"}, "options", "E010"),
]


@pytest.mark.parametrize(("backend", "options", "field", "expected"), ATTEMPTS)
def test_the_form_refuses_every_way_to_name_code(adder, site, backend, options, field, expected):
    response = adder.post(url("add"), data(backend, options))
    assert response.status_code == 200, response.content[:500]
    errors = response.context["form"].errors
    assert any(expected in error for error in errors.get(field, [])), errors
    assert not Row.objects.exists()


@pytest.mark.parametrize(("backend", "options", "field", "expected"), ATTEMPTS)
def test_editing_a_destination_to_name_code_is_refused(
    changer, site, backend, options, field, expected
):
    row = Row.objects.create(alias="mine", backend=WEBHOOK, options={"URL": "https://x.example"})
    response = changer.post(url("edit", row.pk), data(backend, options))
    assert response.status_code == 200, response.content[:500]
    errors = response.context["form"].errors
    assert any(expected in error for error in errors.get(field, [])), errors
    row.refresh_from_db()
    assert row.backend == WEBHOOK and row.plain_options() == {"URL": "https://x.example"}


def test_extra_posted_fields_change_nothing(adder, site):
    """Fields the form does not have (the stored secrets, another backend) are ignored."""
    values = data(WEBHOOK, {"URL": "https://x.example/hooks"})
    values.update({"secrets": json.dumps([f"{CANARY}.run"]), "BACKEND": f"{CANARY}.Backend"})
    assert adder.post(url("add"), values).status_code == 302
    row = Row.objects.get()
    assert row.backend == WEBHOOK and row.secrets == []


@pytest.fixture
def planted(site):
    """Rows naming code, as an older release let the admin store them (or a queryset update)."""
    rows = [
        Row(alias="bad-backend", backend=f"{CANARY}.Backend", options={}),
        Row(alias="popen", backend="subprocess.Popen", options={"args": ["id"]}),
        Row(
            alias="bad-purge",
            backend=FRONTEND_CACHE,
            options={"BACKENDS": {"x": {"BACKEND": f"{CANARY}.PurgeBackend"}}},
        ),
        Row(
            alias="bad-extra",
            backend=FRONTEND_CACHE,
            options={"EXTRA_URLS": {"*": "subprocess.Popen"}},
        ),
        Row(
            alias="bad-tags",
            backend=REVALIDATE,
            options={"URL": "https://x.example", "TAGS": f"{CANARY}.run"},
        ),
    ]
    Row.objects.bulk_create(rows)
    refresh_destinations()
    return [row.alias for row in rows]


def test_stored_rows_that_name_code_are_never_built_nor_routed_to(planted, draft_blog_page):
    assert not set(planted) & set(refresh_destinations())
    draft_blog_page.save_revision().publish()
    assert set(Delivery.objects.values_list("destination", flat=True)) == {"operators"}


def test_the_worker_does_not_build_them_either(planted, deliver):
    event = Event.objects.create(event_type="page.published", payload={"data": {}})
    for alias in planted:
        Delivery.objects.create(event=event, destination=alias)
    deliver()
    for delivery in Delivery.objects.all():
        assert delivery.status == DeliveryStatus.FAILED
        assert "is not configured" in delivery.last_error


def test_manage_py_check_flags_them_and_imports_nothing(planted):
    messages = checks.run_checks(tags=["wagtail_publish_hooks"])
    flagged = {m.msg.split("['")[1].split("']")[0] for m in messages if m.id.endswith("W020")}
    assert flagged == set(planted)
    w020 = {m.msg for m in messages if m.id.endswith("W020")}
    assert any("(wagtail_publish_hooks.E044)" in msg for msg in w020)
    assert any("(wagtail_publish_hooks.E045)" in msg for msg in w020)
    assert not any(m.is_serious() for m in messages)  # data never stops migrate
    out = StringIO()
    call_command("check", "--tag", "wagtail_publish_hooks", stdout=out, stderr=out)


def test_the_admin_shows_them_broken_and_their_pages_import_nothing(planted, changer):
    html = changer.get(url("index")).content.decode()
    assert html.count("Broken, not used") == len(planted)
    assert "wagtail_publish_hooks.E044" in html and "wagtail_publish_hooks.E045" in html
    for row in Row.objects.all():
        assert changer.get(url("detail", row.alias)).status_code == 200
        assert changer.get(url("edit", row.pk)).status_code == 200


def test_send_test_event_to_them_is_refused(planted, changer):
    for alias in planted:
        response = changer.post(url("send_test", alias), follow=True)
        assert "cannot receive events" in response.content.decode()
    assert not Delivery.objects.exists()


# -- Stopping events for other destinations -------------------------------------------------------


def test_a_settings_alias_cannot_be_taken(adder, site):
    response = adder.post(
        url("add"), data(WEBHOOK, {"URL": "https://x.example"}, alias="operators")
    )
    assert "W013" in str(response.context["form"].errors["alias"])
    assert not Row.objects.exists()


def test_a_python_receiver_name_cannot_be_taken(adder, site):
    response = adder.post(
        url("add"),
        data(WEBHOOK, {"URL": "https://x.example"}, alias="python:tests.receivers.audit"),
    )
    assert "E023" in str(response.context["form"].errors["alias"])
    assert not Row.objects.exists()


def test_a_manager_cannot_disable_or_enable_a_destination_of_the_settings(changer, site):
    detail = changer.get(url("detail", "operators")).content.decode()
    assert url("disable", "operators") not in detail
    assert url("send_test", "operators") in detail  # a test event stops nothing
    assert changer.post(url("disable", "operators")).status_code == 403
    assert not DestinationState.objects.exists()
    DestinationState.disable("operators", "by the operator")
    assert changer.post(url("enable", "operators")).status_code == 403
    assert DestinationState.objects.get(alias="operators").is_disabled


def test_a_manager_cannot_disable_a_python_receiver(changer, site):
    alias = "python:tests.receivers.audit"
    Row.objects.bulk_create([Row(alias=alias, backend=WEBHOOK, options={"URL": "https://x"})])
    assert changer.post(url("disable", alias)).status_code == 404
    assert not DestinationState.objects.exists()


def test_a_managed_row_shadowed_by_settings_does_not_touch_the_settings_destination(
    changer, site, draft_blog_page
):
    Row.objects.bulk_create([Row(alias="operators", backend=WEBHOOK, options={"URL": "https://x"})])
    assert get_destinations()["operators"].options["URL"] == site.url_for("/ops")
    assert changer.post(url("disable", "operators")).status_code == 403
    site.expect_request("/ops").respond_with_data("ok")
    draft_blog_page.save_revision().publish()
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


@pytest.mark.parametrize(
    "text",
    [
        # A key spelled with JSON escapes is the key itself once parsed.
        '{"BACKENDS": ["varnish"], "\\u0045XTRA_URLS": {"*": "tests.support.canary.run"}}',
        # A duplicate key: the last one wins, and is the one checked and stored.
        '{"BACKENDS": ["varnish"], '
        '"BACKENDS": {"x": {"BACKEND": "tests.support.canary.PurgeBackend"}}}',
        # A list holding a dict.
        '{"BACKENDS": ["varnish", {"BACKEND": "subprocess.Popen", "LOCATION": "id"}]}',
    ],
)
def test_json_tricks_are_refused(adder, site, text):
    values = data(FRONTEND_CACHE, {})
    values["options"] = text
    response = adder.post(url("add"), values)
    assert response.status_code == 200
    assert "E045" in str(response.context["form"].errors["options"])
    assert not Row.objects.exists()
