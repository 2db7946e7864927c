"""The deadline watchdog: one thread for every request of the process, woken only when a new
deadline comes before the ones it waits for."""

from __future__ import annotations

import time

from wagtail_publish_hooks.http.deadlines import Watch, _watchdog


def wait_until(condition, seconds: float = 20) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_an_earlier_deadline_watched_after_a_later_one_ends_first():
    late = Watch(time.monotonic() + 600)
    early = Watch(time.monotonic() + 0.2)
    try:
        _watchdog.watch(late)
        _watchdog.watch(early)  # the thread sleeps towards 600 s: this one must wake it
        assert wait_until(lambda: early.expired)
        assert not late.expired
    finally:
        early.finish()
        late.finish()


def test_a_later_deadline_watched_without_waking_the_thread_still_ends():
    """The watchdog is not woken for a deadline after the one it waits for: it finds it when
    it wakes for that one."""
    first = Watch(time.monotonic() + 0.2)
    second = Watch(time.monotonic() + 0.4)
    try:
        _watchdog.watch(first)
        _watchdog.watch(second)
        assert wait_until(lambda: first.expired and second.expired)
    finally:
        first.finish()
        second.finish()


def test_a_finished_request_is_never_expired():
    done = Watch(time.monotonic() + 0.1)
    _watchdog.watch(done)
    done.finish()
    marker = Watch(time.monotonic() + 0.3)
    try:
        _watchdog.watch(marker)
        assert wait_until(lambda: marker.expired)
        assert not done.expired
    finally:
        marker.finish()
