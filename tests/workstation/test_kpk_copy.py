"""Replying from the origin's workstation to a case shared with KPK: the reply must reach
KPK's keys too. The workstation takes recipients only from its own keyring, so it refuses
until KPK's public key is imported there, and the server refuses a reply without it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto.codenames import generate_codename
from crypto.keyring import kill_agent as kill_gpg_agent
from crypto.padding import unframe
from tests.conftest import DemoInstance
from tests.support import short_tempdir
from tests.workstation.helpers import TENANT, answers, export, run
from wbs.casework import Refusal, accept_encrypted_reply
from wbs.context import Context
from wbs.intake import Intake
from wbs.models import Case
from wbs.sources import register_source, source_replies
from wbs.tenants import get_tenant, recipient_keys

HUB = "kpk"
ANSWER = "Kami telaah bersama KPK."


def _gpg(home: Path, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--pinentry-mode", "loopback",
         "--passphrase", "", *args],
        input=data, capture_output=True, check=True,
    )


def fingerprints(demo: DemoInstance, slug: str) -> list[str]:
    with demo.instance.sessions() as session:
        return [key.fingerprint for key in recipient_keys(session, get_tenant(session, slug))]


def one_tenant_home(demo: DemoInstance, slug: str, target: Path) -> Path:
    """``target`` as a GnuPG home with ``slug``'s demo secret key only."""
    target.mkdir(mode=0o700, parents=True)
    secret = _gpg(demo.workstation, "--export-secret-keys", *fingerprints(demo, slug)).stdout
    _gpg(target, "--import", data=secret)
    return target


@pytest.fixture
def kpk_home(demo: DemoInstance) -> Iterator[Path]:
    root = short_tempdir("wkk-")
    yield one_tenant_home(demo, HUB, root / "gnupg")
    kill_gpg_agent(root / "gnupg")
    shutil.rmtree(root, ignore_errors=True)


def test_the_origin_workstation_replies_to_kpk_too_once_it_holds_kpks_key(
    demo: DemoInstance, ws_home: Path, kpk_home: Path, tmp_path: Path
) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        owner = get_tenant(session, TENANT)
        secrets = register_source(Context(inst, session, owner), generate_codename())
        case = Intake(Context(inst, session, owner), secrets.source_id, to_kpk=True).new_case(
            answers()
        )
        case_id, reg = case.id, case.registration_number
    one_tenant_home(demo, TENANT, ws_home / "gnupg")
    assert run(ws_home, "import", str(export(demo, [case_id], tmp_path / "b.zip"))).exit_code == 0
    assert run(ws_home, "read", reg).exit_code == 0  # the origin reads its case, as ever

    refused = run(ws_home, "reply", reg, "--message", ANSWER)
    assert refused.exit_code == 1
    assert "shared with KPK" in refused.output and "keys import" in refused.output
    assert not (ws_home / "outbox").exists() or not any((ws_home / "outbox").iterdir())

    # Forced to the instansi's key alone, the server refuses it.
    forced = run(ws_home, "reply", reg, "--message", ANSWER,
                 *[arg for fpr in fingerprints(demo, TENANT) for arg in ("--recipient", fpr)])
    assert forced.exit_code == 0, forced.output
    without_kpk = next((ws_home / "outbox").iterdir())
    with inst.sessions() as session:
        owner = get_tenant(session, TENANT)
        stored = session.get(Case, case_id)
        assert stored is not None
        with pytest.raises(Refusal) as refusal:
            accept_encrypted_reply(Context(inst, session, owner), stored, without_kpk.read_bytes())
        assert refusal.value.params["reason"] == "not_to_every_kpk_key"
        assert refusal.value.params["fingerprints"] == fingerprints(demo, HUB)
    without_kpk.unlink()

    public = tmp_path / "kpk.asc"
    exported = _gpg(demo.workstation, "--armor", "--export", *fingerprints(demo, HUB))
    public.write_bytes(exported.stdout)
    assert run(ws_home, "keys", "import", str(public)).exit_code == 0
    replied = run(ws_home, "reply", reg, "--message", ANSWER)
    assert replied.exit_code == 0, replied.output
    ciphertext = next((ws_home / "outbox").iterdir()).read_bytes()
    with inst.sessions() as session:
        owner = get_tenant(session, TENANT)
        stored = session.get(Case, case_id)
        assert stored is not None
        ctx = Context(inst, session, owner)
        accept_encrypted_reply(ctx, stored, ciphertext)
        assert [text for _, text in source_replies(ctx, secrets, stored)] == [ANSWER]
    # KPK reads it with its own key alone.
    assert unframe(_gpg(kpk_home, "--decrypt", data=ciphertext).stdout)[0] == ANSWER.encode()
