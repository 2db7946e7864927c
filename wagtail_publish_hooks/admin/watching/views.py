"""An editor's own watching: the "Watch…" form of a page or a snippet, unwatching from the account
settings, and a page's watchers."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from wagtail.admin import messages
from wagtail.admin.utils import get_valid_next_url_from_request
from wagtail.admin.views.generic import WagtailAdminTemplateMixin

from ...subscription_models import Subscription
from ..permissions import ForbiddenMixin, forbidden
from .forms import SUBTREE, THIS_PAGE, WatchForm
from .targets import (
    PAGE_EVENTS,
    own_object_subscription,
    own_page_subscription,
    snippet_events,
    subscriptions_matching_page,
    watchable_page,
    watchable_snippet,
)

TEMPLATES = "wagtail_publish_hooks/admin/watching/"


def safe_next(request: HttpRequest, default: str) -> str:
    """``next`` from the form or the query string, if it stays on this site."""
    return get_valid_next_url_from_request(request) or default


class BaseWatchView(ForbiddenMixin, WagtailAdminTemplateMixin, View):
    """GET: the form, filled with the user's watch if any. POST: save it, or stop watching."""

    template_name = f"{TEMPLATES}watch.html"
    header_icon = "view"
    with_scope = False

    def find(self) -> tuple[Any, list[Any], Subscription | None]:
        raise NotImplementedError(f"{type(self).__name__} must define find()")

    def object_edit_url(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} must define object_edit_url()")

    def new_subscription(self) -> Subscription:
        raise NotImplementedError(f"{type(self).__name__} must define new_subscription()")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        # Found before anything else, so that a refusal says nothing about the object.
        try:
            self.object, self.events, self.subscription = self.find()
        except PermissionDenied:
            return forbidden(request)
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return _("Watch")

    def get_page_subtitle(self) -> str:
        return str(self.object)

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [
            *self.breadcrumbs_items,
            {"url": self.object_edit_url(), "label": str(self.object)},
            {"url": "", "label": self.get_page_title()},
        ]

    def initial(self) -> dict[str, Any]:
        if self.subscription is None:
            return {"scope": THIS_PAGE, "events": [self.events[0][0]]}
        return {
            "scope": SUBTREE if self.subscription.include_subpages else THIS_PAGE,
            "events": self.subscription.events,
        }

    def form(self, data: Any = None) -> WatchForm:
        return WatchForm(
            data, events=self.events, with_scope=self.with_scope, initial=self.initial()
        )

    def render(self, form: WatchForm) -> HttpResponse:
        context = self.get_context_data(
            form=form,
            object=self.object,
            subscription=self.subscription,
            back_url=self.object_edit_url(),
            action_url=self.request.path,
        )
        return TemplateResponse(self.request, self.template_name, context)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.render(self.form())

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if "stop" in request.POST:
            if self.subscription is not None:
                self.subscription.delete()
            messages.success(request, _("You no longer watch “%s”.") % self.object)
            return HttpResponseRedirect(safe_next(request, self.object_edit_url()))
        form = self.form(request.POST)
        if not form.is_valid():
            return self.render(form)
        subscription = self.subscription or self.new_subscription()
        subscription.events = form.cleaned_data["events"]
        subscription.include_subpages = form.cleaned_data.get("scope") == SUBTREE
        subscription.save()
        messages.success(request, _("You watch “%s”.") % self.object)
        return HttpResponseRedirect(safe_next(request, self.object_edit_url()))


class WatchPageView(BaseWatchView):
    with_scope = True

    def find(self) -> tuple[Any, list[Any], Subscription | None]:
        page = watchable_page(self.request.user, self.kwargs["page_id"])
        return page, list(PAGE_EVENTS), own_page_subscription(self.request.user, page)

    def object_edit_url(self) -> str:
        return reverse("wagtailadmin_pages:edit", args=(self.object.pk,))

    def new_subscription(self) -> Subscription:
        user: Any = self.request.user
        return Subscription(user=user, page=self.object, created_by=user)


class WatchSnippetView(BaseWatchView):
    def find(self) -> tuple[Any, list[Any], Subscription | None]:
        instance = watchable_snippet(
            self.request.user,
            self.kwargs["app_label"],
            self.kwargs["model_name"],
            self.kwargs["pk"],
        )
        events = list(snippet_events(type(instance)))
        return instance, events, own_object_subscription(self.request.user, instance)

    def object_edit_url(self) -> str:
        from wagtail.admin.admin_url_finder import AdminURLFinder

        return AdminURLFinder(self.request.user).get_edit_url(self.object) or reverse(
            "wagtailadmin_home"
        )

    def new_subscription(self) -> Subscription:
        content_type = ContentType.objects.get_for_model(self.object, for_concrete_model=False)
        user: Any = self.request.user
        return Subscription(
            user=user,
            content_type=content_type,
            object_id=str(self.object.pk),
            created_by=user,
        )


class UnwatchView(View):
    """POST only: remove one of the user's own subscriptions (someone else's is not found)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        subscription = get_object_or_404(Subscription, pk=pk, user=request.user)
        subscription.delete()
        messages.success(request, _("You no longer watch it."))
        return HttpResponseRedirect(safe_next(request, reverse("wagtailadmin_account")))


class PageWatchersView(ForbiddenMixin, WagtailAdminTemplateMixin, View):
    """Who is told about a page: the users and groups whose subscriptions concern it, by name
    only, shown to those who have access to the page."""

    template_name = f"{TEMPLATES}watchers.html"
    header_icon = "group"
    http_method_names = ["get"]

    def get_page_title(self) -> str:
        return _("Watchers")

    def get_page_subtitle(self) -> str:
        return self.page.get_admin_display_title()

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        edit_url = reverse("wagtailadmin_pages:edit", args=(self.page.pk,))
        return [
            *self.breadcrumbs_items,
            {"url": edit_url, "label": self.get_page_subtitle()},
            {"url": "", "label": self.get_page_title()},
        ]

    def get(self, request: HttpRequest, page_id: Any) -> HttpResponse:
        self.page = watchable_page(request.user, page_id)
        subscriptions = subscriptions_matching_page(self.page).select_related("user", "group")
        users = sorted(
            {s.user.get_full_name() or s.user.get_username() for s in subscriptions if s.user},
            key=str.casefold,
        )
        groups = sorted({s.group.name for s in subscriptions if s.group}, key=str.casefold)
        context = self.get_context_data(
            page=self.page,
            watcher_users=users,
            watcher_groups=groups,
            back_url=reverse("wagtailadmin_pages:edit", args=(self.page.pk,)),
        )
        return TemplateResponse(request, self.template_name, context)
