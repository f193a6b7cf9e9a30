"""Bundles that must be refused whole, and decryption failures that must say why."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DemoInstance
from tests.workstation.helpers import export, make_case, run, tree, workstation_home


@pytest.fixture
def bundle(demo: DemoInstance, tmp_path: Path) -> Path:
    loop = make_case(demo, big_size=50_000)
    return export(demo, [loop.case_id], tmp_path / "bundle.zip")


def _flip_item_byte(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("-file.gpg"))
    data = bytearray(path.read_bytes())
    # Local header: 30 bytes, then the name and the extra field, then the stored data.
    name_len = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    offset = info.header_offset + 30 + name_len + extra_len + 100
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _add_file(path: Path) -> None:
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("items/extra.gpg", b"not listed")


def _remove_item(path: Path) -> None:
    temp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(temp, "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith("-message.gpg"):
                dst.writestr(info, src.read(info))
    temp.replace(path)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [(_flip_item_byte, "damaged"), (_add_file, "unexpected_file"), (_remove_item, "missing_file")],
)
def test_tampered_bundle_imports_nothing(
    demo: DemoInstance,
    bundle: Path,
    ws_home: Path,
    tamper: Callable[[Path], None],
    reason: str,
) -> None:
    home = workstation_home(demo, ws_home)
    tamper(bundle)
    result = run(home, "import", str(bundle))
    assert result.exit_code == 1
    assert "refused" in result.output
    assert reason in result.output or "item_mismatch" in result.output
    assert not (home / "state.json").exists()
    assert not (home / "cases").exists()
    assert [p.name for p in home.iterdir() if p.name.startswith(".import")] == []


def test_other_signer_after_pinning_is_refused(
    demo: DemoInstance, bundle: Path, ws_home: Path
) -> None:
    home = workstation_home(demo, ws_home)
    state_path = home / "state.json"
    # The workstation trusts another instance's key: this bundle's signer is not it.
    state_path.write_text(json.dumps({"version": 1, "signer": "A" * 40, "cases": {}}))
    before = tree(home)
    result = run(home, "import", str(bundle))
    assert result.exit_code == 1
    assert "untrusted_signer" in result.output
    assert "--trust-new-signer" in result.output
    assert tree(home) == before

    repinned = run(home, "import", "--trust-new-signer", str(bundle))
    assert repinned.exit_code == 0, repinned.output
    assert json.loads(state_path.read_text())["signer"] == demo.instance.signing.fingerprint


def test_bundle_changed_after_pinning_keeps_earlier_import(
    demo: DemoInstance, bundle: Path, ws_home: Path, tmp_path: Path
) -> None:
    home = workstation_home(demo, ws_home)
    assert run(home, "import", str(bundle)).exit_code == 0
    before = tree(home)
    copy = tmp_path / "copy.zip"
    shutil.copy(bundle, copy)
    _flip_item_byte(copy)
    assert run(home, "import", str(copy)).exit_code == 1
    assert tree(home) == before


def test_missing_secret_key_names_the_key(
    demo: DemoInstance, bundle: Path, ws_home: Path
) -> None:
    # A workstation with no key at all: it can import (verification needs no secret)...
    result = run(ws_home, "import", str(bundle))
    assert result.exit_code == 0, result.output
    reg = next(iter(json.loads((ws_home / "state.json").read_text())["cases"].values()))[
        "registration_number"
    ]
    # ...but not decrypt, and says which key the item needs.
    listing = subprocess.run(
        ["gpg", "--homedir", str(demo.workstation), "--batch", "--with-colons", "--list-keys"],
        capture_output=True, text=True, check=True,
    ).stdout
    subkey_ids = [line.split(":")[4] for line in listing.splitlines() if line.startswith("sub:")]
    failed = run(ws_home, "decrypt", reg)
    assert failed.exit_code == 1
    assert "no secret key" in failed.output
    assert any(key_id in failed.output for key_id in subkey_ids)
    decrypted = ws_home / "cases" / "pemprov-sumsel" / reg / "decrypted"
    assert list(decrypted.iterdir()) == []  # no temp file left behind
