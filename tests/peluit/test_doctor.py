"""``peluit doctor`` against real parts: a real tor (stopped, or running with its network
disabled so that nothing is ever published), a real disk, real gpg keys, a real database.

A healthy tor (bootstrapped, descriptors uploaded, a consensus for the clock) needs the private
Tor network: that case runs in tests/onion/e2e_scenario.py (see test_e2e_testnet.py).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import stem.control
import stem.version
from click.testing import CliRunner

from crypto.gpgrun import GpgHome
from crypto.keypairs import export_public_key, generate_key_pair
from peluit import doctor
from peluit.cli import main
from tests.conftest import DemoInstance
from tests.onion.tornet import offline_tor
from tests.support import short_tempdir
from wbs import onion
from wbs.tenants import add_recipient_key, get_tenant


@pytest.fixture
def tor_root() -> Iterator[Path]:
    if shutil.which("tor") is None:
        pytest.fail("tor is needed for the doctor's tests: apt-get install tor")
    root = short_tempdir("doctor-tor-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def run_doctor(demo: DemoInstance, monkeypatch: pytest.MonkeyPatch) -> Any:
    config = demo.instance.config
    monkeypatch.setenv("PELUIT_GNUPG_HOME", str(config.gnupg_home))
    monkeypatch.setenv("PELUIT_KDF_MEMORY_KIB", str(config.kdf.memory_kib))
    monkeypatch.setenv("PELUIT_KDF_TIME_COST", str(config.kdf.time_cost))
    monkeypatch.delenv("TOR_CONTROL", raising=False)

    def invoke(*args: str) -> tuple[int, dict[str, tuple[str, str]], str]:
        result = CliRunner().invoke(
            main, ["--instance", str(config.instance_dir), "doctor", "--wait", "5", *args]
        )
        lines = result.output.splitlines()
        by_name = {}
        for line in lines[:-1]:
            found = re.fullmatch(r"(ok|warn|fail|unknown) +([a-z ]+): (.*)", line)
            assert found, result.output
            by_name[found.group(2)] = (found.group(1), found.group(3))
        return result.exit_code, by_name, lines[-1]

    return invoke


def _publish(control_port: int, demo: DemoInstance) -> None:
    with onion.connect(f"127.0.0.1:{control_port}") as ctl:
        onion.publish_all(ctl, demo.instance, 8080, 8081)


def test_a_stopped_tor_is_a_failure(run_doctor: Any, demo: DemoInstance, tor_root: Path) -> None:
    with offline_tor(tor_root) as tor:
        _publish(tor.control_port, demo)
        port = tor.control_port
    # tor has stopped (by its pid): its control port no longer answers.
    code, checks, last = run_doctor("--tor-control", f"127.0.0.1:{port}")
    assert code == 2
    assert checks["tor"][0] == "fail" and "not running" in checks["tor"][1]
    assert checks["onions"] == ("fail", "tor is not running: no onion is published")
    assert checks["clock"][0] == "unknown"
    assert last.startswith("peluit doctor: FAIL")
    # The instance itself is fine: those checks say so.
    for name in ("file modes", "migrations", "disk", "recipient keys"):
        assert checks[name][0] == "ok", (name, checks[name])


def test_an_onion_tor_only_accepted_is_unpublished_and_a_failure(
    run_doctor: Any, demo: DemoInstance, tor_root: Path
) -> None:
    # A running tor that took every onion (ADD_ONION) but, its network disabled, never
    # uploaded a descriptor: what `peluit onion status` used to call "published".
    with offline_tor(tor_root) as tor:
        _publish(tor.control_port, demo)
        with onion.connect(f"127.0.0.1:{tor.control_port}") as ctl:
            assert onion.published_ids(ctl)  # tor serves them
        code, checks, last = run_doctor("--tor-control", f"127.0.0.1:{tor.control_port}")
    assert code == 2
    # The version as tor itself reports it ("Tor version 0.4.9.11.").
    version = subprocess.run(["tor", "--version"], capture_output=True, text=True, check=True)
    number = re.match(r"Tor version (\S+?)\.?$", version.stdout.splitlines()[0])
    assert number, version.stdout
    assert checks["tor"] == ("fail", f"bootstrapped 0%, tor {number.group(1)}")
    level, detail = checks["onions"]
    assert level == "fail"
    assert "tenant:kpk NOT published: waiting for tor (bootstrap 0%)" in detail
    assert "tenant:pemprov-sumsel NOT published" in detail
    assert checks["clock"] == ("unknown", "tor has no consensus yet: cannot compare")
    assert last.startswith("peluit doctor: FAIL")


@pytest.mark.parametrize(
    ("progress", "version", "level"),
    [
        (100, "0.4.9.11", "ok"),
        (100, "0.4.8.1-alpha", "ok"),
        (100, None, "ok"),
        (100, "0.4.7.16", "warn"),
        (40, "0.4.9.11", "fail"),
        (40, "0.4.7.16", "fail"),
    ],
)
def test_a_tor_without_proof_of_work_defences_is_a_warning(
    progress: int, version: str | None, level: str
) -> None:
    check = doctor.tor_state(progress, stem.version.Version(version) if version else None)
    assert check.level == level
    assert check.detail.startswith(f"bootstrapped {progress}%, tor {version or 'of unknown'}")
    assert ("no proof-of-work defences" in check.detail) is (level == "warn")


def test_a_full_disk_is_a_failure(
    run_doctor: Any, demo: DemoInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = shutil.disk_usage(demo.instance.config.store_dir).free
    monkeypatch.setenv("PELUIT_DISK_FLOOR_BYTES", str(free + 1024**3))
    code, checks, _ = run_doctor("--tor-control", "127.0.0.1:1")
    assert code == 2
    level, detail = checks["disk"]
    assert level == "fail" and "intake is closed" in detail


def test_a_healthy_instance_passes_the_checks_that_need_no_tor(demo: DemoInstance) -> None:
    config = demo.instance.config
    now = dt.datetime.now(tz=dt.UTC)
    healthy = [
        doctor.check_file_modes(config),
        doctor.check_migrations(config),
        doctor.check_disk(config),
        doctor.check_recipient_keys(demo.instance, 30, now),
        doctor.check_tallies(demo.instance),
    ]
    assert [c.level for c in healthy] == ["ok"] * 5, healthy
    assert doctor.verdict(healthy) == (0, "peluit doctor: OK (0 fail, 0 warn, 5 ok, 0 unknown)")
    # systemd does not run on the test machine: said, not guessed.
    services = doctor.check_services()
    if not Path("/run/systemd/system").is_dir():
        assert services.level == "unknown" and "systemd is not running" in services.detail
    assert doctor.verdict([*healthy, services])[0] == 0


def _fake_systemctl(folder: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in for systemctl: systemd does not run on the test machine (the real one is asked
    # in the booted server of tests/deploy/test_booted.py).
    folder.mkdir()
    fake = folder / "systemctl"
    fake.write_text("#!/bin/sh\n" + script)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_services_down_fail_and_an_unanswered_question_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    units = ["peluit-source.service", "tor@default.service"]
    _fake_systemctl(tmp_path / "down", 'case "$2" in tor*) echo active; exit 0;; esac\n'
                    'echo failed; exit 3\n', monkeypatch)
    down = doctor.check_services(units, systemd_dir=tmp_path)
    assert (down.level, down.detail) == ("fail", "peluit-source.service failed")
    # No system bus (a server without dbus): systemctl prints nothing on stdout.
    _fake_systemctl(tmp_path / "nobus", 'echo "Failed to connect to bus: No such file or '
                    'directory" >&2; exit 1\n', monkeypatch)
    unasked = doctor.check_services(units, systemd_dir=tmp_path)
    assert unasked.level == "warn", unasked
    assert unasked.detail.startswith("cannot ask systemd: Failed to connect to bus"), unasked
    _fake_systemctl(tmp_path / "up", "echo active\n", monkeypatch)
    assert doctor.check_services(units, systemd_dir=tmp_path).level == "ok"


def test_loose_file_modes_and_pending_migrations_fail(demo: DemoInstance) -> None:
    config = demo.instance.config
    secret = config.instance_dir / "secrets" / "session_key"
    os.chmod(secret, 0o644)
    os.chmod(config.instance_dir, 0o755)  # noqa: S103  # the mistake under test
    modes = doctor.check_file_modes(config)
    assert modes.level == "fail"
    assert f"{secret} is 0644, not 0600" in modes.detail
    assert "others may read it" in modes.detail
    os.chmod(secret, 0o600)
    os.chmod(config.instance_dir, 0o700)
    assert doctor.check_file_modes(config).level == "ok"
    signing_keys = sorted((config.instance_dir / "signing" / "private-keys-v1.d").iterdir())
    assert signing_keys
    os.chmod(signing_keys[0], 0o644)
    loose = doctor.check_file_modes(config)
    assert loose.level == "fail" and f"{signing_keys[0]} is 0644" in loose.detail
    os.chmod(signing_keys[0], 0o600)

    from wbs import db
    from wbs.accounts import totp_key

    db.downgrade(config.database_url, "0007", totp_key=totp_key(demo.instance.secrets))
    pending = doctor.check_migrations(config)
    assert pending.level == "fail" and "run 'peluit db upgrade'" in pending.detail
    db.upgrade(config.database_url, "head", totp_key=totp_key(demo.instance.secrets))
    assert doctor.check_migrations(config).level == "ok"


def test_wrong_tallies_are_a_failure_that_peluit_db_tallies_repairs(demo: DemoInstance) -> None:
    inst = demo.instance

    def tallies_check() -> doctor.Check:
        return doctor.check_tallies(inst)

    def repair() -> None:
        result = CliRunner().invoke(
            main, ["--instance", str(inst.config.instance_dir), "db", "tallies"])
        assert result.exit_code == 0, result.output
        assert "counted again" in result.output

    with inst.sessions() as session:
        tenant_id = get_tenant(session, "pemprov-sumsel").id
    assert tallies_check().level == "ok"
    # A case counted that is not there (a write that bypassed the triggers): named, repaired.
    with inst.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO case_tallies (figure, facet, grain, month, value, tenant_id, cases)"
            " VALUES ('status', '', 'a', '0001-01-01', 'baru|none', :tenant, 1)"),
            {"tenant": tenant_id})
    wrong = tallies_check()
    assert wrong.level == "fail" and "1 institution(s) counted wrong" in wrong.detail
    assert "peluit db tallies" in wrong.detail
    repair()
    assert tallies_check().level == "ok"
    # A trigger dropped (a migration that rebuilt the table, say): named, then reinstalled.
    with inst.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER case_tallies_update")
    missing = tallies_check()
    assert missing.level == "fail" and "case_tallies_update" in missing.detail
    repair()
    assert tallies_check().level == "ok"


def test_a_recipient_key_expiring_soon_is_a_warning(demo: DemoInstance) -> None:
    home = short_tempdir("expiring-")
    try:
        gpg = GpgHome(home)
        armored = export_public_key(gpg, generate_key_pair(gpg, "Tim 2 <tim2@example.org>",
                                                           expire="10d"))
        gpg.kill_agent()
        with demo.instance.sessions() as session:
            add_recipient_key(session, demo.instance.keyring, get_tenant(session, "kpk"),
                              armored)
            session.commit()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    now = dt.datetime.now(tz=dt.UTC)
    soon = doctor.check_recipient_keys(demo.instance, 30, now)
    assert soon.level == "warn" and "kpk: key" in soon.detail and "within 30 days" in soon.detail
    assert doctor.verdict([soon])[0] == 1
    assert doctor.check_recipient_keys(demo.instance, 5, now).level == "ok"
    # Eleven days on, it no longer encrypts: kpk still has its demo key, the check fails.
    later = doctor.check_recipient_keys(demo.instance, 30, now + dt.timedelta(days=11))
    assert later.level == "fail" and "no longer encrypts" in later.detail


def test_the_clock_is_unknown_without_a_consensus(tor_root: Path) -> None:
    with offline_tor(tor_root) as tor, onion.connect(f"127.0.0.1:{tor.control_port}") as ctl:
        assert isinstance(ctl, stem.control.Controller)
        clock = doctor.check_clock(ctl, dt.datetime.now(tz=dt.UTC))
    assert clock.level == "unknown"


def test_exit_codes_for_monitoring() -> None:
    ok, warn, fail = (doctor.Check("x", level, "") for level in ("ok", "warn", "fail"))
    unknown = doctor.Check("y", "unknown", "")
    assert doctor.verdict([ok, unknown])[0] == 0
    assert doctor.verdict([ok, warn])[0] == 1
    assert doctor.verdict([warn, fail, ok])[0] == 2




def test_an_instance_that_cannot_open_is_a_failure_not_a_crash(
    run_doctor: Any, demo: DemoInstance
) -> None:
    # A missing secret: every other command stops with exit 1, which monitoring would read as
    # a warning; the doctor reports it as a failure (exit 2) and runs the other checks.
    (demo.instance.config.instance_dir / "secrets" / "totp_key").unlink()
    code, checks, last = run_doctor("--tor-control", "127.0.0.1:1")
    assert code == 2
    assert checks["file modes"][0] == "fail" and "totp_key is missing" in checks["file modes"][1]
    assert checks["instance"][0] == "fail" and "peluit init" in checks["instance"][1]
    assert checks["recipient keys"][0] == "unknown"
    assert checks["disk"][0] == "ok"
    assert last.startswith("peluit doctor: FAIL")
