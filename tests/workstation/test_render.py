"""case.html's words: the labels the bundle carried and times in WIB, at the precision kept."""

from __future__ import annotations

import json

import pytest

from workstation.cases import ShownItem, parse_report
from workstation.render import Words, render_case, when
from workstation.store import CaseRecord, ItemRecord


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        # A day label (what the pelapor did): midnight UTC of its WIB day, shown as the day.
        ("2026-03-10T00:00:00+00:00", "10 Maret 2026"),
        # An investigator's exact time, in WIB.
        ("2026-03-11T02:40:05+00:00", "11 Maret 2026, 09.40 WIB"),
        # Late in the UTC evening is already the next day in WIB.
        ("2026-03-11T20:30:00+00:00", "12 Maret 2026, 03.30 WIB"),
        ("2026-12-31T17:00:00.123456+00:00", "1 Januari 2027, 00.00 WIB"),
        # A deadline is a date.
        ("2026-03-19", "19 Maret 2026"),
        (None, "—"),
        ("kemarin", "kemarin"),
    ],
)
def test_times_are_shown_in_wib_in_indonesian(stored: str | None, shown: str) -> None:
    assert when(stored) == shown


def test_codes_read_as_the_bundle_labels_or_as_themselves() -> None:
    words = Words({"status": {"baru": "Baru"}, "category": {"suap_menyuap": "Suap-menyuap"}})
    assert words("status", "baru") == "Baru"
    assert words("category", "suap_menyuap") == "Suap-menyuap"
    # A bundle from before the labels travelled, or a code it does not know: the code.
    assert Words(None)("status", "baru") == "baru"
    assert words("status", "tidak_dikenal") == "tidak_dikenal"
    assert words("mcp_area", None) == "—"


def _form_page(document: dict[str, str]) -> str:
    item = ItemRecord(sha256="a" * 64, kind="form", size=4096,
                      created_at="2026-03-10T00:00:00+00:00", decrypted="form.json")
    case = CaseRecord(tenant="pemprov-sumsel", tenant_name="Pemprov", registration_number="X-1",
                      bundle_created_at="2026-03-11T00:00:00+00:00", meta={}, timeline=[],
                      reply_fingerprint="F" * 40, items=[item])
    answers = parse_report(json.dumps({"format": "peluit-report/1", **document}))
    return render_case(case, [ShownItem(1, item, None, answers)])


def test_the_jurisdiction_answers_read_in_words_and_older_forms_show_none() -> None:
    page = _form_page({"apa": "uang pelicin", "pejabat": "ya", "nilai": "1m_atau_lebih"})
    assert "Terlapor penyelenggara negara atau aparat penegak hukum?" in page
    assert "<pre>Ya</pre>" in page and "<pre>Rp1 miliar atau lebih</pre>" in page
    older = _form_page({"apa": "uang pelicin"})
    assert "Perkiraan nilai" not in older and "uang pelicin" in older
