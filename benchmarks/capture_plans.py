"""The statements capture adds to a publish, their shape and their query plans.

Used by ``publish_overhead.py``: which of a publish's SQL statements the plugin added, how many
there are once a bulk insert that the database driver split is counted once, and the plan
(``EXPLAIN``) of each one that reads or updates rows, with the scans of the big tables in it.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

#: The tables that grow with history: a plan must never scan them whole.
BIG_TABLES = (
    "wagtail_publish_hooks_delivery",
    "wagtail_publish_hooks_event",
    "wagtail_publish_hooks_attempt",
)

_INSERT = re.compile(r'^\s*INSERT INTO "?([\w]+)"?', re.IGNORECASE)
_EXPLAINABLE = re.compile(r"^\s*(SELECT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)


def normalise(sql: str) -> str:
    sql = re.sub(r"'[^']*'", "?", sql)
    sql = re.sub(r'"s\d+_x\d+"', '"sp"', sql)  # savepoint names
    return re.sub(r"\b\d+\b", "?", sql)


def added_statements(baseline: list[str], other: list[str]) -> list[str]:
    """The statements of ``other`` that ``baseline`` does not have, in order."""
    remaining = Counter(normalise(sql) for sql in baseline)
    added = []
    for sql in other:
        key = normalise(sql)
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            added.append(sql)
    return added


def statement_count(statements: list[str]) -> int:
    """How many statements, counting consecutive ``INSERT``\\ s into one table once.

    Django splits a bulk insert into batches where the database limits the parameters of a
    statement (SQLite before Django 6.0: 999), so 100 delivery rows can take two ``INSERT``\\ s
    where 10 take one: one bulk insert all the same, and counted as one here.
    """
    count = 0
    previous = None
    for sql in statements:
        match = _INSERT.match(sql)
        table = match.group(1) if match else None
        if table is None or table != previous:
            count += 1
        previous = table
    return count


def explain(sql: str, *, vendor: str, seqscan: bool = True) -> str:
    """The query plan of ``sql`` (as captured, parameters inlined) without running it."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        if vendor == "postgresql":
            with transaction.atomic():
                if not seqscan:
                    cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("EXPLAIN " + sql)
                return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def big_table_scans(plan: str, *, vendor: str) -> list[str]:
    """The lines of ``plan`` that read one of :data:`BIG_TABLES` whole."""
    names = "|".join(BIG_TABLES)
    if vendor == "postgresql":
        pattern = re.compile(rf"Seq Scan on ({names})\w*")
    else:
        # SQLite: "SCAN t" reads every row (of the table, or of a whole index); "SEARCH t
        # USING INDEX" is a lookup.
        pattern = re.compile(rf"\bSCAN ({names})\w*")
    return [line.strip() for line in plan.splitlines() if pattern.search(line)]


def capture_plans(
    added: list[str], *, vendor: str, seqscan: bool = True
) -> list[tuple[str, str, list[str]]]:
    """``(statement, plan, scans of big tables)`` for each added statement that reads rows."""
    plans = []
    for sql in added:
        if not _EXPLAINABLE.match(sql):
            continue
        plan = explain(sql, vendor=vendor, seqscan=seqscan)
        plans.append((sql, plan, big_table_scans(plan, vendor=vendor)))
    return plans


def short(sql: str, width: int = 110) -> str:
    return sql if len(sql) <= width else sql[: width - 3] + "..."


def describe_database() -> dict[str, Any]:
    from django.db import connection

    vendor = connection.vendor
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
            cursor.execute("SHOW synchronous_commit")
            sync = cursor.fetchone()[0]
        return {"vendor": vendor, "label": f"PostgreSQL {version} synchronous_commit={sync}"}
    import sqlite3

    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        mode = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous")
        sync = {0: "off", 1: "normal", 2: "full", 3: "extra"}.get(cursor.fetchone()[0], "?")
    label = f"SQLite {sqlite3.sqlite_version} journal_mode={mode} synchronous={sync}"
    return {"vendor": vendor, "label": label}
