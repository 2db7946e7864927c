from django.urls import path

from . import views

app_name = "inspector"

urlpatterns = [
    path("", views.index, name="index"),
    path("hooks/", views.receive, name="receive"),
    # Shaped like the real services' webhook URLs.
    path("slack/services/<path:rest>", views.slack, name="slack"),
    path("teams/workflows/<path:rest>", views.teams, name="teams"),
    path("build_hooks/<path:rest>", views.build, name="build"),
    path("api/revalidate", views.revalidate, name="revalidate"),
    path("discord/api/webhooks/<str:webhook_id>/<str:token>", views.discord, name="discord"),
]
