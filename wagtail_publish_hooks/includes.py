"""Extra documents a destination can ask to receive with an event (the ``INCLUDE`` key).

They are built at capture time, only when a destination the event is routed to asked for them,
and stored with the event (``Event.included_data``); each delivery remembers which ones its
destination asked for (``Delivery.include``), and
:func:`~wagtail_publish_hooks.events.apply_includes` adds exactly those to the body that
destination is sent. A destination that did not ask never sees them.

``"api"``: the page as Wagtail's API v2 detail endpoint (``/api/v2/pages/<id>/``) serialises
it, for an anonymous consumer, built without an HTTP request.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import models, transaction

from .events import json_safe

logger = logging.getLogger("wagtail_publish_hooks")

API = "api"

#: What ``INCLUDE`` may name.
KNOWN_INCLUDES = frozenset({API})

#: The namespace of the router Wagtail's documentation sets up (``WagtailAPIRouter("wagtailapi")``);
#: ``detail_url`` fields appear when the endpoints are installed under it.
API_NAMESPACE = "wagtailapi"


#: The key of ``Event.included_data`` under which backends keep what they captured with the
#: event, per destination alias (:func:`wagtail_publish_hooks.routing.capture_for_destinations`).
#: Never added to a body.
CAPTURED = "captured"


def is_page(instance: Any) -> bool:
    from wagtail.models import Page

    return isinstance(instance, Page)


def build_included_data(
    names: Iterable[str],
    instance: models.Model | None,
    *,
    using: str | None = None,
    on_failure: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """The documents in ``names`` that apply to ``instance``, for ``Event.included_data``.

    Never raises: a document that cannot be built is stored as ``None`` and the error logged,
    or given to ``on_failure(exc, destination=...)`` to record (the destination named
    ``"INCLUDE api"``: every destination that asked for it is sent the event without it).
    Runs in a savepoint, so that a failing query leaves the caller's transaction usable.
    """
    wanted = set(names)
    included: dict[str, Any] = {}
    if API in wanted and instance is not None and is_page(instance):
        try:
            with transaction.atomic(using=using):
                included[API] = page_api_data(instance)
        except Exception as exc:
            included[API] = None
            if on_failure is None:
                logger.exception(
                    "Publish hooks could not serialise page %s for INCLUDE ['api']",
                    getattr(instance, "pk", None),
                )
            else:
                on_failure(exc, destination=f"INCLUDE {API}")
    return included


def page_api_data(page: Any) -> dict[str, Any]:
    """``page`` as Wagtail's API v2 detail view returns it, with every field, as JSON types.

    Built as the API would answer an anonymous request to the page's own site, without making
    one: the fields of ``PagesAPIViewSet`` and the page model's ``api_fields``, ``meta`` included.
    """
    from wagtail.api.v2.views import PagesAPIViewSet

    if page.specific_class is not None and type(page) is not page.specific_class:
        page = page.specific
    router = _api_router()
    request = _anonymous_request(page, router)
    view = PagesAPIViewSet(request=request, action="detail_view", kwargs={"pk": page.pk}, args=())
    view.format_kwarg = None
    serializer_class = PagesAPIViewSet._get_serializer_class(
        router, type(page), [], show_details=True
    )
    serializer = serializer_class(page, context=view.get_serializer_context())
    return json_safe(serializer.data)


@functools.cache
def _api_router() -> Any:
    from django.apps import apps
    from django.urls import NoReverseMatch
    from wagtail.api.v2.router import WagtailAPIRouter
    from wagtail.api.v2.views import PagesAPIViewSet

    class Router(WagtailAPIRouter):
        """The documented router; a detail URL that is not in the URLconf is left out."""

        def get_object_detail_urlpath(self, model: Any, pk: Any) -> str | None:
            try:
                return super().get_object_detail_urlpath(model, pk)
            except NoReverseMatch:
                return None

    router = Router(API_NAMESPACE)
    router.register_endpoint("pages", PagesAPIViewSet)
    if apps.is_installed("wagtail.images"):
        from wagtail.images.api.v2.views import ImagesAPIViewSet

        router.register_endpoint("images", ImagesAPIViewSet)
    if apps.is_installed("wagtail.documents"):
        from wagtail.documents.api.v2.views import DocumentsAPIViewSet

        router.register_endpoint("documents", DocumentsAPIViewSet)
    return router


def _anonymous_request(page: Any, router: Any) -> Any:
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpRequest, QueryDict

    site = page.get_site()
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = "/"
    request.GET = QueryDict()
    if site is not None:
        secure = site.port == 443
        request.META = {
            "SERVER_NAME": site.hostname,
            "SERVER_PORT": str(site.port),
            "HTTP_HOST": site.hostname
            if site.port in (80, 443)
            else f"{site.hostname}:{site.port}",
            "wsgi.url_scheme": "https" if secure else "http",
        }
    request._wagtail_site = site  # type: ignore[attr-defined]
    request.user = AnonymousUser()
    request.session = {}  # type: ignore[assignment]
    request.wagtailapi_router = router  # type: ignore[attr-defined]
    return request
