"""Text and JSON as the bytes that are sent and stored.

Python strings can hold lone surrogates (from data handed to ``emit()``, say), which UTF-8,
PostgreSQL's JSON and every receiver cannot: :func:`repair_surrogates` is the one place that
turns them into U+FFFD. What a destination answers is stored through :func:`storable`, which
also replaces the NUL character that PostgreSQL refuses in text and JSON.
"""

from __future__ import annotations

import json
from typing import Any


def repair_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD; unchanged if it has none."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16, a surrogate pair written as two code points becomes its character.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def storable(value: Any) -> Any:
    """``value`` as every supported database stores it: in each string (walking dicts, their
    keys included, and lists), a NUL character and each lone surrogate replaced by U+FFFD.

    A destination's answer (its body, its headers, an error that quotes it) can hold a NUL,
    which PostgreSQL refuses in a ``text`` column and in ``jsonb``: recorded as it came, it
    would fail the commit of every outcome recorded with it."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        return repair_surrogates(value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def encode_text(text: str) -> bytes:
    """``text`` as UTF-8, lone surrogates as U+FFFD rather than failing every attempt."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return repair_surrogates(text).encode("utf-8")


def encode_json(document: Any) -> bytes:
    """Compact UTF-8 JSON, as the chat and build backends send it."""
    return encode_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
