"""Load for the concurrency, crash-safety and soak runs: record many events, report the outcome.

Usable in a process where Django is set up (``seed()``, ``report()``), or from another process
against a database that is not the test run's own::

    python -m tests.load seed --events 1000 --destination a --destination b [--runs 4]
    python -m tests.load report      # JSON: every delivery and every task run

Every event carries ``{"n": <its number>}`` as data, so that what a sink received can be told
apart from the ``webhook-id`` it came with.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

#: The event type of the load; not a Wagtail event, so nothing else routes it.
LOAD_EVENT = "load.tested"


def seed(events: int, destinations: list[str], *, runs: int = 1, chunk: int = 500) -> None:
    """Record ``events`` events, each to every one of ``destinations``, and ``runs`` task runs.

    Recorded ``chunk`` events per transaction, as a busy site would; each transaction enqueues
    one delivery run (the outbox's own dispatch), and more are enqueued up to ``runs``.
    """
    from django.db import transaction

    from wagtail_publish_hooks.outbox import record_event
    from wagtail_publish_hooks.tasks import enqueue_delivery_run

    enqueued = 0
    for start in range(0, events, chunk):
        with transaction.atomic():
            for n in range(start, min(start + chunk, events)):
                record_event(LOAD_EVENT, data={"n": n}, destinations=destinations)
        enqueued += 1
    for _ in range(runs - enqueued):
        enqueue_delivery_run()


def report() -> dict[str, Any]:
    """Every delivery (destination, event id, n, status, attempts) and every task run."""
    from wagtail_publish_hooks.models import Delivery
    from wagtail_publish_hooks.tasks import get_task_backend

    deliveries = [
        {
            "destination": destination,
            "event_id": event_id,
            "n": (payload.get("data") or {}).get("n"),
            "status": status,
            "attempts": attempts,
            "attempt_rows": attempt_rows,
        }
        for destination, event_id, payload, status, attempts, attempt_rows in _delivery_rows(
            Delivery
        )
    ]
    tasks: list[dict[str, Any]] = []
    if type(get_task_backend()).__module__.startswith("django_tasks_db"):
        from django_tasks_db.models import DBTaskResult

        tasks = [
            {
                "status": row.status,
                "worker_ids": row.worker_ids,
                "return_value": row.return_value,
                "deferred": row.run_after is not None and row.run_after.year < 9999,
            }
            for row in DBTaskResult.objects.filter(task_path__endswith="deliver_due_deliveries")
        ]
    return {"deliveries": deliveries, "tasks": tasks}


def _delivery_rows(delivery_model: Any) -> list[tuple]:
    from django.db.models import Count

    return list(
        delivery_model.objects.order_by("pk")
        .annotate(attempt_rows=Count("attempt_set"))
        .values_list(
            "destination", "event__event_id", "event__payload", "status", "attempts", "attempt_rows"
        )
    )


def main(argv: list[str] | None = None) -> None:
    import django

    django.setup()
    parser = argparse.ArgumentParser(prog="python -m tests.load")
    sub = parser.add_subparsers(dest="action", required=True)
    seeding = sub.add_parser("seed")
    seeding.add_argument("--events", type=int, required=True)
    seeding.add_argument("--destination", action="append", required=True)
    seeding.add_argument("--runs", type=int, default=1)
    sub.add_parser("report")
    args = parser.parse_args(argv)
    if args.action == "seed":
        seed(args.events, args.destination, runs=args.runs)
    else:
        json.dump(report(), sys.stdout)


if __name__ == "__main__":
    main()
