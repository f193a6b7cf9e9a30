"""The dashboards' tables as downloads: one table as CSV, or all of them as XLSX (a sheet each).

What the page shows and nothing more: handling metadata, counts and shares, in the reader's
language. Built in memory (a few kilobytes; no report content is ever in them), never written
to the server's disk.

Spreadsheet programs run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula; an
institution's name is typed by an admin, so text cells that start so are written with a leading
apostrophe (CSV) or as plain strings (XLSX, where openpyxl would otherwise store a formula).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import LazyString, gettext, lazy_gettext
from openpyxl import Workbook
from openpyxl.cell.cell import TYPE_STRING
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as PdfTable

from journalist_iface.labels import category_label, kind_label, mcp_label, status_label
from wbs.monitoring import Dashboard
from wbs.provinces import (
    CLASSES,
    GRID_COLUMNS,
    GRID_ROWS,
    PROVINCES,
    ProvinceMap,
    province_map,
    report_classes,
    shade,
)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Cell = str | int | float | None

# Every table, by the key its CSV download takes (``?tabel=``), in the page's order.
TABLES: tuple[tuple[str, LazyString], ...] = (
    ("ringkasan", lazy_gettext("Key figures")),
    ("status", lazy_gettext("By status")),
    ("kategori", lazy_gettext("By category")),
    ("provinsi", lazy_gettext("By province")),
    ("area", lazy_gettext("By MCP area")),
    ("kanal", lazy_gettext("By channel")),
    ("institusi", lazy_gettext("By institution")),
    ("tren", lazy_gettext("Monthly trend")),
    ("tertinggal", lazy_gettext("Falling behind")),
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


def _share(value: float | None) -> float | None:
    """A share as a percentage with one decimal, the way a spreadsheet reader expects it."""
    return None if value is None else round(100 * value, 1)


def tables(board: Dashboard) -> list[Table]:
    titles = {key: str(title) for key, title in TABLES}
    reports = gettext("Reports")
    in_time = gettext("Answered in time (%)")
    return [
        Table("ringkasan", titles["ringkasan"], (gettext("Figure"), gettext("Value")), (
            (gettext("As of"), board.today.isoformat()),
            (gettext("Reports"), board.total),
            (gettext("Open reports"), board.open),
            (gettext("Open, first response overdue"), board.overdue_first_response),
            (gettext("Open, closure deadline (30 working days) passed"), board.overdue_closure),
            (gettext("Possibly KPK's jurisdiction (UU 19/2019 Pasal 11)"), board.kpk_hint),
            (gettext("Reports with a first response"), board.responded),
            (gettext("Median time to first response (days)"), board.median_first_response_days),
            (gettext("Median time to first response (working days)"),
             board.median_first_response_working_days),
            (gettext("Reports not yet mapped to an MCP area"), board.without_mcp_area),
        )),
        Table("status", titles["status"], (gettext("Status"), reports),
              tuple((status_label(row.status), row.count) for row in board.by_status)),
        Table("kategori", titles["kategori"], (gettext("Category"), reports),
              tuple((category_label(row.code), row.count) for row in board.by_category)),
        _province_table(province_map(board), titles["provinsi"]),
        Table("area", titles["area"], (gettext("MCP area"), reports),
              tuple((mcp_label(row.code), row.count) for row in board.by_mcp_area)),
        Table("kanal", titles["kanal"], (gettext("Channel"), reports),
              tuple((row.label, row.count) for row in board.by_channel)),
        Table("institusi", titles["institusi"], (
            gettext("Institution"), gettext("Kind"), gettext("Province"), reports,
            gettext("Open"), gettext("First response overdue"), gettext("Closure overdue"),
            gettext("Answered in time"), gettext("Answered late"), gettext("Not answered"),
            in_time, gettext("Median first response (working days)"),
            gettext("Forwarded to another institution"), gettext("Taken over by KPK"),
            gettext("Merged into another case"), gettext("Received from another institution"),
        ), tuple(
            (line.name, kind_label(line.kind), line.province, line.total, line.open,
             line.overdue_first_response, line.overdue_closure, line.first_response_met,
             line.first_response_late, line.first_response_missing, _share(line.compliance),
             line.median_first_response_working_days, line.forwarded, line.taken_over,
             line.merged, line.received)
            for line in board.tenants
        )),
        Table("tren", titles["tren"], (
            gettext("Month"), gettext("Received"), gettext("Answered in time"),
            gettext("Answered late"), gettext("Not answered"), in_time,
        ), tuple(
            (month.month.strftime("%Y-%m"), month.received, month.first_response_met,
             month.first_response_late, month.first_response_missing, _share(month.compliance))
            for month in board.trend
        )),
        Table("tertinggal", titles["tertinggal"], (
            gettext("Institution"), in_time, gettext("First responses due"),
        ), tuple(
            (line.name, _share(line.compliance), line.first_response_due)
            for line in board.lagging
        )),
    ]


def _province_table(found: ProvinceMap, title: str) -> Table:
    """Every province by its Kemendagri code (zeros included, to join with other data by code),
    then what the map could not place: never dropped."""
    rows: list[tuple[Cell, ...]] = [
        (line.province.code, line.province.name, line.institutions, line.reports,
         category_label(line.prone_category) if line.prone_category else None,
         line.prone_count)
        for line in found.provinces
    ]
    for line in found.unplaced:
        name = (gettext("%(name)s (province not recognised)", name=line.name) if line.name
                else gettext("Without a province"))
        rows.append((None, name, line.institutions, line.reports, None, None))
    return Table("provinsi", title, (
        gettext("Code"), gettext("Province"), gettext("Institutions"), gettext("Reports"),
        gettext("Most frequent category"), gettext("Reports in that category"),
    ), tuple(rows))


def _safe_text(value: Cell) -> Cell:
    # Some spreadsheet programs ignore leading spaces before a formula's sign.
    if isinstance(value, str) and value.lstrip(" ").startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_bytes(table: Table) -> bytes:
    """UTF-8 with a byte-order mark, so that spreadsheet programs read the accents right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.header)
    for row in table.rows:
        writer.writerow(["" if cell is None else _safe_text(cell) for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx(found: Sequence[Table]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for table in found:
        sheet = book.create_sheet(title=_sheet_title(table.title))
        sheet.append(list(table.header))
        for row in table.rows:
            sheet.append(list(row))
            for cell in sheet[sheet.max_row]:
                if isinstance(cell.value, str):
                    cell.data_type = TYPE_STRING  # never a formula, whatever it starts with
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet_title(title: str) -> str:
    # Excel's rules: at most 31 characters, none of []:*?/\
    cleaned = "".join(" " if char in "[]:*?/\\" else char for char in title)
    return cleaned[:31]


# --- the printable report ---------------------------------------------------------------------

# One chart column for the tables of counts, whose second column is the count to draw.
_CHARTED = ("status", "kategori", "area", "kanal")
_GREEN = colors.HexColor("#123c2e")
_TRACK = colors.HexColor("#eef1ee")
_RULE = colors.HexColor("#d9d6cf")


def pdf(found: Sequence[Table], *, title: str, subtitle: str) -> bytes:
    """A printable report for a coordination meeting: the key figures, then one page each for
    the counts (with bars), the provinces (a tile map of the reports, then their table), the
    institutions and the months' trend (with a column chart).

    Drawn by reportlab from the same tables as the downloads; nothing but handling metadata.
    ``invariant`` keeps the creation time and a random document id out of the file, so the
    same figures give the same bytes; it carries no author and no link.
    """
    tables = {table.key: table for table in found}
    styles = getSampleStyleSheet()
    story: list[Flowable] = [
        Paragraph(_escape(title), styles["Title"]),
        Paragraph(_escape(subtitle), styles["Normal"]),
        Spacer(1, 6 * mm),
        *_section(tables["ringkasan"], styles),
        PageBreak(),
    ]
    for key in _CHARTED:
        story += [*_section(tables[key], styles, chart=True), Spacer(1, 4 * mm)]
    story += [PageBreak(), Paragraph(_escape(tables["provinsi"].title), styles["Heading2"]),
              _province_map(tables["provinsi"]), Spacer(1, 4 * mm),
              *_section(tables["provinsi"], styles, small=True)]
    story += [PageBreak(), *_section(tables["institusi"], styles, small=True),
              Spacer(1, 4 * mm), *_section(tables["tertinggal"], styles), PageBreak(),
              *_section(tables["tren"], styles), Spacer(1, 4 * mm), _trend_chart(tables["tren"])]
    out = io.BytesIO()
    document = SimpleDocTemplate(
        out, pagesize=landscape(A4), leftMargin=15 * mm, rightMargin=15 * mm,
        topMargin=15 * mm, bottomMargin=15 * mm, title=title, author="", subject="",
        creator="Peluit", invariant=True,
    )
    document.build(story)
    return out.getvalue()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(value: Cell) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _section(
    table: Table, styles: Any, *, chart: bool = False, small: bool = False
) -> list[Flowable]:
    size = 7 if small else 9
    body = ParagraphStyle("cell", parent=styles["Normal"], fontSize=size, leading=size + 2)
    header = [Paragraph(f"<b>{_escape(text)}</b>", body) for text in table.header]
    rows: list[list[Any]] = [header + ([""] if chart else [])]
    largest = max((row[1] for row in table.rows if isinstance(row[1], int)), default=0)
    for row in table.rows:
        cells: list[Any] = [Paragraph(_escape(_cell(value)), body) for value in row]
        if chart:
            count = row[1] if isinstance(row[1], int) else 0
            cells.append(_bar(count, largest))
        rows.append(cells)
    if len(rows) == 1:
        rows.append([Paragraph("—", body)] + [""] * (len(header) - 1 + (1 if chart else 0)))
    grid = PdfTable(rows, repeatRows=1, hAlign="LEFT")
    grid.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), _TRACK),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, _RULE),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))
    heading = Paragraph(_escape(table.title), styles["Heading2"])
    if len(rows) < 30:
        return [KeepTogether([heading, grid])]
    return [heading, grid]  # a long table splits across pages, its header row repeated


def _bar(count: int, largest: int) -> Drawing:
    width, height = 60 * mm, 3 * mm
    drawing = Drawing(width, height)
    drawing.add(Rect(0, 0, width, height, fillColor=_TRACK, strokeColor=None))
    if largest > 0 and count > 0:
        drawing.add(Rect(0, 0, max(width * count / largest, 1), height, fillColor=_GREEN,
                         strokeColor=None))
    return drawing


def _trend_chart(table: Table) -> Drawing:
    """Reports received per month as columns, labelled with the month."""
    width, height = 240 * mm, 60 * mm
    drawing = Drawing(width, height + 8 * mm)
    counts = [row[1] if isinstance(row[1], int) else 0 for row in table.rows]
    largest = max(counts, default=0)
    slot = width / max(len(counts), 1)
    for index, (row, count) in enumerate(zip(table.rows, counts, strict=True)):
        x = index * slot + slot * 0.15
        drawing.add(Rect(x, 8 * mm, slot * 0.7, height, fillColor=_TRACK, strokeColor=None))
        if largest and count:
            drawing.add(Rect(x, 8 * mm, slot * 0.7, height * count / largest,
                             fillColor=_GREEN, strokeColor=None))
        drawing.add(String(x, 2 * mm, str(row[0]), fontName="Helvetica", fontSize=7))
    return drawing


# The report map's classes, light to dark: the colours of peluit.css's .map-r1 to .map-r5.
_CLASS_FILLS = tuple(colors.HexColor(code) for code in
                     ("#d9f0d3", "#a6dba0", "#5aae61", "#1b7837", "#123c2e"))
_CLASS_INKS = (colors.black, colors.black, colors.black, colors.white, colors.white)
_ZERO = colors.HexColor("#e4e4dc")
_OUTLINE = colors.HexColor("#6b7079")


def _province_map(table: Table) -> Drawing:
    """The provinces' reports as the page's tile map (wbs.provinces' grid), with its legend:
    a province without a connected institution is a dashed outline, one without a report grey."""
    tile = 14 * mm
    legend_height = 10 * mm
    width, height = GRID_COLUMNS * tile, GRID_ROWS * tile
    drawing = Drawing(width, height + legend_height)
    figures = {row[0]: row for row in table.rows if row[0] is not None}
    counts = [row[3] if isinstance(row[3], int) else 0 for row in figures.values()]
    classes = report_classes(counts)
    for province in PROVINCES:
        row = figures.get(province.code)
        institutions = row[2] if row and isinstance(row[2], int) else 0
        reports = row[3] if row and isinstance(row[3], int) else 0
        x = province.column * tile + 0.5 * mm
        y = height - (province.row + 1) * tile + 0.5 * mm + legend_height
        found = shade(classes, reports)
        if not institutions:
            fill, ink, stroke = colors.white, _OUTLINE, _OUTLINE
        elif found is None:
            fill, ink, stroke = _ZERO, colors.black, None
        else:
            fill, ink, stroke = _CLASS_FILLS[found - 1], _CLASS_INKS[found - 1], None
        drawing.add(Rect(x, y, tile - mm, tile - mm, fillColor=fill, strokeColor=stroke,
                         strokeDashArray=[2, 2] if stroke else None, strokeWidth=0.5))
        drawing.add(String(x + (tile - mm) / 2, y + (tile - mm) / 2 - 3, province.label,
                           fontName="Helvetica-Bold", fontSize=9, fillColor=ink,
                           textAnchor="middle"))
    keys: list[tuple[Any, Any, str]] = [
        (_CLASS_FILLS[CLASSES - len(classes) + index], None,
         f"{bounds.low}" if bounds.low == bounds.high else f"{bounds.low}-{bounds.high}")
        for index, bounds in enumerate(classes)
    ]
    keys += [(_ZERO, None, gettext("No report")),
             (colors.white, _OUTLINE, gettext("No connected institution"))]
    x = 0.0
    for fill, stroke, text in keys:
        drawing.add(Rect(x, 2 * mm, 4 * mm, 4 * mm, fillColor=fill, strokeColor=stroke,
                         strokeDashArray=[2, 2] if stroke else None, strokeWidth=0.5))
        drawing.add(String(x + 5.5 * mm, 2.8 * mm, text, fontName="Helvetica", fontSize=8))
        x += 9 * mm + stringWidth(text, "Helvetica", 8)
    return drawing
