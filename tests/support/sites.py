"""A multi-site, two-locale Wagtail set-up, built with Wagtail's own API.

``www.example.test`` serves an English tree and its French translation (Wagtail's
``copy_for_translation``, with ``WAGTAIL_I18N_ENABLED``); ``shop.example.test`` serves a tree of
its own. Every page but the roots is a draft, for the tests to publish::

    /home/               www (en)          /home-fr/ (its fr translation; the slug Wagtail gives)
      blog/                                  blog/
        post/                                  post/
      about/
    /shop/               shop (en)
      product/

Use the ``multisite`` fixture (``from tests.support.sites import multisite`` in a test module
or conftest), which switches the settings and returns a :class:`MultiSite`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from wagtail.models import Locale, Page, Site

from tests.testapp.models import BlogIndexPage, BlogPage

LANGUAGES = [("en", "English"), ("fr", "French")]


@dataclass
class MultiSite:
    www: Site
    shop: Site
    en: Locale
    fr: Locale
    home: Page
    blog: BlogIndexPage
    post: BlogPage
    about: BlogPage
    home_fr: Page
    blog_fr: BlogIndexPage
    post_fr: BlogPage
    shop_home: Page
    product: BlogPage

    def refreshed(self, page: Page) -> Page:
        """``page`` read again (after a move, an in-memory page holds its old tree path)."""
        return type(page).objects.get(pk=page.pk)


def i18n_settings(settings) -> None:
    """Two content languages, with Wagtail's internationalisation on."""
    settings.WAGTAIL_I18N_ENABLED = True
    settings.LANGUAGES = LANGUAGES
    settings.WAGTAIL_CONTENT_LANGUAGES = LANGUAGES
    Site.clear_site_root_paths_cache()


def build_multisite() -> MultiSite:
    en, _ = Locale.objects.get_or_create(language_code="en")
    fr, _ = Locale.objects.get_or_create(language_code="fr")
    root = Page.get_first_root_node() or Page.add_root(
        instance=Page(title="Root", slug="root", locale=en)
    )
    www = Site.objects.filter(is_default_site=True).select_related("root_page").first()
    if www is None:
        home = root.add_child(instance=Page(title="Home", slug="home", locale=en))
        www = Site.objects.create(hostname="www.example.test", root_page=home, is_default_site=True)
    else:
        home = www.root_page
        www.hostname = "www.example.test"
        www.port = 80
        www.save()

    def draft(parent: Page, page: Page) -> Page:
        page.live = False
        parent.add_child(instance=page)
        page.save_revision()
        return page

    blog = draft(home, BlogIndexPage(title="Blog", slug="blog", locale=en))
    post = draft(blog, BlogPage(title="Post", slug="post", intro="Hi", locale=en))
    about = draft(home, BlogPage(title="About", slug="about", locale=en))
    home_fr = home.copy_for_translation(fr)
    blog_fr = blog.copy_for_translation(fr)
    post_fr = post.copy_for_translation(fr)
    shop_home = root.add_child(instance=Page(title="Shop", slug="shop", locale=en))
    shop = Site.objects.create(hostname="shop.example.test", root_page=shop_home)
    product = draft(shop_home, BlogPage(title="Product", slug="product", locale=en))
    Site.clear_site_root_paths_cache()
    return MultiSite(
        www=www,
        shop=shop,
        en=en,
        fr=fr,
        home=home,
        blog=blog,
        post=post,
        about=about,
        home_fr=home_fr,
        blog_fr=blog_fr.specific,
        post_fr=post_fr.specific,
        shop_home=shop_home,
        product=product,
    )


@pytest.fixture
def multisite(db, settings) -> MultiSite:
    i18n_settings(settings)
    return build_multisite()
