"""The record kept when capture fails: a ``CaptureFailure`` row, and what the
``publish_hooks.capture_failed`` event says about it.

Written in a savepoint of its own, so that the failure is kept even though the event is not.
It holds no payload and no secret: the type of the error and a message with its quoted values
removed. :func:`wagtail_publish_hooks.outbox.record_capture_failure` writes it and records the
event.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, router, transaction
from django.utils import timezone

from .events import isoformat
from .limits import OutOfLimits
from .models import CaptureFailure

logger = logging.getLogger("wagtail_publish_hooks")


#: Quoted text in an error message: a value (a title, a URL, a key) rather than the words of
#: the message, left out of what is recorded.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def capture_error_message(exc: BaseException) -> str:
    """What to keep of a capture error: the first line of a database error with its quoted
    values removed (``canceling statement due to statement timeout``), the package's bounds
    error as it is; for anything else nothing beyond its type, whose text may hold a URL or a
    secret."""
    from django.db import DatabaseError

    if isinstance(exc, OutOfLimits):
        return str(exc)[:1000]
    if isinstance(exc, DatabaseError):
        lines = str(exc).strip().splitlines()
        return _QUOTED.sub("…", lines[0] if lines else "")[:1000]
    return ""


def cheap_repr(instance: models.Model | None) -> str:
    """The object's title, when taking it costs no query: a page's title, or ``str()`` of an
    object whose ``__str__`` does not query (tried, and dropped if it did or failed)."""
    if instance is None:
        return ""
    title = getattr(instance, "title", None)
    if isinstance(title, str):
        return title[:255]
    using = router.db_for_read(type(instance))
    connection = transaction.get_connection(using)
    queries: list[Any] = []

    def refuse(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(sql)
        raise RuntimeError("no query while describing an object")

    try:
        with connection.execute_wrapper(refuse):
            text = str(instance)
    except Exception:
        return ""
    return "" if queries else text[:255]


def write_capture_failure(
    event_type: str, instance: models.Model | None, exc: BaseException, destination: str
) -> CaptureFailure | None:
    using = router.db_for_write(CaptureFailure)
    failure = CaptureFailure(
        event_type=event_type[:100],
        destination=destination[:100],
        error_type=f"{type(exc).__module__}.{type(exc).__qualname__}"[:255],
        message=capture_error_message(exc),
        occurred_at=timezone.now(),
    )
    try:
        with transaction.atomic(using=using):
            if instance is not None:
                failure.content_type = ContentType.objects.db_manager(using).get_for_model(
                    instance, for_concrete_model=False
                )
                failure.object_id = "" if instance.pk is None else str(instance.pk)[:255]
                failure.object_repr = cheap_repr(instance)
            failure.save(force_insert=True, using=using)
    except Exception:
        logger.exception("Publish hooks could not keep the capture failure of %s", event_type)
        return None
    return failure


def capture_failed_data(failure: CaptureFailure) -> dict[str, Any]:
    """The ``data`` of a ``publish_hooks.capture_failed`` event. The object is named by type
    and id, never by its title: the event is about no object, so anyone who may see deliveries
    sees it."""
    obj = None
    if failure.content_type_id is not None:
        model = failure.content_type.model_class() if failure.content_type else None
        obj = {
            "type": model._meta.label if model is not None else None,
            "id": failure.object_id,
        }
    return {
        "capture_failure": {
            "id": failure.pk,
            "event_type": failure.event_type,
            "object": obj,
            "error": failure.error_type.rsplit(".", 1)[-1],
            "message": failure.message,
            "occurred_at": isoformat(failure.occurred_at),
        },
        # The destination whose own capture failed, if that is what failed.
        "destination": failure.destination or None,
    }
