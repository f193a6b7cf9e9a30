"""The built wheel holds everything the product reads from its packages at run time.

A page, a style sheet, a translation, a word list or a migration missing from the wheel breaks
an installed Peluit while every test of the source tree passes; so the wheel is built and
looked into. What must be inside is found in the source tree (every template in every
subfolder, every catalog's compiled .mo, ...), so a file added later is checked too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# Read by the packages at run time: templates and style sheets (Flask), compiled catalogs
# (Flask-Babel), word lists (codenames, passphrases), Alembic's scripts and migrations.
DATA = (
    "*/templates/**/*.html",
    "*/static/**/*.css",
    "crypto/wordlists/*.txt",
    "wbs/migrations/**/*.py",
    "wbs/migrations/*.mako",
)
# Not part of the source tree a wheel is built from: virtualenv, caches, an instance folder.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "instance",
    "demo-workstation", "test-artifacts", "tests", "bench", "docs",
)


def expected_files() -> set[str]:
    found = {path for pattern in DATA for path in ROOT.glob(pattern)}
    # Every translation catalog, compiled (make install compiles them from the .po files).
    found |= {po.with_suffix(".mo") for po in ROOT.glob("*/translations/*/LC_MESSAGES/*.po")}
    return {path.relative_to(ROOT).as_posix() for path in found if "__pycache__" not in path.parts}


@pytest.mark.slow
def test_the_wheel_holds_every_template_style_sheet_translation_word_list_and_migration(
    tmp_path: Path,
) -> None:
    # Built from a copy: a build/ folder left in the working tree by an earlier build could
    # put stale files into the wheel and hide a missing one.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir",
         str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("peluit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    expected = expected_files()
    # The checks see what they should: subfolders of templates, each interface's catalogs.
    assert "journalist_iface/templates/admin/investigators.html" in expected
    assert "journalist_iface/templates/account/totp.html" in expected
    assert "iface_common/templates/common/layout.html" in expected
    assert "iface_common/static/base.css" in expected
    assert "source_iface/translations/id/LC_MESSAGES/messages.mo" in expected
    assert "wbs/migrations/versions/0001_initial.py" in expected
    assert sorted(expected - names) == []
    # And the code of every package, with the console scripts.
    for package in ("peluit", "iface_common", "source_iface", "journalist_iface", "wbs",
                    "crypto", "workstation"):
        assert f"{package}/__init__.py" in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    ).decode()
    assert "peluit = peluit.cli:main" in entry_points
