"""What the destinations screens show of each destination: its backend, description, health,
retry policy and chart, for those of the settings and those managed in the admin alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.http import Http404
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from ...models import DestinationState, ManagedDestination
from ...registry import (
    get_backend,
    get_destinations,
    managed_problems,
    retry_policy,
    settings_destinations,
)
from .chart import HourlyOutcomes, chart_svg, hourly_outcomes

NAMESPACE = "publish_hooks_destinations"
TEMPLATES = "wagtail_publish_hooks/admin/destinations/"


def url(name: str, *args: Any) -> str:
    return reverse(f"{NAMESPACE}:{name}", args=args)


@dataclass
class DestinationRow:
    alias: str
    backend_path: str
    description: str
    state: DestinationState | None
    outcomes: HourlyOutcomes = field(repr=False)
    #: The admin-managed destination, or ``None`` for one defined in settings.
    instance: ManagedDestination | None = None
    #: An admin-managed destination ignored because settings define the same alias.
    shadowed: bool = False
    #: Why an admin-managed destination is not built (it names code, or its secrets cannot
    #: be decrypted), or ``""``.
    problem: str = ""

    def __str__(self) -> str:
        return self.alias

    @property
    def managed(self) -> bool:
        return self.instance is not None

    @property
    def backend_name(self) -> str:
        return self.backend_path.rsplit(".", 1)[-1]

    @property
    def is_disabled(self) -> bool:
        return self.state is not None and self.state.is_disabled

    @cached_property
    def chart(self) -> SafeString:
        return chart_svg(self.outcomes, hour_labels=False)

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


def find_row(alias: str) -> DestinationRow:
    managed = ManagedDestination.objects.filter(alias=alias).first()
    in_settings = alias in settings_destinations()
    if managed is None and not in_settings:
        raise Http404(_("No destination named %(alias)s.") % {"alias": alias})
    settings_rows, managed_rows = build_rows(
        [alias] if in_settings else [], [managed] if managed is not None else []
    )
    return (settings_rows or managed_rows)[0]
