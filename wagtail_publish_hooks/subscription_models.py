"""Who is told about what: editors' and groups' subscriptions, and each user's preferences.

A :class:`Subscription` names who (a user, or a group: each member) and what (a page, with or
without the pages below it; a model, or one object of it, such as a snippet; or a workflow task),
and which event types. Pages are stored by id, so a subscription follows its page across moves.
:class:`NotificationPreferences` holds how a user is told: the channel, how often (at once, or an
hourly or daily digest), and whether their own actions are left out.

Subscriptions are data an admin user or an editor stores: nothing in them names code.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

#: The event types a subscription may name.
SUBSCRIBABLE_EVENT_TYPES = (
    "page.published",
    "page.unpublished",
    "page.moved",
    "page.deleted",
    "snippet.published",
    "snippet.unpublished",
    "workflow.submitted",
    "workflow.approved",
    "workflow.rejected",
)


class Subscription(models.Model):
    """A user or a group subscribed to events about a page (and its subpages), a model or one
    of its objects, or a workflow task."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="publish_hooks_subscriptions",
        verbose_name=_("user"),
    )
    group = models.ForeignKey(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="publish_hooks_subscriptions",
        verbose_name=_("group"),
    )
    page = models.ForeignKey(
        "wagtailcore.Page",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("page"),
    )
    #: With :attr:`page`: the pages below it too.
    include_subpages = models.BooleanField(_("and its subpages"), default=False)
    #: A model (every object of it), or with :attr:`object_id` one object (a snippet).
    content_type = models.ForeignKey(
        ContentType,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("model"),
    )
    object_id = models.CharField(_("object id"), max_length=255, blank=True, default="")
    task = models.ForeignKey(
        "wagtailcore.Task",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("workflow task"),
    )
    #: Event types (of :data:`SUBSCRIBABLE_EVENT_TYPES`).
    events = models.JSONField(_("events"), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(user__isnull=False, group__isnull=True)
                    | Q(user__isnull=True, group__isnull=False)
                ),
                name="wph_subscription_user_or_group",
            ),
            models.CheckConstraint(
                condition=(
                    Q(page__isnull=False, content_type__isnull=True, task__isnull=True)
                    | Q(page__isnull=True, content_type__isnull=False, task__isnull=True)
                    | Q(page__isnull=True, content_type__isnull=True, task__isnull=False)
                ),
                name="wph_subscription_one_target",
            ),
        ]
        indexes = [
            models.Index(fields=["page"], name="wph_subscription_page"),
            models.Index(fields=["content_type", "object_id"], name="wph_subscription_object"),
        ]

    def __str__(self) -> str:
        who = self.user if self.user_id is not None else self.group
        return f"{who}: {', '.join(self.events)}"


class Frequency(models.TextChoices):
    IMMEDIATE = "immediate", _("At once")
    HOURLY = "hourly", _("Hourly digest")
    DAILY = "daily", _("Daily digest")


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SLACK = "slack", _("Slack direct message")


class NotificationPreferences(models.Model):
    """How one user is told about what they watch."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="publish_hooks_preferences",
        verbose_name=_("user"),
    )
    channel = models.CharField(
        _("channel"), max_length=20, choices=Channel.choices, default=Channel.EMAIL
    )
    frequency = models.CharField(
        _("frequency"), max_length=20, choices=Frequency.choices, default=Frequency.IMMEDIATE
    )
    #: Leave out events the user caused.
    skip_own_actions = models.BooleanField(_("don't tell me about my own actions"), default=True)

    class Meta:
        verbose_name = _("notification preferences")
        verbose_name_plural = _("notification preferences")

    def __str__(self) -> str:
        return str(self.user)
