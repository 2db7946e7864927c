#!/usr/bin/env python
"""The sandbox's manage.py: run it from anywhere, e.g. ``python sandbox/manage.py migrate``."""

import os
import sys
from pathlib import Path

SANDBOX_DIR = Path(__file__).resolve().parent
REPO_ROOT = SANDBOX_DIR.parent


def setup_path() -> None:
    """Import the sandbox apps, and ``wagtail_publish_hooks`` from this checkout."""
    for path in (str(REPO_ROOT), str(SANDBOX_DIR)):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)


def main() -> None:
    setup_path()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
