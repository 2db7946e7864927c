#!/usr/bin/env python
"""Retention at scale: ``publish_hooks prune`` of most of a year-like history, while editors
publish.

A generated history (``benchmarks/scale_data.py``: ``quick`` 50,000 deliveries, ``full``
1,000,000, over 60 days) is pruned with a retention of ``--days`` (6 by default: nine tenths of
it go, about 900,000 deliveries with their events and attempts at the full size), by
:func:`wagtail_publish_hooks.upkeep.prune` with its defaults, in a process of its own (as cron or
a worker would run it). Meanwhile this process publishes real pages to five webhook
destinations (``page.save_revision().publish()`` of :data:`PAGES` sibling pages in turn,
one every ``--gap`` seconds; no worker runs, so a publish records and enqueues), before the
prune, while it runs and after it. (Wagtail's publish updates every revision of its page, so
one page published thousands of times would grow slower over the run by itself.)

Printed:

- the prune's total time, rows deleted and rows per second;
- the longest statement and the longest batch transaction of the prune (each batch is one
  transaction: the row locks it takes on PostgreSQL, the write lock on SQLite, are held for no
  longer than it), and on PostgreSQL the oldest transaction of the prune's backend seen by
  sampling ``pg_stat_activity``, and whether a publish was ever seen waiting for a lock;
- the publishes' median and p95 while the prune runs, as ratios to those of the same run's
  publishes with no prune running: while it is held between two batches (it works ``--phase``
  seconds, then is held, in turn), and before and after it; and the median, over the turns, of
  each turn's ratio (publishes while it worked against those of the hold that followed), which
  the machine's load drifting over the run does not skew.

Checks (any size; the exit status is 1 when one fails, never because of a timing): no ``DELETE``
of the prune removes more rows than the batch size, and the plans of the prune's statements
(``EXPLAIN``) scan none of the four big tables sequentially. ``--size quick`` runs PostgreSQL and
SQLite, each in a process of its own; ``--size full`` PostgreSQL only, unless ``--database``.

    .venv/bin/python benchmarks/prune_scale.py --size quick
    .venv/bin/python benchmarks/prune_scale.py --size full
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import types
from collections import Counter
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.scale_data import DESTINATIONS, benchmark_database, populate  # noqa: E402

WEBHOOK = "wagtail_publish_hooks.backends.webhook.WebhookBackend"
#: The big tables, whose sequential scan fails the run. The coalesced links are a small table
#: (one delivery in a hundred) that the planner may rightly read whole for a batch's id list.
BIG_TABLES = ("_event", "_delivery", "_attempt")


def hooks() -> dict[str, Any]:
    """Five of the generated history's destinations, signed webhooks to a closed port (no
    worker runs: a publish records its deliveries and enqueues a run, nothing is sent)."""
    return {
        "DESTINATIONS": {
            alias: {
                "BACKEND": WEBHOOK,
                "EVENTS": ["page.*"],
                "OPTIONS": {"URL": "http://127.0.0.1:9/hooks", "SECRET": "whsec_" + "A" * 32},
            }
            for alias in DESTINATIONS[:5]
        },
        "ALLOW_PRIVATE_NETWORKS": True,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- The prune, in a process of its own --------------------------------------------------------


def _shape(sql: str) -> str:
    """A statement with its literals taken out: one plan is looked at per shape."""
    return " ".join(re.sub(r"\b\d+\b", "N", re.sub(r"IN \([\d, ]+\)", "IN (…)", sql)).split())


def _scans(connection: Any, sql: str, params: Any) -> list[str]:
    """The sequential scans of the big tables in ``sql``'s plan."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            found = re.findall(r"Seq Scan on (\w+)", plan)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
            # "SCAN t" reads all of t; "SCAN t USING (COVERING) INDEX" and "SEARCH" do not.
            # (SQLite names an alias when there is one: "SCAN c" walks the selected events.)
            found = [
                line.split()[1]
                for line in plan.splitlines()
                if line.startswith("SCAN ") and " USING " not in line
            ]
    return [name for name in found if name.endswith(BIG_TABLES)]


def prune_child(days: int, pipe: Any, paused: Any, idle: Any) -> None:
    """Run the prune with its defaults, timing every statement and every batch. Between two
    batches (in its rest, or past it) it holds still while ``paused`` is set (saying so with
    ``idle``), so that publishes can be timed without it in the middle of its run."""
    from django.db import connection

    from wagtail_publish_hooks import upkeep

    statements: list[tuple[float, int, str]] = []
    #: The statements run inside a batch's transaction: the ones holding its row locks.
    locking: list[tuple[float, str]] = []
    waits: list[float] = []
    plans: dict[str, list[str]] = {}
    examples: dict[str, str] = {}
    explaining = threading.local()

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if getattr(explaining, "on", False):
            return execute(sql, params, many, context)
        shape = _shape(sql)
        if shape not in plans:
            explaining.on = True
            try:
                plans[shape] = _scans(connection, sql, params)
                examples[shape] = " ".join(sql.split())
            finally:
                explaining.on = False
        began = time.perf_counter()
        result = execute(sql, params, many, context)
        took = time.perf_counter() - began
        if sql.startswith("BEGIN"):
            # SQLite's BEGIN IMMEDIATE waits for the write lock: a wait, not a lock held.
            waits.append(took)
            return result
        rows = context["cursor"].rowcount if sql.lstrip().upper().startswith("DELETE") else -1
        statements.append((took, rows, sql[:60]))
        if connection.in_atomic_block:
            locking.append((took, sql[:60]))
        return result

    transactions: list[float] = []
    batch = upkeep._prune_batch

    def timed_batch(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return batch(*args, **kwargs)
        finally:
            transactions.append(time.perf_counter() - began)

    upkeep._prune_batch = timed_batch

    def rest(seconds: float) -> None:
        # The prune's rest between two batches: it runs nothing, so it counts as held when a
        # hold is asked for meanwhile, and a hold asked for goes on past it until released.
        idle.set()
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.005))
        hold(paused, idle)
        idle.clear()

    upkeep.time = types.SimpleNamespace(monotonic=time.monotonic, sleep=rest)  # type: ignore[assignment]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT 0"
        )
        pipe.send({"pid": cursor.fetchone()[0]})
    with connection.execute_wrapper(wrapper):
        began = time.perf_counter()
        result = upkeep.prune(days, progress=lambda done: hold(paused, idle))
        elapsed = time.perf_counter() - began
    deletes = [s for s in statements if s[1] >= 0]
    longest = max(statements, default=(0.0, 0, ""))
    longest_locking = max(locking, default=(0.0, ""))
    durations = [s[0] for s in statements]
    pipe.send(
        {
            "elapsed": elapsed,
            "events": result.events,
            "deliveries": result.deliveries,
            "attempts": result.attempts,
            "links": result.links,
            "batches": result.batches,
            "statements": len(statements),
            "longest_statement": longest[0],
            "longest_statement_sql": longest[2],
            "longest_locking_statement": longest_locking[0],
            "longest_locking_statement_sql": longest_locking[1],
            "p99_statement": percentile(durations, 0.99) if durations else 0.0,
            "slowest": [
                (round(took * 1000, 1), sql.split("(")[0].strip())
                for took, _, sql in sorted(statements, reverse=True)[:3]
            ],
            "longest_transaction": max(transactions, default=0.0),
            "p95_transaction": percentile(transactions, 0.95) if transactions else 0.0,
            "longest_wait": max(waits, default=0.0),
            "most_rows": max((s[1] for s in deletes), default=0),
            "batch_size": upkeep.PRUNE_BATCH_SIZE,
            "seq_scans": sorted(
                {
                    f"{name} in {sql[:40]!r}"
                    for shape, scans in plans.items()
                    for name in scans
                    for sql in [examples[shape]]
                }
            ),
        }
    )
    connection.close()


def hold(paused: Any, idle: Any) -> None:
    if paused.is_set():
        idle.set()
        while paused.is_set():
            time.sleep(0.005)
        idle.clear()


# -- The publishes, and the watch on the prune's backend ------------------------------------------


#: The pages published in turn while the prune is measured, per size (a full run publishes
#: some 5,000 times, a quick one about 150).
PAGES = {"quick": 20, "full": 100}


class Publisher:
    """Publishes ``pages`` one after the other, round and round: each page gets an equal share of
    the revisions, so a publish costs the same at the end of a long run as at its start."""

    def __init__(self, pages: list[Any]) -> None:
        self.pages = pages
        self.turn = 0

    def __call__(self) -> None:
        page = self.pages[self.turn % len(self.pages)]
        self.turn += 1
        page.save_revision().publish()


def sibling_pages(page: Any, count: int) -> list[Any]:
    """``page`` and ``count - 1`` new draft pages beside it."""
    from tests.testapp.models import BlogPage

    parent = page.get_parent()
    pages = [page]
    for number in range(1, count):
        sibling = BlogPage(
            title=f"Benchmark post {number}", slug=f"benchmark-post-{number}", live=False
        )
        parent.add_child(instance=sibling)
        pages.append(sibling)
    return pages


def publish_for(publish: Publisher, seconds: float, gap: float) -> list[float]:
    """Publish every ``gap`` seconds for ``seconds``; the times."""
    times = []
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        began = time.perf_counter()
        publish()
        times.append(time.perf_counter() - began)
        time.sleep(gap)
    return times


def publish_alternating(
    publish: Publisher, child: Any, paused: Any, idle: Any, gap: float, phase: tuple[float, float]
) -> tuple[list[float], list[float], list[float]]:
    """While the prune runs, let it work for ``phase[0]`` seconds, then hold it for
    ``phase[1]``, and so on, publishing all along: the times of the publishes made while it
    worked (its pauses between batches included), of those made while it was held, and for each
    turn of work and hold that has at least two publishes in each, the ratio of the two medians
    (a pairing that cancels the machine's load drifting over the run)."""
    during: list[float] = []
    held: list[float] = []
    turns: list[tuple[list[float], list[float]]] = [([], [])]
    switch = time.monotonic() + phase[0]
    while child.is_alive():
        if time.monotonic() >= switch:
            if paused.is_set():
                paused.clear()
                switch = time.monotonic() + phase[0]
                turns.append(([], []))
            else:
                paused.set()
                switch = time.monotonic() + phase[1]
        state = "held" if paused.is_set() and idle.is_set() else "" if paused.is_set() else "on"
        began = time.perf_counter()
        publish()
        took = time.perf_counter() - began
        after = "held" if paused.is_set() and idle.is_set() else "" if paused.is_set() else "on"
        if state == after == "on":
            during.append(took)
            turns[-1][0].append(took)
        elif state == after == "held":
            held.append(took)
            turns[-1][1].append(took)
        time.sleep(gap)
    paused.clear()
    paired = [
        statistics.median(on) / statistics.median(off)
        for on, off in turns
        if len(on) >= 2 and len(off) >= 2
    ]
    return during, held, paired


class Watch(threading.Thread):
    """Samples, from a connection of its own, the age of the prune backend's transaction and
    whether any backend waits for a lock (PostgreSQL)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.stop = pid, threading.Event()
        self.oldest = 0.0
        self.waiting = 0
        self.samples = 0
        self.vacuuming = 0
        #: What the prune's backend was waiting for when sampled in a statement, with counts:
        #: a statement much slower than the others shows here as I/O, a lock or the CPU.
        self.waits: Counter[str] = Counter()

    def run(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            while not self.stop.wait(0.01):
                cursor.execute(
                    "SELECT EXTRACT(EPOCH FROM now() - xact_start), state, wait_event_type, "
                    "wait_event FROM pg_stat_activity WHERE pid = %s AND xact_start IS NOT NULL",
                    [self.pid],
                )
                row = cursor.fetchone()
                if row and row[0] is not None:
                    self.oldest = max(self.oldest, float(row[0]))
                    if row[1] == "active":
                        self.waits[f"{row[2]}:{row[3]}" if row[2] else "CPU"] += 1
                cursor.execute("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")
                self.waiting = max(self.waiting, cursor.fetchone()[0])
                cursor.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE backend_type = "
                    "'autovacuum worker' AND query LIKE '%%wagtail_publish_hooks%%'"
                )
                self.samples += 1
                self.vacuuming += bool(cursor.fetchone()[0])
        connection.close()


def run_one(
    database: str, size: str, days: int, gap: float, baseline: float, phase: tuple[float, float]
) -> dict[str, Any]:
    with benchmark_database(database, hooks=hooks()) as description:
        from django.db import connection

        from benchmarks.benchmark_site import draft_blog_page
        from wagtail_publish_hooks.upkeep import old_finished_events

        page = draft_blog_page()
        began = time.perf_counter()
        counts = populate(size, pages=[page])
        loaded = time.perf_counter() - began
        publish = Publisher(sibling_pages(page, PAGES[size]))
        for _ in range(PAGES[size]):  # warm up: each page published once
            publish()
        began = time.perf_counter()
        prunable = old_finished_events(days).count()
        count_time = time.perf_counter() - began
        before = publish_for(publish, baseline, gap)

        connection.close()  # the child must not share this process's connection
        context = multiprocessing.get_context("fork")
        here, there = context.Pipe()
        paused, idle = context.Event(), context.Event()
        child = context.Process(target=prune_child, args=(days, there, paused, idle))
        child.start()
        pid = here.recv()["pid"]
        watch = None
        if connection.vendor == "postgresql":
            watch = Watch(pid)
            watch.start()
        during, held, paired = publish_alternating(publish, child, paused, idle, gap, phase)
        child.join()
        result = here.recv() if here.poll(5) else {}
        if watch is not None:
            watch.stop.set()
            watch.join()
        after = publish_for(publish, baseline, gap)
        quiet = before + after
    return {
        "database": description,
        "size": size,
        "days": days,
        "loaded_seconds": loaded,
        "counts": counts,
        "prunable_events": prunable,
        "count_seconds": count_time,
        "prune": result,
        "oldest_transaction_seen": watch.oldest if watch else None,
        "lock_waits_seen": watch.waiting if watch else None,
        "autovacuum_share": watch.vacuuming / max(watch.samples, 1) if watch else None,
        "prune_waits": dict(watch.waits.most_common(6)) if watch else None,
        "publishes": {
            "quiet": len(quiet),
            "during": len(during),
            "quiet_median_ms": statistics.median(quiet) * 1000,
            "quiet_p95_ms": percentile(quiet, 0.95) * 1000,
            # Apart: a drift of the publish's own cost over the run shows as "after" differing
            # from "before".
            "before": len(before),
            "before_median_ms": statistics.median(before) * 1000,
            "after": len(after),
            "after_median_ms": statistics.median(after) * 1000,
            "during_median_ms": statistics.median(during) * 1000,
            "during_p95_ms": percentile(during, 0.95) * 1000,
            "held": len(held),
            "held_median_ms": statistics.median(held) * 1000 if held else float("nan"),
            "held_p95_ms": percentile(held, 0.95) * 1000 if held else float("nan"),
            "paired_turns": len(paired),
            "paired_median_ratio": statistics.median(paired) if paired else float("nan"),
            "paired_ratios": [round(r, 3) for r in paired],
        },
    }


def report(figures: dict[str, Any]) -> list[str]:
    """Print one database's figures; return the checks that failed."""
    prune, pubs = figures["prune"], figures["publishes"]
    rows = prune["events"] + prune["deliveries"] + prune["attempts"] + prune["links"]
    print(f"\n{figures['database']}, size {figures['size']}, --days {figures['days']}")
    print(
        "  history: "
        + ", ".join(f"{count:,} {table}" for table, count in figures["counts"].items())
        + f" (written in {figures['loaded_seconds']:.1f} s)"
    )
    print(
        f"  counting the prunable events (the command's total, a read): "
        f"{figures['prunable_events']:,} in {figures['count_seconds'] * 1000:.0f} ms"
    )
    print(
        f"  pruned {prune['events']:,} events, {prune['deliveries']:,} deliveries, "
        f"{prune['attempts']:,} attempts, {prune['links']:,} links ({rows:,} rows) "
        f"in {prune['elapsed']:.1f} s: {rows / prune['elapsed']:,.0f} rows/s, "
        f"{prune['batches']:,} batches, {prune['statements']:,} statements"
    )
    print(
        f"  longest statement {prune['longest_statement'] * 1000:.1f} ms "
        f"({prune['longest_statement_sql'].split('(')[0].strip()}…); longest batch transaction "
        f"{prune['longest_transaction'] * 1000:.1f} ms "
        f"(p95 {prune['p95_transaction'] * 1000:.1f} ms)"
    )
    print(
        f"  longest statement inside a batch's transaction "
        f"{prune['longest_locking_statement'] * 1000:.1f} ms "
        f"({prune['longest_locking_statement_sql'].split('(')[0].strip()}…); the others (the "
        f"selections; on PostgreSQL the reads ahead) run outside one"
    )
    print(
        f"  statements: p99 {prune['p99_statement'] * 1000:.1f} ms; slowest "
        + ", ".join(f"{ms} ms ({sql})" for ms, sql in prune["slowest"])
    )
    if prune.get("longest_wait"):
        print(f"  longest wait for SQLite's write lock: {prune['longest_wait'] * 1000:.1f} ms")
    if figures["oldest_transaction_seen"] is not None:
        print(
            f"  sampled from pg_stat_activity: oldest transaction of the prune "
            f"{figures['oldest_transaction_seen'] * 1000:.1f} ms; "
            f"most backends seen waiting for a lock: {figures['lock_waits_seen']}; "
            f"autovacuum at work on the tables in {figures['autovacuum_share']:.0%} of the samples"
            f"; the prune's statements, sampled: "
            + ", ".join(f"{name} {count}" for name, count in figures["prune_waits"].items())
        )
    print(
        f"  publishes: {pubs['quiet']} before and after the prune, {pubs['during']} during it; "
        f"median {pubs['quiet_median_ms']:.2f} → {pubs['during_median_ms']:.2f} ms "
        f"(**{pubs['during_median_ms'] / pubs['quiet_median_ms']:.2f} x**), "
        f"p95 {pubs['quiet_p95_ms']:.2f} → {pubs['during_p95_ms']:.2f} ms "
        f"({pubs['during_p95_ms'] / pubs['quiet_p95_ms']:.2f} x)"
    )
    print(
        f"  before the prune: {pubs['before']} publishes, median "
        f"{pubs['before_median_ms']:.2f} ms; after it: {pubs['after']}, median "
        f"{pubs['after_median_ms']:.2f} ms"
    )
    if pubs["held"]:
        print(
            f"  interleaved: {pubs['during']} publishes while it worked, {pubs['held']} while it "
            f"was held between batches: median {pubs['held_median_ms']:.2f} → "
            f"{pubs['during_median_ms']:.2f} ms "
            f"(**{pubs['during_median_ms'] / pubs['held_median_ms']:.2f} x**), p95 "
            f"{pubs['held_p95_ms']:.2f} → {pubs['during_p95_ms']:.2f} ms "
            f"({pubs['during_p95_ms'] / pubs['held_p95_ms']:.2f} x)"
        )
    if pubs["paired_turns"]:
        print(
            f"  paired by turn ({pubs['paired_turns']} turns of work then hold): median of the "
            f"turns' ratios **{pubs['paired_median_ratio']:.2f} x** (quartiles "
            f"{percentile(pubs['paired_ratios'], 0.25):.2f} to "
            f"{percentile(pubs['paired_ratios'], 0.75):.2f})"
        )
    failed = []
    if prune["most_rows"] > prune["batch_size"]:
        failed.append(
            f"a DELETE removed {prune['most_rows']} rows, more than the batch size "
            f"{prune['batch_size']}"
        )
    if prune["seq_scans"]:
        failed.append(f"sequential scans in the prune's plans: {', '.join(prune['seq_scans'])}")
    print(
        f"  most rows one DELETE removed: {prune['most_rows']} (batch size {prune['batch_size']})"
    )
    print(
        f"  sequential scans of the big tables in the prune's plans: {prune['seq_scans'] or 'none'}"
    )
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["quick", "full"], default="quick")
    parser.add_argument(
        "--database",
        choices=["postgres", "sqlite", "both"],
        help="Default: both with --size quick, postgres with --size full.",
    )
    parser.add_argument(
        "--days",
        type=int,
        help="The retention pruned to (default: 50 quick, a sixth of the history; 6 full, "
        "nine tenths of it).",
    )
    parser.add_argument(
        "--gap", type=float, default=0.05, help="Seconds between two publishes (0.05)."
    )
    parser.add_argument(
        "--baseline",
        type=float,
        help="Seconds of publishing before and after the prune (default: 3 quick, 20 full).",
    )
    parser.add_argument(
        "--phase",
        default="2,1",
        help="Seconds the prune works, then is held between two batches, in turn, while "
        "publishes are timed (default 2,1).",
    )
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON too.")
    args = parser.parse_args(argv)
    database = args.database or ("both" if args.size == "quick" else "postgres")
    baseline = (
        args.baseline if args.baseline is not None else (3.0 if args.size == "quick" else 20.0)
    )
    if database == "both":
        status = 0
        for one in ("postgres", "sqlite"):
            command = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])]
            command += ["--database", one]
            status |= subprocess.call(command)
        return status
    days = args.days if args.days is not None else (50 if args.size == "quick" else 6)
    on, off = (float(part) for part in args.phase.split(","))
    figures = run_one(database, args.size, days, args.gap, baseline, (on, off))
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
    failed = report(figures)
    for message in failed:
        print(f"  FAILED: {message}")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
