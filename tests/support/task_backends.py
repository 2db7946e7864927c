"""A task backend that cannot defer tasks, as some third-party backends cannot."""

try:
    from django.tasks.backends.dummy import DummyBackend
except ImportError:  # Django < 6
    from django_tasks.backends.dummy import DummyBackend


class NoDeferBackend(DummyBackend):
    supports_defer = False
