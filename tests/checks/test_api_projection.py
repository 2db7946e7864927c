"""The checks of API_VIEWSET and API_FIELDS (E060, E061, W032; E062 for the admin's
destinations: see tests/trust/test_manager_code.py)."""

from __future__ import annotations

import pytest
from django.core import checks

from tests.checks.test_checks import dest, run
from wagtail_publish_hooks.checks.destinations import check_destination

SITE_VIEWSET = "tests.testapp.api.SitePagesAPIViewSet"
BLOG_MODELS = ["testapp.BlogPage"]

CASES = [
    (
        "E060",
        dest(INCLUDE=["api"], API_VIEWSET="tests.testapp.api.Nope"),
        "['consumer']['API_VIEWSET']: 'tests.testapp.api.Nope' cannot be imported (ImportError)",
    ),
    (
        "E060",
        dest(INCLUDE=["api"], API_VIEWSET="tests.testapp.api.NotAViewSet"),
        "is not a subclass of wagtail.api.v2.views.BaseAPIViewSet",
    ),
    (
        "E060",
        dest(INCLUDE=["api"], API_VIEWSET="wagtail.api.v2.views.BaseAPIViewSet"),
        "serves no model",
    ),
    ("E060", dest(INCLUDE=["api"], API_VIEWSET=["a.B"]), "must be the dotted path of a subclass"),
    ("E061", dest(INCLUDE=["api"], API_FIELDS="title,intro"), "must be a list of field names"),
    ("E061", dest(INCLUDE=["api"], API_FIELDS=["title", 3]), "must be a list of field names"),
    (
        "E061",
        dest(INCLUDE=["api"], API_FIELDS=["title("]),
        "['consumer']['API_FIELDS']: is not in the API's 'fields' syntax",
    ),
    # Not an API field of any page: a column is not enough.
    (
        "E061",
        dest(INCLUDE=["api"], API_FIELDS=["title", "owner"]),
        "the API answers 'unknown fields: owner' for testapp.",
    ),
    # Wagtail's field, which the site's viewset hides.
    (
        "E061",
        dest(INCLUDE=["api"], API_VIEWSET=SITE_VIEWSET, API_FIELDS=["seo_title"]),
        "the API answers 'unknown fields: seo_title'",
    ),
    # A field of one page type, for a destination that receives every page.
    (
        "E061",
        dest(INCLUDE=["api"], API_FIELDS=["intro"]),
        "the API answers 'unknown fields: intro' for testapp.BasePage,",
    ),
    ("E061", dest(INCLUDE=["api"], API_FIELDS=["title(url)"]), "does not support nested fields"),
    (
        "E061",
        dest(
            INCLUDE=["api"],
            API_VIEWSET="tests.testapp.api.BrokenPagesAPIViewSet",
            API_FIELDS=["title"],
        ),
        "the API answers 'an error (RuntimeError)' for",
    ),
    ("W032", dest(API_FIELDS=["title"]), "['consumer']['API_FIELDS']: has no effect without"),
    ("W032", dest(INCLUDE=[], API_VIEWSET=SITE_VIEWSET), "['API_VIEWSET']: has no effect"),
]


@pytest.mark.parametrize(
    ("check_id", "value", "text"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_check_fires(settings, check_id, value, text):
    messages = run(settings, value)
    full_id = f"wagtail_publish_hooks.{check_id}"
    assert any(m.id == full_id and text in m.msg for m in messages), messages


@pytest.mark.parametrize(
    "config",
    [
        {"API_FIELDS": ["title", "intro", "-body"], "MODELS": BLOG_MODELS},
        {"API_FIELDS": ["_", "title", "last_published_at"], "API_VIEWSET": SITE_VIEWSET},
        {"API_FIELDS": ["*"]},
        {"API_FIELDS": ["_", "id", "title", "parent"]},
        {"API_VIEWSET": SITE_VIEWSET},
        # Only the models the viewset serves are judged: images keep the images endpoint.
        {"API_FIELDS": ["intro"], "MODELS": [*BLOG_MODELS, "wagtailimages.Image"]},
    ],
)
def test_projections_the_api_accepts_are_quiet(settings, config):
    assert run(settings, dest(INCLUDE=["api"], **config)) == []


def test_a_long_list_of_models_is_counted():
    [message] = check_destination(
        "consumer", dest(INCLUDE=["api"], API_FIELDS=["intro"])["DESTINATIONS"]["consumer"]
    )
    assert message.id == "wagtail_publish_hooks.E061"
    assert "other models." in message.msg
    assert "testapp.BlogPage" not in message.msg


def test_managed_destinations_may_set_api_fields():
    config = dest(INCLUDE=["api"], API_FIELDS=["title", "intro"], MODELS=BLOG_MODELS)
    assert check_destination("consumer", config["DESTINATIONS"]["consumer"], managed=True) == []
    bad = dest(INCLUDE=["api"], API_FIELDS=["owner"])["DESTINATIONS"]["consumer"]
    [message] = check_destination("consumer", bad, managed=True)
    assert message.id == "wagtail_publish_hooks.E061"
    assert message.msg.startswith("wagtail_publish_hooks.ManagedDestination['consumer']")
    assert message.level == checks.ERROR
