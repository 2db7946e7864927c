"""The error hierarchy.

``PublishHooksError`` is the root of everything a delivery can raise. Configuration errors
subclass ``ImproperlyConfigured`` and stay outside that root, so a broad ``except
PublishHooksError`` around a delivery never swallows a broken setting.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured


class PublishHooksError(Exception):
    """Root of the errors raised while delivering."""


class DeliveryError(PublishHooksError):
    """A destination did not accept a delivery.

    ``retryable`` says whether another attempt may succeed; ``retry_after`` is the number of
    seconds the destination asked to wait (``Retry-After``), if any. ``response_body`` is an
    excerpt, already truncated.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        response_headers: dict[str, str] | None = None,
        response_body: str = "",
        request_headers: dict[str, str] | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after = retry_after
        self.response_headers = response_headers or {}
        self.response_body = response_body
        self.request_headers = request_headers or {}
        #: Recorded on the attempt as ``Attempt.detail`` (JSON-safe, no secrets).
        self.detail = detail or {}


class DestinationGone(DeliveryError):
    """The destination says it no longer exists (HTTP 410): it is disabled."""

    def __init__(self, message: str, **kwargs) -> None:
        kwargs["retryable"] = False
        super().__init__(message, **kwargs)


class UnsafeDestination(DeliveryError):
    """The target resolves to an address that ``ALLOW_PRIVATE_NETWORKS`` does not allow."""

    def __init__(self, message: str, **kwargs) -> None:
        kwargs["retryable"] = False
        super().__init__(message, **kwargs)


class PublishHooksConfigurationError(ImproperlyConfigured):
    """A setting is wrong. Raised only where a system check could not have caught it first."""
