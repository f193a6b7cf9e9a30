"""The workstation's import of export bundles, on damaged and made-up archives.

A real bundle (wbs/bundle.py, from a demo case with files, a message and a reply) is damaged
in every way a USB stick, a truncated copy or an attacker can: bytes flipped, overwritten,
inserted, cut; entries dropped, renamed, duplicated, compressed, rewritten; or nothing like a
bundle at all. The import (the workstation CLI, as an investigator runs it) must then either
refuse the bundle with one clear line and change nothing in the workstation's folder, or (for
damage that touches nothing the bundle's integrity covers) import all of it, every item intact.
Never a traceback, never part of a bundle.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.keyring import kill_agent
from tests.conftest import DemoInstance, open_demo
from tests.support import CHEAP_KDF, short_tempdir
from tests.workstation.helpers import export, make_case, run, tree, workstation_home
from wbs.config import load_config


@dataclass
class Fixture:
    bundle: bytes
    template: Path  # a workstation folder with the keys and nothing imported
    items: int  # items in the bundle's case


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    root = tmp_path_factory.mktemp("bundle-props")
    gnupg = short_tempdir("bp-")
    env = {
        "PELUIT_GNUPG_HOME": str(gnupg),
        "PELUIT_KDF_TIME_COST": str(CHEAP_KDF.time_cost),
        "PELUIT_KDF_MEMORY_KIB": str(CHEAP_KDF.memory_kib),
    }
    config = load_config(env, instance_dir=root / "instance")
    try:
        with open_demo(config) as demo:
            yield _build(demo, root)
    finally:
        kill_agent(gnupg)
        shutil.rmtree(gnupg, ignore_errors=True)


def _build(demo: DemoInstance, root: Path) -> Fixture:
    loop = make_case(demo, big_size=20_000)
    path = export(demo, [loop.case_id], root / "bundle.zip")
    template = workstation_home(demo, root / "template")
    with zipfile.ZipFile(path) as zf:
        items = sum(1 for name in zf.namelist() if name.endswith(".gpg"))
    return Fixture(path.read_bytes(), template, items)


# --- damage ----------------------------------------------------------------------------------


def _rezip(bundle: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    """The bundle rewritten entry by entry; ``change(name, data)`` returns entries to write."""
    out = io.BytesIO()
    with (
        warnings.catch_warnings(),  # "Duplicate name": wanted here
        zipfile.ZipFile(io.BytesIO(bundle)) as src,
        zipfile.ZipFile(out, "w") as dst,
    ):
        warnings.simplefilter("ignore", UserWarning)
        for info in src.infolist():
            for name, data, method in change(info.filename, src.read(info)):
                dst.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return out.getvalue()


@st.composite
def damaged(draw: st.DrawFn, bundle: bytes) -> bytes:
    names = zipfile.ZipFile(io.BytesIO(bundle)).namelist()
    kind = draw(st.sampled_from([
        "flip", "overwrite", "insert", "truncate", "garbage", "drop", "rename", "duplicate",
        "compress", "rewrite", "manifest",
    ]))
    size = len(bundle)
    if kind == "flip":
        at = draw(st.integers(0, size - 1))
        return bundle[:at] + bytes([bundle[at] ^ draw(st.integers(1, 255))]) + bundle[at + 1 :]
    if kind == "overwrite":
        at = draw(st.integers(0, size - 1))
        junk = draw(st.binary(min_size=1, max_size=64))
        return bundle[:at] + junk + bundle[at + len(junk) :]
    if kind == "insert":
        at = draw(st.integers(0, size))
        return bundle[:at] + draw(st.binary(min_size=1, max_size=64)) + bundle[at:]
    if kind == "truncate":
        return bundle[: draw(st.integers(0, size - 1))]
    if kind == "garbage":
        return draw(st.one_of(st.binary(max_size=512), st.just(b"PK\x05\x06" + b"\0" * 18)))
    target = draw(st.sampled_from(names))
    stored = zipfile.ZIP_STORED
    if kind == "drop":
        return _rezip(bundle, lambda n, d: [] if n == target else [(n, d, stored)])
    if kind == "rename":
        new = draw(st.sampled_from(["../evil.gpg", "/abs.gpg", "items/x.gpg", target + "x",
                                    "a\\b.gpg", "items/\u202egpg.exe"]))
        return _rezip(bundle, lambda n, d: [(new if n == target else n, d, stored)])
    if kind == "duplicate":
        return _rezip(bundle, lambda n, d: [(n, d, stored)] * (2 if n == target else 1))
    if kind == "compress":
        return _rezip(bundle, lambda n, d: [(n, d, zipfile.ZIP_DEFLATED if n == target
                                             else stored)])
    if kind == "rewrite":
        data = draw(st.binary(max_size=256))
        return _rezip(bundle, lambda n, d: [(n, data if n == target else d, stored)])
    # A manifest that is not the signed one: changed JSON, or not JSON at all.
    junk = draw(st.one_of(
        st.binary(max_size=128),
        st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=10).map(lambda v: json.dumps(v).encode()),
    ))
    return _rezip(bundle, lambda n, d: [(n, junk if n == "manifest.json" else d, stored)])


# --- the property ----------------------------------------------------------------------------


@settings(max_examples=35)
@given(data=st.data())
def test_a_damaged_bundle_is_refused_whole_or_imported_whole(
    fixture: Fixture, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    work = tmp_path_factory.mktemp("import")
    home = work / "home"
    shutil.copytree(fixture.template, home, ignore=shutil.ignore_patterns("S.*"))
    os.chmod(home, 0o700)
    bundle = data.draw(damaged(fixture.bundle), label="bundle")
    path = work / "bundle.zip"
    path.write_bytes(bundle)
    before = tree(home)
    try:
        result = run(home, "import", str(path))
        # The CLI's only ways out: success, or one clear line (click's exit 1).
        assert isinstance(result.exception, SystemExit | None), result.output
        assert "Traceback" not in result.output
        leftovers = [p.name for p in home.iterdir() if p.name.startswith(".import")]
        assert leftovers == []
        if result.exit_code == 0:
            _imported_whole(home, fixture.items)
        else:
            assert result.exit_code == 1, result.output
            assert result.output.startswith("Error: bundle refused ("), result.output
            assert len(result.output.strip().splitlines()) == 1, result.output
            assert tree(home) == before
    finally:
        kill_agent(home / "gnupg")
        shutil.rmtree(work, ignore_errors=True)


def _imported_whole(home: Path, items: int) -> None:
    state = json.loads((home / "state.json").read_text())
    (case,) = state["cases"].values()
    folder = home / "cases" / case["tenant"] / case["registration_number"]
    assert len(case["items"]) == items
    for item in case["items"]:
        stored = (folder / "items" / f"{item['sha256']}.gpg").read_bytes()
        assert hashlib.sha256(stored).hexdigest() == item["sha256"]
