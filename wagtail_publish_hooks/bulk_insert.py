"""One multi-row ``INSERT`` of rows that differ in a few fields, without a model per row.

Django's ``bulk_create`` builds a model instance per row and prepares every field of every
instance for the database: for the hundred delivery rows of an event recorded for a hundred
destinations, that is most of the cost of the publish's outbox write. The rows of one event
share all but a few values, so here the shared ones are prepared once (from a template
instance, with the fields' own ``pre_save`` and ``get_db_prep_save``, defaults and ``auto_now``
included) and each row only adds its own few.

On SQLite the statement is the one ``bulk_create`` would send (split in the same batches where
the database limits the parameters of a statement). On PostgreSQL it is one
``INSERT … SELECT … FROM unnest(…)`` whatever the number of rows: each shared value is one
parameter, and each varying field one array of the rows' values. Django's PostgreSQL backend
binds parameters on the client by default (psycopg's ``ClientCursor``), quoting each into the
statement's text; for a hundred rows of fourteen fields that quoting, not the database, took
most of the statement's time. Both return the primary keys (``RETURNING``), and only on the
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

    if connection.vendor == "postgresql" and positions and _can_unnest(fields, connection):
        arrays = [
            [prepare(position, row[index]) for row in rows]
            for index, position in enumerate(positions)
        ]
        return _insert_unnest(template, fields, positions, shared, arrays, connection)
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


def _insert_unnest(
    template: models.Model,
    fields: Sequence[models.Field],
    positions: Sequence[int],
    shared: Sequence[Any],
    arrays: Sequence[list[Any]],
    connection: Any,
) -> list[Any]:
    """PostgreSQL: ``INSERT … SELECT`` the shared values (one parameter each) with the
    varying fields' arrays (one parameter each), ``unnest`` making one row per item."""
    meta = template._meta
    quote = connection.ops.quote_name
    varying_at = {position: index for index, position in enumerate(positions)}
    select: list[str] = []
    params: list[Any] = []
    for position, field in enumerate(fields):
        if position in varying_at:
            select.append(f"v.c{varying_at[position]}")
        else:
            select.append(f"%s::{_base_type(field, connection)}")
            params.append(shared[position])
    params.extend(arrays)
    columns = ", ".join(quote(str(field.column)) for field in fields)
    unnest = ", ".join(
        f"%s::{_base_type(fields[position], connection)}[]" for position in positions
    )
    names = ", ".join(f"c{index}" for index in range(len(positions)))
    # Only quoted identifiers and the fields' own type names are formatted in; every value is a
    # parameter. ``unnest`` gives the rows in the arrays' order, and PostgreSQL returns the keys
    # in the order the rows were inserted (as Django's own ``UNNEST`` insert relies on).
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT {', '.join(select)} FROM unnest({unnest}) AS v({names}) "
        f"RETURNING {quote(str(meta.pk.column))}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _base_type(field: models.Field, connection: Any) -> str:
    """The field's column type without its parameters (``varchar``, not ``varchar(100)``): the
    type of an array of its values, which no length or precision may truncate."""
    return str(field.db_type(connection)).split("(")[0]


def _can_unnest(fields: Sequence[models.Field], connection: Any) -> bool:
    """Whether every field's values can travel as an array of its column type: not a field
    whose placeholder depends on its value (ranges, arrays, geometries), nor one of a type the
    backend does not know, as Django's own ``UNNEST`` insert requires."""
    return not any(
        hasattr(field, "get_placeholder_sql")
        or hasattr(field, "get_placeholder")
        or (
            getattr(field, "target_field", field) if field.is_relation else field
        ).get_internal_type()
        not in connection.data_types
        or not field.db_type(connection)
        for field in fields
    )


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return ("list", tuple(_hashable(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _hashable(v)) for k, v in value.items())))
    # The type too: ``True == 1`` and ``1 == 1.0``, but they are not the same JSON.
    return (type(value), value)
