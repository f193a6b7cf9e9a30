"""Keyed sketches over HTTP: a tenant's investigators upload their own cases' sketches (page and
API), malformed files and other tenants' cases are refused with nothing stored; KPK's monitor
sees candidate pairs across tenants with metadata only; no one else sees them."""

from __future__ import annotations

import io
import json
import re

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from journalist_iface.duplicates import refusal_message
from tests.journalist_iface.conftest import TENANT, Browser, Demo, add_bare_cases, logged_in
from tests.journalist_iface.test_api import api_login
from wbs.casework import Refusal
from wbs.domain import Role, TenantKind
from wbs.models import Case, CaseSketch
from wbs.tenants import create_tenant, get_tenant
from workstation.sketches import sketch_document

KEY = bytes(range(32))
OTHER = "pemkot-medan"
AFFAIR = {
    "apa": "Kepala dinas meminta fee proyek jembatan gantung dari kontraktor CV Karya Mandiri.",
    "siapa": "Bapak Ir. Hendra Siregar, M.M., Kepala Dinas PU",
    "kapan": "Maret 2025",
    "dimana": "Dinas Pekerjaan Umum Kota Prabumulih",
    "bagaimana": "Fee diserahkan tunai di rumah makan dekat kantor.",
    "berapa": "Rp 1,5 miliar",
    "kronologi": "Kontraktor yang menolak membayar tidak mendapat pekerjaan.",
}
RETOLD = {
    "apa": "Pimpinan dinas menuntut setoran dari penyedia untuk paket jembatan gantung.",
    "siapa": "Hendra Siregar",
    "kapan": "03/2025",
    "dimana": "di kantor dinas pekerjaan umum kota prabumulih",
    "bagaimana": "CV Karya Mandiri harus menyetor sebelum kontrak ditandatangani.",
    "berapa": "satu setengah miliar rupiah",
    "kronologi": "Uang diberikan dalam amplop di rumah makan dekat kantor.",
}


@pytest.fixture(scope="module", autouse=True)
def other_tenant(demo: Demo) -> None:
    with demo.inst.sessions() as session:
        create_tenant(session, slug=OTHER, name="Pemkot Medan", kind=TenantKind.PEMERINTAH_KOTA)
        session.commit()


def _numbers(demo: Demo, ids: list[int]) -> list[str]:
    with demo.inst.sessions() as session:
        return [session.get_one(Case, case_id).registration_number for case_id in ids]


def _document(reports: dict[str, dict[str, str]]) -> bytes:
    return json.dumps(sketch_document(KEY, reports).to_json()).encode()


def _upload(browser: Browser, data: bytes) -> object:
    return browser.post(
        "/sketsa", token_from="/sketsa",
        data={"sketches": (io.BytesIO(data), "sketsa.json")}, content_type="multipart/form-data",
    )


def _stored(demo: Demo) -> int:
    with demo.inst.sessions() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(CaseSketch)) or 0)


def test_an_investigator_uploads_the_sketches_of_their_cases(demo: Demo) -> None:
    first, second = _numbers(demo, add_bare_cases(demo, 2))
    browser = logged_in(demo)
    page = browser.get("/sketsa").get_data(as_text=True)
    assert "sketches export --tenant pemprov-sumsel" in page
    response = _upload(browser, _document({first: AFFAIR, second: RETOLD}))
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "Sketsa tersimpan: 2." in response.get_data(as_text=True)  # type: ignore[attr-defined]
    with demo.inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        rows = session.execute(
            sa.select(Case.registration_number, CaseSketch.tenant_id)
            .join(Case, Case.id == CaseSketch.case_id)
            .where(Case.registration_number.in_([first, second]))
        ).all()
    assert sorted(rows) == sorted([(first, tenant.id), (second, tenant.id)])


def test_malformed_files_and_other_tenants_cases_are_refused(demo: Demo) -> None:
    (own,) = _numbers(demo, add_bare_cases(demo, 1))
    (theirs,) = _numbers(demo, add_bare_cases(demo, 1, tenant="kpk"))
    browser = logged_in(demo)
    before = _stored(demo)
    refused = _upload(browser, _document({own: AFFAIR, theirs: RETOLD}))
    text = refused.get_data(as_text=True)  # type: ignore[attr-defined]
    assert refused.status_code == 400  # type: ignore[attr-defined]
    assert "bukan pengaduan instansi ini" in text and theirs in text
    malformed = json.loads(_document({own: AFFAIR}))
    malformed["sketches"][0]["apa"] = AFFAIR["apa"]
    for data in (b"{}", b"\x00garbage", json.dumps(malformed).encode()):
        response = _upload(browser, data)
        assert response.status_code == 400  # type: ignore[attr-defined]
        assert "Ini bukan berkas sketsa" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert _stored(demo) == before


def test_every_sketch_refusal_has_a_translated_sentence(demo: Demo) -> None:
    for refusal in (
        Refusal("unknown_cases", "English", count=2, numbers="A, B"),
        Refusal("bad_sketches", "English"),
        Refusal("sketches_too_large", "English", limit=1),
    ):
        with demo.app.test_request_context(), force_locale("id"):
            indonesian = refusal_message(refusal)
        with demo.app.test_request_context(), force_locale("en"):
            english = refusal_message(refusal)
        assert indonesian and english and indonesian != english, refusal.code


def test_kpk_monitor_sees_pairs_across_tenants_and_no_one_else_does(demo: Demo) -> None:
    (sumsel,) = _numbers(demo, add_bare_cases(demo, 1))
    (medan,) = _numbers(demo, add_bare_cases(demo, 1, tenant=OTHER))
    assert _upload(logged_in(demo), _document({sumsel: AFFAIR})).status_code == 200  # type: ignore[attr-defined]
    assert _upload(logged_in(demo, OTHER), _document({medan: RETOLD})).status_code == 200  # type: ignore[attr-defined]

    monitor = logged_in(demo, "kpk", Role.PEMANTAU_KPK)
    page = monitor.get("/pemantau/duplikat")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    row = next(line for line in html.split("<tr>") if sumsel in line and medan in line)
    assert "Pemerintah Provinsi Sumatera Selatan" in row and "Pemkot Medan" in row
    assert "Baru" in row and "Gratifikasi" in row
    # Metadata only: the server has no content, and the page shows no signature values.
    assert "Hendra" not in html and "jembatan" not in html
    assert not re.search(r"\d{7,}", html)

    for slug, role in ((TENANT, Role.VERIFIKATOR), (TENANT, Role.ADMIN_INSTANSI),
                       (OTHER, Role.VERIFIKATOR)):
        assert logged_in(demo, slug, role).get("/pemantau/duplikat").status_code == 403


def test_the_api_takes_sketches_and_shows_pairs_to_the_monitor_only(demo: Demo) -> None:
    (sumsel,) = _numbers(demo, add_bare_cases(demo, 1))
    (medan,) = _numbers(demo, add_bare_cases(demo, 1, tenant=OTHER))
    api = api_login(demo)
    body = _document({sumsel: AFFAIR})
    stored = api.post("/api/v1/sketches", data=body, content_type="application/json")
    assert stored.status_code == 200 and stored.get_json() == {"stored": 1}
    assert api.post("/api/v1/sketches", data=body, content_type="text/plain").status_code == 415
    bad = api.post("/api/v1/sketches", data=b"[1]", content_type="application/json")
    assert bad.status_code == 400 and bad.get_json()["error"] == "bad_sketches"
    foreign = api.post(
        "/api/v1/sketches", data=_document({medan: RETOLD}), content_type="application/json"
    )
    assert foreign.status_code == 400 and foreign.get_json()["error"] == "unknown_cases"

    other = api_login(demo, OTHER)
    assert other.post(
        "/api/v1/sketches", data=_document({medan: RETOLD}), content_type="application/json"
    ).status_code == 200
    assert other.get("/api/v1/duplicates").status_code == 403
    assert api.get("/api/v1/duplicates").status_code == 403

    listed = api_login(demo, "kpk", Role.PEMANTAU_KPK).get("/api/v1/duplicates")
    assert listed.status_code == 200
    pair = next(
        p for p in listed.get_json()["pairs"]
        if {c["registration_number"] for c in p["cases"]} == {sumsel, medan}
    )
    assert {c["tenant"] for c in pair["cases"]} == {TENANT, OTHER}
    assert pair["score"] >= 0.6 and pair["parts"]["siapa"] == 1.0
    assert set(pair["cases"][0]) == {"registration_number", "tenant", "status", "category"}
