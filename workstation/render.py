"""A case as one static HTML page for reading in a browser on the workstation.

Everything from the report is HTML-escaped: a pelapor's answer is text, never markup. The
page has no script, loads nothing (a Content-Security-Policy of ``default-src 'none'`` with
only the page's own inline style allowed by hash) and refers to nothing outside the case
folder, so opening it cannot reach a network or run code even in an unhardened browser.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from babel.dates import format_date, format_time

from workstation.cases import REPORT_FIELDS, ShownItem
from workstation.store import CaseRecord

_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em;line-height:1.4}"
    "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.3em .6em;"
    "text-align:left;vertical-align:top}pre{white-space:pre-wrap;background:#f4f4f4;"
    "padding:.6em}.reply{border-left:4px solid #36c;padding-left:.6em}"
    ".warn{color:#a00}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")
CSP = f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'none'"

_LABELS = {
    "category": "Kategori",
    "mcp_area": "Area MCP",
    "apa": "Apa",
    "siapa": "Siapa (terlapor)",
    "kapan": "Kapan",
    "dimana": "Di mana",
    "bagaimana": "Bagaimana",
    "berapa": "Berapa",
    "kronologi": "Kronologi",
    "pejabat": "Terlapor penyelenggara negara atau aparat penegak hukum?",
    "nilai": "Perkiraan nilai",
}
# The coarse answers behind the jurisdiction hint, in words (the server keeps only the hint).
_CHOICES = {
    "pejabat": {"ya": "Ya", "tidak": "Tidak", "tidak_tahu": "Tidak tahu"},
    "nilai": {"kurang_1m": "Kurang dari Rp1 miliar", "1m_atau_lebih": "Rp1 miliar atau lebih",
              "tidak_tahu": "Tidak tahu"},
}


# Western Indonesia Time: UTC+7 all year (Indonesia keeps no summer time), so a fixed offset
# is exact and needs no time-zone database on the workstation.
WIB = dt.timezone(dt.timedelta(hours=7), "WIB")
_DAY_LABEL = dt.time(0, 0)


class Words:
    """The case's codes in Indonesian: the labels the bundle carried (the workstation imports
    no server code), or the code itself for a bundle written before they travelled."""

    def __init__(self, labels: Mapping[str, Mapping[str, str]] | None) -> None:
        self.labels = labels or {}

    def __call__(self, group: str, code: object) -> str:
        if code is None or code == "":
            return "—"
        return self.labels.get(group, {}).get(str(code), str(code))


def when(value: object) -> str:
    """A manifest time in WIB, in Indonesian: "10 Maret 2026, 09.40 WIB".

    What the pelapor did is stored as a day label, midnight UTC of its WIB day (the server
    rounds it on purpose, see docs/export-bundle.md); showing it as "07.00 WIB" would invent a
    time, so such a stamp is shown as the day alone. Dates (deadlines) are days too.
    """
    if value is None or value == "":
        return "—"
    text = str(value)
    try:
        if len(text) == 10:
            return str(format_date(dt.date.fromisoformat(text), "d MMMM y", locale="id"))
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text  # not ours to guess: shown as it came
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    utc = moment.astimezone(dt.UTC)
    if utc.time() == _DAY_LABEL:
        return str(format_date(utc.date(), "d MMMM y", locale="id"))
    local = utc.astimezone(WIB)
    day = format_date(local.date(), "d MMMM y", locale="id")
    return f"{day}, {format_time(local.time(), 'HH.mm', locale='id')} WIB"


def _yes_no(value: Any) -> str:
    return "ya" if value is True else "tidak" if value is False else "—"


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _href(relative: str) -> str:
    # Percent-encode every part so a name cannot become a scheme, a query or markup.
    return "/".join(quote(part, safe="") for part in Path(relative).parts)


def render_case(case: CaseRecord, items: list[ShownItem]) -> str:
    meta = case.meta
    words = Words(meta.get("labels"))
    out = [
        "<!DOCTYPE html>",
        '<html lang="id"><head><meta charset="utf-8">',
        # A constant without double quotes: safe inside the double-quoted attribute.
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_e(case.registration_number)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_e(case.registration_number)}</h1>",
        f"<p>{_e(case.tenant_name)} ({_e(case.tenant)})</p>",
    ]
    reader = meta.get("reader")
    if isinstance(reader, str) and reader and reader != case.tenant:
        # KPK's copy of another instansi's case: say so, so nobody mistakes it for KPK's own.
        name = meta.get("reader_name") or reader
        out.append(f"<p>Salinan untuk {_e(str(name))} ({_e(reader)}), hanya baca</p>")
    out += [
        "<table>",
    ]
    for label, value in (
        ("Status", words("status", meta.get("status"))),
        ("Kategori", words("category", meta.get("category"))),
        ("Area MCP", words("mcp_area", meta.get("mcp_area"))),
        ("Diterima", when(meta.get("received_at"))),
        ("Batas tanggapan pertama", when(meta.get("first_response_due"))),
        ("Batas penyelesaian", when(meta.get("closure_due"))),
        ("Diteruskan ke KPK", _yes_no(meta.get("sent_to_kpk"))),
    ):
        out.append(f"<tr><th>{_e(label)}</th><td>{_e(value)}</td></tr>")
    out.append("</table>")

    out.append("<h2>Isi</h2>")
    for shown in items:
        item = shown.item
        head = (
            f"{shown.number:02d} · {_e(words('item', item.kind))} · {_e(when(item.created_at))}"
        )
        if item.decrypted is None:
            out.append(f"<h3>{head}</h3><p class=\"warn\">belum didekripsi</p>")
            continue
        if shown.answers is not None:
            out.append(f"<h3>{head} · laporan</h3>")
            if "_warning" in shown.answers:
                out.append(f'<p class="warn">{_e(shown.answers["_warning"])}</p>')
            out.append("<table>")
            for key in REPORT_FIELDS:
                answer = shown.answers.get(key, "")
                if key in ("category", "mcp_area") and answer:
                    # A code in the form: its label, with the code kept for searching.
                    answer = f"{words(key, answer)} ({answer})"
                elif key in _CHOICES:
                    if not answer:
                        continue  # a form from before the question, or an operator's
                    answer = _CHOICES[key].get(answer, answer)
                out.append(
                    f"<tr><th>{_e(_LABELS[key])}</th>"
                    f"<td><pre>{_e(answer)}</pre></td></tr>"
                )
            out.append("</table>")
        elif shown.text is not None:
            css = ' class="reply"' if item.kind == "reply" else ""
            out.append(f"<h3>{head}</h3><div{css}><pre>{_e(shown.text)}</pre></div>")
        else:
            label = Path(item.decrypted).name
            out.append(
                f"<h3>{head}</h3><p><a href=\"{_e(_href(item.decrypted))}\" download>"
                f"{_e(label)}</a> ({_e(shown.size)} byte)</p>"
            )
    out.append("<h2>Riwayat</h2><table><tr><th>Waktu</th><th>Peristiwa</th><th>Catatan</th></tr>")
    for entry in case.timeline:
        change = words("event", entry.get("kind"))
        if entry.get("to_status"):
            before = words("status", entry["from_status"]) if entry.get("from_status") else "-"
            change = f"{change}: {before} → {words('status', entry.get('to_status'))}"
        out.append(
            f"<tr><td>{_e(when(entry.get('created_at')))}</td><td>{_e(change)}</td>"
            f"<td>{_e(entry.get('note'))}</td></tr>"
        )
    out.append("</table></body></html>")
    return "\n".join(out) + "\n"


def write_case_page(case_dir: Path, page: str) -> Path:
    target = case_dir / "case.html"
    temp = case_dir / ".case.html.part"
    temp.write_text(page, encoding="utf-8")
    temp.replace(target)
    return target
