"""deploy/install.sh on a real, fresh Debian 12 root file system.

What is real: the root is built by mmdebstrap from Debian's mirror (minbase: nothing but
Essential packages and apt), the checkout is copied in as `git ls-files` names it, and the
installer runs in it as root through chroot, twice: apt installs the real packages, pip
installs the runtime dependencies from PyPI, each file checked against its hash in the lock
(deploy/requirements*.txt), `peluit init` runs as the peluit user, and the
second run must change nothing; once with SQLite and once, in a second root, with PostgreSQL
(whose cluster the tests start by hand with pg_ctlcluster). The units are checked with the
root's own `systemd-analyze verify`, the firewall with the root's own `nft -c` (in a network
namespace of its own, so the host's rules are never touched), and the source interface's unit
command line (ExecStart, as its User, in its WorkingDirectory, with its Environment) is run in a
private network namespace and asked for the landing page on 127.0.0.1:8080.

What cannot be real here: systemd is not PID 1 in a chroot, so no unit is started by systemd
(their sandboxing is not applied to the command run above), tor is not started, the nftables
ruleset is not loaded into a kernel that carries traffic, and AppArmor profiles are not loaded
(the test machine's kernel has no AppArmor): Peluit's profiles are parsed and compiled by the
root's own `apparmor_parser -Q -K`, which loads nothing, so what is checked is that the kernel
would be given valid policy, not what that policy allows at run time. All of that is done for
real by tests/deploy/test_booted.py, which boots such a root (SQLite) in a virtual machine;
this test covers what that one does not: PostgreSQL, the federation roles, both AppArmor modes.
Daemons are kept from starting during package installation with a policy-rc.d, as every chroot
build does. The test machine reaches PyPI through an intercepting proxy whose CA the host
trusts; that CA is copied into the root (and named to pip with PIP_CERT). The SQLite root takes
tor from bookworm-backports; the PostgreSQL root from the Tor Project's archive, which is out of
the test machine's reach and signed by a key nobody else holds: a stand-in serves it as
deb.torproject.org over HTTPS (tests/deploy/torproject.py), signed by a key made for the run whose
fingerprint replaces the pinned one in that root's copy of install.sh (the only line changed).

Mounts (proc, sys, dev) live in a mount namespace of their own (`unshare --mount`), and every
process started in the root lives in a PID namespace of its own, which dies with it: nothing
leaks to the host, even when a step fails.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.debian import REPO, mmdebstrap, needs_root, prepare
from tests.deploy.torproject import HOST, KEYRING, TorArchive, new_key, reversion
from tests.support import short_tempdir

pytestmark = pytest.mark.slow

TENANT = "pemkot-palembang"
TENANT_NAME = "Pemerintah Kota Palembang"
ADMIN = "admin.plg"
TENANT_ARGS = [
    "--tenant", TENANT, "--tenant-name", TENANT_NAME, "--tenant-kind", "pemerintah_kota",
    "--admin", ADMIN,
]
INSTALL_ARGS = ["--tor-from", "backports", *TENANT_ARGS]
INSTANCE = "/var/lib/peluit/instance"
SOURCES = "/etc/apt/sources.list.d/peluit-tor.list"  # where tor comes from, if not Debian
PIN = "/etc/apt/preferences.d/peluit-tor"  # backports' tor before Debian's
ENABLED = {
    "multi-user.target.wants": ["peluit-source.service", "peluit-journalist.service",
                                "peluit-onion.service", "tor.service"],
    "timers.target.wants": ["peluit-onion.timer", "peluit-purge.timer", "peluit-doctor.timer",
                            "peluit-store-publish.timer"],
}


@pytest.fixture(scope="session")
def debian12_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minbase Debian 12 root, built once per test session."""
    needs_root("unshare", "chroot", "apt-ftparchive", "dpkg-deb")
    return mmdebstrap(tmp_path_factory.mktemp("debian12") / "bookworm-minbase.tar")


def in_root(root: Path, script: str, *, net: bool = False, timeout: float = 600
            ) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (sh) on the host side with proc, sys and dev mounted in ``root``, in
    private mount and PID namespaces (and a network namespace with only loopback if ``net``)."""
    r = shlex.quote(str(root))
    prelude = (f"mount -t proc proc {r}/proc && mount --rbind /sys {r}/sys && "
               f"mount --rbind /dev {r}/dev && ")
    if net:
        prelude += f"chroot {r} ip link set lo up && "
    flags = ["--mount", "--pid", "--fork", "--kill-child"] + (["--net"] if net else [])
    return subprocess.run(["unshare", *flags, "sh", "-c", prelude + script],
                          capture_output=True, text=True, timeout=timeout)


def chroot(root: Path, *command: str, net: bool = False) -> subprocess.CompletedProcess[str]:
    return in_root(root, f"chroot {shlex.quote(str(root))} {shlex.join(command)}", net=net)


def as_peluit(root: Path, *command: str) -> str:
    done = chroot(root, "sh", "-c", "cd /var/lib/peluit && exec runuser -u peluit -- env -i "
                  f"PATH=/usr/bin:/bin LANG=C.UTF-8 PELUIT_INSTANCE={INSTANCE} "
                  + shlex.join(command))
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Installed:
    root: Path
    first: str
    second: str
    asked: list[str] = field(default_factory=list)  # of the stand-in archive, by these runs


def _run_installer(root: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin PIP_CERT=/etc/ssl/certs/ca-certificates.crt"
    return in_root(root, f"chroot {shlex.quote(str(root))} {env} /root/peluit/deploy/install.sh "
                   + shlex.join(args), timeout=900)


def _install(root: Path, args: list[str]) -> str:
    done = _run_installer(root, args)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


@contextmanager
def _fresh_root(tarball: Path, tmp: Path, ready: Callable[[Path], None] = lambda root: None
                ) -> Iterator[Path]:
    """A fresh root from ``tarball`` with the checkout in /root/peluit (then ``ready(root)``).
    Deleted afterwards."""
    root = tmp / "root"
    root.mkdir()
    try:
        subprocess.run(["tar", "-C", str(root), "-xf", str(tarball)], check=True)
        # No daemon starts while packages are installed (invoke-rc.d asks policy-rc.d).
        policy = root / "usr" / "sbin" / "policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        prepare(root)
        ready(root)
        yield root
    finally:
        # The mounts were private to the namespaces; make sure before deleting anything.
        mounts = Path("/proc/self/mountinfo").read_text()
        assert f" {root}/" not in mounts, "a mount leaked out of the test's namespace"
        # rm stays on this file system (--one-file-system): a mount that leaked anyway is not
        # followed into the host's /dev or /sys.
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)


@contextmanager
def _installed_twice(tarball: Path, tmp: Path, args: list[str],
                     ready: Callable[[Path], None] = lambda root: None) -> Iterator[Installed]:
    """A fresh root (see :func:`_fresh_root`) with the installer run in it twice with
    ``args``."""
    with _fresh_root(tarball, tmp, ready) as root:
        first = _install(root, args)
        second = _install(root, args)
        yield Installed(root, first, second)


@pytest.fixture(scope="module")
def installed(debian12_tarball: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Installed]:
    with _installed_twice(debian12_tarball, tmp_path_factory.mktemp("sqlite"),
                          INSTALL_ARGS) as done:
        yield done


def test_a_second_run_changes_nothing(installed: Installed) -> None:
    first = re.findall(r"^changed: (\d+)$", installed.first, re.M)
    assert first and int(first[-1]) > 10, installed.first[-3000:]
    assert installed.second.rstrip().endswith("changed: 0"), installed.second
    assert "   + " not in installed.second, installed.second
    # Not booted: the units are enabled and the installer says they were not started.
    assert "units enabled, NOT started" in installed.first


def test_a_run_without_tor_from_keeps_the_archive_chosen(installed: Installed) -> None:
    """--tor-from auto (the default) after a run with --tor-from backports: backports stay."""
    again = _install(installed.root, TENANT_ARGS)
    assert f"auto: backports, as an earlier run chose ({SOURCES})" in again, again[-3000:]
    assert _changed(again) == 0 and "   + " not in again, again[-3000:]


def test_tor_from_debian_takes_backports_out_and_backports_puts_them_back(
        installed: Installed) -> None:
    """--tor-from debian after backports: apt's list, the pin and unattended-upgrades' origin
    of backports go (the tor installed from there stays); --tor-from backports brings all three
    back, so the root is as the other tests expect it."""
    root = installed.root
    origins = root / "etc" / "apt" / "apt.conf.d" / "51peluit-unattended-upgrades"
    assert "Debian Backports" in origins.read_text()
    tor = chroot(root, "dpkg-query", "-W", "-f", "${Version}", "tor").stdout
    assert tor, "tor is not installed"

    debian = _install(root, ["--tor-from", "debian", *TENANT_ARGS])
    assert f"   + removed {SOURCES}" in debian and f"   + removed {PIN}" in debian, debian[-3000:]
    assert _changed(debian) == 3, debian[-3000:]
    assert not (root / SOURCES.lstrip("/")).exists() and not (root / PIN.lstrip("/")).exists()
    assert "Debian Backports" not in origins.read_text()
    assert chroot(root, "dpkg-query", "-W", "-f", "${Version}", "tor").stdout == tor

    back = _install(root, INSTALL_ARGS)
    assert _changed(back) == 3, back[-3000:]
    assert (root / PIN.lstrip("/")).read_text().startswith("Package: tor tor-geoipdb\n")
    assert "Debian Backports" in origins.read_text()
    assert _changed(_install(root, TENANT_ARGS)) == 0


def test_user_directories_and_modes(installed: Installed) -> None:
    root = installed.root
    user = chroot(root, "getent", "passwd", "peluit").stdout.split(":")
    assert user[5] == "/var/lib/peluit" and user[6].strip() == "/usr/sbin/nologin", user
    groups = chroot(root, "id", "-nG", "peluit").stdout.split()
    assert set(groups) == {"peluit", "debian-tor"}, groups
    listing = chroot(root, "sh", "-c", f"stat -c '%n %U:%G %a' {INSTANCE} {INSTANCE}/secrets "
                     f"{INSTANCE}/secrets/* {INSTANCE}/onion/tenants/*.key "
                     f"{INSTANCE}/onion/investigator.key /var/backups/peluit").stdout
    modes = {}
    for line in listing.splitlines():
        path, owner, mode = line.rsplit(" ", 2)
        modes[path] = f"{owner} {mode}"
    assert modes.pop(INSTANCE) == "peluit:peluit 700"
    assert modes.pop(f"{INSTANCE}/secrets") == "peluit:peluit 700"
    assert modes.pop("/var/backups/peluit") == "peluit:peluit 700"
    assert len(modes) == 4 + 2, listing  # four secrets, two onion keys
    assert set(modes.values()) == {"peluit:peluit 600"}, listing
    # The code is root's: the service user cannot change what it runs.
    owner = chroot(root, "stat", "-c", "%U %a", "/opt/peluit/source_iface/wsgi.py").stdout
    assert owner.split()[0] == "root" and not int(owner.split()[1][1:], 8) & 0o22, owner


def test_the_virtualenv_holds_the_runtime_only(installed: Installed) -> None:
    python = "/opt/peluit/.venv/bin/python"
    probe = ("import importlib.util as u; "
             "print([m for m in ('pytest', 'ruff', 'mypy', 'hypothesis', 'playwright', "
             "'psycopg', 'flask', 'gunicorn', 'gnupg') if u.find_spec(m)])")
    found = chroot(installed.root, "sh", "-c", f"cd / && {python} -c {shlex.quote(probe)}")
    assert found.returncode == 0, found.stderr
    # No dev tool, and no PostgreSQL driver either: this install chose SQLite.
    assert found.stdout.strip() == "['flask', 'gunicorn', 'gnupg']", found.stdout
    assert _venv(installed.root) == _locked("requirements-build.txt", "requirements.txt")


def _locked(*locks: str) -> dict[str, Version]:
    """What the locks pin, the later lock's version winning (install.sh's order)."""
    pins: dict[str, Version] = {}
    for lock in locks:
        text = (REPO / "deploy" / lock).read_text()
        pins.update((canonicalize_name(name), Version(version)) for name, version
                    in re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\$", text, re.M))
    assert len(pins) > 10, locks
    return pins


def _venv(root: Path) -> dict[str, Version]:
    """The virtualenv's distributions, less Peluit itself and Debian's pip."""
    listed = chroot(root, "sh", "-c", "cd / && /opt/peluit/.venv/bin/python -m pip list "
                    "--disable-pip-version-check --format=json")
    assert listed.returncode == 0, listed.stderr
    found = {canonicalize_name(d["name"]): Version(d["version"])
             for d in json.loads(listed.stdout)}
    assert "peluit" in found and "pip" in found, found
    return {name: version for name, version in found.items() if name not in ("peluit", "pip")}


def test_units_are_enabled_and_verify(installed: Installed) -> None:
    root = installed.root
    for wants, names in ENABLED.items():
        for name in names:
            assert (root / "etc" / "systemd" / "system" / wants / name).is_symlink(), name
    units = sorted(p.name for p in (root / "etc" / "systemd" / "system").glob("peluit-*"))
    assert len(units) == len(list((REPO / "deploy" / "systemd").iterdir()))
    verified = chroot(root, "sh", "-c", "cd /etc/systemd/system && "
                      f"systemd-analyze verify --man=no {' '.join(units)}")
    # Any unknown key, bad value, missing executable or missing unit is printed.
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr


def test_tor_has_proof_of_work_defences(installed: Installed) -> None:
    version = chroot(installed.root, "dpkg-query", "-W", "-f", "${Version}", "tor").stdout
    newer = chroot(installed.root, "dpkg", "--compare-versions", version, "ge", "0.4.8")
    assert newer.returncode == 0, version
    assert f"tor {version}" in installed.first


def test_the_firewall_ruleset_is_valid(installed: Installed) -> None:
    root = installed.root
    checked = chroot(root, "nft", "-c", "-f", "/etc/nftables.conf", net=True)
    assert checked.returncode == 0, checked.stderr
    # The check can fail: a rule naming a user the root does not have is refused.
    broken = (root / "etc" / "nftables.conf").read_text().replace('"_apt"', '"no-such-user"')
    (root / "tmp" / "broken.nft").write_text(broken)
    refused = chroot(root, "nft", "-c", "-f", "/tmp/broken.nft", net=True)
    assert refused.returncode != 0


def test_printed_fingerprint_and_credentials(installed: Installed) -> None:
    printed = re.search(r"^== instance signing key fingerprint.*\n\s+([0-9A-F]{40})$",
                        installed.first, re.M)
    assert printed, installed.first[-3000:]
    again = re.search(r"^== instance signing key fingerprint.*\n\s+([0-9A-F]{40})$",
                      installed.second, re.M)
    assert again and again.group(1) == printed.group(1)
    code = ("from wbs.config import load_config; from wbs.instance import signer_for; "
            "s = signer_for(load_config()); s.__enter__(); print(s.fingerprint)")
    assert as_peluit(installed.root, "/opt/peluit/.venv/bin/python", "-c", code).strip() == (
        printed.group(1))
    # The first admin's one-time credentials: passphrase, TOTP secret, client key. Once.
    assert re.search(r"^\s+passphrase: \S+( \S+){3,}$", installed.first, re.M)
    assert re.search(r"^\s+TOTP secret: [A-Z2-7]{16,}$", installed.first, re.M)
    assert re.search(r"^\s+[a-z2-7]{56}:descriptor:x25519:[A-Z2-7]{52}$", installed.first, re.M)
    assert "passphrase:" not in installed.second and "exists already" in installed.second


def _unit(root: Path, name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (root / "etc" / "systemd" / "system" / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def _serve_landing_page(installed: Installed, before: str = "") -> tuple[str, str, str]:
    """The landing page, gunicorn's output and the onion asked for, from the source unit's
    command; ``before`` runs first (sh), in the same namespaces."""
    root = installed.root
    onion = re.search(rf"^\s+tenant:{TENANT}\t([a-z2-7]{{56}}\.onion)$", installed.first, re.M)
    assert onion, installed.first[-3000:]
    unit = _unit(root, "peluit-source.service")
    (command,) = unit["ExecStart"]
    (user,) = unit["User"]
    (workdir,) = unit["WorkingDirectory"]
    env = " ".join(shlex.quote(v) for v in unit["Environment"])
    # The unit's command as its user, in its folder, with its environment; curl asks as tor
    # would forward a reporter: to 127.0.0.1:8080 with the tenant's onion as Host.
    script = before + (
        f"cd {workdir} && runuser -u {user} -- env -i PATH=/usr/bin:/bin LANG=C.UTF-8 {env} "
        f"{command} >/tmp/gunicorn.log 2>&1 & "
        "for i in $(seq 1 240); do "
        f"curl -fsS -H 'Host: {onion.group(1)}' http://127.0.0.1:8080/ >/tmp/page.html "
        "2>/dev/null && break; sleep 0.5; done; cat /tmp/page.html; "
        "echo '--- gunicorn'; cat /tmp/gunicorn.log"
    )
    served = chroot(root, "sh", "-c", script, net=True)
    page, _, log = served.stdout.partition("--- gunicorn")
    assert "<html" in page and TENANT_NAME in page, served.stdout[-3000:] + served.stderr
    return page, log, onion.group(1)


def test_the_source_units_command_serves_the_landing_page(installed: Installed) -> None:
    page, log, onion = _serve_landing_page(installed)
    assert "/panduan" in page  # the way to make a report
    # No access log: the request is nowhere in what gunicorn wrote.
    assert "GET /" not in log and onion not in log, log


def test_apparmor_profiles_are_installed_and_parse(installed: Installed) -> None:
    root = installed.root
    profile = (root / "etc" / "apparmor.d" / "peluit").read_text()
    shipped = (REPO / "deploy" / "apparmor" / "peluit").read_text()
    # The default mode is enforce: the shipped profiles as they are.
    assert profile == shipped
    assert (root / "etc" / "apparmor.d" / "abstractions" / "peluit").read_text() == (
        REPO / "deploy" / "apparmor" / "abstractions" / "peluit").read_text()
    assert "AppArmor: peluit-web (gunicorn) and peluit-cli (peluit) in enforce mode" in (
        installed.first)
    # -Q parses and compiles without loading, -K leaves the cache alone, -N names the profiles.
    names = chroot(root, "apparmor_parser", "-N", "/etc/apparmor.d/peluit")
    assert names.returncode == 0 and names.stdout.split() == ["peluit-cli", "peluit-web"], (
        names.stdout + names.stderr)
    parsed = chroot(root, "apparmor_parser", "-Q", "-K", "/etc/apparmor.d/peluit")
    assert parsed.returncode == 0, parsed.stderr
    # The parse can fail: a rule with an unknown permission is refused.
    rule = "/opt/peluit/.venv/bin/gunicorn r,"
    broken = profile.replace(rule, rule.replace(" r,", " rq,"))
    assert broken != profile
    (root / "tmp" / "broken-peluit").write_text(broken)
    refused = chroot(root, "apparmor_parser", "-Q", "-K", "/tmp/broken-peluit")
    assert refused.returncode != 0 and "/tmp/broken-peluit" in refused.stderr, refused.stderr


def _changed(output: str) -> int:
    found = re.findall(r"^changed: (\d+)$", output, re.M)
    assert found, output[-3000:]
    return int(found[-1])


def _federation_state(root: Path) -> tuple[bool, bool, list[str]]:
    system = root / "etc" / "systemd" / "system"
    torrc = (root / "etc" / "tor" / "torrc").read_text().splitlines()
    return ((system / "multi-user.target.wants" / "peluit-federation.service").is_symlink(),
            (system / "timers.target.wants" / "peluit-federation-sync.timer").is_symlink(),
            [line for line in torrc if line.startswith("SocksPort")])


def test_federation_roles(installed: Installed) -> None:
    """--federation in the same root, after the runs without it: hub, regional with
    --apparmor complain (twice: the second changes nothing), and back to none and enforce.
    Last in this root's tests; it leaves the root as it found it."""
    root = installed.root
    assert _federation_state(root) == (False, False, ["SocksPort 0"])
    hub = _install(root, [*INSTALL_ARGS, "--federation", "hub"])
    assert _changed(hub) == 1 and "   + enabled peluit-federation.service" in hub, hub[-3000:]
    assert _federation_state(root) == (True, False, ["SocksPort 0"])

    regional_complain = [*INSTALL_ARGS, "--federation", "regional", "--apparmor", "complain"]
    regional = _install(root, regional_complain)
    # The timer enabled, the torrc rewritten, the profiles with "complain" and nothing else
    # changed; the hub's unit stays.
    assert _changed(regional) == 3, regional[-3000:]
    assert "   + enabled peluit-federation-sync.timer" in regional
    assert "   + /etc/apparmor.d/peluit" in regional
    complaining = (root / "etc" / "apparmor.d" / "peluit").read_text()
    assert complaining.count("flags=(attach_disconnected, complain)") == 2, complaining
    assert complaining.replace(", complain)", ")") == (
        REPO / "deploy" / "apparmor" / "peluit").read_text()
    assert _federation_state(root) == (
        True, True, ["SocksPort 127.0.0.1:9050 OnionTrafficOnly"])
    # tor itself reads the torrc so written (with Debian's defaults, as tor@default does).
    verified = chroot(root, "tor", "--verify-config", "--defaults-torrc",
                      "/usr/share/tor/tor-service-defaults-torrc", "-f", "/etc/tor/torrc")
    assert verified.returncode == 0 and "Configuration was valid" in verified.stdout, (
        verified.stdout + verified.stderr)
    assert "Unrecognized" not in verified.stdout, verified.stdout
    again = _install(root, regional_complain)
    assert _changed(again) == 0 and "   + " not in again, again[-3000:]

    # The options say what runs: without --federation, both are disabled, the torrc restored
    # (and the profiles enforced again).
    none = _install(root, INSTALL_ARGS)
    assert _changed(none) == 4, none[-3000:]
    assert (root / "etc" / "apparmor.d" / "peluit").read_text() == (
        REPO / "deploy" / "apparmor" / "peluit").read_text()
    assert "   + disabled peluit-federation.service" in none
    assert "   + disabled peluit-federation-sync.timer" in none
    assert _federation_state(root) == (False, False, ["SocksPort 0"])
    assert (root / "etc" / "tor" / "torrc").read_text() == (
        REPO / "deploy" / "torrc.template").read_text()


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tor_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TorArchive]:
    with TorArchive(tmp_path_factory.mktemp("tor-archive")) as archive:
        yield archive


@pytest.fixture(scope="module")
def installed_pg(debian12_tarball: Path, tmp_path_factory: pytest.TempPathFactory,
                 tor_archive: TorArchive) -> Iterator[Installed]:
    """PostgreSQL, and tor from the Tor Project's archive (its stand-in: see torproject.py)."""
    asked_before = len(tor_archive.asked)
    with _installed_twice(debian12_tarball, tmp_path_factory.mktemp("postgresql"),
                          ["--db", "postgresql", "--tor-from", "torproject", *TENANT_ARGS],
                          ready=tor_archive.stand_in) as done:
        done.asked = tor_archive.asked[asked_before:]
        yield done


def test_tor_from_the_tor_projects_archive(installed_pg: Installed,
                                           tor_archive: TorArchive) -> None:
    """The archive key fetched over HTTPS and trusted because its fingerprint is the pinned
    one; tor installed from that archive; its updates installed unattended from it."""
    root, fingerprint = installed_pg.root, tor_archive.fingerprint
    assert "== tor (from: torproject)" in installed_pg.first
    checked = f"   + {KEYRING} (fingerprint {fingerprint} checked)"
    assert checked in installed_pg.first and checked not in installed_pg.second
    # Fetched once: the second run found the key in the keyring.
    asked = installed_pg.asked
    assert asked.count(f"GET /torproject.org/{fingerprint}.asc 200") == 1, asked
    assert f"GET /torproject.org/pool/main/{tor_archive.tor.name} 200" in asked
    version = tor_archive.tor.name.split("_")[1]
    policy = chroot(root, "apt-cache", "policy", "tor").stdout
    assert f"Installed: {version}\n" in policy, policy
    assert re.search(rf"\*\*\* {re.escape(version)} 500\n\s+500 https://{HOST}/torproject.org "
                     r"bookworm/main amd64 Packages", policy), policy
    # The keyring is now the keyring package's (as the Tor Project's own instructions have it),
    # and holds the pinned key.
    assert chroot(root, "dpkg", "-S", KEYRING).stdout.strip() == (
        f"deb.torproject.org-keyring: {KEYRING}")
    assert tor_archive.primary_keys(root / KEYRING.lstrip("/")) == [fingerprint]

    # A newer tor in the archive is what unattended-upgrades installs, because of the origin
    # the installer names (without that file, it would not). Only tor is looked at.
    update = reversion(tor_archive.tor, version.replace("bookworm+1", "bookworm+2"))
    tor_archive.publish()
    only_tor = root / "etc" / "apt" / "apt.conf.d" / "99peluit-test-only-tor"
    ours = root / "etc" / "apt" / "apt.conf.d" / "51peluit-unattended-upgrades"
    saved = ours.read_text()
    try:
        assert chroot(root, "apt-get", "update", "-q").returncode == 0
        only_tor.write_text('Unattended-Upgrade::Package-Whitelist { "tor"; };\n'
                            'Unattended-Upgrade::Package-Whitelist-Strict "true";\n')
        dry = chroot(root, "unattended-upgrade", "--dry-run", "--debug")
        ours.unlink()
        without = chroot(root, "unattended-upgrade", "--dry-run", "--debug")
    finally:
        ours.write_text(saved)
        only_tor.unlink(missing_ok=True)
        update.unlink()
        tor_archive.publish()
        chroot(root, "apt-get", "update", "-q")
    upgraded = re.compile(r"^Packages that will be upgraded: tor$", re.M)
    assert upgraded.search(dry.stdout + dry.stderr), dry.stdout[-3000:] + dry.stderr[-3000:]
    assert "origin=TorProject,codename=bookworm" in dry.stdout + dry.stderr
    assert not upgraded.search(without.stdout + without.stderr), without.stdout[-3000:]

    # A later run without --tor-from (auto) keeps the archive this one chose: nothing changes.
    again = _install(root, ["--db", "postgresql", *TENANT_ARGS])
    assert f"auto: torproject, as an earlier run chose ({SOURCES})" in again
    assert _changed(again) == 0, again[-3000:]


def test_auto_upgrades_a_tor_without_proof_of_work_from_debian(
        debian12_tarball: Path, tmp_path_factory: pytest.TempPathFactory,
        tor_archive: TorArchive) -> None:
    """A server with a tor older than 0.4.8 already installed (Debian's tor, under an old
    version) and Debian offering a newer one: --tor-from auto chooses Debian and upgrades it,
    without the warning about a tor with no proof-of-work defences."""
    old = reversion(tor_archive.tor, "0.4.7.16-1", into=tmp_path_factory.mktemp("old-tor-deb"))
    try:
        with _fresh_root(debian12_tarball, tmp_path_factory.mktemp("old-tor")) as root:
            shutil.copy(old, root / "tmp" / old.name)
            before = chroot(root, "sh", "-c", "apt-get update -q >/dev/null && apt-get install "
                            f"-y -q --no-install-recommends /tmp/{old.name} >/dev/null")
            assert before.returncode == 0, before.stderr
            candidate = re.search(r"Candidate: (\S+)",
                                  chroot(root, "apt-cache", "policy", "tor").stdout)
            assert candidate, before.stdout
            newer = chroot(root, "dpkg", "--compare-versions", candidate.group(1), "ge", "0.4.8")
            assert newer.returncode == 0, candidate.group(1)
            done = _run_installer(root, TENANT_ARGS)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            assert f"auto: debian (its tor {candidate.group(1)} has proof-of-work" in done.stdout
            assert f"   + installed tor {candidate.group(1)}" in done.stdout, done.stdout[-3000:]
            assert "NO proof-of-work" not in done.stderr, done.stderr[-3000:]
            assert chroot(root, "dpkg-query", "-W", "-f", "${Version}", "tor").stdout == (
                candidate.group(1))
            assert _changed(_install(root, TENANT_ARGS)) == 0
    finally:
        old.unlink()


def test_auto_takes_the_tor_project_archive_and_only_its_pinned_key(
        debian12_tarball: Path, tmp_path_factory: pytest.TempPathFactory,
        tor_archive: TorArchive) -> None:
    """--tor-from auto (the default) on a server whose Debian offers no tor with proof-of-work
    defences, as bookworm did until 0.4.9 came to it (here an apt pin hides Debian's tor): the
    Tor Project's archive. Its key is trusted only if it is the pinned one: an impostor's key,
    or the pinned key with another beside it, stops the installer before anything of tor's is
    written. With the right key it installs; --tor-from debian then takes that archive out."""
    impostor_home = short_tempdir("impostor-")
    try:
        impostor_fpr = new_key(impostor_home, "Not the Tor Project")
        impostor = subprocess.run(["gpg", "--homedir", str(impostor_home), "--armor",
                                   "--export"], check=True, capture_output=True).stdout
        impostor_secret = subprocess.run(
            ["gpg", "--homedir", str(impostor_home), "--batch", "--pinentry-mode", "loopback",
             "--passphrase", "", "--armor", "--export-secret-keys"],
            check=True, capture_output=True).stdout
    finally:
        subprocess.run(["gpgconf", "--homedir", str(impostor_home), "--kill", "all"],
                       check=False)
        shutil.rmtree(impostor_home, ignore_errors=True)
    pinned = tor_archive.fingerprint
    with _fresh_root(debian12_tarball, tmp_path_factory.mktemp("auto"),
                     tor_archive.stand_in) as root:
        (root / "etc" / "apt" / "preferences.d" / "test-no-debian-tor").write_text(
            "Package: tor\nPin: origin deb.debian.org\nPin-Priority: -1\n")
        try:
            both = " ".join(sorted([pinned, impostor_fpr]))
            # Another key; the pinned one with another beside it; the pinned one with another's
            # secret key (which a keyring written from the fetched bytes would carry to apt).
            for served, got in ((impostor, impostor_fpr),
                                (tor_archive.public_key() + impostor, both),
                                (tor_archive.public_key() + impostor_secret, both)):
                tor_archive.serve_key(served)
                refused = _run_installer(root, TENANT_ARGS)
                assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
                assert "auto: torproject (Debian offers tor (none), older than 0.4.8)" in (
                    refused.stdout)
                assert (f"is not (only) {pinned}: got '{got}'; not trusted"
                        in refused.stderr), refused.stderr[-3000:]
                # Nothing of the archive's was trusted, and the installer went no further.
                assert not (root / KEYRING.lstrip("/")).exists()
                assert not (root / SOURCES.lstrip("/")).exists()
                assert chroot(root, "getent", "passwd", "peluit").returncode == 2
        finally:
            tor_archive.serve_key(tor_archive.public_key())
        done = _install(root, TENANT_ARGS)
        assert f"   + {KEYRING} (fingerprint {pinned} checked)" in done
        version = chroot(root, "dpkg-query", "-W", "-f", "${Version}", "tor").stdout
        assert version == tor_archive.tor.name.split("_")[1]

        # The options say where tor comes from: --tor-from debian takes the archive out of
        # apt's sources and unattended-upgrades' origins (the installed tor stays).
        debian = _install(root, ["--tor-from", "debian", *TENANT_ARGS])
        assert f"   + removed {SOURCES}" in debian and _changed(debian) == 2, debian[-3000:]
        assert not (root / SOURCES.lstrip("/")).exists()
        origins = (root / "etc" / "apt" / "apt.conf.d" / "51peluit-unattended-upgrades")
        assert "TorProject" not in origins.read_text()


# Inside the root there is no systemd to start the cluster: the tests start it themselves.
PG_START = "pg_ctlcluster $(ls /etc/postgresql) main start && "


def test_postgresql_role_database_and_peer_authentication(installed_pg: Installed) -> None:
    root = installed_pg.root
    # Exactly the postgres lock (the driver with it), and what built Peluit.
    assert _venv(root) == _locked("requirements-build.txt", "requirements-postgres.txt")
    assert installed_pg.second.rstrip().endswith("changed: 0"), installed_pg.second
    assert "PostgreSQL database peluit (owner peluit)" in installed_pg.first
    toml = chroot(root, "sh", "-c", f"stat -c '%U %a' {INSTANCE}/peluit.toml && "
                  f"cat {INSTANCE}/peluit.toml").stdout
    assert toml.splitlines() == [
        "peluit 600", 'database_url = "postgresql+psycopg:///peluit?host=/var/run/postgresql"']
    # The database is peluit's; the peluit user reaches it as itself (peer), without password,
    # and finds what the installer put there.
    query = ("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'peluit'")
    script = (PG_START + "runuser -u postgres -- psql -XtAq -d postgres -c "
              f"{shlex.quote(query)} && cd /var/lib/peluit && runuser -u peluit -- env -i "
              f"PATH=/usr/bin:/bin LANG=C.UTF-8 PELUIT_INSTANCE={INSTANCE} "
              "/opt/peluit/.venv/bin/peluit tenant list")
    done = chroot(root, "sh", "-c", script, net=True)
    assert done.returncode == 0, done.stderr
    owner, tenant = done.stdout.splitlines()[-2:]
    assert owner == "peluit" and tenant.startswith(f"{TENANT}\t{TENANT_NAME}"), done.stdout
    # No SQLite database was made beside it.
    assert not (root / "var" / "lib" / "peluit" / "instance" / "peluit.db").exists()
    _serve_landing_page(installed_pg, before=PG_START)
