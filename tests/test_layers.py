"""The layers of ARCHITECTURE.md are enforced: a wrong-way import fails ``make lint``.

Each case copies the packages and ``pyproject.toml`` (where the contracts live) to a temporary
folder, adds one import against a layer, and runs ``lint-imports`` there: it must fail and name
the contract the import breaks. The real tree must pass.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("peluit", "source_iface", "journalist_iface", "iface_common", "wbs", "crypto",
            "workstation")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # From ``root``: lint-imports reads the contracts there and finds the packages there first.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the Python packages and the contracts, without data files."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copy(ROOT / "pyproject.toml", root)
    for name in PACKAGES:
        shutil.copytree(
            ROOT / name, root / name,
            ignore=shutil.ignore_patterns("__pycache__", "static", "templates", "translations",
                                          "wordlists"),
        )
    return root


def test_the_real_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract"),
    [
        ("wbs/models.py", "import flask", "wbs and crypto import no web framework"),
        ("crypto/kdf.py", "import werkzeug", "wbs and crypto import no web framework"),
        ("wbs/tenancy.py", "import journalist_iface",
         "Layers: peluit > interfaces > iface_common > wbs > crypto"),
        ("crypto/keyring.py", "import wbs.domain",
         "Layers: peluit > interfaces > iface_common > wbs > crypto"),
        ("iface_common/errors.py", "import source_iface.forms",
         "Layers: peluit > interfaces > iface_common > wbs > crypto"),
        ("source_iface/forms.py", "import journalist_iface.formatting",
         "No interface imports another"),
        ("workstation/cases.py", "import sqlalchemy",
         "workstation imports crypto only: never Flask, SQLAlchemy or wbs"),
        ("workstation/cases.py", "import wbs.domain",
         "workstation imports crypto only: never Flask, SQLAlchemy or wbs"),
        ("wbs/store.py", "import peluit.demo",
         "Nothing but peluit imports peluit (the composition package)"),
    ],
)
def test_a_wrong_way_import_breaks_its_contract(
    tree: Path, module: str, wrong_import: str, contract: str
) -> None:
    path = tree / module
    original = path.read_text()
    # Appended at the end: the import is what matters to the contracts, not where it sits.
    path.write_text(f"{original}\n{wrong_import}  # noqa\n")
    try:
        result = lint_imports(tree)
    finally:
        path.write_text(original)
    assert result.returncode != 0, result.stdout
    assert f"{contract} BROKEN" in result.stdout, result.stdout
