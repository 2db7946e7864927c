"""Real worker processes started by the tests."""

from __future__ import annotations

import sys
from pathlib import Path

#: The repository's root: the working directory and ``PYTHONPATH`` of a worker subprocess.
ROOT = Path(__file__).resolve().parents[2]


def db_worker(env, *args):
    return [
        sys.executable,
        "-m",
        "django",
        "db_worker",
        "--no-startup-delay",
        "--interval",
        "0.2",
        *args,
    ]
