"""The page the benchmarks publish, shared by the scripts in this folder."""

from __future__ import annotations

from typing import Any


def draft_blog_page() -> Any:
    """A draft BlogPage under a new blog index under the default site's home page.

    Creates the root, home page and default site when the database has none.
    """
    from wagtail.models import Locale, Page, Site

    from tests.testapp.models import BlogIndexPage, BlogPage

    site = Site.objects.filter(is_default_site=True).select_related("root_page").first()
    if site is None:
        locale, _ = Locale.objects.get_or_create(language_code="en")
        root = Page.get_first_root_node() or Page.add_root(
            instance=Page(title="Root", slug="root", locale=locale)
        )
        home = Page(title="Home", slug="home", locale=locale)
        root.add_child(instance=home)
        Site.objects.create(hostname="localhost", port=80, root_page=home, is_default_site=True)
    else:
        home = site.root_page.specific
    index = BlogIndexPage(title="News", slug="news")
    home.add_child(instance=index)
    page = BlogPage(title="Benchmark post", slug="benchmark-post", intro="Hello", live=False)
    index.add_child(instance=page)
    return page
