"""Create the sandbox's demo content; running it again changes nothing that exists."""

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from home.models import HomePage
from wagtail.models import Page, Site

from blog.models import BlogIndexPage, BlogPage

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "changeme"  # a demo value: the sandbox is for local use only

POSTS = [
    {
        "slug": "hello-publish-hooks",
        "title": "Hello, publish hooks",
        "date": datetime.date(2026, 1, 12),
        "intro": "Every publish becomes a signed webhook, sent after the transaction commits.",
        "body": (
            "<p>This sandbox sends every publishing event to its own "
            '<a href="/inspector/">webhook inspector</a>. Edit this post in the admin, '
            "publish it, and the delivery shows up there a moment later.</p>"
        ),
    },
    {
        "slug": "retries-and-redelivery",
        "title": "Retries and redelivery",
        "date": datetime.date(2026, 2, 3),
        "intro": "A destination that is down delays a delivery; it never loses it.",
        "body": (
            "<p>Deliveries are recorded in the same transaction as the publish and retried on "
            "a schedule. <code>manage.py publish_hooks status</code> shows how they went, and "
            "<code>manage.py publish_hooks redeliver</code> sends them again.</p>"
        ),
    },
    {
        "slug": "verifying-signatures",
        "title": "Verifying signatures",
        "date": datetime.date(2026, 3, 21),
        "intro": "Consumers check each request with the Standard Webhooks libraries.",
        "body": (
            "<p>Each request carries <code>webhook-id</code>, <code>webhook-timestamp</code> and "
            "<code>webhook-signature</code> headers. The inspector verifies them with "
            "<code>standardwebhooks.Webhook(secret).verify(body, headers)</code>.</p>"
        ),
    },
]


class Command(BaseCommand):
    help = "Create the sandbox's home page, blog and admin user (idempotent)."

    def handle(self, *args, **options):
        # The user first: the sandbox's email destination mails the admin about every publish.
        self.ensure_superuser()
        with transaction.atomic():
            home = self.ensure_home()
            blog = self.ensure_blog(home)
            for post in POSTS:
                self.ensure_post(blog, post)
        self.stdout.write(self.style.SUCCESS("Demo content is ready."))

    def say(self, message: str) -> None:
        self.stdout.write(f"  {message}")

    def ensure_home(self) -> HomePage:
        home = HomePage.objects.first()
        if home is not None:
            self.say(f"Home page exists: {home.title!r} (id {home.pk})")
            self.ensure_site(home)
            return home
        root = Page.get_first_root_node()
        # Wagtail's first migration creates a plain "Welcome" page with the slug "home" as the
        # default site's root; the sandbox's home page replaces it.
        placeholder = next(
            (
                page
                for page in root.get_children().filter(slug="home")
                if type(page.specific) is Page and not page.get_children().exists()
            ),
            None,
        )
        home = HomePage(
            title="Publish hooks sandbox",
            slug="home" if placeholder is None else "home-sandbox",
            intro=(
                "<p>A small Wagtail site wired to <b>wagtail-publish-hooks</b>: every publish "
                "is delivered, signed, to the webhook inspector.</p>"
            ),
        )
        root.add_child(instance=home)
        self.ensure_site(home)
        if placeholder is not None:
            placeholder.delete()  # after the site stops pointing at it (the FK cascades)
            self.say("Deleted Wagtail's placeholder welcome page")
            home.slug = "home"
            home.save()
        home.save_revision().publish()
        self.say(f"Created and published the home page (id {home.pk})")
        return home

    def ensure_site(self, home: HomePage) -> None:
        port = getattr(settings, "PORT", 80)
        site = Site.objects.filter(is_default_site=True).first()
        if site is None:
            Site.objects.create(
                hostname="127.0.0.1",
                port=port,
                root_page=home,
                is_default_site=True,
                site_name="Publish hooks sandbox",
            )
            self.say(f"Created the default site 127.0.0.1:{port}")
            return
        changed = []
        if site.root_page_id != home.pk:
            site.root_page = home
            changed.append("root page is the home page")
        if (site.hostname, site.port) != ("127.0.0.1", port):
            site.hostname, site.port = "127.0.0.1", port
            changed.append(f"address 127.0.0.1:{port}")
        if changed:
            site.site_name = site.site_name or "Publish hooks sandbox"
            site.save()
            self.say(f"Updated the default site: {', '.join(changed)}")
        else:
            self.say(f"Default site 127.0.0.1:{port} is rooted at the home page")

    def ensure_blog(self, home: HomePage) -> BlogIndexPage:
        blog = BlogIndexPage.objects.child_of(home).filter(slug="blog").first()
        if blog is not None:
            self.say(f"Blog index exists (id {blog.pk})")
            return blog
        blog = BlogIndexPage(
            title="Blog",
            slug="blog",
            intro="<p>News from the sandbox. Publish a post and watch the inspector.</p>",
        )
        home.add_child(instance=blog)
        blog.save_revision().publish()
        self.say(f"Created the blog index (id {blog.pk})")
        return blog

    def ensure_post(self, blog: BlogIndexPage, post: dict) -> None:
        existing = BlogPage.objects.child_of(blog).filter(slug=post["slug"]).first()
        if existing is not None:
            self.say(f"Blog page exists: {existing.title!r} (id {existing.pk})")
            return
        page = BlogPage(**post)
        blog.add_child(instance=page)
        page.save_revision().publish()
        self.say(f"Created and published blog page {page.title!r} (id {page.pk})")

    def ensure_superuser(self) -> None:
        User = get_user_model()
        if User.objects.filter(username=ADMIN_USERNAME).exists():
            self.say(f"User {ADMIN_USERNAME!r} exists (password unchanged)")
            return
        User.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD)
        self.say(f"Created superuser {ADMIN_USERNAME!r} with password {ADMIN_PASSWORD!r}")
