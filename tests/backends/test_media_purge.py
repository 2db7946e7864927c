"""A replaced image or document behind a real Varnish: its own URLs and every live page that uses
it are purged on every site's hostname, and nothing else; a revalidation endpoint (a real local
HTTP server) receives the paths of those pages; a build hook rebuilds."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from wagtail.models import Site

from tests.backends.test_varnish import (  # noqa: F401 -- fixtures
    all_purged,
    assert_purged,
    assert_still_cached,
    cached_site,
    forget_purges,
    site_server,
    varnish,
    varnish_workdir,
)
from tests.support import varnish as varnish_helpers
from tests.support.media import (  # noqa: F401 -- media_root is a fixture
    edit_document,
    edit_image,
    image_upload,
    make_document,
    make_image,
    media_root,
)
from tests.testapp.models import MediaPage
from wagtail_publish_hooks.models import Delivery, Event

pytestmark = pytest.mark.django_db(transaction=True)

needs_varnish = pytest.mark.skipif(
    not varnish_helpers.varnishd_available(),
    reason=f"varnishd is not installed at {varnish_helpers.VARNISHD}",
)
FRONTEND_CACHE = "wagtail_publish_hooks.backends.frontend_cache.FrontendCacheBackend"
HTTP_BACKEND = "wagtail.contrib.frontend_cache.backends.HTTPBackend"
REVALIDATE = "wagtail_publish_hooks.backends.revalidate.RevalidateBackend"
BUILD_HOOK = "wagtail_publish_hooks.backends.build_hook.BuildHookBackend"
MEDIA_EVENTS = ["page.*", "image.*", "document.*"]


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


def publish(page):
    page.save_revision().publish()
    return page


def add_live(parent, page):
    parent.add_child(instance=page)
    return publish(page)


@pytest.fixture
def media_site(site_root, media_root):  # noqa: F811
    """Three live pages using one image (two by foreign key, one in its body) and a document
    (linked by two of them), and one page using neither."""
    image = make_image()
    other_image = make_image(title="Other", filename="other.png")
    document = make_document()
    pages = [
        add_live(site_root, MediaPage(title="One", slug="one", image=image, document=document)),
        add_live(
            site_root,
            MediaPage(
                title="Two", slug="two", body=json.dumps([{"type": "image", "value": image.pk}])
            ),
        ),
        add_live(site_root, MediaPage(title="Three", slug="three", image=image, document=document)),
    ]
    unrelated = add_live(
        site_root, MediaPage(title="Unrelated", slug="unrelated", image=other_image)
    )
    return {"image": image, "document": document, "pages": pages, "unrelated": unrelated}


@pytest.fixture
def behind_varnish(cached_site, configure, site_root):  # noqa: F811
    """The site on two loopback names (``localhost`` and ``127.0.0.1``), behind Varnish; a
    frontend-cache destination taking page, image and document events."""
    port = cached_site.port
    Site.objects.create(hostname="127.0.0.1", port=port, root_page=site_root)
    Site.clear_site_root_paths_cache()
    configure(
        DESTINATIONS={
            "varnish": {
                "BACKEND": FRONTEND_CACHE,
                "EVENTS": MEDIA_EVENTS,
                "OPTIONS": {
                    "BACKENDS": {
                        "varnish": {"BACKEND": HTTP_BACKEND, "LOCATION": cached_site.location}
                    },
                    "COALESCE_SECONDS": 0,
                },
            }
        },
        RETRY_SCHEDULE=[300],
    )
    return SimpleNamespace(
        cache=cached_site, hosts=[f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
    )


def on_both(hosts, paths):
    return {host + path for host in hosts for path in paths}


def page_paths(pages):
    return [f"/{page.slug}/" for page in pages]


@needs_varnish
def test_replacing_an_image_purges_its_urls_and_the_pages_using_it_on_every_hostname(
    behind_varnish, media_site, superuser_client
):
    hosts, cache = behind_varnish.hosts, behind_varnish.cache
    image = media_site["image"]
    pages = on_both(hosts, page_paths(media_site["pages"]))
    unrelated = on_both(hosts, page_paths([media_site["unrelated"]]))
    for url in [*pages, *unrelated]:
        cache.cache(url)
    # Rendering the pages made the rendition their <img> shows; cache it and the original.
    rendition = image.renditions.get(filter_spec="width-100")
    assert rendition.url in cache.get(f"{hosts[0]}/one/").body
    image_files = on_both(hosts, [image.file.url, rendition.url])
    for url in image_files:
        cache.cache(url)
    forget_purges()

    edit_image(superuser_client, image, file=image_upload("sunrise.png", colour="blue"))

    image.refresh_from_db()
    new_file = on_both(hosts, [image.file.url])
    assert all_purged() == image_files | new_file | pages
    assert_purged(cache, [*image_files, *pages])
    for url in image_files:
        assert cache.get(url).status == 404  # Wagtail deleted the old file and renditions
    new_rendition = image.renditions.get(filter_spec="width-100")
    assert new_rendition.url != rendition.url
    assert new_rendition.url in cache.get(f"{hosts[1]}/two/").body
    assert_still_cached(cache, unrelated)


@needs_varnish
def test_replacing_a_document_purges_its_urls_and_the_pages_linking_it_on_every_hostname(
    behind_varnish, media_site, superuser_client
):
    hosts, cache = behind_varnish.hosts, behind_varnish.cache
    document = media_site["document"]
    linking = media_site["pages"][0::2]
    pages = on_both(hosts, page_paths(linking))
    unrelated = on_both(hosts, page_paths([media_site["pages"][1], media_site["unrelated"]]))
    serve_urls = on_both(hosts, [document.url])
    for url in [*pages, *unrelated, *serve_urls]:
        cache.cache(url)
    assert document.url in cache.get(f"{hosts[0]}/one/").body
    old_files = on_both(hosts, [document.url, document.file.url])
    forget_purges()

    edit_document(
        superuser_client,
        document,
        file=SimpleUploadedFile("report-2026.pdf", b"v2", content_type="application/pdf"),
    )

    document.refresh_from_db()
    new_files = on_both(hosts, [document.url, document.file.url])
    assert all_purged() == old_files | new_files | pages
    assert_purged(cache, [*serve_urls, *pages])
    for url in serve_urls:
        assert cache.get(url).status == 404  # the old file name is served no more
    assert document.url in cache.get(f"{hosts[1]}/three/").body
    assert_still_cached(cache, unrelated)


@needs_varnish
def test_deleting_an_image_purges_the_pages_that_used_it(
    behind_varnish, media_site, superuser_client
):
    hosts, cache = behind_varnish.hosts, behind_varnish.cache
    image = media_site["image"]
    pages = on_both(hosts, page_paths(media_site["pages"]))
    unrelated = on_both(hosts, page_paths([media_site["unrelated"]]))
    for url in [*pages, *unrelated]:
        cache.cache(url)
    rendition = image.renditions.get(filter_spec="width-100")
    image_files = on_both(hosts, [image.file.url, rendition.url])
    forget_purges()

    response = superuser_client.post(f"/admin/images/{image.pk}/delete/")
    assert response.status_code == 302

    assert all_purged() == image_files | pages
    assert_purged(cache, pages)
    assert "<img" not in cache.get(f"{hosts[0]}/one/").body
    assert_still_cached(cache, unrelated)


# -- Revalidation and build hooks ------------------------------------------------------------------


@pytest.fixture
def frontends(configure, httpserver):
    """A revalidation endpoint and a build hook, both real HTTP servers on loopback."""
    configure(
        DESTINATIONS={
            "next": {
                "BACKEND": REVALIDATE,
                "EVENTS": ["image.*", "document.*"],
                "OPTIONS": {
                    "URL": httpserver.url_for("/api/revalidate"),
                    "SECRET": "s3cret",
                    "COALESCE_SECONDS": 0,
                },
            },
            "build": {
                "BACKEND": BUILD_HOOK,
                "EVENTS": ["image.*", "document.*"],
                "OPTIONS": {"URL": httpserver.url_for("/build"), "COALESCE_SECONDS": 0},
            },
        },
        RETRY_SCHEDULE=[300],
    )
    httpserver.expect_request("/api/revalidate").respond_with_json({"revalidated": True})
    httpserver.expect_request("/build").respond_with_json({})

    def received(path):
        return [
            json.loads(request.get_data()) for request, _ in httpserver.log if request.path == path
        ]

    return received


def test_revalidation_receives_the_paths_of_the_pages_using_a_changed_image(
    frontends, media_site, superuser_client
):
    image = media_site["image"]
    edit_image(superuser_client, image, file=image_upload("sunrise.png"))

    [body] = frontends("/api/revalidate")
    assert body["paths"] == sorted(page_paths(media_site["pages"]))
    assert body["events"] == [Event.objects.get(event_type="image.changed").event_id]
    [build] = frontends("/build")
    assert build["title"] == "wagtail-publish-hooks: 1 image changed"
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_revalidation_receives_the_paths_of_the_pages_that_used_a_deleted_document(
    frontends, media_site
):
    media_site["document"].delete()

    [body] = frontends("/api/revalidate")
    assert body["paths"] == sorted(page_paths(media_site["pages"][0::2]))
    [build] = frontends("/build")
    assert build["title"] == "wagtail-publish-hooks: 1 document deleted"


# -- People and webhooks ---------------------------------------------------------------------------


def test_a_replaced_image_is_mailed_readably_and_posted_as_json(
    configure, httpserver, media_site, superuser_client, django_user_model, mailoutbox
):
    django_user_model.objects.create_user("alice", "alice@example.com")
    configure(
        DESTINATIONS={
            "editors": {
                "BACKEND": "wagtail_publish_hooks.backends.email.EmailBackend",
                "EVENTS": ["image.*"],
                "OPTIONS": {"TO_USERS": ["alice"]},
            },
            "consumer": {
                "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
                "EVENTS": ["image.*"],
                "OPTIONS": {"URL": httpserver.url_for("/hooks")},
            },
        },
        RETRY_SCHEDULE=[0],
    )
    httpserver.expect_request("/hooks").respond_with_data("ok")
    image = media_site["image"]
    old_url = image.file.url

    edit_image(superuser_client, image, file=image_upload("sunrise.png"))

    [message] = [m for m in mailoutbox if "X-Publish-Hooks-Event" in m.extra_headers]
    assert message.to == ["alice@example.com"]
    assert "Image changed: Sunset" in message.subject
    assert "“Sunset” was changed (new file) by admin." in message.body
    assert "/media/" not in message.body  # no relative link that leads nowhere
    assert f"Edit it: http://testserver/admin/images/{image.pk}/" in message.body
    [(request, _)] = httpserver.log
    body = json.loads(request.get_data())
    assert request.headers["webhook-id"] == body["id"]
    assert body["type"] == "image.changed"
    assert body["data"]["image"]["title"] == "Sunset"
    assert old_url in body["data"]["image"]["urls"]
    assert body["data"]["changes"][0]["field"] == "file"
