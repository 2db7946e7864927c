"""Direct messages to Wagtail users from a Slack app's bot (the operator's ``SLACK_BOT``).

:func:`send_direct_message` finds the Slack user by the Wagtail user's email address
(``users.lookupByEmail``, remembered for :data:`USER_CACHE_SECONDS` by the process) and posts
to them (``chat.postMessage`` with the user id as the channel, which Slack delivers in the app's
direct messages). The blocks are validated with the Block Kit models of ``slack_sdk`` before
anything is sent. Every failure is a :class:`~wagtail_publish_hooks.exceptions.DeliveryError`
whose ``retryable`` says whether another attempt may succeed: rate limits (HTTP 429 with
``Retry-After``, ``ratelimited``) and Slack's outages are retried, honouring ``Retry-After``;
a refused token, a user Slack does not know and a message Slack rejects are not.

Why the package's own HTTP transport, not ``slack_sdk``'s ``WebClient``: the client opens its
own ``urllib`` connections, outside the address policy (every address a host resolves to
checked, the connection pinned to a checked one), the one deadline per request, the bounded
reading of answers and the hiding of secrets from records and logs that every other request of
the package gets. Two form or JSON POSTs are all the bot needs; ``slack_sdk`` serves for what it
does best, knowing Block Kit. Being the operator's, the bot's requests follow the address policy
of the settings (``ALLOW_PRIVATE_NETWORKS``), whichever destination they are sent for.

The token is a secret: it travels in the ``Authorization`` header only (recorded as
``[redacted]``), is left out of :class:`BotSettings`' ``repr()``, and no message of this module
or of its checks (``E064``) shows it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any
from urllib.parse import urlencode, urlsplit

from .backends.http import rephrased
from .backends.slack import MinimumInterval
from .block_kit import InvalidBlocks, slack_sdk_installed, validate_blocks
from .conf import SETTING_NAME, get_settings
from .encoding import encode_json
from .exceptions import DeliveryError
from .http.addresses import address_policy, settings_policy
from .http.responses import HttpResult, error_for, parse_retry_after
from .http.transport import post

#: The key of ``WAGTAIL_PUBLISH_HOOKS`` that configures the bot.
SETTING_KEY = "SLACK_BOT"
SETTING_KEYS = frozenset({"TOKEN", "API_URL"})
DEFAULT_API_URL = "https://slack.com/api/"
#: A bot token, or a user token (the messages then come from that user).
TOKEN_PREFIXES = ("xoxb-", "xoxp-")
_TOKEN_SHAPE = re.compile(r"xox[bp]-[\x21-\x7e]+")

#: Seconds one call to the Web API may take in all, and to connect.
TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
#: How long a user id found by email is remembered, and how many are.
USER_CACHE_SECONDS = 3600.0
USER_CACHE_SIZE = 10_000
#: Slack's limit on a message's text.
MAX_TEXT_LENGTH = 40_000

#: Error codes worth another attempt: Slack's rate limits and its own failures.
RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "fatal_error", "internal_error", "service_unavailable"}
    | {"request_timeout", "team_added_to_org"}
)
#: Error codes that say the recipient cannot be reached: a remembered user id is forgotten.
RECIPIENT_ERRORS = frozenset(
    {"users_not_found", "user_not_found", "channel_not_found", "cannot_dm_bot", "is_archived"}
    | {"user_disabled", "messages_tab_disabled"}
)
_CREDENTIAL_REFUSED = "the bot's token was refused"
#: What Slack's error codes mean, for the recorded error.
ERROR_EXPLANATIONS = {
    "invalid_auth": f"{_CREDENTIAL_REFUSED} (not a valid token)",
    "not_authed": f"{_CREDENTIAL_REFUSED} (none was received)",
    "account_inactive": f"{_CREDENTIAL_REFUSED} (its user or workspace is deactivated)",
    "token_revoked": f"{_CREDENTIAL_REFUSED} (revoked)",
    "token_expired": f"{_CREDENTIAL_REFUSED} (expired)",
    "no_permission": "the bot may not do this in the workspace",
    "missing_scope": "the Slack app lacks a scope",
    "not_allowed_token_type": "this kind of token may not call the method",
    "ekm_access_denied": "the workspace's administrators suspended the app's access",
    "team_access_not_granted": "the token has no access to the workspace",
    "users_not_found": "no Slack user has the Wagtail user's email address",
    "user_not_found": "the Slack user does not exist",
    "channel_not_found": "the Slack user's direct messages cannot be found",
    "cannot_dm_bot": "the Slack user is a bot",
    "user_disabled": "the Slack user is deactivated",
    "messages_tab_disabled": "the app's Messages tab is turned off",
    "is_archived": "the conversation is archived",
    "msg_too_long": "the message is too long",
    "no_text": "the message has no text",
    "invalid_blocks": "Slack rejected the message's blocks",
    "invalid_blocks_format": "Slack rejected the message's blocks",
    "too_many_attachments": "the message has too many attachments",
    "invalid_arguments": "Slack could not read the request",
    "invalid_form_data": "Slack could not read the request",
    "invalid_json": "Slack could not read the request",
    "ratelimited": "rate limited",
    "rate_limited": "rate limited",
    "fatal_error": "Slack failed",
    "internal_error": "Slack failed",
    "service_unavailable": "Slack is unavailable",
    "request_timeout": "Slack timed out",
}
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{1,60}")
_USER_ID = re.compile(r"[A-Z0-9]{2,40}")
_SCOPES = re.compile(r"[a-z][a-z0-9:._,]{0,200}")
# Slack writes "ok" first: an answer cut at the read limit still says whether it succeeded.
_OK_PREFIX = re.compile(rb'\s*\{\s*"ok"\s*:\s*true\b')


class SlackApiError(DeliveryError):
    """Slack's Web API refused a call; ``slack_error`` is its error code (``""`` if none)."""

    slack_error: str = ""


class SlackUserNotFound(SlackApiError):
    """No Slack user has the email address (``users_not_found``): not retried."""

    slack_error = "users_not_found"

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs["retryable"] = False
        super().__init__(message, **kwargs)


# -- The setting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BotSettings:
    """``SLACK_BOT``, parsed. The token stays out of ``repr()``."""

    api_url: str
    token: str = field(repr=False)

    def method_url(self, method: str) -> str:
        return f"{self.api_url.rstrip('/')}/{method}"

    @property
    def cache_key(self) -> tuple[str, str]:
        """Which workspace a user id belongs to, without keeping the token itself."""
        return self.api_url, sha256(self.token.encode()).hexdigest()


def setting_problems(value: Any) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with a ``SLACK_BOT`` value, as (keys under ``SLACK_BOT``, message) pairs;
    empty when it is usable. No message shows the token. ``None`` (no bot) is fine."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [((), f'must be a dict such as {{"TOKEN": "xoxb-…"}}, not {type(value).__name__}.')]
    problems: list[tuple[tuple[str, ...], str]] = []
    for key in value:
        if key not in SETTING_KEYS:
            problems.append(((str(key),), "is not a key of SLACK_BOT (TOKEN, API_URL)."))
    token = value.get("TOKEN")
    if token in (None, ""):
        problems.append((("TOKEN",), "is required: the Slack app's bot token (xoxb-…)."))
    elif not isinstance(token, str) or not token.startswith(TOKEN_PREFIXES):
        problems.append((("TOKEN",), "must be a Slack bot token (xoxb-…) or user token (xoxp-…)."))
    elif not _TOKEN_SHAPE.fullmatch(token):
        problems.append((("TOKEN",), "must not contain spaces or control characters."))
    if "API_URL" in value:
        problem = _api_url_problem(value["API_URL"])
        if problem:
            problems.append((("API_URL",), problem))
    return problems


def _api_url_problem(url: Any) -> str | None:
    if not isinstance(url, str):
        return "must be the URL of Slack's Web API, such as 'https://slack.com/api/'."
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return "is not a valid URL."
    if parts.scheme not in ("http", "https") or not hostname:
        return "must be an absolute https:// (or http://) URL with a host."
    if parts.username or parts.password:
        return "must not contain credentials; the token is sent in a header."
    if parts.query or parts.fragment:
        return "must not have a query or a fragment; the method's name is appended to it."
    return None


def bot_settings() -> BotSettings | None:
    """The bot of the settings, or ``None`` if none is configured.

    Raises a :class:`DeliveryError` that is not retried if ``SLACK_BOT`` is malformed (system
    check ``E064``): another attempt would read the same setting.
    """
    value = get_settings().SLACK_BOT
    if value is None:
        return None
    problems = setting_problems(value)
    if problems:
        keys, message = problems[0]
        where = "".join(f"[{key!r}]" for key in (SETTING_KEY, *keys))
        raise DeliveryError(
            f"the Slack bot cannot be used: {SETTING_NAME}{where} {message} (check E064)",
            retryable=False,
        )
    return BotSettings(api_url=value.get("API_URL") or DEFAULT_API_URL, token=value["TOKEN"])


def is_configured() -> bool:
    """Whether the operator configured a Slack bot that can send (users may choose Slack):
    ``SLACK_BOT`` is set and well formed, and ``slack_sdk`` is installed."""
    value = get_settings().SLACK_BOT
    return value is not None and not setting_problems(value) and slack_sdk_installed()


# -- Users' ids ----------------------------------------------------------------------------------


class UserIds:
    """The Slack user ids found by email, per workspace, for :data:`USER_CACHE_SECONDS`;
    shared by the threads of a process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: OrderedDict[tuple[Any, ...], tuple[str, float]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> str | None:
        with self._lock:
            found = self._ids.get(key)
            if found is None:
                return None
            if found[1] <= time.monotonic():
                del self._ids[key]
                return None
            return found[0]

    def remember(self, key: tuple[Any, ...], user_id: str) -> None:
        with self._lock:
            self._ids[key] = (user_id, time.monotonic() + USER_CACHE_SECONDS)
            self._ids.move_to_end(key)
            while len(self._ids) > USER_CACHE_SIZE:
                self._ids.popitem(last=False)

    def forget(self, key: tuple[Any, ...]) -> None:
        with self._lock:
            self._ids.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._ids.clear()


user_ids = UserIds()
#: Calls Slack asked to wait for (429 ``Retry-After``) are not made before then.
holds = MinimumInterval()


# -- Sending -------------------------------------------------------------------------------------


def send_direct_message(email: str, text: str, blocks: list) -> None:
    """Send ``text`` and ``blocks`` to the Slack user whose email address is ``email``, as a
    direct message from the operator's bot (``SLACK_BOT``).

    ``text`` is the notification's fallback (and the whole message when ``blocks`` is empty);
    ``blocks`` are Block Kit blocks, as dicts or ``slack_sdk`` objects, validated before any
    request. Raises :class:`~wagtail_publish_hooks.exceptions.DeliveryError`: ``retryable``
    for rate limits (with ``retry_after``) and Slack's failures, not for a missing or refused
    bot, an unknown user (:class:`SlackUserNotFound`) or an invalid message
    (:class:`InvalidBlocks`).
    """
    bot = bot_settings()
    if bot is None:
        raise DeliveryError(
            f"no Slack bot is configured ({SETTING_NAME}['{SETTING_KEY}']): the direct "
            "message cannot be sent",
            retryable=False,
        )
    SlackBot(bot).send_direct_message(email, text, blocks)


class SlackBot:
    """The two calls of the Web API the bot makes, for one ``SLACK_BOT``."""

    def __init__(self, settings: BotSettings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return f"<SlackBot {self.settings.api_url!r}>"

    def send_direct_message(self, email: str, text: str, blocks: list) -> HttpResult:
        """:func:`send_direct_message`; returns the result of ``chat.postMessage``."""
        valid_blocks = validate_blocks(blocks)
        if not isinstance(text, str):
            raise InvalidBlocks(f"the text must be a string, not {type(text).__name__}")
        if not text.strip() and not valid_blocks:
            raise InvalidBlocks("the message has neither text nor blocks")
        if len(text) > MAX_TEXT_LENGTH:
            raise InvalidBlocks(f"the text is over Slack's {MAX_TEXT_LENGTH:,} characters")
        user_id = self.user_id(email)
        # A digest links many pages: Slack would unfurl the first ones into previews.
        message: dict[str, Any] = {
            "channel": user_id,
            "text": text,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if valid_blocks:
            message["blocks"] = valid_blocks
        try:
            result, _ = self.call(
                "chat.postMessage",
                encode_json(message),
                "application/json; charset=utf-8",
                hold=user_id,
            )
        except SlackApiError as exc:
            if exc.slack_error in RECIPIENT_ERRORS:
                # The user may have been deactivated or replaced: look them up afresh next time.
                user_ids.forget(self._user_key(email))
            raise
        return result

    def user_id(self, email: str) -> str:
        """The Slack id of the user with this email address (``users.lookupByEmail``),
        remembered for :data:`USER_CACHE_SECONDS`."""
        if not isinstance(email, str) or "@" not in email:
            raise SlackUserNotFound(
                "the Wagtail user has no email address to find them in Slack by"
            )
        key = self._user_key(email)
        found = user_ids.get(key)
        if found is not None:
            return found
        body = urlencode({"email": email.strip()}).encode()
        try:
            result, answer = self.call(
                "users.lookupByEmail", body, "application/x-www-form-urlencoded"
            )
        except SlackApiError as exc:
            if exc.slack_error == "users_not_found":
                user_ids.forget(key)
                raise SlackUserNotFound(
                    f"{exc.message} (it must be the same in Wagtail and in Slack)",
                    status_code=exc.status_code,
                    response_headers=exc.response_headers,
                    response_body=exc.response_body,
                    request_headers=exc.request_headers,
                ) from None
            raise
        user = answer.get("user")
        user_id = user.get("id") if isinstance(user, dict) else None
        if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
            raise error_for(
                result, "Slack users.lookupByEmail: the answer has no user id", retryable=True
            )
        user_ids.remember(key, user_id)
        return user_id

    def _user_key(self, email: str) -> tuple[Any, ...]:
        return (*self.settings.cache_key, email.strip().lower())

    def call(
        self, method: str, body: bytes, content_type: str, *, hold: str = ""
    ) -> tuple[HttpResult, dict[str, Any]]:
        """POST to a Web API ``method``: the result and Slack's answer when it says ``"ok":
        true``. Else raises a :class:`DeliveryError`; a :class:`SlackApiError` when Slack
        answered (``slack_error`` holds its error code). ``hold`` narrows a wait Slack asks
        for (429) to calls with the same ``hold`` (a channel)."""
        hold_key = f"{self.settings.api_url} {method} {hold}"
        held = holds.held_for(hold_key)
        if held > 0:
            raise DeliveryError(
                f"Slack {method}: Slack asked to wait (rate limited); not sent, retrying "
                f"after {held:.3g} s",
                retryable=True,
                retry_after=held,
            )
        headers = {
            "Content-Type": content_type,
            "Authorization": f"Bearer {self.settings.token}",
        }
        try:
            # The operator's bot: the settings' address policy, for whichever destination.
            with address_policy(settings_policy()):
                result = post(
                    self.settings.method_url(method),
                    body=body,
                    headers=headers,
                    timeout=TIMEOUT,
                    connect_timeout=CONNECT_TIMEOUT,
                )
        except DeliveryError as exc:
            raise self._translate_failure(method, exc, hold_key) from None
        answer = self._answer(method, result)
        if answer.get("ok") is True:
            return result, answer
        code = _error_code(answer) or "unknown_error"
        retry_after = None
        if code in RETRYABLE_ERRORS:
            headers = {name.lower(): value for name, value in result.response_headers.items()}
            retry_after = parse_retry_after(headers.get("retry-after"))
            if retry_after:
                holds.hold_off(hold_key, retry_after)
        failure = SlackApiError(
            _describe(method, code, answer, retry_after),
            status_code=result.status_code,
            retryable=code in RETRYABLE_ERRORS,
            retry_after=retry_after,
            response_headers=result.response_headers,
            response_body=result.response_body,
            request_headers=result.request_headers,
        )
        failure.slack_error = code
        raise failure

    def _answer(self, method: str, result: HttpResult) -> dict[str, Any]:
        try:
            answer = json.loads(result.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("ok"), bool):
            return answer
        if _OK_PREFIX.match(result.body):
            # Longer than the package reads of an answer (Slack echoes the message back).
            return {"ok": True}
        raise error_for(
            result, f"Slack {method}: the answer is not one of Slack's Web API", retryable=True
        )

    def _translate_failure(self, method: str, exc: DeliveryError, hold_key: str) -> DeliveryError:
        """An HTTP failure (no answer, 429, 5xx, another status) as this method's failure."""
        if exc.status_code is None:
            # Connecting, the address policy, the deadline: their messages are safe already.
            return rephrased(exc, f"Slack {method}: {exc.message}")
        try:
            answer = json.loads(exc.response_body)
        except ValueError:
            answer = None
        code = _error_code(answer) if isinstance(answer, dict) else ""
        if exc.status_code == 429 and exc.retry_after:
            holds.hold_off(hold_key, exc.retry_after)
        retryable = exc.retryable
        if code in ERROR_EXPLANATIONS and exc.status_code != 429:
            retryable = code in RETRYABLE_ERRORS
        # Always a plain failure: a 410 from Slack must not disable the destination the message
        # was for.
        failure = SlackApiError(
            _describe(method, code, answer or {}, exc.retry_after, status=exc.status_code),
            status_code=exc.status_code,
            retryable=retryable,
            retry_after=exc.retry_after,
            response_headers=exc.response_headers,
            response_body=exc.response_body,
            request_headers=exc.request_headers,
        )
        failure.slack_error = code
        return failure


def _error_code(answer: Mapping[str, Any]) -> str:
    code = answer.get("error")
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else ""


def _describe(
    method: str,
    code: str,
    answer: Mapping[str, Any],
    retry_after: float | None,
    *,
    status: int | None = None,
) -> str:
    """``Slack chat.postMessage: HTTP 429 ratelimited: rate limited; retrying after 30 s``."""
    message = f"Slack {method}:"
    if status is not None:
        message += f" HTTP {status}"
    if code:
        message += f" {code}"
        if code in ERROR_EXPLANATIONS:
            message += f": {ERROR_EXPLANATIONS[code]}"
    if code == "missing_scope":
        needed = answer.get("needed")
        if isinstance(needed, str) and _SCOPES.fullmatch(needed):
            message += f" (it needs {needed})"
    if code in ERROR_EXPLANATIONS and ERROR_EXPLANATIONS[code].startswith(_CREDENTIAL_REFUSED):
        message += f"; check {SETTING_NAME}['{SETTING_KEY}']['TOKEN']"
    if retry_after:
        message += f"; retrying after {retry_after:g} s"
    return message
