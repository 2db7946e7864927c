"""Four real worker processes share 5,000 deliveries on PostgreSQL without ever sending one twice.

This module always runs on PostgreSQL, whatever database the rest of the suite uses: it starts
a throwaway local cluster (tests/pgcluster.py) or, when the suite itself runs on PostgreSQL,
uses a database of its own on the same server. Everything touching that database happens in
subprocesses (``migrate``, ``tests.load`` and ``db_worker``), so the suite's own database and
settings stay out of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import WEBHOOK
from tests.pgcluster import create_database, drop_database, find_bin_dir, start_cluster
from tests.sink_log import Sink

pytestmark = pytest.mark.worker

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 4
EVENTS = 1250
DESTINATIONS = ["a", "b", "c", "d"]  # 4 x 1,250 = 5,000 deliveries
TIMEOUT = 240  # a guard against a hang, not a timing: the run takes well under 90 s


@pytest.fixture(scope="session")
def postgres_server_url():
    """A URL on a PostgreSQL server this run may create databases on."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        yield url  # the suite runs on PostgreSQL: use the same server
        return
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    cluster = start_cluster()
    try:
        yield cluster.url("postgres")
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def migrated_template(postgres_server_url):
    """A migrated database, migrated once, that each test's database is copied from."""
    name = f"wph_template_{os.getpid()}"
    url = create_database(postgres_server_url, name, drop=True)
    env = subprocess_env(url, {"DESTINATIONS": {}})
    run(env, "-m", "django", "migrate", "--noinput", "-v", "0")
    yield name
    drop_database(postgres_server_url, name)


@pytest.fixture
def postgres_database(postgres_server_url, migrated_template):
    """A new, migrated database on that server; dropped afterwards."""
    name = f"wph_concurrency_{os.getpid()}"
    url = create_database(postgres_server_url, name, drop=True, template=migrated_template)
    yield url
    drop_database(postgres_server_url, name)


def subprocess_env(database_url: str, config: dict) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "DJANGO_", "PUBLISH_HOOKS_", "TEST_SQLITE"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=database_url,
        PUBLISH_HOOKS_TEST_DB_IS_TEST="1",
        PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(config),
        PYTHONPATH=str(ROOT),
    )
    return env


def run(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def test_four_workers_send_each_of_5000_deliveries_exactly_once(postgres_database):
    with Sink() as sink:
        config = {
            "DESTINATIONS": {
                alias: {"BACKEND": WEBHOOK, "OPTIONS": {"URL": sink.url(f"/{alias}")}}
                for alias in DESTINATIONS
            },
            "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"],
            "RETRY_SCHEDULE": [1],
        }
        env = subprocess_env(postgres_database, config)
        run(env, "-m", "tests.load", "seed", "--events", str(EVENTS), "--runs", str(WORKERS),
            *(f"--destination={alias}" for alias in DESTINATIONS))  # fmt: skip

        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "django", "db_worker", "--batch", "--no-startup-delay"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(WORKERS)
        ]
        deadline = time.monotonic() + TIMEOUT
        outputs = []
        try:
            for worker in workers:
                outputs.append(worker.communicate(timeout=max(1, deadline - time.monotonic()))[0])
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        assert all(worker.returncode == 0 for worker in workers), outputs
        log = sink.snapshot()

    outcome = json.loads(run(env, "-m", "tests.load", "report"))
    deliveries = outcome["deliveries"]
    assert len(deliveries) == EVENTS * len(DESTINATIONS) == 5000

    # None left behind; each delivered on its first and only attempt.
    assert Counter(d["status"] for d in deliveries) == {"delivered": 5000}
    assert {(d["attempts"], d["attempt_rows"]) for d in deliveries} == {(1, 1)}

    # The sink saw each delivery exactly once, and never two requests for one at a time.
    assert [record for record in log if record.overlapped] == []
    sent = Counter(record.key for record in log)
    expected = {(f"/{d['destination']}", d["event_id"]) for d in deliveries}
    assert set(sent) == expected
    assert set(sent.values()) == {1}
    assert len(log) == 5000
    # Each request carried its own event's id: the webhook-id belongs to the event numbered n.
    event_of = {d["n"]: d["event_id"] for d in deliveries}
    assert all(event_of[record.n] == record.webhook_id for record in log)

    # The four workers really shared the work: four task runs, each on its own worker process,
    # each delivering part of it.
    runs = [task for task in outcome["tasks"] if not task["deferred"]]
    assert len(runs) == WORKERS
    assert all(task["status"] == "SUCCESSFUL" for task in runs), runs
    assert len({task["worker_ids"][0] for task in runs}) == WORKERS
    shares = [task["return_value"]["delivered"] for task in runs]
    assert sum(shares) == 5000
    assert all(share > 0 for share in shares), shares
    print(f"deliveries per worker: {sorted(shares)}")


CLAIMER = """
import json, sys
from wagtail_publish_hooks.delivery import claim_due_deliveries
print("ready", flush=True)
sys.stdin.readline()  # all start together
claimed = []
while True:
    _, batch = claim_due_deliveries(25, lease_seconds=300)
    if not batch:
        break
    claimed.extend(delivery.pk for delivery in batch)
print(json.dumps(claimed))
"""


def test_claims_are_atomic_across_processes(postgres_database):
    """Eight processes claiming at once take disjoint sets that together cover every delivery."""
    config = {"DESTINATIONS": {}, "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"]}
    env = subprocess_env(postgres_database, config)
    # Deliveries to destinations that need not exist: only claiming is exercised here.
    run(env, "-m", "tests.load", "seed", "--events", "1000", "--runs", "0",
        "--destination=x", "--destination=y")  # fmt: skip
    claimers = [
        subprocess.Popen(
            [sys.executable, "-m", "django", "shell", "-c", CLAIMER],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    for claimer in claimers:
        assert claimer.stdout is not None
        while (line := claimer.stdout.readline()) and line.strip() != "ready":
            pass  # the shell's own banner
        assert line.strip() == "ready", claimer.stderr.read() if claimer.stderr else ""
    for claimer in claimers:
        assert claimer.stdin is not None
        claimer.stdin.write("go\n")
        claimer.stdin.flush()
    claimed: list[list[int]] = []
    for claimer in claimers:
        stdout, stderr = claimer.communicate(timeout=TIMEOUT)
        assert claimer.returncode == 0, stderr
        claimed.append(json.loads(stdout.strip().splitlines()[-1]))
    everything = [pk for ids in claimed for pk in ids]
    assert len(everything) == len(set(everything)) == 2000
    assert sum(1 for ids in claimed if ids) >= 2  # the claims really ran side by side
