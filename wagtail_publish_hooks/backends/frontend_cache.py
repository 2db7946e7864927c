"""Frontend-cache purging through the backends of ``wagtail.contrib.frontend_cache``.

``PURGE`` requests to a cache (what Wagtail's ``HTTPBackend`` sends to Varnish and alike) are
sent by the package's own transport (:mod:`.purge_http`), held to the destination's address
policy like every other request. Vendor APIs are called by Wagtail's own classes
(``CloudflareBackend``, ``CloudfrontBackend``, the Azure ones, or, for a destination of the
settings, any other) through ``purge_batch()``. Those classes log a failure on the
``wagtail.frontendcache`` logger (or the root logger) and return; so while they run, the
records they log at ``ERROR`` or above in this thread are collected, and any makes the attempt
fail and be retried.
"""

from __future__ import annotations

import logging
import sys
import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

from ..events import MEDIA_DELETED_TYPES, PAGE_DELETED, TEST
from ..exceptions import DeliveryError
from ..http.addresses import delivery_policy
from ..http.responses import HttpResult
from ..limits import NOT_FINITE, OPTION_LIMITS, TOO_HIGH, OutOfLimits, option_number, parse_number
from ..purge import PurgeSet, language_variants, resolve_extra_urls
from ..validation import check_positive_number, error, warning
from .base import BaseBackend, check_callables_by_model
from .purge_http import (
    MAX_ERROR_LENGTH,
    PinnedPurgeBackend,
    RefusedPurgeBackend,
    batch_size_of,
    chunks,
    collect_failures,
    purge_backends,
    purge_timeout,
)

if TYPE_CHECKING:
    from ..models import Delivery

logger = logging.getLogger("wagtail_publish_hooks")

DEFAULT_PURGE_ANCESTORS = 1
#: How many failure messages an attempt records at most.
MAX_ERRORS = 20
#: How many URLs an attempt's record lists at most (the count is always exact).
MAX_RECORDED_URLS = 1000


def wagtail_signal_handlers_connected() -> bool:
    """Whether ``wagtail.contrib.frontend_cache`` purges on publish by itself as well.

    Its handlers are connected per page model by its app's ``ready()``; whoever connects them,
    they can only be connected once their module is imported.
    """
    handlers = sys.modules.get("wagtail.contrib.frontend_cache.signal_handlers")
    if handlers is None:
        return False
    from wagtail.signals import page_published, page_unpublished

    wagtail_handlers = {
        getattr(handlers, "page_published_signal_handler", None),
        getattr(handlers, "page_unpublished_signal_handler", None),
    } - {None}
    for signal in (page_published, page_unpublished):
        for entry in signal.receivers:
            receiver = entry[1]
            if isinstance(receiver, weakref.ReferenceType):
                receiver = receiver()
            if receiver in wagtail_handlers:
                return True
    return False


class FrontendCacheBackend(BaseBackend):
    """Purges everything a merging window's events made stale, through Wagtail's backends.

    ``OPTIONS``: ``BACKENDS`` (a dict shaped like ``WAGTAILFRONTENDCACHE``, or a list of names
    in it; by default all of ``WAGTAILFRONTENDCACHE``), ``PURGE_ANCESTORS`` (levels of pages
    above a page purged with it, default 1), ``PURGE_REFERENCING_PAGES`` (default ``True``),
    ``EXTRA_URLS`` (model labels, or ``"*"``, to dotted paths of callables returning more URLs
    for a page), ``BATCH_SIZE`` (URLs per purge request, an int or a dict per Wagtail backend
    name; by default the backend's own limit) and ``COALESCE_SECONDS`` (default 5).
    """

    display_name = "Frontend cache"
    # Callables are imported from these paths: settings only.
    settings_only_option_keys = frozenset({"EXTRA_URLS"})
    # Where purges go is the operator's WAGTAILFRONTENDCACHE, named, never given here.
    target_option_keys = frozenset()

    supports_coalescing = True
    default_coalesce_seconds = 5
    # An alias page has URLs of its own, which are stale too.
    exclude_aliases_by_default = False
    option_keys = frozenset(
        {
            "BACKENDS",
            "PURGE_ANCESTORS",
            "PURGE_REFERENCING_PAGES",
            "EXTRA_URLS",
            "BATCH_SIZE",
            # The deadline of each HTTP purge request, in seconds (default 15).
            "TIMEOUT",
        }
    )

    def __init__(self, *, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias=alias, options=options)
        self.backends_option: Any = options.get("BACKENDS")
        self.ancestors = int(option_number(options, "PURGE_ANCESTORS", DEFAULT_PURGE_ANCESTORS))
        self.referencing = bool(options.get("PURGE_REFERENCING_PAGES", True))
        self.extra_urls_option: Any = options.get("EXTRA_URLS")
        self.batch_size_option: Any = options.get("BATCH_SIZE")
        for size in (
            self.batch_size_option.values()
            if isinstance(self.batch_size_option, Mapping)
            else [self.batch_size_option]
        ):
            if size is not None:
                parse_number("BATCH_SIZE", size, OPTION_LIMITS["BATCH_SIZE"])

    # -- checks ----------------------------------------------------------------------------------

    @classmethod
    def check_options(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        messages = cls._check_backends(alias, options)
        messages += check_positive_number(
            alias, options, "PURGE_ANCESTORS", integer=True, allow_zero=True
        )
        if "PURGE_REFERENCING_PAGES" in options and not isinstance(
            options["PURGE_REFERENCING_PAGES"], bool
        ):
            messages.append(
                error(
                    39,
                    "must be True or False.",
                    alias=alias,
                    keys=("OPTIONS", "PURGE_REFERENCING_PAGES"),
                )
            )
        messages += cls._check_batch_size(alias, options)
        messages += check_callables_by_model(40, alias, options, "EXTRA_URLS", page_models=True)
        if wagtail_signal_handlers_connected():
            messages.append(
                warning(
                    9,
                    "wagtail.contrib.frontend_cache is installed and its signal handlers purge "
                    "on every publish and unpublish too: pages would be purged twice, once "
                    "inside the publish (before commit) and once by this destination.",
                    alias=alias,
                    keys=("BACKEND",),
                    hint="Remove 'wagtail.contrib.frontend_cache' from INSTALLED_APPS (its "
                    "backends work without it), or disconnect its handlers. See the how-to "
                    "'Migrate from wagtail.contrib.frontend_cache'.",
                )
            )
        return messages

    @classmethod
    def check_managed_options(
        cls, alias: str, options: Mapping[str, Any]
    ) -> list[checks.CheckMessage]:
        """In the admin, ``BACKENDS`` names backends of ``WAGTAILFRONTENDCACHE``: a dict
        would name classes that Wagtail imports and calls."""
        messages = super().check_managed_options(alias, options)
        value = options.get("BACKENDS")
        if value is not None and not (
            isinstance(value, list) and all(isinstance(name, str) for name in value)
        ):
            messages.append(
                error(
                    45,
                    "must be a list of names of backends in WAGTAILFRONTENDCACHE for a "
                    "destination managed in the admin; backend classes and their settings are "
                    "given in settings only.",
                    alias=alias,
                    keys=("OPTIONS", "BACKENDS"),
                    hint='For example ["varnish"], or leave BACKENDS out to use them all.',
                )
            )
        return messages

    @staticmethod
    def _check_backends(alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        from wagtail.contrib.frontend_cache.utils import get_backends

        keys = ("OPTIONS", "BACKENDS")
        value = options.get("BACKENDS")
        configured = getattr(settings, "WAGTAILFRONTENDCACHE", None)
        if value is None:
            if not configured and not getattr(settings, "WAGTAILFRONTENDCACHE_LOCATION", None):
                return [
                    error(
                        38,
                        "is not set, and neither is WAGTAILFRONTENDCACHE: nothing would be purged.",
                        alias=alias,
                        keys=keys,
                        hint="Set BACKENDS to a dict shaped like WAGTAILFRONTENDCACHE, such as "
                        "{'varnish': {'BACKEND': "
                        "'wagtail.contrib.frontend_cache.backends.HTTPBackend', "
                        "'LOCATION': 'http://127.0.0.1:6081'}}.",
                    )
                ]
            value_settings = None
        elif isinstance(value, list | tuple):
            if not value or not all(isinstance(name, str) for name in value):
                return [error(41, "must be a non-empty list of names.", alias=alias, keys=keys)]
            known = configured if isinstance(configured, Mapping) else {}
            missing = [name for name in value if name not in known]
            if missing:
                return [
                    error(
                        41,
                        f"{', '.join(map(repr, missing))} is not a backend of "
                        "WAGTAILFRONTENDCACHE.",
                        alias=alias,
                        keys=keys,
                        hint=f"Known: {', '.join(map(repr, known)) or 'none'}.",
                    )
                ]
            return []
        elif isinstance(value, Mapping):
            if not value:
                return [
                    error(38, "is an empty dict: nothing would be purged.", alias=alias, keys=keys)
                ]
            bad = [
                str(name)
                for name, config in value.items()
                if not isinstance(config, Mapping) or not isinstance(config.get("BACKEND"), str)
            ]
            if bad:
                return [
                    error(
                        37,
                        f"{', '.join(map(repr, bad))} must be a dict with a 'BACKEND' key, as in "
                        "WAGTAILFRONTENDCACHE.",
                        alias=alias,
                        keys=keys,
                    )
                ]
            value_settings = value
        else:
            return [
                error(
                    37,
                    "must be a dict shaped like WAGTAILFRONTENDCACHE, or a list of names in it.",
                    alias=alias,
                    keys=keys,
                )
            ]
        try:
            get_backends(value_settings)
        except Exception as exc:
            # Wagtail's configuration errors name keys, never their values.
            where = keys if value is not None else ()
            text = " ".join(str(exc).split())[:MAX_ERROR_LENGTH]
            return [
                error(
                    37,
                    f"a frontend cache backend cannot be built: {type(exc).__name__}: {text}",
                    alias=alias,
                    keys=where,
                )
            ]
        return []

    @staticmethod
    def _check_batch_size(alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        if "BATCH_SIZE" not in options:
            return []
        value = options["BATCH_SIZE"]
        keys = ("OPTIONS", "BATCH_SIZE")
        values = list(value.values()) if isinstance(value, Mapping) else [value]
        limit = OPTION_LIMITS["BATCH_SIZE"]
        for size in values:
            try:
                parse_number("BATCH_SIZE", size, limit)
            except OutOfLimits as exc:
                bounds = exc.problem in (NOT_FINITE, TOO_HIGH)
                return [
                    error(
                        48 if bounds else 39,
                        f"must be {limit.describe()}, or a dict of backend names to such "
                        f"integers, not {exc.kind}.",
                        alias=alias,
                        keys=keys,
                    )
                ]
        return []

    # -- the purge set ---------------------------------------------------------------------------

    def describe(self) -> str:
        option = self.backends_option
        if isinstance(option, Mapping | list | tuple):
            names = list(option)
        else:
            names = list(getattr(settings, "WAGTAILFRONTENDCACHE", None) or {})
        return f"Frontend cache purge through {', '.join(map(str, names)) or 'no backend'}"

    def purge_set(self) -> PurgeSet:
        return PurgeSet(
            ancestors=self.ancestors,
            referencing=self.referencing,
            extra_urls=resolve_extra_urls(self.extra_urls_option),
        )

    def capture(self, event_type: str, instance: Any) -> dict[str, Any] | None:
        """For a page being deleted: its purge set, while its rows and references exist; for
        an image or a document being deleted: the URLs of the pages that use it."""
        from wagtail.models import Page

        if event_type in MEDIA_DELETED_TYPES and instance is not None:
            purge_set = self.purge_set()
            pages = purge_set.pages_referencing(type(instance), instance.pk)
            return {"urls": [url for page in pages for url in purge_set.page_urls(page)]}
        if event_type != PAGE_DELETED or not isinstance(instance, Page):
            return None
        return {"urls": self.purge_set().for_page_being_deleted(instance)}

    def urls_for(self, delivery: Delivery) -> tuple[list[str], list[str]]:
        """The de-duplicated purge set of every event the delivery covers, and their ids."""
        from ..includes import CAPTURED

        purge_set = self.purge_set()
        urls: list[str] = []
        event_ids: list[str] = []
        for event in delivery.covered_events():
            event_ids.append(event.event_id)
            if event.event_type == TEST:
                # publish_hooks test: the home page of every site, to try the backends for real.
                urls += [root.root_url + "/" for root in purge_set.root_paths()]
                continue
            captured = (event.included_data or {}).get(CAPTURED, {}).get(self.alias)
            urls += purge_set.for_event(event.event_type, event.payload, captured)
        return language_variants(urls), event_ids

    # -- sending ---------------------------------------------------------------------------------

    def wagtail_backends(self) -> dict[str, Any]:
        """The purge backends of this destination: Wagtail's, built from ``BACKENDS`` (or
        ``WAGTAILFRONTENDCACHE``), with each ``HTTPBackend`` replaced by one that purges through
        the package's pinned session under the destination's address policy (see
        :mod:`~wagtail_publish_hooks.backends.purge_http`)."""
        from wagtail.contrib.frontend_cache.utils import get_backends

        policy = delivery_policy(managed=self.managed)
        option = self.backends_option
        if isinstance(option, Mapping):
            if policy.managed:
                # A dict names classes: a destination managed in the admin picks backends by
                # name from the operator's WAGTAILFRONTENDCACHE, and builds nothing else.
                raise DeliveryError(
                    "refused: a destination managed in the admin names its purge backends from "
                    "WAGTAILFRONTENDCACHE; it cannot define them",
                    retryable=False,
                )
            built = get_backends(dict(option))
        elif isinstance(option, list | tuple):
            built = get_backends(None, backends=list(option))
        else:
            built = get_backends()
        return purge_backends(built, policy=policy, timeout=purge_timeout(self.options))

    def deliver(self, delivery: Delivery) -> HttpResult | None:
        started = time.monotonic()
        urls, event_ids = self.urls_for(delivery)
        try:
            backends = self.wagtail_backends()
        except DeliveryError:
            raise
        except Exception as exc:
            raise DeliveryError(
                f"the frontend cache backends cannot be built: {type(exc).__name__}: {exc}",
                retryable=False,
            ) from None
        detail: dict[str, Any] = {
            "urls": urls[:MAX_RECORDED_URLS],
            "url_count": len(urls),
            "events": len(event_ids),
            "backends": {},
            "batches": 0,
        }
        if not backends:
            raise DeliveryError(
                "no frontend cache backend is configured", retryable=False, detail=detail
            )
        if not urls:
            backends = {}  # nothing stale (a workflow or custom event): no request at all
        errors: list[str] = []
        failed: list[str] = []
        # Whether every error is one another attempt cannot mend (a refused target).
        all_final = True
        for name, backend in backends.items():
            mine = [url for url in urls if backend.invalidates_hostname(urlsplit(url).netloc)]
            batches = chunks(mine, batch_size_of(backend, self.batch_size_option, name))
            record: dict[str, Any] = {
                "class": getattr(backend, "replaces", type(backend).__name__),
                "urls": len(mine),
                "batches": len(batches),
                "errors": 0,
            }
            detail["backends"][name] = record
            detail["batches"] += len(batches)
            for batch in batches:
                if isinstance(backend, PinnedPurgeBackend | RefusedPurgeBackend):
                    failures = backend.purge_all(batch)
                    for failure in failures:
                        message = f"{name}: {failure.message}"
                        if message not in errors:  # a refusal repeats for every URL
                            errors.append(message)
                        all_final = all_final and failure.final
                    failed += [failure.url for failure in failures]
                    record["errors"] += len(failures)
                    continue
                with collect_failures() as collector:
                    try:
                        backend.purge_batch(batch)
                    except Exception as exc:
                        text = " ".join(str(exc).split())[:MAX_ERROR_LENGTH]
                        errors.append(f"{name}: {type(exc).__name__}: {text}")
                        failed += batch
                        all_final = False
                if collector.records:
                    all_final = False
                errors += [f"{name}: {message}" for message in collector.messages()]
                failed += collector.failed_urls(batch)
                record["errors"] += len(collector.records)
        duration_ms = int((time.monotonic() - started) * 1000)
        if errors:
            failed = list(dict.fromkeys(failed))
            detail["failed_urls"] = failed[:MAX_RECORDED_URLS]
            detail["errors"] = errors[:MAX_ERRORS]
            raise DeliveryError(
                f"{len(errors)} purge error(s): {errors[0]}"
                + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
                retryable=not all_final,
                detail=detail,
            )
        logger.info(
            "Publish hooks destination %r purged %d URL(s) in %d batch(es) for %d event(s)",
            self.alias,
            len(urls),
            detail["batches"],
            len(event_ids),
        )
        return HttpResult(
            # Wagtail's backends return nothing: there is no one HTTP status to record.
            status_code=None,
            response_headers={},
            response_body=f"purged {len(urls)} URL(s) in {detail['batches']} batch(es)",
            request_headers={},
            duration_ms=duration_ms,
            extra=detail,
        )
