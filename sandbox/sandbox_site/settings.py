"""Settings for the wagtail-publish-hooks sandbox: a small Wagtail site for trying the plugin.

NOT FOR PRODUCTION: DEBUG is on and every secret below is a fixed, public demo value.

Environment variables:

- ``SANDBOX_DB``: the SQLite database file (default ``sandbox/db.sqlite3``).
- ``SANDBOX_PORT``: the port ``runserver`` listens on (default 8000); the webhook destination
  points at this port's ``/inspector/hooks/``.
"""

import os
from pathlib import Path

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

WAGTAIL_PUBLISH_HOOKS = {
    "DESTINATIONS": {
        "inspector": {
            "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
            "OPTIONS": {
                "URL": f"{BASE_URL}/inspector/hooks/",
                "SECRET": INSPECTOR_SECRET,
            },
        },
    },
    # Only for the sandbox, whose inspector listens on loopback: real sites should leave this
    # at its default (False), so that destinations cannot reach internal addresses.
    "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8", "::1/128"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "wagtail_publish_hooks": {"handlers": ["console"], "level": "INFO"},
    },
}
