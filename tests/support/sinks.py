"""Small raw-socket servers on loopback addresses that answer HTTP requests well or badly.

A :class:`Sink` accepts connections on a loopback address and hands each one to a *behaviour*:
a function ``(connection, sink)`` that reads the request and answers however it likes. The
behaviours below cover a well-behaved receiver and the hostile ones a worker must survive
(stalling, resetting, endless bodies, garbage, trickling, huge headers); :func:`cycle` and
:func:`flaky` combine them. Every sink stops its threads and closes its sockets on
:meth:`Sink.close` (or at the end of a ``with`` block).
"""

from __future__ import annotations

import contextlib
import itertools
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Behaviour = Callable[[socket.socket, "Sink"], None]

#: How long a behaviour waits in one step before looking at whether the sink is closing.
TICK = 0.05


@dataclass
class ReceivedRequest:
    """One request as the sink read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    server_address: str

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


@dataclass
class Sink:
    """A loopback TCP server running ``behaviour`` for every connection, each in a thread."""

    behaviour: Behaviour
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[ReceivedRequest] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        if not self.host.startswith("127.") and self.host != "::1":
            raise ValueError("sinks listen on loopback addresses only")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, self.port))
        self._listener.listen(64)
        self._listener.settimeout(TICK)
        self.port = self._listener.getsockname()[1]
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._clients: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def url(self, path: str = "/hooks", host: str | None = None) -> str:
        name = host or self.host
        if ":" in name and not name.startswith("["):
            name = f"[{name}]"
        return f"http://{name}:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._clients.append(client)
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        try:
            self.behaviour(client, self)
        except OSError:
            pass  # the client went away, or the sink is closing
        finally:
            client.close()

    def record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def close(self) -> None:
        self.stopping.set()
        self._listener.close()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


# -- Reading requests ---------------------------------------------------------------------------


def read_request(conn: socket.socket, sink: Sink) -> ReceivedRequest | None:
    """Read one request (head and ``Content-Length`` body); ``None`` if the client closed."""
    conn.settimeout(TICK)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = _recv(conn, sink)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = ([*lines[0].split(" ", 2), "", ""])[:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
    while len(rest) < length:
        chunk = _recv(conn, sink)
        if not chunk:
            return None
        rest += chunk
    request = ReceivedRequest(method, path, headers, rest[:length], conn.getsockname()[0])
    sink.record(request)
    return request


def _recv(conn: socket.socket, sink: Sink) -> bytes:
    while not sink.stopping.is_set():
        try:
            return conn.recv(65536)
        except TimeoutError:
            continue
    return b""


def _send(conn: socket.socket, data: bytes) -> None:
    conn.settimeout(5)
    conn.sendall(data)


def _wait(sink: Sink, seconds: float) -> bool:
    """Sleep; ``False`` if the sink is closing meanwhile."""
    return not sink.stopping.wait(seconds)


# -- Behaviours -------------------------------------------------------------------------------


def respond(
    status: int = 200,
    body: bytes = b"ok",
    headers: dict[str, str] | None = None,
    *,
    keep_alive: bool = True,
) -> Behaviour:
    """A well-behaved receiver: answers every request on the connection (keep-alive), or the
    first one only, closing the connection after it."""
    if not keep_alive:
        headers = {**(headers or {}), "Connection": "close"}

    def behaviour(conn: socket.socket, sink: Sink) -> None:
        while read_request(conn, sink) is not None:
            _send(conn, response_bytes(status, body, headers))
            if not keep_alive:
                return

    return behaviour


def response_bytes(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} Status", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def stall(conn: socket.socket, sink: Sink) -> None:
    """Reads the request and never answers (until the client or the sink gives up)."""
    if read_request(conn, sink) is None:
        return
    while _wait(sink, TICK):
        try:
            if conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                return  # the client hung up
        except (BlockingIOError, TimeoutError):
            pass  # nothing to read: the client is still waiting


def reset(conn: socket.socket, sink: Sink) -> None:
    """Reads the request, then resets the connection (TCP RST, not a clean close)."""
    if read_request(conn, sink) is None:
        return
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def endless_body(status: int = 200, *, chunked: bool = False) -> Behaviour:
    """Answers ``status`` and a body that never ends, as fast as the client reads."""

    def behaviour(conn: socket.socket, sink: Sink) -> None:
        if read_request(conn, sink) is None:
            return
        framing = "Transfer-Encoding: chunked" if chunked else "Connection: close"
        _send(conn, f"HTTP/1.1 {status} Status\r\n{framing}\r\n\r\n".encode())
        block = b"x" * 65536
        if chunked:
            block = b"10000\r\n" + block + b"\r\n"
        while not sink.stopping.is_set():
            _send(conn, block)

    return behaviour


def endless_chunk_size(conn: socket.socket, sink: Sink) -> None:
    """A chunked response whose first chunk-size line never ends."""
    if read_request(conn, sink) is None:
        return
    _send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    while not sink.stopping.is_set():
        _send(conn, b"f" * 65536)


def garbage(payload: bytes | None = None) -> Behaviour:
    """Answers with bytes that are not HTTP (random ones by default), then closes."""

    def behaviour(conn: socket.socket, sink: Sink) -> None:
        if read_request(conn, sink) is None:
            return
        data = payload if payload is not None else random.Random(7).randbytes(4096)
        _send(conn, data)

    return behaviour


def trickle(response: bytes, interval: float) -> Behaviour:
    """Sends ``response`` one byte at a time, ``interval`` seconds apart."""

    def behaviour(conn: socket.socket, sink: Sink) -> None:
        if read_request(conn, sink) is None:
            return
        for index in range(len(response)):
            _send(conn, response[index : index + 1])
            if not _wait(sink, interval):
                return

    return behaviour


def huge_headers(*, line_bytes: int = 8192, single_line: bool = False) -> Behaviour:
    """Answers a status line, then header lines for ever (or one header line that never ends)."""

    def behaviour(conn: socket.socket, sink: Sink) -> None:
        if read_request(conn, sink) is None:
            return
        _send(conn, b"HTTP/1.1 200 OK\r\n")
        if single_line:
            _send(conn, b"X-Long: ")
        for number in itertools.count():
            if sink.stopping.is_set():
                return
            if single_line:
                _send(conn, b"a" * line_bytes)
            else:
                _send(conn, f"X-Pad-{number}: ".encode() + b"a" * line_bytes + b"\r\n")

    return behaviour


def cycle(*behaviours: Behaviour) -> Behaviour:
    """One behaviour per connection, in turn."""
    turns: Iterator[Behaviour] = itertools.cycle(behaviours)
    lock = threading.Lock()

    def behaviour(conn: socket.socket, sink: Sink) -> None:
        with lock:
            chosen = next(turns)
        chosen(conn, sink)

    return behaviour


def flaky(
    weights: dict[Behaviour, float], *, seed: int = 0, good: Behaviour | None = None
) -> Behaviour:
    """Per connection, a behaviour drawn at random by weight; the rest of the time, ``good``
    (by default a 200 that closes the connection, so that each request is drawn anew).
    Weights are fractions summing to at most 1."""
    rng = random.Random(seed)
    lock = threading.Lock()
    fallback = good or respond(keep_alive=False)
    choices = list(weights.items())

    def behaviour(conn: socket.socket, sink: Sink) -> None:
        with lock:
            draw = rng.random()
        for chosen, weight in choices:
            if draw < weight:
                chosen(conn, sink)
                return
            draw -= weight
        fallback(conn, sink)

    return behaviour


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(TICK / 5)
    return predicate()
