"""``peluit investigator``: accounts made and managed from the operator's command line.

Run as an operator would, on a real instance folder, with SQLite and with PostgreSQL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner

from peluit.cli import main
from tests.support import short_tempdir
from wbs.accounts import FailureReason, authenticate
from wbs.config import load_config
from wbs.instance import Instance


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Any:
    instance = tmp_path / "instance"
    monkeypatch.setenv("PELUIT_GNUPG_HOME", str(short_tempdir("cli-")))
    monkeypatch.setenv("PELUIT_DATABASE_URL", database_url)
    # Cheap argon2id: the CLI hashes passwords with the instance's KDF cost.
    monkeypatch.setenv("PELUIT_KDF_MEMORY_KIB", "8")
    monkeypatch.setenv("PELUIT_KDF_TIME_COST", "1")

    def invoke(*args: str, ok: bool = True) -> Any:
        result = CliRunner().invoke(main, ["--instance", str(instance), *args])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke.instance = instance  # type: ignore[attr-defined]
    invoke("init")
    invoke("tenant", "add", "pemkot-medan", "--name", "Pemkot Medan", "--kind", "pemerintah_kota")
    invoke("tenant", "add", "kpk", "--name", "KPK", "--kind", "hub")
    return invoke


def _handed_over(output: str) -> tuple[str, str, str]:
    passphrase = re.search(r"^passphrase: (.+)$", output, re.M)
    secret = re.search(r"^TOTP secret: ([A-Z2-7]+)$", output, re.M)
    uri = re.search(r"^otpauth URI: (otpauth://\S+)$", output, re.M)
    assert passphrase and secret and uri, output
    return passphrase.group(1), secret.group(1), uri.group(1)


def _login(run: Any, username: str, password: str, secret: str) -> FailureReason | None:
    config = load_config(instance_dir=run.instance)
    with Instance.open(config) as instance, instance.sessions() as session:
        result = authenticate(
            session, username, password, pyotp.TOTP(secret).now(),
            settings=instance.auth_settings(),
        )
        return result.reason


def _listed(run: Any, tenant: str) -> dict[str, list[str]]:
    lines = run("investigator", "list", tenant).output.strip().splitlines()
    return {line.split("\t")[0]: line.split("\t")[1:] for line in lines}


def test_add_hands_over_credentials_that_log_in(run: Any) -> None:
    out = run(
        "investigator", "add", "pemkot-medan", "siti", "--name", "Siti Aminah",
        "--role", "verifikator",
    ).output
    assert "added siti (verifikator) to pemkot-medan" in out
    passphrase, secret, uri = _handed_over(out)
    assert len(passphrase.split()) == 7
    assert f"secret={secret}" in uri and "Peluit:siti" in uri

    assert _listed(run, "pemkot-medan")["siti"][:3] == ["verifikator", "active", "2fa-pending"]
    assert _login(run, "siti", passphrase, secret) is None
    listed = _listed(run, "pemkot-medan")["siti"]
    assert listed[2] == "2fa" and listed[3] != "-" and listed[4] == "Siti Aminah"
    # Nobody else's list shows the account.
    assert "siti" not in _listed(run, "kpk")


def test_qr_code_can_be_drawn_in_the_terminal(run: Any) -> None:
    out = run(
        "investigator", "add", "kpk", "pantau", "--name", "Pemantau", "--role", "pemantau_kpk",
        "--qr",
    ).output
    assert "█" in out or "▀" in out


def test_deactivate_and_reset_commands(run: Any) -> None:
    out = run(
        "investigator", "add", "pemkot-medan", "budi", "--name", "Budi", "--role",
        "admin_instansi",
    ).output
    passphrase, secret, _ = _handed_over(out)

    reset = run("investigator", "reset-2fa", "budi").output
    new_secret = re.search(r"^TOTP secret: (\S+)$", reset, re.M)
    assert new_secret and new_secret.group(1) != secret
    assert _login(run, "budi", passphrase, secret) == FailureReason.BAD_CODE
    assert _login(run, "budi", passphrase, new_secret.group(1)) is None

    new_pass = re.search(r"^passphrase: (.+)$", run("investigator", "reset-password", "budi")
                         .output, re.M)
    assert new_pass and new_pass.group(1) != passphrase

    assert "deactivated budi" in run("investigator", "deactivate", "budi").output
    assert _listed(run, "pemkot-medan")["budi"][1] == "inactive"
    assert _login(run, "budi", new_pass.group(1), new_secret.group(1)) == FailureReason.INACTIVE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "pemkot-medan", "pantau", "--name", "P", "--role", "pemantau_kpk"), "hub"),
        (("add", "nowhere", "siti", "--name", "S", "--role", "verifikator"), "no tenant"),
        (("add", "pemkot-medan", "Bad Name", "--name", "S", "--role", "verifikator"),
         "username"),
        (("deactivate", "nobody"), "no investigator account 'nobody'"),
        (("reset-2fa", "nobody"), "no investigator account"),
    ],
)
def test_operator_errors_are_one_clear_line(run: Any, args: tuple[str, ...], message: str) -> None:
    result = run("investigator", *args, ok=False)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


def test_a_username_is_taken_once_across_tenants(run: Any) -> None:
    run("investigator", "add", "pemkot-medan", "siti", "--name", "S", "--role", "verifikator")
    taken = run(
        "investigator", "add", "kpk", "siti", "--name", "S", "--role", "verifikator", ok=False
    )
    assert taken.exit_code == 1 and "taken" in taken.output
