"""The purge set: every URL a publishing event makes stale in a frontend cache.

For a page event, the set holds the page's URLs on every site whose root contains it, each joined
with the page's ``get_cached_paths()``; for a move or slug change, its old URLs and those of its
descendants as well; the pages above it, to a depth; the live pages that link to it (Wagtail's
``ReferenceIndex``); its alias pages; and whatever the page model (or the ``EXTRA_URLS`` option)
adds, such as feeds and sitemaps. For a snippet event, the pages that use the snippet. For an
image or document event, the media's own URLs (on every site, when they are relative) and the
live pages that use it.

The related pages are fetched with one query per page type, whatever their number, with the
site root paths cached for the whole computation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from django.apps import apps
from django.conf import settings
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.module_loading import import_string

from .events import (
    MEDIA_CHANGED_TYPES,
    MEDIA_EVENT_TYPES,
    PAGE_DELETED,
    PAGE_EVENT_TYPES,
    SNIPPET_PUBLISHED,
    SNIPPET_UNPUBLISHED,
    media_subject,
)

#: The method a page model defines to add URLs of its own to its purge set.
PAGE_HOOK = "get_publish_hooks_purge_urls"
#: The key of ``EXTRA_URLS`` that applies to every page model.
ANY_MODEL = "*"

ExtraUrls = Callable[[Any], Iterable[str]]


def model_labels(model: type) -> list[str]:
    """The lowercase labels of ``model`` and of the concrete models it inherits from."""
    labels = [
        klass._meta.label_lower
        for klass in model.__mro__
        if hasattr(klass, "_meta") and not klass._meta.abstract
    ]
    return list(dict.fromkeys(labels))


def routes_itself(model: type) -> bool:
    """Whether a page model overrides how Wagtail builds its URL (``get_url_parts()``)."""
    from wagtail.models import Page

    return getattr(model, "get_url_parts", None) is not Page.get_url_parts


def ancestor_paths(url_path: str, depth: int) -> list[str]:
    """The ``url_path`` of the ``depth`` pages above ``url_path``, nearest first."""
    parts = [part for part in url_path.split("/") if part]
    paths = []
    for level in range(1, depth + 1):
        if len(parts) - level < 1:
            break
        paths.append("/" + "/".join(parts[: len(parts) - level]) + "/")
    return paths


def language_variants(urls: Iterable[str]) -> list[str]:
    """``urls`` rewritten for every language the frontend cache manages, as Wagtail does.

    The languages are ``WAGTAILFRONTENDCACHE_LANGUAGES``, by default the content languages
    when ``WAGTAIL_I18N_ENABLED``; nothing changes unless ``USE_I18N`` is on. A URL whose path
    starts with one language's prefix (``/en/``) gets one variant per language.
    """
    urls = list(dict.fromkeys(urls))
    if not settings.USE_I18N:
        return urls
    default: list[str] = []
    if getattr(settings, "WAGTAIL_I18N_ENABLED", False):
        from wagtail.coreutils import get_content_languages

        default = list(get_content_languages())
    languages = list(getattr(settings, "WAGTAILFRONTENDCACHE_LANGUAGES", default) or ())
    if not languages:
        return urls
    prefix = re.compile("^/({})/".format("|".join(re.escape(code) for code in languages)))
    variants: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        for code in languages:
            path = prefix.sub(f"/{code}/", parts.path)
            variants.append(urlunsplit(parts._replace(path=path)))
    return list(dict.fromkeys(variants))


class PurgeSet:
    """Computes the URLs to purge, with the site root paths fetched once.

    ``ancestors``: how many levels of pages above a page are purged with it (1: its parent).
    ``referencing``: whether live pages that link to the page or use the snippet are purged.
    ``extra_urls``: model labels (or ``"*"``) to callables that take a page and return URLs.
    """

    def __init__(
        self,
        *,
        ancestors: int = 1,
        referencing: bool = True,
        extra_urls: Mapping[str, ExtraUrls] | None = None,
    ) -> None:
        self.ancestors = ancestors
        self.referencing = referencing
        self.extra_urls = {str(k).lower(): v for k, v in (extra_urls or {}).items()}
        self._root_paths: list[Any] | None = None

    # -- site roots --------------------------------------------------------------------------

    def root_paths(self) -> list[Any]:
        if self._root_paths is None:
            from wagtail.models import Site

            cached = getattr(self, "_wagtail_cached_site_root_paths", None)
            self._root_paths = list(cached if cached is not None else Site.get_site_root_paths())
            # Page.get_url_parts() reads the same list from here: one query (or cache hit).
            self._wagtail_cached_site_root_paths = self._root_paths
        return self._root_paths

    def site_urls(self, url_path: str) -> list[str]:
        """The URL of ``url_path`` on every site (and site language) whose root contains it."""
        i18n = getattr(settings, "WAGTAIL_I18N_ENABLED", False)
        append_slash = getattr(settings, "WAGTAIL_APPEND_SLASH", True)
        urls = []
        for root in self.root_paths():
            if not url_path.startswith(root.root_path):
                continue
            try:
                if i18n and root.language_code:
                    with translation.override(root.language_code):
                        path = reverse("wagtail_serve", args=(url_path[len(root.root_path) :],))
                else:
                    path = reverse("wagtail_serve", args=(url_path[len(root.root_path) :],))
            except NoReverseMatch:
                continue  # Wagtail serves no pages here (headless)
            if not append_slash and path != "/":
                path = path.rstrip("/")
            urls.append(root.root_url + path)
        return list(dict.fromkeys(urls))

    def root_urls_of(self, url_path: str) -> list[str]:
        """The root URLs of the sites whose root contains ``url_path``."""
        roots = [r.root_url for r in self.root_paths() if url_path.startswith(r.root_path)]
        return list(dict.fromkeys(roots))

    # -- one page ----------------------------------------------------------------------------

    def page_urls(self, page: Any, *, url_path: str | None = None) -> list[str]:
        """A page's URLs on every site, each with its cached paths, and its extra URLs.

        ``url_path`` names where the page was (a move); the page's own URL routing is asked
        only for where it is.
        """
        own = url_path is None
        url_path = page.url_path if url_path is None else url_path
        bases = []
        if own and routes_itself(type(page)):
            try:
                full = page.get_full_url(self)  # the model's own get_url_parts()
            except Exception:
                full = None
            if full:
                bases.append(full)
        bases += self.site_urls(url_path)
        try:
            paths = list(page.get_cached_paths()) or ["/"]
        except Exception:
            paths = ["/"]
        urls = [base + path.lstrip("/") for base in dict.fromkeys(bases) for path in paths]
        if own:
            urls += self.extra_urls_of(page)
        return list(dict.fromkeys(urls))

    def extra_urls_of(self, page: Any) -> list[str]:
        """What the page model's hook and ``EXTRA_URLS`` add; paths join each of its sites."""
        found: list[str] = []
        hook = getattr(page, PAGE_HOOK, None)
        if callable(hook):
            found += list(hook() or ())
        for function in self._extra_callables(type(page)):
            found += list(function(page) or ())
        urls: list[str] = []
        for url in found:
            url = str(url)
            if url.startswith("/") and not url.startswith("//"):
                urls += [root.rstrip("/") + url for root in self.root_urls_of(page.url_path)]
            elif url:
                urls.append(url)
        return urls

    def _extra_callables(self, model: type) -> list[ExtraUrls]:
        if not self.extra_urls:
            return []
        functions = [
            self.extra_urls[label] for label in model_labels(model) if label in self.extra_urls
        ]
        if ANY_MODEL in self.extra_urls:
            functions.append(self.extra_urls[ANY_MODEL])
        return functions

    # -- related pages -----------------------------------------------------------------------

    def referencing_page_ids(self, model: type, pk: Any) -> set[int]:
        """The pages whose content refers to the object (``ReferenceIndex``): one query."""
        if not self.referencing:
            return set()
        from django.contrib.contenttypes.models import ContentType
        from wagtail.models import Page, ReferenceIndex

        page_type = ContentType.objects.get_for_model(Page)
        rows = (
            ReferenceIndex.get_references_to(model(pk=pk))
            .filter(base_content_type=page_type)
            .values_list("object_id", flat=True)
        )
        return {int(object_id) for object_id in rows if str(object_id).isdigit()}

    def related_pages(
        self,
        *,
        page_id: int | None = None,
        ancestor_paths: Iterable[str] = (),
        referencing_ids: Iterable[int] = (),
        aliases_of: int | None = None,
    ) -> tuple[Any | None, list[Any]]:
        """The page itself (live or not) and the live related pages, in one query per type."""
        from wagtail.models import Page

        related = Q(live=True) & (
            Q(url_path__in=list(ancestor_paths)) | Q(pk__in=list(referencing_ids))
        )
        if aliases_of is not None:
            related |= Q(live=True, alias_of_id=aliases_of)
        condition = related | Q(pk=page_id) if page_id is not None else related
        pages = list(Page.objects.filter(condition).defer_streamfields().specific())
        own = next((page for page in pages if page.pk == page_id), None)
        others = [page for page in pages if page.pk != page_id]
        return own, others

    # -- events ------------------------------------------------------------------------------

    def for_event(
        self, event_type: str, payload: Mapping[str, Any], captured: Any = None
    ) -> list[str]:
        """The purge set of one event, from its payload (and what was captured with it)."""
        data = payload.get("data") or {}
        urls: list[str] = []
        if isinstance(captured, Mapping):
            urls += [u for u in captured.get("urls") or () if isinstance(u, str)]
        if event_type in PAGE_EVENT_TYPES and isinstance(data.get("page"), Mapping):
            urls += self.for_page_event(event_type, data)
        elif event_type in (SNIPPET_PUBLISHED, SNIPPET_UNPUBLISHED):
            snippet = data.get("snippet")
            if isinstance(snippet, Mapping):
                urls += self.for_snippet(snippet)
        elif event_type in MEDIA_EVENT_TYPES:
            media = media_subject(data)
            if media is not None:
                urls += self.media_urls(media)
                # A deleted media's pages were captured with the event, while its references
                # existed; they are looked up now only if that capture is missing.
                if event_type in MEDIA_CHANGED_TYPES or captured is None:
                    urls += self.for_snippet(media)
        return list(dict.fromkeys(urls))

    def for_page_event(self, event_type: str, data: Mapping[str, Any]) -> list[str]:
        page_data = data["page"]
        page_id = page_data.get("id")
        url_path = page_data.get("url_path") or ""
        urls = [u for u in page_data.get("urls") or () if isinstance(u, str)]
        if isinstance(page_data.get("url"), str):
            urls.append(page_data["url"])
        moved = data.get("moved") if isinstance(data.get("moved"), Mapping) else None
        paths_above = ancestor_paths(url_path, self.ancestors)
        if moved:
            for key in ("urls_before", "urls_after"):
                urls += [u for u in moved.get(key) or () if isinstance(u, str)]
            before = str(moved.get("url_path_before") or "")
            paths_above += ancestor_paths(before, self.ancestors)
        from wagtail.models import Page

        referencing: set[int] = set()
        if isinstance(page_id, int):
            referencing = self.referencing_page_ids(Page, page_id)
        page, related = self.related_pages(
            page_id=page_id if isinstance(page_id, int) else None,
            ancestor_paths=paths_above,
            referencing_ids=referencing,
            aliases_of=page_id if isinstance(page_id, int) else None,
        )
        if page is not None and event_type != PAGE_DELETED:
            urls += self.page_urls(page)
            if moved:
                before = str(moved.get("url_path_before") or "")
                after = str(moved.get("url_path_after") or "")
                if before:
                    urls += self.page_urls(page, url_path=before)
                if before and after:
                    urls += self.moved_descendant_urls(page, before, after)
        elif url_path:
            urls += self.site_urls(url_path)
        for other in related:
            urls += self.page_urls(other)
        return urls

    def moved_descendant_urls(self, page: Any, before: str, after: str) -> list[str]:
        """The old and new URLs of the live pages below a moved page."""
        urls: list[str] = []
        descendants = page.get_descendants().live().defer_streamfields().specific()
        for descendant in descendants:
            urls += self.page_urls(descendant)
            if descendant.url_path.startswith(after):
                old_path = before + descendant.url_path[len(after) :]
                urls += self.page_urls(descendant, url_path=old_path)
        return urls

    def for_snippet(self, snippet: Mapping[str, Any]) -> list[str]:
        """The URLs of the live pages that use the snippet (or image, or document)."""
        return [url for page in self.pages_using(snippet) for url in self.page_urls(page)]

    def pages_using(self, subject: Mapping[str, Any]) -> list[Any]:
        """The live pages that use the object an event describes (its ``type`` and ``id``)."""
        label, pk = subject.get("type"), subject.get("id")
        if not isinstance(label, str) or pk is None:
            return []
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            return []
        return self.pages_referencing(model, pk)

    def pages_referencing(self, model: type, pk: Any) -> list[Any]:
        """The live pages whose content refers to the object, in a number of queries that does
        not grow with theirs (one for the references, one per page type)."""
        ids = self.referencing_page_ids(model, pk)
        if not ids:
            return []
        _, pages = self.related_pages(referencing_ids=ids)
        return pages

    def media_urls(self, media: Mapping[str, Any]) -> list[str]:
        """An image's or a document's own URLs (``url`` and ``urls``): a full URL as it is (a
        CDN's), a relative one (``/media/...``, the document serve view) on every site."""
        given = [media.get("url"), *(media.get("urls") or ())]
        roots = list(dict.fromkeys(root.root_url for root in self.root_paths()))
        urls: list[str] = []
        for url in given:
            if not isinstance(url, str) or not url:
                continue
            if urlsplit(url).scheme:
                urls.append(url)
            else:
                urls += [urljoin(root + "/", url) for root in roots]
        return list(dict.fromkeys(urls))

    def for_page_being_deleted(self, page: Any) -> list[str]:
        """Everything a page's deletion makes stale, while its rows and references still exist."""
        from wagtail.models import Page

        page = getattr(page, "specific_deferred", page) or page
        urls = self.page_urls(page)
        referencing = self.referencing_page_ids(Page, page.pk)
        _, related = self.related_pages(
            ancestor_paths=ancestor_paths(page.url_path, self.ancestors),
            referencing_ids=referencing - {page.pk},
            aliases_of=page.pk,
        )
        for other in related:
            if other.pk != page.pk:
                urls += self.page_urls(other)
        return list(dict.fromkeys(urls))


def resolve_extra_urls(option: Any) -> dict[str, ExtraUrls]:
    """``EXTRA_URLS`` with its dotted paths imported (checked by the system checks first)."""
    if not isinstance(option, Mapping):
        return {}
    return {str(label): import_string(path) for label, path in option.items()}
