"""The jurisdiction hint on the investigators' side: the inbox tag, the case page, the API and
the dashboards' count (issue 10, item 7)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import time_machine

from tests.journalist_iface.conftest import HUB, TENANT, Demo, add_bare_cases, logged_in
from tests.journalist_iface.test_api import api_login
from tests.support import midday_wib
from wbs.domain import Role
from wbs.models import Case, utcnow
from wbs.monitoring import dashboard
from wbs.tenants import get_tenant
from wbs.workdays import local_date

TAG = "mungkin kewenangan KPK"


@pytest.fixture(autouse=True)
def _no_new_day_midway() -> Iterator[None]:
    # Each test compares a page with figures computed beside it: the WIB date must not change
    # in between (it does at 17:00 UTC), so the clock runs from noon WIB of today's date.
    with time_machine.travel(midday_wib(), tick=True):
        yield


def _number(demo: Demo, case_id: int) -> str:
    with demo.inst.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.registration_number


def test_hinted_cases_are_tagged_everywhere_an_investigator_looks(demo: Demo) -> None:
    hinted, plain, unasked = (add_bare_cases(demo, 1, kpk_hint=value)[0]
                              for value in (True, False, None))
    browser = logged_in(demo, TENANT, Role.VERIFIKATOR)
    inbox = browser.get("/").get_data(as_text=True)
    rows = {number: row for number, row in re.findall(
        r'>([A-Z]+-[A-Z0-9-]+)</a>(.*?)</tr>', inbox, re.S)}
    assert TAG in rows[_number(demo, hinted)]
    assert TAG not in rows[_number(demo, plain)] and TAG not in rows[_number(demo, unasked)]

    pages = {case_id: browser.get(f"/pengaduan/{case_id}").get_data(as_text=True)
             for case_id in (hinted, plain, unasked)}
    hint = {case_id: re.search(r'<dd id="kpk-hint">(.*?)</dd>', page, re.S).group(1)  # type: ignore[union-attr]
            for case_id, page in pages.items()}
    assert TAG in hint[hinted] and "Pasal 11" in hint[hinted]
    assert hint[plain] == "tidak ada petunjuk" and hint[unasked] == "tidak ditanyakan"

    api = api_login(demo, TENANT, Role.VERIFIKATOR)
    found = {case_id: api.get(f"/api/v1/cases/{case_id}").get_json()["kpk_jurisdiction_hint"]
             for case_id in (hinted, plain, unasked)}
    assert found == {hinted: True, plain: False, unasked: None}


def test_the_dashboard_counts_the_hinted_cases(demo: Demo) -> None:
    add_bare_cases(demo, 3, kpk_hint=True)
    add_bare_cases(demo, 2, kpk_hint=False)
    with demo.inst.sessions() as session:
        board = dashboard(session, get_tenant(session, HUB), today=local_date(utcnow()))
        expected = sum(1 for case in session.query(Case) if case.kpk_hint)
    assert board.kpk_hint == expected >= 3
    html = logged_in(demo, HUB, Role.PEMANTAU_KPK).get("/pemantauan").get_data(as_text=True)
    assert f'<dd id="fig-kpk-hint">{expected}</dd>' in html
