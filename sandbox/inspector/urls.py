from django.urls import path

from . import views

app_name = "inspector"

urlpatterns = [
    path("", views.index, name="index"),
    path("hooks/", views.receive, name="receive"),
]
