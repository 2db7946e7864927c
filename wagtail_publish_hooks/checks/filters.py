"""The checks of a destination's filters (``SITES``, ``LOCALES``, ``SECTIONS``, ``CHANGED``,
``COLLECTIONS``) and of the global ``OBJECT_SITES``.

Sites, pages and collections are data: one named in settings may not exist yet (before
``migrate``, or on a fresh database), so naming an unknown one is a warning, and nothing is
reported while the tables cannot be read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q
from django.utils.module_loading import import_string

from ..events import event_type_matches
from ..route_filters import CHANGED_EVENT_TYPES, as_url_path, split_specs
from ..validation import error, warning

#: What each filter key holds: (description for the messages, whether ids are accepted).
FILTER_KEYS: dict[str, tuple[str, bool]] = {
    "SITES": ("site hostnames (strings) or Site ids (integers)", True),
    "LOCALES": ("language codes such as 'en' or 'fr-ca'", False),
    "SECTIONS": ("page ids (integers) or url paths such as '/home/blog/'", True),
    "CHANGED": ("field names such as 'title'", False),
    "COLLECTIONS": ("collection ids (integers) or names", True),
}


def check_filters(alias: str, config: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """E056 (wrong type), E057 (unknown language), W027 (unknown site, page or collection) and
    W028 (CHANGED that can never match) for one destination."""
    messages: list[checks.CheckMessage] = []
    values: dict[str, list[Any]] = {}
    for key, (what, ids) in FILTER_KEYS.items():
        if key not in config:
            continue
        value = config[key]
        if not _is_list_of(value, (str, int) if ids else (str,)) or any(
            isinstance(item, str) and not item.strip() for item in value
        ):
            messages.append(error(56, f"must be a list of {what}.", alias=alias, keys=(key,)))
            continue
        if not value:
            messages.append(
                warning(5, "is empty: this destination receives nothing.", alias=alias, keys=(key,))
            )
        values[key] = list(value)
    if "SECTIONS" in values:
        bad = [item for item in values["SECTIONS"] if isinstance(item, str) and "/" not in item]
        for item in bad:
            messages.append(
                error(
                    56,
                    f"{item!r} is not a url path: write it as Wagtail's url_path, such as "
                    "'/home/blog/' (the site's root page slug first), or give the page's id.",
                    alias=alias,
                    keys=("SECTIONS",),
                )
            )
    if "LOCALES" in values:
        messages += _check_locales(alias, values["LOCALES"])
    if "CHANGED" in values:
        messages += _check_changed(alias, config, values["CHANGED"])
    messages += _check_unknown_data(alias, values)
    return messages


def _is_list_of(value: Any, kinds: tuple[type, ...]) -> bool:
    return isinstance(value, list | tuple) and all(
        isinstance(item, kinds) and not isinstance(item, bool) for item in value
    )


def content_languages() -> list[str]:
    """The language codes pages may have: ``WAGTAIL_CONTENT_LANGUAGES``, else ``LANGUAGES``."""
    languages = getattr(settings, "WAGTAIL_CONTENT_LANGUAGES", None) or settings.LANGUAGES
    return [str(code).lower() for code, _name in languages]


def _check_locales(alias: str, codes: list[str]) -> list[checks.CheckMessage]:
    known = content_languages()
    return [
        error(
            57,
            f"{code!r} is not a content language of this site.",
            alias=alias,
            keys=("LOCALES",),
            hint=f"Languages of WAGTAIL_CONTENT_LANGUAGES (else LANGUAGES): {', '.join(known)}.",
        )
        for code in codes
        if code.lower() not in known
    ]


def _check_changed(
    alias: str, config: Mapping[str, Any], names: list[str]
) -> list[checks.CheckMessage]:
    events = config.get("EVENTS")
    if (
        events is not None
        and _is_list_of(events, (str,))
        and not any(event_type_matches(event_type, events) for event_type in CHANGED_EVENT_TYPES)
    ):
        return [
            warning(
                28,
                "has no effect: CHANGED judges page.published and snippet.published, which "
                "this destination's EVENTS do not include.",
                alias=alias,
                keys=("CHANGED",),
            )
        ]
    candidates = _models_of(config.get("MODELS"))
    return [
        warning(
            28,
            f"{name!r} is not a field of any of this destination's models: it never changes, so "
            "publishes match only when first published.",
            alias=alias,
            keys=("CHANGED",),
            hint="Use the names of model fields, such as 'title', 'intro' or 'body'.",
        )
        for name in names
        if not any(_has_field(model, name) for model in candidates)
    ]


def _models_of(labels: Any) -> list[type]:
    """The installed models a destination may receive events about: those of ``MODELS`` and
    their subclasses (every model without ``MODELS``)."""
    every = apps.get_models()
    if not _is_list_of(labels, (str,)):
        return list(every)
    listed = []
    for label in labels:
        try:
            listed.append(apps.get_model(label))
        except (LookupError, ValueError):
            continue  # E009
    return [model for model in every if any(issubclass(model, base) for base in listed)]


def _has_field(model: type, name: str) -> bool:
    try:
        model._meta.get_field(name)  # type: ignore[attr-defined]
    except FieldDoesNotExist:
        return False
    return True


def _check_unknown_data(alias: str, values: dict[str, list[Any]]) -> list[checks.CheckMessage]:
    """W027: sites, section pages or collections that do not exist (now)."""
    from wagtail.models import Collection, Page, Site

    lookups: list[tuple[str, Any, Callable[[set[int], set[str]], Q], str, str]] = [
        ("SITES", Site, lambda i, s: Q(pk__in=i) | Q(hostname__in=s), "hostname", "site"),
        (
            "SECTIONS",
            Page,
            lambda i, s: Q(pk__in=i) | Q(url_path__in={as_url_path(p) for p in s}),
            "url_path",
            "page",
        ),
        ("COLLECTIONS", Collection, lambda i, s: Q(pk__in=i) | Q(name__in=s), "name", "collection"),
    ]
    messages: list[checks.CheckMessage] = []
    for key, model, query, name_field, noun in lookups:
        if not values.get(key):
            continue
        ids, names = split_specs(values[key])
        found = _rows(model, query(ids, names), name_field)
        if found is None:
            continue
        found_ids = {pk for pk, _ in found}
        found_names = {str(value).lower() for _, value in found}
        for item in values[key]:
            if isinstance(item, int):
                missing = item not in found_ids
            elif key == "SECTIONS":
                missing = as_url_path(item).lower() not in found_names
            else:
                missing = item.lower() not in found_names
            if missing:
                messages.append(
                    warning(
                        27,
                        f"no {noun} {item!r} exists (yet): this destination matches nothing "
                        f"through it.",
                        alias=alias,
                        keys=(key,),
                        hint="Create it, or correct the value; ids keep matching across "
                        "renames and moves.",
                    )
                )
    return messages


def _rows(model: Any, query: Q, name_field: str) -> set[tuple[int, Any]] | None:
    """The (pk, name) of the rows ``query`` finds; ``None`` while the table cannot be read (no
    database at hand, or before ``migrate``): nothing is reported then."""
    try:
        return set(model._default_manager.filter(query).values_list("pk", name_field))
    except Exception:
        return None


def check_object_sites(raw: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """E058 (malformed) and E059 (not importable or not callable): ``OBJECT_SITES``."""
    if "OBJECT_SITES" not in raw:
        return []
    value = raw["OBJECT_SITES"]
    keys = ("OBJECT_SITES",)
    if not isinstance(value, Mapping) or not all(
        isinstance(label, str) and isinstance(path, str) for label, path in value.items()
    ):
        return [
            error(
                58,
                "must be a dict of model label to the dotted path of a callable, such as "
                "{'wagtailimages.Image': 'mysite.routing.image_sites'}.",
                keys=keys,
            )
        ]
    messages: list[checks.CheckMessage] = []
    for label, path in value.items():
        try:
            apps.get_model(label)
        except (LookupError, ValueError):
            messages.append(
                error(58, f"{label!r} is not an installed model ('app_label.Model').", keys=keys)
            )
        try:
            function = import_string(path)
        except Exception as exc:  # ImportError, or what the module raised
            messages.append(
                error(
                    59,
                    f"{path!r} cannot be imported ({type(exc).__name__}: {exc}).",
                    keys=(*keys, label),
                )
            )
            continue
        if not callable(function):
            messages.append(error(59, f"{path!r} is not callable.", keys=(*keys, label)))
    return messages
