"""A real Varnish (``/usr/sbin/varnishd``) in front of the test site, both on loopback.

The site is served by Django's threaded WSGI server in a thread of the test process (it sees the
test database); Varnish caches every GET of it (``tests/support/varnish.vcl``) and takes ``PURGE``
requests, which Wagtail's ``HTTPBackend`` sends.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

VARNISHD = os.environ.get("VARNISHD", "/usr/sbin/varnishd")
VCL_TEMPLATE = Path(__file__).with_name("varnish.vcl")

#: What the test site's pages render (the test app has no templates of its own).
PAGE_TEMPLATE = "<!doctype html><title>{{ page.title }}</title><h1>{{ page.title }}</h1>\n"
TEMPLATE_NAMES = (
    "testapp/blog_index_page.html",
    "testapp/blog_page.html",
    "testapp/promo_page.html",
    "wagtailcore/page.html",
)
#: A media page shows a rendition of its image (by foreign key or in its body) and links its
#: document, as a real template would.
MEDIA_PAGE_TEMPLATE = (
    "{% load wagtailcore_tags wagtailimages_tags %}"
    "<!doctype html><title>{{ page.title }}</title><h1>{{ page.title }}</h1>\n"
    "{% if page.image %}{% image page.image width-100 %}{% endif %}"
    "{% for block in page.body %}{% if block.block_type == 'image' %}"
    "{% image block.value width-100 %}{% endif %}{% endfor %}"
    '{% if page.document %}<a href="{{ page.document.url }}">{{ page.document.title }}</a>'
    "{% endif %}\n"
)


def varnishd_available() -> bool:
    return os.path.exists(VARNISHD) and os.access(VARNISHD, os.X_OK)


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"varnishd exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def write_templates(directory: Path) -> None:
    for name in TEMPLATE_NAMES:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PAGE_TEMPLATE)
    media_page = directory / "testapp/media_page.html"
    media_page.parent.mkdir(parents=True, exist_ok=True)
    media_page.write_text(MEDIA_PAGE_TEMPLATE)


class SiteServer:
    """Django's threaded WSGI server on a loopback port, in a daemon thread."""

    def __init__(self) -> None:
        from django.core.handlers.wsgi import WSGIHandler
        from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, format, *args):
                pass

        self.server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
        self.server.set_app(WSGIHandler())
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> SiteServer:
        self.thread.start()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@dataclass
class Response:
    status: int
    cache: str  # "HIT" or "MISS"
    body: str


class Varnish:
    """``varnishd -F`` on a free loopback port, with its working directory under ``workdir``."""

    def __init__(self, backend_port: int, workdir: Path) -> None:
        self.backend_port = backend_port
        self.workdir = workdir
        self.port = free_loopback_port()
        self.process: subprocess.Popen | None = None

    @property
    def location(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Varnish:
        vcl = self.workdir / "site.vcl"
        vcl.write_text(VCL_TEMPLATE.read_text().replace("{backend_port}", str(self.backend_port)))
        command = [
            VARNISHD,
            "-F",  # in the foreground: the fixture owns the process and ends it
            "-n", str(self.workdir / "instance"),
            "-a", f"127.0.0.1:{self.port}",
            "-T", "127.0.0.1:0",
            "-f", str(vcl),
            "-s", "malloc,32m",
            "-j", "none",  # no privilege separation: runs as root or as any user
            "-p", "default_grace=0",
        ]  # fmt: skip
        self.log = open(self.workdir / "varnishd.log", "wb")  # noqa: SIM115 -- closed in stop()
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_for_port(self.port, self.process)
        except Exception:
            self.stop()
            raise RuntimeError(
                "varnishd did not start: " + (self.workdir / "varnishd.log").read_text()[-2000:]
            ) from None
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log.close()

    def ban_all(self) -> None:
        answer = requests.request("BANALL", self.location + "/", timeout=10)
        assert answer.status_code == 200, answer.status_code

    def get(self, url: str) -> Response:
        """GET a site URL through Varnish (its host goes in the ``Host`` header)."""
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        answer = requests.get(
            self.location + path,
            headers={"Host": parts.netloc},
            timeout=10,
            allow_redirects=False,  # a redirect is a response of its own, cached on its own
        )
        return Response(answer.status_code, answer.headers.get("X-Cache", ""), answer.text)

    def cache(self, url: str) -> Response:
        """GET ``url`` until Varnish serves it from cache; the cached response."""
        self.get(url)
        response = self.get(url)
        assert response.cache == "HIT", (url, response)
        return response


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="wph-varnish-"))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
