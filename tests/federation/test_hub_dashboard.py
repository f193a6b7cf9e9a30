"""KPK's dashboard on a hub: members' instansi counted with its own, and each member's link."""

from __future__ import annotations

import re

import time_machine

from journalist_iface import create_app
from tests.federation.conftest import Federation, add_cases, client_post
from tests.journalist_iface.conftest import SETTINGS, Demo, logged_in
from tests.support import midday_wib
from wbs.domain import Role
from wbs.federation.exchange import sync
from wbs.federation.peers import revoke_member


def _row(html: str, row_id: str) -> list[str]:
    found = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S)
    assert found is not None, row_id
    cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", found.group(1), re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]


def test_the_monitor_sees_members_and_their_freshness(federation: Federation) -> None:
    add_cases(federation.a, "kemendes", 4)
    sync(federation.a, client_post(federation.hub))
    revoke_member(federation.hub, "member-b", control="127.0.0.1:1")
    demo = Demo(
        inst=federation.hub,
        app=create_app(federation.hub, testing=True, auth_settings=SETTINGS),
        workstation=federation.demo.workstation,
        demo_lines=[],
    )
    with time_machine.travel(midday_wib(), tick=False):
        browser = logged_in(demo, "kpk", Role.PEMANTAU_KPK)
        html = browser.get("/pemantauan").get_data(as_text=True)
    # Member A's instansi is a line of KPK's own table, with its four reports.
    assert _row(html, "tenant-kemendes")[:2] == ["Instansi kemendes", "4"]
    a = _row(html, "member-member-a")
    assert a[:3] == ["member-a", "1", "mutakhir"]
    assert a[4:] == ["5", "0", "0"]  # the instansi and four cases applied; nothing waiting
    b = _row(html, "member-member-b")
    assert b[:4] == ["member-b", "0", "dicabut", "belum pernah"]
    # A later day without a sync: A is behind.
    with time_machine.travel(midday_wib().replace(year=2027), tick=False):
        browser = logged_in(demo, "kpk", Role.PEMANTAU_KPK)
        later = browser.get("/pemantauan").get_data(as_text=True)
    assert _row(later, "member-member-a")[2] == "tertinggal"
