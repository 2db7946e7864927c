"""The names watching records its deliveries under are its own: no destination may take them."""

from __future__ import annotations

import pytest
from django.core import checks

from wagtail_publish_hooks.backends.watch import WatchBackend
from wagtail_publish_hooks.checks.destinations import check_destination
from wagtail_publish_hooks.registry import get_backend, get_destinations
from wagtail_publish_hooks.watching import WatchersBackend

WEBHOOK = {
    "BACKEND": "wagtail_publish_hooks.backends.webhook.WebhookBackend",
    "OPTIONS": {"URL": "https://consumer.example/hooks"},
}


@pytest.mark.parametrize("alias", ["watchers", "watch:12", "watch:"])
def test_a_destination_may_not_take_a_name_of_watching(configure, alias):
    configure(DESTINATIONS={alias: WEBHOOK})
    messages = checks.run_checks(tags=["wagtail_publish_hooks"])
    [reserved] = [m for m in messages if m.id == "wagtail_publish_hooks.E063"]
    assert f"[{alias!r}]" in reserved.msg
    assert "reserved" in reserved.msg
    # Routing and the worker never use it: the names stay watching's.
    assert alias not in get_destinations()
    assert isinstance(get_backend("watchers"), WatchersBackend)
    assert isinstance(get_backend("watch:12"), WatchBackend)


def test_the_admin_form_refuses_them_too():
    messages = check_destination("watch:1", WEBHOOK, managed=True)
    assert "wagtail_publish_hooks.E063" in {m.id for m in messages}
    others = check_destination("watch", WEBHOOK)
    assert "wagtail_publish_hooks.E063" not in {m.id for m in others}


def test_watching_must_be_a_boolean(configure):
    configure(WATCHING="yes")
    messages = checks.run_checks(tags=["wagtail_publish_hooks"])
    assert [m.msg for m in messages if m.id == "wagtail_publish_hooks.E016"] == [
        "WAGTAIL_PUBLISH_HOOKS['WATCHING']: must be True or False."
    ]
