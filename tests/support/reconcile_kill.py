"""Publish or unpublish an object outside a transaction, and die just after Wagtail's commit.

``python tests/support/reconcile_kill.py publish|unpublish page|advert PK``, run with the test
settings (``DJANGO_SETTINGS_MODULE``, ``TEST_SQLITE_PATH``, ``PUBLISH_HOOKS_TEST_SETTINGS``).
A receiver connected *before* the package's own on Wagtail's signal SIGKILLs the process: the
change is committed, its event never recorded. Exits 3 if it was not killed.
"""

from __future__ import annotations

import os
import signal
import sys

UID = "wagtail_publish_hooks"


def main(action: str, kind: str, pk: int) -> int:
    import django

    django.setup()
    from django.db import connection
    from wagtail import signals as wagtail_signals

    from tests.testapp.models import Advert
    from wagtail_publish_hooks import signal_handlers

    name = {"page": "page_", "advert": ""}[kind] + {
        "publish": "published",
        "unpublish": "unpublished",
    }[action]
    wagtail_signal = getattr(wagtail_signals, name)

    def die(sender, instance, **kwargs):
        if instance.pk == pk:
            assert not connection.in_atomic_block  # committed: nothing can roll it back
            os.kill(os.getpid(), signal.SIGKILL)

    # Receivers run in the order they were connected: take ours off, connect the killer, and
    # connect ours again, after it.
    ours = f"{UID}.{name}"
    assert wagtail_signal.disconnect(dispatch_uid=ours)
    wagtail_signal.connect(die, weak=False, dispatch_uid="reconcile-kill")
    signal_handlers.connect()
    order = [key[0] for key, *_ in wagtail_signal.receivers]
    assert order.index("reconcile-kill") < order.index(ours), order

    if kind == "page":
        from wagtail.models import Page

        obj = Page.objects.get(pk=pk).specific
    else:
        obj = Advert.objects.get(pk=pk)
    if action == "publish":
        obj.save_revision().publish()
    else:
        obj.unpublish()
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
