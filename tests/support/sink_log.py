"""A webhook sink on 127.0.0.1 that logs every request, detects overlap and injects faults.

Each request is recorded with its path, ``webhook-id``, the ``n`` of its body's ``data`` (the
tests number their events), what the sink answered, and whether another request for the same
delivery (same path and ``webhook-id``) was in flight at the same time: a second worker sending
a delivery that is already being sent. Faults are chosen by a hash of the path, ``webhook-id``
and how many times the sink has seen that delivery, so a run's faults do not depend on the
order in which threads happen to arrive.

Used by the PostgreSQL concurrency, crash-safety and soak tests, and by ``benchmarks/soak.py``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: What the sink did with a request.
OK = "ok"
ERROR = "5xx"
TOO_MANY = "429"
STALLED = "timeout"
#: The request broke off before the sink had read all of it.
BROKEN = "broken"


@dataclass(frozen=True)
class Record:
    seq: int
    path: str
    webhook_id: str
    n: int | None
    outcome: str
    status: int
    overlapped: bool
    #: Who sent it: the ``x-worker`` header, when the sender set one.
    worker: str = ""
    #: When the request arrived and when its answer was ready (``time.monotonic()``).
    started: float = 0.0
    ended: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        return (self.path, self.webhook_id)


@dataclass
class Faults:
    """Rates of injected failures, each a fraction of requests (their sum at most 1)."""

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    too_many_rate: float = 0.0
    #: How long a "timeout" stalls before answering; longer than the destination's TIMEOUT.
    stall_seconds: float = 1.0
    retry_after: int = 1
    seed: str = "wph"

    def choose(self, path: str, webhook_id: str, seen: int) -> str:
        digest = hashlib.sha256(f"{self.seed}:{path}:{webhook_id}:{seen}".encode()).digest()
        roll = int.from_bytes(digest[:8], "big") / 2**64
        if roll < self.error_rate:
            return ERROR
        roll -= self.error_rate
        if roll < self.timeout_rate:
            return STALLED
        roll -= self.timeout_rate
        if roll < self.too_many_rate:
            return TOO_MANY
        return OK


@dataclass
class Sink:
    """Start with :meth:`start`; ``url(path)`` is where to send."""

    faults: Faults = field(default_factory=Faults)
    #: Seconds every request takes (a slower sink makes a kill land mid-run).
    delay: float = 0.0
    #: Seconds a request takes, by its path, ``webhook-id`` and how many times the sink has
    #: seen that delivery before; instead of ``delay`` when given.
    delay_for: Callable[[str, str, int], float] | None = None
    #: Called with the running request count as each request arrives, before it is answered.
    on_request: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.records: list[Record] = []
        self.in_flight: Counter[tuple[str, str]] = Counter()
        self.seen: Counter[tuple[str, str]] = Counter()
        self.count = 0
        #: Connections that broke before a request on them could be read at all.
        self.broken_connections = 0
        self.server: ThreadingHTTPServer | None = None

    # -- serving ---------------------------------------------------------------------------------

    def start(self) -> Sink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real consumer would
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                sink.handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = self._connection_broke  # type: ignore[method-assign]
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str = "/hooks") -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def _connection_broke(self, request: object, client_address: object) -> None:
        with self.lock:
            self.broken_connections += 1

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        length = int(request.headers.get("content-length") or 0)
        webhook_id = request.headers.get("webhook-id", "")
        worker = request.headers.get("x-worker", "")
        try:
            body = request.rfile.read(length)
            if len(body) < length:
                raise ConnectionError("the body broke off")
        except OSError:
            with self.lock:
                self.count += 1
                self.records.append(
                    Record(
                        self.count,
                        request.path,
                        webhook_id,
                        None,
                        BROKEN,
                        0,
                        False,
                        worker,
                        arrived,
                        time.monotonic(),
                    )
                )
            request.close_connection = True
            return
        try:
            n = json.loads(body)["data"]["n"]
        except (ValueError, KeyError, TypeError):
            n = None
        key = (request.path, webhook_id)
        with self.lock:
            self.count += 1
            count = self.count
            overlapped = self.in_flight[key] > 0
            self.in_flight[key] += 1
            seen = self.seen[key]
            self.seen[key] += 1
        outcome = self.faults.choose(request.path, webhook_id, seen)
        status = {OK: 200, ERROR: 503, TOO_MANY: 429, STALLED: 200}[outcome]
        try:
            if self.on_request is not None:
                self.on_request(count)
            delay = self.delay_for(request.path, webhook_id, seen) if self.delay_for else self.delay
            if delay:
                time.sleep(delay)
            if outcome == STALLED:
                time.sleep(self.faults.stall_seconds)
        finally:
            # Logged before the answer goes out: once the sender has the answer, the log has it.
            with self.lock:
                self.records.append(
                    Record(
                        count,
                        request.path,
                        webhook_id,
                        n,
                        outcome,
                        status,
                        overlapped,
                        worker,
                        arrived,
                        time.monotonic(),
                    )
                )
        reply = b"ok" if status == 200 else b"try again"
        try:
            request.send_response(status)
            if outcome == TOO_MANY:
                request.send_header("Retry-After", str(self.faults.retry_after))
            request.send_header("Content-Type", "text/plain")
            request.send_header("Content-Length", str(len(reply)))
            request.end_headers()
            request.wfile.write(reply)
            request.wfile.flush()
        except OSError:
            request.close_connection = True  # the sender gave up (a timeout) or died
        finally:
            # Still in flight until answered: a second send before then is an overlap.
            with self.lock:
                self.in_flight[key] -= 1

    # -- reading the log -------------------------------------------------------------------------

    def snapshot(self) -> list[Record]:
        with self.lock:
            return list(self.records)

    def overlaps(self) -> list[Record]:
        return [record for record in self.snapshot() if record.overlapped]

    def by_delivery(self) -> dict[tuple[str, str], list[Record]]:
        grouped: dict[tuple[str, str], list[Record]] = {}
        for record in sorted(self.snapshot(), key=lambda r: r.seq):
            grouped.setdefault(record.key, []).append(record)
        return grouped
