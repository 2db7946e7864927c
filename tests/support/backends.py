"""Custom backends used by the tests, as a site would write them."""

from wagtail_publish_hooks.backends.base import BaseBackend


class ExplodingBackend(BaseBackend):
    """A buggy custom backend: its failures must be recorded, not break publishing."""

    def deliver(self, delivery):
        raise RuntimeError("the destination exploded")


class RecordingBackend(BaseBackend):
    """Keeps what it was given, in the worker's process."""

    received: list = []

    def deliver(self, delivery):
        RecordingBackend.received.append(delivery.event.payload)


class NotABackend:
    pass


class PurgeLikeBackend(BaseBackend):
    """A backend that wants alias events by default, as a cache purge does."""

    exclude_aliases_by_default = False
    received: list = []

    def deliver(self, delivery):
        PurgeLikeBackend.received.append(delivery.payload)


class CoalescingRecorder(BaseBackend):
    """A coalescing destination (like a build hook) that keeps what each send covered."""

    supports_coalescing = True
    option_keys = frozenset()
    sends: list = []

    def deliver(self, delivery):
        CoalescingRecorder.sends.append([event.event_id for event in delivery.covered_events()])
