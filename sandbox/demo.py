#!/usr/bin/env python
"""``make demo``: the sandbox site and its task worker, side by side, until Ctrl-C.

Runs ``migrate`` and ``load_demo_content``, then starts ``runserver`` and django-tasks-db's
``db_worker`` as two subprocesses, prefixes and forwards their output, and stops both when
either exits or on Ctrl-C. ``SANDBOX_PORT`` (default 8000) and ``SANDBOX_DB`` (default
``sandbox/db.sqlite3``) are honoured.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

SANDBOX_DIR = Path(__file__).resolve().parent
REPO_ROOT = SANDBOX_DIR.parent
MANAGE = SANDBOX_DIR / "manage.py"
HOST = "127.0.0.1"
PORT = int(os.environ.get("SANDBOX_PORT", "8000"))
BASE_URL = f"http://{HOST}:{PORT}"

#: How often the worker looks for new tasks when idle: short, so deliveries show up at once.
WORKER_INTERVAL = "0.5"
#: How long a child gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 10.0
#: ``SANDBOX_VERBOSE=1`` also shows the worker's lines for Wagtail's own tasks (search and
#: reference index updates), which otherwise drown the publish hooks lines.
VERBOSE = os.environ.get("SANDBOX_VERBOSE", "") not in ("", "0")
QUIET_WORKER_LINE = re.compile(r"path=(?!wagtail_publish_hooks\.)\S+ state=(?:RUNNING|SUCCESSFUL)$")

COLOURS = {"web": "\033[36m", "worker": "\033[35m", "demo": "\033[1;32m"}
RESET = "\033[0m"
USE_COLOUR = sys.stdout.isatty() and not os.environ.get("NO_COLOR")

_print_lock = threading.Lock()


def emit(prefix: str, line: str) -> None:
    label = f"{prefix:>6} |"
    if USE_COLOUR:
        label = f"{COLOURS.get(prefix, '')}{label}{RESET}"
    with _print_lock:
        sys.stdout.write(f"{label} {line}\n")
        sys.stdout.flush()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "sandbox_site.settings"
    env["SANDBOX_PORT"] = str(PORT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, str(MANAGE), *args]


def run_step(description: str, *args: str) -> None:
    """Run one management command to completion, forwarding its output; exit if it fails."""
    emit("demo", f"{description}: manage.py {' '.join(args)}")
    process = subprocess.Popen(
        manage(*args),
        cwd=REPO_ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            emit("setup", line.rstrip("\n"))
        process.wait()
    except BaseException:
        process.terminate()
        process.wait()
        raise
    finally:
        process.stdout.close()
    if process.returncode != 0:
        emit("demo", f"manage.py {args[0]} failed (exit code {process.returncode}); stopping.")
        sys.exit(process.returncode or 1)


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def wait_for_port(port: int, process: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if port_in_use(port):
            return True
        time.sleep(0.1)
    return False


class Child:
    """A long-running subprocess whose output is forwarded with a prefix."""

    def __init__(self, name: str, args: list[str], quiet: re.Pattern | None = None) -> None:
        self.name = name
        self.quiet = quiet
        # A session of its own: Ctrl-C reaches only this script, which then stops the children
        # in order instead of all of them dying at once mid-write.
        self.process = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self.thread = threading.Thread(target=self._forward, daemon=True)
        self.thread.start()

    def _forward(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            if self.quiet is None or not self.quiet.search(line):
                emit(self.name, line)

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                emit("demo", f"{self.name} did not stop in {STOP_TIMEOUT:.0f} s; killing it")
                self.process.kill()
                self.process.wait()
        self.thread.join(timeout=2)
        if self.process.stdout is not None and not self.thread.is_alive():
            self.process.stdout.close()


def instructions() -> str:
    return "\n".join(
        [
            "",
            "=" * 72,
            f"  The sandbox is running at {BASE_URL}/",
            "",
            f"  Wagtail admin:      {BASE_URL}/admin/",
            "  Log in as:          admin / changeme",
            f"  Webhook inspector:  {BASE_URL}/inspector/",
            "",
            "  Publish a page in the admin (edit a blog post, then 'Publish'),",
            f"  then open {BASE_URL}/inspector/",
            "  The webhook, Slack, Teams, Discord and email deliveries show up there",
            "  within a couple of seconds.",
            "",
            "  The worker's lines for Wagtail's own tasks (search and reference index",
            "  updates) are hidden; SANDBOX_VERBOSE=1 shows them.",
            "",
            "  Press Ctrl-C to stop the site and the worker.",
            "=" * 72,
            "",
        ]
    )


class Stop(Exception):
    pass


def _raise_stop(signum, frame) -> None:
    raise Stop(signal.Signals(signum).name)


def main() -> int:
    os.chdir(REPO_ROOT)
    if port_in_use(PORT):
        emit("demo", f"Port {PORT} on {HOST} is already in use. Stop whatever listens there,")
        emit("demo", "or choose another port: SANDBOX_PORT=8001 make demo")
        return 1

    # Ctrl-C and SIGTERM both stop the demo cleanly (SIGINT may arrive ignored when the demo
    # was started in the background by a non-interactive shell).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_stop)
    children: list[Child] = []
    exit_code = 0
    try:
        run_step("Applying migrations", "migrate", "--no-input", "--verbosity", "0")
        run_step("Loading demo content", "load_demo_content")

        web = Child("web", manage("runserver", f"{HOST}:{PORT}", "--noreload"))
        children.append(web)
        # The worker starts once the site listens, so that the deliveries queued by
        # load_demo_content reach the inspector on their first attempt.
        if not wait_for_port(PORT, web.process, timeout=30):
            emit("demo", "runserver did not start listening; stopping.")
            return 1
        worker = Child(
            "worker",
            manage(
                "db_worker",
                "--interval",
                WORKER_INTERVAL,
                "--no-reload",
                "--no-startup-delay",
            ),
            quiet=None if VERBOSE else QUIET_WORKER_LINE,
        )
        children.append(worker)
        emit("demo", instructions())

        while True:
            for child in children:
                if not child.running():
                    emit(
                        "demo", f"{child.name} exited (code {child.process.returncode}); stopping."
                    )
                    code = child.process.returncode
                    exit_code = code if code and code > 0 else 1
                    return exit_code
            time.sleep(0.3)
    except (KeyboardInterrupt, Stop):
        emit("demo", "Stopping…")
        return exit_code
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan them
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(children):  # the worker first, then the site
            child.stop()
        if children:
            emit("demo", "Stopped.")


if __name__ == "__main__":
    sys.exit(main())
