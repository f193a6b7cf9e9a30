"""The jurisdiction hint (issue 10, item 7): two coarse questions on the report form; the server
keeps only the derived *mungkin kewenangan KPK*, the answers travel inside the encryption."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.source_iface.conftest import GOOD_ANSWERS, Demo, Reporter
from tests.support import decrypt_item
from wbs.domain import OfficialAnswer, SubmissionKind, ValueBracket, kpk_hint
from wbs.models import Case, Submission


@pytest.mark.parametrize(
    ("official", "value", "hinted"),
    [(official, value, official == OfficialAnswer.YA or value == ValueBracket.AT_LEAST_1M)
     for official in OfficialAnswer for value in ValueBracket],
)
def test_the_hint_follows_pasal_11(official: OfficialAnswer, value: ValueBracket,
                                   hinted: bool) -> None:
    assert kpk_hint(official, value) is hinted


def _last_case(demo: Demo) -> tuple[Case, Submission]:
    with demo.inst.sessions() as session:
        case = session.scalars(sa.select(Case).order_by(Case.id.desc()).limit(1)).one()
        form = session.scalars(sa.select(Submission).where(
            Submission.case_id == case.id, Submission.kind == SubmissionKind.FORM)).one()
        session.expunge_all()
        return case, form


@pytest.mark.parametrize(
    ("extra", "hinted", "stored"),
    [([], False, ("tidak_tahu", "tidak_tahu")),
     ([("pejabat", "ya")], True, ("ya", "tidak_tahu")),
     ([("pejabat", "tidak"), ("nilai", "1m_atau_lebih")], True, ("tidak", "1m_atau_lebih")),
     ([("pejabat", "tidak"), ("nilai", "kurang_1m")], False, ("tidak", "kurang_1m"))],
)
def test_only_the_hint_is_kept_and_the_answers_are_encrypted(
    demo: Demo, reporter: Reporter, extra: list[tuple[str, str]], hinted: bool,
    stored: tuple[str, str],
) -> None:
    reporter.new_codename()
    response = reporter.send_report(extra=extra)
    assert response.status_code == 302, response.get_data(as_text=True)
    case, form = _last_case(demo)
    assert case.kpk_hint is hinted
    # The answers themselves are in the encrypted form, for the workstation only.
    data, _name = decrypt_item(demo.workstation, demo.inst.store.resolve(form.store_path))
    document = json.loads(data)
    assert (document["pejabat"], document["nilai"]) == stored
    # No column of the case holds them.
    with demo.inst.sessions() as session:
        row = session.execute(sa.select(Case.__table__).where(Case.id == case.id)).one()
    assert not {"ya", "tidak", "kurang_1m", "1m_atau_lebih"} & {
        value for value in row if isinstance(value, str)}


def test_the_form_asks_both_questions_and_refuses_an_unknown_answer(
    demo: Demo, reporter: Reporter
) -> None:
    reporter.new_codename()
    page = reporter.get("/lapor").get_data(as_text=True)
    assert 'name="pejabat" value="tidak_tahu"' in page
    assert 'name="nilai" value="1m_atau_lebih"' in page
    assert "Apakah terlapor penyelenggara negara atau aparat penegak hukum?" in page
    before, _form = _last_case(demo) if _has_cases(demo) else (None, None)
    response = reporter.send_report(answers=GOOD_ANSWERS, extra=[("pejabat", "mungkin")])
    assert response.status_code == 400
    assert "Pilih salah satu jawaban." in response.get_data(as_text=True)
    after, _form = _last_case(demo) if _has_cases(demo) else (None, None)
    assert (before.id if before else None) == (after.id if after else None)


def _has_cases(demo: Demo) -> bool:
    with demo.inst.sessions() as session:
        return bool(session.scalar(sa.select(sa.func.count()).select_from(Case)))
