"""KPK's copy below HTTP: new items of a shared case follow KPK's current keys, and without a
current KPK key nothing meant for KPK is stored (fail closed). Real gpg, a fresh instance per
test (the tests revoke KPK's key)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from crypto.codenames import generate_codename
from crypto.keyring import kill_agent
from crypto.padding import FRAMING_PADME, unframe
from crypto.replykeys import encrypt_reply
from peluit.demo import make_workstation_key
from tests.conftest import DemoInstance
from tests.support import short_tempdir
from wbs.casework import Refusal, accept_encrypted_reply, post_reply
from wbs.context import Context
from wbs.intake import Intake, IntakeClosed, ReportAnswers
from wbs.models import Case, Event, Reply, Source, Submission
from wbs.sources import register_source
from wbs.tenants import (
    add_recipient_key,
    current_recipients,
    get_tenant,
    recipient_keys,
    revoke_recipient_key,
)

TENANT, HUB = "pemprov-sumsel", "kpk"
ANSWERS = ReportAnswers(
    category="suap_menyuap", mcp_area=None, apa="Fee proyek jalan", siapa="Kabid Z",
    kapan="April 2026", dimana="Dinas PU", bagaimana="Tunai", berapa="Rp2 miliar", kronologi="",
)


@dataclass
class Shared:
    case_id: int
    source_id: str


def files_in(demo: DemoInstance) -> int:
    # A count, not the paths: the store publishes new files in batches, moving them.
    return sum(1 for path in demo.instance.store.root.rglob("*") if path.is_file())


def new_report(demo: DemoInstance, *, to_kpk: bool) -> Shared:
    inst = demo.instance
    with inst.sessions() as session:
        owner = get_tenant(session, TENANT)
        secrets = register_source(Context(inst, session, owner), generate_codename())
        case = Intake(Context(inst, session, owner), secrets.source_id, to_kpk=to_kpk).new_case(
            ANSWERS
        )
        return Shared(case.id, secrets.source_id)


def revoke_kpk(demo: DemoInstance) -> None:
    with demo.instance.sessions() as session:
        hub = get_tenant(session, HUB)
        for key in recipient_keys(session, hub):
            revoke_recipient_key(session, hub, key.fingerprint)
        session.commit()


def counts(demo: DemoInstance, case_id: int) -> tuple[int, int, int]:
    with demo.instance.sessions() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(sa.select(sa.func.count()).select_from(model)
                               .where(model.case_id == case_id)) or 0)
            for model in (Submission, Reply, Event)
        )


@pytest.fixture
def new_kpk_home() -> Iterator[Path]:
    home = short_tempdir("nk-") / "gnupg"
    yield home
    kill_agent(home)
    shutil.rmtree(home.parent, ignore_errors=True)


def test_no_kpk_key_refuses_a_report_sent_to_kpk_and_stores_nothing(demo: DemoInstance) -> None:
    revoke_kpk(demo)
    before = files_in(demo)
    with demo.instance.sessions() as session:
        owner = get_tenant(session, TENANT)
        secrets = register_source(Context(demo.instance, session, owner), generate_codename())
        with pytest.raises(IntakeClosed, match="KPK has no current recipient key"):
            Intake(Context(demo.instance, session, owner), secrets.source_id, to_kpk=True)
        assert session.scalar(sa.select(sa.func.count(Case.id))) == 0
    assert files_in(demo) == before
    # Not sent to KPK, the report is taken as before.
    assert new_report(demo, to_kpk=False).case_id


def test_no_kpk_key_refuses_every_new_item_of_a_shared_case(demo: DemoInstance) -> None:
    shared = new_report(demo, to_kpk=True)
    inst = demo.instance
    with inst.sessions() as session:
        owner = get_tenant(session, TENANT)
        source = session.get(Source, shared.source_id)
        assert source is not None
        # Encrypted while KPK still had a key: to the pelapor, the instansi and KPK.
        workstation_reply = encrypt_reply(
            inst.keyring, current_recipients(session, owner, to_kpk=True),
            source.reply_public_key, b"Balasan dari workstation", framing=FRAMING_PADME,
        )
    revoke_kpk(demo)
    before, rows = files_in(demo), counts(demo, shared.case_id)
    with inst.sessions() as session:
        owner = get_tenant(session, TENANT)
        ctx = Context(inst, session, owner)
        case = session.get(Case, shared.case_id)
        assert case is not None
        with pytest.raises(Refusal) as typed:
            post_reply(ctx, case, "Mohon data tambahan.")
        assert typed.value.code == "no_kpk_key" and "KPK has no current key" in str(typed.value)
        with pytest.raises(Refusal) as uploaded:
            accept_encrypted_reply(ctx, case, workstation_reply)
        assert uploaded.value.code == "reply_refused"
        assert uploaded.value.params["reason"] == "no_kpk_key"
        session.rollback()
        # The pelapor's follow-up: refused before anything of it is read.
        with pytest.raises(IntakeClosed, match="KPK"):
            Intake(ctx, shared.source_id, to_kpk=case.sent_to_kpk)
    assert files_in(demo) == before
    assert counts(demo, shared.case_id) == rows


def test_new_items_follow_kpks_current_keys(demo: DemoInstance, new_kpk_home: Path) -> None:
    # KPK replaces its key after the case was shared: what arrives from then on is readable
    # with the new key (the old one is revoked, the new one current).
    shared = new_report(demo, to_kpk=True)
    revoke_kpk(demo)
    inst = demo.instance
    armored = make_workstation_key(new_kpk_home, "KPK baru <baru@kpk.invalid>")
    with inst.sessions() as session:
        add_recipient_key(session, inst.keyring, get_tenant(session, HUB), armored)
        session.commit()
        owner = get_tenant(session, TENANT)
        ctx = Context(inst, session, owner)
        case = session.get(Case, shared.case_id)
        assert case is not None
        Intake(ctx, shared.source_id, to_kpk=case.sent_to_kpk).follow_up(case, "Bukti baru.")
        post_reply(ctx, case, "Kami terima.")
        message = session.scalars(sa.select(Submission).where(
            Submission.case_id == case.id).order_by(Submission.id.desc())).first()
        reply = session.scalars(sa.select(Reply).where(Reply.case_id == case.id)).one()
        assert message is not None
        paths = {"message": message.store_path, "reply": reply.store_path,
                 "form": case.submissions[0].store_path}

    def read(path: str) -> bytes | None:
        done = subprocess.run(
            ["gpg", "--homedir", str(new_kpk_home), "--batch", "--decrypt"],
            input=inst.store.open(path).read(), capture_output=True, check=False,
        )
        return unframe(done.stdout)[0] if done.returncode == 0 else None

    assert read(paths["message"]) == b"Bukti baru."
    assert read(paths["reply"]) == b"Kami terima."
    # What was stored before the new key existed is not re-encrypted by the server (it cannot).
    assert read(paths["form"]) is None
