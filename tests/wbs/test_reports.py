"""The pelapor's side of a case, with real gpg, a real store and both databases."""

import datetime as dt
import os
import subprocess

import pytest
import sqlalchemy as sa
import time_machine

from crypto.codenames import generate_codename
from crypto.errors import EncryptionError
from crypto.padding import FRAMING_NONE, FRAMING_PADME, Trailer, unframe
from tests.conftest import DemoInstance
from tests.support import wib_today
from wbs.casework import Refusal, change_status, post_reply
from wbs.context import Context
from wbs.domain import CaseStatus, EventKind, SubmissionKind
from wbs.intake import Intake, IntakeClosed, ReportAnswers, ReportError
from wbs.models import Case, Event, Reply, Source, Submission
from wbs.sources import (
    authenticate_source,
    case_history,
    delete_reply,
    purge_abandoned_sources,
    register_source,
    reply_token,
    source_case,
    source_cases,
    source_replies,
)
from wbs.tenants import get_tenant, revoke_recipient_key

MARKER = "PENANDA-RAHASIA-7f3a"


def answers(**changes: str) -> ReportAnswers:
    fields = dict(
        category="suap_menyuap", mcp_area="pengadaan_barang_jasa",
        apa=f"Suap dalam pengadaan alat kesehatan {MARKER}", siapa="Kepala bidang X",
        kapan="Maret 2026", dimana="Dinas Kesehatan", bagaimana="Fee 10% dari nilai kontrak",
        berapa="Rp 500 juta", kronologi="...",
    )
    fields.update(changes)
    return ReportAnswers(**fields)  # type: ignore[arg-type]


def _packets(demo: DemoInstance, ciphertext: bytes) -> str:
    return subprocess.run(
        ["gpg", "--homedir", str(demo.workstation), "--batch", "--list-packets"],
        input=ciphertext, capture_output=True, check=False,
    ).stdout.decode(errors="replace")


def test_register_and_authenticate(demo_any_db: DemoInstance) -> None:
    inst = demo_any_db.instance
    codename = generate_codename()
    with inst.sessions() as session:
        sumsel, kpk = get_tenant(session, "pemprov-sumsel"), get_tenant(session, "kpk")
        secrets = register_source(Context(inst, session, sumsel), codename)
        source = session.get(Source, secrets.source_id)
        assert source is not None and source.tenant_id == sumsel.id
        # Nothing of the codename is stored: the row holds the derived id and a LOCKED key.
        row = " ".join(str(v) for v in session.execute(sa.select(Source.__table__)).one())
        assert codename not in row and secrets.reply_passphrase not in row
        assert authenticate_source(Context(inst, session, sumsel), codename) == secrets
        assert authenticate_source(Context(inst, session, sumsel), generate_codename()) is None
        # A codename of one tenant opens nothing at another.
        assert authenticate_source(Context(inst, session, kpk), codename) is None


def test_report_with_files_is_ciphertext_readable_on_the_workstation(
    demo_any_db: DemoInstance,
) -> None:
    demo = demo_any_db
    inst = demo.instance
    evidence = os.urandom(1_500_000) + MARKER.encode()
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        secrets = register_source(Context(inst, session, tenant), generate_codename())
        intake = Intake(Context(inst, session, tenant), secrets.source_id, to_kpk=False)
        sink = intake.open_file("file", "kontrak 2026.pdf", {})
        for start in range(0, len(evidence), 65536):
            sink.write(evidence[start : start + 65536])
        sink.close()
        case = intake.new_case(answers())

        assert case.status == CaseStatus.BARU and case.registration_number.startswith("PLT-")
        assert case.first_response_due > wib_today()
        assert case.closure_due is not None and case.closure_due > case.first_response_due
        kinds = [s.kind for s in case.submissions]
        assert kinds == [SubmissionKind.FORM, SubmissionKind.FILE]
        ctx = Context(inst, session, tenant)
        assert [e.kind for e in case_history(ctx, case)] == [EventKind.CASE_CREATED]

        form_ct = inst.store.open(case.submissions[0].store_path).read()
        file_ct = inst.store.open(case.submissions[1].store_path).read()
        assert [s.framing for s in case.submissions] == [FRAMING_PADME] * 2
    assert MARKER.encode() not in form_ct + file_ct
    assert MARKER in demo.decrypt(form_ct).decode()
    assert demo.decrypt(file_ct) == evidence
    # The name travels in the padding frame; the literal packet carries none (its length
    # would show in the ciphertext's size).
    assert 'name=""' in _packets(demo, file_ct)
    framed = demo.decrypt(file_ct, framing=FRAMING_NONE)
    assert unframe(framed)[1] == Trailer(len(evidence), "kontrak 2026.pdf")
    # Nothing under the instance folder holds the marker in plaintext.
    for path in inst.config.instance_dir.rglob("*"):
        if path.is_file():
            assert MARKER.encode() not in path.read_bytes(), path


def test_report_to_kpk_is_readable_by_kpk(demo: DemoInstance) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        secrets = register_source(Context(inst, session, tenant), generate_codename())
        intake = Intake(Context(inst, session, tenant), secrets.source_id, to_kpk=True)
        case = intake.new_case(answers())
        assert case.sent_to_kpk
        ct = inst.store.open(case.submissions[0].store_path).read()
    # The demo workstation holds both tenants' keys; check both are recipients.
    packets = _packets(demo, ct)
    assert packets.count(":pubkey enc packet:") == 2


def test_intake_fails_closed_without_keys(demo: DemoInstance) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        secrets = register_source(Context(inst, session, tenant), generate_codename())
        for key in list(tenant_keys(session, tenant)):
            revoke_recipient_key(session, tenant, key)
        session.commit()
        with pytest.raises(IntakeClosed):
            Intake(Context(inst, session, tenant), secrets.source_id, to_kpk=False)


def tenant_keys(session, tenant):  # type: ignore[no-untyped-def]
    from wbs.tenants import current_recipients

    return current_recipients(session, tenant)


def test_failed_case_leaves_nothing(demo: DemoInstance) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        secrets = register_source(Context(inst, session, tenant), generate_codename())
        intake = Intake(Context(inst, session, tenant), secrets.source_id, to_kpk=False)
        sink = intake.open_file("file", "a.pdf", {})
        sink.write(b"evidence")
        sink.close()

        def database_gone(*_: object) -> None:
            raise RuntimeError("the database went away at commit")

        sa.event.listen(session, "before_commit", database_gone)
        with pytest.raises(RuntimeError):
            intake.new_case(answers())
        sa.event.remove(session, "before_commit", database_gone)
        assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(Submission)) == 0
    assert list(inst.store.items()) == []


def test_aborted_upload_leaves_nothing(demo: DemoInstance) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        secrets = register_source(Context(inst, session, tenant), generate_codename())
        intake = Intake(Context(inst, session, tenant), secrets.source_id, to_kpk=False)
        done = intake.open_file("file", "a.pdf", {})
        done.write(b"complete file")
        done.close()
        half = intake.open_file("file", "b.pdf", {})
        half.write(b"half a file")
        intake.abort()  # the connection dropped during the second file
    assert [p for p in inst.store.root.rglob("*") if p.is_file()] == []


def test_follow_up_replies_and_deletion(demo: DemoInstance) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        secrets = register_source(Context(inst, session, tenant), generate_codename())
        ctx = Context(inst, session, tenant)
        case = Intake(ctx, secrets.source_id, to_kpk=False).new_case(answers())

        intake = Intake(Context(inst, session, tenant), secrets.source_id, to_kpk=False)
        intake.follow_up(case, f"Tambahan: {MARKER}")
        assert [s.kind for s in case.submissions][-1] == SubmissionKind.MESSAGE
        msg_ct = inst.store.open(case.submissions[-1].store_path).read()
        assert MARKER in demo.decrypt(msg_ct).decode()

        with pytest.raises(ReportError):
            ctx = Context(inst, session, tenant)
            Intake(ctx, secrets.source_id, to_kpk=False).follow_up(case, None)

        ctx = Context(inst, session, tenant)
        # Klarifikasi: the question goes to the pelapor as an encrypted reply.
        change_status(ctx, case, CaseStatus.KLARIFIKASI, "Mohon kirim salinan kontrak.")
        with pytest.raises(Refusal) as refused:
            change_status(ctx, case, CaseStatus.BARU)
        assert refused.value.code == "transition_refused"
        reply = case.replies[-1]
        # The tenant's key can read the reply too: the case history stays whole.
        assert demo.decrypt(inst.store.open(reply.store_path).read()) == (
            b"Mohon kirim salinan kontrak."
        )
        ctx = Context(inst, session, tenant)
        assert not delete_reply(ctx, secrets.source_id, reply_token(ctx, reply))  # unread

        shown = source_replies(Context(inst, session, tenant), secrets, case)
        assert [text for _, text in shown] == ["Mohon kirim salinan kontrak."]
        # The pelapor's own follow-up is part of what they follow, between the status changes.
        history = case_history(Context(inst, session, tenant), case)
        assert [(e.kind, e.to_status) for e in history] == [
            (EventKind.CASE_CREATED, CaseStatus.BARU),
            (EventKind.SUBMISSION_ADDED, None),
            (EventKind.STATUS_CHANGED, CaseStatus.KLARIFIKASI),
        ]
        path = reply.store_path
        ctx = Context(inst, session, tenant)
        assert delete_reply(ctx, secrets.source_id, reply_token(ctx, reply))
        assert not inst.store.exists(path)
        assert session.scalar(sa.select(sa.func.count()).select_from(Reply)) == 0
        kinds = session.scalars(sa.select(Event.kind).order_by(Event.id)).all()
        assert EventKind.REPLY_DELETED in kinds


def test_cases_are_the_sources_own(demo: DemoInstance) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        alice = register_source(Context(inst, session, tenant), generate_codename())
        bob = register_source(Context(inst, session, tenant), generate_codename())
        ctx = Context(inst, session, tenant)
        case = Intake(ctx, alice.source_id, to_kpk=False).new_case(answers())
        assert source_cases(Context(inst, session, tenant), alice.source_id) == [case]
        assert source_cases(Context(inst, session, tenant), bob.source_id) == []
        number = case.registration_number
        assert source_case(Context(inst, session, tenant), bob.source_id, number) is None
        with pytest.raises(ReportError):
            Intake(Context(inst, session, tenant), bob.source_id, to_kpk=False).follow_up(case, "x")
        with pytest.raises(ReportError):
            source_replies(Context(inst, session, tenant), bob, case)
        kpk = get_tenant(session, "kpk")
        assert source_case(Context(inst, session, kpk), alice.source_id, number) is None


def test_a_sink_whose_encryption_cannot_start_leaves_nothing(demo: DemoInstance) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        secrets = register_source(Context(inst, session, tenant), generate_codename())
        intake = Intake(Context(inst, session, tenant), secrets.source_id, to_kpk=False)
        # A recipient that vanished from the keyring since the intake began.
        intake.recipients = ["0" * 40]
        with pytest.raises(EncryptionError):
            intake.open_file("file", "a.pdf", {})
    assert [p for p in inst.store.root.rglob("*") if p.is_file()] == []


def test_the_pelapors_own_actions_are_logged_by_day_only(demo: DemoInstance) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        secrets = register_source(Context(inst, session, tenant), generate_codename())
        ctx = Context(inst, session, tenant)
        case = Intake(ctx, secrets.source_id, to_kpk=False).new_case(answers())
        reply = post_reply(Context(inst, session, tenant), case, "Terima kasih.")
        source_replies(Context(inst, session, tenant), secrets, case)
        ctx = Context(inst, session, tenant)
        assert delete_reply(ctx, secrets.source_id, reply_token(ctx, reply))
        events = {e.kind: e.created_at for e in session.scalars(sa.select(Event))}
    for kind in (EventKind.CASE_CREATED, EventKind.REPLY_DELETED):
        assert events[kind].time() == dt.time(0), kind


def test_the_first_reply_is_the_first_response(demo: DemoInstance) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        secrets = register_source(Context(inst, session, tenant), generate_codename())
        ctx = Context(inst, session, tenant)
        case = Intake(ctx, secrets.source_id, to_kpk=False).new_case(answers())
        assert case.first_response_at is None
        post_reply(Context(inst, session, tenant), case, "Terima kasih, sedang kami pelajari.")
        first = case.first_response_at
        assert first is not None
        post_reply(Context(inst, session, tenant), case, "Balasan kedua.")
        change_status(Context(inst, session, tenant), case, CaseStatus.VERIFIKASI)
        assert case.first_response_at == first


def test_a_codename_that_never_reported_is_forgotten_after_two_weeks(
    demo: DemoInstance,
) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        ctx = Context(inst, session, get_tenant(session, "pemprov-sumsel"))
        with time_machine.travel(dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)) as clock:
            idle, active = generate_codename(), generate_codename()
            register_source(ctx, idle)
            reporter = register_source(ctx, active)
            Intake(ctx, reporter.source_id, to_kpk=False).new_case(answers())
            clock.move_to(dt.datetime(2026, 3, 15, 3, 0, tzinfo=dt.UTC))  # 13 days on
            assert purge_abandoned_sources(session) == 0
            assert authenticate_source(ctx, idle) is not None
            clock.move_to(dt.datetime(2026, 3, 17, 3, 0, tzinfo=dt.UTC))  # 15 days on
            assert purge_abandoned_sources(session) == 1
            # Forgotten like a codename never drawn; the one with a report stays.
            assert authenticate_source(ctx, idle) is None
            assert authenticate_source(ctx, active) == reporter
