"""Images and documents are publishing events: a replaced file, a new title, focal point or
collection is ``image.changed`` / ``document.changed``; a deletion is ``*.deleted``. Each test
saves real images and documents through Wagtail (its admin edit views where the admin does it)
and reads the events recorded."""

from __future__ import annotations

import os
import re

import pytest
from django.core import checks
from django.db import connection
from django.test.utils import CaptureQueriesContext
from wagtail.images import get_image_model
from wagtail.models import Collection

from tests.conftest import WEBHOOK
from tests.support.media import (
    edit_document,
    edit_image,
    image_upload,
    make_document,
    make_image,
    media_root,  # noqa: F401 -- a fixture
    root_collection,
)
from wagtail_publish_hooks import media_handlers
from wagtail_publish_hooks.models import Delivery, Event
from wagtail_publish_hooks.registry import get_destinations

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(configure, httpserver, media_root):  # noqa: F811
    """A webhook destination taking image and document events."""
    configure(
        DESTINATIONS={
            "media": {
                "BACKEND": WEBHOOK,
                "EVENTS": ["image.*", "document.*"],
                "OPTIONS": {"URL": httpserver.url_for("/hooks")},
            }
        },
        RETRY_SCHEDULE=[0],
    )
    httpserver.expect_request("/hooks").respond_with_data("ok")
    return httpserver


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


def recorded() -> list[tuple[str, dict]]:
    return [(event.event_type, event.payload["data"]) for event in Event.objects.order_by("pk")]


def test_creating_an_image_or_a_document_records_nothing(sink):
    make_image()
    make_document()
    assert recorded() == []


def test_replacing_an_image_file_in_the_admin_names_the_old_urls_that_wagtail_deletes(
    sink, superuser_client
):
    image = make_image()
    rendition = image.get_rendition("width-100")
    old_url, rendition_url = image.file.url, rendition.url
    old_path = image.file.path
    assert os.path.exists(old_path)

    edit_image(superuser_client, image, file=image_upload("sunrise.png"))

    [(event_type, data)] = recorded()
    assert event_type == "image.changed"
    image.refresh_from_db()
    assert not os.path.exists(old_path)  # Wagtail deleted the old file and its renditions
    assert not image.renditions.exists()
    payload = data["image"]
    assert payload["id"] == image.pk
    assert payload["type"] == "wagtailimages.Image"
    assert payload["url"] == image.file.url != old_url
    assert payload["urls"] == [image.file.url, old_url, rendition_url]
    assert old_url.startswith("/media/original_images/sunset")
    assert rendition_url.startswith("/media/images/sunset")
    assert payload["collection"] == {"id": root_collection().pk, "name": "Root"}
    assert payload["file"] == {
        "name": image.file.name,
        "size": image.file_size,
        "width": 640,
        "height": 480,
    }
    assert payload["focal_point"] is None
    assert data["actor"] == {"id": image_uploader_id(), "username": "admin"}
    assert data["changes"] == [
        {
            "field": "file",
            "label": "file",
            "old": old_url.removeprefix("/media/"),
            "new": image.file.name,
        }
    ]
    assert Delivery.objects.get().destination == "media"


def image_uploader_id() -> int:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="admin").pk


def test_title_focal_point_and_collection_changes_are_events(sink, superuser_client):
    image = make_image()
    other = root_collection().add_child(name="Press")

    edit_image(superuser_client, image, title="Sunset at sea")
    edit_image(
        superuser_client,
        get_image_model().objects.get(pk=image.pk),
        focal_point_x=10,
        focal_point_y=20,
        focal_point_width=30,
        focal_point_height=40,
    )
    image.refresh_from_db()
    image.collection = other
    image.save()

    events = recorded()
    assert [event_type for event_type, _ in events] == ["image.changed"] * 3
    assert events[0][1]["changes"] == [
        {"field": "title", "label": "title", "old": "Sunset", "new": "Sunset at sea"}
    ]
    assert events[1][1]["changes"] == [{"field": "focal_point", "label": "focal point"}]
    assert events[1][1]["image"]["focal_point"] == {"x": 10, "y": 20, "width": 30, "height": 40}
    assert events[2][1]["changes"] == [{"field": "collection", "label": "collection"}]
    assert events[2][1]["image"]["collection"] == {"id": other.pk, "name": "Press"}
    assert events[2][1]["actor"] is None  # a script, not a request


def test_a_save_that_changes_nothing_tracked_records_nothing(sink, superuser_client):
    image = make_image()
    edit_image(superuser_client, image)  # the edit form sent back unchanged
    image.refresh_from_db()
    image.file_size = None
    image.get_file_size()  # Wagtail's own save(update_fields=["file_size"])
    image.file_hash = ""
    image.get_file_hash()
    image.save()
    assert recorded() == []


def queries_of_save(image, **kwargs) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        image.save(**kwargs)
    # Savepoint names differ from one save to the next; their number does not.
    return [re.sub(r'"s\d+_x\d+"', '"savepoint"', query["sql"]) for query in queries]


def queries_of_ours(settings, image, **kwargs) -> list[str]:
    """The queries a save makes beyond those it makes with capture suspended."""
    enabled = queries_of_save(image, **kwargs)
    config = settings.WAGTAIL_PUBLISH_HOOKS
    settings.WAGTAIL_PUBLISH_HOOKS = {**config, "ENABLED": False}
    suspended = queries_of_save(image, **kwargs)
    settings.WAGTAIL_PUBLISH_HOOKS = config
    extra = list(enabled)
    for query in suspended:
        if query in extra:
            extra.remove(query)
    return extra


def test_a_save_of_untracked_fields_costs_no_query_of_ours(sink, settings):
    image = make_image()
    image.file_size = 1
    assert queries_of_ours(settings, image, update_fields=["file_size"]) == []
    # The control: a save of tracked fields reads the row and the renditions, and records.
    image.title = "Renamed"
    ours = queries_of_ours(settings, image)
    assert any("wagtailimages_rendition" in query for query in ours), ours


def test_nothing_is_read_when_no_destination_takes_media_events(configure, settings, media_root):  # noqa: F811
    configure(DESTINATIONS={"pages": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": "http://a.test/"}}})
    image = make_image()
    image.title = "Renamed"
    get_destinations()  # the admin-managed ones are read once per DESTINATIONS_REFRESH_SECONDS
    assert queries_of_ours(settings, image) == []
    assert recorded() == []


def test_deleting_an_image_names_its_renditions(sink, superuser_client):
    image = make_image()
    rendition = image.get_rendition("width-100")
    urls = [image.file.url, rendition.url]

    response = superuser_client.post(f"/admin/images/{image.pk}/delete/")
    assert response.status_code == 302

    [(event_type, data)] = recorded()
    assert event_type == "image.deleted"
    assert data["image"]["urls"] == urls
    assert data["image"]["title"] == "Sunset"
    assert data["actor"]["username"] == "admin"
    assert "changes" not in data


def test_a_document_replaced_in_the_admin_names_its_old_and_new_urls(sink, superuser_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    document = make_document()
    old_serve, old_file = document.url, document.file.url
    assert old_serve == f"/documents/{document.pk}/report.pdf"

    edit_document(
        superuser_client,
        document,
        title="Annual report",
        file=SimpleUploadedFile("annual.pdf", b"v2", content_type="application/pdf"),
    )

    [(event_type, data)] = recorded()
    assert event_type == "document.changed"
    document.refresh_from_db()
    payload = data["document"]
    assert payload["url"] == f"/documents/{document.pk}/annual.pdf" == document.url
    assert payload["urls"] == [document.url, document.file.url, old_serve, old_file]
    assert payload["file"] == {"name": document.file.name, "size": 2}
    assert "focal_point" not in payload
    assert [change["field"] for change in data["changes"]] == ["file", "title"]
    assert data["changes"][1] == {
        "field": "title",
        "label": "title",
        "old": "Report",
        "new": "Annual report",
    }


def test_deleting_a_document_is_an_event(sink):
    document = make_document()
    url = document.url
    document.delete()
    [(event_type, data)] = recorded()
    assert event_type == "document.deleted"
    assert data["document"]["url"] == url


def test_models_route_images_and_documents_apart(configure, httpserver, media_root):  # noqa: F811
    configure(
        DESTINATIONS={
            "images": {
                "BACKEND": WEBHOOK,
                "EVENTS": ["*"],
                "MODELS": ["wagtailimages.Image"],
                "OPTIONS": {"URL": httpserver.url_for("/images")},
            },
            "documents": {
                "BACKEND": WEBHOOK,
                "EVENTS": ["document.deleted"],
                "OPTIONS": {"URL": httpserver.url_for("/documents")},
            },
        },
        RETRY_SCHEDULE=[0],
    )
    httpserver.expect_request("/images").respond_with_data("ok")
    httpserver.expect_request("/documents").respond_with_data("ok")
    image = make_image()
    image.title = "New"
    image.save()
    document = make_document()
    document.title = "New"
    document.save()  # document.changed: no destination takes it
    document.delete()
    image.delete()
    routed = sorted(Delivery.objects.values_list("destination", "event__event_type"))
    assert routed == [
        ("documents", "document.deleted"),
        ("images", "image.changed"),
        ("images", "image.deleted"),
    ]


def test_every_installed_image_and_document_model_is_connected():
    models = {model._meta.label for _, model in media_handlers.media_models()}
    assert {"wagtailimages.Image", "testapp.CustomImage", "wagtaildocs.Document"} <= models


def test_media_event_patterns_are_known(settings):
    settings.WAGTAIL_PUBLISH_HOOKS = {
        "DESTINATIONS": {
            "media": {
                "BACKEND": WEBHOOK,
                "EVENTS": ["image.*", "document.changed", "document.deleted", "image.deleted"],
                "OPTIONS": {"URL": "https://hooks.example.com/"},
            }
        }
    }
    messages = checks.run_checks(tags=["wagtail_publish_hooks"])
    assert not [m for m in messages if m.id == "wagtail_publish_hooks.E008"], messages


def test_a_collection_move_counts_once_whoever_saves(sink):
    image = make_image()
    press = Collection.get_first_root_node().add_child(name="Press")
    get_image_model().objects.filter(pk=image.pk)  # no signal for querysets: nothing
    image.collection = press
    image.save()
    image.save()  # the same again: nothing changed
    assert [event_type for event_type, _ in recorded()] == ["image.changed"]


def test_media_namespaces_are_reserved_for_the_package():
    from wagtail_publish_hooks.custom_events import emit

    for event_type in ("image.changed", "document.signed"):
        with pytest.raises(ValueError, match="reserved"):
            emit(event_type, data={})


def test_bulk_actions_move_and_delete_images_with_events(sink, superuser_client):
    images = [make_image(title="One"), make_image(title="Two", filename="two.png")]
    press = root_collection().add_child(name="Press")
    ids = "&".join(f"id={image.pk}" for image in images)

    response = superuser_client.post(
        f"/admin/bulk/wagtailimages/image/add_to_collection/?{ids}", {"collection": press.pk}
    )
    assert response.status_code == 302
    response = superuser_client.post(f"/admin/bulk/wagtailimages/image/delete/?{ids}")
    assert response.status_code == 302

    events = recorded()
    assert [(event_type, data["image"]["title"]) for event_type, data in events] == [
        ("image.changed", "One"),
        ("image.changed", "Two"),
        ("image.deleted", "One"),
        ("image.deleted", "Two"),
    ]
    for _, data in events[:2]:
        assert data["changes"] == [{"field": "collection", "label": "collection"}]
        assert data["image"]["collection"] == {"id": press.pk, "name": "Press"}
        assert data["actor"]["username"] == "admin"


def test_a_custom_image_model_has_the_same_events_and_routes_by_its_label(
    configure,
    httpserver,
    media_root,  # noqa: F811
):
    from wagtail.images.tests.utils import get_test_image_file

    from tests.testapp.models import CustomImage

    configure(
        DESTINATIONS={
            "custom": {
                "BACKEND": WEBHOOK,
                "EVENTS": ["image.*"],
                "MODELS": ["testapp.CustomImage"],
                "OPTIONS": {"URL": httpserver.url_for("/custom")},
            },
            "stock": {
                "BACKEND": WEBHOOK,
                "EVENTS": ["image.*"],
                "MODELS": ["wagtailimages.Image"],
                "OPTIONS": {"URL": httpserver.url_for("/stock")},
            },
        },
        RETRY_SCHEDULE=[0],
    )
    image = CustomImage.objects.create(
        title="Credits",
        file=get_test_image_file(filename="credits.png"),
        collection=root_collection(),
    )
    rendition = image.get_rendition("width-50")
    assert type(rendition).__name__ == "CustomRendition"
    image.title = "Credits, revised"
    image.credit = "Photo: somebody"  # not tracked
    image.save()
    image.delete()

    routed = list(Delivery.objects.order_by("pk").values_list("destination", "event__event_type"))
    assert routed == [("custom", "image.changed"), ("custom", "image.deleted")]
    changed, deleted = recorded()
    assert changed[1]["image"]["type"] == "testapp.CustomImage"
    assert changed[1]["changes"] == [
        {"field": "title", "label": "title", "old": "Credits", "new": "Credits, revised"}
    ]
    assert changed[1]["image"]["urls"] == [image.file.url, rendition.url]
    assert deleted[1]["image"]["urls"] == [image.file.url, rendition.url]
