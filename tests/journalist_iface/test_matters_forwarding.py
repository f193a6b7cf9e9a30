"""A case of a matter forwarded with a real package: the case that handles the report now
takes its place in the matter (and its role as lead), so a matter holds handling cases only.

Reuses the real forwarding set-up of test_forwarding.py (A's workstation re-encrypts to B's
key; the server checks the package without decrypting).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.journalist_iface.conftest import HUB, TENANT, Demo, logged_in, make_report
from tests.journalist_iface.test_api import Api
from tests.journalist_iface.test_forwarding import (  # noqa: F401 -- fixtures used by name
    Filed,
    prepared,
    upload,
    world,
)
from wbs.domain import EventKind, Role
from wbs.models import Case, Event, Matter


def test_a_forwarded_lead_hands_its_place_in_the_matter_to_the_case_that_handles_it(
    demo: Demo, request: pytest.FixtureRequest
) -> None:
    # By name: the fixtures are test_forwarding's, imported above.
    setup: tuple[Filed, Path, Api, Path] = request.getfixturevalue("prepared")
    filed, _ws, api, package = setup
    other = make_report(demo, TENANT)
    page = f"/pengaduan/{filed.case_id}"
    linker = logged_in(demo, TENANT)
    assert linker.post(f"{page}/perkara", {"number": other.registration_number},
                       token_from=page).status_code == 302
    with demo.inst.sessions() as session:
        matter_id = session.get_one(Case, filed.case_id).matter_id
    assert matter_id is not None
    monitor = logged_in(demo, HUB, Role.PEMANTAU_KPK)
    named = monitor.post(f"/perkara/{matter_id}/ketua", {"number": filed.number},
                         token_from="/perkara")
    assert named.status_code == 302

    done = upload(api, filed.case_id, package)
    assert done.status_code == 201, done.get_data(as_text=True)
    linked_number = done.get_json()["forwarded_to"]["registration_number"]
    with demo.inst.sessions() as session:
        origin = session.get_one(Case, filed.case_id)
        linked = session.scalar(sa.select(Case).where(Case.registration_number == linked_number))
        matter = session.get_one(Matter, matter_id)
        assert linked is not None and linked.matter_id == matter_id
        assert origin.matter_id is None
        assert matter.lead_case_id == linked.id
        (entry,) = session.scalars(sa.select(Event).where(
            Event.case_id == linked.id, Event.tenant_id == linked.tenant_id,
            Event.kind == EventKind.MATTER_LINKED))
        # B's log says it took the place of another institution's case (the origin's number
        # and institution are in B's forwarding entry already).
        assert "menggantikan pengaduan instansi lain" in (entry.note or "")
        assert linked.tenant_id != origin.tenant_id
    # A's remaining case now closes into B's case.
    other_page = f"/pengaduan/{other.case_id}"
    closed = linker.post(f"{other_page}/gabung", token_from=other_page)
    assert closed.status_code == 302
    with demo.inst.sessions() as session:
        change = session.scalars(sa.select(Event).where(
            Event.case_id == other.case_id, Event.kind == EventKind.STATUS_CHANGED)
            .order_by(Event.id)).all()[-1]
        assert change.note == f"Digabung ke {linked_number}"
