import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("wagtail_publish_hooks", "0014_routing_filters"),
        ("wagtailcore", "0047_add_workflow_models"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        migrations.swappable_dependency(settings.WAGTAIL_PAGE_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="NotificationPreferences",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "channel",
                    models.CharField(
                        choices=[("email", "Email"), ("slack", "Slack direct message")],
                        default="email",
                        max_length=20,
                        verbose_name="channel",
                    ),
                ),
                (
                    "frequency",
                    models.CharField(
                        choices=[
                            ("immediate", "At once"),
                            ("hourly", "Hourly digest"),
                            ("daily", "Daily digest"),
                        ],
                        default="immediate",
                        max_length=20,
                        verbose_name="frequency",
                    ),
                ),
                (
                    "skip_own_actions",
                    models.BooleanField(
                        default=True, verbose_name="don't tell me about my own actions"
                    ),
                ),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="publish_hooks_preferences",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "notification preferences",
                "verbose_name_plural": "notification preferences",
            },
        ),
        migrations.CreateModel(
            name="Subscription",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "include_subpages",
                    models.BooleanField(default=False, verbose_name="and its subpages"),
                ),
                (
                    "object_id",
                    models.CharField(
                        blank=True, default="", max_length=255, verbose_name="object id"
                    ),
                ),
                ("events", models.JSONField(default=list, verbose_name="events")),
                (
                    "created_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, editable=False, verbose_name="created at"
                    ),
                ),
                (
                    "content_type",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="contenttypes.contenttype",
                        verbose_name="model",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "group",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="publish_hooks_subscriptions",
                        to="auth.group",
                        verbose_name="group",
                    ),
                ),
                (
                    "page",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.WAGTAIL_PAGE_MODEL,
                        verbose_name="page",
                    ),
                ),
                (
                    "task",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="wagtailcore.task",
                        verbose_name="workflow task",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="publish_hooks_subscriptions",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "subscription",
                "verbose_name_plural": "subscriptions",
                "ordering": ["pk"],
                "indexes": [
                    models.Index(fields=["page"], name="wph_subscription_page"),
                    models.Index(
                        fields=["content_type", "object_id"], name="wph_subscription_object"
                    ),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("group__isnull", True), ("user__isnull", False)),
                            models.Q(("group__isnull", False), ("user__isnull", True)),
                            _connector="OR",
                        ),
                        name="wph_subscription_user_or_group",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(
                                ("content_type__isnull", True),
                                ("page__isnull", False),
                                ("task__isnull", True),
                            ),
                            models.Q(
                                ("content_type__isnull", False),
                                ("page__isnull", True),
                                ("task__isnull", True),
                            ),
                            models.Q(
                                ("content_type__isnull", True),
                                ("page__isnull", True),
                                ("task__isnull", False),
                            ),
                            _connector="OR",
                        ),
                        name="wph_subscription_one_target",
                    ),
                ],
            },
        ),
    ]
