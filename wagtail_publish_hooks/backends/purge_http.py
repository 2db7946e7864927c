"""Wagtail's purge backends as a destination runs them: HTTP purges (Varnish, nginx, Fastly's
PURGE...) through the package's own HTTP session, the others with the failures they log collected.

Wagtail's ``HTTPBackend`` sends ``PURGE`` with ``urllib.request.urlopen``: no address check, no
pinning, proxies from the environment, no timeout, and error text that tells a reader whether
a port is open. :class:`PinnedPurgeBackend` speaks the same protocol (``PURGE`` to the cache's
``LOCATION``, the page URL's path and query kept, its host, with its port, in the ``Host``
header) through :func:`wagtail_publish_hooks.http.send_request`: the destination's address
policy, a pinned connection, one deadline per request, no environment proxies, and errors that
say no more than "refused" for a target outside the policy.

:func:`purge_backends` puts it in place of every ``HTTPBackend`` (and of every subclass that
keeps its ``purge()``). Wagtail's clients of vendor APIs with fixed public hosts (Cloudflare,
CloudFront, Azure) keep their own code. Any other purge backend is the operator's code: it runs
as it is for a destination of the settings, and is refused for one managed in the admin.

Wagtail's own classes log a failure on the ``wagtail.frontendcache`` logger (or the root logger)
and return; :func:`collect_failures` gathers what they log at ``ERROR`` or above in this thread
while they run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..exceptions import DeliveryError, UnsafeDestination
from ..http.addresses import AddressPolicy, address_policy
from ..http.transport import send_request
from ..limits import OPTION_LIMITS

#: A purge request's deadline when the destination sets no ``TIMEOUT``, in seconds.
DEFAULT_PURGE_TIMEOUT = 15.0
#: The logger Wagtail's purge backends report failures on.
WAGTAIL_LOGGER = "wagtail.frontendcache"
#: How long each recorded failure message may be.
MAX_ERROR_LENGTH = 300

#: Wagtail's purge backends that talk to a vendor's API on fixed public hosts: kept as they
#: are, for destinations managed in the admin too (exactly these classes, not subclasses).
VENDOR_BACKENDS = frozenset(
    {
        "wagtail.contrib.frontend_cache.backends.cloudflare.CloudflareBackend",
        "wagtail.contrib.frontend_cache.backends.cloudfront.CloudfrontBackend",
        "wagtail.contrib.frontend_cache.backends.azure.AzureCdnBackend",
        "wagtail.contrib.frontend_cache.backends.azure.AzureFrontDoorBackend",
    }
)


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def purge_timeout(options: Mapping[str, Any]) -> float:
    """The destination's ``TIMEOUT`` if it is a usable number of seconds, else the default."""
    value = options.get("TIMEOUT", DEFAULT_PURGE_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DEFAULT_PURGE_TIMEOUT
    if not math.isfinite(value) or value <= 0:
        return DEFAULT_PURGE_TIMEOUT
    return float(value)


@dataclass(frozen=True)
class PurgeFailure:
    url: str
    message: str
    #: Another attempt cannot help (the target is refused): the delivery fails at once.
    final: bool = False


def speaks_http_purge(backend: Any) -> bool:
    """Whether ``backend`` is an ``HTTPBackend`` whose purging is ``HTTPBackend``'s own, so
    that :class:`PinnedPurgeBackend` can send exactly what it would."""
    from wagtail.contrib.frontend_cache.backends.base import BaseBackend as WagtailBaseBackend
    from wagtail.contrib.frontend_cache.backends.http import HTTPBackend

    cls = type(backend)
    return (
        isinstance(backend, HTTPBackend)
        and cls.purge is HTTPBackend.purge
        and cls.purge_batch is WagtailBaseBackend.purge_batch
        and isinstance(getattr(backend, "cache_scheme", None), str)
        and isinstance(getattr(backend, "cache_netloc", None), str)
    )


class PinnedPurgeBackend:
    """Stands in for an ``HTTPBackend``: the same cache, host names and requests, sent through
    the package's pinned, time-limited session."""

    def __init__(self, original: Any, *, timeout: float, policy: AddressPolicy) -> None:
        self.hostnames = original.hostnames
        self.cache_scheme: str = original.cache_scheme
        self.cache_netloc: str = original.cache_netloc
        self.timeout = timeout
        self.policy = policy
        self.replaces = type(original).__name__

    def invalidates_hostname(self, hostname: str) -> bool:
        from django.http.request import validate_host

        return validate_host(hostname, self.hostnames)

    def request_for(self, url: str) -> tuple[str, str]:
        """The purge request's URL and ``Host`` header for a page URL, as ``HTTPBackend``
        builds them."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        location = urlunsplit((self.cache_scheme, self.cache_netloc, parts.path, parts.query, ""))
        return location, host

    def purge_all(self, urls: list[str]) -> list[PurgeFailure]:
        """Purge ``urls`` one request each; the failures. Once the cache's address is refused,
        nothing more is sent (every request of the batch would be refused alike)."""
        failures: list[PurgeFailure] = []
        with address_policy(self.policy):
            for index, url in enumerate(urls):
                location, host = self.request_for(url)
                try:
                    send_request("PURGE", location, headers={"Host": host}, timeout=self.timeout)
                except UnsafeDestination as exc:
                    failures += [PurgeFailure(u, exc.message, final=True) for u in urls[index:]]
                    break
                except DeliveryError as exc:
                    failures.append(PurgeFailure(url, exc.message))
        return failures


class RefusedPurgeBackend:
    """Stands in for a purge backend that a destination managed in the admin may not use:
    every purge through it fails, and says why."""

    def __init__(self, original: Any, *, reason: str) -> None:
        self.hostnames = getattr(original, "hostnames", ["*"])
        self.replaces = type(original).__name__
        self.reason = reason

    def invalidates_hostname(self, hostname: str) -> bool:
        from django.http.request import validate_host

        return validate_host(hostname, self.hostnames)

    def purge_all(self, urls: list[str]) -> list[PurgeFailure]:
        return [PurgeFailure(url, self.reason, final=True) for url in urls]


def purge_backends(
    backends: Mapping[str, Any], *, policy: AddressPolicy, timeout: float
) -> dict[str, Any]:
    """Wagtail's purge backends, each ``HTTPBackend`` replaced by a :class:`PinnedPurgeBackend`.

    For a destination managed in the admin (``policy.managed``), a backend that is neither
    replaceable nor one of Wagtail's vendor clients is replaced by a :class:`RefusedPurgeBackend`:
    its requests could not be held to the address policy.
    """
    replaced: dict[str, Any] = {}
    for name, backend in backends.items():
        if speaks_http_purge(backend):
            replaced[name] = PinnedPurgeBackend(backend, timeout=timeout, policy=policy)
        elif policy.managed and class_path(type(backend)) not in VENDOR_BACKENDS:
            replaced[name] = RefusedPurgeBackend(
                backend,
                reason=(
                    f"refused: purge backend {name!r} ({type(backend).__name__}) runs code of its "
                    "own whose requests cannot be held to the address policy, so destinations "
                    "managed in the admin may not use it"
                ),
            )
        else:
            replaced[name] = backend
    return replaced


def batch_size_of(wagtail_backend: Any, option: Any, name: str) -> int | None:
    """URLs per ``purge_batch()`` call: ``BATCH_SIZE``, else the backend's own limit."""
    if isinstance(option, Mapping):
        option = option.get(name)
    if isinstance(option, int) and not isinstance(option, bool) and option > 0:
        return min(option, int(OPTION_LIMITS["BATCH_SIZE"].maximum))
    limit = getattr(wagtail_backend, "CHUNK_SIZE", None)
    return limit if isinstance(limit, int) and limit > 0 else None


def chunks(urls: list[str], size: int | None) -> list[list[str]]:
    if not size:
        return [urls] if urls else []
    return [urls[i : i + size] for i in range(0, len(urls), size)]


class FailureCollector(logging.Handler):
    """Keeps the error records logged in one thread while Wagtail's backends run."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.thread = threading.get_ident()
        self.records: list[logging.LogRecord] = []
        self._seen: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or id(record) in self._seen:
            return
        self._seen.add(id(record))
        self.records.append(record)

    def messages(self) -> list[str]:
        found = []
        for record in self.records:
            try:
                text = record.getMessage()
            except Exception:
                text = str(record.msg)
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                text += f" ({type(exc).__name__})"
            found.append(" ".join(text.split())[:MAX_ERROR_LENGTH])
        return found

    def failed_urls(self, urls: list[str]) -> list[str]:
        """The URLs named by the records (Wagtail's messages pass the URL as an argument)."""
        batch = set(urls)
        failed = []
        for record in self.records:
            args = record.args if isinstance(record.args, tuple) else ()
            failed += [arg for arg in args if isinstance(arg, str) and arg in batch]
        return list(dict.fromkeys(failed))


@contextlib.contextmanager
def collect_failures() -> Iterator[FailureCollector]:
    """Collect what Wagtail's purge backends log at ``ERROR`` in this thread meanwhile."""
    collector = FailureCollector()
    loggers = [logging.getLogger(WAGTAIL_LOGGER), logging.getLogger()]
    for target in loggers:
        target.addHandler(collector)
    try:
        yield collector
    finally:
        for target in loggers:
            target.removeHandler(collector)
