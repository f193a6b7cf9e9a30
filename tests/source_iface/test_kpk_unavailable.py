"""The pelapor's side of a share with KPK when KPK has no current key: the report (or a
follow-up of a shared case) is refused before anything is stored, and the page says why.

A module of its own: revoking KPK's key changes the instance the module's tests share.
"""

from __future__ import annotations

import sqlalchemy as sa

from tests.source_iface.conftest import Demo, Reporter
from tests.source_iface.test_pages import check_page
from wbs.models import Case, Submission
from wbs.tenants import get_tenant, recipient_keys, revoke_recipient_key

REFUSED = "Pengaduan Anda belum dapat dikirim ke KPK saat ini"


def _stored(demo: Demo) -> tuple[int, int, int]:
    # A count, not the paths: the store publishes new files in batches, moving them.
    files = sum(1 for p in demo.inst.store.root.rglob("*") if p.is_file())
    with demo.inst.sessions() as session:
        cases = int(session.scalar(sa.select(sa.func.count(Case.id))) or 0)
        subs = int(session.scalar(sa.select(sa.func.count(Submission.id))) or 0)
    return cases, subs, files


def test_without_a_kpk_key_nothing_meant_for_kpk_is_stored(demo: Demo, reporter: Reporter) -> None:
    reporter.new_codename()
    shared = reporter.send_report(extra=[("kpk", "1")])
    assert shared.status_code == 302  # KPK still has its key
    number = shared.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    with demo.inst.sessions() as session:
        hub = get_tenant(session, "kpk")
        for key in recipient_keys(session, hub):
            revoke_recipient_key(session, hub, key.fingerprint)
        session.commit()

    before = _stored(demo)
    refused = reporter.send_report(extra=[("kpk", "1")], files=[("bukti.pdf", b"%PDF bukti")])
    check_page(refused, 503)
    assert REFUSED in refused.get_data(as_text=True)
    follow_up = reporter.send_follow_up(number, "Tambahan untuk KPK.")
    check_page(follow_up, 503)
    assert REFUSED in follow_up.get_data(as_text=True)
    assert _stored(demo) == before
    # Not sent to KPK, a report still reaches the institution.
    assert reporter.send_report().status_code == 302
    assert _stored(demo)[0] == before[0] + 1
