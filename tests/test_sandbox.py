"""The sandbox site end to end: a real publish reaches its inspector as a signed webhook, a
Slack, a Teams and a Discord message and an email, and the inspector shows each of them.

Everything runs in subprocesses with the sandbox's own settings (this test suite's settings
stay out of it): ``migrate``, ``load_demo_content``, ``runserver`` and ``db_worker``, then a
``save_revision().publish()`` through ``manage.py shell``. The inspector's table is read straight
from the sandbox's SQLite file.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.worker

ROOT = Path(__file__).resolve().parents[1]
MANAGE = ROOT / "sandbox" / "manage.py"
DELIVERY_TIMEOUT = 20.0

#: Variables of this process that must not leak into the sandbox's (settings, test database).
DROPPED_PREFIXES = ("DJANGO_", "PYTEST", "PUBLISH_HOOKS_", "SANDBOX_", "TEST_SQLITE")
DROPPED_NAMES = {"PYTHONPATH", "DATABASE_URL"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Sandbox:
    env: dict[str, str]
    port: int
    db: Path
    logs: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(
            [sys.executable, str(MANAGE), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, (
            f"manage.py {args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, str(MANAGE), *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that stop() reaches every child
        )
        log.close()
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def received(self) -> list[dict]:
        """The inspector's ``ReceivedWebhook`` rows (every kind), newest first."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute(
                "SELECT * FROM inspector_receivedwebhook ORDER BY received_at DESC, id DESC"
            ).fetchall()
        return [dict(row) for row in rows]


@pytest.fixture
def sandbox(request, tmp_path) -> Sandbox:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(DROPPED_PREFIXES) and key not in DROPPED_NAMES
    }
    port = free_port()
    db = tmp_path / "sandbox.sqlite3"
    env.update(
        DJANGO_SETTINGS_MODULE="sandbox_site.settings",
        SANDBOX_DB=str(db),
        SANDBOX_PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    box = Sandbox(env=env, port=port, db=db, logs=tmp_path)
    request.addfinalizer(box.stop)
    return box


PUBLISH = """
import json
from blog.models import BlogPage
page = BlogPage.objects.get(slug="hello-publish-hooks")
page.title = {title!r}
page.save_revision().publish()
print("RESULT " + json.dumps({{"page_id": page.pk}}))
"""


def test_a_published_page_reaches_the_inspector_verified(sandbox):
    sandbox.manage("check", "--fail-level", "WARNING")
    sandbox.manage("migrate", "--no-input", "--verbosity", "0")
    loaded = sandbox.manage("load_demo_content")
    assert "Created superuser 'admin'" in loaded
    again = sandbox.manage("load_demo_content")  # idempotent: a second run creates nothing
    assert "Created" not in again and "exists" in again

    web = sandbox.start("web", "runserver", f"127.0.0.1:{sandbox.port}", "--noreload")
    deadline = time.monotonic() + 30
    while not port_open(sandbox.port):
        assert web.poll() is None, f"runserver exited:\n{sandbox.log('web')}"
        assert time.monotonic() < deadline, f"runserver did not listen:\n{sandbox.log('web')}"
        time.sleep(0.1)
    sandbox.start("worker", "db_worker", "--interval", "0.2", "--no-reload", "--no-startup-delay")

    # A request without a valid signature is recorded too, as not verified.
    unsigned = urllib.request.Request(
        f"{sandbox.base_url}/inspector/hooks/",
        data=b'{"type": "page.published"}',
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    with no_proxy.open(unsigned, timeout=10) as response:
        assert json.loads(response.read()) == {"ok": True}

    title = f"Sandbox end-to-end {uuid.uuid4().hex[:8]}"
    output = sandbox.manage("shell", "--verbosity", "0", "-c", PUBLISH.format(title=title))
    result = json.loads(
        next(line for line in output.splitlines() if line.startswith("RESULT "))[7:]
    )

    # One message of each kind for the page: the chat and email ones name the event by its
    # label, the webhook by its type.
    wanted = {
        "webhook": "page.published",
        "slack": "Page published",
        "teams": "Page published",
        "discord": "Page published",
        "email": "Page published",
    }
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    found: dict[str, dict] = {}
    while len(found) < len(wanted) and time.monotonic() < deadline:
        for row in sandbox.received():
            kind = row["kind"]
            if (
                kind in wanted
                and kind not in found
                and row["event_type"] == wanted[kind]
                and row["page_title"] == title
            ):
                found[kind] = row
        if len(found) < len(wanted):
            time.sleep(0.25)
    assert set(found) == set(wanted), (
        f"for {title!r}, only {sorted(found)} arrived within {DELIVERY_TIMEOUT:.0f} s\n"
        f"--- web ---\n{sandbox.log('web')}\n--- worker ---\n{sandbox.log('worker')}"
    )
    match = found["webhook"]

    assert match["verified"] == 1, match["verification_error"]
    assert match["verification_error"] == ""
    assert match["method"] == "POST"
    assert match["page_id"] == result["page_id"]
    body = json.loads(match["body"])
    headers = {name.lower(): value for name, value in json.loads(match["headers"]).items()}
    assert body["type"] == "page.published"
    assert body["data"]["page"]["id"] == result["page_id"]
    assert body["data"]["page"]["title"] == title
    assert body["data"]["page"]["type"] == "blog.BlogPage"
    assert headers["webhook-id"] == match["webhook_id"] == body["id"]
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"

    slack = json.loads(found["slack"]["body"])
    assert found["slack"]["path"].startswith("/inspector/slack/services/")
    assert [block["type"] for block in slack["blocks"]] == ["header", "section", "context"]
    assert title in slack["text"]
    teams = json.loads(found["teams"]["body"])
    card = teams["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"] == title
    discord = json.loads(found["discord"]["body"])
    assert discord["allowed_mentions"] == {"parse": []}
    assert discord["embeds"][0]["title"] == title.replace("-", "\\-")  # Markdown-escaped
    email = found["email"]
    assert email["email_to"] == "admin@example.com"
    assert email["email_subject"] == f"[Publish hooks sandbox] Page published: {title}"
    assert f"“{title}” was published." in email["email_text"]
    assert title in email["email_html"]
    for row in found.values():
        assert row["verified"] == (1 if row["kind"] == "webhook" else 0)

    # The coalescing destinations send once their 2 s window has passed, covering the event.
    def covering(kind: str) -> dict | None:
        for row in sandbox.received():
            if row["kind"] == kind and body["id"] in json.loads(row["body"]).get("events", []):
                return row
        return None

    coalesced: dict[str, dict] = {}
    while len(coalesced) < 2 and time.monotonic() < deadline + 10:
        for kind in ("build", "revalidate"):
            row = covering(kind)
            if row is not None:
                coalesced[kind] = row
        if len(coalesced) < 2:
            time.sleep(0.25)
    assert set(coalesced) == {"build", "revalidate"}, sandbox.log("worker")
    revalidation = json.loads(coalesced["revalidate"]["body"])
    page_path = "/" + body["data"]["page"]["url"].split("/", 3)[3]
    assert page_path in revalidation["paths"]
    assert coalesced["build"]["event_type"] == "Build triggered"

    # The inspector's page shows each of them, with the title in each kind's preview.
    with no_proxy.open(f"{sandbox.base_url}/inspector/", timeout=10) as response:
        assert response.status == 200
        page = response.read().decode("utf-8")
    sections = re.findall(
        r'<section [^>]*data-id="(\d+)" data-kind="(\w+)">(.*?)</section>', page, re.S
    )
    by_id = {int(pk): (kind, content) for pk, kind, content in sections}
    for kind, row in found.items():
        shown_kind, content = by_id[row["id"]]
        assert shown_kind == kind
        preview = re.search(
            r'<div class="preview" data-part="preview">(.*?)<details', content, re.S
        )
        if kind == "webhook":
            assert preview is None  # a webhook has no preview, only its body and headers
            assert "✓ signature verified" in content
            continue
        assert preview is not None, f"no preview for {kind}:\n{content}"
        text = html.unescape(re.sub(r"<[^>]+>", "", preview.group(1)))
        assert title in text, f"{title!r} not in the {kind} preview:\n{preview.group(1)}"

    # Every destination delivered everything it was sent, the demo content included.
    status = sandbox.manage("publish_hooks", "status")
    for alias in ("inspector", "slack", "teams", "discord", "email", "build", "revalidate"):
        line = next(line for line in status.splitlines() if line.split()[:1] == [alias])
        assert line.split()[-3:] == ["0", "0", "ok"], status  # none retrying or failed

    unsigned_rows = [
        row for row in sandbox.received() if row["kind"] == "webhook" and not row["webhook_id"]
    ]
    assert len(unsigned_rows) == 1
    assert unsigned_rows[0]["verified"] == 0
    assert "Missing required headers" in unsigned_rows[0]["verification_error"]

    # Wagtail's own tasks (reference and search index) ran in the same worker without errors.
    time.sleep(1)
    for name in ("web", "worker"):
        assert "Traceback" not in sandbox.log(name), sandbox.log(name)
    assert "state=FAILED" not in sandbox.log("worker")
    assert "wagtail.tasks.update_reference_index_task state=SUCCESSFUL" in sandbox.log("worker")
