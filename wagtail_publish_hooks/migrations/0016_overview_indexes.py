"""The destinations' charts: an index on the attempts' start, and the hours already counted.

The index is built with ``CREATE INDEX CONCURRENTLY`` on PostgreSQL, so that a site with millions
of attempts keeps recording them while it is built (hence a migration outside a transaction); on
other databases it is an ordinary ``CREATE INDEX``.
"""

from django.db import migrations, models

from wagtail_publish_hooks.migration_operations import AddIndexLive


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("wagtail_publish_hooks", "0015_subscriptions"),
    ]

    operations = [
        migrations.CreateModel(
            name="AttemptHour",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("hour", models.DateTimeField(verbose_name="hour")),
                (
                    "destination",
                    models.CharField(blank=True, max_length=100, verbose_name="destination"),
                ),
                ("success", models.PositiveIntegerField(default=0, verbose_name="succeeded")),
                ("retry", models.PositiveIntegerField(default=0, verbose_name="will be retried")),
                ("failure", models.PositiveIntegerField(default=0, verbose_name="failed")),
            ],
            options={
                "verbose_name": "attempts in an hour",
                "verbose_name_plural": "attempts per hour",
                "default_permissions": (),
            },
        ),
        migrations.AddConstraint(
            model_name="attempthour",
            constraint=models.UniqueConstraint(
                fields=("hour", "destination"), name="wph_attempt_hour_unique"
            ),
        ),
        AddIndexLive(
            model_name="attempt",
            index=models.Index(fields=["started_at"], name="wph_attempt_started"),
        ),
    ]
