"""A throwaway local PostgreSQL cluster for the tests and the benchmarks.

``start_cluster()`` runs ``initdb`` and ``pg_ctl`` from the PostgreSQL server binaries (as the
``postgres`` user when this process is root, since PostgreSQL refuses to run as root) in a new
temporary directory, listening on 127.0.0.1 on a free port, tuned for speed rather than
durability (``fsync``, ``full_page_writes`` and ``synchronous_commit`` off): the data is thrown
away at the end. ``stop()`` (also registered with ``atexit``) removes it again. A cluster left
behind by a process that was killed is removed by the next ``start_cluster()``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

#: Where the server binaries are looked for, newest first, unless ``PG_BIN`` names a directory.
BIN_GLOBS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/local/pgsql/bin",
    "/opt/homebrew/opt/postgresql*/bin",
)
DIR_PREFIX = "wph-pg-"
USER = "wph"
PASSWORD = "wph-tests"  # a throwaway cluster on loopback


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or ``None`` when PostgreSQL is missing."""
    candidates = [os.environ["PG_BIN"]] if os.environ.get("PG_BIN") else []
    for pattern in BIN_GLOBS:
        candidates.extend(sorted(glob.glob(pattern), key=_version_key, reverse=True))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


def _version_key(path: str) -> tuple[int, ...]:
    digits = [part for part in Path(path).parent.name.split(".") if part.isdigit()]
    return tuple(int(part) for part in digits) or (0,)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Cluster:
    """A running cluster; ``url(name)`` is a ``DATABASE_URL`` for database ``name`` in it."""

    root: Path
    port: int
    bin_dir: Path
    owner_pid: int = field(default_factory=os.getpid)
    stopped: bool = False

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, name: str = "wph") -> str:
        """Through the cluster's unix socket: a round trip costs a quarter of one over TCP."""
        host = quote(str(self.root), safe="")
        return f"postgres://{USER}:{quote(PASSWORD)}@{host}:{self.port}/{name}"

    def tcp_url(self, name: str = "wph") -> str:
        return f"postgres://{USER}:{quote(PASSWORD)}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server and remove its files. Only the process that started it does so."""
        if self.stopped or os.getpid() != self.owner_pid:
            return
        self.stopped = True
        _stop_dir(self.root, self.bin_dir)


def _run_as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def _stop_dir(root: Path, bin_dir: Path) -> None:
    data = root / "data"
    if (data / "postmaster.pid").exists():
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _run_as_postgres(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                timeout=30,
            )
    shutil.rmtree(root, ignore_errors=True)


def remove_abandoned_clusters(bin_dir: Path) -> None:
    """Stop and remove clusters whose starting process no longer exists."""
    for root in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        try:
            owner = int((root / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if not _owner_alive(owner):
            _stop_dir(root, bin_dir)


def start_cluster(*, max_connections: int = 200) -> Cluster:
    """Create and start a cluster; it is stopped and removed when this process exits."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) were not found")
    remove_abandoned_clusters(bin_dir)
    root = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
    (root / "owner.pid").write_text(str(os.getpid()))
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(root, postgres.pw_uid, postgres.pw_gid)
    password_file = root / "pwfile"
    password_file.write_text(PASSWORD + "\n")
    os.chmod(password_file, 0o644)
    cluster = Cluster(root=root, port=0, bin_dir=bin_dir)
    atexit.register(cluster.stop)
    try:
        _run_as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(cluster.data_dir),
                "-U",
                USER,
                f"--pwfile={password_file}",
                "--auth=md5",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=120,
        )
        password_file.unlink()
        options = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{root}'",
            "max_connections": str(max_connections),
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "shared_buffers": "64MB",
            "max_wal_size": "1GB",
        }
        with (cluster.data_dir / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in options.items())
        # A port can be taken between choosing it and binding it: try a few.
        for _attempt in range(5):
            cluster.port = _free_port()
            try:
                _run_as_postgres(
                    [
                        str(bin_dir / "pg_ctl"),
                        "-D",
                        str(cluster.data_dir),
                        "-o",
                        f"-p {cluster.port}",
                        "-l",
                        str(root / "server.log"),
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                    timeout=90,
                )
                break
            except subprocess.CalledProcessError:
                time.sleep(0.2)
        else:
            log = (root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start:\n{log}")
        create_database(cluster.url("postgres"), "wph")
    except BaseException:
        cluster.stop()
        raise
    # A SIGTERM (a CI timeout) must not leave the server running either.
    if os.getpid() == cluster.owner_pid and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return cluster


def _exit_on_sigterm(signum, frame):  # pragma: no cover - runs on a signal
    raise SystemExit(128 + signum)


def database_url(url: str, name: str) -> str:
    """``url`` with its database name replaced by ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def create_database(url: str, name: str, *, drop: bool = False, template: str = "") -> str:
    """Create database ``name`` on the server of ``url`` (any database there), empty or a copy
    of database ``template``; return its URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as conn:
        if drop:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if template:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(url, name)


def drop_database(url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
