"""deploy/install.sh on a Debian 12 server that really boots, and the server's first day.

What is real: a Debian 12 root built by mmdebstrap from Debian's mirror (minbase, with Debian's
kernel, systemd and the QEMU guest agent), booted in qemu: Debian's kernel with AppArmor on,
systemd as PID 1, journald, udev, networkd. The installer runs in it as root, as an
administrator would run it over a console, with its defaults (AppArmor enforced): apt installs
Debian's own tor (--tor-from auto: bookworm's has proof-of-work defences since 0.4.9 came to it;
the Tor Project's archive is tested in test_install.py), pip installs the hashed locks from
PyPI, the units are started by systemd under their sandboxing (seccomp, namespaces, IP and
address-family limits), the nftables ruleset is loaded into the guest's kernel, Peluit's and
Debian's AppArmor profiles are loaded and enforce. Then the first admin logs in with the printed
one-time credentials (passphrase and TOTP), reads the signing fingerprint on the keys page, adds
the workstation's public key (made here with the real gpg), a reporter files a report with a
file, the admin finds it in the inbox, every stored item decrypts on the "workstation" (this
test, with the real gpg); the backup unit writes an archive the operators' key opens; the server
reboots and comes back the same. Last, the server gets a Tor network, and both onions answer
through it.

What cannot be real here: the test machine reaches no Tor network (its only way out is the
package mirror and PyPI). Until the last test, tor in the guest never bootstraps (peluit
doctor's verdict is the honest one: tor not bootstrapped, onions not published), and the first
day reaches the services the way tor does, on 127.0.0.1 with the onion as Host. The last test
pulls the guest's cable out and starts a private Tor network inside it (the real tor, on
loopback), which the installed tor joins by lines appended to its torrc: the onions are then
published and fetched through Tor. The test machine's /dev/kvm does not run guests, so qemu
emulates the CPU (tests/deploy/vm.py): the installer takes about ten minutes instead of two.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from tests.deploy.booted import (
    ADMIN,
    INSTALL,
    INSTANCE,
    PELUIT,
    RUNNING,
    TENANT,
    TENANT_NAME,
    Server,
    active,
    backup_by_its_unit,
    confinement,
    denials,
    installed_server,
    journey,
    key_pair,
    stored_items_decrypted,
)
from tests.deploy.vm import Guest, GuestError

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def server(boot_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with installed_server(boot_tarball, tmp_path_factory.mktemp("booted"), INSTALL) as booted:
        yield booted


def test_installed_and_started_by_systemd(server: Server) -> None:
    first, second = server.first, server.second
    assert "NOT started" not in first, first[-3000:]
    for unit in ("peluit-source.service", "peluit-journalist.service", "peluit-onion.service"):
        assert f"   + started {unit}" in first, first[-3000:]
    assert "+ loaded AppArmor profiles peluit-web and peluit-cli (enforce)" in first
    # The default: Debian's own tor, no archive beside Debian's to trust.
    assert re.search(r"^   auto: debian \(its tor \S+ has proof-of-work defences\)$", first,
                     re.M), first[-3000:]
    sources = server.guest.run("ls /etc/apt/sources.list.d/", timeout=60).stdout.split()
    assert "peluit-tor.list" not in sources, sources
    assert second.rstrip().endswith("changed: 0") and "   + " not in second, second[-3000:]
    assert active(server.guest, RUNNING) == dict.fromkeys(RUNNING, "active")
    # Loaded into the running kernel: the table the ruleset defines, with its drop policy.
    table = server.guest.run("nft list table inet peluit", timeout=60, check=True).stdout
    tor_uid = server.guest.run("id -u debian-tor", timeout=60, check=True).stdout.strip()
    assert "hook output priority filter; policy drop;" in table, table
    assert f"meta skuid {tor_uid} accept" in table, table


def test_services_run_confined_by_apparmor(server: Server) -> None:
    profiles = server.guest.run("cat /sys/kernel/security/apparmor/profiles", timeout=60,
                                check=True).stdout.splitlines()
    assert {"peluit-web (enforce)", "peluit-cli (enforce)", "system_tor (enforce)"} <= set(
        profiles), profiles
    # The master and the workers of both interfaces, and tor, each under its profile.
    assert confinement(server.guest) == {"gunicorn": {"peluit-web (enforce)"},
                                          "tor": {"system_tor (enforce)"}}


def test_the_firewall_lets_only_tor_and_apt_out(server: Server) -> None:
    guest = server.guest
    # apt may look names up and fetch (the mirror's address, from apt's own user) ...
    address = guest.run("runuser -u _apt -- getent ahostsv4 deb.debian.org", timeout=120,
                        check=True).stdout.split()[0]
    url = f"http://{address}/debian/dists/bookworm/Release"
    apt = guest.run(f"runuser -u _apt -- curl -sS -o /dev/null -w '%{{http_code}}' "
                    f"-H 'Host: deb.debian.org' --max-time 60 {url}", timeout=120)
    assert apt.stdout == "200", apt.stdout + apt.stderr
    # ... the service user may not, to the same address: its packet never leaves (refused
    # at once by the output hook, or dropped: curl's 7 or 28).
    peluit = guest.run(f"runuser -u peluit -- curl -sS -o /dev/null -H 'Host: deb.debian.org' "
                       f"--max-time 20 {url}", timeout=120)
    assert peluit.returncode in (7, 28), (peluit.returncode, peluit.stderr)
    # Nor a name: DNS is apt's, tor's and the clock's only.
    name = guest.run("runuser -u peluit -- getent ahostsv4 deb.debian.org", timeout=120)
    assert name.returncode != 0 and name.stdout == "", name.stdout


def test_the_first_day(server: Server, tmp_path: Path) -> None:
    """First login, the fingerprint, the workstation's key, a report, the inbox; every stored
    item decrypts with the workstation's key; nothing of the report lies in clear on disk."""
    guest = server.guest
    marker = f"peluit{secrets.token_hex(8)}"
    with key_pair("Inspektorat Kota Palembang <tim1@example.invalid>") as (home, public):
        guest.write("/root/workstation.asc", public)
        seen = journey(server, "day", server.source_onion, ADMIN, server.passphrase,
                       server.totp_secret, "/root/workstation.asc", marker)
        assert seen["login"] == [200, 200, "/", True], seen
        assert seen["signing_fingerprint"] == server.fingerprint, seen
        assert seen["key_added"] == [200, True], seen
        landing, registered, sent, receipt = seen["report"]
        assert [landing, registered, sent] == [200, 200, 200], seen
        assert re.fullmatch(r"[A-Z0-9]+-[A-Z0-9-]+", receipt), receipt
        assert seen["inbox_has_report"] is True, seen

        # The stored items, brought over, decrypt with the workstation's key.
        plain = stored_items_decrypted(guest, home, tmp_path)
        assert any(f"pelicin untuk menerbitkan izin usaha ({marker})" in t for t in plain), plain
        assert any(f"Bukti transfer {marker}-file" in text for text in plain), plain
        # The server could not read them back: it holds no key that decrypts them.
        secret = guest.run(f"runuser -u peluit -- gpg --homedir {INSTANCE}/gnupg --batch "
                           "--with-colons --list-secret-keys", timeout=60, check=True).stdout
        assert not re.search(r"^sec:", secret, re.M), secret
        # Nothing of the report or the file in clear anywhere on the server's disk, its
        # temporary folders included (each unit's private /tmp lives under /tmp): the
        # marker is in no file at all.
        clear = guest.run(f"grep -rlsF {marker} /var /tmp /opt /etc /root /home /srv",
                          timeout=900)
        assert clear.returncode == 1 and clear.stdout == "", clear.stdout


def test_the_backup_unit_writes_an_archive_the_operators_open(server: Server,
                                                             tmp_path: Path) -> None:
    """The operators' PUBLIC backup key imported as the docs say, peluit-backup.service (what
    its timer starts) run by systemd under its sandbox and AppArmor: the archive opens with
    the operators' key, and holds the database, the store and the signing fingerprint."""
    with key_pair("Operator cadangan <ops@example.invalid>") as (home, public):
        _, names, manifest = backup_by_its_unit(server, home, public, tmp_path)
    assert "database/peluit.sqlite3" in names, names
    assert any(name.startswith(f"store/{TENANT}/") for name in names), names
    assert server.fingerprint in json.dumps(manifest), manifest


def test_apparmor_denied_nothing(server: Server) -> None:
    """After the first day and a backup (the tests above): the enforced profiles refused
    nothing that the installer, the services, tor, gpg, the CLI and the units asked for."""
    denied = denials(server.guest)
    assert denied == "", denied[-4000:]


def test_doctor_runs_on_its_timer_and_says_why(server: Server) -> None:
    guest = server.guest
    guest.run("systemctl start peluit-doctor.service", timeout=900)
    verdict = guest.run("journalctl -u peluit-doctor.service --no-pager -o cat "
                        "| grep '^peluit doctor: ' | tail -n 1", timeout=60).stdout.strip()
    # No Tor network reaches this machine: tor never bootstraps, so the onions are not
    # published, and the doctor says so (exit code 2: a failure, the unit failed).
    assert re.fullmatch(r"peluit doctor: FAIL \(\d+ fail, \d+ warn, \d+ ok, \d+ unknown\)",
                        verdict), verdict
    assert active(guest, ["peluit-doctor.service"]) == {"peluit-doctor.service": "failed"}
    report = guest.run(f"{PELUIT} doctor", timeout=900)
    assert report.returncode == 2, report.stdout + report.stderr
    bootstrapped = re.search(r"^fail\s+tor: bootstrapped (\d+)%, tor (\S+)$", report.stdout,
                             re.M)
    assert bootstrapped and int(bootstrapped.group(1)) < 100, report.stdout
    # The version is the running tor's own: the one installed (Debian's adds a revision).
    installed = guest.run("dpkg-query -W -f '${Version}' tor", timeout=60, check=True).stdout
    assert installed.startswith(f"{bootstrapped.group(2)}-"), (installed, report.stdout)
    assert re.search(r"^fail\s+onions: ", report.stdout, re.M), report.stdout


def test_a_reboot_brings_everything_back(server: Server) -> None:
    guest = server.guest
    before = guest.run(f"{PELUIT} onion addresses", timeout=300, check=True).stdout
    guest.reboot(900)
    # systemd started everything again at boot (nftables.service loads the ruleset,
    # apparmor.service the profiles), and the services answer.
    guest.run("for i in $(seq 1 300); do curl -fsS -o /dev/null --max-time 30 "
              "http://127.0.0.1:8081/masuk && exit 0; sleep 2; done; exit 1",
              timeout=900, check=True)
    assert active(guest, RUNNING) == dict.fromkeys(RUNNING, "active")
    assert confinement(guest) == {"gunicorn": {"peluit-web (enforce)"},
                                  "tor": {"system_tor (enforce)"}}
    after = guest.run(f"{PELUIT} onion addresses", timeout=300, check=True).stdout
    assert after == before and server.source_onion in after, (before, after)
    # The journal is kept in memory only (journald.conf.d/peluit.conf), and what Debian had
    # written to disk before the install was removed: nothing of the first boot survived.
    boots = guest.run("journalctl --list-boots --no-pager", timeout=60, check=True).stdout
    assert re.search(r"^\s*0\s", boots, re.M) and not re.search(r"^\s*-1\s", boots, re.M), boots


TESTNET = "/root/testnet"
# The client's control port, told a client key the way Tor Browser's dialog does it.
_ADD_CLIENT_KEY = """
import base64, socket, sys
port, cookie, address, key = sys.argv[1:]
key += "=" * (-len(key) % 8)  # the .auth_private form is unpadded base32
with socket.create_connection(("127.0.0.1", int(port))) as sock:
    stream = sock.makefile("rwb")
    for line in (f"AUTHENTICATE {open(cookie, 'rb').read().hex()}",
                 f"ONION_CLIENT_AUTH_ADD {address} x25519:"
                 + base64.b64encode(base64.b32decode(key)).decode()):
        stream.write(line.encode() + b"\\r\\n"); stream.flush()
        answer = stream.readline().decode().strip()
        if not answer.startswith("25"):  # 251 and 252 say what else it did
            sys.exit(f"{line.split()[0]}: {answer}")
"""


def _through_tor(guest: Guest, socks_port: int, url: str, wanted: str,
                 timeout: float = 900) -> tuple[str, str]:
    """Fetch ``url`` through the test network's client until its page holds ``wanted`` (an
    onion is reachable some seconds after its descriptor is uploaded): the HTTP status and the
    page, or the last failure when time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        done = guest.run(f"curl -sS --max-time 120 --socks5-hostname 127.0.0.1:{socks_port} "
                         f"-o /root/page -w '%{{http_code}}' {shlex.quote(url)} "
                         "&& echo && cat /root/page", timeout=300)
        status, _, page = done.stdout.partition("\n")
        if (done.returncode == 0 and wanted in page) or time.monotonic() > deadline:
            return status or f"curl {done.returncode}: {done.stderr.strip()}", page
        time.sleep(5)


def test_both_onions_answer_on_a_tor_network(server: Server) -> None:
    """Where the administrator's day ends: both onions answer through Tor, the investigator
    onion only with the admin's printed client key, and the doctor's verdict is OK.

    This machine reaches no Tor network, so the server is given one of its own: its cable is
    pulled out (nothing can leave the guest from then on), a private Tor network (three
    directory authorities, three relays and a client, tests/deploy/guest_tornet.py) starts in
    it on 127.0.0.1, and the installed tor is told that network's authorities: lines appended to
    /etc/tor/torrc, the installation's only change, then ``systemctl restart tor@default``.
    systemd restarts peluit-onion.service with tor (PartOf=), and it publishes the onions with
    the keys the installer made. The network's client plays the reporter's and the admin's
    Tor Browser. Last in this module: the server's tor stays on that network."""
    guest = server.guest
    guest.link(False)
    try:
        guest.run(f"systemd-run --unit=peluit-testnet --working-directory=/root/peluit "
                  f"/usr/bin/python3 -m tests.deploy.guest_tornet {TESTNET}", timeout=120,
                  check=True)
        network = json.loads(guest.run(
            f"for i in $(seq 1 600); do cat {TESTNET}/network.json 2>/dev/null && exit 0; "
            "systemctl is-active -q peluit-testnet || break; sleep 1; done; "
            "journalctl -u peluit-testnet --no-pager | tail -n 40; exit 1",
            timeout=900, check=True).stdout)
        guest.write("/root/testnet.torrc", "\n".join(network["torrc"]) + "\n")
        guest.run("cat /root/testnet.torrc >> /etc/tor/torrc && "
                  "systemctl restart tor@default.service", timeout=600, check=True)
        socks = network["socks_port"]

        # The reporter's way in: the tenant's onion serves the source interface.
        status, page = _through_tor(guest, socks, f"http://{server.source_onion}/",
                                    'href="/panduan"')
        assert status == "200" and TENANT_NAME in page, (status, page[-2000:])

        # The investigators' onion: nothing without a client key (tor's extended SOCKS error
        # F4, "missing client authorization", once the descriptor is on the directories) ...
        investigator = f"http://{server.investigator_onion}/masuk"
        refused = guest.run(
            "for i in $(seq 1 60); do "
            f"out=$(curl -sS --max-time 120 --socks5-hostname 127.0.0.1:{socks} -o /dev/null "
            f"{shlex.quote(investigator)} 2>&1); rc=$?; "
            'case "$rc $out" in "0 "*|*"(244)"*) break;; esac; sleep 5; done; echo "$rc $out"',
            timeout=900).stdout.strip()
        assert refused.startswith("97 ") and refused.endswith("(244)"), refused
        # ... and the login page with the key the installer printed for the first admin.
        address, _, _, key = server.client_auth.split(":")
        guest.write("/root/add_client_key.py", _ADD_CLIENT_KEY)
        guest.run(shlex.join(["/usr/bin/python3", "/root/add_client_key.py",
                              str(network["control_port"]), network["control_cookie"],
                              address, key]), timeout=60, check=True)
        assert f"{address}.onion" == server.investigator_onion
        status, page = _through_tor(guest, socks, investigator, 'name="totp"')
        assert status == "200", (status, page[-2000:])

        # The doctor sees what the client saw: tor bootstrapped, every onion's descriptor on
        # the directories; its unit succeeds and logs an OK verdict.
        report = guest.run(f"{PELUIT} doctor", timeout=900)
        assert re.search(r"^ok\s+tor: bootstrapped 100%", report.stdout, re.M), report.stdout
        assert re.search(r"^ok\s+onions: ", report.stdout, re.M), report.stdout
        # Asked over the system bus, as the peluit user (install.sh installs dbus for it).
        assert re.search(r"^ok\s+services: ", report.stdout, re.M), report.stdout
        assert report.returncode == 0, report.stdout + report.stderr
        # (A failing verdict fails the unit: the verdict below says which check.)
        guest.run("systemctl start peluit-doctor.service", timeout=900)
        verdict = guest.run("journalctl -u peluit-doctor.service --no-pager -o cat "
                            "| grep '^peluit doctor: ' | tail -n 1", timeout=60).stdout.strip()
        assert re.fullmatch(r"peluit doctor: OK \(0 fail, 0 warn, \d+ ok, 0 unknown\)",
                            verdict), verdict
        # Publishing and serving under AppArmor refused nothing either.
        denied = denials(guest)
        assert denied == "", denied[-4000:]
    finally:
        # Whatever failed above is what the test reports, not a guest gone by now.
        with suppress(GuestError, OSError, TimeoutError):
            guest.run("systemctl stop peluit-testnet", timeout=120)
            guest.link(True)
