"""A destination manager may choose the fields of the API document (``API_FIELDS``), not the
viewset that builds it (``API_VIEWSET`` names code): nothing they post or store makes the site
import one, and a field the API does not have is refused."""

from __future__ import annotations

import json

import pytest

from tests.conftest import WEBHOOK
from tests.trust.test_manager_code import CANARY, adder, canary, data, site, url  # noqa: F401
from wagtail_publish_hooks.checks.destinations import check_destination
from wagtail_publish_hooks.models import Event
from wagtail_publish_hooks.models import ManagedDestination as Row
from wagtail_publish_hooks.registry import destination_from_config, refresh_destinations

pytestmark = pytest.mark.django_db(transaction=True)


def api_data(api_fields: str, **overrides):
    values = data(WEBHOOK, {"URL": "https://consumer.example/hooks"})
    values.update({"include": ["api"], "api_fields": api_fields, **overrides})
    return values


def test_a_posted_viewset_is_ignored_and_the_fields_are_kept(adder, site):  # noqa: F811
    values = api_data("_\ntitle", api_viewset=f"{CANARY}.run", API_VIEWSET=f"{CANARY}.run")
    assert adder.post(url("add"), values).status_code == 302
    row = Row.objects.get()
    assert row.api_fields == ["_", "title"]
    assert "API_VIEWSET" not in row.to_config()
    destination = refresh_destinations()["mine"]
    assert (destination.api_viewset, destination.api_fields) == (None, ("_", "title"))


def test_a_viewset_slipped_into_the_options_is_refused(adder, site):  # noqa: F811
    values = api_data("title")
    values["options"] = json.dumps({"URL": "https://x.example", "API_VIEWSET": f"{CANARY}.run"})
    response = adder.post(url("add"), values)
    assert response.status_code == 200
    assert any("E010" in error for error in response.context["form"].errors["options"])
    assert not Row.objects.exists()


def test_api_viewset_is_refused_for_managed_destinations_and_never_imported():
    config = {
        "BACKEND": WEBHOOK,
        "OPTIONS": {"URL": "https://consumer.example/hooks"},
        "INCLUDE": ["api"],
        "API_VIEWSET": f"{CANARY}.run",
        "API_FIELDS": ["title"],
    }
    messages = [m for m in check_destination("mine", config, managed=True) if m.is_serious()]
    assert [m.id for m in messages] == ["wagtail_publish_hooks.E062"]
    assert messages[0].msg.startswith("wagtail_publish_hooks.ManagedDestination['mine']")
    # And were it ever in a managed destination's configuration, it would not be used.
    assert destination_from_config("mine", config, managed=True).api_viewset is None
    assert destination_from_config("mine", config).api_viewset == f"{CANARY}.run"


@pytest.mark.parametrize(
    ("api_fields", "expected"),
    [
        ("title\nowner", "unknown fields: owner"),  # a column, not an API field
        ("title(", "is not in the API's 'fields' syntax"),
        ("intro", "unknown fields: intro"),  # not on every page type it receives
    ],
)
def test_the_form_refuses_fields_the_api_does_not_have(adder, site, api_fields, expected):  # noqa: F811
    response = adder.post(url("add"), api_data(api_fields))
    assert response.status_code == 200
    errors = response.context["form"].errors["api_fields"]
    assert any("E061" in error and expected in error for error in errors), errors
    assert not Row.objects.exists()


def test_a_managed_projection_is_what_the_destination_gets(adder, site, draft_blog_page):  # noqa: F811
    values = api_data("_\ntitle\nintro", model_labels="testapp.BlogPage")
    assert adder.post(url("add"), values).status_code == 302
    refresh_destinations()
    draft_blog_page.save_revision().publish()

    delivery = Event.objects.get(object_id=str(draft_blog_page.pk)).deliveries.get(
        destination="mine"
    )
    [name] = delivery.include
    assert name.startswith("api:")
    assert delivery.payload["data"]["page"]["api"] == {"title": "Hello world", "intro": "Hi"}
    assert "owner" not in json.dumps(delivery.payload)
