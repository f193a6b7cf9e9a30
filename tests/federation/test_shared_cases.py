"""A case a member shares with KPK travels to the hub as it is stored: its ciphertext, which
the share encrypted to KPK's keys (sent to the member over the link). KPK reads it on its
workstation; the hub checked it without decrypting. Real gpg throughout."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine

from crypto.codenames import generate_codename
from crypto.encrypt import encrypt_bytes
from crypto.padding import FRAMING_PADME
from tests.federation.conftest import Federation, client_post, mirrored_cases, sealed_request
from tests.support import midday_wib
from wbs.context import Context
from wbs.federation import metadata
from wbs.federation.exchange import sync
from wbs.federation.wire import Message
from wbs.instance import Instance
from wbs.intake import Intake, ReportAnswers
from wbs.models import Case, FederationRefusal, Submission
from wbs.sources import register_source
from wbs.tenancy import SharedScope
from wbs.tenants import current_recipients, get_tenant, hub_tenant

ANSWERS = ReportAnswers(
    category="suap_menyuap", mcp_area="perizinan", apa="Setoran izin tambang",
    siapa="Kabid X", kapan="Oktober 2026", dimana="Kemendes", bagaimana="Tunai",
    berapa="Rp 40 juta", kronologi="",
)
# Larger than two parts of the link: the item travels in three messages.
EVIDENCE = secrets.token_bytes(2 * metadata.CHUNK + 12_345)


def _file(inst: Instance, *, to_kpk: bool, evidence: bytes | None = None) -> str:
    with inst.sessions() as session:
        owner = get_tenant(session, "kemendes")
        ctx = Context(inst, session, owner)
        source = register_source(ctx, generate_codename())
        intake = Intake(ctx, source.source_id, to_kpk=to_kpk)
        if evidence is not None:
            sink = intake.open_file("file", "bukti.bin")
            for start in range(0, len(evidence), 1 << 20):
                sink.write(evidence[start : start + (1 << 20)])
            sink.close()
        return intake.new_case(ANSWERS).registration_number


def _tomorrow() -> Any:
    return time_machine.travel(midday_wib() + dt.timedelta(days=1), tick=False)


def _read(federation: Federation, path: str) -> bytes:
    ciphertext = federation.hub.store.resolve(path).read_bytes()
    return federation.demo.decrypt(ciphertext, FRAMING_PADME)


@pytest.mark.usefixtures("a_workstation")
def test_a_shared_case_reaches_kpk_and_kpk_reads_it(federation: Federation) -> None:
    post = client_post(federation.hub)
    sync(federation.a, post)  # KPK's keys reach A first: a report to KPK needs them
    shared = _file(federation.a, to_kpk=True, evidence=EVIDENCE)
    kept = _file(federation.a, to_kpk=False)
    # Filed today, they travel once the day is over (the hub learns the day, not the hour).
    assert mirrored_cases(federation.hub, "member-a") == {}
    with _tomorrow():
        result = sync(federation.a, post)
    assert result.pending == 0
    mirrored = mirrored_cases(federation.hub, "member-a")
    assert mirrored[shared].sent_to_kpk and not mirrored[kept].sent_to_kpk
    with federation.hub.sessions() as session:
        hub = hub_tenant(session)
        assert hub is not None
        # In KPK's copy, as a local case shared with KPK would be; the other is not.
        visible = set(session.scalars(
            SharedScope(session, hub).select(Case).with_only_columns(Case.registration_number)
        ))
        items = {
            row.kind.value: row.store_path
            for row in session.scalars(
                sa.select(Submission).where(Submission.case_id == mirrored[shared].id)
            )
        }
        unshared = session.scalar(
            sa.select(sa.func.count()).where(Submission.case_id == mirrored[kept].id)
        )
    assert shared in visible and kept not in visible
    assert unshared == 0
    assert set(items) == {"form", "file"}
    # KPK's workstation decrypts what A's pelapor sent.
    form = json.loads(_read(federation, items["form"]))
    assert form["apa"] == "Setoran izin tambang"
    assert _read(federation, items["file"]) == EVIDENCE
    # Nothing is left in the hub's staging folder, and a second sync sends nothing again.
    assert list((federation.hub.config.instance_dir / "federation" / "incoming").iterdir()) == []
    with _tomorrow():
        assert sync(federation.a, post).sent == 0


@pytest.mark.usefixtures("a_workstation")
def test_an_item_kpk_cannot_read_is_refused_and_not_stored(federation: Federation) -> None:
    post = client_post(federation.hub)
    number = _file(federation.a, to_kpk=False)
    with _tomorrow():
        sync(federation.a, post)
    with federation.a.sessions() as session:
        recipients = current_recipients(session, get_tenant(session, "kemendes"))
    # A message signed by A, claiming an item of its case, encrypted to A's key only.
    ciphertext = encrypt_bytes(federation.a.keyring, recipients, b"bukan untuk KPK")
    import base64
    import hashlib

    body = {
        "number": number, "item": "ab" * 16, "kind": "file", "framing": "none",
        "created": "2026-12-01", "size": len(ciphertext),
        "sha256": hashlib.sha256(ciphertext).hexdigest(), "part": 0, "parts": 1,
        "data": base64.b64encode(ciphertext).decode(),
    }
    with federation.hub.sessions() as session:
        from wbs.models import FederationPeer

        peer = session.scalar(sa.select(FederationPeer).where(FederationPeer.name == "member-a"))
        assert peer is not None
        next_seq = peer.received_seq + 1
    sealed = sealed_request(
        federation.a, federation.hub,
        (Message(seq=next_seq, kind=metadata.SHARED_ITEM, body=body),),
    )
    from federation_iface import create_app

    response = create_app(federation.hub, testing=True).test_client().post(
        "/federation/v1/exchange", data=sealed
    )
    assert response.status_code == 200
    with federation.hub.sessions() as session:
        reasons = list(session.scalars(sa.select(FederationRefusal.reason)))
        stored = session.scalar(sa.select(sa.func.count()).select_from(Submission))
    assert reasons == ["not_for_kpk"]
    assert stored == 0
    assert list(federation.hub.store.items()) == []
