"""One deadline per request, whatever the peer does, and a claim's end that no request outlives.

A watchdog thread shuts down the socket of a request whose deadline has passed, which ends
whatever read or write is blocked on it: a peer that trickles bytes cannot hold a worker beyond
the deadline, however short each wait for a byte.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

_state = threading.local()


class Watch:
    """One request's deadline. When it passes, the request's socket is shut down, which ends
    whatever read or write is blocked on it: a peer that trickles bytes cannot hold a worker
    beyond the deadline, however short each wait for a byte."""

    __slots__ = ("conn", "deadline", "expired", "finished", "lock", "sent")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.conn: Any = None
        self.expired = False
        self.finished = False
        #: Whether the request's first byte has been written.
        self.sent = False
        self.lock = threading.Lock()

    def begin_sending(self) -> bool:
        """Called before the request's first byte: whether it may still be written."""
        with self.lock:
            if self.expired:
                return False
            self.sent = True
            return True

    def expire(self) -> bool:
        """Called at the deadline; returns whether to look again shortly (not yet connected)."""
        with self.lock:
            if self.finished:
                return False
            self.expired = True
            sock = getattr(self.conn, "sock", None)
            if sock is None:
                return True
            # The plain socket's shutdown, also for a TLS socket: it acts on the file
            # descriptor and leaves the TLS object to the thread that is reading.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            return False

    def finish(self) -> None:
        with self.lock:
            self.finished = True


class _Watchdog:
    """One thread per process that enforces every request's deadline."""

    RECHECK_SECONDS = 0.05

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, watch: Watch) -> None:
        with self._condition:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="publish-hooks-deadlines", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (watch.deadline, next(self._counter), watch))
            # The thread sleeps until the earliest deadline: only a new earliest one needs to
            # wake it (one wake-up per request would cost a thread switch per request).
            if self._heap[0][2] is watch:
                self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while True:
                    while self._heap and self._heap[0][2].finished:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._condition.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        _, _, due = heapq.heappop(self._heap)
                        break
                    self._condition.wait(wait)
            if due.expire():
                due.deadline = time.monotonic() + self.RECHECK_SECONDS
                self.watch(due)


class _HideRequestTargets(logging.Filter):
    """urllib3 logs each request line at DEBUG, path and query included. For a delivery the
    path can be the credential (Slack, Discord, build hooks), so while this thread sends one,
    request targets in urllib3's log records are replaced by ``/…``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if current_watch() is not None and isinstance(record.args, tuple):
            record.args = tuple(
                "/…" if isinstance(arg, str) and arg.startswith("/") and arg != "/" else arg
                for arg in record.args
            )
        return True


for _logger_name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection"):
    logging.getLogger(_logger_name).addFilter(_HideRequestTargets())

_watchdog = _Watchdog()
# A forked worker (RQ, for one) starts with no watchdog thread and maybe a held lock.
os.register_at_fork(after_in_child=_watchdog._reset)

_send_by: ContextVar[float | None] = ContextVar("wagtail_publish_hooks_send_by", default=None)


@contextlib.contextmanager
def send_deadline(at: float | None) -> Iterator[None]:
    """End every request made in this thread (or task) inside the block by ``at``, a
    :func:`time.monotonic` time, however long its ``timeout``; one that would begin after it is
    not sent. The worker sets it to the end of its claim on the delivery, so that no request of
    a send outlives the claim. ``None`` sets no limit."""
    token = _send_by.set(at)
    try:
        yield
    finally:
        _send_by.reset(token)


def send_limit() -> float | None:
    """The :func:`time.monotonic` time set by :func:`send_deadline`, if any."""
    return _send_by.get()


@contextlib.contextmanager
def watched(deadline: float) -> Iterator[Watch]:
    """Watch the request this thread makes inside the block: it ends by ``deadline``."""
    watch = Watch(deadline)
    _state.watch = watch
    _watchdog.watch(watch)
    try:
        yield watch
    finally:
        watch.finish()
        _state.watch = None


def current_watch() -> Watch | None:
    """The deadline watch of the request this thread is making, if any."""
    return getattr(_state, "watch", None)


def watch_expired() -> bool:
    watch = current_watch()
    return bool(watch is not None and watch.expired)
