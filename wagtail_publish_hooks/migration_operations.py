"""Migration operations of the package's own, for tables that may hold millions of rows."""

from __future__ import annotations

from typing import Any

from django.db import migrations


class AddIndexLive(migrations.AddIndex):
    """``AddIndex``, built ``CREATE INDEX CONCURRENTLY`` on PostgreSQL, so that a live site goes
    on writing the table while the index is built (the migration must not be atomic: set
    ``atomic = False``). Other databases build it the ordinary way. Unlike
    ``django.contrib.postgres.operations.AddIndexConcurrently`` it needs no import of
    ``django.contrib.postgres``, which a site on SQLite may not be able to import.

    A build interrupted half-way leaves an invalid index behind on PostgreSQL: drop it
    (``DROP INDEX CONCURRENTLY name``) and run ``migrate`` again."""

    def _options(self, schema_editor: Any) -> dict[str, bool]:
        return {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, **self._options(schema_editor))

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, **self._options(schema_editor))
