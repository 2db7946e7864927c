"""Email attempts recorded the addresses they sent to as ``sent: <address>`` lines of the response
body; they are recorded in ``Attempt.detail["sent"]`` now, which is what a retry reads so that it
mails nobody twice. This copies the addresses of earlier attempts across."""

from django.db import migrations

SENT_PREFIX = "sent: "


def copy_sent_addresses(apps, schema_editor):
    Attempt = apps.get_model("wagtail_publish_hooks", "Attempt")
    attempts = Attempt.objects.using(schema_editor.connection.alias).filter(
        response_body__contains=SENT_PREFIX
    )
    for attempt in attempts.iterator(chunk_size=500):
        detail = attempt.detail if isinstance(attempt.detail, dict) else {}
        if detail.get("sent"):
            continue
        sent = [
            line[len(SENT_PREFIX) :].strip().lower()
            for line in (attempt.response_body or "").splitlines()
            if line.startswith(SENT_PREFIX)
        ]
        if sent:
            attempt.detail = {**detail, "sent": sent}
            attempt.save(update_fields=["detail"])


class Migration(migrations.Migration):
    dependencies = [
        ("wagtail_publish_hooks", "0012_upkeep"),
    ]

    operations = [
        migrations.RunPython(copy_sent_addresses, migrations.RunPython.noop, elidable=True),
    ]
