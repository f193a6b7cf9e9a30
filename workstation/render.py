"""A case as one static HTML page for reading in a browser on the workstation.

Everything from the report is HTML-escaped: a pelapor's answer is text, never markup. The
page has no script, loads nothing (a Content-Security-Policy of ``default-src 'none'`` with
only the page's own inline style allowed by hash) and refers to nothing outside the case
folder, so opening it cannot reach a network or run code even in an unhardened browser.
"""

from __future__ import annotations

import base64
import hashlib
import html
from pathlib import Path
from urllib.parse import quote

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
}


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _href(relative: str) -> str:
    # Percent-encode every part so a name cannot become a scheme, a query or markup.
    return "/".join(quote(part, safe="") for part in Path(relative).parts)


def render_case(case: CaseRecord, items: list[ShownItem]) -> str:
    meta = case.meta
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
        "<table>",
    ]
    for label, key in (
        ("Status", "status"),
        ("Kategori", "category"),
        ("Area MCP", "mcp_area"),
        ("Diterima", "received_at"),
        ("Batas tanggapan pertama", "first_response_due"),
        ("Batas penyelesaian", "closure_due"),
        ("Diteruskan ke KPK", "sent_to_kpk"),
    ):
        out.append(f"<tr><th>{_e(label)}</th><td>{_e(meta.get(key))}</td></tr>")
    out.append("</table>")

    out.append("<h2>Isi</h2>")
    for shown in items:
        item = shown.item
        head = f"{shown.number:02d} · {_e(item.kind)} · {_e(item.created_at[:10])}"
        if item.decrypted is None:
            out.append(f"<h3>{head}</h3><p class=\"warn\">belum didekripsi</p>")
            continue
        if shown.answers is not None:
            out.append(f"<h3>{head} · laporan</h3>")
            if "_warning" in shown.answers:
                out.append(f'<p class="warn">{_e(shown.answers["_warning"])}</p>')
            out.append("<table>")
            for key in REPORT_FIELDS:
                out.append(
                    f"<tr><th>{_e(_LABELS[key])}</th>"
                    f"<td><pre>{_e(shown.answers.get(key, ''))}</pre></td></tr>"
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
        change = entry.get("kind")
        if entry.get("to_status"):
            change = f"{change}: {entry.get('from_status') or '-'} → {entry.get('to_status')}"
        out.append(
            f"<tr><td>{_e(entry.get('created_at'))}</td><td>{_e(change)}</td>"
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
