"""Which destinations an event goes to: by event type and by model, subclasses included, and by
the filters on what the event is about (``SITES``, ``LOCALES``, ``SECTIONS``, ``CHANGED``,
``COLLECTIONS``: :mod:`~wagtail_publish_hooks.route_filters`).

Destinations are the ``DESTINATIONS`` of the settings and the Python receivers registered with
``@on``; both match the same way. Events about alias pages go only to those that do not exclude
aliases (``EXCLUDE_ALIASES``).

Operational events (``publish_hooks.delivery_failed``, ``.destination_disabled``,
``.capture_failed``) go only where ``EVENTS`` names them, exactly or by ``"publish_hooks.*"``:
not to the default (every page event), nor through ``"*"``, and ``MODELS`` does not filter them
(they are about the pipeline, not about a model). One about a destination is never routed to it.

Once routed, each destination's backend is asked what it needs at the moment of the event
(:func:`capture_for_destinations`) and how long it merges events (:func:`plan_routes`); a
destination whose backend cannot answer is set aside, so that it costs the others nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import models, transaction
from django.utils import timezone

from .conf import WATCHERS_ALIAS, get_settings, is_watch_alias
from .events import DEFAULT_EVENT_PATTERNS, OPERATIONAL_EVENT_TYPES, event_type_matches, json_safe
from .includes import include_names
from .limits import OPTION_LIMITS, OutOfLimits, parse_number
from .receivers import Receiver, get_receiver, registered_receivers
from .registry import Destination, get_backend, get_destinations
from .route_filters import Subject, model_matches
from .subscribers import is_subscribable, subscriptions_exist

logger = logging.getLogger("wagtail_publish_hooks")


class Route(NamedTuple):
    """One destination an event is recorded for, with the names of the extra documents it
    asked for (:func:`destination_includes`)."""

    alias: str
    include: tuple[str, ...] = ()


def destination_matches(
    destination: Destination | Receiver,
    event_type: str,
    model: type[models.Model] | None,
    *,
    is_alias: bool = False,
    subject: Subject | None = None,
) -> bool:
    """Whether ``destination`` takes the event: its type and model, alias pages, and (given
    ``subject``, the object of the event) its filters (see ``route_filters``)."""
    if is_alias and destination.exclude_aliases:
        return False
    patterns = destination.events if destination.events is not None else DEFAULT_EVENT_PATTERNS
    if event_type in OPERATIONAL_EVENT_TYPES:
        # Opt-in only: a destination that takes "everything" did not ask for alerts.
        return event_type_matches(event_type, [p for p in patterns if p != "*"])
    return (
        event_type_matches(event_type, patterns)
        and model_matches(model, destination.models)
        and (subject is None or subject.matches(destination))
    )


def subject_of(
    event_type: str,
    instance: models.Model | None,
    data: Mapping[str, Any] | Callable[[], Any] | None = None,
) -> Subject:
    """The object of an event as the filters judge it, for :func:`routes_for` and
    :func:`in_process_receivers_for` to share (what it looks up, it looks up once)."""
    return Subject(event_type, instance, data, everyone=_everyone)


def _everyone() -> list[Destination | Receiver]:
    return [*get_destinations().values(), *registered_receivers()]


def destination_includes(destination: Destination | Receiver) -> tuple[str, ...]:
    """What a destination's ``INCLUDE`` names, its API document named after its projection
    (``API_VIEWSET``, ``API_FIELDS``): destinations with the same one share it."""
    if isinstance(destination, Destination):
        return include_names(destination.include, destination.api_viewset, destination.api_fields)
    return tuple(destination.include)


def routes_for(
    event_type: str,
    model: type[models.Model] | None,
    *,
    is_alias: bool = False,
    subject: Subject | None = None,
) -> list[Route]:
    """The destinations and durable receivers that record ``event_type`` for ``model``.

    ``subject`` (:func:`subject_of`): the object of the event, judged by the destinations'
    filters; without it, the filters are not applied.
    """
    routes = [
        route
        for route, destination in candidate_routes(event_type, model, is_alias=is_alias)
        if subject is None or event_type in OPERATIONAL_EVENT_TYPES or subject.matches(destination)
    ]
    routes += [
        Route(receiver.name, receiver.include)
        for receiver in registered_receivers()
        if receiver.durable
        and destination_matches(receiver, event_type, model, is_alias=is_alias, subject=subject)
    ]
    if watched(event_type, is_alias=is_alias):
        routes.append(Route(WATCHERS_ALIAS))
    return routes


def candidate_routes(
    event_type: str, model: type[models.Model] | None, *, is_alias: bool = False
) -> list[tuple[Route, Destination]]:
    """The destinations whose ``EVENTS``, ``MODELS`` and ``EXCLUDE_ALIASES`` take the event,
    with their routes: what routing decides before looking at the event's object.

    Remembered per event type, model and alias flag for as long as :func:`get_destinations`
    returns the same mapping (a change of the settings or of the admin-managed destinations
    makes a new one), so that a publish does not match every destination's patterns again.
    """
    global _candidates
    destinations = get_destinations()
    cached = _candidates
    if cached is None or cached[0] is not destinations:
        cached = _candidates = (destinations, {})
    key = (event_type, model, is_alias)
    found = cached[1].get(key)
    if found is None:
        found = [
            (Route(alias, destination_includes(destination)), destination)
            for alias, destination in destinations.items()
            if destination_matches(destination, event_type, model, is_alias=is_alias)
        ]
        if len(cached[1]) < CANDIDATES_KEPT:
            cached[1][key] = found
    return found


#: At most this many (event type, model, alias flag) answers are kept per destinations mapping.
CANDIDATES_KEPT = 1024

#: (the destinations mapping, its answers by (event type, model, alias flag)).
_candidates: (
    tuple[
        dict[str, Destination],
        dict[tuple[str, type[models.Model] | None, bool], list[tuple[Route, Destination]]],
    ]
    | None
) = None


def watched(event_type: str, *, is_alias: bool = False) -> bool:
    """Whether an event goes to watching's fan-out (``"watchers"``): one of a type
    subscriptions may name, while ``WATCHING`` is on and some subscription exists (one cached
    query, whatever the number of watchers). Alias pages' events only repeat their original's."""
    return (
        not is_alias
        and is_subscribable(event_type)
        and get_settings().WATCHING is True
        and subscriptions_exist()
    )


def operational_routes(event_type: str, about: str) -> list[Route]:
    """The routes of an operational event about destination ``about``: every destination and
    durable receiver that names the type, except ``about`` itself (it would tell a failing
    destination that it fails, or feed its own failures back to it)."""
    return [route for route in routes_for(event_type, None) if route.alias != about]


def destinations_for(
    event_type: str, model: type[models.Model] | None, *, is_alias: bool = False
) -> list[str]:
    """Aliases of the destinations that receive ``event_type`` for an instance of ``model``.

    ``is_alias``: the event is about an alias page re-published with its original.
    Durable receivers are included, under their ``python:`` names.
    """
    return [route.alias for route in routes_for(event_type, model, is_alias=is_alias)]


def in_process_receivers_for(
    event_type: str,
    model: type[models.Model] | None,
    *,
    is_alias: bool = False,
    subject: Subject | None = None,
) -> list[Receiver]:
    """The ``durable=False`` receivers that are called after commit for this event."""
    return [
        receiver
        for receiver in registered_receivers()
        if not receiver.durable
        and destination_matches(receiver, event_type, model, is_alias=is_alias, subject=subject)
    ]


def route_to(aliases: Iterable[str]) -> list[Route]:
    """Routes to the named destinations, bypassing the filters (``publish_hooks test``)."""
    destinations = get_destinations()
    routes = []
    for alias in aliases:
        destination: Destination | Receiver | None = destinations.get(alias) or get_receiver(alias)
        routes.append(
            Route(alias, destination_includes(destination) if destination is not None else ())
        )
    return routes


def capture_for_destinations(
    aliases: Iterable[str],
    event_type: str,
    instance: models.Model | None,
    *,
    using: str | None = None,
    on_failure: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """What the backends of routed destinations need kept from the moment of the event.

    A backend with a ``capture(event_type, instance)`` method is asked; a non-``None`` answer
    (JSON types) is stored under its alias. It is for what is gone by delivery time, such as the
    URLs of a page being deleted. Never raises, and runs in a savepoint. A destination whose
    capture fails is left out (its delivery is sent with what the event holds), and
    ``on_failure(exc, destination=alias)`` is called to record it.
    """
    captured: dict[str, Any] = {}
    destinations = get_destinations()
    for alias in aliases:
        if alias not in destinations and not is_watch_alias(alias):
            continue  # a Python receiver
        try:
            capture = getattr(get_backend(alias), "capture", None)
            if capture is None:
                continue
            with transaction.atomic(using=using):
                data = capture(event_type, instance)
            if data is not None:
                captured[alias] = json_safe(data)
        except Exception as exc:
            if on_failure is None:
                logger.exception(
                    "Publish hooks destination %r could not capture data for %s", alias, event_type
                )
            else:
                on_failure(exc, destination=alias)
    return captured


@dataclass
class RoutePlan:
    """What recording needs to know of each routed destination, worked out before writing."""

    #: The merging window, in seconds, of each destination that coalesces events.
    windows: dict[str, float] = field(default_factory=dict)
    #: When each destination's new delivery is first due.
    due: dict[str, datetime] = field(default_factory=dict)
    #: Why a destination cannot be recorded (secret-free, value-free text), by alias.
    refused: dict[str, str] = field(default_factory=dict)


def plan_routes(routes: list[Route], now: datetime, *, coalesce: bool = True) -> RoutePlan:
    """Build each routed destination's backend and work out its merging window.

    Never raises: a destination whose backend cannot be built, or whose window is unusable
    (an exception, or a number outside the bounds of ``COALESCE_SECONDS``), is put in
    ``refused`` with the reason, and logged; the others are untouched. No query.
    """
    global _windows
    plan = RoutePlan()
    destinations = get_destinations()
    if _windows is None or _windows[0] is not destinations:
        _windows = (destinations, {})
    known = _windows[1]
    for route in routes:
        alias = route.alias
        plan.due[alias] = now
        if alias not in destinations:
            continue  # a Python receiver
        if alias in known:
            if not coalesce:
                continue
            window = known[alias]
            if window > 0:
                plan.windows[alias] = window
                plan.due[alias] = now + timedelta(seconds=window)
            continue
        try:
            backend = get_backend(alias)
        except Exception as exc:
            plan.refused[alias] = failure_text(exc, "its backend cannot be built ({})")
            logger.error("Publish hooks destination %r: %s", alias, plan.refused[alias])
            continue
        if not coalesce:
            continue
        try:
            window = parse_number(
                "COALESCE_SECONDS",
                backend.coalesce_seconds(),
                OPTION_LIMITS["COALESCE_SECONDS"],
            )
            due = now + timedelta(seconds=window)
        except Exception as exc:
            plan.refused[alias] = failure_text(exc, "its merging window is unusable ({})")
            logger.error("Publish hooks destination %r: %s", alias, plan.refused[alias])
            continue
        known[alias] = float(window)
        if window > 0:
            plan.windows[alias] = float(window)
            plan.due[alias] = due
    return plan


#: (the destinations mapping, the merging window of each of its destinations planned without
#: a fault): a backend is built once per destination and mapping, and its window is kept with
#: it. A destination that could not be planned is tried again at its next event.
_windows: tuple[dict[str, Destination], dict[str, float]] | None = None


def failure_text(exc: BaseException, template: str = "{}") -> str:
    """What to record of an exception for the admin: the package's own bounds error says which
    option and what bounds (never the value); any other, its type alone in ``template``, since
    its text may hold a URL or a secret."""
    if isinstance(exc, OutOfLimits):
        return str(exc)
    return template.format(type(exc).__name__)


def coalescing_windows(routes: list[Route]) -> dict[str, float]:
    """The merging window of each routed destination that coalesces events."""
    return plan_routes(routes, timezone.now()).windows
