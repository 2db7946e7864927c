from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wagtail_publish_hooks", "0010_capture_failures"),
    ]

    operations = [
        migrations.AddField(
            model_name="manageddestination",
            name="retry_schedule",
            field=models.JSONField(blank=True, null=True, verbose_name="retry schedule"),
        ),
        migrations.AddField(
            model_name="manageddestination",
            name="max_attempts",
            field=models.PositiveIntegerField(blank=True, null=True, verbose_name="max attempts"),
        ),
        migrations.AddField(
            model_name="destinationstate",
            name="failing_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
