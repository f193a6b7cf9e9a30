"""The Debian root the booted servers start from, made once per test run (mmdebstrap takes a
few minutes; test_booted.py and test_booted_pg.py boot a copy each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.booted import BOOT_PACKAGES
from tests.deploy.debian import mmdebstrap, needs_root
from tests.deploy.vm import QEMU


@pytest.fixture(scope="session")
def boot_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    needs_root(QEMU, "mke2fs", "systemctl")
    return mmdebstrap(tmp_path_factory.mktemp("boot-root") / "bookworm-boot.tar", BOOT_PACKAGES)
