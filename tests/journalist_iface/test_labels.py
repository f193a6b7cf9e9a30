"""The domain's words in both languages: Indonesian exactly as the domain says them, English
in the English interface (statuses, categories, MCP areas, log entries, roles)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from flask_babel import force_locale

from journalist_iface import labels
from tests.journalist_iface.conftest import Demo, logged_in, make_report
from wbs.casework import KLARIFIKASI_LOG_NOTE
from wbs.domain import (
    CASE_STATUS_LABELS,
    CATEGORY_LABELS,
    DECLINE_REASON_LABELS,
    EVENT_KIND_LABELS,
    MCP_AREA_LABELS,
    REQUEST_REASON_LABELS,
    ROLE_LABELS,
    TAKEOVER_REASON_LABELS,
    TENANT_KIND_LABELS,
    CaseStatus,
)

TABLES: dict[str, tuple[Mapping[Any, Any], Mapping[Any, str]]] = {
    "status": (labels.STATUS, CASE_STATUS_LABELS),
    "category": (labels.CATEGORY, CATEGORY_LABELS),
    "mcp_area": (labels.MCP_AREA, MCP_AREA_LABELS),
    "event": (labels.EVENT, EVENT_KIND_LABELS),
    "role": (labels.ROLE, ROLE_LABELS),
    "kind": (labels.KIND, TENANT_KIND_LABELS),
    "takeover_reason": (labels.TAKEOVER_REASON, TAKEOVER_REASON_LABELS),
    "request_reason": (labels.REQUEST_REASON, REQUEST_REASON_LABELS),
    "decline_reason": (labels.DECLINE_REASON, DECLINE_REASON_LABELS),
}


@pytest.mark.parametrize("name", list(TABLES))
def test_every_code_reads_as_the_domain_in_indonesian_and_english_in_english(
    demo: Demo, name: str
) -> None:
    translated, domain = TABLES[name]
    assert set(translated) == set(domain), name  # no code left Indonesian in English
    with demo.app.test_request_context():
        for code, message in translated.items():
            with force_locale("id"):
                indonesian = str(message)
            with force_locale("en"):
                english = str(message)
            assert indonesian == domain[code], (code, indonesian)
            assert english != indonesian, (code, english)


def test_unknown_codes_fall_back_to_the_domain_label_or_the_code(demo: Demo) -> None:
    fallback: Callable[[str], str | None] = labels.mcp_label
    with demo.app.test_request_context(), force_locale("en"):
        assert labels.category_label("tidak_dikenal") == "tidak_dikenal"
        assert fallback("tidak_dikenal") == "tidak_dikenal"
        assert labels.mcp_label(None) is None


def test_the_english_inbox_and_case_page_read_english(demo: Demo) -> None:
    report = make_report(demo, category="suap_menyuap", mcp_area="perizinan")
    browser = logged_in(demo)
    browser.get("/bahasa/en", follow_redirects=True)
    page = browser.get(f"/?number={report.registration_number}").get_data(as_text=True)
    assert "Bribery" in page and ">New<" in page
    assert "Suap-menyuap" not in page
    case = browser.get(f"/pengaduan/{report.case_id}").get_data(as_text=True)
    assert "Bribery" in case and "Licensing" in case and "Report received" in case
    assert "Perizinan" not in case and "Pengaduan masuk" not in case
    # No status name left Indonesian in English prose either.
    for status in CaseStatus:
        assert f">{status.label}<" not in case and f" {status.label} " not in case, status
    browser.get("/bahasa/id", follow_redirects=True)
    case = browser.get(f"/pengaduan/{report.case_id}").get_data(as_text=True)
    assert "Suap-menyuap" in case and CaseStatus.BARU.label in case
    assert "Bribery" not in case


def test_the_note_the_system_writes_follows_the_language(demo: Demo) -> None:
    report = make_report(demo)
    browser = logged_in(demo)
    page = f"/pengaduan/{report.case_id}"
    browser.post(f"{page}/status", {"status": "klarifikasi", "note": "Siapa penerimanya?"},
                 token_from=page)
    assert KLARIFIKASI_LOG_NOTE in browser.get(page).get_data(as_text=True)
    browser.get("/bahasa/en", follow_redirects=True)
    english = browser.get(page).get_data(as_text=True)
    assert "The question was sent to the reporter as a reply" in english
    assert KLARIFIKASI_LOG_NOTE not in english
