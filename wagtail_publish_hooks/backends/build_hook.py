"""Static-site builds: Netlify build hooks, Vercel and Cloudflare Pages deploy hooks."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core import checks

from ..encoding import encode_json
from ..exceptions import DeliveryError, DestinationGone
from ..http.responses import HttpResult, error_for
from ..redaction import describe_url
from ..validation import error
from .http import COMMON_OPTION_KEYS, HttpBackend, gone, rephrased

if TYPE_CHECKING:
    from ..models import Delivery, Event

logger = logging.getLogger("wagtail_publish_hooks")

NETLIFY = "netlify"
VERCEL = "vercel"
CLOUDFLARE = "cloudflare"
GENERIC = "generic"
PROVIDERS = (NETLIFY, VERCEL, CLOUDFLARE, GENERIC)
#: The hosts a provider's hook URLs are on, for ``PROVIDER`` left out.
PROVIDER_HOSTS = {
    "api.netlify.com": NETLIFY,
    "api.vercel.com": VERCEL,
    "api.cloudflare.com": CLOUDFLARE,
}
PROVIDER_NAMES = {
    NETLIFY: "Netlify build hook",
    VERCEL: "Vercel deploy hook",
    CLOUDFLARE: "Cloudflare Pages deploy hook",
    GENERIC: "Build hook",
}

#: How long a Netlify ``trigger_title`` may get, in characters.
MAX_TITLE = 200
TITLE_PREFIX = "wagtail-publish-hooks"

#: What an event type reads as in a title: ``3 pages published``.
_TITLE_WORDS = {
    "page.published": ("page", "published"),
    "page.unpublished": ("page", "unpublished"),
    "page.moved": ("page", "moved"),
    "page.deleted": ("page", "deleted"),
    "snippet.published": ("snippet", "published"),
    "snippet.unpublished": ("snippet", "unpublished"),
    "image.changed": ("image", "changed"),
    "image.deleted": ("image", "deleted"),
    "document.changed": ("document", "changed"),
    "document.deleted": ("document", "deleted"),
}


def detect_provider(url: str) -> str:
    """The provider a hook URL belongs to, from its host; ``"generic"`` for any other host."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return GENERIC
    return PROVIDER_HOSTS.get(host, GENERIC)


def build_title(events: list[Event]) -> str:
    """A short account of what the build is for: ``wagtail-publish-hooks: 3 pages published``."""
    counts = Counter(event.event_type for event in events)
    parts = []
    for event_type, count in counts.items():
        if event_type in _TITLE_WORDS:
            noun, verb = _TITLE_WORDS[event_type]
            parts.append(f"{count} {noun}{'s' if count != 1 else ''} {verb}")
        elif event_type == "publish_hooks.test":
            parts.append("test event")
        else:
            parts.append(f"{count} {event_type}")
    title = f"{TITLE_PREFIX}: {', '.join(parts)}"
    if len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 1] + "…"
    return title


def build_body(events: list[Event], title: str) -> dict[str, Any]:
    """The JSON sent along (Netlify exposes it to the build as ``INCOMING_HOOK_BODY``)."""
    return {
        "title": title,
        "events": [event.event_id for event in events],
        "counts": dict(Counter(event.event_type for event in events)),
    }


def with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _error_detail(provider: str, body: str) -> str:
    """The provider's own words about an error, from its JSON body, one line."""
    data = _json(body)
    detail = ""
    if isinstance(data, dict):
        if provider == CLOUDFLARE or "errors" in data:
            detail = _cloudflare_errors(data.get("errors"))
        if not detail and isinstance(data.get("error"), dict):  # Vercel
            error = data["error"]
            detail = str(error.get("message") or "")
            if error.get("code"):
                detail += f" ({error['code']})"
        elif not detail and isinstance(data.get("error"), str):
            detail = data["error"]
        elif not detail and isinstance(data.get("message"), str):
            detail = data["message"]
    return " ".join(detail.split())[:300]


def _cloudflare_errors(errors: Any) -> str:
    if not isinstance(errors, list):
        return ""
    parts = []
    for item in errors:
        if isinstance(item, dict):
            message = str(item.get("message") or "").strip()
            code = item.get("code")
            parts.append(f"{message} (code {code})" if code is not None else message)
        else:
            parts.append(str(item))
    return "; ".join(part for part in parts if part)


def deployment_id(provider: str, body: str) -> str | None:
    """The id of the build or deployment the hook started, where the provider answers one."""
    data = _json(body)
    if not isinstance(data, dict):
        return None
    if provider == VERCEL or isinstance(data.get("job"), dict):
        job = data.get("job")
        if isinstance(job, dict) and job.get("id"):
            return str(job["id"])
    result = data.get("result")
    if isinstance(result, dict) and result.get("id"):
        return str(result["id"])
    if data.get("id") and isinstance(data["id"], str | int):
        return str(data["id"])
    return None


def explain(provider: str, exc: DeliveryError) -> DeliveryError:
    """Apply a provider's rules to an HTTP error: its error message, and a deleted hook."""
    status = exc.status_code
    if status is None or isinstance(exc, DestinationGone):
        return exc
    detail = _error_detail(provider, exc.response_body)
    if status == 404 and provider != GENERIC:
        return gone(
            exc,
            f"HTTP 404: the {PROVIDER_NAMES[provider]} does not exist (deleted or regenerated)"
            f"{f' ({detail})' if detail else ''}; the destination is disabled",
        )
    if detail:
        return rephrased(exc, f"{exc.message}: {detail}")
    return exc


def check_provider(alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """``PROVIDER`` and ``BRANCH`` (errors ``E032`` and ``E033``)."""
    messages: list[checks.CheckMessage] = []
    provider = options.get("PROVIDER")
    if provider is not None and provider not in PROVIDERS:
        messages.append(
            error(
                32,
                f"must be one of {', '.join(map(repr, PROVIDERS))}, not {provider!r}.",
                alias=alias,
                keys=("OPTIONS", "PROVIDER"),
                hint="Leave it out to tell the provider from the URL's host.",
            )
        )
        return messages
    branch = options.get("BRANCH")
    if branch is None:
        return messages
    keys = ("OPTIONS", "BRANCH")
    if not isinstance(branch, str) or not branch.strip():
        messages.append(error(33, "must be a non-empty branch name.", alias=alias, keys=keys))
        return messages
    url = options.get("URL")
    effective = provider or (detect_provider(url) if isinstance(url, str) else GENERIC)
    if effective != NETLIFY:
        messages.append(
            error(
                33,
                "only Netlify build hooks take a branch; a Vercel or Cloudflare Pages hook "
                "always builds the branch it was created for.",
                alias=alias,
                keys=keys,
                hint="Create a hook for the branch in the provider's settings, or set "
                "PROVIDER to 'netlify' if the URL is a Netlify hook behind another host.",
            )
        )
    return messages


class BuildHookBackend(HttpBackend):
    """Triggers a static-site build through a deploy hook, once per merging window.

    ``OPTIONS``: ``URL`` (required: the hook URL, which is its own secret), ``PROVIDER``
    (``"netlify"``, ``"vercel"``, ``"cloudflare"`` or ``"generic"``; by default told from the
    URL's host), ``BRANCH`` (Netlify only: the branch to build), ``TIMEOUT`` (default 15),
    ``CONNECT_TIMEOUT`` (default 5) and ``COALESCE_SECONDS`` (default 30).
    """

    display_name = "Build hook"

    supports_coalescing = True
    # A build rebuilds everything: an alias's event would only repeat its original's.
    exclude_aliases_by_default = True
    option_keys = COMMON_OPTION_KEYS | {"PROVIDER", "BRANCH"}
    # The URL embeds the token that lets anyone post.
    secret_option_keys = frozenset({"URL"})

    def __init__(self, *, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias=alias, options=options)
        self.provider: str = options.get("PROVIDER") or detect_provider(self.url)
        self.branch: str | None = options.get("BRANCH") or None

    @classmethod
    def check_service_options(
        cls, alias: str, options: Mapping[str, Any]
    ) -> list[checks.CheckMessage]:
        return check_provider(alias, options)

    def translate_error(self, exc: DeliveryError) -> DeliveryError:
        return explain(self.provider, exc)

    def describe(self) -> str:
        return f"{PROVIDER_NAMES.get(self.provider, 'Build hook')} at {describe_url(self.url)}"

    def build_request(self, events: list[Event]) -> tuple[str, bytes, dict[str, str]]:
        """The URL (with Netlify's query parameters), the body and the headers of the POST."""
        title = build_title(events)
        url = self.url
        if self.provider == NETLIFY:
            params = {"trigger_title": title}
            if self.branch:
                params["trigger_branch"] = self.branch
            url = with_query(url, params)
        body = encode_json(build_body(events, title))
        return url, body, {"Content-Type": "application/json"}

    def deliver(self, delivery: Delivery) -> HttpResult:
        events = delivery.covered_events()
        url, body, headers = self.build_request(events)
        result = self.send(body, headers, url=url)
        data = _json(result.response_body)
        if self.provider == CLOUDFLARE and isinstance(data, dict) and data.get("success") is False:
            detail = _cloudflare_errors(data.get("errors")) or "no errors given"
            raise error_for(
                result,
                f"HTTP {result.status_code}: Cloudflare answered success: false: {detail}",
                retryable=False,
            )
        started = deployment_id(self.provider, result.response_body)
        result.extra["provider"] = self.provider
        if started:
            result.extra["deployment_id"] = started
        logger.info(
            "Publish hooks destination %r: %s answered HTTP %d%s for %d event(s)",
            self.alias,
            PROVIDER_NAMES.get(self.provider, "build hook"),
            result.status_code,
            f", deployment {started}" if started else "",
            len(events),
        )
        return result
