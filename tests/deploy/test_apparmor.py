"""deploy/apparmor: Peluit's AppArmor profiles, parsed and compiled by the real
`apparmor_parser` (Debian package apparmor; CI installs it), here on the test machine, in both
modes deploy/install.sh can install them in. `-Q` compiles without loading anything into the
kernel (the test machine's kernel has no AppArmor), `-K` leaves the cache alone. What the
profiles allow at run time is exercised by tests/deploy/test_booted.py, which boots Debian's
kernel with them enforced; tests/deploy/test_install.py parses the installed copy again with
the Debian root's own parser.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
APPARMOR = REPO / "deploy" / "apparmor"
PROFILE = APPARMOR / "peluit"
FLAGS = "flags=(attach_disconnected)"


def _parser() -> str:
    # /usr/sbin is not on every user's PATH.
    found = shutil.which("apparmor_parser") or next(
        (p for p in ("/usr/sbin/apparmor_parser", "/sbin/apparmor_parser") if Path(p).exists()),
        None,
    )
    if found is None:
        pytest.fail("apparmor_parser is needed: apt-get install apparmor (scripts/system-deps.sh)")
    return found


def _parse(text: str, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``apparmor_parser`` on ``text``, with deploy/apparmor searched for abstractions/peluit
    (and the system's /etc/apparmor.d for tunables and the stock abstractions)."""
    path = tmp_path / "peluit"
    path.write_text(text)
    return subprocess.run(
        [_parser(), *flags, "-I", str(APPARMOR), str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )


def complain(text: str) -> str:
    """What install.sh installs with --apparmor complain (its sed, as a Python replace)."""
    return text.replace(FLAGS, "flags=(attach_disconnected, complain)")


@pytest.mark.parametrize("mode", ["enforce", "complain"])
def test_the_profiles_compile(mode: str, tmp_path: Path) -> None:
    text = PROFILE.read_text()
    if mode == "complain":
        text = complain(text)
    compiled = _parse(text, tmp_path, "-Q", "-K")
    assert compiled.returncode == 0, compiled.stderr
    names = _parse(text, tmp_path, "-N")
    assert names.stdout.split() == ["peluit-cli", "peluit-web"], names.stdout + names.stderr


def test_a_broken_rule_is_refused(tmp_path: Path) -> None:
    # The abstraction is where most rules are: break one there, in a copy.
    abstraction = (APPARMOR / "abstractions" / "peluit").read_text()
    rule = "/var/lib/peluit/** rwkl,"
    assert rule in abstraction
    (tmp_path / "abstractions").mkdir()
    broken = abstraction.replace(rule, "/var/lib/peluit/** rwql,")
    (tmp_path / "abstractions" / "peluit").write_text(broken)
    path = tmp_path / "peluit"
    path.write_text(PROFILE.read_text())
    refused = subprocess.run([_parser(), "-Q", "-K", "-I", str(tmp_path), str(path)],
                             capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode != 0 and "abstractions/peluit" in refused.stderr, refused.stderr


def test_install_sh_can_switch_the_mode() -> None:
    # install.sh adds "complain" to this exact flags string and refuses a profile without it
    # on both profiles.
    text = PROFILE.read_text()
    assert text.count(FLAGS) == 2
    assert complain(text).count("complain)") == 2
    install = (REPO / "deploy" / "install.sh").read_text()
    assert f"aa_flags='{FLAGS}'" in install


def _attachments() -> dict[str, str]:
    found = dict(
        (path, name)
        for name, path in re.findall(r"^profile (\S+) (/\S+) flags=", PROFILE.read_text(), re.M)
    )
    assert set(found.values()) == {"peluit-web", "peluit-cli"}, found
    return found


def test_every_unit_of_peluit_runs_under_a_profile() -> None:
    attachments = _attachments()
    install = (REPO / "deploy" / "install.sh").read_text()
    # The paths are install.sh's.
    assert "PREFIX=/opt/peluit\n" in install and "VENV=$PREFIX/.venv\n" in install
    assert "HOME_DIR=/var/lib/peluit\n" in install
    assert "BACKUPS=/var/backups/peluit\n" in install
    programs = set()
    for unit in sorted((REPO / "deploy" / "systemd").glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                program = line.removeprefix("ExecStart=").split()[0]
                if program.startswith("/opt/peluit/"):
                    programs.add(program)
                    assert program in attachments, f"{unit.name}: {program} has no profile"
    # gunicorn for the interfaces, peluit for the CLI timers: both profiles are in use.
    assert programs == set(attachments), programs


def test_the_writable_paths_are_the_instance_and_the_backups() -> None:
    """Every rule that grants w (or k, l) names the instance, the backups, /tmp, /dev/shm,
    removable media or a socket; the code under /opt/peluit never."""
    allowed = ("/var/lib/peluit/", "/var/backups/peluit/", "/tmp/", "/dev/shm/", "/media/", "/mnt/",
               "@{run}/user/", "@{run}/postgresql/", "@{run}/tor/control ",
               "@{run}/systemd/private ")
    texts = [PROFILE.read_text(), (APPARMOR / "abstractions" / "peluit").read_text()]
    rule = re.compile(r"^\s*(?:owner\s+)?(/\S+|@\{\w+\}\S*)\s+([rwklmix]+),\s*$")
    writers = []
    for text in texts:
        for line in text.splitlines():
            match = rule.match(line)
            if match and set(match.group(2)) & set("wkl"):
                writers.append(match.group(1))
                assert (match.group(1) + " ").startswith(allowed), line
    assert "/var/lib/peluit/**" in writers and "/var/backups/peluit/**" in writers, writers
    # And the code is denied writes outright.
    assert "deny /opt/peluit/** wl," in texts[1]
