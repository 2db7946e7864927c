from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wagtail_publish_hooks", "0013_email_sent_detail"),
    ]

    operations = [
        migrations.AddField(
            model_name="manageddestination",
            name="api_fields",
            field=models.JSONField(blank=True, null=True, verbose_name="API fields"),
        ),
        migrations.AddField(
            model_name="manageddestination",
            name="changed_fields",
            field=models.JSONField(blank=True, null=True, verbose_name="changed fields"),
        ),
        migrations.AddField(
            model_name="manageddestination",
            name="collections",
            field=models.JSONField(blank=True, null=True, verbose_name="collections"),
        ),
        migrations.AddField(
            model_name="manageddestination",
            name="locales",
            field=models.JSONField(blank=True, null=True, verbose_name="locales"),
        ),
        migrations.AddField(
            model_name="manageddestination",
            name="sections",
            field=models.JSONField(blank=True, null=True, verbose_name="sections"),
        ),
        migrations.AddField(
            model_name="manageddestination",
            name="sites",
            field=models.JSONField(blank=True, null=True, verbose_name="sites"),
        ),
    ]
