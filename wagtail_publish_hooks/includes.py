"""Extra documents a destination can ask to receive with an event (the ``INCLUDE`` key).

They are built at capture time, only when a destination the event is routed to asked for them,
and stored with the event (``Event.included_data``); each delivery remembers which ones its
destination asked for (``Delivery.include``), and
:func:`~wagtail_publish_hooks.events.apply_includes` adds exactly those to the body that
destination is sent. A destination that did not ask never sees them.

``"api"``: the object as Wagtail's API v2 detail endpoint serialises it (``/api/v2/pages/<id>/``,
``/api/v2/images/<id>/``, ``/api/v2/documents/<id>/``), for an anonymous consumer, built without
an HTTP request.

A destination may project that document (``API_VIEWSET``, ``API_FIELDS``): it is then built by
the site's own viewset with the ``?fields=`` it names (:class:`ApiProjection`). Each projection
is built once per event and kept under a name of its own, ``"api:<digest>"``; the stock one
stays ``"api"``. Every one of them goes to the body under ``api``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from django.db import models, transaction
from django.utils.module_loading import import_string

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


class ApiProjection(NamedTuple):
    """Which API document a destination receives: the viewset that builds it (a dotted path;
    ``None``: Wagtail's ``PagesAPIViewSet``) and its ``fields`` (``None``: the endpoint's
    default), as ``API_VIEWSET`` and ``API_FIELDS`` name them."""

    viewset: str | None = None
    fields: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        """``"api"`` for the stock document, else ``"api:"`` and a digest of the projection:
        destinations with the same projection share one document per event."""
        if self.viewset is None and not self.fields:
            return API
        # No fields is the endpoint's default, as ``?fields=`` empty is: the same document.
        spec = json.dumps([self.viewset, list(self.fields) if self.fields else None])
        return f"{API}:{hashlib.sha256(spec.encode()).hexdigest()[:12]}"


STOCK = ApiProjection()

#: The projections named so far, by name (a name is a digest of its projection: the table only
#: lets capture find the projection behind a name that routing gave a destination).
_projections: dict[str, ApiProjection] = {API: STOCK}


def include_names(
    include: Iterable[str], viewset: str | None = None, fields: Iterable[str] | None = None
) -> tuple[str, ...]:
    """The names of the documents a destination receives: its ``INCLUDE``, with ``"api"`` named
    after its projection."""
    projection = ApiProjection(viewset, tuple(fields or ()) or None)
    names = []
    for name in include:
        if name == API:
            name = projection.name
            _projections.setdefault(name, projection)
        names.append(name)
    return tuple(names)


def is_api_name(name: str) -> bool:
    return name == API or name.startswith(f"{API}:")


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

    Never raises: a document that cannot be built (an unknown field, a viewset that cannot be
    imported, a serialiser that fails) is stored as ``None`` and the error logged, or given to
    ``on_failure(exc, destination=...)`` to record (the destination named ``"INCLUDE api"``, or
    ``"INCLUDE api:<digest>"`` for a projection: every destination that asked for it is sent
    the event without it). Each runs in a savepoint, so that a failing query leaves the
    caller's transaction usable.
    """
    included: dict[str, Any] = {}
    if instance is None:
        return included
    for name in sorted(set(names)):
        projection = _projections.get(name) if is_api_name(name) else None
        if projection is None:
            continue
        try:
            with transaction.atomic(using=using):
                document = api_document(instance, projection)
        except Exception as exc:
            included[name] = None
            if on_failure is None:
                logger.exception(
                    "Publish hooks could not serialise %s %s for INCLUDE [%r]",
                    type(instance).__name__,
                    getattr(instance, "pk", None),
                    name,
                )
            else:
                on_failure(exc, destination=f"INCLUDE {name}")
            continue
        if document is not None:
            included[name] = document
    return included


def api_document(instance: Any, projection: ApiProjection = STOCK) -> dict[str, Any] | None:
    """``instance`` as the API detail view of ``projection`` answers an anonymous consumer, or
    ``None`` if no endpoint serves it (a snippet) or the endpoint would not show it (404: a
    private page; an image in a restricted collection; 401, 403).

    The projection applies to the objects its viewset serves (instances of its ``model``);
    pages, images and documents that it does not serve get the stock document of their own
    endpoint. The view runs as for ``GET <detail URL>?fields=...`` (its ``get_object``,
    ``get_serializer_class`` and context, so a viewset's overrides apply), without a request
    going through the URLconf. Raises what the API would answer with a 400 (an unknown field,
    bad syntax).
    """
    from django.http import Http404
    from rest_framework.exceptions import NotAuthenticated, PermissionDenied

    specific_class = getattr(instance, "specific_class", None) if is_page(instance) else None
    if specific_class is not None and type(instance) is not specific_class:
        instance = instance.specific  # a viewset of one page type serves it
    projected = import_viewset(projection.viewset)
    if _serves(projected, instance):
        viewset, fields = projected, projection.fields or ()
        router = _api_router(projection.viewset)
    else:
        viewset = next((v for v in stock_endpoints().values() if _serves(v, instance)), None)
        fields, router = (), _api_router(None)
    if viewset is None:
        return None
    request = _anonymous_request(instance, router, fields)
    view = viewset(request=request, action="detail_view", kwargs={"pk": instance.pk}, args=())
    view.format_kwarg = None
    try:
        shown = view.get_object()
    except (Http404, NotAuthenticated, PermissionDenied):
        return None
    return json_safe(view.get_serializer(shown).data)


def fields_error(projection: ApiProjection, model: type) -> str | None:
    """What the API answers (its 400 message) when ``projection``'s fields are asked of an
    object of ``model``, or ``None`` when it accepts them. Uses the viewset's own parser and
    serializer construction; imports the viewset, runs no query."""
    from wagtail.api.v2.utils import BadRequestError

    viewset = import_viewset(projection.viewset)
    try:
        viewset._get_serializer_class(
            _api_router(projection.viewset),
            model,
            parse_fields(projection.fields or ()),
            show_details=True,
        )
    except (BadRequestError, ValueError) as exc:
        return str(exc)
    except Exception as exc:  # the site's viewset is code of its own: never a crashed check
        return f"an error ({type(exc).__name__})"
    return None


def served_models(viewset: Any) -> list[type[models.Model]]:
    """The installed models whose objects ``viewset`` serves (its ``model`` and subclasses)."""
    from django.apps import apps

    return [model for model in apps.get_models() if _serves_model(viewset, model)]


def parse_fields(fields: Iterable[str]) -> list[Any]:
    """``API_FIELDS`` parsed as the API parses ``?fields=`` (raises ``ValueError``)."""
    from wagtail.api.v2.utils import parse_fields_parameter

    fields = list(fields)
    return parse_fields_parameter(",".join(fields)) if fields else []


def import_viewset(path: str | None) -> Any:
    """The viewset class ``API_VIEWSET`` names; Wagtail's ``PagesAPIViewSet`` for ``None``."""
    if path is None:
        from wagtail.api.v2.views import PagesAPIViewSet

        return PagesAPIViewSet
    return import_string(path)


def stock_endpoints() -> dict[str, Any]:
    """Wagtail's own endpoints for pages, images and documents (those installed), by the names
    its documentation registers them under (not ``viewset.name``: Django REST framework resets
    it once the URLs are loaded)."""
    from django.apps import apps
    from wagtail.api.v2.views import PagesAPIViewSet

    endpoints: dict[str, Any] = {"pages": PagesAPIViewSet}
    if apps.is_installed("wagtail.images"):
        from wagtail.images.api.v2.views import ImagesAPIViewSet

        endpoints["images"] = ImagesAPIViewSet
    if apps.is_installed("wagtail.documents"):
        from wagtail.documents.api.v2.views import DocumentsAPIViewSet

        endpoints["documents"] = DocumentsAPIViewSet
    return endpoints


def _serves(viewset: Any, instance: Any) -> bool:
    return _serves_model(viewset, type(instance))


def _serves_model(viewset: Any, model: type) -> bool:
    served = getattr(viewset, "model", None)
    return isinstance(served, type) and issubclass(model, served)


@functools.cache
def _api_router(viewset_path: str | None) -> Any:
    """The router of Wagtail's documented API, with ``viewset_path`` in place of the stock
    endpoint for its model (detail URLs and nested objects follow the site's viewset)."""
    from django.urls import NoReverseMatch
    from wagtail.api.v2.router import WagtailAPIRouter

    class Router(WagtailAPIRouter):
        """The documented router; a detail URL that is not in the URLconf is left out."""

        def get_object_detail_urlpath(self, model: Any, pk: Any) -> str | None:
            try:
                return super().get_object_detail_urlpath(model, pk)
            except NoReverseMatch:
                return None

    router = Router(API_NAMESPACE)
    custom = import_viewset(viewset_path) if viewset_path is not None else None
    for name, viewset in stock_endpoints().items():
        if custom is not None and _serves_model(custom, viewset.model):
            viewset = custom
        router.register_endpoint(name, viewset)
    return router


def _anonymous_request(instance: Any, router: Any, fields: Iterable[str] = ()) -> Any:
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpRequest, QueryDict
    from wagtail.models import Site

    if is_page(instance):
        site = instance.get_site()
    else:
        site = Site.objects.filter(is_default_site=True).first()
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = "/"
    query = QueryDict(mutable=True)
    if fields:
        query["fields"] = ",".join(fields)
    request.GET = query  # type: ignore[assignment]
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
    # What Django REST framework's refusals look at: nobody authenticated.
    request.authenticators = ()  # type: ignore[attr-defined]
    return request
