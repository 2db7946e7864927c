"""The Celery app of the test site, as a Wagtail project's ``celery.py`` defines it.

The real ``celery worker`` processes of tests/deploy/test_celery.py run it
(``-A tests.support.celery_app``); its configuration comes from the Django settings' ``CELERY_``
names.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
