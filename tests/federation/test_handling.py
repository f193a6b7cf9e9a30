"""A case handled across installations, with real gpg and real packages: a pelapor files with
member A and shares with KPK; KPK takes the case over on the hub and forwards it to member B
with a package its workstation made; B's reply reaches the pelapor at A, who reads it with the
same codename, and the pelapor's follow-up reaches B, encrypted to B's key. B never receives
A's other cases. (Over loopback here; tests/federation/test_federation_tor.py runs the same
over the private Tor network.)"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine

from crypto.codenames import generate_codename
from crypto.kdf import SourceSecrets
from crypto.keyring import kill_agent
from peluit.demo import make_workstation_key
from source_iface import create_app as create_source_app
from tests.federation.conftest import (
    Federation,
    acting_as,
    add_cases,
    case_by_number,
    client_post,
    decrypt_with,
    forward_to_member,
    forward_with_workstation,
    kpk_context,
    mirrored_cases,
    sealed_request,
)
from tests.source_iface.conftest import Reporter
from tests.support import midday_wib, short_tempdir
from wbs import takeover
from wbs.casework import post_reply
from wbs.context import Context
from wbs.domain import CaseStatus, EventKind
from wbs.federation.exchange import resync, sync
from wbs.forwarding import forward_destinations, handling_chain
from wbs.instance import Instance
from wbs.intake import Intake, ReportAnswers
from wbs.models import Case, Event, FederationRefusal, Reply, Submission, Tenant
from wbs.sources import register_source, source_replies
from wbs.tenants import add_recipient_key, current_keys, get_tenant

ANSWERS = ReportAnswers(
    category="pengadaan", mcp_area="pengadaan_barang_jasa", apa="Mark-up alat kesehatan",
    siapa="PPK Dinas X", kapan="November 2026", dimana="Kemendes", bagaimana="Kontrak fiktif",
    berapa="Rp 1,2 miliar", kronologi="",
)
B_REPLY = "Laporan Anda kini kami tangani di Inspektorat Jenderal Kemenkes."
KPK_REPLY = "KPK menerima laporan Anda dan mengambil alih penanganannya."
FOLLOW_UP = b"Tambahan: nomor kontraknya 44/PPK/XI/2026."


def _tomorrow() -> Any:
    return time_machine.travel(midday_wib() + dt.timedelta(days=1), tick=False)


@dataclass
class Homes:
    a: Path  # A's workstation GnuPG home (A's secret key only)
    b: Path  # B's


@pytest.fixture
def homes(federation: Federation) -> Iterator[Homes]:
    made = []
    for inst, slug in ((federation.a, "kemendes"), (federation.b, "kemenkes")):
        home = short_tempdir("fed-ws-")
        made.append(home)
        armored = make_workstation_key(home, f"{slug} <{slug}@demo.peluit.invalid>")
        with inst.sessions() as session:
            add_recipient_key(session, inst.keyring, get_tenant(session, slug), armored)
            session.commit()
    yield Homes(made[0], made[1])
    for home in made:
        kill_agent(home)
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class Filed:
    number: str
    codename: str
    secrets: SourceSecrets


def _file(inst: Instance, *, to_kpk: bool) -> Filed:
    with inst.sessions() as session:
        ctx = Context(inst, session, get_tenant(session, "kemendes"))
        codename = generate_codename()
        secrets = register_source(ctx, codename)
        intake = Intake(ctx, secrets.source_id, to_kpk=to_kpk)
        return Filed(intake.new_case(ANSWERS).registration_number, codename, secrets)


def test_kpk_forwards_a_members_case_to_another_member_and_the_pelapor_keeps_one_codename(
    federation: Federation, homes: Homes, tmp_path: Path
) -> None:
    hub, a, b = federation.hub, federation.a, federation.b
    post = client_post(hub)
    sync(a, post)
    sync(b, post)  # KPK's keys reach both; B's instansi and its key reach the hub
    filed = _file(a, to_kpk=True)
    other = _file(a, to_kpk=True)  # A's other case: B never sees it
    with _tomorrow():
        sync(a, post)
        mirrored = mirrored_cases(hub, "member-a")
        assert {filed.number, other.number} <= set(mirrored)

        # KPK takes A's case over on the hub: the ciphertext is KPK's to read already.
        with hub.sessions() as session:
            ctx = kpk_context(hub, session)
            mirror = ctx.shared().get(Case, mirrored[filed.number].id)
            assert mirror is not None
            kpk_case = takeover.take_over(ctx, mirror, "kewenangan_kpk")
            kpk_number = kpk_case.registration_number
            post_reply(ctx, kpk_case, KPK_REPLY)
            # B's instansi is a destination for KPK (a member's mirror), never for A's mirror.
            assert "kemenkes" in {t.slug for t in forward_destinations(ctx)}
        b_number = forward_to_member(federation, kpk_number, tmp_path)
        assert b_number.startswith("PLT-KEMENKES-") and int(b_number[-6:]) >= 900_000

        # B receives the case as its own, with the number the hub drew; its workstation reads
        # every item, and nothing of A's other case arrives.
        sync(b, post)
        with b.sessions() as session:
            case_b = case_by_number(session, b_number)
            assert case_b.status == CaseStatus.BARU
            assert case_b.tenant_id == get_tenant(session, "kemenkes").id
            forms = [
                decrypt_with(homes.b, b.store.resolve(item.store_path).read_bytes())
                for item in case_b.submissions if item.kind.value == "form"
            ]
            assert len(forms) == 1 and forms[0] is not None
            assert json.loads(forms[0])["apa"] == "Mark-up alat kesehatan"
            numbers = set(session.scalars(sa.select(Case.registration_number)))
            assert other.number not in numbers and filed.number not in numbers
            assert numbers == {b_number, kpk_number}
            received = session.scalar(sa.select(Event.note).where(
                Event.case_id == case_b.id, Event.kind == EventKind.FORWARD_RECEIVED
            ))
            assert received is not None and kpk_number in received
            # B's investigators reply, encrypted to the pelapor's reply key and B's.
            post_reply(Context(b, session, get_tenant(session, "kemenkes")), case_b, B_REPLY)
        sync(b, post)

        # A learns who handles the case now, and the replies: the pelapor reads them at A.
        sync(a, post)
        with a.sessions() as session:
            ctx = Context(a, session, get_tenant(session, "kemendes"))
            origin = case_by_number(session, filed.number)
            assert origin.status == CaseStatus.DITERUSKAN and origin.taken_over_at is not None
            chain = handling_chain(ctx, origin)
            assert [step.case.registration_number for step in chain] == [kpk_number, b_number]
            assert chain[-1].tenant.slug == "kemenkes"
            # B's instansi is mirrored at A now, but a member forwards to KPK only.
            assert {t.slug for t in forward_destinations(ctx)} == {"kpk"}
            kpk_texts = [text for _reply, text in
                         source_replies(ctx, filed.secrets, origin, chain[0].case)]
            assert KPK_REPLY in kpk_texts
            handler_case_id = chain[-1].case.id
        # The pelapor, at A's source interface with the same codename: who handles the report,
        # its way there, and B's reply; then a follow-up, which goes to B.
        reporter = Reporter(create_source_app(a, testing=True).test_client(), "kemendes")
        assert reporter.login(filed.codename).status_code == 302
        page = reporter.get("/pengaduan").get_data(as_text=True)
        assert B_REPLY in page
        assert "Diambil alih oleh Komisi Pemberantasan Korupsi" in page
        assert "Dilimpahkan kepada Instansi kemenkes" in page
        sent = reporter.send_follow_up(filed.number, FOLLOW_UP.decode())
        assert sent.status_code == 302, sent.get_data(as_text=True)
        with a.sessions() as session:
            # Stored on B's case here, encrypted to B's keys: A's investigators cannot read it.
            stored = session.scalars(sa.select(Submission).where(
                Submission.case_id == handler_case_id
            )).all()
            assert len(stored) == 1
            assert decrypt_with(homes.a, a.store.resolve(stored[0].store_path).read_bytes()) is None
        sync(a, post)
        sync(b, post)
        with b.sessions() as session:
            case_b = case_by_number(session, b_number)
            texts = [
                decrypt_with(homes.b, b.store.resolve(item.store_path).read_bytes())
                for item in case_b.submissions if item.kind.value == "message"
            ]
            assert FOLLOW_UP in texts
            assert case_b.unread
        # Nothing went back where it came from, and nothing is left staged.
        for inst in (hub, a, b):
            folder = inst.config.instance_dir / "federation" / "incoming"
            assert not folder.exists() or list(folder.iterdir()) == []
        assert sync(a, post).sent == 0 and sync(b, post).sent == 0
        # The hub holds B's case as B does: the package's copy of KPK's reply and B's reply,
        # each once (B's reply did not come back to B, nor the package's items).
        counts = []
        for inst in (hub, b):
            with inst.sessions() as session:
                counts.append(session.scalar(sa.select(sa.func.count()).select_from(Reply).where(
                    Reply.case_id == case_by_number(session, b_number).id
                )))
        assert counts == [2, 2]
        with hub.sessions() as session:
            assert list(session.scalars(sa.select(FederationRefusal.reason))) == []

        # The hub starts its links over (restored, or by its operator): everything is sent
        # again both ways, and nothing is stored twice at A, at B or on the hub.
        before = _all_items(hub, a, b)
        resync(hub)
        for member in (b, a, b, a):
            assert sync(member, post).pending == 0
        assert _all_items(hub, a, b) == before
        for inst in (hub, a, b):
            with inst.sessions() as session:
                assert list(session.scalars(sa.select(FederationRefusal.reason))) == []
    with hub.sessions() as session:
        assert session.scalar(sa.select(Tenant.id).where(Tenant.slug == "kemenkes")) is not None


def _all_items(*installations: Instance) -> list[tuple[int, int, int]]:
    """Per installation: its cases, submissions and replies."""
    counts = []
    for inst in installations:
        with inst.sessions() as session:
            counts.append(tuple(
                session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
                for model in (Case, Submission, Reply)
            ))
    return counts


def _send(federation: Federation, member: Instance, name: str, body: dict[str, Any]) -> None:
    """A signed message of ``member`` carrying one item part, past its queue: what a member
    (or its stolen key) could send."""
    from federation_iface import create_app
    from wbs.federation import metadata
    from wbs.federation.wire import Message
    from wbs.models import FederationPeer

    with federation.hub.sessions() as session:
        peer = session.scalar(sa.select(FederationPeer).where(FederationPeer.name == name))
        assert peer is not None
        seq = peer.received_seq + 1
    sealed = sealed_request(
        member, federation.hub, (Message(seq=seq, kind=metadata.SHARED_ITEM, body=body),)
    )
    response = create_app(federation.hub, testing=True).test_client().post(
        "/federation/v1/exchange", data=sealed
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def _item(inst: Instance, number: str, kind: str, recipients: list[str]) -> dict[str, Any]:
    import base64
    import hashlib

    from crypto.encrypt import encrypt_bytes

    ciphertext = encrypt_bytes(inst.keyring, recipients, b"isi")
    return {
        "number": number, "item": hashlib.sha256(ciphertext).hexdigest()[:32], "kind": kind,
        "framing": "none", "created": "2026-12-01", "size": len(ciphertext),
        "sha256": hashlib.sha256(ciphertext).hexdigest(), "part": 0, "parts": 1,
        "data": base64.b64encode(ciphertext).decode(),
    }


def test_members_add_items_only_where_they_may_and_for_whom_they_are(
    federation: Federation, homes: Homes, tmp_path: Path
) -> None:
    from wbs.tenants import current_recipients, kpk_recipients

    hub, a, b = federation.hub, federation.a, federation.b
    post = client_post(hub)
    sync(a, post)
    sync(b, post)
    filed = _file(a, to_kpk=True)
    with _tomorrow():
        sync(a, post)
        with hub.sessions() as session:
            ctx = kpk_context(hub, session)
            mirror = ctx.shared().get(Case, mirrored_cases(hub, "member-a")[filed.number].id)
            assert mirror is not None
            kpk_number = takeover.take_over(ctx, mirror, "kewenangan_kpk").registration_number
        b_number = forward_to_member(federation, kpk_number, tmp_path)
        sync(b, post)
        with a.sessions() as session:
            a_keys = current_recipients(session, get_tenant(session, "kemendes"))
            kpk_keys = kpk_recipients(session)
        with b.sessions() as session:
            b_keys = current_recipients(session, get_tenant(session, "kemenkes"))
        with hub.sessions() as session:
            before = session.scalar(sa.select(sa.func.count()).select_from(Submission))
        # A: a follow-up for the case that handles its case, but readable by A only; a reply
        # on KPK's case (only follow-ups come from A).
        _send(federation, a, "member-a", _item(a, b_number, "message", a_keys))
        _send(federation, a, "member-a", _item(a, kpk_number, "reply", kpk_keys))
        # B: a follow-up on the case forwarded to it (only replies come from B), and a reply
        # the pelapor could not read.
        _send(federation, b, "member-b", _item(b, b_number, "message", b_keys))
        _send(federation, b, "member-b", _item(b, b_number, "reply", b_keys))
        with hub.sessions() as session:
            reasons = list(session.scalars(
                sa.select(FederationRefusal.reason).order_by(FederationRefusal.id)
            ))
            after = session.scalar(sa.select(sa.func.count()).select_from(Submission))
            replies = session.scalar(sa.select(sa.func.count()).select_from(Reply).where(
                Reply.case_id == case_by_number(session, b_number).id
            ))
        assert reasons == ["not_for_handler", "unknown_case", "not_allowed", "not_for_pelapor"]
        assert after == before and replies == 0
        # A member forwards to KPK (its mirror here) and to no instansi of the hub's, and a
        # revoked member's instansi is no destination for KPK.
        with a.sessions() as session:
            ctx = Context(a, session, get_tenant(session, "kemendes"))
            assert {t.slug for t in forward_destinations(ctx)} == {"kpk"}
    from wbs.federation.peers import revoke_member

    revoke_member(hub, "member-b")
    with hub.sessions() as session:
        assert "kemenkes" not in {t.slug for t in forward_destinations(kpk_context(hub, session))}


def test_a_member_forwards_a_case_to_kpk_and_kpk_hands_it_back(
    federation: Federation, homes: Homes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pelimpahan across installations in both directions: A's investigators forward a case
    to KPK with their workstation's package (as in one deployment); KPK reads it, replies,
    and hands it back to A; the pelapor follows it all with one codename at A. The number A
    drew for KPK's case is taken on the hub (another member drew it first), and each item
    travels in an envelope of its own (the case_out in a later one than its origin)."""
    from wbs.casework import Refusal
    from wbs.federation import metadata

    monkeypatch.setattr(metadata, "ENVELOPE_DATA", metadata.CHUNK)
    hub, a = federation.hub, federation.a
    post = client_post(hub)
    sync(a, post)
    filed = _file(a, to_kpk=False)
    shared = _file(a, to_kpk=True)
    workstation = tmp_path / "ws-a"
    shutil.copytree(homes.a, workstation / "gnupg", ignore=shutil.ignore_patterns("S.*"))

    def a_account(session: Any) -> Context:
        return acting_as(a, session, "kemendes")

    with _tomorrow():
        with a.sessions() as session:
            # KPK is a destination for a member's instansi, as it is in one deployment.
            assert "kpk" in {t.slug for t in forward_destinations(a_account(session))}
        # A case shared with KPK already is KPK's to take over, not to be sent a package of.
        with pytest.raises(Refusal) as refused:
            forward_with_workstation(a, a_account, shared.number, "kpk", workstation, tmp_path)
        assert refused.value.code == "forward_shared"
        drawn = forward_with_workstation(
            a, a_account, filed.number, "kpk", workstation, tmp_path
        )
        assert drawn.startswith("PLT-KPK-")
        with a.sessions() as session:
            package = case_by_number(session, drawn).intake_package
        with hub.sessions() as session:
            [taken] = add_cases(hub, "kpk", 1)
            session.execute(sa.update(Case).where(Case.registration_number == taken)
                            .values(registration_number=drawn))
            session.commit()
        sync(a, post)
        with hub.sessions() as session:
            kpk_case = session.scalar(sa.select(Case).where(Case.intake_package == package))
            assert kpk_case is not None and kpk_case.registration_number != drawn
            kpk_number = kpk_case.registration_number
        with a.sessions() as session:
            # A keeps the number the hub gave KPK's case (the handling chain told it).
            assert case_by_number(session, kpk_number).intake_package == package
        with hub.sessions() as session:
            kpk_case = case_by_number(session, kpk_number)
            assert kpk_case.tenant_id == get_tenant(session, "kpk").id
            forms = [
                decrypt_with(federation.demo.workstation,
                             hub.store.resolve(item.store_path).read_bytes())
                for item in kpk_case.submissions if item.kind.value == "form"
            ]
            assert len(forms) == 1 and forms[0] is not None
            assert json.loads(forms[0])["apa"] == "Mark-up alat kesehatan"
            mirror = case_by_number(session, filed.number)
            assert mirror.linked_to_case_id == kpk_case.id
            post_reply(kpk_context(hub, session), kpk_case, KPK_REPLY)
        sync(a, post)
        with a.sessions() as session:
            ctx = Context(a, session, get_tenant(session, "kemendes"))
            origin = case_by_number(session, filed.number)
            chain = handling_chain(ctx, origin)
            assert [step.case.registration_number for step in chain] == [kpk_number]
            texts = [t for _r, t in source_replies(ctx, filed.secrets, origin, chain[0].case)]
            assert texts == [KPK_REPLY]

        # KPK hands it back to A's instansi: a case of A's own again, at the end of the chain.
        back = forward_to_member(federation, kpk_number, tmp_path, to="kemendes")
        sync(a, post)
        with a.sessions() as session:
            ctx = Context(a, session, get_tenant(session, "kemendes"))
            origin = case_by_number(session, filed.number)
            chain = handling_chain(ctx, origin)
            assert [step.case.registration_number for step in chain] == [kpk_number, back]
            returned = chain[-1].case
            assert returned.tenant_id == ctx.tenant.id and returned.status == CaseStatus.BARU
            # A's workstation reads what came back (re-encrypted to A's keys by KPK's).
            forms = [
                decrypt_with(homes.a, a.store.resolve(item.store_path).read_bytes())
                for item in returned.submissions if item.kind.value == "form"
            ]
            assert len(forms) == 1 and forms[0] is not None
            post_reply(ctx, returned, B_REPLY)
        reporter = Reporter(create_source_app(a, testing=True).test_client(), "kemendes")
        assert reporter.login(filed.codename).status_code == 302
        page = reporter.get("/pengaduan").get_data(as_text=True)
        assert B_REPLY in page and KPK_REPLY in page
        assert "Dilimpahkan kepada Komisi Pemberantasan Korupsi" in page
        assert reporter.send_follow_up(filed.number, FOLLOW_UP.decode()).status_code == 302
        with a.sessions() as session:
            returned = case_by_number(session, back)
            assert [s.kind.value for s in returned.submissions].count("message") == 1
        sync(a, post)
        # A's reply went to the hub (KPK's monitoring of the case) and nowhere back; the
        # pelapor's follow-up stayed at A, which handles the case.
        assert sync(a, post).sent == 0
        with hub.sessions() as session:
            assert list(session.scalars(sa.select(FederationRefusal.reason))) == []
        with a.sessions() as session:
            assert list(session.scalars(sa.select(FederationRefusal.reason))) == []
            kpk = get_tenant(session, "kpk")
            kpk_keys = [key.fingerprint for key in current_keys(session, kpk)]
        # An item A sent under the number it drew (before it learnt the hub's) reaches KPK's
        # case by its package.
        _send(federation, a, "member-a",
              {**_item(a, drawn, "message", kpk_keys), "package": package})
        with hub.sessions() as session:
            assert [s.kind.value for s in case_by_number(session, kpk_number).submissions
                    ].count("message") == 1
            assert list(session.scalars(sa.select(FederationRefusal.reason))) == []


def test_the_hub_takes_no_case_of_a_member_it_was_not_given(
    federation: Federation, homes: Homes
) -> None:
    """What a hub's message may do to a member's cases (a hub server that is compromised,
    or wrong): a case the member neither shared with KPK nor forwarded to it is never marked
    handled elsewhere; a chain must start at KPK; the member's own cases are never linked to
    one another. Refused, and nothing changes."""
    from wbs.federation.handling import HANDLED, HubWriter
    from wbs.federation.metadata import MessageRefused
    from wbs.federation.wire import Message
    from wbs.models import FederationPeer

    a = federation.a
    sync(a, client_post(federation.hub))
    private = _file(a, to_kpk=False).number
    shared = _file(a, to_kpk=True).number
    other = _file(a, to_kpk=False).number
    kpk = {"tenant": "kpk", "name": "KPK", "kind": "hub", "keys": [], "status": "baru",
           "number": "PLT-KPK-2026-123456", "shared": False, "how": "taken_over"}
    stranger = {**kpk, "tenant": "kementerian-x", "name": "Kementerian X",
                "kind": "kementerian", "number": "PLT-KEMENTERIAN-X-2026-000001"}
    own = {**stranger, "tenant": "kemendes", "name": "Instansi kemendes", "number": other}
    with a.sessions() as session:
        peer = session.scalar(sa.select(FederationPeer))
        assert peer is not None
        writer = HubWriter(a, session, peer)

        def refused(number: str, chain: list[dict[str, Any]]) -> str:
            with pytest.raises(MessageRefused) as caught, session.begin_nested():
                writer.apply(Message(seq=1, kind=HANDLED, body={"number": number,
                                                                 "chain": chain}))
            return caught.value.reason

        assert refused(private, [kpk]) == "not_allowed"
        assert refused(shared, [stranger]) == "not_allowed"
        assert refused(shared, [kpk, own]) == "case_conflict"
        # A chain that comes back to a case it passed: refused.
        assert refused(shared, [kpk, {**kpk, "number": "PLT-KPK-2026-654321"}, kpk]) == (
            "case_conflict"
        )
        session.rollback()
    with a.sessions() as session:
        for number in (private, shared, other):
            case = case_by_number(session, number)
            assert case.linked_to_case_id is None and case.linked_from_case_id is None
            assert case.status == CaseStatus.BARU and case.taken_over_at is None
        assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 3
