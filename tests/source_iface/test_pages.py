"""The source interface over HTTP, on a real instance with real gpg and a real database."""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import re
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
import werkzeug.formparser

from source_iface import create_app
from source_iface.flood import FloodGuard, FloodLimits, SlidingWindow
from tests.source_iface.conftest import (
    _CODENAME,
    _TAG,
    GOOD_ANSWERS,
    MAX_UPLOAD,
    OTHER_TENANT,
    TENANT,
    Reporter,
    csrf_token,
    multipart,
)
from tests.support import CLOCKS, decrypt_item
from wbs.casework import change_status, post_reply
from wbs.context import Context
from wbs.domain import CaseStatus, TenantKind
from wbs.instance import Instance
from wbs.intake import Intake
from wbs.models import Case, Reply, Source, Submission, Tenant
from wbs.tenants import create_tenant

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
EXTERNAL = re.compile(r"https?://|=\s*[\"']?//|url\(\s*[\"']?//", re.IGNORECASE)
# A tenant text may link to an onion service (wbs.texts): a link the reporter may follow, which
# loads nothing. Only that exact shape is set aside before looking for anything external.
ONION_LINK = re.compile(r'<a href="https?://(?:[a-z0-9-]+\.)*[a-z2-7]{56}\.onion[^"<>]*">')


def check_page(response, status: int = 200, lang: str = "id") -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert "X-Powered-By" not in response.headers
    html = response.get_data(as_text=True)
    assert "<script" not in html.lower()
    assert not EXTERNAL.search(ONION_LINK.sub("", html)), EXTERNAL.search(html)
    assert len(response.get_data()) < 50 * 1024
    if response.mimetype == "text/html":
        assert f'<html lang="{lang}">' in html
        assert "Traceback" not in html
    return html


def store_files(demo) -> set[str]:  # type: ignore[no-untyped-def]
    """Every file under the store, complete or not (.part files count too)."""
    root = demo.inst.config.store_dir
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def count_cases(demo) -> int:  # type: ignore[no-untyped-def]
    with demo.inst.sessions() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(Case)) or 0)


def gpg_decrypt(home: Path, path: Path) -> tuple[bytes, str]:
    """Plaintext and the original filename, decrypted with the workstation's key."""
    data, name = decrypt_item(home, path)
    assert name, "the item carries no name"
    return data, name


def files_containing(roots: list[Path], needle: bytes) -> list[Path]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    if needle in path.read_bytes():
                        found.append(path)
                except OSError:
                    continue
    return found


# --- pages, languages, headers ---------------------------------------------------------------


@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_page_renders_in_both_languages(demo, client, lang: str) -> None:  # type: ignore[no-untyped-def]
    client.set_cookie("peluit_l", lang)
    reporter = Reporter(client)
    expect = {"id": "Buat pengaduan", "en": "Make a report"}[lang]
    html = check_page(reporter.get("/"), lang=lang)
    assert expect in html and "Pemerintah Provinsi Sumatera Selatan" in html
    assert ("hari kerja" if lang == "id" else "working days") in html
    assert ("43/2018" in html) and ("31/2014" in html)
    check_page(reporter.get("/panduan"), lang=lang)
    page = check_page(reporter.get("/kode-baru"), lang=lang)
    assert ("Saya sudah mencatat kode ini" if lang == "id" else "I have written down") in page
    check_page(reporter.get("/masuk"), lang=lang)

    reporter.new_codename()
    form = check_page(reporter.get("/lapor"), lang=lang)
    assert ('for="f-apa"' in form) and ('id="f-apa"' in form)
    receipt = reporter.client.get(reporter.send_report().headers["Location"])
    check_page(receipt, lang=lang)
    case_id = _last_case_id(demo)
    _reply(demo, case_id, "Mohon kirim salinan kontrak.", klarifikasi=True)
    cases = check_page(reporter.get("/pengaduan"), lang=lang)
    assert "Mohon kirim salinan kontrak." in cases
    wording = {"id": CaseStatus.KLARIFIKASI.source_wording, "en": "We need more information"}
    assert wording[lang] in cases
    check_page(reporter.get(_delete_link(cases)), lang=lang)
    check_page(reporter.get("/tidak-ada"), 404, lang=lang)
    check_page(reporter.get("/keluar"), 405, lang=lang)
    check_page(reporter.post("/masuk", data={"codename": "x"}), 400, lang=lang)
    check_page(reporter.logout(), lang=lang)


def test_untranslated_strings_do_not_exist() -> None:
    from babel.messages.pofile import read_po

    po = Path(__file__).parents[2] / "source_iface/translations/id/LC_MESSAGES/messages.po"
    catalog = read_po(po.open("rb"))
    missing = [m.id for m in catalog if m.id and not m.string]
    assert missing == []
    assert len(list(catalog)) > 100


def test_style_sheet_is_local_small_and_guarded(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get(f"/t/{TENANT}/static/peluit.css")
    check_page(response)
    assert b"@import" not in response.get_data()


def test_unknown_host_and_tenant_get_a_404_page(client) -> None:  # type: ignore[no-untyped-def]
    check_page(client.get("/", headers={"Host": "nobody2345.onion"}), 404)
    check_page(client.get("/t/no-such-tenant/"), 404)


@pytest.mark.parametrize("huge", [str(2**63), "9" * 5000], ids=["2**63", "5000-digits"])
def test_an_id_no_row_can_have_gets_a_404_page_on_every_route(demo, reporter, huge: str) -> None:  # type: ignore[no-untyped-def]
    reporter.new_codename()
    # Ids, registration numbers and reply tokens alike (how the pelapor's URLs name things).
    routes = [
        (method, rule.rule)
        for rule in demo.app.url_map.iter_rules()
        if "<int:" in rule.rule or "<number>" in rule.rule or "<token>" in rule.rule
        for method in sorted((rule.methods or set()) & {"GET", "POST"})
    ]
    assert len(routes) >= 4  # receipt, follow-up, reply deletion (GET and POST)
    for method, rule in routes:
        path = re.sub(r"<(?:int:)?\w+>", huge, rule)
        response = reporter.get(path) if method == "GET" else reporter.post(
            path, data={"csrf_token": reporter.token("/pengaduan")}
        )
        check_page(response, 404)


def test_onion_host_selects_its_tenant(demo, client) -> None:  # type: ignore[no-untyped-def]
    onion = "k" * 56 + ".onion"
    with demo.inst.sessions() as session:
        tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == OTHER_TENANT))
        tenant.onion_address = onion
        session.commit()
    try:
        html = check_page(client.get("/", headers={"Host": onion}))
        assert "Komisi Pemberantasan Korupsi" in html
        # URLs are generated without the development prefix on the onion host.
        assert 'href="/panduan"' in html
    finally:
        with demo.inst.sessions() as session:
            session.execute(sa.update(Tenant).values(onion_address=None))
            session.commit()


def test_development_index_lists_tenants_on_loopback_only(client) -> None:  # type: ignore[no-untyped-def]
    html = check_page(client.get("/"))
    assert f'href="/t/{TENANT}/"' in html
    check_page(client.get("/", headers={"Host": "example2345.onion"}), 404)


def test_production_answers_only_to_a_tenants_onion(demo) -> None:  # type: ignore[no-untyped-def]
    # A visitor controls the Host header: in production neither loopback nor /t/<slug>/ may
    # reach a tenant, only the tenant's own onion address.
    onion = "p" * 56 + ".onion"
    app = create_app(demo.inst, dev_tenant_paths=False)
    client = app.test_client()
    with demo.inst.sessions() as session:
        session.execute(sa.update(Tenant).where(Tenant.slug == TENANT).values(onion_address=onion))
        session.commit()
    try:
        assert "Sumatera Selatan" in check_page(client.get("/", headers={"Host": onion}))
        for host in ("127.0.0.1", "localhost", "other2345.onion"):
            check_page(client.get("/", headers={"Host": host}), 404)
            check_page(client.get(f"/t/{TENANT}/", headers={"Host": host}), 404)
    finally:
        with demo.inst.sessions() as session:
            session.execute(sa.update(Tenant).values(onion_address=None))
            session.commit()


# --- the whole journey, and what reaches disk ------------------------------------------------


def test_journey_stores_only_ciphertext(demo, reporter, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # If an upload view let Werkzeug parse the form, files over 500 KB would be spooled to
    # plaintext temporary files: make that path fail loudly, and give tempfile its own folder.
    def refuse(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("Werkzeug's form parser was used")

    temp = demo.temp / "tmp"
    temp.mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    marker = ("PENANDA-" + os.urandom(8).hex()).encode()
    big = os.urandom(1_500_000) + marker + os.urandom(1000)
    small = b"%PDF-1.4 " + marker + b" kontrak"
    answers = dict(GOOD_ANSWERS, apa=GOOD_ANSWERS["apa"] + " " + marker.decode())

    codename = reporter.new_codename()
    items_before = set(demo.inst.store.items())
    with monkeypatch.context() as patch:
        patch.setattr(werkzeug.formparser.FormDataParser, "parse", refuse)
        sent = reporter.send_report(
            answers, [("bukti transfer.bin", big), ("kontrak.pdf", small)]
        )
    assert sent.status_code == 302
    receipt = check_page(reporter.client.get(sent.headers["Location"]))
    case_id = _last_case_id(demo)
    with demo.inst.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.registration_number in receipt
    assert codename not in receipt
    assert re.search(r"\d{1,2} (Januari|Februari|Maret|April|Mei|Juni|Juli|Agustus|"
                     r"September|Oktober|November|Desember) \d{4}", receipt)

    check_page(reporter.logout())
    assert reporter.get("/pengaduan").status_code == 302  # logged out for real
    assert reporter.login(codename.upper() + "  ").status_code == 302
    assert case.registration_number in check_page(reporter.get("/pengaduan"))
    follow_up_file = b"lampiran " + marker
    with monkeypatch.context() as patch:
        patch.setattr(werkzeug.formparser.FormDataParser, "parse", refuse)
        more = reporter.send_follow_up(
            case.registration_number, "Pesan tambahan " + marker.decode(),
            [("lampiran.txt", follow_up_file)],
        )
    assert more.status_code == 302
    # The pelapor's URLs name the case by its registration number, never by the database id
    # (sequential across all tenants: it would tell how many reports came in, and in which order).
    assert sent.headers["Location"].endswith(f"/tanda-terima/{case.registration_number}")
    assert f"sent={case.registration_number}" in more.headers["Location"]
    assert "Terkirim" in check_page(reporter.client.get(more.headers["Location"]))

    # Nothing readable anywhere: not the marker, not the codename.
    roots = [demo.inst.config.instance_dir, temp, demo.inst.config.gnupg_home]
    assert files_containing(roots, marker) == []
    assert files_containing(roots, codename.encode()) == []
    for response in reporter.responses:
        for header in (*response.headers.getlist("Set-Cookie"), response.headers.get("Location")):
            if header:
                assert codename not in header and codename.replace(" ", "+") not in header
                assert codename.replace(" ", "%20") not in header

    # Every stored item decrypts on the workstation, byte for byte, with its original name.
    with demo.inst.sessions() as session:
        paths = session.scalars(
            sa.select(Submission.store_path).where(Submission.case_id == case_id)
        ).all()
    assert set(paths) == set(demo.inst.store.items()) - items_before
    plain = dict(
        (name, data)
        for data, name in (
            gpg_decrypt(demo.workstation, demo.inst.store.resolve(p)) for p in paths
        )
    )
    assert plain["bukti transfer.bin"] == big
    assert plain["kontrak.pdf"] == small
    assert plain["lampiran.txt"] == follow_up_file
    assert marker.decode() in plain["pesan.txt"].decode()
    report = plain["laporan.json"].decode()
    assert marker.decode() in report and GOOD_ANSWERS["siapa"] in report


def test_receipt_and_case_show_the_wib_day_the_deadline_counts_from(demo, reporter) -> None:  # type: ignore[no-untyped-def]
    # 00:30 WIB on Thursday 3 December is still 2 December in UTC: the pelapor sent the report
    # on 3 December, and the 7-working-day promise counts from that day (due 14 December).
    with time_machine.travel(CLOCKS["00:30-wib"]):
        reporter.new_codename()
        sent = reporter.send_report()
        receipt = check_page(reporter.client.get(sent.headers["Location"]))
        case = check_page(reporter.get("/pengaduan"))
    assert "14 Desember 2026" in receipt
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", case))
    assert "Diterima 3 Desember 2026" in text and "2 Desember 2026" not in text
    assert "14 Desember 2026" in text


def test_session_cookie_is_opaque_and_strict(demo, reporter) -> None:  # type: ignore[no-untyped-def]
    codename = reporter.new_codename()
    set_cookies = [c for r in reporter.responses for c in r.headers.getlist("Set-Cookie")]
    session_cookie = next(c for c in set_cookies if c.startswith("peluit_s="))
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie
    assert "Path=/" in session_cookie and "Expires" not in session_cookie
    assert "Secure" not in session_cookie
    assert codename.split()[0] not in session_cookie
    # Flask's own signed cookie holds the CSRF secret and nothing else.
    flask_cookie = reporter.client.get_cookie("peluit_csrf")
    assert flask_cookie is not None
    data = demo.app.session_interface.get_signing_serializer(demo.app).loads(flask_cookie.value)
    assert set(data) == {"csrf_token"}


# --- refusals that store nothing -------------------------------------------------------------


def test_oversized_upload_gets_a_clear_page_and_stores_nothing(demo, reporter) -> None:  # type: ignore[no-untyped-def]
    reporter.new_codename()
    before, cases = store_files(demo), count_cases(demo)
    response = reporter.send_report(files=[("besar.bin", b"x" * (MAX_UPLOAD + 1))])
    assert "Kiriman Anda terlalu besar" in check_page(response, 413)
    assert store_files(demo) == before and count_cases(demo) == cases


def test_dropped_connection_removes_what_was_stored(demo, reporter, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    opened: list[str] = []
    original = Intake.open_file

    def counting(self, name, filename, fields=None):  # type: ignore[no-untyped-def]
        opened.append(filename)
        return original(self, name, filename, fields)

    monkeypatch.setattr(Intake, "open_file", counting)
    reporter.new_codename()
    fields = [("csrf_token", reporter.token()), ("website", ""), *GOOD_ANSWERS.items()]
    body, content_type = multipart(
        fields,
        [("file", "satu.bin", os.urandom(200_000)), ("file", "dua.bin", os.urandom(200_000))],
    )
    cut = body[: len(body) - 100_000]  # the first file complete, the second half-way
    before, cases = store_files(demo), count_cases(demo)
    response = reporter.client.post(
        f"/t/{TENANT}/lapor",
        input_stream=io.BytesIO(cut),
        content_length=len(body),
        content_type=content_type,
    )
    assert response.status_code == 400
    assert opened == ["satu.bin", "dua.bin"]  # the first file was stored, then removed
    assert store_files(demo) == before and count_cases(demo) == cases


@pytest.mark.parametrize("token", [None, "wrong"])
def test_upload_without_a_valid_csrf_token_is_refused(demo, reporter, token) -> None:  # type: ignore[no-untyped-def]
    reporter.new_codename()
    before = store_files(demo)
    response = reporter.send_report(files=[("a.txt", b"data")], token=token or "")
    check_page(response, 400)
    assert store_files(demo) == before


def test_small_forms_need_a_csrf_token(reporter) -> None:  # type: ignore[no-untyped-def]
    check_page(reporter.post("/masuk", data={"codename": "a b c"}), 400)
    check_page(reporter.post("/masuk", data={"codename": "a b c", "csrf_token": "x"}), 400)


def test_filled_honeypot_is_refused_without_storing(demo, reporter) -> None:  # type: ignore[no-untyped-def]
    reporter.new_codename()
    before, cases = store_files(demo), count_cases(demo)
    token = reporter.token()
    fields = [("csrf_token", token), ("website", "http://spam.example"), *GOOD_ANSWERS.items()]
    body, content_type = multipart(fields, [("file", "a.txt", b"spam")])
    response = reporter.post("/lapor", data=body, content_type=content_type)
    assert response.status_code == 400
    assert store_files(demo) == before and count_cases(demo) == cases


def test_validation_errors_keep_what_was_typed(demo, reporter) -> None:  # type: ignore[no-untyped-def]
    reporter.new_codename()
    before = store_files(demo)
    answers = dict(GOOD_ANSWERS, apa="terlalu pendek", siapa="Bendahara <Dinas> PU")
    response = reporter.send_report(answers, [("bukti.pdf", b"%PDF bukti")])
    html = check_page(response, 400)
    assert "Bendahara &lt;Dinas&gt; PU" in html  # kept, and escaped
    assert "terlalu pendek</textarea>" in html
    assert 'value="suap_menyuap" selected' in html
    assert "sedikitnya 30 karakter" in html and "berkas harus dipilih lagi" in html
    assert store_files(demo) == before


def test_codename_must_be_confirmed_and_drawn_by_the_server(demo, reporter) -> None:  # type: ignore[no-untyped-def]
    page = reporter.get("/kode-baru").get_data(as_text=True)
    codename = re.search(r'name="codename" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    tag = re.search(r'name="tag" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    unticked = reporter.post(
        "/kode-baru", data={"csrf_token": csrf_token(page), "codename": codename, "tag": tag}
    )
    assert codename in check_page(unticked) and "Centang kotak" in unticked.get_data(as_text=True)
    chosen = " ".join(codename.split()[::-1])
    forged = reporter.post(
        "/kode-baru",
        data={"csrf_token": csrf_token(page), "codename": chosen, "tag": tag, "noted": "1"},
    )
    check_page(forged, 400)


# --- login ---------------------------------------------------------------------------------


def test_wrong_codename_and_another_tenants_codename_get_the_same_answer(demo, client) -> None:  # type: ignore[no-untyped-def]
    at_a = Reporter(client, TENANT)
    codename = at_a.new_codename()
    at_a.logout()
    at_b = Reporter(demo.app.test_client(), OTHER_TENANT)
    foreign = at_b.login(codename)
    words = codename.split()
    unknown = at_b.login(" ".join(words[1:] + words[:1]))
    assert foreign.status_code == unknown.status_code == 200
    message = "Tidak ditemukan pengaduan dengan kode ini"
    assert message in check_page(foreign) and message in check_page(unknown)
    malformed = check_page(at_b.login("bukan kode"))
    assert "Itu bukan kode" in malformed and message not in malformed
    # The right tenant lets it in.
    assert Reporter(demo.app.test_client(), TENANT).login(codename).status_code == 302


# --- following up --------------------------------------------------------------------------


def test_reply_is_shown_and_can_be_deleted_after_confirmation(demo, reporter) -> None:  # type: ignore[no-untyped-def]
    reporter.new_codename()
    reporter.send_report()
    case_id = _last_case_id(demo)
    reply_id = _reply(demo, case_id, "Terima kasih, kami sedang memverifikasi.")
    cases = check_page(reporter.get("/pengaduan"))
    assert "kami sedang memverifikasi" in cases
    # The link names the reply by an opaque token, never its sequential database id.
    link = _delete_link(cases)
    assert f"/balasan/{reply_id}/" not in cases
    # Another reporter cannot use it.
    stranger = Reporter(demo.app.test_client())
    stranger.new_codename()
    check_page(stranger.get(link), 404)
    confirm = check_page(reporter.get(link))
    done = reporter.post(link, data={"csrf_token": csrf_token(confirm)})
    assert done.status_code == 302
    assert "kami sedang memverifikasi" not in check_page(reporter.get("/pengaduan"))
    with demo.inst.sessions() as session:
        assert session.get(Reply, reply_id) is None


def test_another_sources_case_is_not_found(demo, client) -> None:  # type: ignore[no-untyped-def]
    first = Reporter(client)
    first.new_codename()
    first.send_report()
    case_id = _last_case_id(demo)
    second = Reporter(demo.app.test_client())
    second.new_codename()
    check_page(second.get(f"/tanda-terima/{_number(demo, case_id)}"), 404)
    token = second.token("/pengaduan")
    body, content_type = multipart([("csrf_token", token), ("message", "halo")], [])
    sent = second.post(f"/pengaduan/{_number(demo, case_id)}/kirim", data=body,
                       content_type=content_type)
    check_page(sent, 404)


def test_empty_follow_up_is_refused(demo, reporter) -> None:  # type: ignore[no-untyped-def]
    reporter.new_codename()
    reporter.send_report()
    html = check_page(reporter.send_follow_up(_number(demo, _last_case_id(demo)), "   "), 400)
    assert "Tulis pesan atau lampirkan berkas" in html


# --- intake closed, flooding ---------------------------------------------------------------


def test_tenant_without_keys_shows_intake_closed(demo) -> None:  # type: ignore[no-untyped-def]
    with demo.inst.sessions() as session:
        if session.scalar(sa.select(Tenant).where(Tenant.slug == "pemkot-tanpa-kunci")) is None:
            create_tenant(session, slug="pemkot-tanpa-kunci", name="Pemkot Uji",
                          kind=TenantKind.PEMERINTAH_KOTA)
            session.commit()
    reporter = Reporter(demo.app.test_client(), "pemkot-tanpa-kunci")
    reporter.new_codename()
    before = store_files(demo)
    html = check_page(reporter.send_report(files=[("a.txt", b"isi")]), 503)
    assert "ditutup sementara" in html
    assert store_files(demo) == before


def test_tenant_quota_slows_new_reports(demo) -> None:  # type: ignore[no-untyped-def]
    app = create_app(demo.inst, testing=True, flood_limits=FloodLimits(tenant_new_cases_per_hour=1))
    first = Reporter(app.test_client())
    first.new_codename()
    assert first.send_report().status_code == 302
    second = Reporter(app.test_client())
    second.new_codename()
    before, cases = store_files(demo), count_cases(demo)
    response = second.send_report(files=[("a.txt", b"isi")])
    assert "Mohon tunggu" in check_page(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    assert store_files(demo) == before and count_cases(demo) == cases
    # Follow-ups on an existing report are not slowed by the tenant quota.
    assert first.send_follow_up(_number(demo, _last_case_id(demo)), "tambahan").status_code == 302


def test_sliding_window_counts_and_forgets() -> None:
    now = [0.0]
    window = SlidingWindow(2, 60, clock=lambda: now[0])
    assert window.hit("a") == 0 and window.hit("a") == 0
    assert window.hit("a") == 60 and window.hit("b") == 0
    now[0] = 59.5
    assert window.retry_after("a") == 1
    now[0] = 60.0
    assert window.hit("a") == 0


def test_flood_guard_limits_each_source_and_tenant() -> None:
    now = [0.0]
    guard = FloodGuard(
        FloodLimits(tenant_new_cases_per_hour=3, source_new_cases_per_hour=1), clock=lambda: now[0]
    )
    assert guard.new_case_wait(1, "a" * 64) == 0
    guard.record_new_case(1, "a" * 64)
    assert guard.new_case_wait(1, "a" * 64) == 3600
    assert guard.new_case_wait(1, "b" * 64) == 0
    assert guard.new_case_wait(2, "a" * 64) == 0  # per tenant
    guard.record_new_case(1, "b" * 64)
    guard.record_new_case(1, "c" * 64)
    assert guard.new_case_wait(1, "d" * 64) > 0  # the tenant's hour is full
    now[0] = 3600.0
    assert guard.new_case_wait(1, "d" * 64) == 0


def test_server_error_page_and_log_reveal_nothing(demo, reporter, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    import source_iface.views as views

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret detail from a report")

    reporter.new_codename()
    monkeypatch.setattr(views, "source_cases", broken)
    monkeypatch.setitem(demo.app.config, "PROPAGATE_EXCEPTIONS", False)
    with caplog.at_level(logging.ERROR):
        response = reporter.get("/pengaduan")
    html = check_page(response, 500)
    assert "secret detail" not in html
    assert "secret detail" not in caplog.text and "/pengaduan" not in caplog.text
    assert "RuntimeError" in caplog.text


# --- helpers --------------------------------------------------------------------------------


def _last_case_id(demo) -> int:  # type: ignore[no-untyped-def]
    with demo.inst.sessions() as session:
        return int(session.scalar(sa.select(sa.func.max(Case.id))) or 0)


def _delete_link(cases_html: str) -> str:
    found = re.search(r'href="/t/[a-z-]+(/balasan/[0-9a-f]{20}/hapus)"', cases_html)
    assert found, "no link to delete a reply"
    return found.group(1)


def _number(demo, case_id: int) -> str:  # type: ignore[no-untyped-def]
    """The registration number: how the pelapor's pages name a case."""
    with demo.inst.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.registration_number


def _reply(demo, case_id: int, text: str, *, klarifikasi: bool = False) -> int:  # type: ignore[no-untyped-def]
    with demo.inst.sessions() as session:
        case = session.get(Case, case_id)
        tenant = session.get(Tenant, case.tenant_id)
        ctx = Context(demo.inst, session, tenant)
        if klarifikasi:
            # The question goes to the pelapor as an encrypted reply.
            change_status(ctx, case, CaseStatus.KLARIFIKASI, text)
            return case.replies[-1].id
        return post_reply(ctx, case, text).id


def test_language_link_sets_a_cookie_and_stays_on_this_site(client) -> None:  # type: ignore[no-untyped-def]
    back = f"/t/{TENANT}/panduan"
    switched = client.get(f"/t/{TENANT}/bahasa/en", query_string={"next": back})
    assert switched.status_code == 302 and switched.headers["Location"] == back
    assert "peluit_l=en" in switched.headers["Set-Cookie"]
    assert "Before you start" in check_page(client.get(back), lang="en")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        away = client.get(f"/t/{TENANT}/bahasa/id", query_string={"next": target})
        assert away.headers["Location"] == f"/t/{TENANT}/"
    check_page(client.get(f"/t/{TENANT}/bahasa/xx"), 404, lang="id")


def test_registration_goes_through_the_login_throttle(demo) -> None:  # type: ignore[no-untyped-def]
    # Each registration costs two argon2id runs and a key generation: a flood of them is
    # throttled like a flood of logins, and nothing is created while throttled.
    app = create_app(demo.inst, testing=True, flood_limits=FloodLimits(tenant_logins_per_minute=1))
    Reporter(app.test_client()).new_codename()
    second = Reporter(app.test_client())
    with demo.inst.sessions() as session:
        sources = session.scalar(sa.select(sa.func.count()).select_from(Source))
    page = second.get("/kode-baru").get_data(as_text=True)
    response = second.post("/kode-baru", data={
        "csrf_token": csrf_token(page),
        "codename": _CODENAME.search(page).group(1),  # type: ignore[union-attr]
        "tag": _TAG.search(page).group(1),  # type: ignore[union-attr]
        "noted": "1",
    })
    check_page(response, 429)
    with demo.inst.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Source)) == sources


def test_a_new_login_ends_the_previous_session(demo, reporter) -> None:  # type: ignore[no-untyped-def]
    codename = reporter.new_codename()
    old = reporter.client.get_cookie("peluit_s").value
    assert reporter.login(codename).status_code == 302
    new = reporter.client.get_cookie("peluit_s").value
    assert new != old
    stale = Reporter(reporter.client.application.test_client())
    stale.client.set_cookie("peluit_s", old)
    response = stale.get("/pengaduan")
    assert response.status_code == 302 and "/masuk" in response.headers["Location"]


def test_key_derivations_queue_and_a_full_queue_asks_to_come_back(demo) -> None:  # type: ignore[no-untyped-def]
    # argon2id takes 64 MiB a run: a flood of logins waits for a slot instead of taking the
    # memory, and when no slot frees up in time the pelapor is asked to come back.
    limits = FloodLimits(concurrent_kdf=1, kdf_queue_seconds=0.2)
    app = create_app(demo.inst, testing=True, flood_limits=limits)
    reporter = Reporter(app.test_client())
    codename = reporter.new_codename()
    guard = app.extensions["peluit_flood"]
    with guard.kdf_slot() as held:
        assert held
        busy = reporter.login(codename)
    check_page(busy, 429)
    assert busy.headers["Retry-After"] == "60"
    assert reporter.login(codename).status_code == 302


# --- a locked database ------------------------------------------------------------------------


def test_a_database_locked_too_long_gets_the_translated_error_page(demo) -> None:  # type: ignore[no-untyped-def]
    # The same instance with a 0.3 s busy timeout instead of 5 s, served as in production:
    # errors go to the error pages, not to the test.
    url = f"{demo.inst.config.database_url}?timeout=0.3"
    config = dataclasses.replace(demo.inst.config, database_url=url)
    with Instance.open(config) as inst:
        reporter = Reporter(create_app(inst).test_client())
        reporter.new_codename()
        token = reporter.token()
        before, cases = store_files(demo), count_cases(demo)
        # Another connection holds SQLite's write lock for longer than the busy timeout.
        holder = sqlite3.connect(demo.inst.config.database_url.removeprefix("sqlite:///"))
        try:
            holder.execute("BEGIN IMMEDIATE")
            for lang in ("id", "en"):
                reporter.client.set_cookie("peluit_l", lang)
                response = reporter.send_report(files=[("bukti.pdf", b"isi bukti")], token=token)
                # Busy, not broken: 503 and when to come back.
                html = check_page(response, 503, lang=lang)
                assert response.headers["Retry-After"] == "30"
                title = {"id": "Terjadi kesalahan", "en": "Something went wrong"}[lang]
                assert title in html
        finally:
            holder.rollback()
            holder.close()
        assert store_files(demo) == before and count_cases(demo) == cases
        # The lock gone, the same browser sends its report.
        assert reporter.send_report(token=token).status_code == 302
        assert count_cases(demo) == cases + 1


# --- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 3 MiB file system (tmpfs) for the store, so the disk really fills."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(mount)],
        capture_output=True, check=False,
    )
    if done.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (CI and the dev container run as root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


@pytest.mark.parametrize(
    "floor",
    [
        1024 * 1024,  # below 16 MiB: the upload must check the floor often enough to stop
        1,  # no floor to speak of: gpg meets ENOSPC, which must close intake just the same
    ],
)
def test_a_disk_filling_during_an_upload_closes_intake_and_keeps_nothing(  # type: ignore[no-untyped-def]
    demo, small_disk: Path, floor: int
) -> None:
    config = dataclasses.replace(demo.inst.config, store_dir=small_disk, disk_floor_bytes=floor)
    with Instance.open(config) as inst:
        reporter = Reporter(create_app(inst, testing=True).test_client())
        reporter.new_codename()
        cases = count_cases(demo)
        # More than the whole disk, in random (incompressible) bytes, within the upload limit.
        evidence = os.urandom(MAX_UPLOAD - 512 * 1024)
        html = check_page(reporter.send_report(files=[("besar.bin", evidence)]), 503)
        assert "ditutup sementara" in html and "Tidak ada yang disimpan" in html
        assert [p for p in small_disk.rglob("*") if p.is_file()] == []
        assert count_cases(demo) == cases
        # The space is back: a small report goes through.
        assert reporter.send_report(files=[("kecil.txt", b"isi")]).status_code == 302
        assert count_cases(demo) == cases + 1
