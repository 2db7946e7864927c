"""The backend behind durable Python receivers (``@on``): it calls the registered function.

It is not configured in ``DESTINATIONS``: deliveries named ``python:<module>.<qualname>`` use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import DeliveryError
from ..receivers import ReceivedEvent, get_receiver
from .base import BaseBackend

if TYPE_CHECKING:
    from ..models import Delivery


class PythonBackend(BaseBackend):
    """Calls the receiver registered under the destination's name with a
    :class:`~wagtail_publish_hooks.receivers.ReceivedEvent`.

    What the receiver raises is recorded like a failed request: retried (unless it raised a
    non-retryable :class:`~wagtail_publish_hooks.exceptions.DeliveryError`), with the exception
    text as the attempt's error.
    """

    option_keys = frozenset()

    def describe(self) -> str:
        return f"Python receiver {self.alias.removeprefix('python:')}"

    def deliver(self, delivery: Delivery) -> None:
        receiver = get_receiver(self.alias)
        if receiver is None:
            # Retryable: in a rolling deploy the worker may not run the new code yet.
            raise DeliveryError(
                f"receiver {self.alias!r} is not registered in this worker process: the module "
                "that defines it must be imported at startup (models.py, or AppConfig.ready())",
                retryable=True,
            )
        receiver.function(ReceivedEvent.from_delivery(delivery))
