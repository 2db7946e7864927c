"""One multi-row ``INSERT`` of rows that differ in a few fields, without a model per row.

Django's ``bulk_create`` builds a model instance per row and prepares every field of every
instance for the database: for the hundred delivery rows of an event recorded for a hundred
destinations, that is most of the cost of the publish's outbox write. The rows of one event
share all but a few values, so here the shared ones are prepared once (from a template
instance, with the fields' own ``pre_save`` and ``get_db_prep_save``, defaults and ``auto_now``
included) and each row only adds its own few.

The statement is the one ``bulk_create`` would send (split in the same batches where the
database limits the parameters of a statement), with ``RETURNING`` the primary keys. Only on the
databases where that is known to return them in the rows' order (PostgreSQL, SQLite 3.35+):
:func:`can_insert_rows` says so, and callers use ``bulk_create`` elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, models

#: The database vendors whose ``INSERT ... RETURNING`` returns the rows in the order given
#: (Django's ``bulk_create`` relies on it there too).
RETURNING_VENDORS = ("postgresql", "sqlite")


def can_insert_rows(using: str) -> bool:
    connection = connections[using]
    return connection.vendor in RETURNING_VENDORS and bool(
        connection.features.can_return_rows_from_bulk_insert
    )


def insert_rows(
    template: models.Model,
    varying: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    using: str,
) -> list[Any]:
    """Insert one row per item of ``rows``: ``template``'s values, except the fields named in
    ``varying``, which take the item's values in that order. Returns the new primary keys, in
    the order of ``rows``. One statement (or one per batch, where the database limits
    parameters). Only where :func:`can_insert_rows`."""
    if not rows:
        return []
    connection = connections[using]
    meta = template._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    by_name = {field.name: index for index, field in enumerate(fields)}
    positions = [by_name[name] for name in varying]
    shared = [
        field.get_db_prep_save(field.pre_save(template, True), connection) for field in fields
    ]
    prepared: dict[tuple[int, Any], Any] = {}

    def prepare(position: int, value: Any) -> Any:
        key = (position, _hashable(value))
        if key not in prepared:
            prepared[key] = fields[position].get_db_prep_save(value, connection)
        return prepared[key]

    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(field.column)) for field in fields)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    pk_column = quote(str(meta.pk.column))
    batch = max(1, connection.ops.bulk_batch_size(fields, rows))
    pks: list[Any] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            params: list[Any] = []
            for row in chunk:
                values = list(shared)
                for position, value in zip(positions, row, strict=True):
                    values[position] = prepare(position, value)
                params.extend(values)
            # Only quoted identifiers of the model and placeholders are formatted in; every
            # value is a parameter.
            sql = (
                f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "  # noqa: S608
                f"{', '.join([placeholders] * len(chunk))} RETURNING {pk_column}"
            )
            cursor.execute(sql, params)
            pks.extend(row[0] for row in cursor.fetchall())
    return pks


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return ("list", tuple(_hashable(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _hashable(v)) for k, v in value.items())))
    # The type too: ``True == 1`` and ``1 == 1.0``, but they are not the same JSON.
    return (type(value), value)
