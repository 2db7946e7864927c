"""The checks of a destination's API projection: ``API_VIEWSET`` and ``API_FIELDS``, the document
``INCLUDE ["api"]`` sends (see :mod:`wagtail_publish_hooks.includes`).

Fields are judged by the viewset's own rules (Wagtail's ``?fields=`` parser and the serializer
it builds for the detail view), for every model the destination can receive that the viewset
serves: a field the API would answer "unknown fields" for is an error here, not a capture
failure at every publish.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.core import checks
from django.db import models
from django.utils.module_loading import import_string

from ..includes import (
    API,
    ApiProjection,
    fields_error,
    import_viewset,
    parse_fields,
    served_models,
)
from ..validation import error, is_about_managed, warning

BASE_VIEWSET = "wagtail.api.v2.views.BaseAPIViewSet"

#: How many models a message names before it counts the others.
NAMED_MODELS = 3


def check_api_projection(alias: str, config: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """E060 to E062 and W032 for one destination (settings or admin-managed)."""
    has_viewset = "API_VIEWSET" in config
    has_fields = config.get("API_FIELDS") is not None
    if not has_viewset and not has_fields:
        return []
    messages: list[checks.CheckMessage] = []
    include = config.get("INCLUDE")
    if not isinstance(include, list | tuple) or API not in include:
        keys = ("API_VIEWSET",) if has_viewset else ("API_FIELDS",)
        messages.append(
            warning(
                32,
                "has no effect without INCLUDE ['api']: no API document is sent.",
                alias=alias,
                keys=keys,
                hint="Add 'api' to INCLUDE, or remove the key.",
            )
        )
    viewset_path: str | None = None
    viewset_ok = True
    if has_viewset:
        viewset_path, viewset_ok = _check_viewset(alias, config["API_VIEWSET"], messages)
    if has_fields and viewset_ok:
        messages += _check_fields(alias, config, viewset_path)
    return messages


def _check_viewset(
    alias: str, value: Any, messages: list[checks.CheckMessage]
) -> tuple[str | None, bool]:
    """The path to check fields with, and whether fields can be checked at all."""
    keys = ("API_VIEWSET",)
    if is_about_managed():
        # Never imported: an admin user may not name code.
        messages.append(
            error(
                62,
                "names code, and may be set in settings only, not in the admin.",
                alias=alias,
                keys=keys,
                hint="Define this destination in WAGTAIL_PUBLISH_HOOKS['DESTINATIONS'] to use it.",
            )
        )
        return None, False
    if not isinstance(value, str) or not value:
        messages.append(
            error(
                60,
                f"must be the dotted path of a subclass of {BASE_VIEWSET}.",
                alias=alias,
                keys=keys,
            )
        )
        return None, False
    from wagtail.api.v2.views import BaseAPIViewSet

    try:
        viewset = import_string(value)
    except Exception as exc:
        messages.append(
            error(
                60,
                f"{value!r} cannot be imported ({type(exc).__name__}).",
                alias=alias,
                keys=keys,
            )
        )
        return None, False
    if not isinstance(viewset, type) or not issubclass(viewset, BaseAPIViewSet):
        messages.append(
            error(60, f"{value!r} is not a subclass of {BASE_VIEWSET}.", alias=alias, keys=keys)
        )
        return None, False
    if not isinstance(getattr(viewset, "model", None), type):
        messages.append(
            error(
                60,
                f"{value!r} serves no model (its 'model' attribute is not set).",
                alias=alias,
                keys=keys,
            )
        )
        return None, False
    return value, True


def _check_fields(
    alias: str, config: Mapping[str, Any], viewset_path: str | None
) -> list[checks.CheckMessage]:
    keys = ("API_FIELDS",)
    value = config["API_FIELDS"]
    if (
        isinstance(value, str)
        or not isinstance(value, list | tuple)
        or not all(isinstance(item, str) and item for item in value)
    ):
        return [
            error(
                61,
                "must be a list of field names in the API's 'fields' syntax, such as "
                "['title', 'intro', 'feed_image(url)'].",
                alias=alias,
                keys=keys,
            )
        ]
    try:
        parse_fields(value)
    except ValueError as exc:
        return [
            error(
                61,
                f"is not in the API's 'fields' syntax: {exc}.",
                alias=alias,
                keys=keys,
                hint="Write each field as ?fields= would take it: 'title', '-body', "
                "'feed_image(url)', '*' or '_' first.",
            )
        ]
    projection = ApiProjection(viewset_path, tuple(value))
    refused: dict[str, list[str]] = {}
    for model in _projected_models(projection, config.get("MODELS")):
        problem = fields_error(projection, model)
        if problem is not None:
            refused.setdefault(problem, []).append(model._meta.label)
    return [
        error(
            61,
            f"the API answers {problem!r} for {_some(labels)}.",
            alias=alias,
            keys=keys,
            hint="Use fields of the viewset and of every model the destination receives "
            "(their api_fields); limit MODELS to the models that have them.",
        )
        for problem, labels in refused.items()
    ]


def _projected_models(projection: ApiProjection, labels: Any) -> list[type[models.Model]]:
    """The models the projection applies to: those the viewset serves, within ``MODELS``."""
    models = served_models(import_viewset(projection.viewset))
    if not isinstance(labels, list | tuple):
        return models
    wanted = []
    for label in labels:
        try:
            wanted.append(apps.get_model(label))
        except (LookupError, ValueError, TypeError):
            continue  # E009
    return [model for model in models if any(issubclass(model, w) for w in wanted)]


def _some(labels: list[str]) -> str:
    if len(labels) <= NAMED_MODELS:
        return ", ".join(labels)
    others = len(labels) - NAMED_MODELS
    return f"{', '.join(labels[:NAMED_MODELS])} and {others} other model{'s' if others > 1 else ''}"
