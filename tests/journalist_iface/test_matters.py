"""One handler per matter: linking cases, KPK naming the lead, the others closing into it.

Real reports throughout (encrypted by the intake with real gpg; the reporter's through the
source interface, whose reply key is unlocked by the codename to read the page). Tenants:
A is the demo province (Sumatera Selatan), B a kabupaten it coordinates, C a kabupaten of
another province with no case in any matter, and KPK.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from source_iface import create_app as create_source_app
from tests.journalist_iface.conftest import (
    HUB,
    TENANT,
    Browser,
    Demo,
    add_bare_cases,
    logged_in,
    make_report,
)
from tests.journalist_iface.test_api import api_login
from tests.journalist_iface.test_sketches import AFFAIR, KEY, RETOLD
from tests.source_iface.conftest import GOOD_ANSWERS, Reporter
from wbs.casework import Refusal, check_case_deletable
from wbs.domain import CaseStatus, EventKind, Role, TenantKind
from wbs.models import Case, Event, Matter, Tenant
from wbs.monitoring import dashboard
from wbs.tenants import add_recipient_key, create_tenant, get_tenant, recipient_keys
from workstation.sketches import sketch_document

A = TENANT
B, B_NAME = "pemkab-ogan-ilir", "Pemerintah Kabupaten Ogan Ilir"
C, C_NAME = "pemkab-sleman", "Pemerintah Kabupaten Sleman"
KPK_NAME = "Komisi Pemberantasan Korupsi"


@dataclass
class World:
    source_app: Any


@pytest.fixture(scope="module")
def world(demo: Demo) -> Iterator[World]:
    with demo.inst.sessions() as session:
        create_tenant(session, slug=B, name=B_NAME, kind=TenantKind.PEMERINTAH_KABUPATEN,
                      province="Sumatera Selatan")
        create_tenant(session, slug=C, name=C_NAME, kind=TenantKind.PEMERINTAH_KABUPATEN,
                      province="Daerah Istimewa Yogyakarta")
        session.commit()
    yield World(create_source_app(demo.inst, testing=True))


def _keyed(demo: Demo, slug: str) -> None:
    """B's reports need a recipient key: B gets a copy of the demo province's public key, so
    its intake encrypts for real (who holds the secret half does not matter here)."""
    with demo.inst.sessions() as session:
        tenant = get_tenant(session, slug)
        if recipient_keys(session, tenant):
            return
        (key,) = recipient_keys(session, get_tenant(session, A))[:1]
        add_recipient_key(session, demo.inst.keyring, tenant, key.public_key)
        session.commit()


def report(demo: Demo, tenant: str, *, to_kpk: bool = False) -> tuple[int, str]:
    if tenant != A and tenant != HUB:
        _keyed(demo, tenant)
    made = make_report(demo, tenant, to_kpk=to_kpk, files=(b"bukti",))
    return made.case_id, made.registration_number


def case_row(demo: Demo, case_id: int) -> Case:
    with demo.inst.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        session.expunge(case)
        return case


def events(
    demo: Demo, case_id: int, kind: EventKind | None = None, tenant: str | None = None
) -> list[Event]:
    """The case's entries, in its own tenant's log (or ``tenant``'s)."""
    with demo.inst.sessions() as session:
        log = get_tenant(session, tenant).id if tenant else sa.select(Case.tenant_id).where(
            Case.id == case_id).scalar_subquery()
        query = sa.select(Event).where(Event.case_id == case_id, Event.tenant_id == log)
        if kind is not None:
            query = query.where(Event.kind == kind)
        found = list(session.scalars(query.order_by(Event.id)))
        session.expunge_all()
        return found


def matter_kinds(demo: Demo, *case_ids: int) -> set[EventKind]:
    matter_events = {EventKind.MATTER_LINKED, EventKind.MATTER_UNLINKED, EventKind.LEAD_NAMED,
                     EventKind.MERGED}
    return {e.kind for case_id in case_ids for e in events(demo, case_id)
            if e.kind in matter_events}


def link_on_page(browser: Browser, case_id: int, number: str) -> Any:
    page = f"/pengaduan/{case_id}"
    return browser.post(f"{page}/perkara", {"number": number}, token_from=page)


def link_pair(browser: Browser, first: str, second: str) -> Any:
    return browser.post("/perkara/tautkan", {"first": first, "second": second},
                        token_from="/perkara")


def name_lead(browser: Browser, matter_id: int, number: str) -> Any:
    return browser.post(f"/perkara/{matter_id}/ketua", {"number": number},
                        token_from="/perkara")


def matter_section(html: str) -> str:
    """The case page's matter section (the page lists every institution elsewhere, in the
    forwarding form)."""
    found = re.search(r'<section id="perkara">.*?</section>', html, re.S)
    assert found, "no matter section"
    return found.group(0)


def matter_count(demo: Demo) -> int:
    with demo.inst.sessions() as session:
        return int(session.scalar(sa.select(sa.func.count(Matter.id))) or 0)


# --- linking ---------------------------------------------------------------------------------


def test_an_investigator_links_two_cases_of_their_own_institution(
    demo: Demo, world: World
) -> None:
    first_id, first = report(demo, A)
    second_id, second = report(demo, A)
    verifikator = logged_in(demo, A, Role.VERIFIKATOR)
    assert link_on_page(verifikator, first_id, second.lower()).status_code == 302
    one, two = case_row(demo, first_id), case_row(demo, second_id)
    assert one.matter_id is not None and one.matter_id == two.matter_id
    with demo.inst.sessions() as session:
        assert one.matter_linked_by == two.matter_linked_by == get_tenant(session, A).id
    for case_id in (first_id, second_id):
        (linked,) = events(demo, case_id, EventKind.MATTER_LINKED)
        assert linked.actor_investigator_id == verifikator.account.id  # type: ignore[union-attr]
        # Both own numbers: one institution's log may name its own cases.
        assert first in (linked.note or "") and second in (linked.note or "")
    page = verifikator.get(f"/pengaduan/{first_id}").get_data(as_text=True)
    assert f"/pengaduan/{second_id}" in page
    assert "KPK belum menetapkan penangan utama." in page
    # Linked again: refused in words, nothing new in the log.
    again = link_on_page(verifikator, second_id, first)
    assert again.status_code == 400 and "sudah ada dalam perkara ini" in again.get_data(
        as_text=True)
    assert len(events(demo, first_id, EventKind.MATTER_LINKED)) == 1
    # With itself: refused.
    assert link_on_page(verifikator, first_id, first).status_code == 400


def test_an_invisible_case_is_not_found_and_nothing_changes(demo: Demo, world: World) -> None:
    own_id, own = report(demo, A, to_kpk=True)
    b_id, hidden = report(demo, B)  # B's, not shared with KPK
    matters_before = matter_count(demo)
    verifikator = logged_in(demo, A, Role.VERIFIKATOR)
    invisible = link_on_page(verifikator, own_id, hidden)
    missing = link_on_page(verifikator, own_id, "PLT-PEMKAB-OGAN-ILIR-2026-000000")
    # The same answer for another tenant's case as for none: no existence oracle.
    assert invisible.status_code == missing.status_code == 404
    api = api_login(demo, A)
    answers = [api.post("/api/v1/matters", json={"cases": [own, number]})
               for number in (hidden, "PLT-PEMKAB-OGAN-ILIR-2026-000000")]
    assert [r.status_code for r in answers] == [404, 404]
    assert answers[0].get_json() == answers[1].get_json() == {
        "error": "not_found", "message": "No such resource."}
    # KPK's verifikator sees A's shared case, not B's unshared one.
    kpk = logged_in(demo, HUB, Role.VERIFIKATOR)
    assert link_pair(kpk, own, hidden).status_code == 404
    assert matter_count(demo) == matters_before
    assert case_row(demo, own_id).matter_id is None
    assert matter_kinds(demo, own_id, b_id) == set()


def test_kpk_links_cases_shared_with_it_across_institutions(demo: Demo, world: World) -> None:
    a_id, a_number = report(demo, A, to_kpk=True)
    b_id, b_number = report(demo, B, to_kpk=True)
    kpk = logged_in(demo, HUB, Role.VERIFIKATOR)
    done = link_pair(kpk, a_number, b_number)
    assert done.status_code == 302
    a_case, b_case = case_row(demo, a_id), case_row(demo, b_id)
    assert a_case.matter_id is not None and a_case.matter_id == b_case.matter_id
    with demo.inst.sessions() as session:
        hub_id, a_tenant, b_tenant = (get_tenant(session, slug).id for slug in (HUB, A, B))
    assert a_case.matter_linked_by == hub_id
    # Each case's entry is in its own tenant's log; KPK's account is named in none of them
    # (it is not theirs), the institution that acted is.
    (a_event,) = events(demo, a_id, EventKind.MATTER_LINKED)
    (b_event,) = events(demo, b_id, EventKind.MATTER_LINKED)
    assert (a_event.tenant_id, b_event.tenant_id) == (a_tenant, b_tenant)
    assert a_event.actor_investigator_id is None and b_event.actor_investigator_id is None
    assert KPK_NAME in (a_event.note or "") and KPK_NAME in (b_event.note or "")
    # KPK's own log holds its act on each case, with its account: KPK answers for it.
    for case_id in (a_id, b_id):
        (own,) = events(demo, case_id, EventKind.MATTER_LINKED, tenant=HUB)
        assert own.actor_investigator_id == kpk.account.id  # type: ignore[union-attr]
        assert a_number in (own.note or "") and b_number in (own.note or "")
    # A's log names A's number and "another institution's case": neither B's number nor B;
    # and the other way round. (No lead yet: who else received a report stays untold.)
    assert a_number in (a_event.note or "") and b_number not in (a_event.note or "")
    assert B_NAME not in (a_event.note or "") and "pengaduan instansi lain" in (a_event.note or "")
    assert b_number in (b_event.note or "") and a_number not in (b_event.note or "")
    # KPK's timeline of A's case shows its act once: its own entry, with its note.
    api = api_login(demo, HUB, Role.VERIFIKATOR)
    timeline = api.get(f"/api/v1/cases/{a_id}").get_json()["timeline"]
    linked = [entry for entry in timeline if entry["kind"] == EventKind.MATTER_LINKED.value]
    assert len(linked) == 1 and b_number in (linked[0]["note"] or ""), timeline
    # KPK's matters page shows both with their metadata.
    page = kpk.get("/perkara").get_data(as_text=True)
    assert a_number in page and b_number in page and B_NAME in page
    # A's page shows the matter without B's case (not the lead: neither number nor name).
    own = matter_section(logged_in(demo, A).get(f"/pengaduan/{a_id}").get_data(as_text=True))
    assert f"perkara {a_case.matter_id}" in own and a_number in own
    assert b_number not in own and B_NAME not in own
    # KPK's verifikator, the coordinator, sees a case it cannot read as "a case at B".
    _c_id, hidden = report(demo, B)
    monitor = logged_in(demo, HUB, Role.PEMANTAU_KPK)
    assert link_pair(monitor, b_number, hidden).status_code == 302
    coordinator = kpk.get("/perkara").get_data(as_text=True)
    assert f"Pengaduan di {B_NAME}" in coordinator and hidden not in coordinator


def test_linking_cases_of_two_matters_merges_the_groups(demo: Demo, world: World) -> None:
    a1, a1_number = report(demo, A)
    a2, a2_number = report(demo, A)
    b1, b1_number = report(demo, B)
    b2, b2_number = report(demo, B)
    assert link_on_page(logged_in(demo, A), a1, a2_number).status_code == 302
    assert link_on_page(logged_in(demo, B), b1, b2_number).status_code == 302
    first, second = case_row(demo, a1).matter_id, case_row(demo, b1).matter_id
    assert first is not None and second is not None and first != second
    # KPK's monitor sees every institution's case metadata (its dashboard's): it joins them.
    monitor = logged_in(demo, HUB, Role.PEMANTAU_KPK)
    assert link_pair(monitor, a2_number, b1_number).status_code == 302
    ids = {case_row(demo, case_id).matter_id for case_id in (a1, a2, b1, b2)}
    assert len(ids) == 1
    (kept,) = ids
    with demo.inst.sessions() as session:
        assert session.get(Matter, first if kept == second else second) is None
    # Every case of the joined matter has the entry.
    for case_id in (a1, a2, b1, b2):
        assert len(events(demo, case_id, EventKind.MATTER_LINKED)) == 2
    listed = api_login(demo, HUB, Role.PEMANTAU_KPK).get(f"/api/v1/matters/{kept}")
    assert listed.status_code == 200
    numbers = {case["registration_number"] for case in listed.get_json()["cases"]}
    assert numbers == {a1_number, a2_number, b1_number, b2_number}


def merged_on_dashboard(demo: Demo, slug: str) -> int:
    """The cases of ``slug`` KPK's dashboard counts as closed into a lead (digabung)."""
    with demo.inst.sessions() as session:
        hub = session.scalar(sa.select(Tenant).where(Tenant.is_hub))
        assert hub is not None
        # What is merged does not depend on the day (no clock read).
        board = dashboard(session, hub, today=dt.date(2030, 1, 1))
        (line,) = [line for line in board.tenants if line.slug == slug]
        return line.merged


def test_kpk_names_the_lead_and_the_others_close_into_it_and_the_reporter_reads_it(
    demo: Demo, world: World
) -> None:
    # The reporter files at A through the drop box with a codename.
    reporter = Reporter(world.source_app.test_client(), A)
    codename = reporter.new_codename()
    sent = reporter.send_report(GOOD_ANSWERS, [("kuitansi.pdf", b"%PDF-1.4 bukti")])
    assert sent.status_code == 302
    a_number = sent.location.rsplit("/", 1)[1]
    with demo.inst.sessions() as session:
        a_id = session.scalar(sa.select(Case.id).where(Case.registration_number == a_number))
    assert a_id is not None
    b_id, b_number = report(demo, B)
    monitor = logged_in(demo, HUB, Role.PEMANTAU_KPK)
    assert link_pair(monitor, a_number, b_number).status_code == 302
    matter_id = case_row(demo, a_id).matter_id
    assert matter_id is not None

    # Before a lead is named, A cannot close into anything.
    a_admin = logged_in(demo, A, Role.ADMIN_INSTANSI)
    page = f"/pengaduan/{a_id}"
    early = a_admin.post(f"{page}/gabung", token_from=page)
    assert early.status_code == 400 and "belum menetapkan penangan utama" in early.get_data(
        as_text=True)
    # Only KPK names the lead: A's account is refused.
    assert name_lead(a_admin, matter_id, b_number).status_code == 403
    assert name_lead(monitor, matter_id, b_number).status_code == 302
    with demo.inst.sessions() as session:
        matter = session.get(Matter, matter_id)
        assert matter is not None and matter.lead_case_id == b_id
    for case_id in (a_id, b_id):
        (named,) = events(demo, case_id, EventKind.LEAD_NAMED)
        assert b_number in (named.note or "")
    # Once named: not renamed, and no case leaves the matter.
    assert name_lead(monitor, matter_id, a_number).status_code == 400
    refused = monitor.post(f"/perkara/{matter_id}/lepas", {"number": a_number},
                           token_from="/perkara")
    assert refused.status_code == 400

    # KPK does not close A's case itself: A's case is not KPK's (404 on the page and the API).
    assert monitor.post(f"{page}/gabung", token_from="/perkara").status_code == 404
    monitor_api = api_login(demo, HUB, Role.PEMANTAU_KPK)
    assert monitor_api.post(f"/api/v1/cases/{a_id}/close-merged").status_code == 404
    # The lead's own institution cannot close the lead into itself.
    b_browser = logged_in(demo, B)
    lead_page = f"/pengaduan/{b_id}"
    assert b_browser.post(f"{lead_page}/gabung", token_from=lead_page).status_code == 400

    # A's page offers the closing; A closes: diarsipkan, "Digabung ke <lead>".
    shown = a_admin.get(page).get_data(as_text=True)
    assert f"Tutup sebagai digabung ke {b_number}" in shown
    assert a_admin.post(f"{page}/gabung", token_from=page).status_code == 302
    closed = case_row(demo, a_id)
    assert closed.status == CaseStatus.DIARSIPKAN and closed.closed_at is not None
    assert closed.merged_at is not None and merged_on_dashboard(demo, A) == 1
    change = events(demo, a_id, EventKind.STATUS_CHANGED)[-1]
    assert change.to_status == CaseStatus.DIARSIPKAN
    assert change.note == f"Digabung ke {b_number}"
    (merged,) = events(demo, a_id, EventKind.MERGED)
    assert merged.note == f"Digabung ke {b_number}" and merged.id < change.id
    assert case_row(demo, b_id).status == CaseStatus.BARU  # the lead goes on

    # The reporter logs in with the same codename and reads that it is handled together,
    # by B, without B's number.
    again = Reporter(world.source_app.test_client(), A)
    assert again.login(codename).status_code == 302
    html = again.get("/pengaduan").get_data(as_text=True)
    assert f"Laporan Anda ditangani bersama laporan lain oleh {B_NAME}" in html
    assert b_number not in html and a_number in html
    again.get("/bahasa/en")
    english = again.get("/pengaduan").get_data(as_text=True)
    assert f"Your report is handled together with another report by {B_NAME}" in english

    # Reopened by A, the case is no longer "handled together" for its reporter.
    reopen = a_admin.post(f"{page}/status", {"status": "telaah"}, token_from=page)
    assert reopen.status_code == 302
    assert case_row(demo, a_id).merged_at is None and merged_on_dashboard(demo, A) == 0
    html = again.get("/pengaduan").get_data(as_text=True)
    assert B_NAME not in html


def test_a_tenant_with_no_case_in_a_matter_sees_nothing_of_it(demo: Demo, world: World) -> None:
    a_id, a_number = report(demo, A, to_kpk=True)
    _b_id, b_number = report(demo, B, to_kpk=True)
    assert link_pair(logged_in(demo, HUB), a_number, b_number).status_code == 302
    matter_id = case_row(demo, a_id).matter_id
    outsider = logged_in(demo, C, Role.ADMIN_INSTANSI)
    page = outsider.get("/perkara").get_data(as_text=True)
    assert a_number not in page and b_number not in page and B_NAME not in page
    assert f"perkara-{matter_id}" not in page
    for action in ("ketua", "lepas"):
        response = outsider.post(f"/perkara/{matter_id}/{action}", {"number": a_number},
                                 token_from="/perkara")
        assert response.status_code == 404, action
    api = api_login(demo, C)
    assert api.get("/api/v1/matters").get_json() == {"matters": []}
    for method, url, body in (
        ("GET", f"/api/v1/matters/{matter_id}", None),
        ("POST", f"/api/v1/matters/{matter_id}/lead", {"registration_number": a_number}),
        ("POST", f"/api/v1/matters/{matter_id}/unlink", {"registration_number": a_number}),
    ):
        response = api.open(method, url, json=body)
        assert response.status_code == 404, url
        assert response.get_json()["error"] == "not_found"
    assert case_row(demo, a_id).matter_id == matter_id


def test_unlinking_is_for_the_linking_tenant_or_kpk_and_a_lone_case_leaves_no_matter(
    demo: Demo, world: World
) -> None:
    a_id, a_number = report(demo, A, to_kpk=True)
    b_id, b_number = report(demo, B, to_kpk=True)
    assert link_pair(logged_in(demo, HUB), a_number, b_number).status_code == 302
    matter_id = case_row(demo, a_id).matter_id
    # A sees its own case in it, but KPK linked it: A may not take it out.
    a_browser = logged_in(demo, A)
    refused = a_browser.post(f"/perkara/{matter_id}/lepas", {"number": a_number},
                             token_from="/perkara")
    assert refused.status_code == 403
    api = api_login(demo, HUB)
    done = api.post(f"/api/v1/matters/{matter_id}/unlink", json={"registration_number": a_number})
    assert done.status_code == 200 and done.get_json() == {"matter": None}
    # One case left: the matter dissolved.
    assert case_row(demo, a_id).matter_id is None and case_row(demo, b_id).matter_id is None
    with demo.inst.sessions() as session:
        assert session.get(Matter, matter_id) is None
    assert len(events(demo, a_id, EventKind.MATTER_UNLINKED)) == 1
    assert len(events(demo, b_id, EventKind.MATTER_UNLINKED)) == 1


def test_the_coordinating_province_links_a_kabupaten_case_but_does_not_close_it(
    demo: Demo, world: World
) -> None:
    a_id, _a_number = report(demo, A)
    b_id, b_number = report(demo, B)  # not shared with KPK: the province sees its metadata
    # A verifikator of the province does not coordinate: B's case is not found to them.
    assert link_on_page(logged_in(demo, A, Role.VERIFIKATOR), a_id, b_number).status_code == 404
    admin = logged_in(demo, A, Role.ADMIN_INSTANSI)
    assert link_on_page(admin, a_id, b_number).status_code == 302
    assert case_row(demo, b_id).matter_id == case_row(demo, a_id).matter_id is not None
    # The province cannot close B's case (not its own), nor name a lead (KPK's).
    page = f"/pengaduan/{b_id}"
    assert admin.post(f"{page}/gabung", token_from=f"/pengaduan/{a_id}").status_code == 404
    # A kabupaten of another province is out of its reach.
    _c_id, c_number = report(demo, C)
    assert link_on_page(admin, a_id, c_number).status_code == 404


def test_only_the_case_that_handles_a_report_is_linked(demo: Demo, world: World) -> None:
    origin_id, origin_number = report(demo, A)
    handler_id, handler_number = report(demo, B)
    # A forwarded origin (as wbs.forwarding leaves it: diteruskan, linked to B's case).
    with demo.inst.sessions() as session:
        origin, handler = session.get(Case, origin_id), session.get(Case, handler_id)
        assert origin is not None and handler is not None
        origin.status, origin.linked_to_case_id = CaseStatus.DITERUSKAN, handler_id
        handler.linked_from_case_id = origin_id
        session.commit()
    other_id, _other = report(demo, A)
    admin = logged_in(demo, A, Role.ADMIN_INSTANSI)
    refused = link_on_page(admin, other_id, origin_number)
    assert refused.status_code == 400
    assert "telah dilimpahkan" in refused.get_data(as_text=True)
    # The handling case (B's, which the province sees) is linkable.
    assert link_on_page(admin, other_id, handler_number).status_code == 302
    assert case_row(demo, origin_id).matter_id is None


def test_the_api_links_names_the_lead_and_closes_a_case_into_it(demo: Demo, world: World) -> None:
    a_id, a_number = report(demo, A, to_kpk=True)
    b_id, b_number = report(demo, B, to_kpk=True)
    kpk = api_login(demo, HUB)
    bad = kpk.post("/api/v1/matters", json={"cases": [a_number]})
    assert bad.status_code == 400
    made = kpk.post("/api/v1/matters", json={"cases": [a_number, b_number]})
    assert made.status_code == 201, made.get_data(as_text=True)
    matter = made.get_json()
    assert matter["lead"] is None
    assert {c["registration_number"] for c in matter["cases"]} == {a_number, b_number}
    assert all(c["visible"] and c["status"] == "baru" for c in matter["cases"])
    lead = kpk.post(f"/api/v1/matters/{matter['id']}/lead",
                    json={"registration_number": a_number})
    assert lead.status_code == 200 and lead.get_json()["lead"] == a_number
    # B sees the matter: its own case whole, A's (the lead) by number and institution only.
    b_api = api_login(demo, B)
    (seen,) = [m for m in b_api.get("/api/v1/matters").get_json()["matters"]
               if m["id"] == matter["id"]]
    a_side = next(c for c in seen["cases"] if c["lead"])
    assert a_side == {
        "registration_number": a_number, "tenant": A, "tenant_name": a_side["tenant_name"],
        "visible": False, "own": False, "lead": True, "status": None, "received_at": None,
        "first_response": None,
    }
    closed = b_api.post(f"/api/v1/cases/{b_id}/close-merged")
    assert closed.status_code == 200, closed.get_data(as_text=True)
    detail = closed.get_json()
    assert detail["status"] == "diarsipkan"
    assert detail["timeline"][-1]["note"] == f"Digabung ke {a_number}"
    again = b_api.post(f"/api/v1/cases/{b_id}/close-merged")
    assert again.status_code == 409 and again.get_json()["error"] == "transition_refused"
    assert case_row(demo, a_id).status == CaseStatus.BARU


def test_kpk_links_a_duplicate_pair_from_the_duplicates_page(demo: Demo, world: World) -> None:
    numbers = []
    for slug, told in ((A, AFFAIR), (C, RETOLD)):
        (case_id,) = add_bare_cases(demo, 1, tenant=slug)
        number = case_row(demo, case_id).registration_number
        numbers.append((case_id, number))
        document = json.dumps(sketch_document(KEY, {number: told}).to_json()).encode()
        uploaded = logged_in(demo, slug).post(
            "/sketsa", token_from="/sketsa", content_type="multipart/form-data",
            data={"sketches": (io.BytesIO(document), "sketsa.json")},
        )
        assert uploaded.status_code == 200
    (a_id, a_number), (c_id, c_number) = numbers
    monitor = logged_in(demo, HUB, Role.PEMANTAU_KPK)
    html = monitor.get("/pemantau/duplikat").get_data(as_text=True)
    row = next(line for line in html.split("<tr>") if a_number in line and c_number in line)
    assert 'action="/perkara/tautkan"' in row and "Tautkan keduanya" in row
    first = re.search(r'name="first" value="([^"]+)"', row)
    second = re.search(r'name="second" value="([^"]+)"', row)
    assert first and second
    linked = monitor.post("/perkara/tautkan", {"first": first.group(1),
                                                "second": second.group(1)},
                          token_from="/pemantau/duplikat")
    assert linked.status_code == 302
    assert case_row(demo, a_id).matter_id == case_row(demo, c_id).matter_id is not None


def test_the_linking_institution_takes_its_case_out_from_the_case_page(
    demo: Demo, world: World
) -> None:
    first_id, _first = report(demo, A)
    second_id, second = report(demo, A)
    browser = logged_in(demo, A)
    assert link_on_page(browser, first_id, second).status_code == 302
    page = browser.get(f"/pengaduan/{first_id}").get_data(as_text=True)
    matter_id = case_row(demo, first_id).matter_id
    assert f'action="/perkara/{matter_id}/lepas"' in page
    out = browser.post(f"/perkara/{matter_id}/lepas",
                       {"number": second, "back": str(first_id)},
                       token_from=f"/pengaduan/{first_id}")
    assert out.status_code == 302 and out.location.endswith(f"/pengaduan/{first_id}")
    assert case_row(demo, first_id).matter_id is None
    assert case_row(demo, second_id).matter_id is None


def test_the_matters_pages_read_english_in_english(demo: Demo, world: World) -> None:
    a_id, a_number = report(demo, A, to_kpk=True)
    _b_id, b_number = report(demo, B, to_kpk=True)
    kpk = logged_in(demo, HUB)
    assert link_pair(kpk, a_number, b_number).status_code == 302
    kpk.get("/bahasa/en", follow_redirects=True)
    html = kpk.get("/perkara").get_data(as_text=True)
    assert "Name the lead handler" in html and "Tetapkan penangan utama" not in html
    # KPK's read-only page of A's shared case shows the matter, B's case with its number.
    case_page = kpk.get(f"/pengaduan/{a_id}").get_data(as_text=True)
    assert "This case is linked in matter" in case_page and b_number in case_page
    assert f'action="/pengaduan/{a_id}/perkara"' not in case_page  # read-only: no link form


# --- the review's findings: who is named, who joins matters, what cannot be deleted -----------


def test_an_institution_linking_its_own_cases_stays_unnamed_in_other_institutions_logs(
    demo: Demo, world: World
) -> None:
    x_id, x_number = report(demo, A, to_kpk=True)
    z_id, z_number = report(demo, B, to_kpk=True)
    y_id, _y_number = report(demo, A)
    w_id, w_number = report(demo, C, to_kpk=True)
    kpk = logged_in(demo, HUB, Role.VERIFIKATOR)
    assert link_pair(kpk, x_number, z_number).status_code == 302
    # A's verifikator links A's own Y with X: B's case is in the matter, so B's log hears of
    # it, but not from whom (only KPK or the coordinating province are named).
    a = logged_in(demo, A, Role.VERIFIKATOR)
    assert link_on_page(a, y_id, x_number).status_code == 302
    z_notes = [e.note or "" for e in events(demo, z_id, EventKind.MATTER_LINKED)]
    assert len(z_notes) == 2, z_notes
    assert KPK_NAME in z_notes[0]  # KPK's act: KPK answers for it to B
    assert "(oleh instansi lain)" in z_notes[1], z_notes
    assert all("Sumatera Selatan" not in note for note in z_notes), z_notes
    # A matter of C's case with a lead, and A tries to join it with X's matter: that would
    # move B's case under a lead A did not choose. Only KPK joins such matters.
    y2_id, y2_number = report(demo, A, to_kpk=True)
    assert link_pair(kpk, y2_number, w_number).status_code == 302
    second = case_row(demo, w_id).matter_id
    assert second is not None and name_lead(kpk, second, w_number).status_code == 302
    first = case_row(demo, x_id).matter_id
    before = {case_id: case_row(demo, case_id).matter_id for case_id in (x_id, z_id, y2_id)}
    refused = link_on_page(a, x_id, y2_number)
    assert refused.status_code == 400, refused.status_code  # the page again, with the refusal
    assert "hanya KPK" in refused.get_data(as_text=True)
    assert {c: case_row(demo, c).matter_id for c in before} == before
    api = api_login(demo, A, Role.VERIFIKATOR)
    response = api.post("/api/v1/matters", json={"cases": [x_number, y2_number]})
    assert response.status_code == 409 and response.get_json()["error"] == "matter_join_kpk"
    # KPK may: the group without a lead joins the one with it.
    assert link_pair(kpk, x_number, y2_number).status_code == 302
    assert case_row(demo, z_id).matter_id == second and first != second


def test_a_case_of_a_matter_cannot_be_deleted(demo: Demo, world: World) -> None:
    lead_id, lead_number = report(demo, A)
    other_id, other_number = report(demo, A)
    a = logged_in(demo, A, Role.VERIFIKATOR)
    assert link_on_page(a, lead_id, other_number).status_code == 302
    matter_id = case_row(demo, lead_id).matter_id
    assert matter_id is not None
    kpk = logged_in(demo, HUB, Role.PEMANTAU_KPK)
    assert name_lead(kpk, matter_id, lead_number).status_code == 302
    page = f"/pengaduan/{other_id}"
    assert a.post(f"{page}/gabung", {}, token_from=page).status_code == 302
    assert case_row(demo, other_id).status.is_final
    # Neither the case closed into the lead nor the lead (once closed) can be deleted.
    for case_id in (other_id, lead_id):
        case = case_row(demo, case_id)
        case.status = CaseStatus.SELESAI
        with pytest.raises(Refusal) as refused:
            check_case_deletable(case)
        assert refused.value.code == "in_matter"
