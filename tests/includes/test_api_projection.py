"""INCLUDE ["api"] projected by API_VIEWSET and API_FIELDS: each destination receives what the
site's API answers for ``/api/v2/pages/<id>/?fields=...``, built once per projection and event,
and nothing the API would not show."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.images import ImageFile
from PIL import Image as PILImage
from wagtail.documents import get_document_model
from wagtail.images import get_image_model
from wagtail.models import Collection, CollectionViewRestriction, PageViewRestriction

from tests.conftest import WEBHOOK
from wagtail_publish_hooks import includes
from wagtail_publish_hooks.events import apply_includes
from wagtail_publish_hooks.includes import ApiProjection, api_document
from wagtail_publish_hooks.models import CaptureFailure, Event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.testapp.api")]

SITE_VIEWSET = "tests.testapp.api.SitePagesAPIViewSet"
FIELDS = ["_", "title", "intro", "last_published_at", "parent"]


def bodies(httpserver, path: str) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log if request.path == path]


@pytest.fixture
def consumers(configure, httpserver):
    """Webhook destinations posting to ``/<alias>`` on the loopback server."""

    def apply(**destinations: dict) -> None:
        for alias in destinations:
            httpserver.expect_request(f"/{alias}").respond_with_data("ok")
        configure(
            DESTINATIONS={
                alias: {
                    "BACKEND": WEBHOOK,
                    "OPTIONS": {"URL": httpserver.url_for(f"/{alias}")},
                    **config,
                }
                for alias, config in destinations.items()
            },
            RETRY_SCHEDULE=[0],
        )

    return apply


def test_each_projection_receives_what_the_site_api_answers(
    consumers, httpserver, client, draft_blog_page, monkeypatch
):
    built = []
    real = includes.api_document
    monkeypatch.setattr(
        includes, "api_document", lambda obj, *args: built.append(args) or real(obj, *args)
    )
    projected = {"INCLUDE": ["api"], "API_VIEWSET": SITE_VIEWSET, "API_FIELDS": FIELDS}
    consumers(
        frontend=projected,
        preview=dict(projected),  # the same projection: one document for both
        titles={"INCLUDE": ["api"], "API_FIELDS": ["_", "title"]},  # Wagtail's own viewset
        stock={"INCLUDE": ["api"]},
        plain={},
    )
    draft_blog_page.body = "<p>Not asked for</p>"
    draft_blog_page.save_revision().publish()

    [frontend], [preview] = bodies(httpserver, "/frontend"), bodies(httpserver, "/preview")
    [titles], [stock], [plain] = (bodies(httpserver, f"/{a}") for a in ("titles", "stock", "plain"))
    pk = draft_blog_page.pk
    answer = client.get(f"/api/v2/pages/{pk}/?fields={','.join(FIELDS)}")
    assert answer.status_code == 200
    assert frontend["data"]["page"]["api"] == answer.json() == preview["data"]["page"]["api"]
    # Exactly the projection: the body, the SEO fields the site's viewset hides, the parent's
    # other fields are not sent.
    # Exactly the projection, the API's rules for "_" included (no id, type or detail URL
    # unless named): the body, the SEO fields the site's viewset hides, are not sent.
    parent = draft_blog_page.get_parent()
    assert answer.json() == {
        "meta": {
            "parent": {
                "id": parent.pk,
                "meta": {
                    "type": "testapp.BlogIndexPage",
                    "detail_url": f"http://localhost/api/v2/pages/{parent.pk}/",
                    "html_url": "http://localhost/news/",
                },
                "title": "News",
            },
        },
        "title": "Hello world",
        "intro": "Hi",
        "last_published_at": answer.json()["last_published_at"],
    }
    assert answer.json()["last_published_at"] is not None
    # Wagtail's own viewset (the stock endpoint agrees with the site's on these fields).
    assert titles["data"]["page"]["api"] == client.get(f"/api/v2/pages/{pk}/?fields=_,title").json()
    assert titles["data"]["page"]["api"] == {"title": "Hello world"}
    # The stock document is Wagtail's full one, as before.
    assert stock["data"]["page"]["api"]["body"] == "<p>Not asked for</p>"
    assert stock["data"]["page"]["api"]["meta"]["seo_title"] == ""
    assert "api" not in plain["data"]["page"]
    for body in (frontend, preview, titles, stock):
        body["data"]["page"].pop("api")
        assert body == plain

    # One document per projection, each under its own name; each delivery names its own.
    event = Event.objects.get()
    names = dict(event.deliveries.values_list("destination", "include"))
    assert names["frontend"] == names["preview"] != names["titles"]
    assert names["stock"] == ["api"] and names["plain"] == []
    [frontend_name], [titles_name] = names["frontend"], names["titles"]
    assert frontend_name.startswith("api:") and titles_name.startswith("api:")
    assert set(event.included_data) == {"api", frontend_name, titles_name}
    assert len(built) == 3


def test_the_projection_name_is_stable_and_short():
    one = ApiProjection(SITE_VIEWSET, tuple(FIELDS))
    assert one.name == ApiProjection(SITE_VIEWSET, tuple(FIELDS)).name
    assert one.name != ApiProjection(None, tuple(FIELDS)).name
    assert one.name != ApiProjection(SITE_VIEWSET, ("title",)).name
    assert len(one.name) == len("api:") + 12
    assert ApiProjection().name == "api" == ApiProjection(None, ()).name
    assert ApiProjection(SITE_VIEWSET).name == ApiProjection(SITE_VIEWSET, ()).name
    # No fields at all is the stock document: shared with the destinations that set none.
    assert includes.include_names(["api"], None, []) == ("api",)
    assert includes.include_names(["api"], None, ["title"]) != ("api",)


def test_a_field_the_api_does_not_have_is_never_sent(consumers, httpserver, draft_blog_page):
    """``owner`` is a column of every page but not an API field; ``seo_title`` is one of
    Wagtail's, hidden by the site's viewset. Asking for either is the API's 400: the event is
    sent without the document, and the failure recorded; the publish goes through."""
    consumers(
        owner={"INCLUDE": ["api"], "API_FIELDS": ["title", "owner"]},
        seo={"INCLUDE": ["api"], "API_VIEWSET": SITE_VIEWSET, "API_FIELDS": ["seo_title"]},
    )
    draft_blog_page.owner = None
    draft_blog_page.save_revision().publish()
    draft_blog_page.refresh_from_db()
    assert draft_blog_page.live

    [owner], [seo] = bodies(httpserver, "/owner"), bodies(httpserver, "/seo")
    assert owner["data"]["page"]["api"] is None
    assert seo["data"]["page"]["api"] is None
    assert "owner" not in json.dumps(owner) and "seo_title" not in json.dumps(seo)
    failures = sorted(CaptureFailure.objects.values_list("destination", flat=True))
    assert len(failures) == 2 and all(name.startswith("INCLUDE api:") for name in failures)


def test_events_recorded_with_the_stock_name_deliver_as_before():
    payload = {"id": "evt_1", "type": "page.published", "data": {"page": {"id": 3}}}
    included = {"api": {"id": 3, "title": "Stock"}, "api:0123456789ab": {"id": 3}}
    assert apply_includes(payload, included, ["api"])["data"]["page"]["api"] == {
        "id": 3,
        "title": "Stock",
    }
    assert apply_includes(payload, included, ["api:0123456789ab"])["data"]["page"]["api"] == {
        "id": 3
    }
    assert apply_includes(payload, included, []) == payload


def test_a_private_page_has_no_api_document(draft_blog_page):
    """The API answers 404 to an anonymous consumer for a private page: nothing to send."""
    draft_blog_page.save_revision().publish()
    PageViewRestriction.objects.create(
        page=draft_blog_page, restriction_type=PageViewRestriction.PASSWORD, password="x"
    )
    assert api_document(draft_blog_page) is None
    assert api_document(draft_blog_page, ApiProjection(SITE_VIEWSET, ("title",))) is None


def test_the_viewset_decides_what_it_shows(draft_blog_page):
    """The document comes from the viewset's own detail flow: its ``get_queryset`` applies."""
    draft_blog_page.save_revision().publish()
    menus = ApiProjection("tests.testapp.api.MenuPagesAPIViewSet", ("_", "title"))
    assert api_document(draft_blog_page, menus) is None
    draft_blog_page.show_in_menus = True
    draft_blog_page.save_revision().publish()
    assert api_document(draft_blog_page, menus) == {"title": "Hello world"}


# -- Images and documents ------------------------------------------------------------------------


def png() -> ImageFile:
    buffer = io.BytesIO()
    PILImage.new("RGB", (4, 3), "red").save(buffer, "PNG")
    return ImageFile(buffer, name="red.png")


@pytest.fixture
def image(settings, tmp_path, site_root):
    settings.MEDIA_ROOT = str(tmp_path)
    # Transactional tests flush the tree of collections too.
    root = Collection.get_first_root_node() or Collection.add_root(name="Root")
    return get_image_model().objects.create(title="Red", file=png(), collection=root)


def test_an_image_gets_the_images_endpoint_document(client, image):
    """``INCLUDE ["api"]`` on image events: the same code, Wagtail's images endpoint. A
    projection of the pages endpoint leaves it the stock one."""
    answer = client.get(f"/api/v2/images/{image.pk}/")
    assert answer.status_code == 200
    assert api_document(image) == answer.json()
    assert api_document(image, ApiProjection(SITE_VIEWSET, ("_", "title"))) == answer.json()
    assert answer.json()["meta"]["download_url"].endswith("red.png")

    body = apply_includes(
        {"data": {"image": {"id": image.pk}}}, {"api": api_document(image)}, ["api"]
    )
    assert body["data"]["image"]["api"]["title"] == "Red"


def test_an_image_in_a_restricted_collection_has_no_document(client, image):
    """The images endpoint hides images of collections with view restrictions; so do we."""
    private = Collection.get_first_root_node().add_child(name="Private")
    CollectionViewRestriction.objects.create(
        collection=private, restriction_type=CollectionViewRestriction.PASSWORD, password="x"
    )
    image.collection = private
    image.save()
    assert client.get(f"/api/v2/images/{image.pk}/").status_code == 404
    assert api_document(image) is None


def test_a_document_gets_the_documents_endpoint_document(client, settings, tmp_path, site_root):
    settings.MEDIA_ROOT = str(tmp_path)
    root = Collection.get_first_root_node() or Collection.add_root(name="Root")
    document = get_document_model().objects.create(
        title="Prices", file=ContentFile(b"%PDF-1.4", name="prices.pdf"), collection=root
    )
    answer = client.get(f"/api/v2/documents/{document.pk}/")
    assert answer.status_code == 200
    assert api_document(document) == answer.json()
    assert answer.json()["meta"]["download_url"].endswith(f"/documents/{document.pk}/prices.pdf")
    body = apply_includes(
        {"data": {"document": {"id": document.pk}}}, {"api": api_document(document)}, ["api"]
    )
    assert body["data"]["document"]["api"]["title"] == "Prices"
