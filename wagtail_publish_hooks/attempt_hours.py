"""The destinations' attempts per hour and outcome, kept for the hours that are over.

The destinations screen charts each destination's attempts of the last seven days. Counting them
from the attempts themselves means joining every attempt of the week to its delivery (a quarter
of a million rows on a busy site): too slow for a page. An hour's attempts no longer change once
the hour is over and every worker that could still record one has lost its claim
(``LEASE_SECONDS``), so its counts are kept here, once, the first time the screen needs them
(:func:`wagtail_publish_hooks.admin.destinations.chart.hourly_outcomes`); only the last hour or
two are counted from the attempts on each view.

Each kept hour has one row per destination that had attempts in it, and one row with an empty
``destination`` that says the hour is kept (with the counts of every destination together). Rows
older than the chart's window are deleted when new ones are written.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AttemptHour(models.Model):
    """How the attempts to ``destination`` started in the hour from ``hour`` ended."""

    hour = models.DateTimeField(_("hour"))
    #: Empty on the row that marks the hour as kept.
    destination = models.CharField(_("destination"), max_length=100, blank=True)
    #: By outcome (:class:`~wagtail_publish_hooks.models.AttemptOutcome`).
    success = models.PositiveIntegerField(_("succeeded"), default=0)
    retry = models.PositiveIntegerField(_("will be retried"), default=0)
    failure = models.PositiveIntegerField(_("failed"), default=0)

    class Meta:
        verbose_name = _("attempts in an hour")
        verbose_name_plural = _("attempts per hour")
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["hour", "destination"], name="wph_attempt_hour_unique")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.destination or '(all)'}"
