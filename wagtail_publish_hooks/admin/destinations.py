"""The destinations screens: settings-defined ones (read-only, with health), admin-managed ones."""

from __future__ import annotations

from typing import Any


def destinations_menu_item() -> Any:
    """The "Destinations" item of the "Publish hooks" menu, or ``None`` while there is none."""
    return None
