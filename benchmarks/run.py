#!/usr/bin/env python
"""Run every benchmark at one size: ``make bench`` (``BENCH_SIZE=quick``, the default) or
``make bench BENCH_SIZE=full``.

quick
    Small data, a few repetitions: a few minutes in all. Each script checks what does not depend
    on the machine (SQL statement counts, the plans PostgreSQL chooses, batch sizes) and exits
    non-zero when one of them regresses; CI runs this size. Its timings are printed but mean
    little.
full
    The sizes the figures of docs/performance.md were measured at (a million deliveries for the
    benchmarks at scale): the better part of an hour on a small machine. Run it on a quiet one.

Every script prints its figures as ratios against a baseline measured in the same run, and can
be run on its own with ``--size`` and finer options (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (script, extra arguments) in the order they run.
BENCHMARKS: list[tuple[str, list[str]]] = [
    ("publish_overhead.py", ["--database", "sqlite"]),
    ("publish_overhead.py", ["--database", "postgres"]),
    ("purge_set.py", []),
    ("admin_report.py", []),
    ("admin_overview.py", []),
    ("prune_scale.py", []),
    ("worker_throughput.py", []),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("quick", "full"), default="quick")
    parser.add_argument("only", nargs="*", help="run only these scripts (file names)")
    args = parser.parse_args(argv)
    failed = []
    for script, extra in BENCHMARKS:
        if args.only and script not in args.only:
            continue
        print(f"\n=== {script} --size {args.size}", flush=True)
        began = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / script), "--size", args.size, *extra])
        print(f"=== {script}: exit {code} after {time.monotonic() - began:.0f} s", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"\nFailed: {', '.join(failed)}")
        return 1
    print("\nEvery benchmark ran and every check passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
