from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WagtailPublishHooksConfig(AppConfig):
    name = "wagtail_publish_hooks"
    label = "wagtail_publish_hooks"
    verbose_name = _("Publish hooks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, conf, media_handlers, registry, signal_handlers, subscribers, tasks

        checks.register()
        conf.connect_setting_changed()
        registry.connect_signals()
        subscribers.connect_signals()
        tasks.connect_signals()
        signal_handlers.connect()
        media_handlers.connect()
