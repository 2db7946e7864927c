"""The form of a destination managed in the admin, validated by the system checks' own code."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django import forms
from django.core import checks
from django.utils.translation import gettext_lazy as _

from ...checks.destinations import check_destination
from ...conf import raw_settings
from ...encryption import PREFIX, DecryptionError, decrypt, encrypted_values
from ...includes import KNOWN_INCLUDES
from ...models import ManagedDestination
from ...redaction import is_secret_option
from ...registry import managed_backend_choices
from ...validation import managed_alias_taken
from .fields import ExcludeAliasesSelect, LinesField, OptionsField, ScheduleField
from .filters import FILTER_FIELDS, RoutingFilters
from .secret_options import (
    RETYPE_SECRET,
    as_json,
    backend_class_of,
    backend_takes_secret,
    generate_secret,
    hide_secret_options,
    holds_encrypted,
    keep_secret_options,
    replace_encrypted,
    targets,
)

#: Which form field shows a check message about a destination key.
FIELD_FOR_KEY = {
    "BACKEND": "backend",
    "OPTIONS": "options",
    "EVENTS": "events",
    "MODELS": "model_labels",
    "EXCLUDE_ALIASES": "exclude_aliases",
    "INCLUDE": "include",
    "API_FIELDS": "api_fields",
    # Never a field: an admin user may not name code (E062). Shown with the API fields.
    "API_VIEWSET": "api_fields",
    "RETRY_SCHEDULE": "retry_schedule",
    "MAX_ATTEMPTS": "max_attempts",
    **FILTER_FIELDS,
}


class DestinationForm(RoutingFilters, forms.ModelForm):
    """Create or edit a :class:`~wagtail_publish_hooks.models.ManagedDestination`.

    Everything entered is assembled into the configuration a ``DESTINATIONS`` entry would hold
    and run through :func:`wagtail_publish_hooks.checks.destinations.check_destination`: each
    error of the system checks becomes an error of the field it is about, with its id. Warnings
    do not stop the form; the view shows them once saved (:attr:`check_warnings`).

    The signing secret is never put into a widget: it is generated (and shown once, by the
    view, from :attr:`generated_secret`) or typed into a password field that does not render
    its value back.

    ``for_user``: the admin user, who chooses sections and collections among those they may
    see (:mod:`.filters`); without one (code), among all.
    """

    SECRET_GENERATE = "generate"  # noqa: S105 -- a choice, not a secret
    SECRET_ENTER = "enter"  # noqa: S105 -- a choice, not a secret
    SECRET_KEEP = "keep"  # noqa: S105 -- a choice, not a secret
    SECRET_NONE = "none"  # noqa: S105 -- a choice, not a secret

    backend = forms.ChoiceField(
        label=_("Backend"),
        choices=managed_backend_choices,
        error_messages={
            "invalid_choice": _(
                "%(value)s is not a backend that destinations managed in the admin may use "
                "(wagtail_publish_hooks.E044). The site's developers may allow others in "
                "MANAGED_BACKENDS."
            )
        },
        help_text=_(
            "The package's backends, and those your site's developers allowed (MANAGED_BACKENDS)."
        ),
    )
    options = OptionsField(
        label=_("Options"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "w-font-mono"}),
        help_text=_(
            'The backend\'s OPTIONS as a JSON object, for example {"URL": '
            '"https://consumer.example.com/hooks"}. The signing secret goes in the field below. '
            "Secret values (a Slack, Teams, Discord or build-hook URL, any option named like a "
            "token, key or password) are never shown: leave “[kept: set]” to keep one, or "
            "replace it."
        ),
    )
    secret_mode = forms.ChoiceField(
        label=_("Signing secret"),
        widget=forms.RadioSelect,
        help_text=_(
            "The SECRET option of backends that sign their requests (webhooks, revalidation). "
            "A generated secret is shown once, after saving, and never again."
        ),
    )
    secret_value = forms.CharField(
        label=_("Secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Only when entering your own: 'whsec_' followed by base64."),
    )
    drop_previous_secrets = forms.BooleanField(
        label=_("Stop signing with the previous secret"),
        required=False,
        help_text=_("Once every consumer verifies with the new secret."),
    )
    events = LinesField(
        label=_("Events"),
        required=False,
        help_text=_(
            "Event types or patterns, one per line (page.published, page.*, shop.order_shipped). "
            "Empty: every page event."
        ),
    )
    model_labels = LinesField(
        label=_("Models"),
        required=False,
        help_text=_("Model labels, one per line (blog.BlogPage; subclasses match). Empty: all."),
    )
    exclude_aliases = forms.NullBooleanField(
        label=_("Exclude alias pages"),
        required=False,
        widget=ExcludeAliasesSelect(),
    )
    include = forms.MultipleChoiceField(
        label=_("Include"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[(name, name) for name in sorted(KNOWN_INCLUDES)],
        help_text=_("Extra documents sent with each event: 'api' adds the page's API document."),
    )
    api_fields = LinesField(
        label=_("API fields"),
        required=False,
        help_text=_(
            "With 'api' included: the fields of the API document, one per line, as the API's "
            "?fields= takes them (title, feed_image(url), -body; '_' first keeps only those "
            "listed). Empty: every field."
        ),
    )
    retry_schedule = ScheduleField(
        label=_("Retry schedule"),
        required=False,
        help_text=_(
            "Seconds to wait after each failed attempt, such as “10, 60, 300” (the last one "
            "repeats). Empty: the site's RETRY_SCHEDULE."
        ),
    )
    max_attempts = forms.IntegerField(
        label=_("Maximum attempts"),
        required=False,
        help_text=_(
            "Attempts before a delivery fails, from 1 to 100: few for chat messages, which are "
            "noise when late; many for a build hook. Empty: the site's MAX_ATTEMPTS."
        ),
    )

    field_order = [
        "alias",
        "backend",
        "options",
        "secret_mode",
        "secret_value",
        "drop_previous_secrets",
        "events",
        "model_labels",
        "exclude_aliases",
        "include",
        *FILTER_FIELDS.values(),
        "api_fields",
        "retry_schedule",
        "max_attempts",
    ]

    class Meta:
        model = ManagedDestination
        fields = [
            "alias",
            "backend",
            "options",
            "events",
            "model_labels",
            "exclude_aliases",
            "include",
            *FILTER_FIELDS.values(),
            "api_fields",
            "retry_schedule",
            "max_attempts",
        ]

    def __init__(self, *args: Any, for_user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_up_filters(for_user, self.instance)
        self.generated_secret: str | None = None
        self.check_warnings: list[checks.CheckMessage] = []
        self.fields["alias"].help_text = _(
            "The name deliveries are recorded under. It cannot be one used in settings."
        )
        existing = self.instance.pk is not None and bool(self.instance.secrets)
        choices = []
        if existing:
            count = len(self.instance.secrets)
            choices.append(
                (
                    self.SECRET_KEEP,
                    _("Set (%(count)s): keep it") % {"count": count}
                    if count > 1
                    else _("Set: keep it"),
                )
            )
        choices += [
            (self.SECRET_GENERATE, _("Generate a new one") if existing else _("Generate one")),
            (self.SECRET_ENTER, _("Enter one")),
            (self.SECRET_NONE, _("None: send unsigned requests")),
        ]
        self.fields["secret_mode"].choices = choices  # type: ignore[attr-defined]
        self.fields["secret_mode"].initial = self.SECRET_KEEP if existing else self.SECRET_GENERATE
        if not (existing and len(self.instance.secrets) > 1):
            del self.fields["drop_previous_secrets"]
        self._stored_plain: dict[str, Any] | None = None
        self._stored_secret_values: frozenset[str] = frozenset()
        self.stored_undecryptable = False
        if self.instance.pk is not None:
            try:
                self._stored_plain = self.instance.plain_options()
                self._stored_secret_values = frozenset(
                    as_json(self._decrypted(value))
                    for value in encrypted_values(self.instance.options or {})
                )
            except DecryptionError:
                # Keys lost: nothing can be kept; the secrets must be entered again.
                self.stored_undecryptable = True
                self._stored_plain = {}
            shown = self._stored_plain
            if self.stored_undecryptable:
                shown = replace_encrypted(self.instance.options or {}, RETYPE_SECRET)
            self.initial["options"] = json.dumps(shown, indent=2)
        else:
            self.initial.setdefault("options", "{}")
        self.fields["options"].hide = self._hide_secret_options  # type: ignore[attr-defined]

    @staticmethod
    def _decrypted(value: Any) -> Any:
        return decrypt(value)

    def _stored_options(self) -> Any:
        return self._stored_plain or {}

    def _hide_secret_options(self, options: dict[str, Any]) -> Any:
        """What the options field shows. A value secret for the backend stored or the one
        submitted, or equal to any stored secret, is never shown."""
        stored_class = backend_class_of(self.instance.backend)
        path = self.instance.backend
        if self.is_bound:
            path = self.data.get(self.add_prefix("backend")) or path
        return hide_secret_options(
            options,
            backend_class_of(path),
            self._stored_options(),
            also_secret=lambda key: is_secret_option(stored_class, key),
            stored_secrets=self._stored_secret_values,
        )

    def clean_alias(self) -> str:
        return self.cleaned_data["alias"].strip()

    def clean_options(self) -> dict[str, Any]:
        text = (self.cleaned_data.get("options") or "").strip()
        self.kept_options: list[tuple[Any, ...]] = []
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(
                _("This is not valid JSON: %(error)s") % {"error": exc}
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError(_('Enter a JSON object, such as {"URL": "…"}.'))
        if "SECRET" in value:
            raise forms.ValidationError(
                _("Enter the secret in the “Signing secret” field, where it is never shown.")
            )
        if holds_encrypted(value):
            raise forms.ValidationError(
                _("Values may not start with “%(prefix)s”: it marks encrypted values.")
                % {"prefix": PREFIX}
            )
        # The checks run on the options as they will be stored, with the kept secrets in.
        value, unresolved = keep_secret_options(value, self._stored_options(), self.kept_options)
        if unresolved:
            where = ", ".join(
                "OPTIONS" + "".join(f"[{key!r}]" for key in path) for path in unresolved
            )
            raise forms.ValidationError(
                _("%(where)s: enter the value (secrets are not shown back; none is stored here).")
                % {"where": where}
            )
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        alias = cleaned.get("alias")
        backend = cleaned.get("backend")
        if not alias or not backend or "options" not in cleaned:
            return cleaned
        raw = raw_settings().get("DESTINATIONS")
        if isinstance(raw, Mapping) and alias in raw:
            self.add_error("alias", _format(managed_alias_taken(alias)))
            return cleaned
        if not self._secrets_follow_their_target(cleaned, backend):
            return cleaned
        self.secrets = self._secrets(cleaned, backend)
        config = self._config(cleaned, backend, self.secrets)
        for message in check_destination(alias, config, managed=True):
            if message.level < checks.ERROR:
                self.check_warnings.append(message)
                continue
            keys = getattr(message, "setting_keys", ())
            field = "alias"
            if keys:
                field = FIELD_FOR_KEY.get(keys[0], "options")
                if keys[:2] == ("OPTIONS", "SECRET"):
                    field = "secret_mode"
            if field in self.errors:
                self.errors[field].append(_format(message))
            else:
                self.add_error(field, _format(message))
        return cleaned

    def _secrets_follow_their_target(self, cleaned: dict[str, Any], backend: str) -> bool:
        """A kept secret survives only while the backend and the target (scheme, host, port of
        where requests go) are unchanged: otherwise it would be sent, or shown, to somebody it
        was not typed for. Whether nothing was refused.

        The signing secret of a backend that only signs with it (a webhook's ``SECRET``: it
        never leaves this server) may stay when the target changes; one that is sent (a
        revalidation ``SECRET``, a header, a tokenised URL) may not.
        """
        if self.instance.pk is None:
            return True
        backend_class = backend_class_of(backend)
        same_backend = backend == self.instance.backend
        same_target = same_backend and targets(backend_class, cleaned["options"]) == targets(
            backend_class, self._stored_options()
        )
        changed = _("the backend changed") if not same_backend else _("the target changed")
        ok = True
        kept = getattr(self, "kept_options", [])
        if kept and not same_target:
            where = ", ".join("OPTIONS" + "".join(f"[{key!r}]" for key in path) for path in kept)
            self.add_error(
                "options",
                _(
                    "%(where)s: %(changed)s (backend, or scheme, host or port of the URL), so "
                    "the stored secret is not kept: enter it again. A kept secret is only sent "
                    "where it was entered for."
                )
                % {"where": where, "changed": changed},
            )
            ok = False
        keeping = cleaned.get("secret_mode") == self.SECRET_KEEP and bool(self.instance.secrets)
        if keeping and backend_takes_secret(backend):
            sent = getattr(backend_class, "secret_is_sent", True)
            if not same_backend or (sent and not same_target):
                self.add_error(
                    "secret_mode",
                    _(
                        "The stored secret is not kept: %(changed)s (backend, or scheme, host or "
                        "port of the URL). Enter a secret, or generate one."
                    )
                    % {"changed": changed},
                )
                ok = False
        return ok

    def _secrets(self, cleaned: dict[str, Any], backend: str) -> list[str]:
        mode = cleaned.get("secret_mode")
        if not backend_takes_secret(backend):
            return []
        if mode == self.SECRET_KEEP:
            try:
                secrets = self.instance.plain_secrets()
            except DecryptionError:
                self.add_error(
                    "secret_mode",
                    _("The stored secret cannot be decrypted: enter a secret, or generate one."),
                )
                return []
            if cleaned.get("drop_previous_secrets"):
                secrets = secrets[:1]
            return secrets
        if mode == self.SECRET_GENERATE:
            if self.generated_secret is None:
                self.generated_secret = generate_secret()
            return [self.generated_secret]
        if mode == self.SECRET_ENTER:
            value = cleaned.get("secret_value") or ""
            if not value:
                self.add_error("secret_value", _("Enter the secret, or choose another option."))
            elif value.startswith(PREFIX):
                self.add_error("secret_value", _("This is not a secret one can enter."))
                return []
            return [value] if value else []
        return []

    def _config(self, cleaned: dict[str, Any], backend: str, secrets: list[str]) -> dict:
        instance = ManagedDestination(
            alias=cleaned["alias"],
            backend=backend,
            options=cleaned.get("options") or {},
            secrets=secrets,
            events=cleaned.get("events"),
            model_labels=cleaned.get("model_labels"),
            exclude_aliases=cleaned.get("exclude_aliases"),
            include=list(cleaned.get("include") or []),
            api_fields=cleaned.get("api_fields"),
            retry_schedule=cleaned.get("retry_schedule"),
            max_attempts=cleaned.get("max_attempts"),
            **self.filter_values(),
        )
        return instance.to_config()

    def save(self, commit: bool = True) -> ManagedDestination:
        instance = super().save(commit=False)
        instance.secrets = getattr(self, "secrets", [])
        instance.include = list(self.cleaned_data.get("include") or [])
        if commit:
            instance.save()  # encrypts the secrets
        return instance


def _format(message: checks.CheckMessage) -> str:
    """A check message as a form error: the keys below the field, the text, the id, the hint."""
    keys = getattr(message, "setting_keys", ())
    text = getattr(message, "text", message.msg)
    where = "".join(f"[{key!r}]" for key in keys[1:])
    if keys and keys[0] == "OPTIONS" and where:
        where = f"OPTIONS{where}"
    result = f"{where}: {text}" if where else text
    result = f"{result} ({message.id})"
    if message.hint:
        result = f"{result} {message.hint}"
    return result
