"""The checks of the ``@on`` receivers."""

from __future__ import annotations

import difflib

from django.apps import apps
from django.core import checks

from ..receivers import registered_receivers
from ..validation import error
from .destinations import is_known_event_pattern, unknown_event_hint


def check_receivers(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The ``@on`` receivers: their model labels are installed models, their types are known."""
    messages: list[checks.CheckMessage] = []
    for receiver in registered_receivers():
        subject = f"Receiver {receiver.name!r}"
        for spec in receiver.models or ():
            if not isinstance(spec, str):
                continue
            try:
                apps.get_model(spec)
            except (LookupError, ValueError):
                messages.append(
                    error(
                        24,
                        f"{spec!r} is not an installed model ('app_label.Model'); the receiver "
                        "would never be called for it.",
                        subject=subject,
                        hint=_model_hint(spec),
                    )
                )
        for pattern in receiver.events:
            if not is_known_event_pattern(pattern):
                messages.append(
                    error(
                        25,
                        f"{pattern!r} is not a known event type.",
                        subject=subject,
                        hint=unknown_event_hint(pattern),
                    )
                )
    return messages


def _model_hint(label: str) -> str | None:
    known = [model._meta.label for model in apps.get_models()]
    close = difflib.get_close_matches(label, known, n=1)
    return f"Did you mean {close[0]!r}?" if close else None
