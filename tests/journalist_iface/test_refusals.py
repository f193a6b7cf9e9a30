"""Every refusal of the casework service has the investigator's sentence, in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask_babel import force_locale

from journalist_iface import refusals
from tests.journalist_iface.conftest import Demo
from wbs import casework
from wbs.casework import Refusal
from wbs.domain import CaseStatus

SOURCE = Path(casework.__file__).read_text(encoding="utf-8")
# Every code the service can raise, read from its source: a new refusal without a sentence
# (or an HTTP answer) fails here rather than showing English to an Indonesian investigator.
RAISED = set(re.findall(r'Refusal\(\s*"(\w+)"', SOURCE))


def test_the_codes_are_found() -> None:
    assert {"transition_refused", "note_required", "no_key", "reply_refused"} <= RAISED


def test_every_code_has_a_sentence_or_an_http_answer() -> None:
    missing = RAISED - refusals.CODES
    assert not missing, missing


CASE = "PLT-PEMPROV-SUMSEL-2026-004817"
# The reasons accept_encrypted_reply gives, read from its source like the codes.
REASONS = set(re.findall(r'refuse\(\s*"(\w+)"', SOURCE))


def _both(app: Flask, refusal: Refusal) -> tuple[str, str]:
    with app.test_request_context(), force_locale("id"):
        indonesian = refusals.message(refusal, CASE)
    with app.test_request_context(), force_locale("en"):
        english = refusals.message(refusal, CASE)
    return indonesian, english


@pytest.mark.parametrize("code", sorted(RAISED - set(refusals.HTTP_ONLY)))
def test_sentences_are_translated(demo: Demo, code: str) -> None:
    params = {"limit": 500, "status": CaseStatus.KLARIFIKASI, "what": "question",
              "current": CaseStatus.BARU, "new": CaseStatus.SELESAI, "reason": "size"}
    indonesian, english = _both(demo.app, Refusal(code, "English message", **params))
    assert indonesian and english and indonesian != english, code
    assert indonesian != "English message"
    # Each names the case it concerns.
    assert CASE in indonesian and CASE in english, (indonesian, english)


def test_the_reasons_are_found() -> None:
    assert {"not_to_reply_key", "not_to_every_key", "duplicate", "size"} <= REASONS


@pytest.mark.parametrize("reason", sorted(REASONS))
def test_a_refused_reply_is_said_whole_in_the_interface_language(
    demo: Demo, reason: str
) -> None:
    """No half-English sentence: the domain's English reason never reaches the page."""
    english_reason = "the reply is not encrypted to the pelapor's reply key"
    refusal = Refusal("reply_refused", english_reason, reason=reason,
                      fingerprints=["A" * 40, "B" * 40])
    indonesian, english = _both(demo.app, refusal)
    assert indonesian != english
    assert english_reason not in indonesian and "refused" not in indonesian
    assert indonesian.startswith(f"Balasan terenkripsi untuk {CASE} ditolak"), indonesian
    if reason == "not_to_every_key":
        assert "A" * 40 + ", " + "B" * 40 in indonesian
    assert "%(" not in indonesian and "%(" not in english


def test_status_names_follow_the_language(demo: Demo) -> None:
    refusal = Refusal("transition_refused", "x", current=CaseStatus.BARU,
                      new=CaseStatus.SELESAI)
    indonesian, english = _both(demo.app, refusal)
    assert "Baru" in indonesian and "Selesai" in indonesian
    assert "New" in english and "Completed" in english and "Baru" not in english
