"""The management command, manage.py publish_hooks."""
