"""Fresh Debian 12 roots for the installer's tests (test_install.py, test_booted.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
MIRROR = "http://deb.debian.org/debian"


def needs_root(*tools: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: mmdebstrap, chroot and namespaces")
    for tool in ("mmdebstrap", *tools):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed: scripts/system-deps.sh test")


def mmdebstrap(tarball: Path, include: tuple[str, ...] = ()) -> Path:
    """A minbase Debian 12 root (Essential packages and apt, and ``include``) as a tarball."""
    extra = [f"--include={','.join(include)}"] if include else []
    subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", *extra, "bookworm",
                    str(tarball), MIRROR], check=True, timeout=900)
    return tarball


def prepare(root: Path) -> None:
    """The checkout in /root/peluit (as `git ls-files` names it) and the test machine's egress
    CA: the machine reaches PyPI through an intercepting proxy whose CA the host trusts; the
    installer's ca-certificates package takes it in (and pip is told with PIP_CERT)."""
    local_cas = root / "usr" / "local" / "share" / "ca-certificates"
    local_cas.mkdir(parents=True, exist_ok=True)
    for cert in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy2(cert, local_cas / cert.name)
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True).stdout
    target = root / "root" / "peluit"
    target.mkdir(parents=True)
    for name in files.decode().split("\0"):
        if name and (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
