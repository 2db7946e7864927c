"""A real Varnish in front of the test site: after a publish, a move, an unpublish and a delete,
every URL of the purge set is fetched anew, and unrelated cached URLs are still served from
cache. The purges are the PURGE requests Wagtail's ``HTTPBackend`` would send, sent after commit
by the package's own transport, under the destination's address policy."""

from __future__ import annotations

import pytest
from wagtail.actions.unpublish_page import UnpublishPageAction
from wagtail.models import Page, Site

from tests.support import varnish as varnish_helpers
from tests.testapp.models import BlogIndexPage, BlogPage, PromoPage
from wagtail_publish_hooks.models import Attempt, Delivery, DeliveryStatus

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not varnish_helpers.varnishd_available(),
        reason=f"varnishd is not installed at {varnish_helpers.VARNISHD}",
    ),
]

FRONTEND_CACHE = "wagtail_publish_hooks.backends.frontend_cache.FrontendCacheBackend"
HTTP_BACKEND = "wagtail.contrib.frontend_cache.backends.HTTPBackend"


@pytest.fixture(scope="session")
def varnish_workdir():
    path = varnish_helpers.make_workdir()
    varnish_helpers.write_templates(path / "templates")
    yield path
    varnish_helpers.remove_workdir(path)


@pytest.fixture(scope="session")
def site_server(django_db_blocker):
    server = varnish_helpers.SiteServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def varnish(site_server, varnish_workdir):
    cache = varnish_helpers.Varnish(site_server.port, varnish_workdir).start()
    yield cache
    cache.stop()


@pytest.fixture
def cached_site(settings, configure, site_root, varnish, varnish_workdir):
    """The default site at Varnish's address; a destination purging through ``HTTPBackend``."""
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [str(varnish_workdir / "templates")]},
    ]
    Site.objects.filter(is_default_site=True).update(hostname="localhost", port=varnish.port)
    Site.clear_site_root_paths_cache()
    configure(
        DESTINATIONS={
            "varnish": {
                "BACKEND": FRONTEND_CACHE,
                "OPTIONS": {
                    "BACKENDS": {
                        "varnish": {"BACKEND": HTTP_BACKEND, "LOCATION": varnish.location}
                    },
                    "COALESCE_SECONDS": 0,
                },
            }
        },
        RETRY_SCHEDULE=[300],
    )
    varnish.ban_all()
    return varnish


def publish(page):
    page.save_revision().publish()
    return page


def add_live(parent, page):
    parent.add_child(instance=page)
    return publish(page)


def forget_purges():
    Attempt.objects.all().delete()


def all_purged() -> set[str]:
    """Every URL purged since :func:`forget_purges`, by every delivery (each must succeed)."""
    attempts = list(Attempt.objects.all())
    assert attempts and all(a.outcome == "success" for a in attempts), [a.error for a in attempts]
    return {url for attempt in attempts for url in attempt.detail["urls"]}


def assert_purged(cache, urls):
    for url in urls:
        response = cache.get(url)
        assert response.cache == "MISS", f"{url} is still served from cache"


def assert_still_cached(cache, urls):
    for url in urls:
        assert cache.get(url).cache == "HIT", f"{url} was purged, but nothing changed in it"


@pytest.fixture
def tree(cached_site, site_root, blog_index):
    """Home, News with a post (and a child of it), About, and a promo page linking to the post."""
    port = cached_site.port
    publish(blog_index)
    post = add_live(blog_index, BlogPage(title="Post", slug="post"))
    child = add_live(post, BlogPage(title="Child", slug="child"))
    about = add_live(site_root, BlogIndexPage(title="About", slug="about"))
    link = f'<p><a linktype="page" id="{post.pk}">the post</a></p>'
    promo = add_live(site_root, PromoPage(title="Promo", slug="promo", body=link))
    base = f"http://localhost:{port}"
    return {
        "home": site_root,
        "news": blog_index,
        "post": post,
        "child": child,
        "about": about,
        "promo": promo,
        "base": base,
    }


def test_a_publish_purges_every_url_of_the_purge_set_on_every_site(cached_site, tree):
    base = tree["base"]
    port = cached_site.port
    Site.objects.create(hostname="127.0.0.1", port=port, root_page=tree["home"])
    other = f"http://127.0.0.1:{port}"
    promo = tree["promo"]
    purge_set = {
        f"{site}{path}"
        for site in (base, other)
        for path in ("/news/post/", "/news/", "/promo/", f"/feeds/promo-{promo.pk}.xml")
    }
    unrelated = [f"{base}/", f"{base}/about/", f"{base}/news/post/child/", f"{other}/about/"]
    for url in [*purge_set, *unrelated]:
        cached_site.cache(url)
    forget_purges()
    assert "<h1>Post</h1>" in cached_site.get(f"{base}/news/post/").body

    post = tree["post"]
    post.title = "Post, revised"
    publish(post)

    assert all_purged() == purge_set
    assert_purged(cached_site, purge_set)
    assert "<h1>Post, revised</h1>" in cached_site.get(f"{other}/news/post/").body
    assert_still_cached(cached_site, unrelated)


def test_a_move_purges_the_old_and_new_urls(cached_site, tree):
    base = tree["base"]
    archive = add_live(tree["home"], BlogIndexPage(title="Archive", slug="archive"))
    promo = tree["promo"]
    purge_set = {
        f"{base}{path}"
        for path in (
            "/news/post/",
            "/news/post/child/",
            "/archive/post/",  # a cached 404 until now
            "/archive/post/child/",
            "/news/",
            "/archive/",
            "/promo/",
            f"/feeds/promo-{promo.pk}.xml",
        )
    }
    unrelated = [f"{base}/", f"{base}/about/"]
    for url in [*purge_set, *unrelated]:
        cached_site.cache(url)
    forget_purges()
    assert cached_site.get(f"{base}/archive/post/").status == 404

    tree["post"].move(archive, pos="last-child")

    assert all_purged() == purge_set
    assert_purged(cached_site, purge_set)
    assert cached_site.get(f"{base}/archive/post/").status == 200
    assert cached_site.get(f"{base}/archive/post/child/").status == 200
    # Wagtail redirects the old URL now (wagtail.contrib.redirects' automatic redirects).
    assert cached_site.get(f"{base}/news/post/").status == 301
    assert_still_cached(cached_site, unrelated)


def test_an_unpublish_purges_what_the_page_served(cached_site, tree, admin_user):
    base = tree["base"]
    promo = tree["promo"]
    purge_set = {
        f"{base}{path}"
        for path in ("/news/post/", "/news/", "/promo/", f"/feeds/promo-{promo.pk}.xml")
    }
    # Wagtail unpublishes the child too: its own event purges it and its parent, the post.
    purge_set.add(f"{base}/news/post/child/")
    unrelated = [f"{base}/", f"{base}/about/"]
    for url in [*purge_set, *unrelated]:
        cached_site.cache(url)
    forget_purges()

    # As the admin does when asked to unpublish the page's subpages too.
    UnpublishPageAction(tree["post"], user=admin_user, include_descendants=True).execute()

    assert all_purged() == purge_set
    assert_purged(cached_site, purge_set)
    assert cached_site.get(f"{base}/news/post/").status == 404
    assert_still_cached(cached_site, unrelated)


def test_a_delete_purges_the_page_its_parent_and_the_pages_linking_to_it(cached_site, tree):
    base = tree["base"]
    promo = tree["promo"]
    purge_set = {
        f"{base}{path}"
        for path in (
            "/news/post/",
            "/news/post/child/",
            "/news/",
            "/promo/",
            f"/feeds/promo-{promo.pk}.xml",
        )
    }
    unrelated = [f"{base}/", f"{base}/about/"]
    for url in [*purge_set, *unrelated]:
        cached_site.cache(url)
    forget_purges()

    Page.objects.get(pk=tree["post"].pk).delete()

    assert all_purged() == purge_set
    assert not Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists()
    assert_purged(cached_site, purge_set)
    assert cached_site.get(f"{base}/news/post/").status == 404
    assert_still_cached(cached_site, unrelated)


def test_without_the_destination_the_cache_stays_stale(cached_site, tree, configure):
    """The control: Varnish really caches, and only the purge makes it fetch again."""
    base = tree["base"]
    cached_site.cache(f"{base}/news/post/")
    configure(DESTINATIONS={})
    post = tree["post"]
    post.title = "Post, revised"
    publish(post)
    response = cached_site.get(f"{base}/news/post/")
    assert response.cache == "HIT" and "<h1>Post</h1>" in response.body


# -- The purges are the package's own requests, held to the address policy ----------------------


def cached_post(cached_site, tree) -> str:
    url = f"{tree['base']}/news/post/"
    cached_site.cache(url)
    forget_purges()
    return url


def revise(page):
    page.title = "Post, revised"
    publish(page)


def test_purges_are_refused_where_the_address_policy_does_not_allow_the_cache(
    cached_site, tree, settings
):
    """The cache is on loopback; a policy without loopback refuses the purge (Wagtail's
    ``HTTPBackend`` would have sent it regardless) and the page stays cached."""
    url = cached_post(cached_site, tree)
    settings.WAGTAIL_PUBLISH_HOOKS = {
        **settings.WAGTAIL_PUBLISH_HOOKS,
        "ALLOW_PRIVATE_NETWORKS": ["10.0.0.0/8"],
    }
    revise(tree["post"])

    delivery = Delivery.objects.get(destination="varnish", status=DeliveryStatus.FAILED)
    assert delivery.last_error.startswith("1 purge error(s): varnish: refused: the target is a")
    assert "(loopback)" in delivery.last_error
    assert str(cached_site.port) not in delivery.last_error
    attempt = delivery.attempt_set.get()
    assert attempt.outcome == "failure"  # refused: failed at once, no request made
    assert attempt.detail["failed_urls"] == attempt.detail["urls"]
    assert cached_site.get(url).cache == "HIT"


def test_proxies_from_the_environment_are_not_used(cached_site, tree, monkeypatch):
    """``urlopen`` (Wagtail's ``HTTPBackend``) would send the purge to the proxy."""
    from tests.support.sinks import Sink, respond

    url = cached_post(cached_site, tree)
    with Sink(respond()) as proxy, monkeypatch.context() as env:
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
            env.setenv(name, proxy.url().rstrip("/"))
        for name in ("no_proxy", "NO_PROXY"):
            env.delenv(name, raising=False)
        revise(tree["post"])
        assert proxy.connections == 0
    assert url in all_purged()
    assert_purged(cached_site, [url])


def managed_cache(**options):
    from wagtail_publish_hooks.models import ManagedDestination

    return ManagedDestination.objects.create(
        alias="managed-cache",
        backend=FRONTEND_CACHE,
        options={"BACKENDS": ["varnish"], "COALESCE_SECONDS": 0, **options},
    )


def test_a_managed_destination_may_not_purge_a_loopback_cache_the_operator_may(
    cached_site, tree, settings
):
    """The operator's ALLOW_PRIVATE_NETWORKS allows loopback (and its destination purges);
    the same cache, chosen by name by a destination managed in the admin, is refused."""
    settings.WAGTAILFRONTENDCACHE = {
        "varnish": {"BACKEND": HTTP_BACKEND, "LOCATION": cached_site.location}
    }
    url = cached_post(cached_site, tree)
    managed_cache()
    revise(tree["post"])

    managed = Delivery.objects.get(destination="managed-cache")
    assert managed.status == DeliveryStatus.FAILED
    assert "refused: the target is a non-public address (loopback)" in managed.last_error
    assert "MANAGED_ALLOW_PRIVATE_NETWORKS" in managed.last_error
    assert Delivery.objects.filter(destination="varnish").latest("pk").status == "delivered"
    assert_purged(cached_site, [url])  # by the operator's destination

    # Once the operator allows loopback for managed destinations, the same one purges.
    settings.WAGTAIL_PUBLISH_HOOKS = {
        **settings.WAGTAIL_PUBLISH_HOOKS,
        "DESTINATIONS": {},  # the managed destination alone purges
        "MANAGED_ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"],
    }
    cached_site.cache(url)
    revise(tree["post"])
    managed = Delivery.objects.filter(destination="managed-cache").latest("pk")
    assert managed.status == DeliveryStatus.DELIVERED, managed.last_error
    assert_purged(cached_site, [url])
