"""Safe local names for what the pelapor named, and text safe to print on a terminal.

A filename inside a report is chosen by whoever sent it. The server already cleans it at intake,
but the workstation trusts nothing it did not check itself: a bundle may come from a forged or
older server, and the name decides where bytes land on the investigator's disk.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

_MAX_NAME_BYTES = 200
# Unicode categories never kept in a name: controls, format characters (bidi overrides such as
# U+202E disguise "exe.pdf" as "fdp.exe"), surrogates, private use, unassigned, line and
# paragraph separators.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Characters Windows and many file managers refuse or treat specially.
_RESERVED_CHARS = re.compile(r'[<>:"|?*]')
_WINDOWS_DEVICES = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


def safe_filename(name: str | None, fallback: str) -> str:
    """A name that stays inside its folder and shows what it is.

    Basename only (no path part survives), Unicode NFC, no control or bidi characters, no
    leading dots (no hidden files, no "..") or spaces, reserved characters replaced, at most
    200 UTF-8 bytes with the extension kept. ``fallback`` (already safe) when nothing is left.
    """
    if not name:
        return fallback
    base = re.split(r"[/\\]", name)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(
        ch for ch in base if unicodedata.category(ch) not in _DROPPED_CATEGORIES
    )
    base = _RESERVED_CHARS.sub("_", base)
    base = base.strip().lstrip(".").strip().rstrip(". ")
    if not base:
        return fallback
    if _WINDOWS_DEVICES.match(base):
        base = f"_{base}"
    if len(base.encode("utf-8")) > _MAX_NAME_BYTES:
        stem, dot, ext = base.rpartition(".")
        suffix = f"{dot}{ext}" if stem and len(ext.encode("utf-8")) <= 16 else ""
        head = base[: len(base) - len(suffix)]
        room = _MAX_NAME_BYTES - len(suffix.encode("utf-8"))
        base = head.encode("utf-8")[:room].decode("utf-8", errors="ignore").rstrip(". ") + suffix
    return base


def _numbered(name: str, number: int) -> str:
    stem, dot, ext = name.rpartition(".")
    if stem and dot:
        return f"{stem} ({number}).{ext}"
    return f"{name} ({number})"


def place_without_overwrite(temp: Path, folder: Path, name: str) -> Path:
    """Give ``temp`` (in ``folder``) the name ``name``, or "name (2)", ... never replacing a file.

    A hard link fails when the target exists, atomically, so a file that appears between a
    check and a rename can never be clobbered. The temp name is removed afterwards.
    """
    for number in range(1, 10_000):
        candidate = folder / (name if number == 1 else _numbered(name, number))
        try:
            os.link(temp, candidate)
        except FileExistsError:
            continue
        temp.unlink()
        return candidate
    raise FileExistsError(f"too many files named like {name!r} in {folder}")


def terminal_safe(text: str) -> str:
    """Text from a report, safe to print: no escape sequences, no bidi tricks.

    A report could carry ANSI escapes that rewrite the investigator's terminal, or bidi
    controls that reorder what is shown; newlines and tabs are kept.
    """
    return "".join(
        ch if ch in "\n\t" or unicodedata.category(ch) not in _DROPPED_CATEGORIES else "\ufffd"
        for ch in text
    )
