"""Settings for the wagtail-publish-hooks sandbox: a small Wagtail site for trying the plugin.

NOT FOR PRODUCTION: DEBUG is on and every secret below is a fixed, public demo value.

Environment variables:

- ``SANDBOX_DB``: the SQLite database file (default ``sandbox/db.sqlite3``).
- ``SANDBOX_PORT``: the port ``runserver`` listens on (default 8000); every destination points
  at this port's ``/inspector/``.
"""

import os
from pathlib import Path

import django

SANDBOX_DIR = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("SANDBOX_PORT", "8000"))
BASE_URL = f"http://127.0.0.1:{PORT}"

# A demo value, published in this repository: never reuse it.
SECRET_KEY = "sandbox-not-secret-dXXA1vgx6xLd1DqpK-6IXJ-sYSNO20F1nH7dKyRlgyVbTxpUhQ"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"

INSTALLED_APPS = [
    "home",
    "blog",
    "inspector",
    "wagtail_publish_hooks",
    "django_tasks_db",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

ROOT_URLCONF = "sandbox_site.urls"
WSGI_APPLICATION = "sandbox_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [SANDBOX_DIR / "sandbox_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SANDBOX_DB") or str(SANDBOX_DIR / "db.sqlite3"),
        # runserver and db_worker share this file: WAL lets readers and a writer overlap, and
        # IMMEDIATE transactions wait for the write lock instead of failing half-way.
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = []

STATIC_URL = "/static/"
STATIC_ROOT = str(SANDBOX_DIR / "static")
MEDIA_URL = "/media/"
MEDIA_ROOT = str(SANDBOX_DIR / "media")

WAGTAIL_SITE_NAME = "Publish hooks sandbox"
WAGTAILADMIN_BASE_URL = BASE_URL
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}

# -- Background tasks ----------------------------------------------------------------------------

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# -- wagtail-publish-hooks -----------------------------------------------------------------------

# A demo value, published in this repository: never reuse it. The inspector verifies the
# signatures of the requests it receives with the same secret.
INSPECTOR_SECRET = "whsec_/rU6qaWt7gG5o24TW6o/6uv/u9XjDcTC"
# The revalidation route's shared secret, as a Next.js site keeps it in its environment.
INSPECTOR_REVALIDATE_SECRET = "sandbox-revalidate-demo-secret"

# Every destination delivers to the inspector, on this site: the chat ones to endpoints that
# are shaped like, and answer like, the real services (Slack 200 "ok", Teams Workflows 202,
# Discord 204); the email one through the email backend below. Real Slack, Teams and Discord
# URLs are secrets: read them from the environment, never from a settings file.
WAGTAIL_PUBLISH_HOOKS = {
    "DESTINATIONS": {
        "inspector": {
            "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
            "OPTIONS": {
                "URL": f"{BASE_URL}/inspector/hooks/",
                "SECRET": INSPECTOR_SECRET,
            },
        },
        "slack": {
            "BACKEND": "wagtail_publish_hooks.backends.slack.SlackBackend",
            "OPTIONS": {
                "URL": f"{BASE_URL}/inspector/slack/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX",
                # Slack allows about one message a second; the inspector does not mind.
                "MIN_INTERVAL": 0.05,
            },
        },
        "teams": {
            "BACKEND": "wagtail_publish_hooks.backends.teams.TeamsBackend",
            "OPTIONS": {
                "URL": (
                    f"{BASE_URL}/inspector/teams/workflows/0000/triggers/manual/paths/invoke"
                    "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=XXXX"
                ),
            },
        },
        "discord": {
            "BACKEND": "wagtail_publish_hooks.backends.discord.DiscordBackend",
            "OPTIONS": {
                "URL": f"{BASE_URL}/inspector/discord/api/webhooks/0000/XXXXXXXXXXXX",
                "USERNAME": "Publish hooks sandbox",
            },
        },
        "email": {
            "BACKEND": "wagtail_publish_hooks.backends.email.EmailBackend",
            "OPTIONS": {
                "TO_USERS": ["admin"],
                # The admin is usually the one publishing: mail them about their own actions too.
                "EXCLUDE_ACTOR": False,
                "HTML_TEMPLATE": "wagtail_publish_hooks/email/body.html",
            },
        },
        # Coalesced: everything published within the window is one build / one revalidation.
        # Real sites keep the 30 s default; the sandbox uses 2 s so the demo shows it quickly.
        "build": {
            "BACKEND": "wagtail_publish_hooks.backends.build_hook.BuildHookBackend",
            "OPTIONS": {
                "URL": f"{BASE_URL}/inspector/build_hooks/000000000000000000000000",
                "COALESCE_SECONDS": 2,
            },
        },
        "revalidate": {
            "BACKEND": "wagtail_publish_hooks.backends.revalidate.RevalidateBackend",
            "OPTIONS": {
                "URL": f"{BASE_URL}/inspector/api/revalidate",
                "SECRET": INSPECTOR_REVALIDATE_SECRET,
                "COALESCE_SECONDS": 2,
            },
        },
    },
    # Only for the sandbox, whose inspector listens on loopback: real sites should leave this
    # at its default (False), so that destinations cannot reach internal addresses.
    "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8", "::1/128"],
    # The same for destinations added in the sandbox's admin, so that they can reach the
    # inspector too.
    "MANAGED_ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8", "::1/128"],
}

# -- Email ---------------------------------------------------------------------------------------

# No mail leaves the sandbox: the inspector's email backend stores every message for
# /inspector/. Django 6.1 configures the default mailer with MAILERS (the package's email
# backend sends through `mailers.default`); EMAIL_BACKEND is deprecated there, and not allowed
# next to MAILERS. Earlier versions only know EMAIL_BACKEND.
DEFAULT_FROM_EMAIL = "Publish hooks sandbox <sandbox@example.com>"
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "inspector.mail.InspectorEmailBackend"}}
else:
    EMAIL_BACKEND = "inspector.mail.InspectorEmailBackend"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "wagtail_publish_hooks": {"handlers": ["console"], "level": "INFO"},
    },
}
