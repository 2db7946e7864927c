"""The soak's agreement check on 1,000 events: benchmarks/soak.py, reduced to fit the suite.

Three destinations, a sink that fails a third of the requests one way or another (503, a stall
past the timeout, 429 with Retry-After), four real ``db_worker`` processes, short retries: every
delivery ends delivered or failed after its last attempt, and the database, the sink's log and
``publish_hooks status`` agree exactly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.db import connection

from benchmarks.soak import FLAKY, run_soak, soak_config
from tests.support.sink_log import ERROR, OK, STALLED, TOO_MANY, Sink

pytestmark = [pytest.mark.worker, pytest.mark.stress, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def test_a_soak_of_1000_events_ends_final_and_every_account_agrees(settings, tmp_path):
    with Sink(faults=FLAKY) as sink:
        config = soak_config(sink)
        settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
        settings.WAGTAIL_PUBLISH_HOOKS = config
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
        env.update(
            DJANGO_SETTINGS_MODULE="tests.settings",
            PUBLISH_HOOKS_TEST_SETTINGS=json.dumps(config),
            TEST_SQLITE_PATH=str(connection.settings_dict["NAME"]),
            PYTHONPATH=str(ROOT),
        )
        result = run_soak(
            events=1000, workers=4, sink=sink, worker_env=env, timeout=120, log_dir=tmp_path
        )
    print(result.summary())

    assert result.problems == []
    assert result.deliveries == 3000
    # Each kind of fault happened, and both endings: delivered, and failed after the last try.
    assert {OK, ERROR, STALLED, TOO_MANY} <= set(result.outcomes)
    delivered = sum(counts.get("delivered", 0) for counts in result.counts.values())
    failed = sum(counts.get("failed", 0) for counts in result.counts.values())
    assert delivered + failed == 3000
    assert delivered > 0 and failed > 0
    # Every request the sink logged is an attempt on record (the walk in check_agreement);
    # only attempts that never connected have no request.
    assert 3000 < result.requests <= result.attempts
