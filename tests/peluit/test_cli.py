"""The operator's command line, run as an operator would, on a real instance folder."""

import datetime as dt
import os
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import click
import psutil
import pytest
from click.testing import CliRunner

from peluit.cli import main
from peluit.demo import make_workstation_key
from tests.support import short_tempdir
from wbs.config import load_config
from wbs.instance import Instance
from wbs.models import Source, utcnow
from wbs.tenancy import TenantScope
from wbs.tenants import get_tenant


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    instance = tmp_path / "instance"
    # A short keyring path: gpg-agent's socket must fit in 107 bytes.
    monkeypatch.setenv("PELUIT_GNUPG_HOME", str(short_tempdir("cli-")))
    monkeypatch.setenv("PELUIT_KDF_MEMORY_KIB", "8")

    def invoke(*args: str, input: str | None = None, ok: bool = True):  # type: ignore[no-untyped-def]
        result = CliRunner().invoke(main, ["--instance", str(instance), *args], input=input)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke.instance = instance  # type: ignore[attr-defined]
    return invoke


def test_init_creates_a_private_instance_and_is_repeatable(run) -> None:  # type: ignore[no-untyped-def]
    first = run("init")
    assert "instance ready" in first.output
    secrets = run.instance / "secrets"
    peppers = {p.name: p.read_bytes() for p in secrets.iterdir()}
    assert set(peppers) == {"source_id_pepper", "reply_key_pepper", "session_key", "totp_key"}
    for path in secrets.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The signing key's fingerprint, for investigators to compare with the workstation's.
    printed = re.search(r"^instance signing key fingerprint: ([0-9A-F]{40})$", first.output, re.M)
    assert printed, first.output
    with Instance.open(load_config(instance_dir=run.instance)) as instance:
        assert printed.group(1) == instance.signing.fingerprint
    again = run("init")
    assert f"instance signing key fingerprint: {printed.group(1)}" in again.output
    assert {p.name: p.read_bytes() for p in secrets.iterdir()} == peppers
    assert run("db", "current").output.strip() != "base (empty)"


def test_tenant_and_key_commands(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("init")
    run("tenant", "add", "pemkot-palembang", "--name", "Pemerintah Kota Palembang",
        "--kind", "pemerintah_kota", "--province", "Sumatera Selatan")
    listed = run("tenant", "list").output
    assert "pemkot-palembang\tPemerintah Kota Palembang\t0 key(s)" in listed

    home = short_tempdir("ws-")
    key_file = tmp_path / "investigator.asc"
    key_file.write_text(make_workstation_key(home, "Inspektorat Palembang"))
    imported = run("key", "import", "pemkot-palembang", str(key_file), "--owner", "Tim 1")
    fingerprint = imported.output.split()[1]
    assert len(fingerprint) == 40
    assert f"{fingerprint}\tcurrent\tTim 1" in run("key", "list", "pemkot-palembang").output

    run("key", "revoke", "pemkot-palembang", fingerprint)
    assert f"{fingerprint}\trevoked" in run("key", "list", "pemkot-palembang").output


def test_store_publish_is_one_line_of_counts_and_idempotent(run) -> None:  # type: ignore[no-untyped-def]
    run("init")
    run("tenant", "add", "pemkot-palembang", "--name", "Pemerintah Kota Palembang",
        "--kind", "pemerintah_kota")
    store = run.instance / "store"
    # The tenant's folder is made with the tenant, never by a pelapor's first report.
    assert (store / "pemkot-palembang").is_dir()
    first = run("store", "publish").output
    second = run("store", "publish").output
    for output in (first, second):
        assert output.count("\n") == 1 and output.startswith("store published: ")
        assert "/" not in output and "pemkot" not in output
    assert "(32 new)" in first and "(0 new)" in second
    assert len(list((store / ".pool").iterdir())) == 32


def test_a_binary_public_key_is_imported_and_a_binary_secret_key_refused(  # type: ignore[no-untyped-def]
    run, tmp_path: Path
) -> None:
    """Keys as ``gpg --export`` writes them without --armor, made by a real gpg."""
    run("init")
    run("tenant", "add", "pemkot-palembang", "--name", "Pemerintah Kota Palembang",
        "--kind", "pemerintah_kota", "--province", "Sumatera Selatan")
    home = short_tempdir("wsb-")
    make_workstation_key(home, "Inspektorat Palembang biner")

    def export(*args: str) -> bytes:
        return subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--pinentry-mode", "loopback",
             "--passphrase", "", *args], check=True, capture_output=True,
        ).stdout

    public, secret = tmp_path / "tim.gpg", tmp_path / "tim-secret.gpg"
    public.write_bytes(export("--export"))
    secret.write_bytes(export("--export-secret-keys"))
    assert b"BEGIN PGP" not in public.read_bytes() + secret.read_bytes()
    refused = run("key", "import", "pemkot-palembang", str(secret), ok=False)
    assert refused.exit_code == 1 and "PRIVATE key" in refused.output
    assert "0 key(s)" in run("tenant", "list").output
    imported = run("key", "import", "pemkot-palembang", str(public))
    fingerprint = imported.output.split()[1]
    assert f"{fingerprint}\tcurrent" in run("key", "list", "pemkot-palembang").output


def test_operator_errors_are_one_clear_line(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = run("tenant", "list", ok=False)
    assert missing.exit_code == 1 and "peluit init" in missing.output
    assert "Traceback" not in missing.output

    run("init")
    unknown = run("key", "list", "nowhere", ok=False)
    assert unknown.exit_code == 1 and "no tenant with slug 'nowhere'" in unknown.output

    run("tenant", "add", "kpk", "--name", "KPK", "--kind", "hub")
    secret = tmp_path / "secret.asc"
    secret.write_text("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxx\n")
    refused = run("key", "import", "kpk", str(secret), ok=False)
    assert refused.exit_code == 1 and "PRIVATE key" in refused.output
    assert "Traceback" not in refused.output


def test_bad_setting_is_named(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PELUIT_MAX_UPLOAD_BYTES", "huge")
    result = run("init", ok=False)
    assert result.exit_code == 1 and "PELUIT_MAX_UPLOAD_BYTES" in result.output


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group under ``group``, as the words an operator types."""
    yield prefix
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_every_command_answers_help_with_status_0(run) -> None:  # type: ignore[no-untyped-def]
    paths = list(_command_paths(main))
    assert ("run",) in paths and ("tenant", "add") in paths and ("onion", "client-key") in paths
    for path in paths:
        result = run(*path, "--help")  # run() asserts exit status 0
        assert result.output.startswith("Usage:"), path
        assert "Error" not in result.output, path


def test_a_read_only_database_stops_run_with_one_line(  # type: ignore[no-untyped-def]
    run, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("init")
    # SQLite's own read-only mode: every write is refused as on a read-only disk, as any user
    # (root ignores a file's mode).
    database = run.instance / "peluit.db"
    monkeypatch.setenv("PELUIT_DATABASE_URL", f"sqlite:///file:{database}?mode=ro&uri=true")
    result = run("run", "--no-tor", "--port", str(_free_port()),
                 "--investigator-port", str(_free_port()), ok=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: the database refused: attempt to write a readonly database"
    ]
    assert "Traceback" not in result.output


def test_demo_keeps_secret_keys_out_of_the_server(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    workstation = short_tempdir("demo-")
    out = run("init", "--demo", "--demo-workstation", str(workstation)).output
    assert "created demo tenant kpk" in out and "created demo tenant pemprov-sumsel" in out
    def secret_keys(home: Path) -> str:
        return subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--with-colons", "--list-secret-keys"],
            capture_output=True, text=True, check=False,
        ).stdout

    server_home = Path(os.environ["PELUIT_GNUPG_HOME"])
    assert "sec:" not in secret_keys(server_home)
    assert secret_keys(workstation / "gnupg").count("sec:") == 2
    # Running it again adds nothing.
    again = run("init", "--demo", "--demo-workstation", str(workstation)).output
    assert "created demo tenant" not in again and "secret half only in" not in again
    assert f"demo workstation: {workstation}" in again


def test_old_schema_is_named_not_crashed_on(run) -> None:  # type: ignore[no-untyped-def]
    run("init")
    run("db", "downgrade", "0001")
    stale = run("tenant", "list", ok=False)
    assert stale.exit_code == 1 and "peluit db upgrade" in stale.output
    run("db", "upgrade")
    run("tenant", "list")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_serves_quietly_on_loopback_and_publishes_onions(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("init", "--demo", "--demo-workstation", str(short_tempdir("demo-")))
    port, investigator_port = _free_port(), _free_port()
    log = tmp_path / "run.log"
    tor_folder = str(run.instance / "tor")
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "peluit.cli", "--instance", str(run.instance), "run",
             "--port", str(port), "--investigator-port", str(investigator_port)],
            stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while "Onion services are added" not in log.read_text():
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/t/kpk/") as page:
                body, headers = page.read().decode(), page.headers
            with urllib.request.urlopen(f"http://127.0.0.1:{investigator_port}/masuk") as page:
                assert page.status == 200
            tors = [p for p in psutil.process_iter(["cmdline"])
                    if tor_folder in " ".join(p.info["cmdline"] or [])]
            assert len(tors) == 1, "run started a private tor"
            # The store is published before the first write: the pool of empty files is there.
            assert len(list((run.instance / "store" / ".pool").iterdir())) >= 32
        finally:
            server.terminate()
            server.wait(timeout=20)
    assert not tors[0].is_running() or tors[0].status() == psutil.STATUS_ZOMBIE
    assert "Komisi Pemberantasan Korupsi" in body
    assert headers["Server"].strip() == "Peluit"  # no framework or Python version
    printed = log.read_text()
    assert f"http://127.0.0.1:{port}/t/pemprov-sumsel/" in printed
    # Each tenant's onion, and the investigators' onion with a client key per demo account.
    assert re.search(r"onion tenant:kpk: http://[a-z2-7]{56}\.onion/", printed)
    assert re.search(r"onion investigator: http://[a-z2-7]{56}\.onion/", printed)
    assert printed.count(":descriptor:x25519:") == 3
    # The private tor has only just started (and has no network here): accepted, not published.
    assert re.search(r"onion tenant:kpk: http://\S+ \(NOT published: waiting for tor "
                     r"\(bootstrap \d+%\)\)", printed), printed
    assert "(published)" not in printed and "published (descriptor uploaded)" not in printed
    # Rule 3: no request line, address or user agent in what the server prints.
    assert "GET /" not in printed and "Python-urllib" not in printed
    assert "127.0.0.1 -" not in printed


def test_purge_forgets_what_is_kept_only_for_a_while(run) -> None:  # type: ignore[no-untyped-def]
    run("init", "--demo", "--demo-workstation", str(short_tempdir("demo-")))
    config = load_config(dict(os.environ), instance_dir=run.instance)
    with Instance.open(config) as inst, inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        # A codename confirmed three weeks ago that never reported.
        TenantScope(session, tenant).add(Source(
            id="c" * 64, reply_fingerprint="D" * 40, reply_public_key="public",
            reply_secret_key="locked", created_at=utcnow() - dt.timedelta(days=21)))
        session.commit()
    result = run("purge")
    assert "1 codename(s) that never reported" in result.output
    with Instance.open(config) as inst, inst.sessions() as session:
        assert session.get(Source, "c" * 64) is None


def test_onion_addresses_without_tor_are_stable_and_recorded(  # type: ignore[no-untyped-def]
    run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No tor anywhere: the installer prints the addresses before tor has published anything.
    monkeypatch.setenv("TOR_CONTROL", "unix:/nonexistent/control")
    run("init")
    run("tenant", "add", "pemkot-palembang", "--name", "Pemerintah Kota Palembang",
        "--kind", "pemerintah_kota")
    first = run("onion", "addresses").output
    found = dict(line.split("\t") for line in first.splitlines())
    assert set(found) == {"tenant:pemkot-palembang", "investigator"}, first
    assert all(re.fullmatch(r"[a-z2-7]{56}\.onion", address) for address in found.values())
    assert found["tenant:pemkot-palembang"] != found["investigator"]
    keys = run.instance / "onion"
    for path in (keys / "tenants" / "pemkot-palembang.key", keys / "investigator.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The tenant's address is recorded, so the source interface knows its Host header.
    with Instance.open(load_config(instance_dir=run.instance)) as inst, inst.sessions() as s:
        assert get_tenant(s, "pemkot-palembang").onion_address == found["tenant:pemkot-palembang"]
    # Same keys, same addresses, every time.
    assert run("onion", "addresses").output == first
