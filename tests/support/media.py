"""Images and documents for the tests: real files in a temporary ``MEDIA_ROOT``, replaced the
way Wagtail's admin edit views replace them."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from wagtail.documents import get_document_model
from wagtail.images import get_image_model
from wagtail.images.tests.utils import get_test_image_file
from wagtail.models import Collection


@pytest.fixture
def media_root(settings, tmp_path):
    """A fresh ``MEDIA_ROOT``, served at ``/media/`` (``tests/urls.py``)."""
    from django.core.cache import cache

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MEDIA_URL = "/media/"
    cache.clear()  # Wagtail caches renditions by image id, which the next test reuses
    return tmp_path / "media"


def root_collection() -> Collection:
    root = Collection.get_first_root_node()
    if root is None:  # a transactional test flushed it
        root = Collection.add_root(name="Root")
    return root


def make_image(title: str = "Sunset", filename: str = "sunset.png", **fields: Any) -> Any:
    image = get_image_model()(
        title=title,
        file=get_test_image_file(filename=filename),
        collection=fields.pop("collection", None) or root_collection(),
        **fields,
    )
    image.save()
    return image


def make_document(title: str = "Report", filename: str = "report.pdf", body: bytes = b"v1") -> Any:
    document = get_document_model()(title=title, collection=root_collection())
    document.file.save(filename, ContentFile(body), save=False)
    document.save()
    return document


def image_upload(filename: str = "new.png", colour: str = "red") -> SimpleUploadedFile:
    image_file = get_test_image_file(filename=filename, colour=colour)
    return SimpleUploadedFile(filename, image_file.file.getvalue(), content_type="image/png")


def edit_image(client, image, **fields: Any):
    """POST Wagtail's image edit view, as the form does (``file`` replaces the file)."""
    data: dict[str, Any] = {
        "title": image.title,
        "collection": image.collection_id,
        "tags": "",
        "focal_point_x": image.focal_point_x or "",
        "focal_point_y": image.focal_point_y or "",
        "focal_point_width": image.focal_point_width or "",
        "focal_point_height": image.focal_point_height or "",
        **fields,
    }
    response = client.post(reverse("wagtailimages:edit", args=[image.pk]), data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    return response


def edit_document(client, document, **fields: Any):
    """POST Wagtail's document edit view (``file`` replaces the file)."""
    data: dict[str, Any] = {
        "title": document.title,
        "collection": document.collection_id,
        "tags": "",
        **fields,
    }
    response = client.post(reverse("wagtaildocs:edit", args=[document.pk]), data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    return response
