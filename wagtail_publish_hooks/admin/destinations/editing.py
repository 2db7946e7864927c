"""Destinations managed in the admin: create, edit, delete, history, and the signing secret,
shown once when generated and rotated on its own screen."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.generic import TemplateView
from wagtail.admin.views import generic
from wagtail.admin.views.generic.history import HistoryView
from wagtail.admin.views.generic.usage import UsageView

from ...checks.destinations import check_destination
from ...encryption import DecryptionError
from ...models import ManagedDestination
from ..permissions import ForbiddenMixin, can_manage_destinations, forbidden
from .audit import ROTATE_SECRET, log_destination_action
from .forms import DestinationForm
from .rows import TEMPLATES, url
from .secret_options import generate_secret


class DestinationDeleteView(ForbiddenMixin, generic.DeleteView):
    pass


class DestinationHistoryView(ForbiddenMixin, HistoryView):
    pass


class DestinationUsageView(ForbiddenMixin, UsageView):
    pass


def _plain_secrets(instance: ManagedDestination) -> list[str] | None:
    try:
        return instance.plain_secrets()
    except DecryptionError:
        return None


def secret_response(
    request: HttpRequest, instance: ManagedDestination, secret: str, *, rotated: bool
) -> HttpResponse:
    """The one page that ever shows a secret: not cached, not stored anywhere else."""
    response = TemplateResponse(
        request,
        f"{TEMPLATES}secret.html",
        {
            "page_title": _("Signing secret"),
            "destination": instance,
            "secret": secret,
            "rotated": rotated,
            "detail_url": url("detail", instance.alias),
            "header_icon": "key",
        },
    )
    response["Cache-Control"] = "no-store"
    return response


class SecretShownOnceMixin:
    """After saving a form that generated a secret, show it (once) instead of redirecting; the
    form is given the user, whose view of pages and collections bounds its filters."""

    form: DestinationForm
    object: ManagedDestination
    request: HttpRequest

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "for_user": self.request.user}  # type: ignore[misc]

    def form_valid(self, form: DestinationForm) -> HttpResponse:
        response = super().form_valid(form)  # type: ignore[misc]
        for message in form.check_warnings:
            text = getattr(message, "text", message.msg)
            messages.warning(self.request, f"{text} ({message.id})")
        if form.generated_secret and response.status_code in (301, 302):
            return secret_response(
                self.request, self.object, form.generated_secret, rotated=self.object_existed
            )
        return response

    @property
    def object_existed(self) -> bool:
        return False


class DestinationCreateView(ForbiddenMixin, SecretShownOnceMixin, generic.CreateView):
    def get_success_url(self) -> str:
        return url("detail", self.object.alias)


class DestinationEditView(ForbiddenMixin, SecretShownOnceMixin, generic.EditView):
    @property
    def object_existed(self) -> bool:
        return True

    def get_success_url(self) -> str:
        return url("detail", self.object.alias)

    def save_instance(self) -> ManagedDestination:
        before = _plain_secrets(ManagedDestination.objects.get(pk=self.object.pk))
        instance = super().save_instance()
        if _plain_secrets(instance) != before:
            log_destination_action(
                instance.alias, ROTATE_SECRET, self.request.user, secrets=len(instance.secrets)
            )
        return instance

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["rotate_url"] = url("rotate_secret", self.object.pk)
        context["secret_count"] = len(self.object.secrets or [])
        return context


class RotateSecretView(ForbiddenMixin, generic.base.WagtailAdminTemplateMixin, TemplateView):
    """Replace the signing secret by a generated one, optionally signing with both for a while."""

    template_name = f"{TEMPLATES}rotate_secret.html"
    header_icon = "key"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not can_manage_destinations(request.user):
            return forbidden(request)
        self.object = get_object_or_404(ManagedDestination, pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return _("Rotate the signing secret of “%(alias)s”") % {"alias": self.object.alias}

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [
            *self.breadcrumbs_items,
            {"url": url("index"), "label": _("Destinations")},
            {"url": url("detail", self.object.alias), "label": self.object.alias},
            {"url": "", "label": _("Rotate secret")},
        ]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["object"] = self.object
        context["secret_count"] = len(self.object.secrets or [])
        context["error"] = getattr(self, "error", None)
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        secret = generate_secret()
        keep = (
            bool(request.POST.get("keep_previous"))
            and bool(self.object.secrets)
            and _plain_secrets(self.object) is not None
        )
        secrets = [secret, self.object.secrets[0]] if keep else [secret]
        candidate = ManagedDestination(
            alias=self.object.alias,
            backend=self.object.backend,
            options=self.object.options,
            secrets=secrets,
            events=self.object.events,
            model_labels=self.object.model_labels,
            exclude_aliases=self.object.exclude_aliases,
            include=self.object.include,
        )
        try:
            config = candidate.to_config()
        except DecryptionError:
            config = {"BACKEND": candidate.backend, "OPTIONS": {"SECRET": secret}}
        errors = [
            message
            for message in check_destination(self.object.alias, config, managed=True)
            if message.is_serious()
            and getattr(message, "setting_keys", ())[:2] == ("OPTIONS", "SECRET")
        ]
        if errors:
            self.error = f"{getattr(errors[0], 'text', errors[0].msg)} ({errors[0].id})"
            return self.get(request, *args, **kwargs)
        with transaction.atomic():
            self.object.secrets = secrets
            self.object.save(update_fields=["secrets", "updated_at"])
            log_destination_action(
                self.object.alias, ROTATE_SECRET, request.user, kept_previous=keep
            )
        return secret_response(request, self.object, secret, rotated=True)
