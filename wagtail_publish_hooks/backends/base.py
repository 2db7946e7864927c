"""The contract every destination backend keeps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from django.core import checks

from ..limits import option_number
from ..validation import check_callable_path, error

if TYPE_CHECKING:
    from ..http.responses import HttpResult
    from ..models import Delivery


class BaseBackend:
    """A destination kind. One instance serves one destination alias.

    Subclasses implement :meth:`deliver`, and usually :meth:`check_options` so that every
    mistake in their ``OPTIONS`` is a system check rather than a failure at publish time.
    Instances are built lazily, the first time a delivery needs them, and dropped when the
    settings change.
    """

    #: Whether events arriving within a window may be merged into one delivery. Such a backend
    #: reads every event with ``delivery.covered_events()``, and its destinations accept the
    #: option ``COALESCE_SECONDS`` (0 turns merging off).
    supports_coalescing: ClassVar[bool] = False
    #: How long a coalescing destination waits for more events before sending, by default.
    default_coalesce_seconds: ClassVar[float] = 30
    #: The default of the destination key ``EXCLUDE_ALIASES``: whether events about alias pages,
    #: re-published along with their original, are left out. Notifications and webhooks would
    #: only repeat the original's event; a cache purge needs the alias's own URLs, so such a
    #: backend sets it to ``False``.
    exclude_aliases_by_default: ClassVar[bool] = True
    #: The ``OPTIONS`` keys the backend understands; any other key is reported as a typo.
    #: ``None`` accepts anything.
    option_keys: ClassVar[frozenset[str] | None] = None
    #: The ``OPTIONS`` keys whose values are secrets although their names may not say so: a
    #: Slack, Teams, Discord or build-hook ``URL`` embeds its token. Besides these, any key
    #: whose name looks secret (see :func:`~wagtail_publish_hooks.redaction.is_secret_option`)
    #: counts as one, at any depth. The admin never shows such values: its form shows a
    #: placeholder that keeps them.
    secret_option_keys: ClassVar[frozenset[str]] = frozenset()
    #: The name the admin offers the backend under, for destinations managed there.
    display_name: ClassVar[str | None] = None
    #: The ``OPTIONS`` keys that name code (dotted paths of callables, classes): allowed in
    #: settings only. A destination managed in the admin that has one is refused by its form,
    #: reported by the system checks and never built (see :meth:`check_managed_options`).
    settings_only_option_keys: ClassVar[frozenset[str]] = frozenset()
    #: The ``OPTIONS`` keys that say where requests go (a URL, or a dict of URLs). A secret
    #: kept while editing a managed destination survives only while their scheme, host and
    #: port stay the same: it would otherwise be sent to the new host.
    target_option_keys: ClassVar[frozenset[str]] = frozenset({"URL"})
    #: Whether the ``SECRET`` option travels to the target as it is (a header), rather than
    #: only signing the requests: such a secret must be entered again when the target changes.
    secret_is_sent: ClassVar[bool] = True

    def __init__(self, *, alias: str, options: Mapping[str, Any]) -> None:
        self.alias = alias
        self.options = dict(options)

    #: Whether the destination is managed in the admin; the registry sets it on the backends it
    #: builds. Such a destination's requests follow the admin's address policy.
    managed: bool = False

    def coalesce_seconds(self) -> float:
        """The merging window of this destination, in seconds; 0 when it does not merge.

        Raises :class:`~wagtail_publish_hooks.limits.OutOfLimits` for a ``COALESCE_SECONDS``
        outside its bounds: the event is then recorded for this destination as a failed
        delivery naming the option.
        """
        if not self.supports_coalescing:
            return 0.0
        default = self.default_coalesce_seconds
        return float(option_number(self.options, "COALESCE_SECONDS", default))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.alias!r}>"

    @classmethod
    def check_options(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        """System check messages for this backend's ``OPTIONS`` (unknown keys: done already)."""
        return []

    @classmethod
    def check_managed_options(
        cls, alias: str, options: Mapping[str, Any]
    ) -> list[checks.CheckMessage]:
        """Errors (``E045``) for ``OPTIONS`` a destination managed in the admin may not have,
        found without importing or calling anything the options name.

        By default, any of :attr:`settings_only_option_keys`. A backend whose options can
        name code some other way adds to it.
        """
        return [
            error(
                45,
                "names code, and may be set in settings only, not in the admin.",
                alias=alias,
                keys=("OPTIONS", key),
                hint="Define this destination in WAGTAIL_PUBLISH_HOOKS['DESTINATIONS'] to use it.",
            )
            for key in sorted(cls.settings_only_option_keys)
            if key in options
        ]

    def deliver(self, delivery: Delivery) -> HttpResult | None:
        """Send one delivery.

        Return normally on success (optionally an :class:`~wagtail_publish_hooks.http.HttpResult`
        to record). Raise :class:`~wagtail_publish_hooks.exceptions.DeliveryError` to record a
        failure: ``retryable`` decides between another attempt and failing now. Any other
        exception counts as a retryable failure.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement deliver()")

    def describe(self) -> str:
        """A short, secret-free description of where this destination sends to."""
        return type(self).__name__

    def longest_send_seconds(self) -> float | None:
        """The longest one :meth:`deliver` can take, when the backend can promise it (its one
        request's deadline); ``None`` when it cannot say. The worker confirms its claim in
        the database before each send, but may skip that when the claim has longer than this
        to run."""
        return None


def check_callables_by_model(
    number: int,
    alias: str,
    options: Mapping[str, Any],
    key: str,
    *,
    page_models: bool = False,
    single_path: bool = False,
) -> list[checks.CheckMessage]:
    """Error ``number`` unless ``OPTIONS[key]`` maps model labels (or ``"*"``, for the rest) to
    dotted paths of callables, each importable. With ``page_models``, each label must be a page
    model's; with ``single_path``, one dotted path (for every model) is accepted too."""
    value = options.get(key)
    if value is None:
        return []
    keys = ("OPTIONS", key)
    what = "page model" if page_models else "model"
    paths: dict[Any, Any]
    if single_path and isinstance(value, str):
        paths = {None: value}
    elif isinstance(value, Mapping):
        paths = dict(value)
    else:
        shape = (
            "must be the dotted path of a callable, or a dict of model labels to such paths."
            if single_path
            else f"must be a dict of {what} labels (or '*') to dotted paths of callables."
        )
        return [error(number, shape, alias=alias, keys=keys)]
    messages: list[checks.CheckMessage] = []
    for label, path in paths.items():
        where = keys if label is None else (*keys, str(label))
        if label is not None and label != "*":
            if not isinstance(label, str):
                messages.append(
                    error(number, f"keys must be {what} labels.", alias=alias, keys=keys)
                )
                continue
            if not _is_installed_model(label, page_models=page_models):
                hint = (
                    "Use a label such as 'blog.BlogPage', or '*' for every page."
                    if page_models
                    else "Use a model label such as 'blog.BlogPage', or '*'."
                )
                messages.append(
                    error(
                        number,
                        f"{label!r} is not an installed {what}.",
                        alias=alias,
                        keys=where,
                        hint=hint,
                    )
                )
                continue
        messages += check_callable_path(number, path, alias=alias, keys=where)
    return messages


def _is_installed_model(label: str, *, page_models: bool) -> bool:
    from django.apps import apps

    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return False
    if not page_models:
        return True
    from wagtail.models import Page

    return issubclass(model, Page)
