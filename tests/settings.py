"""Settings for the test suite: a real Wagtail site on SQLite (or PostgreSQL via DATABASE_URL)."""

import os
import tempfile
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
ROOT_URLCONF = "tests.urls"
WAGTAIL_SITE_NAME = "Publish hooks tests"
WAGTAILADMIN_BASE_URL = "http://testserver"

INSTALLED_APPS = [
    "wagtail_publish_hooks",
    "tests.testapp",
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
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# A file, not memory, so that a real db_worker subprocess can share it; one per test process,
# so that concurrent runs do not trample each other.
SQLITE_PATH = os.environ.get(
    "TEST_SQLITE_PATH", os.path.join(tempfile.gettempdir(), f"wph-tests-{os.getpid()}.sqlite3")
)
DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": SQLITE_PATH,
        "TEST": {"NAME": SQLITE_PATH},
        # Tests share the file with real worker processes: IMMEDIATE transactions wait for the
        # write lock (up to the timeout) instead of failing with "database is locked".
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30},
    }
}

# PostgreSQL: ``DATABASE_URL`` (it wins), or ``PUBLISH_HOOKS_TEST_DB=postgres`` for a throwaway
# local cluster started here (tests/support/pgcluster.py) and stopped when this process exits.
if not os.environ.get("DATABASE_URL") and os.environ.get("PUBLISH_HOOKS_TEST_DB") == "postgres":
    from tests.support.pgcluster import start_cluster

    os.environ["DATABASE_URL"] = start_cluster().url("wph")
if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dict(dj_database_url.parse(os.environ["DATABASE_URL"]))}
    # Persistent connections for the benchmarks' workers, as a deployment would set them.
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("PUBLISH_HOOKS_TEST_CONN_MAX_AGE", 0))
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        INSTALLED_APPS.append("django.contrib.postgres")  # Wagtail's search index needs it
    if os.environ.get("PUBLISH_HOOKS_TEST_DB_IS_TEST") == "1":
        # A subprocess of the test run (a real worker): the URL names the test database.
        DATABASES["default"]["TEST"] = {"NAME": DATABASES["default"]["NAME"]}
    else:
        # The test run: the subprocesses it starts inherit the URL of its test database.
        from tests.support.pgcluster import database_url

        TEST_DATABASE_NAME = f"test_{DATABASES['default']['NAME']}"
        DATABASES["default"]["TEST"] = {"NAME": TEST_DATABASE_NAME}
        os.environ["DATABASE_URL"] = database_url(os.environ["DATABASE_URL"], TEST_DATABASE_NAME)
        os.environ["PUBLISH_HOOKS_TEST_DB_IS_TEST"] = "1"

STATIC_URL = "/static/"
STATIC_ROOT = str(BASE_DIR / "static")
MEDIA_ROOT = str(BASE_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

TASKS: dict[str, dict[str, Any]] = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

WAGTAILSEARCH_BACKENDS: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "wagtail.search.backends.database"}
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Wagtail's PostgreSQL search backend renormalises every index entry on each save
    # (quadratic in a bulk publish); no test searches, so the index is not kept up to date.
    WAGTAILSEARCH_BACKENDS["default"]["AUTO_UPDATE"] = False

WAGTAIL_PUBLISH_HOOKS = {
    "DESTINATIONS": {},
    "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8", "::1/128"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"wagtail_publish_hooks": {"handlers": ["console"], "level": "WARNING"}},
}

# Subprocesses started by the tests (a real db_worker) receive the test's configuration here.
if os.environ.get("PUBLISH_HOOKS_TEST_SETTINGS"):
    import json

    WAGTAIL_PUBLISH_HOOKS = json.loads(os.environ["PUBLISH_HOOKS_TEST_SETTINGS"])

# Subprocesses started by the RQ tests (real rqworker processes) use that Redis as task queue.
if os.environ.get("PUBLISH_HOOKS_TEST_REDIS_URL"):
    INSTALLED_APPS.append("django_rq")
    # "hooks": a queue of the package's own (QUEUE_NAME), as benchmarks/worker_throughput.py uses.
    RQ_QUEUES = {
        name: {"URL": os.environ["PUBLISH_HOOKS_TEST_REDIS_URL"]} for name in ("default", "hooks")
    }
    RQ = {"JOB_CLASS": "django_tasks_rq.Job"}
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default", "hooks"]}}

# Subprocesses started by the Celery tests (real ``celery worker`` processes, app
# ``tests.support.celery_app``) use that Redis as broker, through django-tasks-fennel.
if os.environ.get("PUBLISH_HOOKS_TEST_CELERY_BROKER"):
    INSTALLED_APPS.append("django_tasks_fennel")
    CELERY_BROKER_URL = os.environ["PUBLISH_HOOKS_TEST_CELERY_BROKER"]
    TASKS = {
        "default": {"BACKEND": "django_tasks_fennel.CeleryBackend", "QUEUES": ["default", "hooks"]}
    }
    import json

    # More Celery settings for one test, by name without the prefix: {"TASK_TIME_LIMIT": 5}.
    for _name, _value in json.loads(
        os.environ.get("PUBLISH_HOOKS_TEST_CELERY_SETTINGS", "{}")
    ).items():
        globals()[f"CELERY_{_name}"] = _value
