"""Actions on one destination, of the settings or managed in the admin: disable, enable and
send a test event."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.generic import View

from ...conf import is_builtin_alias
from ...custom_events import send_test_event
from ...models import DestinationState, ManagedDestination
from ...registry import get_destinations, settings_destinations
from ..permissions import ForbiddenMixin, can_manage_destinations, forbidden
from .audit import DISABLE, ENABLE, TEST, log_destination_action
from .rows import url


class DestinationActionView(ForbiddenMixin, View):
    """A POST that acts on one destination and returns to where it came from."""

    http_method_names = ["post"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not can_manage_destinations(request.user):
            return forbidden(request)
        self.alias = kwargs["alias"]
        if is_builtin_alias(self.alias):
            raise Http404  # Python receivers are code, watching the package's: not acted on here
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
