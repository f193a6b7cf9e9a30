"""Pengambilalihan and permintaan pelimpahan, with real gpg and real ciphertext.

A reporter files at A (pemprov-sumsel) and shares the report with KPK. KPK takes it over: its
linked case holds byte-for-byte copies of A's stored ciphertext, which a GnuPG home holding
KPK's key only decrypts; the reporter, with the same codename at A's site, reads that KPK
handles the report and KPK's reply, and their follow-up is encrypted to KPK and not to A. A
keeps read-only metadata. KPK may instead ask A to forward the case; A declines with a reason
or forwards it, and both logs say so. Every refusal stores nothing and changes neither case.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from flask_babel import force_locale

import tests.journalist_iface.test_forwarding as forwarding_tests
from crypto.keyring import kill_agent
from journalist_iface import refusals
from tests.journalist_iface.conftest import (
    HUB,
    TENANT,
    Demo,
    logged_in,
    make_account,
    make_report,
)
from tests.journalist_iface.test_api import api_login
from tests.journalist_iface.test_forwarding import (
    FILE,
    World,
    decrypt,
    import_bundle,
    key_list,
    make_package,
    upload,
    workstation,
)
from tests.source_iface.conftest import GOOD_ANSWERS, Reporter
from tests.workstation.helpers import run
from wbs import coordination, forwarding, takeover
from wbs.casework import Refusal, post_reply
from wbs.context import Context
from wbs.domain import (
    CaseStatus,
    DeclineReason,
    EventKind,
    RequestReason,
    Role,
    SubmissionKind,
    TakeoverReason,
)
from wbs.intake import Intake
from wbs.models import Base, Case, Event, Investigator, Reply, Source, Submission
from wbs.monitoring import dashboard
from wbs.takeover import take_over
from wbs.tenants import get_tenant
from wbs.workdays import local_date

# The module's fixture of tenants B and C and one GnuPG home per tenant (test_forwarding.py).
world = forwarding_tests.world

C = forwarding_tests.C
A_REPLY = "Terima kasih, laporan Anda kami verifikasi."
KPK_REPLY = "KPK kini menangani laporan Anda; mohon simpan bukti aslinya."
MESSAGE = "Saya punya foto serah terima uang."
FOLLOW_UP = "Tambahan untuk KPK: rekening penerima atas nama ipar kepala seksi."
REASON = "kewenangan_kpk"
REASON_LABEL = TakeoverReason.KEWENANGAN_KPK.label


@dataclass
class Filed:
    case_id: int
    number: str
    codename: str


def file_shared(demo: Demo, world: World) -> Filed:
    """A report filed at A through the source interface and shared with KPK (the reporter's
    choice), with a file, a reply of A and a follow-up: every kind of item."""
    reporter = Reporter(world.source_app.test_client(), TENANT)
    codename = reporter.new_codename()
    sent = reporter.send_report(GOOD_ANSWERS, [("kuitansi.pdf", FILE)], extra=[("kpk", "1")])
    assert sent.status_code == 302, sent.get_data(as_text=True)
    number = sent.location.rsplit("/", 1)[1]
    with demo.inst.sessions() as session:
        case = session.scalar(sa.select(Case).where(Case.registration_number == number))
        assert case is not None and case.sent_to_kpk
        post_reply(Context(demo.inst, session, get_tenant(session, TENANT)), case, A_REPLY)
        case_id = case.id
    assert reporter.send_follow_up(number, MESSAGE).status_code == 302
    return Filed(case_id, number, codename)


def snapshot(demo: Demo, case_id: int) -> tuple[Any, ...]:
    """Everything a takeover or a request could change: rows of every kind, the log, the
    stored files, the case's status, link and coordination columns."""
    with demo.inst.sessions() as session:
        counts = [
            session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Case, Submission, Reply, Source)
        ]
        counts.append(session.scalar(
            sa.select(sa.func.count(Event.id)).where(Event.case_id.isnot(None))
        ))
        case = session.get(Case, case_id)
        assert case is not None
        state = (case.status, case.linked_to_case_id, case.taken_over_at,
                 case.forward_requested_at, case.category)
    files = sorted(p.name for p in demo.inst.store.root.rglob("*") if p.is_file())
    return counts, state, files


def events(demo: Demo, case_id: int, tenant: str) -> list[Event]:
    with demo.inst.sessions() as session:
        tenant_id = get_tenant(session, tenant).id
        found = list(session.scalars(
            sa.select(Event).where(Event.case_id == case_id, Event.tenant_id == tenant_id)
            .order_by(Event.id)
        ))
        session.expunge_all()
        return found


def kpk_name(demo: Demo) -> str:
    with demo.inst.sessions() as session:
        return get_tenant(session, HUB).name


def stored_items(demo: Demo, case_id: int) -> list[tuple[str, str, bytes]]:
    """(kind, store path, ciphertext) of every item of a case, submissions then replies."""
    with demo.inst.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        rows = [(str(s.kind), s.store_path) for s in case.submissions]
        rows += [("reply", r.store_path) for r in case.replies]
    return [(kind, path, demo.inst.store.resolve(path).read_bytes()) for kind, path in rows]


def test_kpk_takes_over_a_shared_case_and_the_reporter_follows_kpk(
    demo: Demo, world: World, tmp_path: Path
) -> None:
    filed = file_shared(demo, world)
    page = f"/pengaduan/{filed.case_id}"
    kpk = logged_in(demo, HUB, Role.VERIFIKATOR)
    assert kpk.account is not None
    html = kpk.get(page).get_data(as_text=True)
    assert "/ambil-alih" in html and "/minta-pelimpahan" in html
    before = snapshot(demo, filed.case_id)
    origin_items = stored_items(demo, filed.case_id)

    # The reason is required; without it nothing happens.
    refused = kpk.post(f"{page}/ambil-alih", {"reason": "  "}, token_from=page)
    assert refused.status_code == 400
    assert "Pilih alasan pengambilalihan" in refused.get_data(as_text=True)
    # Neither the origin's own investigators nor another tenant take a case over.
    a_api, c_api = api_login(demo, TENANT), api_login(demo, C)
    for api in (a_api, c_api):
        response = api.post(f"/api/v1/cases/{filed.case_id}/takeover", json={"reason": REASON})
        assert response.status_code == 404
    assert snapshot(demo, filed.case_id) == before

    now = dt.datetime.now(dt.UTC)
    with time_machine.travel(now, tick=False):
        done = kpk.post(f"{page}/ambil-alih", {"reason": REASON}, token_from=page)
        assert done.status_code == 302, done.get_data(as_text=True)
        linked_id = int(done.location.rsplit("/", 1)[1])
        with demo.inst.sessions() as session:
            hub = get_tenant(session, HUB)
            origin = session.get(Case, filed.case_id)
            linked = session.get(Case, linked_id)
            assert origin is not None and linked is not None
            # KPK's own case: its number, deadlines in working days from today.
            assert linked.tenant_id == hub.id and not linked.sent_to_kpk
            assert linked.registration_number != filed.number
            assert linked.first_response_due == demo.inst.calendar.add_working_days(
                local_date(now), hub.first_response_days
            )
            assert linked.linked_from_case_id == origin.id
            assert origin.linked_to_case_id == linked.id
            assert origin.status == CaseStatus.DITERUSKAN and origin.taken_over_at == now
            # KPK's dashboard counts it taken over at A (not forwarded) and received at KPK.
            lines = {line.slug: line for line in dashboard(
                session, hub, today=local_date(now)).tenants}
            assert (lines[TENANT].taken_over, lines[TENANT].forwarded) == (1, 0)
            assert (lines[HUB].received, lines[HUB].taken_over) == (1, 0)
            # The linked source: KPK's row, the reporter's reply PUBLIC key only.
            source = session.get(Source, linked.source_id)
            assert source is not None and source.tenant_id == hub.id
            assert source.reply_secret_key == ""
            linked_number = linked.registration_number

    # KPK's items are copies of A's ciphertext (new files), and KPK's key reads every one.
    copies = stored_items(demo, linked_id)
    assert [kind for kind, _, _ in copies] == [kind for kind, _, _ in origin_items]
    assert sorted(kind for kind, _, _ in copies) == ["file", "form", "message", "reply"]
    texts = {}
    for (kind, path, ciphertext), (_, origin_path, original) in zip(
        copies, origin_items, strict=True
    ):
        assert ciphertext == original and path != origin_path, kind
        plain = decrypt(world.homes[HUB], ciphertext)
        assert plain is not None, kind
        assert decrypt(world.homes[C], ciphertext) is None, kind
        texts[kind] = plain
    assert texts["file"] == FILE and texts["message"].decode() == MESSAGE
    assert texts["reply"].decode() == A_REPLY
    # KPK's workstation (KPK's key only) imports KPK's bundle of its case and decrypts it.
    kpk_ws = workstation(world, HUB)
    try:
        import_bundle(demo, kpk_ws, HUB, linked_id, tmp_path)
        decrypted = run(kpk_ws, "decrypt", linked_number)
        assert decrypted.exit_code == 0, decrypted.output
        folder = kpk_ws / "cases" / HUB / linked_number / "decrypted"
        assert FILE in [path.read_bytes() for path in folder.iterdir()]
    finally:
        kill_agent(kpk_ws / "gnupg")
        shutil.rmtree(kpk_ws, ignore_errors=True)

    # Both sides recorded it, each naming its own account only.
    origin_log = events(demo, filed.case_id, TENANT)
    (taken,) = [e for e in origin_log if e.kind == EventKind.TAKEN_OVER]
    assert REASON_LABEL in (taken.note or "") and linked_number in (taken.note or "")
    assert taken.actor_investigator_id is None
    assert any(e.kind == EventKind.STATUS_CHANGED and e.to_status == CaseStatus.DITERUSKAN
               for e in origin_log)
    (kpk_side,) = [e for e in events(demo, filed.case_id, HUB)
                   if e.kind == EventKind.TAKEN_OVER]
    assert kpk_side.actor_investigator_id == kpk.account.id
    assert REASON_LABEL in (kpk_side.note or "")
    received = [e for e in events(demo, linked_id, HUB) if e.kind == EventKind.TAKEOVER_RECEIVED]
    assert len(received) == 1 and filed.number in (received[0].note or "")
    timeline = api_login(demo, HUB).get(f"/api/v1/cases/{filed.case_id}").get_json()
    assert [e["kind"] for e in timeline["timeline"]].count("taken_over") == 1
    assert timeline["taken_over_by_kpk"] is True and timeline["handled_elsewhere"] is True
    # KPK's page of the origin case leads to KPK's case.
    assert f"/pengaduan/{linked_id}" in kpk.get(page).get_data(as_text=True)

    # KPK replies; the reporter, with the same codename at A's site, reads that KPK handles
    # the report now, and KPK's reply.
    linked_page = f"/pengaduan/{linked_id}"
    replied = kpk.post(f"{linked_page}/balas", {"text": KPK_REPLY}, token_from=linked_page)
    assert replied.status_code == 302
    reporter = Reporter(world.source_app.test_client(), TENANT)
    assert reporter.login(filed.codename).status_code == 302
    mine = reporter.get("/pengaduan").get_data(as_text=True)
    assert kpk_name(demo) in mine and "telah mengambil alih penanganan" in mine
    # The history names the takeover and the institution, not a forwarding.
    assert f"Diambil alih oleh {kpk_name(demo)}" in mine
    assert f"Dilimpahkan kepada {kpk_name(demo)}" not in mine
    assert KPK_REPLY in mine and A_REPLY in mine
    # A follow-up goes to KPK's case, encrypted to KPK's keys and not to A's.
    assert reporter.send_follow_up(filed.number, FOLLOW_UP).status_code == 302
    newest = stored_items(demo, linked_id)
    messages = [c for kind, _, c in newest if kind == str(SubmissionKind.MESSAGE)]
    assert len(messages) == 2
    assert decrypt(world.homes[HUB], messages[-1]) == FOLLOW_UP.encode()
    assert decrypt(world.homes[TENANT], messages[-1]) is None
    assert len(stored_items(demo, filed.case_id)) == len(origin_items)

    # C sees neither case.
    for case_id in (filed.case_id, linked_id):
        assert c_api.get(f"/api/v1/cases/{case_id}").status_code == 404


def test_the_origin_keeps_read_only_metadata_after_a_takeover(
    demo: Demo, world: World
) -> None:
    filed = file_shared(demo, world)
    kpk_api = api_login(demo, HUB, Role.PEMANTAU_KPK)
    base = f"/api/v1/cases/{filed.case_id}"
    done = kpk_api.post(f"{base}/takeover", json={"reason": REASON})
    assert done.status_code == 201, done.get_data(as_text=True)
    assert done.get_json()["taken_over_as"]["tenant"] == HUB
    before = snapshot(demo, filed.case_id)

    a_api = api_login(demo, TENANT)
    refusals = [
        (a_api.post(f"{base}/status", json={"status": "telaah"}), "handled_elsewhere"),
        (a_api.post(f"{base}/classification", json={"category": "gratifikasi"}),
         "handled_elsewhere"),
        (a_api.post(f"{base}/replies", data=b"x", content_type="application/pgp-encrypted"),
         "handled_elsewhere"),
        (a_api.post(f"{base}/forward-external",
                    json={"body": "kejaksaan", "letter_number": "R-1"}), "forward_not_handler"),
        (a_api.get(f"{base}/items/1"), "taken_over"),
        (a_api.get(f"{base}/bundle"), "taken_over"),
        (kpk_api.post(f"{base}/takeover", json={"reason": REASON}), "takeover_refused"),
        (kpk_api.post(f"{base}/forward-request", json={"reason": "koordinasi"}),
         "request_refused"),
    ]
    for response, code in refusals:
        assert response.status_code == 409, response.get_data(as_text=True)
        assert response.get_json()["error"] == code
    detail = a_api.get(base).get_json()
    assert detail["next_statuses"] == [] and detail["taken_over_by_kpk"] is True

    # The web interface says it in words, offers no action and no content.
    origin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    page = f"/pengaduan/{filed.case_id}"
    html = origin.get(page).get_data(as_text=True)
    assert "Ditangani KPK" in html
    for action in ("/status", "/balas", "/klasifikasi", "/berkas/", "/ekspor", "/limpahkan"):
        assert action not in html, action
    download = origin.get(f"{page}/berkas/1")
    assert download.status_code == 400
    assert "tidak ada yang dapat diunduh" in download.get_data(as_text=True)
    reply = origin.post(f"{page}/balas", {"text": "Balasan yang tidak akan dibaca."},
                        token_from=page)
    assert reply.status_code == 400 and "hanya baca" in reply.get_data(as_text=True)
    assert "Ditangani KPK" in origin.get("/").get_data(as_text=True)
    assert snapshot(demo, filed.case_id) == before


def test_a_takeover_is_refused_when_an_item_is_not_encrypted_to_kpk(demo: Demo) -> None:
    report = make_report(demo, TENANT, to_kpk=True, files=(b"bukti",))
    # An item from before the share: encrypted to A's keys only, as it was then.
    with demo.inst.sessions() as session:
        owner = get_tenant(session, TENANT)
        case = session.get(Case, report.case_id)
        assert case is not None
        Intake(Context(demo.inst, session, owner), report.secrets.source_id,
               to_kpk=False).follow_up(case, "Pesan lama, sebelum dibagikan ke KPK.")
    before = snapshot(demo, report.case_id)
    kpk = api_login(demo, HUB)
    response = kpk.post(f"/api/v1/cases/{report.case_id}/takeover", json={"reason": REASON})
    assert response.status_code == 409, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "takeover_not_for_kpk"
    assert "message #3" in body["message"] and "pelimpahan" in body["message"]
    assert snapshot(demo, report.case_id) == before
    # The page says what to do instead, in the investigator's words.
    browser = logged_in(demo, HUB)
    page = f"/pengaduan/{report.case_id}"
    refused = browser.post(f"{page}/ambil-alih", {"reason": REASON}, token_from=page)
    assert refused.status_code == 400
    assert "Mintalah instansi melimpahkan" in refused.get_data(as_text=True)
    assert snapshot(demo, report.case_id) == before


def test_a_failure_inside_a_takeover_leaves_both_cases_and_no_file(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = make_report(demo, TENANT, to_kpk=True, files=(b"bukti", b"bukti kedua"))
    account = make_account(demo, HUB)
    before = snapshot(demo, report.case_id)

    def broken(*_args: object, **_kwargs: object) -> Case:
        raise RuntimeError("the database went away")

    # After every item was copied: the copies must go with the rolled-back rows.
    monkeypatch.setattr("wbs.takeover.new_case_row", broken)
    with demo.inst.sessions() as session:
        hub = get_tenant(session, HUB)
        ctx = Context(demo.inst, session, hub, session.get(Investigator, account.id))
        case = ctx.shared().get(Case, report.case_id)
        assert case is not None
        with pytest.raises(RuntimeError):
            take_over(ctx, case, REASON)
    assert snapshot(demo, report.case_id) == before


def test_a_case_not_shared_with_kpk_or_kpks_own_cannot_be_taken_over(demo: Demo) -> None:
    private = make_report(demo, TENANT, files=(b"tidak untuk KPK",))
    own = make_report(demo, HUB)
    before = snapshot(demo, private.case_id)
    for role in (Role.VERIFIKATOR, Role.PEMANTAU_KPK):
        browser = logged_in(demo, HUB, role)
        response = browser.post(f"/pengaduan/{private.case_id}/ambil-alih",
                                {"reason": REASON}, token_from="/")
        assert response.status_code == 404
        api = api_login(demo, HUB, role)
        for path, body in (("takeover", {"reason": REASON}),
                           ("forward-request", {"reason": "koordinasi"})):
            answer = api.post(f"/api/v1/cases/{private.case_id}/{path}", json=body)
            assert answer.status_code == 404, path
    assert snapshot(demo, private.case_id) == before
    mine = api_login(demo, HUB).post(f"/api/v1/cases/{own.case_id}/takeover",
                                     json={"reason": REASON})
    assert mine.status_code == 409 and mine.get_json()["error"] == "kpk_own_case"


def test_kpk_asks_for_a_forwarding_and_the_institution_declines_with_a_reason(
    demo: Demo, world: World
) -> None:
    report = make_report(demo, TENANT, to_kpk=True)
    page = f"/pengaduan/{report.case_id}"
    base = f"/api/v1/cases/{report.case_id}"
    note = RequestReason.PERKARA_TERKAIT
    monitor = logged_in(demo, HUB, Role.PEMANTAU_KPK)
    assert monitor.account is not None
    assert monitor.post(f"{page}/minta-pelimpahan", {"reason": note.value},
                        token_from=page).status_code == 302
    assert "belum menjawab" in monitor.get(page).get_data(as_text=True)
    kpk_api = api_login(demo, HUB)
    again = kpk_api.post(f"{base}/forward-request", json={"reason": "koordinasi"})
    assert again.status_code == 409 and again.get_json()["error"] == "request_open"
    # Another tenant neither asks nor answers; KPK does not answer its own request.
    c_api = api_login(demo, C)
    assert c_api.post(f"{base}/forward-request",
                      json={"reason": "koordinasi"}).status_code == 404
    assert c_api.post(f"{base}/forward-request/decline",
                      json={"reason": "lainnya"}).status_code == 404
    assert kpk_api.post(f"{base}/forward-request/decline",
                        json={"reason": "lainnya"}).status_code == 404
    # Nor does C's browser see the case or reach any of the three forms.
    c_browser = logged_in(demo, C)
    assert c_browser.get(page).status_code == 404
    for action in ("ambil-alih", "minta-pelimpahan", "tolak-permintaan"):
        answer = c_browser.post(f"{page}/{action}", {"reason": "lainnya"}, token_from="/")
        assert answer.status_code == 404, action
    assert report.registration_number not in c_browser.get("/").get_data(as_text=True)

    origin = logged_in(demo, TENANT)
    assert origin.account is not None
    assert "KPK meminta pelimpahan" in origin.get("/").get_data(as_text=True)
    html = origin.get(page).get_data(as_text=True)
    assert "/tolak-permintaan" in html and "KPK meminta pelimpahan pengaduan ini" in html
    empty = origin.post(f"{page}/tolak-permintaan", {"reason": " "}, token_from=page)
    assert empty.status_code == 400
    assert "Pilih alasan menolak permintaan KPK" in empty.get_data(as_text=True)
    # The form offers the list, and takes only a code of it.
    assert 'value="ditangani_sendiri"' in html and "<textarea name=\"reason\"" not in html
    reason = DeclineReason.DITANGANI_SENDIRI
    assert origin.post(f"{page}/tolak-permintaan", {"reason": reason.value},
                       token_from=page).status_code == 302
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None and case.forward_requested_at is None
        assert case.status == CaseStatus.BARU and case.linked_to_case_id is None

    # Each side sees its own entries of both acts, once, with their notes.
    kpk_view = kpk_api.get(base).get_json()["timeline"]
    kinds = [e["kind"] for e in kpk_view]
    assert kinds.count("forward_requested") == 1 and kinds.count("forward_request_declined") == 1
    asked = next(e for e in kpk_view if e["kind"] == "forward_requested")
    assert asked["note"] == note.label and asked["actor"]["id"] == monitor.account.id
    declined = next(e for e in kpk_view if e["kind"] == "forward_request_declined")
    assert reason.label in declined["note"] and declined["actor"] is None
    own_view = api_login(demo, TENANT).get(base).get_json()["timeline"]
    asked = next(e for e in own_view if e["kind"] == "forward_requested")
    assert note.label in asked["note"] and asked["actor"] is None
    declined = next(e for e in own_view if e["kind"] == "forward_request_declined")
    assert declined["note"] == reason.label and declined["actor"]["id"] == origin.account.id
    again = api_login(demo, TENANT).post(f"{base}/forward-request/decline",
                                         json={"reason": "lainnya"})
    assert again.status_code == 409 and again.get_json()["error"] == "no_request"

    # A closed case is asked for no more.
    assert origin.post(f"{page}/status", {"status": "diarsipkan", "note": "Bukan wewenang"},
                       token_from=page).status_code == 302
    closed = kpk_api.post(f"{base}/forward-request", json={"reason": "koordinasi"})
    assert closed.status_code == 409 and closed.get_json()["error"] == "request_refused"


def test_forwarding_to_kpk_answers_the_request_and_the_origin_becomes_read_only(
    demo: Demo, world: World, tmp_path: Path
) -> None:
    filed = file_shared(demo, world)
    base = f"/api/v1/cases/{filed.case_id}"
    kpk_api = api_login(demo, HUB)
    assert kpk_api.post(f"{base}/forward-request",
                        json={"reason": "kerugian_negara"}).status_code == 200
    ws = workstation(world, TENANT)
    try:
        import_bundle(demo, ws, TENANT, filed.case_id, tmp_path)
        a_api = api_login(demo, TENANT)
        package = make_package(ws, filed.number, HUB, key_list(a_api, HUB, tmp_path),
                               tmp_path / "ke-kpk.zip")
        done = upload(a_api, filed.case_id, package)
        assert done.status_code == 201, done.get_data(as_text=True)
        kpk_number = done.get_json()["forwarded_to"]["registration_number"]
    finally:
        kill_agent(ws / "gnupg")
        shutil.rmtree(ws, ignore_errors=True)
    for tenant in (TENANT, HUB):
        answered = [e for e in events(demo, filed.case_id, tenant)
                    if e.kind == EventKind.FORWARD_REQUEST_ANSWERED]
        assert len(answered) == 1 and kpk_number in (answered[0].note or ""), tenant
    with demo.inst.sessions() as session:
        case = session.get(Case, filed.case_id)
        assert case is not None and case.forward_requested_at is None
        assert case.taken_over_at is None

    # Forwarded: A no longer handles it. Reopening to telaah, a reply nobody would read, a
    # new classification: refused. A still reads its own items (it was not a takeover).
    before = snapshot(demo, filed.case_id)
    for response in (
        a_api.post(f"{base}/status", json={"status": "telaah"}),
        a_api.post(f"{base}/classification", json={"category": "gratifikasi"}),
    ):
        assert response.status_code == 409 and response.get_json()["error"] == (
            "handled_elsewhere"
        )
    origin = logged_in(demo, TENANT)
    page = f"/pengaduan/{filed.case_id}"
    reply = origin.post(f"{page}/balas", {"text": "Tidak akan sampai."}, token_from=page)
    assert reply.status_code == 400
    html = origin.get(page).get_data(as_text=True)
    assert "/status" not in html and "/balas" not in html and "/berkas/1" in html
    assert a_api.get(f"{base}/items/1").status_code == 200
    assert snapshot(demo, filed.case_id)[1:] == before[1:]


def test_every_refusal_of_the_coordination_has_a_sentence_in_both_languages(
    demo: Demo,
) -> None:
    source = "".join(Path(module.__file__ or "").read_text(encoding="utf-8")
                     for module in (coordination, takeover))
    raised = set(re.findall(r'Refusal\(\s*"(\w+)"', source))
    raised |= set(re.findall(r'check_still_handled_there\(\w+, "(\w+)"\)', source))
    assert {"takeover_not_for_kpk", "request_open", "takeover_refused"} <= raised
    assert raised <= refusals.CODES, raised - refusals.CODES
    params = {"what": "takeover", "why": "closed", "items": "message #3", "limit": 500}
    for code in sorted(raised - set(refusals.HTTP_ONLY)):
        said = {}
        for language in ("id", "en"):
            with demo.app.test_request_context(), force_locale(language):
                said[language] = refusals.message(Refusal(code, "English message", **params),
                                                  "PLT-PEMPROV-SUMSEL-2026-004817")
        assert said["id"] != said["en"] and "English message" not in said.values(), code


def test_a_case_of_a_matter_taken_over_hands_its_place_to_kpks_case(
    demo: Demo, world: World
) -> None:
    filed = file_shared(demo, world)
    other = make_report(demo, TENANT)
    page = f"/pengaduan/{filed.case_id}"
    linker = logged_in(demo, TENANT)
    assert linker.post(f"{page}/perkara", {"number": other.registration_number},
                       token_from=page).status_code == 302
    with demo.inst.sessions() as session:
        matter_id = session.get_one(Case, filed.case_id).matter_id
        assert matter_id is not None
    account = make_account(demo, HUB)
    with demo.inst.sessions() as session:
        ctx = Context(demo.inst, session, get_tenant(session, HUB),
                      session.get(Investigator, account.id))
        case = ctx.shared().get(Case, filed.case_id)
        assert case is not None
        linked_id = take_over(ctx, case, REASON).id
    with demo.inst.sessions() as session:
        # KPK's case, which handles the report now, is the matter's member; the origin not.
        assert session.get_one(Case, linked_id).matter_id == matter_id
        assert session.get_one(Case, filed.case_id).matter_id is None
        assert session.get_one(Case, other.case_id).matter_id == matter_id


NAME = "Sutrisno Wibowo"
FREE_TEXT = f"Kepala Bidang Aset {NAME} menerima suap dari rekanan."


def test_a_free_text_reason_is_refused_and_stored_nowhere(demo: Demo) -> None:
    """A reason reaches the other tenant at once: only a code of the list is taken; a name
    typed instead is refused, repeated nowhere, and stored nowhere."""
    report = make_report(demo, TENANT, to_kpk=True)
    base = f"/api/v1/cases/{report.case_id}"
    page = f"/pengaduan/{report.case_id}"
    before = snapshot(demo, report.case_id)
    kpk_api = api_login(demo, HUB)
    for path in ("takeover", "forward-request"):
        answer = kpk_api.post(f"{base}/{path}", json={"reason": FREE_TEXT})
        assert answer.status_code == 400, path
        assert answer.get_json()["error"] == "unknown_reason"
        assert NAME not in answer.get_data(as_text=True)
        assert "kewenangan_kpk" in answer.get_json()["message"] or path != "takeover"
        # The old free-text field is no field any more.
        old = kpk_api.post(f"{base}/{path}", json={"note": FREE_TEXT})
        assert old.status_code == 400 and old.get_json()["error"] == "bad_request"
    kpk = logged_in(demo, HUB)
    for action in ("ambil-alih", "minta-pelimpahan"):
        refused = kpk.post(f"{page}/{action}", {"reason": FREE_TEXT}, token_from=page)
        assert refused.status_code == 400, action
        html = refused.get_data(as_text=True)
        assert "bukan salah satu alasan" in html and NAME not in html
    assert snapshot(demo, report.case_id) == before

    assert kpk_api.post(f"{base}/forward-request",
                        json={"reason": "koordinasi"}).status_code == 200
    asked = snapshot(demo, report.case_id)
    a_api = api_login(demo, TENANT)
    declined = a_api.post(f"{base}/forward-request/decline", json={"reason": FREE_TEXT})
    assert declined.status_code == 400 and declined.get_json()["error"] == "unknown_reason"
    origin = logged_in(demo, TENANT)
    refused = origin.post(f"{page}/tolak-permintaan", {"reason": FREE_TEXT}, token_from=page)
    assert refused.status_code == 400 and NAME not in refused.get_data(as_text=True)
    assert snapshot(demo, report.case_id) == asked

    # Not one column of one row of any table holds it.
    with demo.inst.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(sa.select(table)):
                assert NAME not in repr(tuple(row)), table.name


def test_a_forwarding_racing_a_takeover_is_refused_and_leaves_no_case_or_file(
    demo: Demo, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's upload read the case (still A's) and stored the package's items; KPK's takeover
    commits before the upload claims the case. The upload is refused: no case at C, none of
    its files, the takeover as it was."""
    filed = file_shared(demo, world)
    ws = workstation(world, TENANT)
    try:
        import_bundle(demo, ws, TENANT, filed.case_id, tmp_path)
        a_api = api_login(demo, TENANT)
        package = make_package(ws, filed.number, C, key_list(a_api, C, tmp_path),
                               tmp_path / "ke-c.zip")
    finally:
        kill_agent(ws / "gnupg")
        shutil.rmtree(ws, ignore_errors=True)
    account = make_account(demo, HUB)
    forward = forwarding._forward
    seen: dict[str, Any] = {}

    def kpk_first(ctx: Context, *args: Any) -> Case:
        with demo.inst.sessions() as session:
            kpk_ctx = Context(demo.inst, session, get_tenant(session, HUB),
                              session.get(Investigator, account.id))
            case = kpk_ctx.shared().get(Case, filed.case_id)
            assert case is not None
            seen["linked"] = take_over(kpk_ctx, case, REASON).id
        seen["state"] = snapshot(demo, filed.case_id)
        seen["stored"] = {Path(path).name for path in args[-1]}  # the package's items
        return forward(ctx, *args)

    monkeypatch.setattr("wbs.forwarding._forward", kpk_first)
    with demo.inst.sessions() as session:
        c_cases = session.scalar(sa.select(sa.func.count(Case.id)).where(
            Case.tenant_id == get_tenant(session, C).id))
    response = upload(a_api, filed.case_id, package)
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.get_json()["error"] == "forward_not_handler"
    counts, state, files = snapshot(demo, filed.case_id)
    assert (counts, state) == seen["state"][:2]
    # The upload's stored items are gone; the takeover's copies stay.
    assert seen["stored"] and seen["stored"] <= set(seen["state"][2])
    # (and with them the store's own marks about them, named after them).
    def without(names: list[str]) -> list[str]:
        return [n for n in names if not any(stored in n for stored in seen["stored"])]

    assert files == without(seen["state"][2])
    assert len(files) < len(seen["state"][2])
    with demo.inst.sessions() as session:
        origin = session.get_one(Case, filed.case_id)
        assert origin.linked_to_case_id == seen["linked"] and origin.taken_over_at is not None
        assert session.scalar(sa.select(sa.func.count(Case.id)).where(
            Case.tenant_id == get_tenant(session, C).id)) == c_cases
        assert session.scalars(sa.select(Case.id).where(
            Case.linked_from_case_id == filed.case_id)).all() == [seen["linked"]]
