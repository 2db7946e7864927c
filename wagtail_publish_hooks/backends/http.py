"""The base of the backends that send one kind of HTTP request to a ``URL``.

:class:`HttpBackend` owns what they share: the options ``URL``, ``TIMEOUT`` and
``CONNECT_TIMEOUT`` (parsed and checked once), :meth:`~HttpBackend.describe`, and sending through
:mod:`wagtail_publish_hooks.http` with one place, :meth:`~HttpBackend.translate_error`, where a
service's own answers become the package's exceptions. A backend on it keeps only what is
specific to its service: the body, its extra options, and what the service's errors mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django.core import checks

from ..exceptions import DeliveryError, DestinationGone
from ..http.responses import HttpResult
from ..http.transport import post
from ..limits import option_number
from ..redaction import describe_url
from ..validation import check_positive_number, check_url_option
from .base import BaseBackend

#: The options every backend on :class:`HttpBackend` takes.
COMMON_OPTION_KEYS = frozenset({"URL", "TIMEOUT", "CONNECT_TIMEOUT"})


class HttpBackend(BaseBackend):
    """A backend that POSTs to the destination's ``URL``.

    ``OPTIONS``: ``URL`` (required), ``TIMEOUT`` (seconds for the whole exchange, default
    :attr:`default_timeout`) and ``CONNECT_TIMEOUT`` (seconds to connect, default
    :attr:`default_connect_timeout`). A subclass adds its own keys to :attr:`option_keys`
    (``COMMON_OPTION_KEYS | {...}``) and
    its own checks in :meth:`check_service_options`, builds the body in
    :meth:`~BaseBackend.deliver` and sends it with :meth:`send`.
    """

    option_keys = COMMON_OPTION_KEYS
    #: Seconds the whole exchange may take when the destination sets no ``TIMEOUT``.
    default_timeout: ClassVar[float] = 15.0
    #: Seconds connecting may take when the destination sets no ``CONNECT_TIMEOUT``.
    default_connect_timeout: ClassVar[float] = 5.0
    #: What :meth:`describe` says before the URL (its scheme and host only).
    describe_as: ClassVar[str] = "POST"

    def __init__(self, *, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias=alias, options=options)
        url = options.get("URL", "")
        self.url: str = url if isinstance(url, str) else ""
        self.timeout = float(option_number(options, "TIMEOUT", self.default_timeout))
        self.connect_timeout = float(
            option_number(options, "CONNECT_TIMEOUT", self.default_connect_timeout)
        )

    @classmethod
    def check_options(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        """``URL`` (errors ``E011``, ``E012``; warning ``W003`` for plain ``http://``), the
        backend's own options (:meth:`check_service_options`), then ``TIMEOUT`` and
        ``CONNECT_TIMEOUT`` (error ``E015``)."""
        messages = cls.check_url(alias, options)
        messages += cls.check_service_options(alias, options)
        for key in ("TIMEOUT", "CONNECT_TIMEOUT"):
            messages += check_positive_number(alias, options, key)
        return messages

    @classmethod
    def check_service_options(
        cls, alias: str, options: Mapping[str, Any]
    ) -> list[checks.CheckMessage]:
        """The checks of the options a backend adds to the common ones; none by default."""
        return []

    @classmethod
    def check_url(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        """The checks of ``URL``; a backend whose ``URL`` takes another shape replaces them."""
        return check_url_option(alias, options, "URL")

    def describe(self) -> str:
        return f"{self.describe_as} {describe_url(self.url)}"

    def send(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        url: str | None = None,
    ) -> HttpResult:
        """POST ``body`` to ``url`` (by default ``URL``) within the destination's timeouts.

        A failure goes through :meth:`translate_error` before it is raised.
        """
        try:
            return post(
                self.url if url is None else url,
                body=body,
                headers=dict(headers),
                timeout=self.timeout,
                connect_timeout=self.connect_timeout,
            )
        except DeliveryError as exc:
            raise self.translate_error(exc) from None

    def translate_error(self, exc: DeliveryError) -> DeliveryError:
        """What a failed request means for this service: by default the package's rules
        (:func:`~wagtail_publish_hooks.http.responses.raise_for_status`) as they are. A backend
        reads the service's answer here (``exc.response_body``) and returns the error to
        record, built with :func:`rephrased` or :func:`gone`."""
        return exc


def rephrased(exc: DeliveryError, message: str) -> DeliveryError:
    """``exc`` with ``message`` as what is recorded (a service's own words about it)."""
    exc.message = message
    exc.args = (message,)
    return exc


def gone(exc: DeliveryError, message: str) -> DestinationGone:
    """The answer of ``exc`` as a :class:`DestinationGone`: the destination is disabled."""
    return DestinationGone(
        message,
        status_code=exc.status_code,
        response_headers=exc.response_headers,
        response_body=exc.response_body,
        request_headers=exc.request_headers,
    )
