"""The filters of a destination on what an event is about: ``SITES``, ``LOCALES``, ``SECTIONS``,
``CHANGED`` and ``COLLECTIONS``, and the model matching that ``MODELS`` uses.

Each filter judges only the events it can judge, and lets the others pass:

- ``SITES`` (hostnames or ``Site`` ids): a page belongs to the sites whose root contains its
  ``url_path`` (with ``WAGTAIL_I18N_ENABLED``, the root of its own language), read from
  ``Site.get_site_root_paths()``, which Wagtail caches; any other object belongs to the sites
  the operator's ``OBJECT_SITES`` callable for its model returns, else to every site. A page
  moved between sites matches both, before and after.
- ``LOCALES`` (language codes): objects with a ``locale_id`` (pages, translatable snippets);
  ``"fr"`` also matches its regional variants (``"fr-ca"``).
- ``SECTIONS`` (page ids, or url paths such as ``"/home/blog/"``): pages whose ancestors, or
  themselves, include a listed page, by treebeard ``path``; a moved page matches the sections
  it left too, for that move only. An id follows its page across moves; a url path follows the
  path.
- ``COLLECTIONS`` (ids or names): objects with a ``collection_id`` (images, documents), when
  their collection is a listed one or below one.
- ``CHANGED`` (field names): ``page.published`` and ``snippet.published``, when the event's
  ``data["first_publish"]`` is true or one of the fields is in ``data["changes"]``; an event
  whose data says nothing of changes, or whose changes are unknown (``null``), passes.

What costs queries is looked up once per event, for every destination at a time
(:class:`Subject`): the sections and collections of all destinations in one query each, only
when a destination that needs them is judged. Routing thus costs the same number of queries
with one destination or a hundred.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.module_loading import import_string

from .conf import get_settings
from .events import PAGE_MOVED, PAGE_PUBLISHED, SNIPPET_PUBLISHED, language_code

logger = logging.getLogger("wagtail_publish_hooks")

#: A model class, or its label ``"app_label.ModelName"``.
ModelSpec = type[models.Model] | str

#: The event types ``CHANGED`` judges.
CHANGED_EVENT_TYPES = (PAGE_PUBLISHED, SNIPPET_PUBLISHED)


class Filtered(Protocol):
    """A destination or a Python receiver, as the filters see it (``None``: no filter)."""

    @property
    def sites(self) -> tuple[str | int, ...] | None: ...
    @property
    def locales(self) -> tuple[str, ...] | None: ...
    @property
    def sections(self) -> tuple[str | int, ...] | None: ...
    @property
    def changed(self) -> tuple[str, ...] | None: ...
    @property
    def collections(self) -> tuple[str | int, ...] | None: ...


@functools.lru_cache(maxsize=512)
def resolve_model(label: str) -> type[models.Model] | None:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        logger.error("Publish hooks: %r is not an installed model; it matches nothing", label)
        return None


def model_matches(model: type[models.Model] | None, specs: Iterable[ModelSpec] | None) -> bool:
    """Whether ``model`` is one of ``specs`` or a subclass of one (``None`` matches all)."""
    if specs is None:
        return True
    if model is None:
        return False
    for spec in specs:
        target = spec if isinstance(spec, type) else resolve_model(spec)
        if target is not None and issubclass(model, target):
            return True
    return False


def is_page(obj: Any) -> bool:
    from wagtail.models import Page

    return isinstance(obj, Page)


def as_url_path(value: str) -> str:
    """A section's url path in Wagtail's form, ``"/home/blog/"``."""
    return "/" + value.strip("/") + "/" if value.strip("/") else "/"


def language_matches(code: str, listed: Iterable[str]) -> bool:
    """``code`` is listed, or is a regional variant of a listed language (``fr-ca`` of ``fr``)."""
    code = code.lower()
    for item in listed:
        item = str(item).lower()
        if code == item or code.startswith(item + "-"):
            return True
    return False


@functools.cache
def _import_object_sites(path: str) -> Callable[[Any], Iterable[Any]]:
    return import_string(path)  # type: ignore[no-any-return]


class Subject:
    """The object of one event, as the filters judge it; what costs a query is looked up once.

    ``data`` is the event's data, or a callable that builds it: it is called (once) only when a
    filter needs it (``CHANGED``, or ``SITES`` and ``SECTIONS`` judging a move), and
    :attr:`data` gives it to whoever records the event. ``everyone`` gives every destination
    and receiver that may be judged, so that one query resolves the sections (or collections)
    of all of them.
    """

    def __init__(
        self,
        event_type: str,
        instance: models.Model | None,
        data: Mapping[str, Any] | Callable[[], Any] | None = None,
        *,
        everyone: Callable[[], Iterable[Filtered]] = tuple,
    ) -> None:
        self.event_type = event_type
        self.instance = instance
        self._data = data
        self._everyone = everyone
        self._page = is_page(instance)
        self._sections: dict[str | int, list[tuple[str, str]]] | None = None
        self._collection_paths: tuple[str | None, dict[str | int, list[str]]] | None = None
        self._sites: tuple[set[int], set[str]] | bool | None = False  # False: not looked up

    @property
    def data(self) -> Any:
        if callable(self._data):
            self._data = self._data()
        return self._data

    def matches(self, destination: Filtered) -> bool:
        if self.instance is None:
            return self._changed_matches(destination)
        return (
            self._locale_matches(destination)
            and self._site_matches(destination)
            and self._section_matches(destination)
            and self._collection_matches(destination)
            and self._changed_matches(destination)
        )

    # -- LOCALES ---------------------------------------------------------------------------------

    def _locale_matches(self, destination: Filtered) -> bool:
        if destination.locales is None or not hasattr(self.instance, "locale_id"):
            return True
        code = language_code(self.instance.locale_id)  # type: ignore[union-attr]
        return code is None or language_matches(code, destination.locales)

    # -- SITES -----------------------------------------------------------------------------------

    def _site_matches(self, destination: Filtered) -> bool:
        if destination.sites is None:
            return True
        belongs = self._belongs_to()
        if belongs is None:
            return True  # every site
        ids, hostnames = belongs
        return any(
            (site in ids) if isinstance(site, int) else (str(site).lower() in hostnames)
            for site in destination.sites
        )

    def _belongs_to(self) -> tuple[set[int], set[str]] | None:
        """The ids and hostnames of the sites the object belongs to; ``None``: every site."""
        if self._sites is False:
            if self._page:
                paths = [self.instance.url_path or ""]  # type: ignore[union-attr]
                if self.event_type == PAGE_MOVED:
                    paths.append(self._moved_from() or "")
                self._sites = page_sites(self.instance, paths)
            else:
                self._sites = object_sites(self.instance)
        return self._sites  # type: ignore[return-value]

    def _moved_from(self) -> str | None:
        data = self.data
        moved = data.get("moved") if isinstance(data, Mapping) else None
        before = moved.get("url_path_before") if isinstance(moved, Mapping) else None
        return before if isinstance(before, str) else None

    # -- SECTIONS --------------------------------------------------------------------------------

    def _section_matches(self, destination: Filtered) -> bool:
        if destination.sections is None or not self._page:
            return True
        sections = self._resolved_sections()
        path = self.instance.path  # type: ignore[union-attr]
        before = self._moved_from() if self.event_type == PAGE_MOVED else None
        for spec in destination.sections:
            key = as_url_path(spec) if isinstance(spec, str) else spec
            for section_path, section_url_path in sections.get(key, ()):
                if path.startswith(section_path):
                    return True
                if before is not None and before.startswith(section_url_path):
                    return True
        return False

    def _resolved_sections(self) -> dict[str | int, list[tuple[str, str]]]:
        """Every listed section of every destination, by id and by url path: one query."""
        if self._sections is None:
            from wagtail.models import Page

            ids, url_paths = split_specs(
                spec for item in self._everyone() for spec in (item.sections or ())
            )
            url_paths = {as_url_path(value) for value in url_paths}
            found: dict[str | int, list[tuple[str, str]]] = {}
            if ids or url_paths:
                rows = Page.objects.filter(Q(pk__in=ids) | Q(url_path__in=url_paths))
                for pk, url_path, path in rows.values_list("pk", "url_path", "path"):
                    for key in (pk, url_path):
                        if key in ids or key in url_paths:
                            found.setdefault(key, []).append((path, url_path))
            self._sections = found
        return self._sections

    # -- COLLECTIONS -----------------------------------------------------------------------------

    def _collection_matches(self, destination: Filtered) -> bool:
        if destination.collections is None:
            return True
        collection_id = getattr(self.instance, "collection_id", None)
        if collection_id is None:
            return True
        own_path, listed = self._resolved_collections(collection_id)
        if own_path is None:
            return False
        return any(
            own_path.startswith(path)
            for spec in destination.collections
            for path in listed.get(spec, ())
        )

    def _resolved_collections(
        self, collection_id: int
    ) -> tuple[str | None, dict[str | int, list[str]]]:
        """The object's collection path, and the paths of every listed collection of every
        destination, by id and by name: one query."""
        if self._collection_paths is None:
            from wagtail.models import Collection

            ids, names = split_specs(
                spec for item in self._everyone() for spec in (item.collections or ())
            )
            rows = Collection.objects.filter(
                Q(pk=collection_id) | Q(pk__in=ids) | Q(name__in=names)
            ).values_list("pk", "name", "path")
            own = None
            listed: dict[str | int, list[str]] = {}
            for pk, name, path in rows:
                if pk == collection_id:
                    own = path
                for key in (pk, name):
                    if key in ids or key in names:
                        listed.setdefault(key, []).append(path)
            self._collection_paths = (own, listed)
        return self._collection_paths

    # -- CHANGED ---------------------------------------------------------------------------------

    def _changed_matches(self, destination: Filtered) -> bool:
        if destination.changed is None or self.event_type not in CHANGED_EVENT_TYPES:
            return True
        data = self.data
        if not isinstance(data, Mapping) or ("changes" not in data and "first_publish" not in data):
            return True  # nothing said about changes: not judged
        if data.get("first_publish") or data.get("changes") is None:
            return True  # a first publish, or changes that cannot be known: not filtered out
        changed = set(destination.changed)
        return any(
            isinstance(change, Mapping) and change.get("field") in changed
            for change in data.get("changes") or ()
        )


#: Ids beyond this match nothing: no database column holds them, and a query with one fails.
MAX_ID = 2**63 - 1


def split_specs(specs: Iterable[Any]) -> tuple[set[int], set[str]]:
    """Ids and names (or url paths) of listed objects, leaving out what no row can hold (an id
    out of range, a string with a NUL character), so that a malformed value written past the
    checks matches nothing instead of failing the query for every destination."""
    ids: set[int] = set()
    names: set[str] = set()
    for spec in specs:
        if isinstance(spec, int) and not isinstance(spec, bool):
            if 0 <= spec <= MAX_ID:
                ids.add(spec)
        elif "\x00" not in str(spec):
            names.add(str(spec))
    return ids, names


def site_hostnames() -> dict[int, str]:
    """Each site's hostname, by id, from Wagtail's cached root paths (no query once cached)."""
    from wagtail.models import Site

    return {
        root.site_id: (urlsplit(root.root_url).hostname or "").lower()
        for root in Site.get_site_root_paths()
    }


def page_sites(page: Any, url_paths: Iterable[str]) -> tuple[set[int], set[str]]:
    """The ids and hostnames of the sites whose root contains one of ``url_paths``.

    With ``WAGTAIL_I18N_ENABLED``, a site's root in another language than the page's does not
    count, as in Wagtail's own URL routing.
    """
    from wagtail.models import Site

    i18n = getattr(settings, "WAGTAIL_I18N_ENABLED", False)
    page_language = language_code(getattr(page, "locale_id", None)) if i18n else None
    ids: set[int] = set()
    hostnames: set[str] = set()
    for root in Site.get_site_root_paths():
        if page_language and root.language_code and root.language_code != page_language:
            continue
        if any(path and path.startswith(root.root_path) for path in url_paths):
            ids.add(root.site_id)
            hostnames.add((urlsplit(root.root_url).hostname or "").lower())
    return ids, hostnames


def object_sites(obj: Any) -> tuple[set[int], set[str]] | None:
    """The sites a snippet or media object belongs to, from the operator's ``OBJECT_SITES``
    callable for its model (or a model it inherits from); ``None``: every site (no callable, or
    one that failed, which is logged: a wrong answer must not lose the event)."""
    mapping = get_settings().OBJECT_SITES
    if not isinstance(mapping, Mapping) or not mapping:
        return None
    for label, path in mapping.items():
        model = resolve_model(label) if isinstance(label, str) else None
        if model is None or not isinstance(obj, model):
            continue
        try:
            found = _import_object_sites(path)(obj)
            hostnames_by_id = site_hostnames()
            ids: set[int] = set()
            hostnames: set[str] = set()
            for site in found or ():
                if isinstance(site, int) and not isinstance(site, bool):
                    ids.add(site)
                    if site in hostnames_by_id:
                        hostnames.add(hostnames_by_id[site])
                else:
                    ids.add(site.pk)
                    hostnames.add(str(site.hostname).lower())
            return ids, hostnames
        except Exception:
            logger.exception(
                "Publish hooks: OBJECT_SITES[%r] failed for %s %s; it is taken as on every site",
                label,
                type(obj).__name__,
                getattr(obj, "pk", ""),
            )
            return None
    return None
