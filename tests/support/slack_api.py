"""A look-alike of Slack's Web API on loopback, for the Slack bot.

:class:`FakeSlackApi` answers ``users.lookupByEmail`` and ``chat.postMessage`` as Slack does:
HTTP 200 with a JSON body, ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``; the token
checked in the ``Authorization: Bearer`` header (``not_authed``, ``invalid_auth``);
``users.lookupByEmail`` reads a form (``application/x-www-form-urlencoded``) or the query
string, ``chat.postMessage`` JSON or a form (whose ``blocks`` is a JSON string). Answers can be
scripted per method with :meth:`FakeSlackApi.answer_next` (a 429 with ``Retry-After``, an error).

It is served by pytest-httpserver: ``api = FakeSlackApi(TOKEN, {"ada@example.com": "U0ADA"});
url = api.install(httpserver)``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response


@dataclass
class SlackCall:
    """One request the look-alike received."""

    method: str
    headers: dict[str, str]
    content_type: str
    params: dict[str, Any]


@dataclass
class FakeSlackApi:
    token: str
    #: Email address (any case) to Slack user id.
    users: dict[str, str] = field(default_factory=dict)
    calls: list[SlackCall] = field(default_factory=list)
    #: The messages posted, as Slack read them (``channel``, ``text``, ``blocks``).
    messages: list[dict[str, Any]] = field(default_factory=list)
    scripted: dict[str, list[tuple[int, Any, dict[str, str]]]] = field(default_factory=dict)

    def install(self, httpserver: Any) -> str:
        """Serve the Web API at ``/api/`` of ``httpserver``; returns its ``API_URL``."""
        httpserver.expect_request(re.compile(r"^/api/.*")).respond_with_handler(self.handle)
        return httpserver.url_for("/api/")

    def answer_next(
        self, method: str, body: Any, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next call of ``method`` with ``body`` (a dict sent as JSON, or text)."""
        self.scripted.setdefault(method, []).append((status, body, headers or {}))

    def calls_of(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    def handle(self, request: Request) -> Response:
        method = request.path.removeprefix("/api/")
        content_type = request.mimetype
        params: dict[str, Any] = dict(request.args)
        if content_type == "application/json":
            loaded = json.loads(request.get_data() or b"null")
            params.update(loaded if isinstance(loaded, dict) else {})
        elif content_type == "application/x-www-form-urlencoded":
            params.update(request.form.to_dict())
        self.calls.append(SlackCall(method, dict(request.headers), content_type, params))
        if self.scripted.get(method):
            status, body, headers = self.scripted[method].pop(0)
            text = json.dumps(body) if isinstance(body, dict) else str(body)
            return Response(text, status=status, headers=headers, mimetype="application/json")
        authorization = request.headers.get("Authorization", "")
        if not authorization:
            return self.error("not_authed")
        if authorization != f"Bearer {self.token}":
            return self.error("invalid_auth")
        if method == "users.lookupByEmail":
            return self.lookup_by_email(content_type, params)
        if method == "chat.postMessage":
            return self.post_message(params)
        return self.error("unknown_method", status=404)

    def lookup_by_email(self, content_type: str, params: dict[str, Any]) -> Response:
        # A read method: JSON bodies are not among the content types Slack accepts for it.
        if content_type == "application/json":
            return self.error("invalid_arguments")
        email = str(params.get("email", ""))
        if not email:
            return self.error("invalid_arguments")
        known = {address.lower(): user_id for address, user_id in self.users.items()}
        user_id = known.get(email.lower())
        if user_id is None:
            return self.error("users_not_found")
        return self.ok(
            user={
                "id": user_id,
                "team_id": "T0WAGTAIL",
                "name": email.split("@")[0],
                "deleted": False,
                "profile": {"email": email, "real_name": email.split("@")[0]},
                "is_bot": False,
            }
        )

    def post_message(self, params: dict[str, Any]) -> Response:
        channel = params.get("channel")
        if channel not in self.users.values():
            return self.error("channel_not_found")
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if not params.get("text") and not blocks:
            return self.error("no_text")
        message = {"channel": channel, "text": params.get("text"), "blocks": blocks}
        self.messages.append(message)
        ts = f"{time.time():.6f}"
        return self.ok(
            channel=f"D{channel}",
            ts=ts,
            message={"type": "message", "text": message["text"], "blocks": blocks or [], "ts": ts},
        )

    @staticmethod
    def ok(**fields: Any) -> Response:
        return Response(json.dumps({"ok": True, **fields}), mimetype="application/json")

    @staticmethod
    def error(code: str, *, status: int = 200) -> Response:
        return Response(
            json.dumps({"ok": False, "error": code}), status=status, mimetype="application/json"
        )
