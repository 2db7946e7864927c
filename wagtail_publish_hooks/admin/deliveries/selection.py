"""Which deliveries a screen or an action works on: the report's filters and search as given in
the query string, and the one delivery or object a URL names."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, QueryDict
from django.utils.translation import gettext as _

from ...models import Delivery
from ..permissions import ObjectAccess
from .filters import DeliveryFilterSet

#: Query parameters of the report that neither filter nor search: pagination, ordering and the
#: like.
NOT_SELECTING = ("p", "ordering", "_w_filter_fragment", "next")
#: Query parameters of the report that are not filters.
REPORT_PARAMETERS = ("q", *NOT_SELECTING)


def deliveries_queryset() -> QuerySet[Delivery]:
    """Deliveries with their event, without the event's (possibly large) documents."""
    return Delivery.objects.select_related("event").defer("event__payload", "event__included_data")


def search_deliveries(
    queryset: QuerySet[Delivery], query: str, access: ObjectAccess
) -> QuerySet[Delivery]:
    """Search by the title of the page or object (and by event id, for support requests).

    Titles are searched only among the objects the user may see: a search that matched hidden
    titles would let anyone spell them out one letter at a time.
    """
    query = query.strip()
    if not query:
        return queryset
    title = Q(event__object_repr__icontains=query)
    if not access.sees_everything:
        title &= access.condition()
    return queryset.filter(title | Q(event__event_id=query))


def filter_errors(request: HttpRequest, filters: DeliveryFilterSet) -> list[str]:
    """Why the filters in ``request.GET`` cannot select deliveries, if they cannot: an invalid
    value, an unknown parameter or one given twice. A bulk action refuses such a selection
    rather than act on more than the user asked for."""
    errors = []
    unknown = filters.unknown_parameters(allowed=REPORT_PARAMETERS)
    if unknown:
        errors.append(_("Unknown or repeated filter: %(names)s.") % {"names": ", ".join(unknown)})
    if not filters.is_valid():
        for name, messages_ in filters.errors.items():
            label = filters.form.fields[name].label if name in filters.form.fields else name
            errors.append(
                _("Invalid filter “%(label)s”: %(error)s")
                % {"label": label, "error": " ".join(str(m) for m in messages_)}
            )
    return errors


def filtered_deliveries(
    request: HttpRequest, base: QuerySet[Delivery]
) -> tuple[QuerySet[Delivery], list[str]]:
    """``base`` narrowed by the report's filters and search in ``request.GET``, and the errors
    that make the filters unusable (then the queryset selects nothing)."""
    filters = DeliveryFilterSet(data=request.GET, request=request)
    errors = filter_errors(request, filters)
    if errors:
        return base.none(), errors
    queryset = filters.filter_queryset(base)
    access = ObjectAccess(request.user)
    return search_deliveries(queryset, request.GET.get("q", ""), access), []


def selecting_query(request: HttpRequest) -> QueryDict:
    """The report's filters and search in ``request.GET``, without pagination or ordering."""
    query = request.GET.copy()
    for name in NOT_SELECTING:
        query.pop(name, None)
    return query


def report_querystring(request: HttpRequest) -> str:
    """The report's filters and search, without pagination or ordering."""
    encoded = selecting_query(request).urlencode()
    return f"?{encoded}" if encoded else ""


def find_instance(model: type[models.Model], raw_pk: Any) -> Any:
    """The instance of ``model`` whose primary key is ``raw_pk`` (as given in a URL), or 404:
    a key of the wrong shape or beyond the column's range is a missing object, not an error."""
    try:
        pk = model._meta.pk.to_python(raw_pk)  # type: ignore[union-attr]
        instance = model._default_manager.filter(pk=pk).first()
    except (ValidationError, ValueError, TypeError, OverflowError):
        raise Http404 from None
    if instance is None:
        raise Http404
    return instance


def find_instance_in(queryset: QuerySet[Any], raw_pk: Any) -> Any:
    try:
        instance = queryset.filter(pk=raw_pk).first()
    except (ValidationError, ValueError, TypeError, OverflowError):
        raise Http404 from None
    if instance is None:
        raise Http404
    return instance
