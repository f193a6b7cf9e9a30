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


@pytest.mark.parametrize("code", sorted(RAISED - set(refusals.HTTP_ONLY)))
def test_sentences_are_translated(demo: Demo, code: str) -> None:
    params = {"limit": 500, "status": CaseStatus.KLARIFIKASI, "what": "question",
              "current": CaseStatus.BARU, "new": CaseStatus.SELESAI, "reason": "kunci"}
    refusal = Refusal(code, "English message", **params)
    app: Flask = demo.app
    with app.test_request_context(), force_locale("id"):
        indonesian = refusals.message(refusal)
    with app.test_request_context(), force_locale("en"):
        english = refusals.message(refusal)
    assert indonesian and english and indonesian != english, code
    assert indonesian != "English message"
