"""Four real worker processes share 5,000 deliveries on PostgreSQL without ever sending one twice.

This module always runs on PostgreSQL, whatever database the rest of the suite uses: it starts
a throwaway local cluster (tests/support/pgcluster.py) or, when the suite itself runs on
PostgreSQL, uses a database of its own on the same server. Everything touching that database
happens in subprocesses (``migrate``, ``tests.support.load`` and ``db_worker``), so the suite's own
database and settings stay out of it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import WEBHOOK
from tests.support.pgcluster import create_database, drop_database, find_bin_dir, start_cluster
from tests.support.sink_log import Faults, Sink

pytestmark = pytest.mark.worker

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.mark.stress
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
        run(env, "-m", "tests.support.load", "seed", "--events", str(EVENTS),
            "--runs", str(WORKERS),
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

    outcome = json.loads(run(env, "-m", "tests.support.load", "report"))
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
from wagtail_publish_hooks.leases import claim_due_deliveries
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
    run(env, "-m", "tests.support.load", "seed", "--events", "1000", "--runs", "0",
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


# -- Randomised stress: four workers racing with short leases and slow, uneven sends ------------

#: Seeds of the stress runs; ``PUBLISH_HOOKS_STRESS_SEEDS=1,2,3`` runs others.
WORKER_COMMAND = [sys.executable, "-m", "django", "db_worker", "--no-startup-delay"]
STRESS_SEEDS = [
    int(seed) for seed in os.environ.get("PUBLISH_HOOKS_STRESS_SEEDS", "11,12").split(",") if seed
]


def stress_delay(seed: int) -> Callable[[str, str, int], float]:
    """Each request's time at the sink, from 0 to 1.2 s: drawn from a hash of the seed, the
    delivery and the try, so it does not depend on which worker sends it when."""

    def delay(path: str, webhook_id: str, seen: int) -> float:
        digest = hashlib.sha256(f"{seed}:{path}:{webhook_id}:{seen}".encode()).digest()
        return 1.2 * int.from_bytes(digest[:4], "big") / 2**32

    return delay


@pytest.mark.stress
@pytest.mark.parametrize("seed", STRESS_SEEDS)
def test_four_workers_with_short_leases_never_send_one_delivery_twice_at_once(
    postgres_database, seed
):
    """Four ``db_worker`` processes, 2-second leases, sends of up to 1.2 s, and batch sizes,
    thread counts, run lengths and start times drawn at random: the sink, which records who
    sent each request and when, never sees two sends of one delivery overlap, and every send is
    an attempt on record."""
    rng = random.Random(seed)
    destinations = [f"s{i}" for i in range(5)]
    events = 40
    with Sink(faults=Faults(error_rate=0.1, seed=str(seed)), delay_for=stress_delay(seed)) as sink:

        def config(worker: int) -> dict:
            return {
                "DESTINATIONS": {
                    alias: {
                        "BACKEND": WEBHOOK,
                        "OPTIONS": {
                            "URL": sink.url(f"/{alias}"),
                            "TIMEOUT": 1.5,
                            "HEADERS": {"X-Worker": str(worker)},
                        },
                    }
                    for alias in destinations
                },
                "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"],
                "LEASE_SECONDS": 2,
                "BATCH_SIZE": rng.randint(5, 30),
                "CONCURRENCY": rng.randint(1, 3),
                "MAX_RUN_SECONDS": rng.uniform(2, 6),
                "MAX_ATTEMPTS": 3,
                "RETRY_SCHEDULE": [0.5],
            }

        envs = [subprocess_env(postgres_database, config(worker)) for worker in range(WORKERS)]
        run(envs[0], "-m", "tests.support.load", "seed", "--events", str(events),
            "--runs", str(WORKERS),
            *(f"--destination={alias}" for alias in destinations))  # fmt: skip
        workers = []
        try:
            for env in envs:
                time.sleep(rng.uniform(0, 0.7))
                workers.append(
                    subprocess.Popen(
                        [*WORKER_COMMAND, "--interval", "0.2"],
                        env=env,
                        cwd=ROOT,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline and open_deliveries(postgres_database):
                assert all(worker.poll() is None for worker in workers)
                time.sleep(0.5)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
        log = sink.snapshot()

    deliveries = json.loads(run(envs[0], "-m", "tests.support.load", "report"))["deliveries"]
    assert len(deliveries) == events * len(destinations)
    assert {d["status"] for d in deliveries} <= {"delivered", "failed"}
    assert all(d["attempts"] == d["attempt_rows"] for d in deliveries)

    # No two sends of one delivery overlapped, by the sink's count of requests in flight and
    # by the times it recorded.
    assert [record for record in log if record.overlapped] == []
    by_delivery: dict[tuple[str, str], list] = defaultdict(list)
    for record in log:
        by_delivery[record.key].append(record)
    for records in by_delivery.values():
        records.sort(key=lambda record: record.started)
        for earlier, later in itertools.pairwise(records):
            assert later.started >= earlier.ended, (earlier, later)
    # Every send is an attempt on record, and the workers really raced for the work.
    assert len(log) == sum(d["attempt_rows"] for d in deliveries)
    assert len({record.worker for record in log}) >= 2
    print(f"seed {seed}: {len(log)} sends by workers {Counter(r.worker for r in log)}")


def open_deliveries(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM wagtail_publish_hooks_delivery "
            "WHERE status NOT IN ('delivered', 'failed')"
        ).fetchone()
    return row[0] if row else 0
