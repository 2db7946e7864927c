"""Outgoing HTTP shared by the backends: a pooled session, safe targets, and response rules.

What a backend needs is here: :func:`post` (or :func:`send_request` with another method) and
the :class:`HttpResult` it returns. The parts live in their own modules:

- :mod:`.transport`: the pooled session per thread, sending, and safe error messages;
- :mod:`.addresses`: the address policy (which non-public addresses a destination may reach),
  the deny list, and resolving a URL's host once;
- :mod:`.pinning`: connecting to the address that was checked;
- :mod:`.deadlines`: one deadline per request, and the worker's claim that no request outlives;
- :mod:`.responses`: which statuses succeed, fail or are retried (``Retry-After``), and what of a
  response is kept.

Everything that leaves them is safe to record: error messages never include a URL's path or
query (a Slack or build-hook URL *is* a secret) nor any header value.
"""

from ..encoding import encode_json, encode_text
from ..redaction import describe_url
from .responses import HttpResult
from .transport import close_session, post, post_json, send_request

__all__ = [
    "HttpResult",
    "close_session",
    "describe_url",
    "encode_json",
    "encode_text",
    "post",
    "post_json",
    "send_request",
]
