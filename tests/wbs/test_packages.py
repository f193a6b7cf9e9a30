"""The ZIP and manifest checks the intake and forwarding packages share (wbs.packages)."""

from __future__ import annotations

import io
import zipfile

import pytest

from wbs.casework import Refusal
from wbs.packages import MANIFEST, check_files, open_zip, read_manifest

KEYS = frozenset({"format", "items"})


def refuse(reason: str) -> Refusal:
    return Refusal("test_refused", reason, reason=reason)


def _zip(entries: dict[str, bytes], *, compress: int = zipfile.ZIP_STORED) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compress) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    out.seek(0)
    return out


def _manifest(data: bytes) -> zipfile.ZipFile:
    return open_zip(_zip({MANIFEST: data}), refuse, "a test package")


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        (b"not json", "not readable JSON"),
        (b'{"format": ' + b"9" * 5000 + b', "items": []}', "not readable JSON"),
        (b"[" * 100_000, "not readable JSON"),
        (b'{"format": "t/1"}', "exactly the fields of t/1"),
        (b'{"format": "t/2", "items": []}', "unknown package format"),
    ],
)
def test_a_bad_manifest_is_refused_with_a_reason_never_an_error(
    manifest: bytes, reason: str
) -> None:
    with pytest.raises(Refusal, match=reason):
        read_manifest(_manifest(manifest), refuse, fmt="t/1", keys=KEYS, max_bytes=1 << 20)


def test_a_good_manifest_is_read() -> None:
    data = read_manifest(_manifest(b'{"format": "t/1", "items": []}'), refuse, fmt="t/1",
                         keys=KEYS, max_bytes=1 << 20)
    assert data == {"format": "t/1", "items": []}


def test_compressed_entries_and_other_files_are_refused() -> None:
    with pytest.raises(Refusal, match="compressed or encrypted"):
        open_zip(_zip({MANIFEST: b"{}"}, compress=zipfile.ZIP_DEFLATED), refuse, "a package")
    with pytest.raises(Refusal, match="not a package"):
        open_zip(io.BytesIO(b"PK nothing"), refuse, "a package")
    archive = open_zip(_zip({MANIFEST: b"{}", "a.gpg": b"xx", "b.gpg": b"y"}), refuse, "a")
    check_files(archive, [("a.gpg", 2), ("b.gpg", 1)], refuse)
    with pytest.raises(Refusal, match=r"extra: b\.gpg"):
        check_files(archive, [("a.gpg", 2)], refuse)
    with pytest.raises(Refusal, match=r"missing: c\.gpg"):
        check_files(archive, [("a.gpg", 2), ("b.gpg", 1), ("c.gpg", 1)], refuse)
    with pytest.raises(Refusal, match=r"a\.gpg is not the size"):
        check_files(archive, [("a.gpg", 3), ("b.gpg", 1)], refuse)
