"""The site's own pages endpoint, as a site that customises Wagtail's API would write it, and a
URLconf that serves it where Wagtail's documentation puts the API (``/api/v2/``)."""

from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.api.v2.router import WagtailAPIRouter
from wagtail.api.v2.views import PagesAPIViewSet
from wagtail.documents import urls as wagtaildocs_urls
from wagtail.documents.api.v2.views import DocumentsAPIViewSet
from wagtail.images.api.v2.views import ImagesAPIViewSet


class SitePagesAPIViewSet(PagesAPIViewSet):
    """Adds ``last_published_at`` to every page; hides the SEO fields from the API."""

    body_fields = [*PagesAPIViewSet.body_fields, "last_published_at"]
    meta_fields = [
        name
        for name in PagesAPIViewSet.meta_fields
        if name not in {"seo_title", "search_description"}
    ]


class MenuPagesAPIViewSet(PagesAPIViewSet):
    """Serves only the pages shown in menus: its own ``get_queryset`` decides what it shows."""

    def get_queryset(self):
        return super().get_queryset().filter(show_in_menus=True)


class BrokenPagesAPIViewSet(PagesAPIViewSet):
    """A viewset whose own code fails: the checks report it, they do not crash."""

    @classmethod
    def get_body_fields(cls, model):
        raise RuntimeError("broken viewset")


class NotAViewSet:
    """Named by API_VIEWSET in the checks' tests: not a Wagtail API viewset."""


api_router = WagtailAPIRouter("wagtailapi")
api_router.register_endpoint("pages", SitePagesAPIViewSet)
api_router.register_endpoint("images", ImagesAPIViewSet)
api_router.register_endpoint("documents", DocumentsAPIViewSet)

urlpatterns = [
    path("api/v2/", api_router.urls),
    path("documents/", include(wagtaildocs_urls)),
    path("", include(wagtail_urls)),
]
