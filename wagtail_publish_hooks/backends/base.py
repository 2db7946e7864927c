"""The contract every destination backend keeps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from django.core import checks

from .. import limits

if TYPE_CHECKING:
    from ..http import HttpResult
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

    def coalesce_seconds(self) -> float:
        """The merging window of this destination, in seconds; 0 when it does not merge.

        Raises :class:`~wagtail_publish_hooks.limits.OutOfLimits` for a ``COALESCE_SECONDS``
        outside its bounds: the event is then recorded for this destination as a failed
        delivery naming the option.
        """
        if not self.supports_coalescing:
            return 0.0
        default = self.default_coalesce_seconds
        return float(limits.option_number(self.options, "COALESCE_SECONDS", default))

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
        from ..checks import error

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
