"""KPK's monitoring page and the instansi summary: who may see them, and that they show what
wbs.monitoring computes, in both languages, without script or style attributes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
import time_machine
from pypdf import PdfReader

from journalist_iface import export, tilemap
from tests.journalist_iface.conftest import HUB, TENANT, Demo, add_bare_cases, logged_in
from tests.support import midday_wib, wib_today
from wbs.casework import change_status
from wbs.context import Context
from wbs.domain import CATEGORY_LABELS, CaseStatus, Role, TenantKind
from wbs.models import Case, utcnow
from wbs.monitoring import (
    Dashboard,
    Filters,
    Period,
    dashboard,
    province_dashboard,
    tenant_summary,
)
from wbs.provinces import CLASSES, PROVINCES, province_map
from wbs.tenancy import TenantScope
from wbs.tenants import create_tenant, get_tenant
from wbs.workdays import local_date

_FIGURE = re.compile(r'<(?:dd|p|tr) id="([a-z0-9_-]+)"[^>]*>(.*?)</(?:dd|p|tr)>', re.S)
_CELL = re.compile(r'<td class="num[^"]*">([^<]*)</td>')


@pytest.fixture(autouse=True)
def _no_new_day_midway() -> Iterator[None]:
    # Each test compares a page with figures computed beside it: the WIB date must not change
    # in between (it does at 17:00 UTC), so the clock runs from noon WIB of today's date.
    with time_machine.travel(midday_wib(), tick=True):
        yield


def _indonesian(value: float | None) -> str:
    """What the page shows for a small number in Indonesian (3,5; a dash for none)."""
    if value is None:
        return "—"
    return f"{value:g}".replace(".", ",")


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{round(share * 100)}%"


def _figures(html: str) -> dict[str, str]:
    return {key: body.strip() for key, body in _FIGURE.findall(html)}


def _row(html: str, row_id: str) -> list[str]:
    found = re.search(rf'<tr id="{re.escape(row_id)}">(.*?)</tr>', html, re.S)
    assert found, f"no row {row_id}"
    return _CELL.findall(found.group(1))


@pytest.fixture(scope="module")
def seeded(demo: Demo) -> Demo:
    """Cases in the demo tenant: overdue, answered (through the real change_status), mapped."""
    past = wib_today() - dt.timedelta(days=20)
    add_bare_cases(demo, 3, category="pemerasan", mcp_area="perizinan", first_response_due=past)
    answered = add_bare_cases(demo, 2, category="suap_menyuap", mcp_area=None)
    add_bare_cases(demo, 1, HUB, category="gratifikasi", mcp_area="perizinan")
    with demo.inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        for case_id in answered:
            case = TenantScope(session, tenant).get(Case, case_id)
            assert case is not None
            change_status(Context(demo.inst, session, tenant), case, CaseStatus.VERIFIKASI)
    return demo


def _expected_hub(demo: Demo, tenant_slug: str | None = None) -> Dashboard:
    with demo.inst.sessions() as session:
        hub = get_tenant(session, HUB)
        tenant_id = get_tenant(session, tenant_slug).id if tenant_slug else None
        return dashboard(
            session,
            hub,
            today=local_date(utcnow()),
            tenant_id=tenant_id,
        )


def _check_page(html: str, board: Dashboard) -> None:
    figures = _figures(html)
    assert figures["fig-total"] == _indonesian(board.total)
    assert figures["fig-open"] == _indonesian(board.open)
    assert figures["fig-overdue-first"] == _indonesian(board.overdue_first_response)
    assert figures["fig-overdue-closure"] == _indonesian(board.overdue_closure)
    assert figures["fig-responded"] == _indonesian(board.responded)
    assert figures["fig-median-days"] == _indonesian(board.median_first_response_days)
    assert figures["fig-median-working-days"] == _indonesian(
        board.median_first_response_working_days
    )
    assert figures["fig-without-mcp"].endswith(_indonesian(board.without_mcp_area))
    for status in board.by_status:
        assert _row(html, f"status-{status.status.value}") == [_indonesian(status.count)]
    for category in board.by_category:
        assert _row(html, f"category-{category.code}") == [_indonesian(category.count)]
    for area in board.by_mcp_area:
        assert _row(html, f"mcp-{area.code}") == [_indonesian(area.count)]
    for line in board.tenants:
        assert _row(html, f"tenant-{line.slug}") == [
            _indonesian(value)
            for value in (line.total, line.open, line.overdue_first_response, line.overdue_closure)
        ] + [_percent(line.compliance), _indonesian(line.median_first_response_working_days)]
    for line in board.handed:
        assert _row(html, f"handoff-{line.slug}") == [
            _indonesian(value)
            for value in (line.forwarded, line.taken_over, line.merged, line.received)
        ]
    for month in board.trend:
        assert _row(html, f"trend-{month.month:%Y-%m}") == [
            _indonesian(month.received), _percent(month.compliance)]
    # Served as it is: no script, no style attribute, nothing from elsewhere.
    assert "<script" not in html.lower()
    assert " style=" not in html.lower()
    assert "http://" not in html and "https://" not in html.replace("https://www.w3", "")


# --- who may see what -------------------------------------------------------------------------


def test_verifikator_sees_neither_page(demo: Demo) -> None:
    browser = logged_in(demo, TENANT, Role.VERIFIKATOR)
    assert browser.get("/pemantauan").status_code == 403
    assert browser.get("/ringkasan").status_code == 403
    assert "/pemantauan" not in browser.get("/").get_data(as_text=True)


def test_admin_sees_the_own_summary_only(demo: Demo) -> None:
    browser = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    assert browser.get("/pemantauan").status_code == 403
    assert browser.get("/ringkasan").status_code == 200
    assert 'href="/ringkasan"' in browser.get("/").get_data(as_text=True)


def test_monitor_sees_the_dashboard(demo: Demo) -> None:
    browser = logged_in(demo, HUB, Role.PEMANTAU_KPK)
    assert browser.get("/pemantauan").status_code == 200
    assert browser.get("/ringkasan").status_code == 403
    assert 'href="/pemantauan"' in browser.get("/").get_data(as_text=True)


def test_anonymous_goes_to_login(demo: Demo) -> None:
    client = demo.app.test_client()
    for path in ("/pemantauan", "/ringkasan"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/masuk" in response.location


# --- the numbers ------------------------------------------------------------------------------


def test_dashboard_shows_the_monitoring_figures(seeded: Demo) -> None:
    browser = logged_in(seeded, HUB, Role.PEMANTAU_KPK)
    html = browser.get("/pemantauan").get_data(as_text=True)
    board = _expected_hub(seeded)
    assert board.total >= 6 and board.responded >= 2 and board.overdue_first_response >= 3
    _check_page(html, board)
    assert "Pemantauan KPK" in html


def test_dashboard_filters_by_tenant(seeded: Demo) -> None:
    browser = logged_in(seeded, HUB, Role.PEMANTAU_KPK)
    with seeded.inst.sessions() as session:
        tenant_id = get_tenant(session, TENANT).id
    response = browser.get(f"/pemantauan?instansi={tenant_id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    board = _expected_hub(seeded, TENANT)
    assert [line.tenant_id for line in board.tenants] == [tenant_id]
    _check_page(html, board)
    assert f'<option value="{tenant_id}" selected>' in html
    assert browser.get("/pemantauan?instansi=999999").status_code == 404
    assert browser.get("/pemantauan?instansi=x").status_code == 404


def test_summary_shows_the_own_figures(seeded: Demo) -> None:
    browser = logged_in(seeded, TENANT, Role.ADMIN_INSTANSI)
    html = browser.get("/ringkasan").get_data(as_text=True)
    with seeded.inst.sessions() as session:
        board = tenant_summary(
            session,
            get_tenant(session, TENANT),
            local_date(utcnow()),
        )
    _check_page(html, board)
    assert "tenant-kpk" not in html
    assert "Ringkasan instansi" in html


def test_both_languages(seeded: Demo) -> None:
    browser = logged_in(seeded, HUB, Role.PEMANTAU_KPK)
    html = browser.get("/pemantauan").get_data(as_text=True)
    assert '<html lang="id">' in html
    assert "Menurut area MCP (titik rawan korupsi)" in html
    browser.client.set_cookie("peluit_jl", "en")
    html = browser.get("/pemantauan").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "KPK monitoring" in html
    assert "By MCP area (corruption-prone points)" in html
    assert "Median time to first response (working days)" in html


# --- filters and downloads --------------------------------------------------------------------


def test_dashboard_filters_by_period_kind_category_and_area(seeded: Demo) -> None:
    browser = logged_in(seeded, HUB, Role.PEMANTAU_KPK)
    this_month = Period.month_of(wib_today())
    wanted = Filters(period=this_month, kind=TenantKind.PEMERINTAH_PROVINSI, category="pemerasan",
                     mcp_area="perizinan")
    response = browser.get(f"/pemantauan?periode={this_month.key}&jenis=pemerintah_provinsi"
                           "&kategori=pemerasan&area=perizinan")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    with seeded.inst.sessions() as session:
        board = dashboard(session, get_tenant(session, HUB), today=local_date(utcnow()),
                          filters=wanted)
    assert board.total >= 3 and board.category_counts() == {"pemerasan": board.total}
    _check_page(html, board)
    assert f'<option value="{this_month.key}" selected>' in html
    assert '<option value="pemerintah_provinsi" selected>' in html


@pytest.mark.parametrize("query", ["periode=2025-13", "periode=" + "9" * 5000, "jenis=negara",
                                   "kategori=tidak_ada", "area=%3Cscript%3E"])
def test_a_malformed_filter_is_refused(seeded: Demo, query: str) -> None:
    browser = logged_in(seeded, HUB, Role.PEMANTAU_KPK)
    assert browser.get(f"/pemantauan?{query}").status_code == 400
    assert browser.get(f"/pemantauan/ekspor.xlsx?{query}").status_code == 400


def test_an_unknown_province_is_not_found(seeded: Demo) -> None:
    browser = logged_in(seeded, HUB, Role.PEMANTAU_KPK)
    assert browser.get("/pemantauan?provinsi=Atlantis").status_code == 404


def test_every_table_downloads_as_xlsx_with_the_pages_figures(seeded: Demo) -> None:
    browser = logged_in(seeded, HUB, Role.PEMANTAU_KPK)
    response = browser.get("/pemantauan/ekspor.xlsx")
    assert response.status_code == 200
    assert response.mimetype == export.XLSX_TYPE
    assert "attachment" in response.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    assert book.sheetnames == [
        "Angka utama", "Menurut status", "Menurut kategori", "Menurut provinsi", "Menurut area MCP",
        "Menurut saluran", "Menurut instansi", "Tren bulanan", "Tertinggal"]
    board = _expected_hub(seeded)
    sheet = book["Menurut instansi"]
    rows = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    for line in board.tenants:
        found = rows[line.name]
        assert found[3:10] == (line.total, line.open, line.overdue_first_response,
                               line.overdue_closure, line.first_response_met,
                               line.first_response_late, line.first_response_missing)
    trend = list(book["Tren bulanan"].iter_rows(min_row=2, values_only=True))
    assert [(row[0], row[1]) for row in trend] == [
        (month.month.strftime("%Y-%m"), month.received) for month in board.trend]


def test_one_table_downloads_as_csv(seeded: Demo) -> None:
    browser = logged_in(seeded, TENANT, Role.ADMIN_INSTANSI)
    html = browser.get("/ringkasan").get_data(as_text=True)
    assert 'href="/ringkasan/ekspor.csv?tabel=status"' in html
    response = browser.get("/ringkasan/ekspor.csv?tabel=status")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    with seeded.inst.sessions() as session:
        board = tenant_summary(session, get_tenant(session, TENANT), local_date(utcnow()))
    assert rows[0] == ["Status", "Pengaduan"]
    assert [int(row[1]) for row in rows[1:]] == [row.count for row in board.by_status]
    assert browser.get("/ringkasan/ekspor.csv?tabel=rahasia").status_code == 404
    assert browser.get("/ringkasan/ekspor.docx").status_code == 404
    assert browser.get("/pemantauan/ekspor.xlsx").status_code == 403
    verifikator = logged_in(seeded, TENANT, Role.VERIFIKATOR)
    assert verifikator.get("/ringkasan/ekspor.csv").status_code == 403


def test_text_that_looks_like_a_formula_stays_text() -> None:
    table = export.Table("t", "T", ("Instansi", "Laporan"), (("=HYPERLINK(\"x\")", 3),
                                                            ("@SUM(A1)", 1), ("Biasa", 2),
                                                            ("  +1+1", 4)))
    rows = list(csv.reader(io.StringIO(export.csv_bytes(table).decode("utf-8-sig"))))
    assert rows[1:] == [["'=HYPERLINK(\"x\")", "3"], ["'@SUM(A1)", "1"], ["Biasa", "2"],
                        ["'  +1+1", "4"]]
    book = openpyxl.load_workbook(io.BytesIO(export.xlsx([table])))
    cells = [row[0] for row in book["T"].iter_rows(min_row=2)]
    assert [(cell.value, cell.data_type) for cell in cells] == [
        ("=HYPERLINK(\"x\")", "s"), ("@SUM(A1)", "s"), ("Biasa", "s"), ("  +1+1", "s")]


# --- a province coordinating its kabupaten and kota ------------------------------------------


def test_a_province_sees_its_kabupaten_and_kota_and_nothing_else(seeded: Demo) -> None:
    with seeded.inst.sessions() as session:
        made = {
            slug: create_tenant(session, slug=slug, name=name, kind=kind, province=province).id
            for slug, name, kind, province in [
                ("pemkot-plg", "Pemkot Palembang", TenantKind.PEMERINTAH_KOTA, "Sumatera Selatan"),
                ("pemkab-oki", "Pemkab OKI", TenantKind.PEMERINTAH_KABUPATEN, "Sumatera Selatan"),
                ("pemkot-bdg", "Pemkot Bandung", TenantKind.PEMERINTAH_KOTA, "Jawa Barat"),
                ("bumd-sumsel", "BUMD Sumsel", TenantKind.BUMD, "Sumatera Selatan"),
            ]
        }
        session.commit()
    for slug in made:
        add_bare_cases(seeded, 2, slug, category="pungutan_liar")
    browser = logged_in(seeded, TENANT, Role.ADMIN_INSTANSI)
    assert 'href="/koordinasi"' in browser.get("/").get_data(as_text=True)
    html = browser.get("/koordinasi").get_data(as_text=True)
    with seeded.inst.sessions() as session:
        own = get_tenant(session, TENANT)
        board = province_dashboard(session, own, today=local_date(utcnow()))
    assert [line.slug for line in board.tenants] == [TENANT, "pemkab-oki", "pemkot-plg"]
    _check_page(html, board)
    assert "Koordinasi provinsi" in html
    for outside in ("pemkot-bdg", "bumd-sumsel", HUB):
        assert f"tenant-{outside}" not in html
    # One of them, and the refusals: a tenant outside the province is not there at all.
    assert browser.get(f"/koordinasi?instansi={made['pemkot-plg']}").status_code == 200
    assert browser.get(f"/koordinasi?instansi={made['pemkot-bdg']}").status_code == 404
    assert browser.get("/koordinasi?jenis=bumd").status_code == 400
    book = openpyxl.load_workbook(io.BytesIO(browser.get("/koordinasi/ekspor.xlsx").get_data()))
    names = [row[0] for row in book["Menurut instansi"].iter_rows(min_row=2, values_only=True)]
    assert names == ["Pemerintah Provinsi Sumatera Selatan", "Pemkab OKI", "Pemkot Palembang"]
    # Not for a verifikator, nor for the admin of a city, nor for KPK's monitor.
    assert logged_in(seeded, TENANT, Role.VERIFIKATOR).get("/koordinasi").status_code == 403
    city_admin = logged_in(seeded, "pemkot-plg", Role.ADMIN_INSTANSI)
    assert city_admin.get("/koordinasi").status_code == 404
    assert 'href="/koordinasi"' not in city_admin.get("/").get_data(as_text=True)
    assert logged_in(seeded, HUB, Role.PEMANTAU_KPK).get("/koordinasi").status_code == 403


def test_the_printable_report_has_its_pages_and_the_figures(seeded: Demo) -> None:
    browser = logged_in(seeded, HUB, Role.PEMANTAU_KPK)
    this_year = str(wib_today().year)
    html = browser.get(f"/pemantauan?periode={this_year}").get_data(as_text=True)
    assert f'href="/pemantauan/ekspor.pdf?periode={this_year}"' in html
    response = browser.get(f"/pemantauan/ekspor.pdf?periode={this_year}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.get_data()))
    pages = [" ".join(page.extract_text().split()) for page in reader.pages]
    # Key figures; the counts with their bars; the provinces' map and table (two pages); the
    # institutions; the months' trend.
    assert len(pages) == 6
    assert "Pemantauan KPK" in pages[0] and "Angka utama" in pages[0]
    assert f"Pengaduan yang diterima pada {this_year}" in pages[0]
    assert all(title in pages[1] for title in ("Menurut status", "Menurut kategori",
                                               "Menurut area MCP", "Menurut saluran"))
    assert "Menurut provinsi" in pages[2] and "Papua Barat Daya" in pages[3]
    assert "Menurut instansi" in pages[4] and "Tertinggal" in pages[4]
    assert "Tren bulanan" in pages[5] and f"{this_year}-01" in pages[5]
    with seeded.inst.sessions() as session:
        board = dashboard(session, get_tenant(session, HUB), today=local_date(utcnow()),
                          filters=Filters(period=Period.parse(this_year)))
    for line in board.tenants:
        assert line.name in pages[4]
    assert f"Pengaduan {board.total}" in pages[0]
    # Printed figures only: no link, no author, and the same bytes for the same figures.
    assert "/URI" not in response.get_data().decode("latin-1")
    assert not (reader.metadata or {}).get("/Author")
    assert browser.get(f"/pemantauan/ekspor.pdf?periode={this_year}").get_data() == (
        response.get_data())


# --- the province map -------------------------------------------------------------------------

_TILE = re.compile(
    r'<g class="tile ([a-z0-9_-]+)" id="(map-[a-z]+)-([0-9]{2})"><title>([^<]*)</title>'
    r'<rect [^>]*/><text [^>]*>([A-Z]{2})</text></g>'
)


def _tiles(html: str) -> dict[tuple[str, str], tuple[str, str, str]]:
    """(map id, province code) -> (CSS class, title, label) of every tile on the page."""
    return {(map_id, code): (css, title, label)
            for css, map_id, code, title, label in _TILE.findall(html)}


def test_the_province_maps_show_reports_and_prone_categories_per_province(
    seeded: Demo,
) -> None:
    with seeded.inst.sessions() as session:
        for slug, name, province in [
            ("pemkot-jkt", "Pemkot Jakarta Pusat", "Jakarta"),
            ("pemkot-antah", "Pemkot Antah", "Negeri Antah Berantah"),
        ]:
            create_tenant(session, slug=slug, name=name, kind=TenantKind.PEMERINTAH_KOTA,
                          province=province)
        session.commit()
    add_bare_cases(seeded, 2, "pemkot-jkt", category="gratifikasi")
    add_bare_cases(seeded, 1, "pemkot-jkt", category="suap_menyuap")
    add_bare_cases(seeded, 3, "pemkot-antah", category="pemerasan")
    browser = logged_in(seeded, HUB, Role.PEMANTAU_KPK)
    html = browser.get("/pemantauan").get_data(as_text=True)
    found = province_map(_expected_hub(seeded))
    tiles = _tiles(html)
    assert len(tiles) == 2 * 38
    for map_id in ("map-reports", "map-categories"):
        assert re.search(rf'<svg class="tile-map" id="{map_id}" [^>]*role="img" aria-label="[^"]+"',
                         html)
    by_code = {line.province.code: line for line in found.provinces}
    jakarta, sumsel, papua = by_code["31"], by_code["16"], by_code["94"]
    assert (jakarta.institutions, jakarta.reports) == (1, 3)
    assert (jakarta.prone_category, jakarta.prone_count) == ("gratifikasi", 2)
    assert tiles["map-reports", "31"][1:] == ("DKI Jakarta. Pengaduan: 3. Instansi: 1.", "JK")
    assert tiles["map-categories", "31"] == (
        "map-k-gratifikasi",
        "DKI Jakarta. Kategori terbanyak: Gratifikasi (2 dari 3 pengaduan).", "JK")
    assert tiles["map-reports", "16"][1] == (
        f"Sumatera Selatan. Pengaduan: {sumsel.reports}. Instansi: {sumsel.institutions}.")
    assert tiles["map-categories", "16"][0] == f"map-k-{sumsel.prone_category}"
    # The scale: the largest province in the darkest class; no institution, an outline.
    largest = max(found.provinces, key=lambda line: line.reports)
    assert tiles["map-reports", largest.province.code][0] == "map-r5"
    assert papua.institutions == 0
    assert tiles["map-reports", "94"] == (
        "map-none", "Papua Tengah. Tidak ada instansi terhubung.", "PT")
    assert tiles["map-categories", "94"][0] == "map-none"
    # The legends name the classes and the categories.
    legend = re.findall(r"<li><svg class=\"map-swatch\".*?</svg> ([^<]*)</li>", html)
    assert legend[:len(found.classes)] == [
        f"{c.low}\u2013{c.high}" if c.low < c.high else f"{c.low}" for c in found.classes]
    assert "map-swatch" in html and "Gratifikasi</li>" in html
    # The same figures as a table; what the map cannot place is said, not dropped.
    for line in found.provinces:
        assert _row(html, f"province-{line.province.code}") == [
            _indonesian(line.institutions), _indonesian(line.reports),
            _indonesian(line.prone_count)]
    assert ("“Negeri Antah Berantah”, nama provinsi yang tidak dikenali. Instansi: 1. "
            "Pengaduan: 3.") in html
    hub = next(line for line in found.unplaced if line.name is None)
    assert (f"Tanpa provinsi. Instansi: {hub.institutions}. "
            f"Pengaduan: {_indonesian(hub.reports)}.") in html
    assert "<script" not in html.lower() and " style=" not in html.lower()
    # Not on one institution's summary; on a province's coordination page.
    summary = logged_in(seeded, TENANT, Role.ADMIN_INSTANSI).get("/ringkasan")
    assert "tile-map" not in summary.get_data(as_text=True)
    coordination = logged_in(seeded, TENANT, Role.ADMIN_INSTANSI).get("/koordinasi")
    assert len(_tiles(coordination.get_data(as_text=True))) == 2 * 38
    # English.
    browser.client.set_cookie("peluit_jl", "en")
    english = _tiles(browser.get("/pemantauan").get_data(as_text=True))
    assert english["map-reports", "31"][1] == "DKI Jakarta. Reports: 3. Institutions: 1."
    assert english["map-categories", "31"][1] == (
        "DKI Jakarta. Most frequent category: Gratification (illicit gifts) (2 of 3 reports).")


def test_the_province_table_downloads_with_every_province_and_the_pdf_draws_the_map(
    seeded: Demo,
) -> None:
    browser = logged_in(seeded, HUB, Role.PEMANTAU_KPK)
    book = openpyxl.load_workbook(io.BytesIO(browser.get("/pemantauan/ekspor.xlsx").get_data()))
    rows = list(book["Menurut provinsi"].iter_rows(values_only=True))
    assert rows[0] == ("Kode", "Provinsi", "Instansi", "Pengaduan", "Kategori terbanyak",
                       "Pengaduan dalam kategori itu")
    found = province_map(_expected_hub(seeded))
    assert [row[:4] for row in rows[1:39]] == [
        (line.province.code, line.province.name, line.institutions, line.reports)
        for line in found.provinces]
    assert len(rows) == 1 + 38 + len(found.unplaced)
    assert sum(row[3] for row in rows[1:]) == _expected_hub(seeded).total
    response = browser.get("/pemantauan/ekspor.pdf")
    pages = [" ".join(page.extract_text().split())
             for page in PdfReader(io.BytesIO(response.get_data())).pages]
    start = next(index for index, text in enumerate(pages) if "Menurut provinsi" in text)
    # The map's tiles (one label per province) and legend, then the table.
    assert all(f" {province.label} " in f" {pages[start]} " for province in PROVINCES)
    assert "Tidak ada instansi terhubung" in pages[start]
    assert "Kalimantan Utara" in " ".join(pages[start:start + 2])
    csv_rows = list(csv.reader(io.StringIO(browser.get(
        "/pemantauan/ekspor.csv?tabel=provinsi").get_data().decode("utf-8-sig"))))
    assert len(csv_rows) == len(rows)


_RULE = re.compile(r"\.(map-[a-z0-9_-]+) (rect|text) \{ fill: (#[0-9a-f]{3,6});")


def _luminance(colour: str) -> float:
    colour = colour.lstrip("#")
    if len(colour) == 3:
        colour = "".join(2 * char for char in colour)
    channels = [int(colour[index:index + 2], 16) / 255 for index in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_every_category_and_class_has_a_colour_whose_label_reads() -> None:
    css = (Path(export.__file__).parent / "static" / "peluit.css").read_text()
    fills: dict[str, dict[str, str]] = {}
    for name, part, colour in _RULE.findall(css):
        fills.setdefault(name, {})[part] = colour
    wanted = {tilemap.category_class(code) for code in CATEGORY_LABELS}
    wanted |= {f"map-r{index}" for index in range(1, CLASSES + 1)}
    wanted |= {"map-zero", "map-none", "map-k-other"}
    assert wanted <= set(fills)
    for name in wanted:
        light, dark = sorted((_luminance(fills[name]["rect"]), _luminance(fills[name]["text"])))
        assert (dark + 0.05) / (light + 0.05) >= 4.5, name  # WCAG AA for the tile's label
    # Each category its own colour.
    categories = [fills[tilemap.category_class(code)]["rect"] for code in CATEGORY_LABELS]
    assert len(set(categories)) == len(categories)
    assert tilemap.category_class("kategori_baru") == "map-k-other"
