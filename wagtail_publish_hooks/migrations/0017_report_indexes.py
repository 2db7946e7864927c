"""Indexes for the deliveries report at scale: the "Object id" filter, the sort by attempts, and
(on PostgreSQL, where the ``pg_trgm`` extension can be had) the search by title.

The migration is not atomic: on PostgreSQL each index is built ``CONCURRENTLY``, so a live site
keeps writing deliveries while it runs. A build interrupted half-way leaves an invalid index
behind; drop it (``DROP INDEX CONCURRENTLY name``) and run ``migrate`` again. Other databases
build the indexes the ordinary way.

The trigram index needs the ``pg_trgm`` extension. The migration creates it when it is missing
and the database user may (``CREATE`` on the database, PostgreSQL 13 or later, where pg_trgm is a
trusted extension); otherwise it leaves the index out and says so, and the title search reads the
events table instead. docs/deployment.md tells how to add it afterwards.
"""

import logging

from django.db import DatabaseError, migrations, models, transaction

from wagtail_publish_hooks.migration_operations import AddIndexLive

logger = logging.getLogger("wagtail_publish_hooks")

TRIGRAM_INDEX = "wph_event_title_trgm"
EVENT_TABLE = "wagtail_publish_hooks_event"


def _has_trigram_extension(cursor) -> bool:
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
    return cursor.fetchone() is not None


def add_trigram_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if not _has_trigram_extension(cursor):
            try:
                with transaction.atomic(using=connection.alias):
                    cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            except DatabaseError as error:
                logger.warning(
                    "The pg_trgm extension could not be created (%s): the deliveries report's "
                    "title search will read the whole events table. See the deployment guide "
                    "to add the index %s later.",
                    str(error).strip().splitlines()[0],
                    TRIGRAM_INDEX,
                )
                return
        # The expression is the one Django's icontains compares: UPPER("object_repr"::text).
        cursor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{TRIGRAM_INDEX}" ON "{EVENT_TABLE}" '
            'USING gin ((UPPER("object_repr"::text)) gin_trgm_ops)'
        )


def remove_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # The extension stays: other applications may use it.
        cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{TRIGRAM_INDEX}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("wagtail_publish_hooks", "0016_overview_indexes"),
    ]

    operations = [
        AddIndexLive(
            model_name="event",
            index=models.Index(fields=["object_id"], name="wph_event_object_id"),
        ),
        AddIndexLive(
            model_name="delivery",
            index=models.Index(
                fields=["attempts", "created_at"], name="wph_delivery_attempts_created"
            ),
        ),
        migrations.RunPython(add_trigram_index, remove_trigram_index, elidable=False),
    ]
