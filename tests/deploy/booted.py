"""A Debian 12 server booted in qemu with deploy/install.sh run in it: what test_booted.py
(SQLite, the default) and test_booted_pg.py (PostgreSQL and the federation endpoint) share.

:func:`installed_server` builds the disk from a Debian root made by mmdebstrap (with Debian's
kernel, systemd and the QEMU guest agent), boots it (tests/deploy/vm.py), runs the installer
twice as an administrator would (the second run must change nothing), and reads what it printed
for the administrator: the onion addresses, the signing fingerprint, the first admin's one-time
credentials and client key.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shlex
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.deploy.debian import prepare
from tests.deploy.vm import Guest, build_disk
from tests.support import decrypt_item, short_tempdir

TENANT = "pemkot-palembang"
TENANT_NAME = "Pemerintah Kota Palembang"
ADMIN = "admin.plg"
INSTALL = [
    "/root/peluit/deploy/install.sh", "--tenant", TENANT, "--tenant-name", TENANT_NAME,
    "--tenant-kind", "pemerintah_kota", "--admin", ADMIN,
]  # no --tor-from and no --apparmor: the defaults (auto, enforce) are what is tested
# What a server needs to boot that minbase lacks, and the guest agent the test talks through.
BOOT_PACKAGES = ("systemd-sysv", "udev", "kmod", "linux-image-amd64", "qemu-guest-agent")
INSTANCE = "/var/lib/peluit/instance"
PELUIT = f"cd /var/lib/peluit && runuser -u peluit -- env PELUIT_INSTANCE={INSTANCE} " \
         "/opt/peluit/.venv/bin/peluit"  # the CLI as the service user, as the docs say
RUNNING = ["peluit-source.service", "peluit-journalist.service", "tor@default.service",
           "nftables.service", "apparmor.service", "systemd-journald.service", "dbus.socket",
           "peluit-onion.timer", "peluit-doctor.timer", "peluit-purge.timer",
           "peluit-store-publish.timer"]


@dataclass
class Server:
    guest: Guest
    first: str
    second: str
    source_onion: str
    investigator_onion: str
    fingerprint: str
    passphrase: str
    totp_secret: str
    client_auth: str  # the first admin's key for the investigator onion (.auth_private)


def configure(root: Path) -> None:
    """What a hosting provider's Debian image has: a disk in fstab, a name, DHCP on eth0."""
    (root / "etc" / "fstab").write_text("/dev/vda / ext4 rw,errors=remount-ro 0 1\n")
    (root / "etc" / "hostname").write_text("peluit\n")
    network = root / "etc" / "systemd" / "network"
    network.mkdir(parents=True, exist_ok=True)
    (network / "20-wired.network").write_text("[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n")
    # qemu's user-mode network answers DNS at 10.0.2.3.
    (root / "etc" / "resolv.conf").unlink(missing_ok=True)
    (root / "etc" / "resolv.conf").write_text("nameserver 10.0.2.3\n")
    subprocess.run(["systemctl", f"--root={root}", "-q", "enable", "systemd-networkd",
                    "systemd-networkd-wait-online"], check=True)


def _install(guest: Guest, command: list[str]) -> str:
    done = guest.run(f"cd /root && PIP_CERT=/etc/ssl/certs/ca-certificates.crt "
                     f"{shlex.join(command)}", timeout=3600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def printed(pattern: str, output: str) -> str:
    found = re.search(pattern, output, re.M)
    assert found, output[-3000:]
    return found.group(1)


@contextmanager
def installed_server(tarball: Path, work: Path, command: list[str]) -> Iterator[Server]:
    """A server booted from ``tarball`` (the mmdebstrap root), with ``command`` (the installer
    and its options) run in it twice; shut down and its disk removed afterwards."""
    root = work / "root"
    root.mkdir()
    subprocess.run(["tar", "-C", str(root), "-xf", str(tarball)], check=True)
    configure(root)
    prepare(root)
    kernel, initrd = build_disk(root, work / "disk.img")
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)
    guest = Guest(work / "disk.img", kernel, initrd, work)
    try:
        guest.wait_for_agent(900)
        guest.run("for i in $(seq 1 300); do getent hosts deb.debian.org && exit 0; sleep 1; "
                  "done; exit 1", timeout=400, check=True)
        first = _install(guest, command)
        second = _install(guest, command)
        yield Server(
            guest, first, second,
            source_onion=printed(rf"^\s+tenant:{TENANT}\t([a-z2-7]{{56}}\.onion)$", first),
            investigator_onion=printed(r"^\s+investigator\t([a-z2-7]{56}\.onion)$", first),
            fingerprint=printed(r"^== instance signing key fingerprint.*\n\s+([0-9A-F]{40})$",
                                first),
            passphrase=printed(r"^\s+passphrase: (\S+(?: \S+){3,})$", first),
            totp_secret=printed(r"^\s+TOTP secret: ([A-Z2-7]{16,})$", first),
            client_auth=printed(r"^\s+([a-z2-7]{56}:descriptor:x25519:[A-Z2-7]+)$", first),
        )
    finally:
        guest.close()
        (work / "disk.img").unlink(missing_ok=True)


def gpg(home: Path) -> list[str]:
    return ["gpg", "--homedir", str(home), "--batch", "--no-tty"]


@contextmanager
def key_pair(uid: str) -> Iterator[tuple[Path, str]]:
    """A new OpenPGP key pair (the real gpg) in a throwaway home, as a workstation or the
    operators make one: the home and the armored PUBLIC key. Made an hour ago, as a
    workstation's key is made before it is carried to the server: the emulated guest's clock
    may lag this machine's by seconds, and gpg there would take a key made "now" here for one
    made in the future (unusable)."""
    home = short_tempdir("boot-key-")
    try:
        subprocess.run([*gpg(home), "--pinentry-mode", "loopback", "--passphrase", "",
                        "--faked-system-time", str(int(time.time()) - 3600),
                        "--quick-gen-key", uid, "default", "default", "never"],
                       check=True, capture_output=True)
        yield home, subprocess.run([*gpg(home), "--armor", "--export"], check=True,
                                   capture_output=True, text=True).stdout
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(home, ignore_errors=True)


def active(guest: Guest, units: list[str]) -> dict[str, str]:
    states = guest.run(f"systemctl is-active {' '.join(units)}", timeout=60).stdout.split()
    return dict(zip(units, states, strict=True))


def confinement(guest: Guest) -> dict[str, set[str]]:
    """The AppArmor label of each running gunicorn and tor, by program."""
    script = ('for d in /proc/[0-9]*; do c=$(tr "\\0" " " <"$d/cmdline" 2>/dev/null); '
              'case "$c" in /opt/peluit/.venv/bin/python*/bin/gunicorn\\ *) '
              'echo "gunicorn|$(cat "$d/attr/current")";; '
              '/usr/bin/tor\\ *) echo "tor|$(cat "$d/attr/current")";; esac; done')
    found: dict[str, set[str]] = {}
    for line in guest.run(script, timeout=60, check=True).stdout.splitlines():
        program, label = line.split("|", 1)
        found.setdefault(program, set()).add(label)
    return found


def denials(guest: Guest) -> str:
    """What AppArmor refused since boot: the kernel's and the audit subsystem's lines (-k
    alone is the kernel's rate-limited copy; the whole journal would hold this very command
    line, logged by the guest agent)."""
    return guest.run("journalctl --no-pager -o cat _TRANSPORT=audit _TRANSPORT=kernel"
                     " | grep 'apparmor=\"DENIED\"'", timeout=120).stdout


def journey(server: Server, step: str, *args: str) -> dict[str, Any]:
    """One step of tests/deploy/first_day.py run in the guest with the installed virtualenv's
    python: what it saw."""
    guest = server.guest
    guest.write("/root/first_day.py", (Path(__file__).parent / "first_day.py").read_text())
    done = guest.run(shlex.join(["/opt/peluit/.venv/bin/python", "/root/first_day.py", step,
                                 *args]), timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen


def backup_by_its_unit(server: Server, home: Path, public: str,
                       tmp_path: Path) -> tuple[str, list[str], dict[str, Any]]:
    """The operators' PUBLIC backup key (``public``; its secret half in ``home``) imported as the
    docs say, then peluit-backup.service (what its timer starts) run by systemd under its
    sandbox and AppArmor. The one archive it wrote is brought over and opened with the
    operators' key; it must be signed by the instance's signing key (the operators have its
    fingerprint on paper, docs/backup.md). Its path in the guest, its members and manifest."""
    guest = server.guest
    guest.write("/root/backup.asc", public)
    guest.run(f"{PELUIT} backup-key import - </root/backup.asc", timeout=300, check=True)
    guest.run("systemctl start peluit-backup.service", timeout=1800, check=True)
    listing = guest.run("find /var/backups/peluit -type f -printf '%s %p\\n'",
                        timeout=60, check=True).stdout.split()
    assert len(listing) == 2, listing  # one archive: its size and its name
    archive = tmp_path / "backup.pgp"
    archive.write_bytes(base64.b64decode(guest.run(
        f"base64 -w0 {shlex.quote(listing[1])}", timeout=300, check=True).stdout))
    assert archive.stat().st_size == int(listing[0])
    signing_key = guest.run(f"runuser -u peluit -- gpg --homedir {INSTANCE}/signing --batch "
                            f"--armor --export {server.fingerprint}", timeout=120,
                            check=True).stdout
    subprocess.run([*gpg(home), "--import"], input=signing_key.encode(), check=True,
                   capture_output=True)
    decrypted = subprocess.run([*gpg(home), "--trust-model", "always", "--status-fd", "2",
                                "--decrypt", str(archive)], capture_output=True)
    assert decrypted.returncode == 0, decrypted.stderr.decode()[-2000:]
    assert f"[GNUPG:] VALIDSIG {server.fingerprint} " in decrypted.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(decrypted.stdout)) as tar:
        names = tar.getnames()
        manifest_file = tar.extractfile("manifest.json")
        assert manifest_file is not None
        manifest: dict[str, Any] = json.loads(manifest_file.read())
    return listing[1], names, manifest


def stored_items_decrypted(guest: Guest, home: Path, tmp_path: Path) -> list[str]:
    """Every item in the tenant's store, brought over as base64 and decrypted here with the
    workstation's key in ``home`` (the real gpg): their plaintexts."""
    listing = guest.run(f"find {INSTANCE}/store/{TENANT} -type f -size +0 "
                        "-exec sh -c 'echo \"$1|$(base64 -w0 \"$1\")\"' _ {} \\;",
                        timeout=120, check=True).stdout.splitlines()
    plain = []
    for line in listing:
        name, data = line.split("|", 1)
        item = tmp_path / Path(name).name
        item.write_bytes(base64.b64decode(data))
        plain.append(decrypt_item(home, item)[0].decode())
    return plain
