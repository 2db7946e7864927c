"""The built distribution works on a new site: the wheel, installed in a fresh virtual environment
with the Django and Wagtail of this interpreter, on a ``wagtail start`` project set up as the
README's installation section says, passes ``manage.py check`` and ``migrate``.

The sdist is built from a copy of the distribution's inputs, and the wheel from the sdist (as
``python -m build`` does), so a file missing from either fails here. Installing needs the package
index; pip's cache makes a second run quick.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import venv
import zipfile
from base64 import b64encode
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = [pytest.mark.distribution, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "wagtail_publish_hooks"
#: What the sdist is built from (MANIFEST.in says what of it goes in).
INPUTS = [
    "pyproject.toml",
    "MANIFEST.in",
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "CONTRIBUTING.md",
]
#: Files the package needs at run time besides its modules.
DATA_FOLDERS = ["templates", "static", "migrations"]


def run(*args: str | Path, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def package_files(folder: str) -> set[str]:
    """The files of one of the package's folders, as paths inside the wheel."""
    base = ROOT / PACKAGE / folder
    return {
        path.relative_to(ROOT).as_posix()
        for path in base.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def readme_settings(secret: str) -> str:
    """The settings of the README's installation section, placeholders filled in as a user
    would: the site's own page model, a real signing secret."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## On your own site", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(re.findall(r"```python\n(.*?)```", section, re.S))
    replacements = {
        "INSTALLED_APPS = [": "INSTALLED_APPS += [",  # added to wagtail start's list
        '"blog.BlogPage"': '"home.HomePage"',
        '"whsec_..."': repr(secret),
    }
    for placeholder, value in replacements.items():
        assert placeholder in code, f"the README's installation section has no {placeholder}"
        code = code.replace(placeholder, value)
    return code


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """The sdist and the wheel, built from a copy of the distribution's inputs."""
    work = tmp_path_factory.mktemp("distribution")
    source = work / "source"
    source.mkdir()
    for name in INPUTS:
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / PACKAGE, source / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    run(sys.executable, "-m", "build", "--outdir", work / "dist", source, cwd=work, env=env)
    [sdist] = (work / "dist").glob("*.tar.gz")
    [wheel] = (work / "dist").glob("*.whl")
    return sdist, wheel


def test_the_wheel_holds_the_templates_static_files_and_migrations(built):
    _, wheel = built
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set().union(*(package_files(folder) for folder in DATA_FOLDERS))
    assert any(name.endswith(".html") for name in expected)
    assert f"{PACKAGE}/migrations/0001_initial.py" in expected
    assert expected <= names, sorted(expected - names)
    assert f"{PACKAGE}/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert not [name for name in names if name.startswith("tests/")]


def test_the_wheel_installs_on_a_new_wagtail_site(built, tmp_path):
    _, wheel = built
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE", "DATABASE_URL"}
        and not key.startswith("PYTEST")
    }
    pins = [f"{name}=={version(name)}" for name in ("Django", "wagtail", "django-tasks-db")]
    run(python, "-m", "pip", "install", "--quiet", wheel, *pins, cwd=tmp_path, env=env)

    site = tmp_path / "site"
    site.mkdir()
    run(environment / "bin" / "wagtail", "start", "mysite", site, cwd=tmp_path, env=env)
    secret = "whsec_" + b64encode(secrets.token_bytes(24)).decode()
    base = site / "mysite" / "settings" / "base.py"
    base.write_text(base.read_text() + "\n\n" + readme_settings(secret))

    def manage(*args: str) -> str:
        return run(python, "manage.py", *args, cwd=site, env=env)

    located = manage(
        "shell", "--verbosity", "0", "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"
    )
    assert Path(located.strip()).is_relative_to(environment), located  # the wheel, not the source
    assert "no issues" in manage("check")
    migrated = manage("migrate", "--noinput")
    assert f"Applying {PACKAGE}.0001_initial... OK" in migrated
    assert "No changes detected" in manage("makemigrations", PACKAGE, "--check", "--dry-run")
    templates = sorted(name.split("/templates/", 1)[1] for name in package_files("templates"))
    loaded = manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.template.loader import get_template\n"
        f"for name in {templates!r}:\n"
        "    get_template(name)\n"
        "    print(name)",
    )
    assert loaded.split() == templates
