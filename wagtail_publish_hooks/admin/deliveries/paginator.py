"""Pagination of the deliveries listings that never counts a whole table.

Wagtail's listings count every matching row (``SELECT COUNT(*)``) to number the pages; on a
table of a million deliveries that count reads the whole table on every load. These listings
count at most :data:`COUNT_LIMIT` rows (``SELECT COUNT(*) FROM (… LIMIT 10001)``): beyond that
they say "more than 10,000" and number the pages that far. Older rows are reached by narrowing
the filters or by sorting the other way. Unfiltered, on PostgreSQL, the planner's estimate of the
table's rows answers first: a table estimated at more than twice the limit is not counted at all.
Bulk actions never use this count: they act on their own selection, row by row
(:mod:`.actions`).
"""

from __future__ import annotations

import math
from typing import Any

from django.db import connections, router, transaction
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from wagtail.admin.paginator import WagtailPaginator

#: The most rows a listing counts.
COUNT_LIMIT = 10_000
#: The most rows a title search counts.
SEARCH_COUNT_LIMIT = 1_000


def estimated_rows(model: Any) -> int:
    """PostgreSQL's estimate of the rows of ``model``'s table (as of its last ``ANALYZE``), or
    -1 where there is none (another database, a table never analysed)."""
    connection = connections[router.db_for_read(model)]
    if connection.vendor != "postgresql":
        return -1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else -1


def bounded_count(rows: Any) -> int:
    """``rows.count()`` of a queryset already limited to a few thousand rows; on PostgreSQL
    without parallel workers. The planner prices a count of joined rows high enough to start
    them, but for at most ``COUNT_LIMIT + 1`` rows starting them costs more than they save (a
    count of 10,001 deliveries of one event type: 24 to 32 ms with two workers, 14 to 21 ms
    without, at a million deliveries)."""
    connection = connections[rows.db]
    if connection.vendor != "postgresql":
        return int(rows.count())
    with transaction.atomic(using=rows.db), connection.cursor() as cursor:
        # SET LOCAL lasts to the end of the transaction: this one's, or, inside a request's
        # own transaction (ATOMIC_REQUESTS), to the end of the request.
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        return int(rows.count())


class CappedPaginator(WagtailPaginator):
    """A paginator that counts at most ``count_limit`` rows; :attr:`capped` tells whether more
    match, and :attr:`count` is then ``count_limit``."""

    count_limit = COUNT_LIMIT

    def __init__(self, *args: Any, count_limit: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if count_limit is not None:
            self.count_limit = count_limit

    @cached_property
    def bounded_count(self) -> int:
        """How many rows match, up to ``count_limit + 1``: one query whatever the table's size.
        The rows' ordering and columns are dropped; the filters stay."""
        rows = self.object_list
        if not hasattr(rows, "values"):
            return min(len(rows), self.count_limit + 1)
        if not rows.query.where and estimated_rows(rows.model) > 2 * self.count_limit:
            return self.count_limit + 1
        return bounded_count(rows.order_by().values("pk")[: self.count_limit + 1])

    @cached_property
    def capped(self) -> bool:
        return self.bounded_count > self.count_limit

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return min(self.bounded_count, self.count_limit)

    @cached_property
    def num_pages(self) -> int:  # type: ignore[override]
        if self.count == 0 and not self.allow_empty_first_page:
            return 0
        hits = max(1, self.count - self.orphans)
        return math.ceil(hits / self.per_page)

    @cached_property
    def items_count_label(self) -> str:
        if self.capped:
            return _("More than %(count)s %(items)s") % {
                "count": f"{self.count_limit:,}",
                "items": self.verbose_name_plural,
            }
        return super().items_count_label

    def matches_label(self) -> str:
        """ "There are 12 matches", or "There are more than 10,000 matches"."""
        if self.capped:
            return _("There are more than %(count)s matches") % {"count": f"{self.count_limit:,}"}
        return ngettext("There is %(count)s match", "There are %(count)s matches", self.count) % {
            "count": f"{self.count:,}"
        }

    def pages_label(self, number: int) -> str:
        """ "Page 3 of 12", or "Page 3 of 200+" when the count was capped."""
        total = f"{self.num_pages:,}" + ("+" if self.capped else "")
        return _("Page %(number)s of %(total)s") % {"number": f"{number:,}", "total": total}
