"""Soak: many events to three destinations through real workers, against a flaky local sink.

The sink (tests/support/sink_log.py, on 127.0.0.1) answers 20% of requests with 503, stalls 5% past
the destinations' timeout, and answers 5% with 429 and ``Retry-After: 1``. Real ``db_worker``
processes (django-tasks-db) deliver with a short retry schedule. When nothing is left to do the
run checks that every delivery ended delivered, or failed after its last attempt, and that three
accounts agree exactly: the database (deliveries and attempts), the sink's log (every request it
received and what it answered) and ``manage.py publish_hooks status``. It prints the duration,
deliveries per second and the workers' peak memory (their ``VmHWM``, the high-water mark of
resident memory, read from ``/proc`` just before they stop).

    python benchmarks/soak.py                      # 20,000 events, 4 workers, PostgreSQL
    python benchmarks/soak.py --events 2000 --workers 2 --database sqlite

PostgreSQL is a throwaway local cluster (tests/support/pgcluster.py) unless ``DATABASE_URL``
names a database, which must be one this run may fill and leave behind. tests/worker/test_soak.py
runs the same check on 1,000 events.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.scale_data import benchmark_database  # noqa: E402
from tests.support.sink_log import BROKEN, STALLED, Faults, Record, Sink  # noqa: E402

WEBHOOK = "wagtail_publish_hooks.backends.webhook.WebhookBackend"
DESTINATIONS = ("alpha", "beta", "gamma")
MAX_ATTEMPTS = 4
#: The destinations give up on a response after this long; the sink's stalls last longer.
TIMEOUT = 0.5
FLAKY = Faults(
    error_rate=0.20, timeout_rate=0.05, too_many_rate=0.05, stall_seconds=1.0, retry_after=1
)
FINAL = ("delivered", "failed")


def soak_config(sink: Sink) -> dict[str, Any]:
    """``WAGTAIL_PUBLISH_HOOKS`` for the run: three webhooks on the sink, short retries."""
    return {
        "DESTINATIONS": {
            alias: {
                "BACKEND": WEBHOOK,
                "OPTIONS": {"URL": sink.url(f"/{alias}"), "TIMEOUT": TIMEOUT},
            }
            for alias in DESTINATIONS
        },
        "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"],
        "MAX_ATTEMPTS": MAX_ATTEMPTS,
        "RETRY_SCHEDULE": [1, 1, 2],
    }


@dataclass
class SoakResult:
    events: int
    workers: int
    deliveries: int = 0
    attempts: int = 0
    requests: int = 0
    seconds: float = 0.0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    peak_rss_kib: list[int] = field(default_factory=list)
    status_output: str = ""
    #: Attempts that recorded no response although the sink logged the request and answered
    #: it (too late for the sender's timeout).
    late: int = 0
    #: Attempts that recorded that their request was never sent (it could not connect, or its
    #: deadline passed first); none of them may be in the sink's log.
    unsent: int = 0
    #: The errors those attempts recorded, with their counts.
    unsent_errors: Counter[str] = field(default_factory=Counter)
    #: Connections the sink saw break before it could read a request on them.
    broken_connections: int = 0
    #: Every way in which the accounts disagree; empty when they agree exactly.
    problems: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.deliveries / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        delivered = sum(c.get("delivered", 0) for c in self.counts.values())
        failed = sum(c.get("failed", 0) for c in self.counts.values())
        peak = max(self.peak_rss_kib, default=0) / 1024
        total = sum(self.peak_rss_kib) / 1024
        outcomes = ", ".join(f"{name} {n}" for name, n in sorted(self.outcomes.items()))
        return "\n".join(
            [
                f"events {self.events} x {len(self.counts)} destinations = "
                f"{self.deliveries} deliveries, {self.workers} worker processes",
                f"delivered {delivered}, failed {failed} (after {MAX_ATTEMPTS} attempts)",
                f"attempts {self.attempts}; sink requests {self.requests} ({outcomes}); "
                f"{self.late} answered after the sender's timeout, {self.unsent} never sent (and "
                f"not in the sink's log), {self.broken_connections} connections broken before "
                "a request",
                f"duration {self.seconds:.1f} s, {self.per_second:.0f} deliveries per second, "
                f"{self.attempts / self.seconds if self.seconds else 0:.0f} attempts per second",
                f"peak worker memory (VmHWM): {peak:.0f} MiB per worker at most, "
                f"{total:.0f} MiB for all {self.workers}",
                "accounts agree exactly (database, sink log, publish_hooks status)"
                if not self.problems
                else f"{len(self.problems)} DISAGREEMENTS:\n  " + "\n  ".join(self.problems[:20]),
            ]
        )


def worker_command() -> list[str]:
    return [sys.executable, "-m", "django", "db_worker", "--no-startup-delay", "--interval", "0.2"]


def peak_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_soak(
    *,
    events: int,
    workers: int,
    sink: Sink,
    worker_env: dict[str, str],
    timeout: float,
    log_dir: Path,
    progress: bool = False,
) -> SoakResult:
    """Record ``events`` events, run ``workers`` workers until every delivery is final, check.

    Django must be set up, with ``soak_config(sink)`` as ``WAGTAIL_PUBLISH_HOOKS`` and
    django-tasks-db as task backend, on the database ``worker_env`` points the workers at.
    """
    from django.core.management import call_command

    from tests.support.load import seed
    from wagtail_publish_hooks.models import Delivery

    result = SoakResult(events=events, workers=workers)
    seed(events, list(DESTINATIONS), runs=workers)
    result.deliveries = Delivery.objects.count()

    started = time.monotonic()
    processes = [
        subprocess.Popen(
            worker_command(),
            env=worker_env,
            cwd=ROOT,
            stdout=(log_dir / f"worker-{i}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for i in range(workers)
    ]
    try:
        deadline = started + timeout
        last_report = started
        while True:
            open_count = Delivery.objects.exclude(status__in=FINAL).count()
            now = time.monotonic()
            if not open_count:
                break
            if now > deadline:
                result.problems.append(f"{open_count} deliveries still open after {timeout:.0f} s")
                break
            if any(process.poll() is not None for process in processes):
                result.problems.append("a worker process exited")
                break
            if progress and now - last_report >= 10:
                done = result.deliveries - open_count
                print(f"  {now - started:5.0f} s: {done}/{result.deliveries} final", flush=True)
                last_report = now
            time.sleep(0.5)
        result.seconds = time.monotonic() - started
    finally:
        result.peak_rss_kib = [peak_rss_kib(process.pid) for process in processes]
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    out = io.StringIO()
    call_command("publish_hooks", "status", stdout=out)
    result.status_output = out.getvalue()
    check_agreement(result, sink)
    return result


def check_agreement(result: SoakResult, sink: Sink) -> None:
    """Compare the database, the sink's log and ``publish_hooks status``; note every mismatch.

    Per delivery: its final state follows from its attempts, its attempt count equals its
    ``Attempt`` rows, and its attempts match the requests the sink logged for it (``align``).
    Per destination: ``publish_hooks status`` shows the database's counts.
    """
    from django.db.models import Count

    from wagtail_publish_hooks.models import Attempt, Delivery

    problems = result.problems
    # Requests still being answered (a stall outlasting its sender) are logged when they end.
    deadline = time.monotonic() + 5
    while any(sink.in_flight.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    attempts_of: dict[int, list[tuple[int | None, str]]] = defaultdict(list)
    for delivery_id, status_code, error in Attempt.objects.order_by(
        "delivery_id", "number"
    ).values_list("delivery_id", "status_code", "error"):
        attempts_of[delivery_id].append((status_code, error))
    rows = list(
        Delivery.objects.annotate(attempt_rows=Count("attempt_set")).values_list(
            "pk", "destination", "event__event_id", "status", "attempts", "attempts_at_redelivery"
        )
    )
    records = sink.by_delivery()
    log = sink.snapshot()
    result.requests = len(log)
    result.broken_connections = sink.broken_connections
    result.outcomes = Counter(record.outcome for record in log)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    seen_keys = set()
    for pk, destination, event_id, status, attempts, before_redelivery in rows:
        counts[destination][status] += 1
        tried = attempts_of.get(pk, [])
        result.attempts += len(tried)
        key = (f"/{destination}", event_id)
        seen_keys.add(key)
        sent = list(records.get(key, []))
        label = f"{destination} {event_id}"
        if status not in FINAL:
            problems.append(f"{label}: still {status}")
        if attempts != len(tried):
            problems.append(f"{label}: {attempts} attempts counted, {len(tried)} recorded")
        last_code = tried[-1][0] if tried else None
        if status == "delivered" and last_code != 200:
            problems.append(f"{label}: delivered, but its last attempt got {last_code}")
        if status == "failed" and (
            any(code == 200 for code, _ in tried) or attempts - before_redelivery != MAX_ATTEMPTS
        ):
            problems.append(f"{label}: failed after {attempts} attempts: {tried}")
        if any(record.overlapped for record in sent):
            problems.append(f"{label}: two requests were in flight at once")
        matched = align(tried, sent)
        if matched is None:
            problems.append(
                f"{label}: attempts {[code for code, _ in tried]} do not match what the sink "
                f"answered ({_outcomes(sent)})"
            )
            continue
        for (code, error), record in zip(tried, matched, strict=True):
            if code is None and record is None:
                result.unsent += 1
                result.unsent_errors[_without_port(error)] += 1
            elif code is None and record is not None and record.outcome not in (STALLED, BROKEN):
                result.late += 1
    for key in set(records) - seen_keys:
        problems.append(f"the sink received {key}, which is no delivery")
    result.counts = {alias: dict(counter) for alias, counter in sorted(counts.items())}

    # publish_hooks status: one row per destination, a column per state.
    lines = result.status_output.splitlines()
    header = lines[0].split() if lines else []
    for line in lines[1:]:
        cells = line.split()
        if not cells or cells[0] not in counts:
            continue
        for state in ("pending", "sending", "delivered", "retrying", "failed"):
            if state not in header:
                problems.append(f"publish_hooks status has no {state!r} column")
                continue
            shown = int(cells[header.index(state)])
            if shown != counts[cells[0]].get(state, 0):
                problems.append(
                    f"publish_hooks status shows {shown} {state} for {cells[0]}, "
                    f"the database {counts[cells[0]].get(state, 0)}"
                )
    shown_aliases = {line.split()[0] for line in lines[1:] if line.split()}
    for alias in counts:
        if alias not in shown_aliases:
            problems.append(f"publish_hooks status has no row for {alias}")


#: How an attempt that was never sent begins its error (``wagtail_publish_hooks.http``).
NOT_SENT = ("not sent to ", "could not connect to ", "could not resolve ")


def was_sent(code: int | None, error: str) -> bool:
    """Whether an attempt's request left the worker, by what the attempt recorded."""
    return code is not None or not (
        error.startswith(NOT_SENT) or (error.startswith("connection to ") and "timed out" in error)
    )


def align(tried: list[tuple[int | None, str]], sent: list[Record]) -> list[Record | None] | None:
    """Match a delivery's attempts, in order, with the requests the sink logged for it.

    An attempt that recorded a response matches a request the sink answered with that status.
    An attempt that recorded none but whose request was sent (a timeout, a connection that
    broke) matches one request, whatever the sink did with it (a stall, a request that broke
    off, or an answer too late for the sender). An attempt whose request was never sent (it
    could not connect, or its deadline passed before it was written: its error says so)
    matches none. Every request must be matched.
    Returns the request matched by each attempt, or ``None`` when no matching exists.
    """

    def match(i: int, j: int) -> list[Record | None] | None:
        if i == len(tried):
            return [] if j == len(sent) else None
        code, error = tried[i]
        if code is not None:
            if j < len(sent) and sent[j].status == code and sent[j].outcome != STALLED:
                rest = match(i + 1, j + 1)
                return None if rest is None else [sent[j], *rest]
            return None
        if not was_sent(code, error):
            rest = match(i + 1, j)
            return None if rest is None else [None, *rest]
        if j < len(sent):
            rest = match(i + 1, j + 1)
            if rest is not None:
                return [sent[j], *rest]
        return None

    return match(0, 0)


def _without_port(error: str) -> str:
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1", error)


def _outcomes(records: list) -> str:
    return ", ".join(record.outcome for record in records) or "nothing"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--timeout", type=float, default=1800, help="Give up after (seconds).")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="wph-soak-"))  # the workers' logs
    with (
        Sink(faults=FLAKY) as sink,
        benchmark_database(args.database, hooks=soak_config(sink)) as description,
    ):
        os.environ["PYTHONPATH"] = str(ROOT)
        print(
            f"Soak: {args.events} events x {len(DESTINATIONS)} destinations, "
            f"{args.workers} workers, {description}; "
            f"sink faults: 20% 503, 5% stall past a {TIMEOUT} s timeout, 5% 429",
            flush=True,
        )
        result = run_soak(
            events=args.events,
            workers=args.workers,
            sink=sink,
            worker_env=dict(os.environ),
            timeout=args.timeout,
            log_dir=tmp,
            progress=True,
        )
    print(result.summary())
    for error, count in result.unsent_errors.most_common():
        print(f"  not in the sink's log, {count}x: {error}")
    print(result.status_output)
    sys.exit(1 if result.problems else 0)


if __name__ == "__main__":
    main()
