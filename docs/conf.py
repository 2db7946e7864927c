"""Sphinx configuration for the wagtail-publish-hooks documentation.

The pages are MyST Markdown. Nothing here imports Django or the package, so the docs build
without Django settings: the version is read from the package's ``__init__.py`` as text.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_version() -> str:
    init = ROOT / "wagtail_publish_hooks" / "_version.py"
    try:
        match = re.search(
            r"^__version__\s*=\s*[\"']([^\"']+)[\"']", init.read_text("utf-8"), re.MULTILINE
        )
    except OSError:
        match = None
    if match:
        return match.group(1)
    try:
        return importlib.metadata.version("wagtail-publish-hooks")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


project = "wagtail-publish-hooks"
author = "wagtail-publish-hooks contributors"
release = read_version()
version = ".".join(release.split(".")[:2])

extensions = ["myst_parser"]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Python objects documented by hand (no autodoc: it would need Django settings) are referred to
# by name; the standard library and Django are not documented here, and intersphinx would need
# the network, so their names are plain text.
nitpicky = True
default_role = "literal"

html_theme = "furo"
html_title = f"wagtail-publish-hooks {release}"
html_short_title = "wagtail-publish-hooks"
html_static_path: list[str] = []
html_copy_source = False
html_show_sourcelink = False
pygments_style = "friendly"
pygments_dark_style = "monokai"
