from django.apps import AppConfig


class TestAppConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # As a site does it: the module that holds the @on receivers is imported at startup, in
        # the web process and in every worker.
        from . import receivers  # noqa: F401
