"""Encrypt the secrets of destinations managed in the admin; the reverse decrypts them.

Which option values are secrets is decided as when saving (the backend's declared secret
options, and any key whose name looks secret). A backend outside the registry of backends
allowed in the admin is never imported: only the name rule applies to its row.
"""

from django.db import migrations


def _secret_rule(path):
    from wagtail_publish_hooks.registry import secret_option_rule

    return secret_option_rule(path)


def encrypt_rows(apps, schema_editor):
    from wagtail_publish_hooks.encryption import encrypt, map_secret_values

    model = apps.get_model("wagtail_publish_hooks", "ManagedDestination")
    for row in model.objects.using(schema_editor.connection.alias).all():
        row.secrets = [encrypt(secret) for secret in row.secrets or []]
        row.options = map_secret_values(row.options or {}, _secret_rule(row.backend), encrypt)
        row.save(update_fields=["secrets", "options"])


def decrypt_rows(apps, schema_editor):
    from wagtail_publish_hooks.encryption import decrypt, decrypt_all

    model = apps.get_model("wagtail_publish_hooks", "ManagedDestination")
    for row in model.objects.using(schema_editor.connection.alias).all():
        row.secrets = [decrypt(secret) for secret in row.secrets or []]
        row.options = decrypt_all(row.options or {})
        row.save(update_fields=["secrets", "options"])


class Migration(migrations.Migration):
    dependencies = [
        ("wagtail_publish_hooks", "0008_delivery_report_indexes"),
    ]

    operations = [migrations.RunPython(encrypt_rows, decrypt_rows)]
