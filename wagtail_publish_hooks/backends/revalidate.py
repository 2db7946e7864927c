"""On-demand revalidation of a headless frontend (Next.js and alike): paths and tags."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.apps import apps
from django.core import checks
from django.utils.module_loading import import_string

from ..encoding import encode_json
from ..events import MEDIA_DELETED_TYPES, MEDIA_EVENT_TYPES, media_subject, page_urls
from ..exceptions import DeliveryError
from ..http.responses import RESPONSE_EXCERPT_BYTES, HttpResult, error_for
from ..includes import CAPTURED
from ..purge import PurgeSet
from ..redaction import REDACTED, describe_url
from ..validation import check_url_option, error, warning
from .base import check_callables_by_model
from .http import COMMON_OPTION_KEYS, HttpBackend, rephrased

if TYPE_CHECKING:
    from ..models import Delivery, Event

DEFAULT_SECRET_HEADER = "x-revalidate-secret"  # noqa: S105 -- a header name
#: The key of ``URL`` (as a dict) for sites not named in it.
ANY_SITE = "*"

TagsCallable = Callable[[dict[str, Any]], Iterable[str]]


def _host_keys(url: str) -> tuple[str, ...]:
    """The keys a page URL may be filed under in a ``URL`` dict: ``host:port``, then ``host``."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return ()
    if not host:
        return ()
    return (f"{host}:{port}", host) if port else (host,)


def url_to_path(url: str) -> str | None:
    """The path of a page URL (``/news/hello/``); relative URLs are paths already."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    return path or "/"


def event_urls(payload: Mapping[str, Any]) -> list[str]:
    """Every URL an event makes stale: a page's URLs, and a moved page's old and new ones."""
    data = payload.get("data") or {}
    urls: list[str] = []
    page = data.get("page")
    if isinstance(page, Mapping):
        urls += [u for u in page.get("urls") or () if isinstance(u, str)]
        if isinstance(page.get("url"), str):
            urls.append(page["url"])
    moved = data.get("moved")
    if isinstance(moved, Mapping):
        for key in ("urls_before", "urls_after"):
            urls += [u for u in moved.get(key) or () if isinstance(u, str)]
    return list(dict.fromkeys(urls))


def event_model_label(payload: Mapping[str, Any]) -> str | None:
    data = payload.get("data") or {}
    for key in ("page", "object"):
        value = data.get(key)
        if isinstance(value, Mapping) and isinstance(value.get("type"), str):
            return value["type"]
    return None


def _model_labels(label: str) -> list[str]:
    """``label`` and the labels of the concrete models it inherits from, nearest first."""
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return [label.lower()]
    labels = [
        klass._meta.label_lower
        for klass in model.__mro__
        if hasattr(klass, "_meta") and not klass._meta.abstract
    ]
    return list(dict.fromkeys(labels))


@dataclass
class Request:
    """What goes to one endpoint."""

    url: str
    paths: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    events: list[str] = field(default_factory=list)

    def add_event(self, event_id: str) -> None:
        if event_id not in self.events:
            self.events.append(event_id)

    def body(self) -> dict[str, Any]:
        return {"paths": sorted(self.paths), "tags": sorted(self.tags), "events": self.events}


class RevalidateBackend(HttpBackend):
    """POSTs the paths (and cache tags) that a merging window's events made stale.

    ``OPTIONS``: ``URL`` (required: the frontend's revalidation endpoint; or a dict of site
    host names to endpoints, ``"*"`` for the rest), ``SECRET`` (sent in the header
    ``SECRET_HEADER``, default ``x-revalidate-secret``), ``TAGS`` (a dotted path to a callable
    that returns cache tags for an event, or a dict of model labels to such paths),
    ``TIMEOUT`` (default 15), ``CONNECT_TIMEOUT`` (default 5) and ``COALESCE_SECONDS``
    (default 30).
    """

    display_name = "Frontend revalidation"
    # Callables are imported from these paths: settings only.
    settings_only_option_keys = frozenset({"TAGS"})

    supports_coalescing = True
    # An alias page has URLs of its own, which are stale too.
    exclude_aliases_by_default = False
    option_keys = COMMON_OPTION_KEYS | {"SECRET", "SECRET_HEADER", "TAGS"}
    secret_option_keys = frozenset({"SECRET"})

    def __init__(self, *, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias=alias, options=options)
        url = options.get("URL", "")
        if isinstance(url, Mapping):
            self.endpoints: dict[str, str] = {str(k).lower(): str(v) for k, v in url.items()}
        else:
            self.endpoints = {ANY_SITE: str(url)}
        self.secret: str | None = options.get("SECRET") or None
        self.secret_header: str = options.get("SECRET_HEADER") or DEFAULT_SECRET_HEADER
        self.tags_option: Any = options.get("TAGS")
        self._tag_callables: dict[str, TagsCallable] = {}

    # -- checks ----------------------------------------------------------------------------------

    @classmethod
    def check_service_options(
        cls, alias: str, options: Mapping[str, Any]
    ) -> list[checks.CheckMessage]:
        messages = cls._check_secret(alias, options)
        messages += check_callables_by_model(35, alias, options, "TAGS", single_path=True)
        return messages

    @classmethod
    def check_url(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        """``URL`` is a URL, or a dict of site host names (or ``"*"``) to URLs."""
        value = options.get("URL")
        if not isinstance(value, Mapping):
            return super().check_url(alias, options)
        keys = ("OPTIONS", "URL")
        if not value:
            return [error(34, "is an empty dict: no site has an endpoint.", alias=alias, keys=keys)]
        messages: list[checks.CheckMessage] = []
        for host, url in value.items():
            if not isinstance(host, str) or not host.strip() or "/" in host:
                messages.append(
                    error(
                        34,
                        f"{host!r} is not a site host name (such as 'www.example.com'), nor '*'.",
                        alias=alias,
                        keys=keys,
                    )
                )
                continue
            # The URL helpers name OPTIONS[<key>]; name OPTIONS['URL'][<host>] instead.
            for message in check_url_option(alias, {host: url}, host):
                message.msg = message.msg.replace(
                    f"['OPTIONS'][{host!r}]", f"['OPTIONS']['URL'][{host!r}]", 1
                )
                messages.append(message)
        return messages

    @staticmethod
    def _check_secret(alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        messages: list[checks.CheckMessage] = []
        secret = options.get("SECRET")
        if secret is None:
            messages.append(
                warning(
                    8,
                    "is not set: the frontend cannot tell these requests from anybody's, "
                    "and anybody could make it revalidate.",
                    alias=alias,
                    keys=("OPTIONS", "SECRET"),
                    hint="Set the same random string here and in the frontend's environment.",
                )
            )
        elif not isinstance(secret, str) or not secret or "\n" in secret or "\r" in secret:
            messages.append(
                error(
                    36,
                    "must be a non-empty string on one line.",
                    alias=alias,
                    keys=("OPTIONS", "SECRET"),
                )
            )
        header = options.get("SECRET_HEADER")
        if header is not None and (
            not isinstance(header, str)
            or not header
            or not all(
                33 <= ord(char) < 127 and char not in '()<>@,;:\\"/[]?={}' for char in header
            )
        ):
            messages.append(
                error(
                    36,
                    "must be an HTTP header name, such as 'x-revalidate-secret'.",
                    alias=alias,
                    keys=("OPTIONS", "SECRET_HEADER"),
                )
            )
        return messages

    # -- building the requests -------------------------------------------------------------------

    def describe(self) -> str:
        if set(self.endpoints) == {ANY_SITE}:
            return f"Revalidation at {describe_url(self.endpoints[ANY_SITE])}"
        sites = ", ".join(
            f"{host} → {describe_url(url)}" for host, url in sorted(self.endpoints.items())
        )
        return f"Revalidation per site: {sites}"

    def _tags_callable(self, label: str | None) -> TagsCallable | None:
        option = self.tags_option
        if not option:
            return None
        if isinstance(option, str):
            path: str | None = option
        else:
            table = {str(k).lower(): v for k, v in option.items()}
            path = None
            for candidate in _model_labels(label) if label else []:
                if candidate in table:
                    path = table[candidate]
                    break
            else:
                path = table.get(ANY_SITE)
        if not path:
            return None
        if path not in self._tag_callables:
            self._tag_callables[path] = import_string(path)
        return self._tag_callables[path]

    def tags_for(self, payload: dict[str, Any]) -> set[str]:
        function = self._tags_callable(event_model_label(payload))
        if function is None:
            return set()
        tags = function(payload) or ()
        if isinstance(tags, str):
            tags = [tags]
        return {str(tag) for tag in tags if str(tag)}

    def capture(self, event_type: str, instance: Any) -> dict[str, Any] | None:
        """For an image or a document being deleted: the URLs of the pages that use it, while
        its references exist."""
        if event_type not in MEDIA_DELETED_TYPES or instance is None:
            return None
        pages = PurgeSet(ancestors=0).pages_referencing(type(instance), instance.pk)
        return {"urls": [url for page in pages for url in page_urls(page)]}

    def media_page_urls(self, event: Event) -> list[str]:
        """For an image or document event, the URLs of the live pages that use it: looked up
        now for a change, captured with the event for a deletion."""
        if event.event_type not in MEDIA_EVENT_TYPES:
            return []
        captured = (event.included_data or {}).get(CAPTURED, {}).get(self.alias)
        if isinstance(captured, Mapping):
            return [url for url in captured.get("urls") or () if isinstance(url, str)]
        media = media_subject(event.payload.get("data") or {})
        if media is None:
            return []
        return [url for page in PurgeSet(ancestors=0).pages_using(media) for url in page_urls(page)]

    def endpoint_for(self, url: str) -> str | None:
        for key in _host_keys(url):
            if key in self.endpoints:
                return self.endpoints[key]
        return self.endpoints.get(ANY_SITE)

    def build_requests(self, events: list[Event]) -> list[Request]:
        """One request per endpoint that has something to revalidate, in ``URL`` order."""
        requests = {url: Request(url) for url in dict.fromkeys(self.endpoints.values())}
        for event in events:
            payload = event.payload
            if event.event_type == "publish_hooks.test":
                for request in requests.values():
                    request.add_event(event.event_id)
                continue
            tags = self.tags_for(payload)
            targets: set[str] = set()
            for url in event_urls(payload) + self.media_page_urls(event):
                endpoint = self.endpoint_for(url)
                path = url_to_path(url)
                if endpoint is None or path is None:
                    continue
                requests[endpoint].paths.add(path)
                targets.add(endpoint)
            if tags and not targets:
                # Nothing ties the event to a site (a snippet): every frontend gets its tags.
                targets = set(requests)
            for endpoint in targets:
                requests[endpoint].tags |= tags
                requests[endpoint].add_event(event.event_id)
        return [request for request in requests.values() if request.events]

    # -- sending ---------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers[self.secret_header] = self.secret
        return headers

    def _redact(self, recorded: dict[str, str]) -> dict[str, str]:
        """Hide the secret whatever its header is called (``http`` hides only usual names)."""
        return {
            name: (REDACTED if name.lower() == self.secret_header.lower() else value)
            for name, value in recorded.items()
        }

    def translate_error(self, exc: DeliveryError) -> DeliveryError:
        exc.request_headers = self._redact(exc.request_headers)
        message = exc.message
        if exc.status_code in (401, 403):
            message += ": the frontend refused the secret (check SECRET and SECRET_HEADER)"
        elif exc.status_code == 404:
            message += ": no revalidation endpoint at this URL"
        return rephrased(exc, message)

    def send_request(self, request: Request) -> HttpResult:
        """POST one endpoint's paths and tags."""
        try:
            result = self.send(encode_json(request.body()), self._headers(), url=request.url)
        except DeliveryError as exc:
            if len(self.endpoints) > 1:
                raise rephrased(exc, f"{describe_url(request.url)}: {exc.message}") from None
            raise
        result.request_headers = self._redact(result.request_headers)
        try:
            answer = json.loads(result.response_body)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("revalidated") is False:
            raise error_for(
                result,
                f"HTTP {result.status_code}: the frontend answered revalidated: false",
                retryable=True,
            )
        return result

    def deliver(self, delivery: Delivery) -> HttpResult | None:
        requests = self.build_requests(delivery.covered_events())
        if not requests:
            return None  # nothing with a URL or a tag: nothing to revalidate
        results = [self.send_request(request) for request in requests]
        if len(results) == 1:
            return results[0]
        # Several endpoints: record each answer, each under its endpoint.
        body = "\n".join(
            f"{describe_url(request.url)} HTTP {result.status_code}: {result.response_body}"
            for request, result in zip(requests, results, strict=True)
        )
        if len(body) > RESPONSE_EXCERPT_BYTES:
            body = body[:RESPONSE_EXCERPT_BYTES] + "…"
        last = results[-1]
        return HttpResult(
            status_code=last.status_code,
            response_headers=last.response_headers,
            response_body=body,
            request_headers=last.request_headers,
            duration_ms=sum(result.duration_ms for result in results),
            extra={"endpoints": len(results)},
        )
