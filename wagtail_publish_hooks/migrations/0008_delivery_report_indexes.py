"""Indexes for the deliveries report: filtered by status or destination, newest first."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wagtail_publish_hooks", "0007_managed_destination"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(fields=["status", "created_at"], name="wph_delivery_status_created"),
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                fields=["destination", "created_at"], name="wph_delivery_dest_created"
            ),
        ),
    ]
