"""WSGI entry point for the sandbox (``runserver`` is what the demo uses)."""

import os
import sys
from pathlib import Path

SANDBOX_DIR = Path(__file__).resolve().parent.parent
for path in (str(SANDBOX_DIR.parent), str(SANDBOX_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox_site.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
