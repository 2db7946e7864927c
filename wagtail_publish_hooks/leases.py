"""Claims and leases: a delivery is sent by one worker at a time.

A run claims a batch of due deliveries with a conditional ``UPDATE`` that sets a lease token and
an expiry; nobody else sends a delivery while its lease holds, and a crashed worker's leases
expire, so that another run takes the deliveries over. Before each send the claim is confirmed
(:meth:`Lease.confirm`), and extended when it could run out before the send is done; a send's
requests end before it could run out.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.db import OperationalError, connection, transaction
from django.db.models import BooleanField, F, Func
from django.utils import timezone

from .models import Delivery, DeliveryStatus

#: How many times a run tries to claim when SQLite reports the database locked.
CLAIM_TRIES = 5

#: The end of a claim kept for recording its send's outcome: this share of ``LEASE_SECONDS``,
#: at most ``RECORD_MARGIN_SECONDS``. A send's requests are cut off before it.
RECORD_SHARE = 0.25
RECORD_MARGIN_SECONDS = 5.0


def claim_due_deliveries(limit: int, *, lease_seconds: int) -> tuple[uuid.UUID, list[Delivery]]:
    """Atomically take up to ``limit`` due deliveries for this worker.

    The conditional ``UPDATE`` re-checks due-ness row by row, so two workers that picked the
    same candidates cannot both win them; on databases with ``SKIP LOCKED`` they do not even
    pick the same candidates. On PostgreSQL and SQLite the ``UPDATE`` picks its candidates
    itself, in a subquery: one statement instead of a ``SELECT`` and an ``UPDATE``, a round trip
    less before the first send (and on SQLite the write lock taken at once).
    """
    now = timezone.now()
    token = uuid.uuid4()
    due = Delivery.objects.due(now)
    candidates = due.order_by("next_attempt_at", "pk")
    changes = {
        "status": DeliveryStatus.SENDING,
        "lease_token": token,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
    }
    features = connection.features
    if connection.vendor == "postgresql":
        from django.contrib.postgres.expressions import ArraySubquery

        # ``= ANY(ARRAY(…))``: the subquery runs once. Under ``IN (…)`` PostgreSQL may run it
        # again for each row, and with SKIP LOCKED each run skips the rows the last one took.
        picked = ArraySubquery(candidates.select_for_update(skip_locked=True).values("pk")[:limit])
        with transaction.atomic():
            any_of = Func(
                F("pk"),
                picked,
                template="%(expressions)s)",
                arg_joiner=" = ANY(",
                output_field=BooleanField(),
            )
            taken = due.filter(any_of).update(**changes)
    elif not features.has_select_for_update:
        # No row locks (SQLite): the statement is atomic on its own.
        taken = due.filter(pk__in=candidates.values("pk")[:limit]).update(**changes)
    else:
        with transaction.atomic():
            if features.has_select_for_update_skip_locked:
                candidates = candidates.select_for_update(skip_locked=True)
            ids = list(candidates.values_list("pk", flat=True)[:limit])
            taken = due.filter(pk__in=ids).update(**changes) if ids else 0
    if not taken:
        return token, []
    claimed = list(
        Delivery.objects.filter(lease_token=token)
        .select_related("event")
        .order_by("next_attempt_at", "pk")
    )
    return token, claimed


def claim_with_retries(limit: int, lease_seconds: int) -> tuple[uuid.UUID, list[Delivery]]:
    """Claim, trying again a few times if SQLite reports the database locked.

    On SQLite the claim is one ``UPDATE``, which waits for the write lock (SQLite's busy
    timeout) rather than failing at once as a read upgraded to a write could; a database still
    locked after that timeout gets a few more tries, a moment apart.
    """
    for attempt in range(CLAIM_TRIES):
        try:
            return claim_due_deliveries(limit, lease_seconds=lease_seconds)
        except OperationalError:
            if (
                connection.vendor != "sqlite"
                or connection.in_atomic_block
                or attempt == CLAIM_TRIES - 1
            ):
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


class Lease:
    """A run's claim on its batch, measured from the moment it was claimed.

    Before each send, :meth:`confirm` checks with one conditional ``UPDATE`` that the run
    still holds the delivery and extends its claim (and those of the outcomes not yet
    committed) by ``LEASE_SECONDS``, unless the claims have longer to run than the send can
    take (then they cannot have been lost). A delivery whose claim was lost is not sent. The HTTP
    requests of a send end before the claim could run out (:meth:`send_by`), leaving time to
    record the outcome, so a slow destination cannot outlive the claim either.
    """

    def __init__(self, token: uuid.UUID, seconds: float, *, claimed_at: float) -> None:
        self.token = token
        self.seconds = seconds
        self.claimed_at = claimed_at
        #: Monotonic times at which each confirmed claim runs out (others: the claim's).
        self.expires: dict[int, float] = {}
        self.lock = threading.Lock()

    @property
    def margin(self) -> float:
        """Time kept, at the end of a claim, to commit the outcome of its send."""
        return min(self.seconds * RECORD_SHARE, RECORD_MARGIN_SECONDS)

    def expires_at(self, delivery: Delivery) -> float:
        with self.lock:
            return self.expires.get(delivery.pk, self.claimed_at + self.seconds)

    def send_by(self, delivery: Delivery) -> float:
        """The monotonic time by which a send of ``delivery`` must have ended."""
        return self.expires_at(delivery) - self.margin

    def confirm(
        self,
        delivery: Delivery,
        pending: Iterable[Delivery] = (),
        *,
        send_seconds: float | None = None,
    ) -> bool:
        """Whether this run still holds ``delivery``; if so, its claim (and that of each of
        ``pending``, sent but not yet recorded, still held) now lasts ``LEASE_SECONDS`` more.

        ``send_seconds``: the longest the coming send can take, when the backend can say. If
        every one of these claims still has that long to run, and the margin to record the
        outcome, it is held without asking the database: nobody takes over, cancels or
        releases a claim that has not run out, and the send's deadline
        (:meth:`send_by`) is its own ``TIMEOUT`` either way. Only a claim that could run out
        before the send and its record are done is confirmed and extended in the database.
        """
        began = time.monotonic()
        needed = began + (send_seconds or 0) + self.margin
        # An extension only lengthens a claim: while the batch's own claim outlasts the send,
        # so does every one of them (without going through the pending ones each time).
        if send_seconds is not None and self.claimed_at + self.seconds > needed:
            return True
        ids = [delivery.pk, *(item.pk for item in pending if item.pk != delivery.pk)]
        if send_seconds is not None:
            with self.lock:
                if all(self.expires.get(pk, self.claimed_at + self.seconds) > needed for pk in ids):
                    return True
        rows = Delivery.objects.filter(pk__in=ids, lease_token=self.token)
        updated = rows.update(lease_expires_at=timezone.now() + timedelta(seconds=self.seconds))
        # Nobody takes a claim that has not run out: what was just extended stays held.
        held = set(ids) if updated == len(ids) else set(rows.values_list("pk", flat=True))
        with self.lock:
            for pk in held:
                self.expires[pk] = began + self.seconds
        return delivery.pk in held


def release_deliveries(deliveries: Iterable[Delivery], token: uuid.UUID) -> None:
    """Give claimed but unsent deliveries back, for the next run."""
    ids = [delivery.pk for delivery in deliveries]
    Delivery.objects.filter(pk__in=ids, lease_token=token).update(
        status=DeliveryStatus.PENDING,
        lease_token=None,
        lease_expires_at=None,
    )
