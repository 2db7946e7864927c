"""The administrators' "Subscriptions" screens (Settings → Publish hooks): a user or a group
subscribed to a section, a model or a workflow task, with the events.

Opened by the model permissions on ``Subscription`` (``view`` lists, ``add``, ``change`` and
``delete`` as their names say). A subscription to a page the administrator has no access to is
listed without its title and cannot be opened: nobody reads a page's title here that they could
not read in the page explorer.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import reverse_lazy
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.admin.views import generic
from wagtail.admin.views.generic.history import HistoryView
from wagtail.admin.views.generic.usage import UsageView
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.admin.widgets import AdminPageChooser
from wagtail.models import Page, Task
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.permissions import policy_registry

from ...subscription_models import SUBSCRIBABLE_EVENT_TYPES, Subscription
from ..permissions import ForbiddenMixin, ObjectAccess, is_snippet_model, page_models
from .account import describe

SUBSCRIPTIONS = "publish_hooks_subscriptions"
SECTION, MODEL, TASK = "section", "model", "task"


def subscription_policy() -> ModelPermissionPolicy:
    policy = policy_registry.get_by_type(Subscription)
    assert isinstance(policy, ModelPermissionPolicy)
    return policy


def can_view_subscriptions(user: Any) -> bool:
    return subscription_policy().user_has_any_permission(user, ["view", "add", "change", "delete"])


def subscribable_content_types() -> list[tuple[int, str]]:
    """Page types and snippet models, by their names."""
    from django.apps import apps

    models = [m for m in apps.get_models() if m in page_models() or is_snippet_model(m)]
    content_types = ContentType.objects.get_for_models(*models, for_concrete_models=False)
    return sorted(
        (
            (ct.pk, str(model._meta.verbose_name).capitalize())
            for model, ct in content_types.items()
        ),
        key=lambda choice: choice[1].casefold(),
    )


class SubscriptionForm(forms.ModelForm):
    target = forms.ChoiceField(
        label=_("Subscribed to"),
        choices=[
            (SECTION, _("A page or section")),
            (MODEL, _("A model")),
            (TASK, _("A workflow task")),
        ],
        widget=forms.RadioSelect,
    )
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=[(event, event) for event in SUBSCRIBABLE_EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Subscription
        fields = [
            "user",
            "group",
            "target",
            "page",
            "include_subpages",
            "content_type",
            "task",
            "events",
        ]
        widgets = {"page": AdminPageChooser()}

    def __init__(self, *args: Any, for_user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.for_user = for_user
        content_type = self.fields["content_type"]
        task = self.fields["task"]
        assert isinstance(content_type, forms.ModelChoiceField)
        assert isinstance(task, forms.ModelChoiceField)
        labels = dict(subscribable_content_types())
        content_type.queryset = ContentType.objects.filter(pk__in=list(labels))
        content_type.label_from_instance = lambda ct: labels.get(ct.pk, str(ct))  # type: ignore[method-assign, assignment]
        task.queryset = Task.objects.filter(active=True)
        if self.instance.pk is not None:
            self.initial["target"] = (
                SECTION if self.instance.page_id else TASK if self.instance.task_id else MODEL
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        if bool(data.get("user")) == bool(data.get("group")):
            self.add_error(None, _("Choose a user or a group (one of them)."))
        target = data.get("target")
        required = {SECTION: "page", MODEL: "content_type", TASK: "task"}.get(target or "")
        if required and not data.get(required):
            self.add_error(required, _("This field is required."))
        # Only the chosen target is kept.
        for kind, field in ((SECTION, "page"), (MODEL, "content_type"), (TASK, "task")):
            if target != kind:
                data[field] = None
        if target != SECTION:
            data["include_subpages"] = False
        page = data.get("page")
        if page is not None and not ObjectAccess(self.for_user).can_see_page(page):
            self.add_error("page", _("Choose a page you have access to."))
        # A model as a whole: an administrator subscribes to every object, not to one.
        self.instance.object_id = ""
        return data


class FormForAdministratorMixin:
    """The form knows the administrator: their access to pages bounds what they may choose."""

    request: Any

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "for_user": self.request.user}  # type: ignore[misc]


class VisibleTargetMixin:
    """A subscription to a page the administrator cannot see is not opened (403): its screens
    would show the page's title. Decided in ``dispatch``, under :class:`ForbiddenMixin`, since
    some of Wagtail's views find their object in ``setup``."""

    request: Any

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        pk = str(kwargs.get("pk", ""))
        subscription = Subscription.objects.filter(pk=pk) if pk.isdigit() else None
        page_id = (
            subscription.values_list("page", flat=True).first()
            if subscription is not None
            else None
        )
        if page_id is not None:
            target = Page.objects.filter(pk=page_id).first()
            if target is not None and not ObjectAccess(request.user).can_see_page(target):
                raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class SubscriptionCreateView(ForbiddenMixin, FormForAdministratorMixin, generic.CreateView):
    def save_instance(self) -> Any:
        instance = self.form.save(commit=False)
        instance.created_by = self.request.user
        instance.save()
        return instance


class SubscriptionEditView(
    ForbiddenMixin, VisibleTargetMixin, FormForAdministratorMixin, generic.EditView
):
    pass


class SubscriptionDeleteView(ForbiddenMixin, VisibleTargetMixin, generic.DeleteView):
    pass


class SubscriptionHistoryView(ForbiddenMixin, VisibleTargetMixin, HistoryView):
    pass


class SubscriptionUsageView(ForbiddenMixin, VisibleTargetMixin, UsageView):
    pass


class SubscriptionIndexView(ForbiddenMixin, generic.IndexView):
    any_permission_required = ["view", "add", "change", "delete"]
    paginate_by = 50

    def get_base_queryset(self) -> QuerySet[Subscription]:
        return Subscription.objects.select_related("user", "group", "page", "task", "content_type")

    @cached_property
    def access(self) -> ObjectAccess:
        return ObjectAccess(self.request.user)

    @cached_property
    def columns(self) -> list[Column]:
        return [
            TitleColumn(
                "who",
                label=_("Who"),
                accessor=lambda s: str(s.user if s.user_id else s.group),
                get_url=lambda s: self.get_edit_url(s),
            ),
            Column("what", label=_("Subscribed to"), accessor=lambda s: describe(s, self.access)),
            Column("events", label=_("Events"), accessor=lambda s: ", ".join(s.events)),
        ]


class SubscriptionViewSet(ModelViewSet):
    model = Subscription
    name = SUBSCRIPTIONS
    url_prefix = "publish-hooks/subscriptions"
    icon = "view"
    add_to_admin_menu = False
    copy_view_enabled = False
    inspect_view_enabled = False
    index_view_class = SubscriptionIndexView
    add_view_class = SubscriptionCreateView
    edit_view_class = SubscriptionEditView
    delete_view_class = SubscriptionDeleteView
    history_view_class = SubscriptionHistoryView
    usage_view_class = SubscriptionUsageView

    def get_form_class(self, for_update: bool = False) -> type[SubscriptionForm]:
        return SubscriptionForm

    def get_permissions_to_register(self) -> Any:
        content_type = ContentType.objects.get_for_model(Subscription)
        return Permission.objects.filter(content_type=content_type)


class SubscriptionsMenuItem(MenuItem):
    def is_shown(self, request: Any) -> bool:
        return can_view_subscriptions(request.user)


def subscriptions_menu_item() -> MenuItem:
    return SubscriptionsMenuItem(
        _("Subscriptions"),
        reverse_lazy(f"{SUBSCRIPTIONS}:index"),
        name="publish-hooks-subscriptions",
        icon_name="view",
        order=250,
    )
