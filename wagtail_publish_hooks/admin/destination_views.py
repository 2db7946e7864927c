"""The destinations screens: every destination with its health and chart, and the actions.

Destinations defined in settings are listed read-only; those managed in the admin are created,
edited and deleted through Wagtail's generic views. Both kinds can be disabled, enabled and sent
a test event by users who may change managed destinations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.functional import cached_property
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View
from wagtail.admin.ui.tables import Column, Table
from wagtail.admin.views import generic
from wagtail.admin.views.generic.history import HistoryView
from wagtail.admin.views.generic.usage import UsageView
from wagtail.admin.widgets.button import HeaderButton
from wagtail.log_actions import log
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.permissions import policy_registry

from ..conf import is_receiver_alias
from ..custom_events import send_test_event
from ..encryption import DecryptionError
from ..models import DestinationState, ManagedDestination
from ..registry import (
    get_backend,
    get_destinations,
    managed_problems,
    retry_policy,
    settings_destinations,
)
from .destination_chart import HourlyOutcomes, chart_svg, hourly_outcomes
from .destination_forms import DestinationForm, generate_secret

NAMESPACE = "publish_hooks_destinations"
TEMPLATES = "wagtail_publish_hooks/admin/destinations/"

ENABLE = "wagtail_publish_hooks.enable"
DISABLE = "wagtail_publish_hooks.disable"
TEST = "wagtail_publish_hooks.test"
ROTATE_SECRET = "wagtail_publish_hooks.rotate_secret"  # noqa: S105 -- a log action

#: (action, label, message) for Wagtail's ``register_log_actions`` hook.
LOG_ACTIONS = (
    (ENABLE, gettext_lazy("Enable destination"), gettext_lazy("Destination enabled")),
    (DISABLE, gettext_lazy("Disable destination"), gettext_lazy("Destination disabled")),
    (TEST, gettext_lazy("Send test event"), gettext_lazy("Test event sent")),
    (ROTATE_SECRET, gettext_lazy("Rotate secret"), gettext_lazy("Signing secret rotated")),
)


def url(name: str, *args: Any) -> str:
    return reverse(f"{NAMESPACE}:{name}", args=args)


def destination_policy() -> ModelPermissionPolicy:
    policy = policy_registry.get_by_type(ManagedDestination)
    assert isinstance(policy, ModelPermissionPolicy)
    return policy


def can_view_destinations(user: Any) -> bool:
    return destination_policy().user_has_any_permission(user, ["view", "add", "change", "delete"])


def can_manage_destinations(user: Any) -> bool:
    """Enable, disable, test and rotate: the permission to change managed destinations."""
    return destination_policy().user_has_permission(user, "change")


class ForbiddenAs403:
    """Answer a user without the permission with HTTP 403, a page in the admin's style, rather
    than the redirect to the dashboard Wagtail's admin makes of a refusal."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        except PermissionDenied:
            return forbidden(request)


def forbidden(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(
        request, f"{TEMPLATES}forbidden.html", {"page_title": _("Permission denied")}, status=403
    )


# -- Rows: what the screens show of each destination -------------------------------------------


@dataclass
class DestinationRow:
    alias: str
    backend_path: str
    description: str
    state: DestinationState | None
    outcomes: HourlyOutcomes
    #: The admin-managed destination, or ``None`` for one defined in settings.
    instance: ManagedDestination | None = None
    #: An admin-managed destination ignored because settings define the same alias.
    shadowed: bool = False
    #: Why an admin-managed destination is not built (it names code, or its secrets cannot
    #: be decrypted), or ``""``.
    problem: str = ""

    @property
    def managed(self) -> bool:
        return self.instance is not None

    @property
    def backend_name(self) -> str:
        return self.backend_path.rsplit(".", 1)[-1]

    @property
    def is_disabled(self) -> bool:
        return self.state is not None and self.state.is_disabled

    @property
    def chart(self) -> SafeString:
        return chart_svg(self.outcomes)

    @property
    def detail_url(self) -> str:
        return url("detail", self.alias)

    @property
    def secret_count(self) -> int:
        return len(self.instance.secrets) if self.instance is not None else 0

    @property
    def health(self) -> str:
        if self.shadowed:
            return _("Ignored: settings define the same alias")
        if self.problem:
            return _("Broken, not used: %(reason)s") % {"reason": self.problem}
        if self.is_disabled:
            assert self.state is not None
            return _("Disabled: %(reason)s") % {"reason": self.state.disabled_reason}
        failures = self.state.consecutive_failures if self.state is not None else 0
        if failures:
            return _("%(count)s consecutive failures") % {"count": failures}
        return _("OK")

    @property
    def health_tag(self) -> str:
        if self.shadowed or self.problem or self.is_disabled:
            return "critical"
        if self.state is not None and self.state.consecutive_failures:
            return "warning"
        return "positive"

    @property
    def retry_policy(self) -> str:
        """How its deliveries are retried, and whether by its own keys or the site's."""
        policy = retry_policy(self.alias)
        destination = get_destinations().get(self.alias)
        own = destination is not None and (
            destination.retry_schedule is not None or destination.max_attempts is not None
        )
        delays = ", ".join(_seconds(delay) for delay in policy.schedule)
        text = _("Up to %(attempts)s attempts; waits %(delays)s (the last one repeats)") % {
            "attempts": policy.max_attempts,
            "delays": delays,
        }
        source = _("its own") if own else _("the site's")
        return f"{text} — {source}"

    @property
    def deliveries_url(self) -> str | None:
        try:
            return reverse("wagtail_publish_hooks:deliveries") + f"?destination={self.alias}"
        except NoReverseMatch:
            return None


def _seconds(value: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if value >= size and value % size == 0:
            return f"{value / size:g} {unit}"
    return f"{value:g} s"


def describe(alias: str) -> str:
    """The backend's secret-free description of where the destination sends to."""
    try:
        return get_backend(alias).describe()
    except Exception:
        return _("(cannot be built: run 'manage.py check')")


def build_rows(
    from_settings: list[str], managed: list[ManagedDestination]
) -> tuple[list[DestinationRow], list[DestinationRow]]:
    """The rows of both kinds, with their health and charts: two queries whatever the count."""
    configured = get_destinations()
    settings_aliases = set(settings_destinations())
    aliases = [*from_settings, *(instance.alias for instance in managed)]
    states = {state.alias: state for state in DestinationState.objects.filter(alias__in=aliases)}
    outcomes = hourly_outcomes(aliases)
    settings_rows = [
        DestinationRow(
            alias=alias,
            backend_path=configured[alias].backend_path,
            description=describe(alias),
            state=states.get(alias),
            outcomes=outcomes[alias],
        )
        for alias in from_settings
    ]
    managed_rows = []
    for instance in managed:
        shadowed = instance.alias in settings_aliases
        problems = managed_problems(instance)
        managed_rows.append(
            DestinationRow(
                alias=instance.alias,
                backend_path=instance.backend,
                description=(
                    describe(instance.alias)
                    if instance.alias in configured and not shadowed
                    else "—"
                ),
                state=states.get(instance.alias),
                outcomes=outcomes[instance.alias],
                instance=instance,
                shadowed=shadowed,
                problem=" ".join(
                    f"{getattr(message, 'text', message.msg)} ({message.id})"
                    for message in problems
                ),
            )
        )
    return settings_rows, managed_rows


# -- The listing --------------------------------------------------------------------------------


class RowColumn(Column):
    """A column drawn by a template from the row (``instance.row``) of a destination."""

    def __init__(self, name: str, template: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.cell_template_name = f"{TEMPLATES}cells/{template}.html"

    def get_cell_context_data(self, instance: Any, parent_context: Any) -> dict[str, Any]:
        context = super().get_cell_context_data(instance, parent_context)
        context["dest"] = instance if isinstance(instance, DestinationRow) else instance.row
        context["can_manage"] = parent_context.get("can_manage", False)
        context["csrf_token"] = parent_context.get("csrf_token")
        return context


def destination_columns() -> list[Column]:
    return [
        RowColumn("alias", "alias", label=gettext_lazy("Destination")),
        RowColumn("backend", "backend", label=gettext_lazy("Backend")),
        RowColumn("health", "health", label=gettext_lazy("Health")),
        RowColumn("last", "last", label=gettext_lazy("Last success / failure")),
        RowColumn("chart", "chart", label=gettext_lazy("Attempts per hour, 7 days")),
    ]


class DestinationIndexView(ForbiddenAs403, generic.IndexView):
    """Destinations from settings (read-only), then those managed in the admin."""

    template_name = f"{TEMPLATES}index.html"
    page_title = gettext_lazy("Destinations")
    any_permission_required = ["view", "add", "change", "delete"]
    paginate_by = 50

    def get_base_queryset(self) -> Any:
        return ManagedDestination.objects.order_by("alias")

    @cached_property
    def columns(self) -> list[Column]:
        return destination_columns()

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [*self.breadcrumbs_items, {"url": "", "label": _("Destinations")}]

    def get_context_data(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(*args, **kwargs)
        managed = list(context["object_list"])
        settings_rows, managed_rows = build_rows(list(settings_destinations()), managed)
        for instance, row in zip(managed, managed_rows, strict=True):
            instance.row = row  # type: ignore[attr-defined]
        context["settings_table"] = Table(destination_columns(), settings_rows)
        context["can_manage"] = can_manage_destinations(self.request.user)
        context["settings_count"] = len(settings_rows)
        return context


# -- One destination ----------------------------------------------------------------------------


def find_row(alias: str) -> DestinationRow:
    managed = ManagedDestination.objects.filter(alias=alias).first()
    in_settings = alias in settings_destinations()
    if managed is None and not in_settings:
        raise Http404(_("No destination named %(alias)s.") % {"alias": alias})
    settings_rows, managed_rows = build_rows(
        [alias] if in_settings else [], [managed] if managed is not None else []
    )
    return (settings_rows or managed_rows)[0]


class DestinationDetailView(ForbiddenAs403, generic.base.WagtailAdminTemplateMixin, TemplateView):
    template_name = f"{TEMPLATES}detail.html"
    header_icon = "link-external"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not can_view_destinations(request.user):
            return forbidden(request)
        self.row = find_row(kwargs["alias"])
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return self.row.alias

    def get_page_subtitle(self) -> str:
        return _("Destination")

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [
            *self.breadcrumbs_items,
            {"url": url("index"), "label": _("Destinations")},
            {"url": "", "label": self.row.alias},
        ]

    def get_header_buttons(self) -> list[Any]:
        buttons = []
        instance = self.row.instance
        if instance is not None and destination_policy().user_has_permission(
            self.request.user, "change"
        ):
            buttons.append(HeaderButton(_("Edit"), url=url("edit", instance.pk), icon_name="edit"))
        return buttons

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["row"] = self.row
        context["chart"] = chart_svg(self.row.outcomes, height=96, bar_width=4)
        context["can_manage"] = can_manage_destinations(self.request.user)
        # Disabling the operator's destinations is for superusers (see DestinationActionView).
        context["can_switch"] = context["can_manage"] and (
            self.row.managed or self.request.user.is_superuser
        )
        return context


# -- Actions ------------------------------------------------------------------------------------


def log_destination_action(alias: str, action: str, user: Any, **data: Any) -> None:
    """An audit log entry on the admin-managed destination, or, for one from settings, on its
    health record (``DestinationState``)."""
    instance: Any = ManagedDestination.objects.filter(alias=alias).first()
    if instance is None or alias in settings_destinations():
        instance, _created = DestinationState.objects.get_or_create(alias=alias)
    log(instance=instance, action=action, user=user, data={"alias": alias, **data})


class DestinationActionView(ForbiddenAs403, View):
    """A POST that acts on one destination and returns to where it came from."""

    http_method_names = ["post"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not can_manage_destinations(request.user):
            return forbidden(request)
        self.alias = kwargs["alias"]
        if is_receiver_alias(self.alias):
            raise Http404  # Python receivers are code: nothing here acts on them
        if self.alias not in get_destinations() and not (
            ManagedDestination.objects.filter(alias=self.alias).exists()
        ):
            raise Http404
        if (
            self.operator_only_for_settings
            and self.alias in settings_destinations()
            and not request.user.is_superuser
        ):
            # Stopping or restarting the operator's destinations is the operator's call: a
            # destination manager acts on the destinations managed in the admin.
            return forbidden(request)
        return super().dispatch(request, *args, **kwargs)

    #: Whether, for a destination from settings, only a superuser may act.
    operator_only_for_settings = False

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with transaction.atomic():
            self.act(request)
        return redirect(url("detail", self.alias))

    def act(self, request: HttpRequest) -> None:
        raise NotImplementedError


class DisableView(DestinationActionView):
    operator_only_for_settings = True

    def act(self, request: HttpRequest) -> None:
        user = request.user
        name = user.get_username() if user.is_authenticated else "?"
        reason = _("disabled in the admin by %(user)s") % {"user": name}
        if DestinationState.disable(self.alias, reason):
            log_destination_action(self.alias, DISABLE, user)
            messages.success(request, _("“%(alias)s” is disabled.") % {"alias": self.alias})
        else:
            messages.info(request, _("“%(alias)s” was disabled already.") % {"alias": self.alias})


class EnableView(DestinationActionView):
    operator_only_for_settings = True

    def act(self, request: HttpRequest) -> None:
        if DestinationState.enable(self.alias):
            log_destination_action(self.alias, ENABLE, request.user)
            messages.success(request, _("“%(alias)s” is enabled.") % {"alias": self.alias})
        else:
            messages.info(request, _("“%(alias)s” was not disabled.") % {"alias": self.alias})


class SendTestEventView(DestinationActionView):
    def act(self, request: HttpRequest) -> None:
        if self.alias not in get_destinations():
            messages.error(
                request,
                _(
                    "“%(alias)s” cannot receive events: its alias is taken in settings, or it "
                    "is broken (see its health)."
                )
                % {"alias": self.alias},
            )
            return
        delivery = send_test_event(self.alias)
        if delivery is None:
            messages.error(request, _("Capture is disabled (ENABLED is False)."))
            return
        log_destination_action(
            self.alias, TEST, request.user, event_id=delivery.event.event_id, delivery=delivery.pk
        )
        messages.success(
            request,
            _("Test event %(event)s queued for “%(alias)s” (delivery #%(delivery)s).")
            % {"event": delivery.event.event_id, "alias": self.alias, "delivery": delivery.pk},
        )


# -- Admin-managed destinations: create, edit, rotate the secret --------------------------------


class DestinationDeleteView(ForbiddenAs403, generic.DeleteView):
    pass


class DestinationHistoryView(ForbiddenAs403, HistoryView):
    pass


class DestinationUsageView(ForbiddenAs403, UsageView):
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
    """After saving a form that generated a secret, show it (once) instead of redirecting."""

    form: DestinationForm
    object: ManagedDestination
    request: HttpRequest

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


class DestinationCreateView(ForbiddenAs403, SecretShownOnceMixin, generic.CreateView):
    def get_success_url(self) -> str:
        return url("detail", self.object.alias)


class DestinationEditView(ForbiddenAs403, SecretShownOnceMixin, generic.EditView):
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


class RotateSecretView(ForbiddenAs403, generic.base.WagtailAdminTemplateMixin, TemplateView):
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
        from ..checks import check_destination

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
