"""What the packages a workstation makes for the server share: a ZIP of stored (uncompressed,
unencrypted) entries whose ``manifest.json`` lists every other file with its size.

Two formats use it: the operator's intake package (:mod:`wbs.operator_intake`,
``docs/intake-package.md``) and the forwarding package (:mod:`wbs.forwarding`,
``docs/forwarding.md``). Each passes its own ``refuse``, so the refusal names its package; the
reasons name shapes, keys and files, never content (the server can read none).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterable
from typing import IO, Any

from wbs.casework import Refusal

MANIFEST = "manifest.json"

Refuse = Callable[[str], Refusal]


def open_zip(stream: IO[bytes], refuse: Refuse, what: str) -> zipfile.ZipFile:
    """The ZIP, refused unless every name is unique and every entry is stored as it is."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise refuse(f"not {what} (not a ZIP file)") from exc
    names = [info.filename for info in archive.infolist()]
    if len(names) != len(set(names)):
        raise refuse("a name appears twice in the package")
    for info in archive.infolist():
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise refuse(f"{info.filename[:80]!r} is compressed or encrypted by the ZIP")
    return archive


def read_manifest(
    archive: zipfile.ZipFile, refuse: Refuse, *, fmt: str, keys: frozenset[str], max_bytes: int
) -> dict[str, Any]:
    """``manifest.json`` as a JSON object with exactly ``keys``, of format ``fmt``."""
    return parse_manifest(manifest_bytes(archive, refuse, max_bytes), refuse, fmt=fmt, keys=keys)


def read_entry(
    archive: zipfile.ZipFile, name: str, refuse: Refuse, max_bytes: int
) -> bytes | None:
    """The exact bytes of the entry ``name`` (None if there is none), at most ``max_bytes``."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > max_bytes:
        raise refuse(f"{name} is too large")
    try:
        with archive.open(info) as raw:
            data = raw.read(max_bytes + 1)
    except (zipfile.BadZipFile, OSError) as exc:
        raise refuse(f"{name} is not readable") from exc
    if len(data) > max_bytes:
        raise refuse(f"{name} is too large")
    return data


def manifest_bytes(archive: zipfile.ZipFile, refuse: Refuse, max_bytes: int) -> bytes:
    """The exact bytes of ``manifest.json`` (what a signature over it covers)."""
    data = read_entry(archive, MANIFEST, refuse, max_bytes)
    if data is None:
        raise refuse("the package has no manifest.json")
    return data


def parse_manifest(
    data: bytes, refuse: Refuse, *, fmt: str, keys: frozenset[str]
) -> dict[str, Any]:
    """The manifest's bytes as a JSON object with exactly ``keys``, of format ``fmt``."""
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise refuse("manifest.json is not readable JSON") from exc
    if not isinstance(parsed, dict) or set(parsed) != keys:
        raise refuse("manifest.json does not have exactly the fields of " + fmt)
    if parsed["format"] != fmt:
        raise refuse(f"unknown package format (expected {fmt})")
    return parsed


def check_files(
    archive: zipfile.ZipFile,
    listed: Iterable[tuple[str, int]],
    refuse: Refuse,
    also: frozenset[str] = frozenset(),
) -> None:
    """The package holds exactly the manifest, the (path, size) it lists, at those sizes, and
    the names in ``also`` (the forwarding package's signature)."""
    sizes = dict(listed)
    names = set(sizes) | {MANIFEST} | also
    present = set(archive.namelist())
    if present != names:
        extra, missing = sorted(present - names), sorted(names - present)
        raise refuse(
            "the package's files are not the ones its manifest lists"
            + (f"; extra: {', '.join(extra)[:200]}" if extra else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    for path, size in sizes.items():
        if archive.getinfo(path).file_size != size:
            raise refuse(f"{path} is not the size the manifest says")
