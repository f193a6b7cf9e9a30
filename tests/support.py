"""Helpers the tests import (conftest.py is not importable under --import-mode=importlib)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from crypto.kdf import KdfParams

# argon2id at production cost takes ~100 ms and 64 MiB per call; tests need the logic, not the
# cost. Benchmarks and one KDF test use real parameters explicitly.
CHEAP_KDF = KdfParams(time_cost=1, memory_kib=8, parallelism=1)


def short_tempdir(prefix: str) -> Path:
    """A temp folder with a short path: gpg-agent's socket path must fit in 107 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
