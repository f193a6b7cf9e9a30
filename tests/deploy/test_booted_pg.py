"""deploy/install.sh --db postgresql --federation hub on a Debian 12 server that really boots.

test_booted.py boots the default installation (SQLite). This is the other one an institution
chooses, with KPK's hub role on top: PostgreSQL from Debian, and the federation endpoint as a
third gunicorn service, under the same enforced AppArmor profiles, systemd sandboxes and
firewall. What PostgreSQL adds under AppArmor is what is tested here: the services reach it over
its socket, `peluit backup` runs pg_dump through Debian's pg_wrapper (a perl script), `peluit
restore` runs pg_restore and psql, with the operators' key home on a USB stick (/media).

The day: the first admin logs in and adds the workstation's key, a reporter files a report, the
backup unit writes an archive; then another report comes in, and the operators restore the
archive (``--force``, over the running instance, as after a bad upgrade): the admin and the
first reporter log in again, the first report is there and the later one is not, every stored
item decrypts with the workstation's key, and AppArmor refused nothing.
"""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.booted import (
    ADMIN,
    INSTALL,
    INSTANCE,
    PELUIT,
    RUNNING,
    Server,
    active,
    backup_by_its_unit,
    confinement,
    denials,
    gpg,
    installed_server,
    journey,
    key_pair,
    stored_items_decrypted,
)

pytestmark = pytest.mark.slow

SERVICES = ["peluit-source.service", "peluit-journalist.service", "peluit-federation.service"]
USB_KEY_HOME = "/media/usb/gnupg"


@pytest.fixture(scope="module")
def server(boot_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    command = [*INSTALL, "--db", "postgresql", "--federation", "hub"]
    with installed_server(boot_tarball, tmp_path_factory.mktemp("booted-pg"), command) as booted:
        yield booted


def test_installed_with_postgresql_and_the_federation_endpoint(server: Server) -> None:
    guest = server.guest
    second = server.second
    assert second.rstrip().endswith("changed: 0") and "   + " not in second, second[-3000:]
    units = [*RUNNING, "postgresql@15-main.service", "peluit-federation.service",
             "peluit-federation-sync.timer"]
    states = active(guest, units)
    assert {unit: state for unit, state in states.items() if state != "active"} == {
        # The hub syncs nothing itself: its members do (install.sh enables the timer only on
        # a member or a regional hub).
        "peluit-federation-sync.timer": "inactive",
    }, states
    # The three interfaces' gunicorns (masters and workers) and tor, each confined.
    assert confinement(guest) == {"gunicorn": {"peluit-web (enforce)"},
                                  "tor": {"system_tor (enforce)"}}
    federation = guest.run("cat /proc/$(systemctl show -P MainPID peluit-federation.service)"
                           "/attr/current", timeout=60, check=True).stdout.strip()
    assert federation == "peluit-web (enforce)"
    # The database is PostgreSQL's (peer authentication as the peluit user), at the code's
    # revision, with the dashboards' triggers in place; no SQLite file anywhere.
    in_postgresql = guest.run("runuser -u peluit -- psql -d peluit -Atc "
                              "'select version_num from alembic_version'", timeout=120,
                              check=True).stdout.strip()
    report = guest.run(f"{PELUIT} doctor", timeout=900).stdout
    assert re.search(rf"^ok\s+migrations: database at {in_postgresql} \(head\)$", report,
                     re.M), (in_postgresql, report)
    assert re.search(r"^ok\s+tallies: ", report, re.M), report
    assert re.search(r"^ok\s+services: ", report, re.M), report
    sqlite = guest.run("find /var/lib/peluit -name '*.sqlite3*'", timeout=60, check=True)
    assert sqlite.stdout == "", sqlite.stdout


def test_a_day_a_backup_and_a_restore_under_apparmor(server: Server, tmp_path: Path) -> None:
    guest = server.guest
    marker, later_marker = (f"peluit{secrets.token_hex(8)}" for _ in range(2))
    with key_pair("Inspektorat Kota Palembang <tim1@example.invalid>") as (workstation, public), \
            key_pair("Operator cadangan <ops@example.invalid>") as (operators, backup_key):
        guest.write("/root/workstation.asc", public)
        seen = journey(server, "day", server.source_onion, ADMIN, server.passphrase,
                       server.totp_secret, "/root/workstation.asc", marker)
        assert seen["login"] == [200, 200, "/", True], seen
        assert seen["key_added"] == [200, True] and seen["inbox_has_report"] is True, seen
        receipt, codename = seen["report"][3], seen["codename"]

        # pg_dump (Debian's pg_wrapper, perl) under the backup unit's sandbox and AppArmor.
        archive, names, _ = backup_by_its_unit(server, operators, backup_key, tmp_path)
        assert "database/peluit.pgdump" in names, names

        later = journey(server, "report", server.source_onion, later_marker)
        later_receipt = later["report"][3]
        assert later["report"][:3] == [200, 200, 200] and later_receipt != receipt, later

        # The operators bring their key on a USB stick (docs/backup.md): its home there,
        # given to the service user that runs the restore.
        secret_key = subprocess.run([*gpg(operators), "--armor", "--export-secret-keys"],
                                    check=True, capture_output=True, text=True).stdout
        guest.write("/root/operators.asc", secret_key, mode="0600")
        guest.run(f"install -d -m 0700 {USB_KEY_HOME} && gpg --homedir {USB_KEY_HOME} --batch "
                  f"--import /root/operators.asc && gpgconf --homedir {USB_KEY_HOME} --kill all"
                  f" && rm /root/operators.asc && chown -R peluit:peluit /media/usb",
                  timeout=300, check=True)
        guest.run(f"systemctl stop {' '.join(SERVICES)}", timeout=300, check=True)
        restored = guest.run(f"{PELUIT} restore {shlex.quote(archive)} --signing-fingerprint "
                             f"{server.fingerprint} --backup-key-home {USB_KEY_HOME} --force",
                             timeout=1800)
        assert restored.returncode == 0, restored.stdout[-3000:] + restored.stderr[-3000:]
        # What the docs say to do next: the services, the store's publication, the onions.
        guest.run(f"systemctl start {' '.join(SERVICES)} peluit-store-publish.service && "
                  "systemctl restart peluit-onion.service", timeout=600, check=True)
        guest.run("for i in $(seq 1 300); do curl -fsS -o /dev/null --max-time 30 "
                  "http://127.0.0.1:8081/masuk && exit 0; sleep 2; done; exit 1",
                  timeout=900, check=True)

        back = journey(server, "back", server.source_onion, ADMIN, server.passphrase,
                       server.totp_secret, codename, receipt, later_receipt)
        assert back["login"] == [200, 200, "/", True], back
        # The archive's state: the first report, not the one that came after the backup.
        assert back["inbox"] == [receipt], back
        assert back["reporter"] == [200, "/pengaduan", [receipt]], back
        plain = stored_items_decrypted(guest, workstation, tmp_path)
        assert any(f"({marker})" in text for text in plain), plain
        assert not any(later_marker in text for text in plain), plain
    # What was replaced is kept beside, where the restore said.
    kept = re.findall(r"^the replaced data is kept in (\S+);", restored.stdout, re.M)
    assert kept and all(path.startswith(INSTANCE) and ".before-restore-" in path
                        for path in kept), restored.stdout
    guest.run(" && ".join(f"test -e {shlex.quote(path)}" for path in kept), timeout=60,
              check=True)
    # Neither report in clear anywhere on the disk: not in PostgreSQL's files (its WAL
    # included), the backup, the restore's staging, or what the restore set aside. Sockets
    # and FIFOs are skipped (-D skip); a file that vanished during the search (PostgreSQL's
    # and the services' temporary files come and go) is the only error allowed.
    for word in (marker, later_marker):
        clear = guest.run(f"grep -rlF -D skip {word} /var /tmp /opt /etc /root /home /srv "
                          "/media", timeout=900)
        assert clear.returncode in (1, 2) and clear.stdout == "", clear.stdout
        errors = [line for line in clear.stderr.splitlines()
                  if not line.endswith(": No such file or directory")]
        assert errors == [], errors
    denied = denials(guest)
    assert denied == "", denied[-4000:]
