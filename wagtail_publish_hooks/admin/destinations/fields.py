"""The form fields of a managed destination that are not Django's own: options as JSON with
secrets hidden, lists one per line, a retry schedule."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _


class OptionsField(forms.CharField):
    """The backend's ``OPTIONS`` as JSON text, drawn with its secret values hidden."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hide: Any = None

    def prepare_value(self, value: Any) -> Any:
        if self.hide is None or not isinstance(value, str):
            return value
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        if not isinstance(parsed, dict):
            return value
        return json.dumps(self.hide(parsed), indent=2)


class ExcludeAliasesSelect(forms.NullBooleanSelect):
    def __init__(self, attrs: Any = None) -> None:
        super().__init__(attrs)
        self.choices = [
            ("unknown", _("The backend's default")),
            ("true", _("Yes: leave out events about alias pages")),
            ("false", _("No: send events about alias pages too")),
        ]


class LinesField(forms.CharField):
    """A list of strings, one per line; empty means "not set" (``None``)."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str] | None:  # type: ignore[override]
        text = super().to_python(value)
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        return lines or None


class ScheduleField(forms.CharField):
    """A ``RETRY_SCHEDULE``: delays in seconds separated by commas or spaces; empty means "the
    global" (``None``). Bounds are the system checks' (E052, E048), run by the form."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("["):
            try:
                value = json.loads(value)
            except ValueError:
                return value
        if isinstance(value, list | tuple):
            return ", ".join(
                f"{item:g}" if isinstance(item, float) else str(item) for item in value
            )
        return value

    def to_python(self, value: Any) -> list[int | float] | None:  # type: ignore[override]
        text = super().to_python(value) or ""
        delays: list[int | float] = []
        for item in text.replace(",", " ").split():
            try:
                number = float(item)
            except ValueError:
                raise forms.ValidationError(
                    _("“%(item)s” is not a number of seconds.") % {"item": item[:20]}
                ) from None
            delays.append(int(number) if number.is_integer() and "." not in item else number)
        return delays or None
