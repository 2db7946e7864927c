#!/usr/bin/env python
"""The frontend-cache purge set of a page linked from 1,000 pages: queries and time.

Run from the repository root::

    .venv/bin/python benchmarks/purge_set.py

One run, one temporary SQLite database, one process. A BlogPage is linked (rich text) from 1,000
live pages of two types; one ``page.published`` event for it is recorded for a frontend-cache
destination, and its purge set (``FrontendCacheBackend.urls_for()``: the page, its parent, the
1,000 linking pages, their feeds) is computed again and again. The figures are compared, in the
same run and in interleaved rounds, with:

``baseline: get_full_url() per linking page``
    The 1,000 linking pages fetched with ``.specific()`` and their ``get_full_url()`` called with
    a shared cache object: the least a loop over those pages must do to name their URLs.
``Wagtail: PurgeBatch.add_page()``
    Wagtail's own purge-URL computation, for the single page only (what
    ``wagtail.contrib.frontend_cache`` purges).
``naive: one query per linking page``
    The reference index read, then each linking page fetched on its own.

The script prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FRONTEND_CACHE = "wagtail_publish_hooks.backends.frontend_cache.FrontendCacheBackend"
HTTP_BACKEND = "wagtail.contrib.frontend_cache.backends.HTTPBackend"

PURGE_SET = "purge set (FrontendCacheBackend)"
BASELINE = "baseline: get_full_url() per linking page"
WAGTAIL = "Wagtail: PurgeBatch.add_page()"
NAIVE = "naive: one query per linking page"


def setup_django(db_path: Path) -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["TEST_SQLITE_PATH"] = str(db_path)

    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import override_settings

    django.setup()
    if settings.DATABASES["default"]["NAME"] != str(db_path):
        raise RuntimeError(f"expected the database {db_path}, got {settings.DATABASES}")
    # Run Wagtail's reference-index and search updates as the pages are saved.
    try:
        import django.tasks

        immediate = "django.tasks.backends.immediate.ImmediateBackend"
    except ImportError:
        immediate = "django_tasks.backends.immediate.ImmediateBackend"
    override_settings(TASKS={"default": {"BACKEND": immediate}}).enable()
    call_command("migrate", verbosity=0, interactive=False)


def build_site(linking: int) -> tuple[Any, list[int]]:
    """The target post under News, and ``linking`` live pages linking to it."""
    from wagtail.models import Locale, Page, Site

    from tests.testapp.models import BlogIndexPage, BlogPage, PromoPage

    site = Site.objects.filter(is_default_site=True).select_related("root_page").first()
    if site is None:  # Wagtail's migrations usually create one
        locale, _ = Locale.objects.get_or_create(language_code="en")
        root = Page.get_first_root_node() or Page.add_root(
            instance=Page(title="Root", slug="root", locale=locale)
        )
        home = Page(title="Home", slug="home", locale=locale)
        root.add_child(instance=home)
        site = Site.objects.create(hostname="localhost", root_page=home, is_default_site=True)
    site.hostname, site.port = "www.example.com", 443
    site.save()
    home = site.root_page
    index = BlogIndexPage(title="News", slug="news")
    home.add_child(instance=index)
    post = BlogPage(title="Linked post", slug="linked-post", intro="Hello")
    index.add_child(instance=post)
    link = f'<p>Read <a linktype="page" id="{post.pk}">the post</a>.</p>'
    ids = []
    for n in range(linking):
        kind = PromoPage if n % 2 else BlogPage
        page = kind(title=f"Linking page {n}", slug=f"linking-{n}", body=link)
        home.add_child(instance=page)
        ids.append(page.pk)
    return post, ids


def record_event(post: Any) -> Any:
    from django.test.utils import override_settings

    from wagtail_publish_hooks.models import Delivery

    config = {
        "DESTINATIONS": {
            "cdn": {
                "BACKEND": FRONTEND_CACHE,
                "OPTIONS": {
                    "BACKENDS": {
                        "varnish": {"BACKEND": HTTP_BACKEND, "LOCATION": "http://127.0.0.1:9"}
                    },
                    "COALESCE_SECONDS": 3600,
                },
            }
        }
    }
    override_settings(WAGTAIL_PUBLISH_HOOKS=config).enable()
    post.save_revision().publish()
    return Delivery.objects.select_related("event").get(destination="cdn")


def scenarios(post: Any, delivery: Any, ids: list[int]) -> dict[str, Callable[[], int]]:
    """Each returns the number of URLs it computed."""
    from wagtail.contrib.frontend_cache.utils import PurgeBatch
    from wagtail.models import Page, ReferenceIndex

    from wagtail_publish_hooks.registry import get_backend

    backend = get_backend("cdn")

    def purge_set() -> int:
        urls, _ = backend.urls_for(delivery)
        return len(urls)

    def baseline() -> int:
        cache = type("Cache", (), {})()
        pages = Page.objects.filter(pk__in=ids).specific()
        return len([page.get_full_url(cache) for page in pages])

    def wagtail() -> int:
        batch = PurgeBatch()
        batch.add_page(Page.objects.get(pk=post.pk))
        return len(batch.urls)

    def naive() -> int:
        cache = type("Cache", (), {})()
        rows = ReferenceIndex.get_references_to(post).values_list("object_id", flat=True)
        return len([Page.objects.get(pk=pk).specific.get_full_url(cache) for pk in rows])

    return {PURGE_SET: purge_set, BASELINE: baseline, WAGTAIL: wagtail, NAIVE: naive}


def count_queries(function: Callable[[], int]) -> tuple[int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        urls = function()
    return len(captured.captured_queries), urls


#: ``--size``: the defaults of ``--linking``, ``--iterations`` and ``--warmup``.
SIZES = {"quick": (100, 3, 1), "full": (1000, 20, 2)}
#: The purge set's statements, whatever the number of linking pages (see docs/performance.md).
MAX_PURGE_SET_STATEMENTS = 6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--size",
        choices=sorted(SIZES),
        default="full",
        help="quick: 100 linking pages and a few runs (CI); full: the figures of the docs",
    )
    parser.add_argument("--linking", type=int, help="pages linking to the post")
    parser.add_argument("--iterations", type=int, help="timed runs per scenario")
    parser.add_argument("--warmup", type=int, help="untimed runs per scenario")
    args = parser.parse_args()
    linking, iterations, warmup = SIZES[args.size]
    args.linking = args.linking or linking
    args.iterations = args.iterations or iterations
    args.warmup = warmup if args.warmup is None else args.warmup

    workdir = Path(tempfile.mkdtemp(prefix="wph-bench-purge-"))
    try:
        setup_django(workdir / "db.sqlite3")
        started = time.monotonic()
        post, ids = build_site(args.linking)
        delivery = record_event(post)
        print(f"Built {args.linking} linking pages in {time.monotonic() - started:.1f} s.\n")

        functions = scenarios(post, delivery, ids)
        queries = {name: count_queries(function) for name, function in functions.items()}
        for _ in range(args.warmup):
            for function in functions.values():
                function()
        timings: dict[str, list[float]] = {name: [] for name in functions}
        names = list(functions)
        for round_number in range(args.iterations):
            # A rotating order, so that drift on the machine affects every scenario alike.
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                begin = time.perf_counter()
                functions[name]()
                timings[name].append((time.perf_counter() - begin) * 1000)

        base = statistics.median(timings[BASELINE])
        print(f"{'scenario':<42} {'URLs':>6} {'queries':>8} {'median ms':>10} {'ratio':>8}")
        for name in names:
            median = statistics.median(timings[name])
            count, urls = queries[name]
            print(f"{name:<42} {urls:>6} {count:>8} {median:>10.2f} {median / base:>7.2f}x")
        print(f"\nRatios are against '{BASELINE}', measured in the same run.")
        statements = queries[PURGE_SET][0]
        if statements > MAX_PURGE_SET_STATEMENTS:
            print(
                f"REGRESSION: the purge set took {statements} statements for {args.linking} "
                f"linking pages (at most {MAX_PURGE_SET_STATEMENTS}, whatever their number)."
            )
            return 1
        print(
            f"Check: the purge set takes {statements} statements "
            f"(at most {MAX_PURGE_SET_STATEMENTS})."
        )
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
