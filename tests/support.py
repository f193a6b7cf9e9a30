"""Helpers the tests import (conftest.py is not importable under --import-mode=importlib)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from crypto.kdf import KdfParams
from crypto.padding import unframe
from wbs.models import utcnow
from wbs.workdays import local_date

# argon2id at production cost takes ~100 ms and 64 MiB per call; tests need the logic, not the
# cost. Benchmarks and one KDF test use real parameters explicitly.
CHEAP_KDF = KdfParams(time_cost=1, memory_kib=8, parallelism=1)


def short_tempdir(prefix: str) -> Path:
    """A temp folder with a short path: gpg-agent's socket path must fit in 107 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


# Instants at which a date-dependent answer is easy to get wrong. Jakarta (WIB) is UTC+7, so its
# date moves on at 17:00 UTC; the rest are calendar edges (a Friday before a weekend, holidays
# and cuti bersama, the year's last minute and first minute). Tests that depend on today run
# under each, with the clock moved there by time-machine (ticking, so timeouts still work).
CLOCKS: dict[str, dt.datetime] = {
    "16:59-utc": dt.datetime(2026, 12, 2, 16, 59, tzinfo=dt.UTC),
    "17:00-utc": dt.datetime(2026, 12, 2, 17, 0, tzinfo=dt.UTC),
    "00:30-wib": dt.datetime(2026, 12, 2, 17, 30, tzinfo=dt.UTC),
    "friday-before-weekend": dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC),
    "christmas-eve-cuti-bersama": dt.datetime(2026, 12, 23, 17, 30, tzinfo=dt.UTC),
    "23:59-wib-31-dec": dt.datetime(2026, 12, 31, 16, 59, tzinfo=dt.UTC),
    "new-year-00:00-wib": dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.UTC),
}

clocks = pytest.mark.parametrize("clock", list(CLOCKS.values()), ids=list(CLOCKS))


def wib_today() -> dt.date:
    """Today's date in WIB: the date the product counts deadlines in (never date.today())."""
    return local_date(utcnow())


def decrypt_item(home: Path, path: Path) -> tuple[bytes, str | None]:
    """A stored item as the workstation reads it: decrypted with real gpg in ``home``, then
    its padding frame (crypto.padding) checked and stripped.

    Returns the data and the original file name, which travels in the frame: the literal
    packet carries none, so the name's length cannot change the ciphertext's size.
    """
    base = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
    framed = subprocess.run([*base, "--decrypt", str(path)], capture_output=True, check=True)
    packets = subprocess.run(
        [*base, "--list-packets", str(path)], capture_output=True, check=True
    ).stdout.decode("utf-8", "replace")
    assert re.search(r'^:literal data packet:\n\s+mode .*, name="",', packets, re.M), packets
    data, trailer = unframe(framed.stdout)
    return data, trailer.name


# Kernel file systems that hold no file a process wrote: a walk that enters one (a chroot's
# /proc left mounted under /tmp, say) reads every process's tables instead of files.
_PSEUDO_FILESYSTEMS = frozenset({
    "proc", "sysfs", "devpts", "cgroup", "cgroup2", "mqueue", "debugfs", "tracefs",
    "securityfs", "binfmt_misc", "fusectl", "configfs", "pstore", "bpf", "autofs", "hugetlbfs",
    "nsfs", "efivarfs",
})


def pseudo_mounts() -> frozenset[Path]:
    """Mount points of kernel pseudo file systems (from /proc/self/mountinfo), for scans of
    the disk to leave out."""
    found = set()
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return frozenset()
    for line in lines:
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        fstype = line.split(" - ", 1)[1].split()[0]
        if fstype in _PSEUDO_FILESYSTEMS:
            found.add(Path(fields[4].replace("\\040", " ")))
    return frozenset(found)


def midday_wib() -> dt.datetime:
    """Noon WIB of today's WIB date, as an aware UTC time: a test that compares what a page
    shows with what it computes itself travels there (time_machine, ticking), so the WIB date
    cannot change between the two, whatever the hour it runs at."""
    return dt.datetime.combine(wib_today(), dt.time(5, 0), dt.UTC)
