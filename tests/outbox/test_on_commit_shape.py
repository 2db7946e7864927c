"""The outbox and the dispatch read Django's private list of on-commit callbacks.

``connection.run_on_commit`` is how the outbox finds the merging deliveries a transaction opened
(:func:`wagtail_publish_hooks.outbox.opened_in_this_transaction`) and how a transaction enqueues
one delivery run however many events it records (``tasks.schedule_dispatch``). Django does not
document it: these tests pin its shape to each supported Django version, so that a new version
that changes it fails here rather than in production.
"""

from __future__ import annotations

import django
import pytest
from django.db import connection, transaction

from wagtail_publish_hooks.outbox import pending_on_commit

#: The Django versions whose ``run_on_commit`` is known to be a list of
#: ``(savepoint ids, callback, robust)`` tuples.
VERIFIED = {(5, 2), (6, 1)}

pytestmark = pytest.mark.django_db(transaction=True)


def test_this_django_is_one_whose_on_commit_list_was_verified():
    assert django.VERSION[:2] in VERIFIED, (
        f"Django {django.__version__}: check that connection.run_on_commit still holds "
        "(savepoint ids, callback, robust) tuples, then add the version to VERIFIED"
    )


def callback() -> None:
    """Registered, never run."""


def test_each_entry_holds_savepoint_ids_the_callback_and_robust():
    with transaction.atomic():
        transaction.on_commit(callback, robust=True)
        entry = connection.run_on_commit[-1]
        assert isinstance(entry, tuple) and len(entry) == 3
        savepoint_ids, registered, robust = entry
        assert isinstance(savepoint_ids, set)
        assert registered is callback
        assert robust is True
        assert pending_on_commit(connection.alias) == [callback]
        transaction.set_rollback(True)


def test_a_rolled_back_savepoint_drops_its_callbacks():
    """The outbox's markers rely on it: a rolled back savepoint takes its marker with it."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                transaction.on_commit(callback)
                assert pending_on_commit(connection.alias) == [callback]
                raise RuntimeError
        except RuntimeError:
            pass
        assert pending_on_commit(connection.alias) == []
        transaction.set_rollback(True)


def test_outside_a_transaction_nothing_is_pending():
    assert not connection.in_atomic_block
    assert pending_on_commit(connection.alias) == []
