"""The inbox and the case page: filters, deadlines, status changes, replies, downloads, export."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from babel.dates import format_date

from crypto.replykeys import encrypt_reply
from journalist_iface import SECURITY_HEADERS
from tests.journalist_iface.conftest import (
    TENANT,
    Browser,
    Demo,
    add_bare_cases,
    logged_in,
    make_report,
)
from tests.support import CLOCKS, clocks, wib_today
from wbs.bundle import read_bundle
from wbs.casework import KLARIFIKASI_LOG_NOTE
from wbs.context import Context
from wbs.domain import CaseStatus, EventKind, Role
from wbs.models import Case, Event
from wbs.sources import source_case, source_replies
from wbs.tenants import current_recipients, get_tenant
from wbs.workdays import local_date


def _regs(html: str) -> list[str]:
    return re.findall(r"PLT-[A-Z-]+-\d{4}-\d{6}", html)


def test_inbox_filters_and_pagination(demo: Demo, browser: Browser) -> None:
    category = "pungutan_liar"  # used by no other test in this module
    ids = add_bare_cases(demo, 53, category=category)
    html = browser.get(f"/?category={category}").get_data(as_text=True)
    assert "53 pengaduan sesuai" in html
    first = _regs(html)
    assert len(first) == 50
    second = _regs(browser.get(f"/?category={category}&page=2").get_data(as_text=True))
    assert len(second) == 3 and not set(first) & set(second)
    # Overdue: a first-response deadline in the past, still open.
    late = add_bare_cases(demo, 1, category=category, mcp_area="perizinan",
                          first_response_due=wib_today() - dt.timedelta(days=3))[0]
    closed = add_bare_cases(demo, 1, category=category, status=CaseStatus.SELESAI,
                            first_response_due=wib_today() - dt.timedelta(days=3))[0]
    overdue = _regs(browser.get(f"/?category={category}&overdue=1").get_data(as_text=True))
    with demo.inst.sessions() as session:
        reg = {c.id: c.registration_number for c in session.scalars(
            sa.select(Case).where(Case.id.in_([late, closed, ids[0]])))}
    assert overdue == [reg[late]]
    assert _regs(browser.get(f"/?category={category}&mcp_area=perizinan")
                 .get_data(as_text=True)) == [reg[late]]
    assert _regs(browser.get(f"/?category={category}&status=selesai")
                 .get_data(as_text=True)) == [reg[closed]]
    # Default sort: deadline first, so the overdue case leads; by date received it does not.
    assert _regs(browser.get(f"/?category={category}").get_data(as_text=True))[0] in (
        reg[late], reg[closed])
    # Unread filter and assignee "nobody".
    with demo.inst.sessions() as session:
        session.execute(sa.update(Case).where(Case.id == ids[0]).values(unread=False))
        session.commit()
    unread = _regs(browser.get(f"/?category={category}&unread=1&page=2").get_data(as_text=True))
    assert reg[ids[0]] not in unread
    assert len(_regs(browser.get(f"/?category={category}&assignee=none&sort=received")
                     .get_data(as_text=True))) == 50


@pytest.mark.parametrize("bad", ["²", "٣", "9" * 5000, "-1", "1e3"])
def test_malformed_inbox_arguments_are_ignored(browser: Browser, bad: str) -> None:
    plain = browser.get("/")
    response = browser.get(f"/?page={bad}&assignee={bad}")
    assert response.status_code == 200
    assert _regs(response.get_data(as_text=True)) == _regs(plain.get_data(as_text=True))


def test_inbox_query_count_does_not_grow_with_rows(demo: Demo, browser: Browser) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    add_bare_cases(demo, 5, category="maladministrasi")
    sa.event.listen(demo.inst.engine, "before_cursor_execute", count)
    try:
        browser.get("/?category=maladministrasi")
        few = len(statements)
        add_bare_cases(demo, 20, category="maladministrasi")
        statements.clear()
        browser.get("/?category=maladministrasi")
    finally:
        sa.event.remove(demo.inst.engine, "before_cursor_execute", count)
    assert len(statements) == few


@clocks
def test_case_page_shows_metadata_and_deadlines(demo: Demo, clock: dt.datetime) -> None:
    with time_machine.travel(clock):
        browser = logged_in(demo)
        report = make_report(demo, files=(b"bukti satu",))
        html = browser.get(f"/pengaduan/{report.case_id}").get_data(as_text=True)
        today = wib_today()
    calendar = demo.inst.calendar
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None
        # Received today in WIB, whatever the UTC date; the deadline counts from that day.
        assert case.received_at.date() == local_date(clock)
        assert case.first_response_due == calendar.add_working_days(today, 7)
        left = calendar.working_days_between(today, case.first_response_due)
    assert left == 7
    assert report.registration_number in html
    assert "Suap-menyuap" in html and "Perizinan" in html and "Baru" in html
    assert f"sisa {left} hari kerja" in html
    assert f"<dt>Diterima</dt><dd>{format_date(today, 'medium', locale='id')}</dd>" in html
    assert "-01-form.gpg" in html and "-02-file.gpg" in html
    # No original filename anywhere on the page.
    assert "bukti-0.pdf" not in html


def test_timeline_shows_only_the_day_of_a_reporters_action(demo: Demo) -> None:
    # 00:30 WIB: the day label of the pelapor's report must not turn into "07.00.00".
    with time_machine.travel(CLOCKS["00:30-wib"]):
        browser = logged_in(demo)
        report = make_report(demo)
        html = browser.get(f"/pengaduan/{report.case_id}").get_data(as_text=True)
    timeline = html[html.index("<h2>Riwayat</h2>"):]
    created = re.search(r"<tr><td>([^<]*)</td><td>Pengaduan masuk</td>", timeline)
    assert created is not None
    assert created.group(1) == format_date(dt.date(2026, 12, 3), "medium", locale="id")


def test_a_case_answered_in_time_is_not_called_overdue(demo: Demo, browser: Browser) -> None:
    report = make_report(demo)
    page = f"/pengaduan/{report.case_id}"
    assert browser.post(f"{page}/status", {"status": "verifikasi", "note": ""},
                        token_from=page).status_code == 302
    # Days later, past the due day: the first response was in time, and stays so.
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=30)):
        answered = logged_in(demo)
        html = answered.get(page).get_data(as_text=True)
        inbox = answered.get("/?overdue=1").get_data(as_text=True)
    assert "tepat waktu" in html and "terlambat" not in html
    assert report.registration_number not in inbox


def test_overdue_case_says_so(demo: Demo, browser: Browser) -> None:
    case_id = add_bare_cases(demo, 1, first_response_due=wib_today() - dt.timedelta(days=20))[0]
    html = browser.get(f"/pengaduan/{case_id}").get_data(as_text=True)
    assert "terlambat" in html


def test_status_change_with_required_notes(demo: Demo, browser: Browser) -> None:
    report = make_report(demo)
    page = f"/pengaduan/{report.case_id}"
    # Archiving needs a reason.
    refused = browser.post(f"{page}/status", {"status": "diarsipkan", "note": ""}, token_from=page)
    assert refused.status_code == 400
    assert "alasan pengarsipan" in refused.get_data(as_text=True)
    # An invalid transition is refused with a clear message.
    refused = browser.post(f"{page}/status", {"status": "selesai", "note": ""}, token_from=page)
    assert refused.status_code == 400
    assert "tidak dapat diubah dari Baru ke Selesai" in refused.get_data(as_text=True)
    ok = browser.post(f"{page}/status", {"status": "verifikasi", "note": ""}, token_from=page)
    assert ok.status_code == 302
    assert "Status diubah menjadi Verifikasi" in browser.get(page).get_data(as_text=True)
    ok = browser.post(f"{page}/status", {"status": "diarsipkan", "note": "Bukan wewenang"},
                      token_from=page)
    assert ok.status_code == 302
    with demo.inst.sessions() as session:
        events = session.scalars(sa.select(Event).where(
            Event.case_id == report.case_id, Event.kind == EventKind.STATUS_CHANGED
        ).order_by(Event.id)).all()
        assert [(e.to_status, e.note) for e in events] == [
            (CaseStatus.VERIFIKASI, None), (CaseStatus.DIARSIPKAN, "Bukan wewenang")]
        assert all(e.actor_investigator_id is not None for e in events)
    # Archived today, well within the 30 working days: the case page says so.
    closed = browser.get(page).get_data(as_text=True)
    assert "ditutup pada" in closed and "tepat waktu" in closed


def test_klarifikasi_question_reaches_the_reporter_but_not_the_log(
    demo: Demo, browser: Browser
) -> None:
    report = make_report(demo)
    page = f"/pengaduan/{report.case_id}"
    question = "Mohon sebutkan nomor kontrak yang dimaksud. PERTANYAAN-7731"
    missing = browser.post(f"{page}/status", {"status": "klarifikasi", "note": ""},
                           token_from=page)
    assert missing.status_code == 400
    ok = browser.post(f"{page}/status", {"status": "klarifikasi", "note": question},
                      token_from=page)
    assert ok.status_code == 302
    inst = demo.inst
    with inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        ctx = Context(demo.inst, session, tenant)
        case = source_case(ctx, report.secrets.source_id, report.registration_number)
        assert case is not None and case.status == CaseStatus.KLARIFIKASI
        ctx = Context(inst, session, tenant)
        texts = [text for _, text in source_replies(ctx, report.secrets, case)]
        assert texts == [question]
        notes = [e.note or "" for e in session.scalars(
            sa.select(Event).where(Event.case_id == report.case_id))]
        assert KLARIFIKASI_LOG_NOTE in notes
        assert not any("PERTANYAAN-7731" in note for note in notes)


def test_reply_reaches_the_reporter(demo: Demo, browser: Browser) -> None:
    report = make_report(demo)
    page = f"/pengaduan/{report.case_id}"
    assert browser.post(f"{page}/balas", {"text": ""}, token_from=page).status_code == 400
    assert browser.post(f"{page}/balas", {"text": "Terima kasih."}, token_from=page
                        ).status_code == 302
    with demo.inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        ctx = Context(demo.inst, session, tenant)
        case = source_case(ctx, report.secrets.source_id, report.registration_number)
        assert case is not None
        ctx = Context(demo.inst, session, tenant)
        assert [t for _, t in source_replies(ctx, report.secrets, case)
                ] == ["Terima kasih."]
    assert "-02-reply.gpg" in browser.get(page).get_data(as_text=True)


def test_assign_and_mark_seen(demo: Demo) -> None:
    report = make_report(demo)
    browser = logged_in(demo)
    assert browser.account is not None
    page = f"/pengaduan/{report.case_id}"
    assert browser.post(f"{page}/tugaskan", {"assignee": str(browser.account.id)},
                        token_from=page).status_code == 302
    assert browser.post(f"{page}/dibaca", token_from=page).status_code == 302
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None and case.assignee_id == browser.account.id and not case.unread
        assert all(s.seen for s in case.submissions)
        assigned = session.scalars(sa.select(Event).where(
            Event.case_id == case.id, Event.kind == EventKind.ASSIGNED)).one()
        assert assigned.actor_investigator_id == browser.account.id
        assert assigned.note == browser.account.username
        seen = session.scalars(sa.select(Event).where(
            Event.case_id == case.id, Event.kind == EventKind.MARKED_SEEN)).one()
        assert seen.actor_investigator_id == browser.account.id
    mine = browser.get(f"/?assignee={browser.account.id}").get_data(as_text=True)
    assert _regs(mine) == [report.registration_number]


def test_item_download_is_the_exact_ciphertext(demo: Demo, browser: Browser) -> None:
    report = make_report(demo, files=(b"isi bukti rahasia",))
    response = browser.get(f"/pengaduan/{report.case_id}/berkas/2")
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert f"{report.registration_number}-02-file.gpg" in disposition
    assert "bukti-0.pdf" not in disposition
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None
        stored = demo.inst.store.open(case.submissions[1].store_path).read()
    assert response.data == stored
    assert browser.get(f"/pengaduan/{report.case_id}/berkas/3").status_code == 404
    # Who took a copy of which item is on record, as for an export.
    with demo.inst.sessions() as session:
        taken = session.scalars(sa.select(Event).where(
            Event.case_id == report.case_id, Event.kind == EventKind.ITEM_DOWNLOADED)).all()
    assert browser.account is not None
    assert [(e.actor_investigator_id, e.note) for e in taken] == [(browser.account.id, "file #2")]


def test_export_bundle_verifies(demo: Demo, browser: Browser, tmp_path: Path) -> None:
    report = make_report(demo, files=(b"bukti",))
    page = f"/pengaduan/{report.case_id}"
    response = browser.post(f"{page}/ekspor", token_from=page)
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert f"{report.registration_number}.zip" in response.headers["Content-Disposition"]
    path = tmp_path / "bundle.zip"
    path.write_bytes(response.data)
    bundle = read_bundle(path, demo.inst.signing.fingerprint)
    assert [c.registration_number for c in bundle.cases] == [report.registration_number]
    assert [i.kind for i in bundle.cases[0].items] == ["form", "file"]
    with demo.inst.sessions() as session:
        assert session.scalar(sa.select(Event).where(
            Event.case_id == report.case_id, Event.kind == EventKind.EXPORTED)) is not None


def test_headers_no_script_and_both_languages(demo: Demo, browser: Browser) -> None:
    report = make_report(demo)
    urls = ["/", f"/pengaduan/{report.case_id}", "/masuk", "/nope"]
    for url in urls:
        response = browser.get(url)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (url, name)
        assert "<script" not in response.get_data(as_text=True).lower()
    login = Browser(demo.app.test_client()).get("/masuk")
    assert "<script" not in login.get_data(as_text=True).lower()
    assert "Masuk petugas" in login.get_data(as_text=True)
    assert "Kotak masuk" in browser.get("/").get_data(as_text=True)
    browser.get("/bahasa/en?next=/")
    english = browser.get(f"/pengaduan/{report.case_id}").get_data(as_text=True)
    assert 'lang="en"' in english and "Encrypted items" in english
    assert "Inbox" in browser.get("/").get_data(as_text=True)
    # The language switch never redirects off the site.
    assert browser.get("/bahasa/id?next=//evil.example/").location.endswith("/")


def test_admin_role_sees_the_same_inbox(demo: Demo) -> None:
    report = make_report(demo)
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    assert report.registration_number in admin.get("/?sort=received").get_data(as_text=True)


def test_a_reply_encrypted_on_the_workstation_is_uploaded_as_it_is(demo: Demo) -> None:
    report = make_report(demo)
    browser = logged_in(demo)
    page = f"/pengaduan/{report.case_id}"
    with demo.inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        case = session.get(Case, report.case_id)
        assert case is not None
        # What `peluit-workstation reply` makes: ciphertext to the source and the instansi.
        ciphertext = encrypt_reply(demo.inst.keyring, current_recipients(session, tenant),
                                   case.source.reply_public_key, b"Dijawab dari workstation.")
    refused = browser.post(f"{page}/balas-terenkripsi", token_from=page,
                           data={"reply_file": (io.BytesIO(b"not openpgp"), "r.gpg")},
                           content_type="multipart/form-data")
    assert "ditolak" in refused.get_data(as_text=True)
    sent = browser.post(f"{page}/balas-terenkripsi", token_from=page,
                        data={"reply_file": (io.BytesIO(ciphertext), "r.gpg")},
                        content_type="multipart/form-data")
    assert sent.status_code == 302
    with demo.inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        case = session.get(Case, report.case_id)
        assert case is not None
        assert demo.inst.store.open(case.replies[-1].store_path).read() == ciphertext
        ctx = Context(demo.inst, session, tenant)
        texts = [t for _, t in source_replies(ctx, report.secrets, case)]
    assert texts[-1] == "Dijawab dari workstation."


def test_an_investigator_corrects_the_classification_and_statistics_follow(
    demo: Demo, browser: Browser
) -> None:
    from wbs.monitoring import tenant_summary

    report = make_report(demo, category="gratifikasi", mcp_area="")  # the pelapor's guess
    page = f"/pengaduan/{report.case_id}"
    form = browser.get(page).get_data(as_text=True)
    assert 'name="category"' in form and 'name="mcp_area"' in form

    def counts() -> tuple[dict[str, int], dict[str, int]]:
        with demo.inst.sessions() as session:
            summary = tenant_summary(session, get_tenant(session, TENANT), wib_today())
            return summary.category_counts(), summary.mcp_area_counts()

    categories_before, _ = counts()
    ok = browser.post(f"{page}/klasifikasi", {"category": "suap_menyuap", "mcp_area": "perizinan"},
                      token_from=page)
    assert ok.status_code == 302
    assert "Klasifikasi telah dikoreksi" in browser.get(page).get_data(as_text=True)
    categories, areas = counts()
    assert categories.get("suap_menyuap", 0) == categories_before.get("suap_menyuap", 0) + 1
    assert categories.get("gratifikasi", 0) == categories_before.get("gratifikasi", 0) - 1
    assert areas.get("perizinan") == 1
    # The same values again change and log nothing; unknown codes are refused, nothing changes.
    browser.post(f"{page}/klasifikasi", {"category": "suap_menyuap", "mcp_area": "perizinan"},
                 token_from=page)
    for bad in ({"category": "bukan-kategori", "mcp_area": ""},
                {"category": "suap_menyuap", "mcp_area": "bukan-area"}):
        refused = browser.post(f"{page}/klasifikasi", bad, token_from=page)
        assert refused.status_code == 400
        assert "Pilih salah satu" in refused.get_data(as_text=True)
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert (case.category, case.mcp_area) == ("suap_menyuap", "perizinan")
        notes = session.scalars(sa.select(Event.note).where(
            Event.case_id == report.case_id, Event.kind == EventKind.RECLASSIFIED)).all()
        assert notes == ["category: gratifikasi -> suap_menyuap; mcp_area: - -> perizinan"]
