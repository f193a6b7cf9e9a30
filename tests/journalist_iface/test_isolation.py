"""Tenant isolation and roles, walked over every route of the app.

The routes come from ``app.url_map``, so a new case-scoped endpoint is covered without
editing this file: every URL with a ``case_id`` must answer 404 to another tenant's
investigator, and every route but login, language and static files needs a session.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask

from tests.journalist_iface.conftest import (
    HUB,
    TENANT,
    Browser,
    Demo,
    logged_in,
    make_report,
)
from wbs.domain import CaseStatus, Role
from wbs.models import Case

PUBLIC = {"journalist.login", "journalist.check_login", "journalist.language", "static",
          "journalist.logout"}


def _routes(app: Flask) -> list[tuple[str, str, set[str], list[str]]]:
    out = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            continue  # bearer tokens, no cookie: walked the same way in test_api.py
        methods = {m for m in (rule.methods or set()) if m in ("GET", "POST")}
        out.append((rule.endpoint, rule.rule, methods, sorted(rule.arguments)))
    return out


def _url(rule: str, case_id: int) -> str:
    url = rule.replace("<int:case_id>", str(case_id))
    return re.sub(r"<int:\w+>", "1", url)


def _case_routes(app: Flask) -> list[tuple[str, str]]:
    found = []
    for _endpoint, rule, methods, arguments in _routes(app):
        if "case_id" in arguments:
            found += [(method, rule) for method in sorted(methods)]
    assert len(found) >= 7  # page, status, assign, reply, seen, download, export
    return found


def _request(browser: Browser, method: str, url: str) -> int:
    if method == "GET":
        return int(browser.get(url).status_code)
    return int(browser.post(url, {"status": "verifikasi", "note": "x", "text": "x",
                                  "assignee": ""}, token_from="/").status_code)


@pytest.mark.parametrize(
    ("owner", "intruder_tenant", "intruder_role"),
    [
        # Not sent to KPK: the monitor sees nothing, and cannot take it over or ask for it.
        (TENANT, HUB, Role.PEMANTAU_KPK),
        (TENANT, HUB, Role.VERIFIKATOR),
        (HUB, TENANT, Role.ADMIN_INSTANSI),
    ],
)
def test_every_case_url_of_another_tenant_answers_404(
    demo: Demo, owner: str, intruder_tenant: str, intruder_role: Role
) -> None:
    report = make_report(demo, owner, files=(b"bukti",))
    intruder = logged_in(demo, intruder_tenant, intruder_role)
    for method, rule in _case_routes(demo.app):
        url = _url(rule, report.case_id)
        assert _request(intruder, method, url) == 404, (method, url)
    # Nothing changed: no status, no assignment, no reply, still unread.
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None
        assert case.status == CaseStatus.BARU and case.assignee_id is None and case.unread
        assert case.replies == []
    # And the inbox does not list it.
    assert report.registration_number not in intruder.get("/").get_data(as_text=True)


# What only reads a case: KPK's accounts may use these on a case shared with KPK.
READING = {"/pengaduan/<int:case_id>", "/pengaduan/<int:case_id>/berkas/<int:number>",
           "/pengaduan/<int:case_id>/ekspor"}
# KPK's coordination with the case's institution (wbs.takeover, wbs.coordination): offered to
# KPK's accounts on a case shared with KPK, and to no one else (test_takeover.py).
COORDINATING = {"/pengaduan/<int:case_id>/ambil-alih", "/pengaduan/<int:case_id>/minta-pelimpahan"}


@pytest.mark.parametrize("role", [Role.PEMANTAU_KPK, Role.VERIFIKATOR])
def test_kpk_reads_a_case_sent_to_kpk_but_cannot_act_on_it(demo: Demo, role: Role) -> None:
    # KPK's copy: every account of the hub reads a shared case as it reads its own (the
    # content is encrypted to KPK's keys too), and changes nothing in it.
    report = make_report(demo, TENANT, to_kpk=True, files=(b"bukti",))
    kpk = logged_in(demo, HUB, role)
    assert report.registration_number in kpk.get("/").get_data(as_text=True)
    page = kpk.get(f"/pengaduan/{report.case_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert report.registration_number in html and "Hanya baca" in html
    assert "/ekspor" in html and "/berkas/" in html
    assert "/status" not in html and "/balas" not in html and "/tugaskan" not in html
    assert all(rule.removeprefix("/pengaduan/<int:case_id>") in html for rule in COORDINATING)
    routes = _case_routes(kpk.client.application)
    # The walk covers them (and the institution's answer, which KPK cannot give).
    assert COORDINATING | {"/pengaduan/<int:case_id>/tolak-permintaan"} <= {r for _, r in routes}
    for method, rule in routes:
        if rule in READING | COORDINATING:
            continue
        assert _request(kpk, method, _url(rule, report.case_id)) == 404, rule
    assert kpk.get(f"/pengaduan/{report.case_id}/berkas/1").status_code == 200
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None
        assert case.status == CaseStatus.BARU and case.assignee_id is None and case.unread
        assert case.replies == []


def test_monitor_never_reads_the_notes_of_another_tenants_case(demo: Demo) -> None:
    # Notes name people: an archive reason may name the terlapor, an assignment names an
    # investigator. They are the tenant's, not the hub's, even on a case shared with KPK.
    report = make_report(demo, TENANT, to_kpk=True)
    page = f"/pengaduan/{report.case_id}"
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    assert admin.account is not None
    verifikator = logged_in(demo, TENANT, Role.VERIFIKATOR)
    assert verifikator.account is not None
    reason = "Bukan wewenang: terlapor Bupati Xenophon"
    for form, action in (({"assignee": str(verifikator.account.id)}, "tugaskan"),
                         ({"status": "diarsipkan", "note": reason}, "status")):
        assert admin.post(f"{page}/{action}", form, token_from=page).status_code == 302
    own = admin.get(page).get_data(as_text=True)
    assert reason in own and verifikator.account.username in own
    monitor = logged_in(demo, HUB, Role.PEMANTAU_KPK)
    shared = monitor.get(page).get_data(as_text=True)
    assert "Diarsipkan" in shared  # what happened is shown...
    assert "Xenophon" not in shared  # ...never the note
    assert verifikator.account.username not in shared


# Ids no row can have: one past the databases' 64-bit integer, and one far past int()'s digits.
HUGE_IDS = pytest.mark.parametrize("huge", [str(2**63), "9" * 5000], ids=["2**63", "5000-digits"])


@HUGE_IDS
def test_an_id_no_row_can_have_answers_404_on_every_route(demo: Demo, huge: str) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    routes = [
        (method, rule)
        for _endpoint, rule, methods, _args in _routes(demo.app)
        if "<int:" in rule
        for method in sorted(methods)
    ]
    assert len(routes) >= 15
    for method, rule in routes:
        url = re.sub(r"<int:\w+>", huge, rule)
        assert _request(admin, method, url) == 404, (method, rule)


def test_every_route_needs_a_session(demo: Demo) -> None:
    report = make_report(demo)
    anonymous = Browser(demo.app.test_client())
    for endpoint, rule, methods, _ in _routes(demo.app):
        if endpoint in PUBLIC:
            continue
        for method in methods:
            url = _url(rule, report.case_id)
            response = anonymous.get(url) if method == "GET" else anonymous.post(url, {})
            assert response.status_code == 302, (method, url)
            assert "/masuk" in response.location


def test_a_verifikator_may_only_take_a_case_themselves(demo: Demo) -> None:
    report = make_report(demo)
    verifikator = logged_in(demo)
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    page = f"/pengaduan/{report.case_id}"
    assert verifikator.account is not None and admin.account is not None
    me, someone_else = verifikator.account.id, admin.account.id
    refused = verifikator.post(f"{page}/tugaskan", {"assignee": str(someone_else)},
                               token_from=page)
    assert refused.status_code == 403
    assert verifikator.post(f"{page}/tugaskan", {"assignee": str(me)},
                            token_from=page).status_code == 302
    assert admin.post(f"{page}/tugaskan", {"assignee": str(someone_else)},
                      token_from=page).status_code == 302
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None and case.assignee_id == someone_else


def test_an_investigator_of_another_tenant_cannot_be_assigned(demo: Demo) -> None:
    report = make_report(demo)
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    outsider = logged_in(demo, HUB, Role.VERIFIKATOR)
    assert outsider.account is not None
    page = f"/pengaduan/{report.case_id}"
    response = admin.post(f"{page}/tugaskan", {"assignee": str(outsider.account.id)},
                          token_from=page)
    assert response.status_code == 400
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None and case.assignee_id is None


@pytest.mark.parametrize("role", [Role.VERIFIKATOR, Role.PEMANTAU_KPK])
def test_every_admin_page_refuses_every_other_role(demo: Demo, role: Role) -> None:
    # Walked from the url map, so new admin pages (the reporter texts among them) are covered.
    someone = logged_in(demo, HUB if role == Role.PEMANTAU_KPK else TENANT, role)
    routes = [
        (method, re.sub(r"<(?:int:)?(\w+)>", lambda m: "1" if m.group(1) != "key" else
                        "contact", rule))
        for _endpoint, rule, methods, _args in _routes(demo.app)
        if rule.startswith("/admin/")
        for method in sorted(methods)
    ]
    assert ("POST", "/admin/teks/contact") in routes and len(routes) >= 10
    for method, url in routes:
        assert _request(someone, method, url) == 403, (method, url)


def test_every_matter_url_answers_404_to_a_tenant_with_no_case_in_it(demo: Demo) -> None:
    # One handler per matter (wbs.matters): a matter of one tenant's cases is not found to
    # another tenant, on every route that names a matter, and nothing of it changes.
    first, second = make_report(demo, TENANT), make_report(demo, TENANT)
    owner = logged_in(demo, TENANT, Role.VERIFIKATOR)
    page = f"/pengaduan/{first.case_id}"
    linked = owner.post(f"{page}/perkara", {"number": second.registration_number},
                        token_from=page)
    assert linked.status_code == 302
    with demo.inst.sessions() as session:
        case = session.get(Case, first.case_id)
        assert case is not None and case.matter_id is not None
        matter_id = case.matter_id
    routes = [
        (method, rule)
        for _endpoint, rule, methods, arguments in _routes(demo.app)
        if "matter_id" in arguments
        for method in sorted(methods)
    ]
    assert len(routes) >= 2  # lead, unlink
    # KPK's verifikator: the cases were not shared with KPK. (KPK's monitor reads every
    # tenant's metadata, as on its dashboard, and so sees the matter: not an intruder here.)
    intruder = logged_in(demo, HUB, Role.VERIFIKATOR)
    for method, rule in routes:
        url = rule.replace("<int:matter_id>", str(matter_id))
        response = (
            intruder.post(url, {"number": first.registration_number}, token_from="/")
            if method == "POST" else intruder.get(url)
        )
        assert response.status_code == 404, (method, url)
    assert first.registration_number not in intruder.get("/perkara").get_data(as_text=True)
    with demo.inst.sessions() as session:
        for case_id in (first.case_id, second.case_id):
            case = session.get(Case, case_id)
            assert case is not None and case.matter_id == matter_id
