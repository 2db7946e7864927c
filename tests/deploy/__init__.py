"""The task engines a site deploys with: django-tasks-db, RQ, Celery, SQLite as W024 asks."""
