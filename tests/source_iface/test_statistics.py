"""The public statistics page (/statistik): in both languages, no script, nothing external,
small figures hidden, the tenant's own cases only, linked from every page's footer."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from zoneinfo import ZoneInfo

import pytest
import time_machine

from tests.source_iface.conftest import Reporter
from tests.source_iface.test_pages import check_page
from tests.support import CLOCKS
from wbs.domain import CaseStatus, TenantKind
from wbs.models import Case, Source, Tenant
from wbs.tenancy import TenantScope
from wbs.tenants import create_tenant

WIB = ZoneInfo("Asia/Jakarta")
# 17:00 UTC on 2 December is already 3 December in Jakarta: the last ended quarter is Q3 2026.
NOW = CLOCKS["17:00-utc"]
OWN, OTHER = "pemkab-statistik", "pemkab-tetangga"
CELL = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>", re.S)


def _cases(scope: TenantScope, received: dt.date, count: int, *, closed: bool = False) -> None:
    for _ in range(count):
        answered = dt.datetime(received.year, received.month, received.day, 10, tzinfo=WIB)
        scope.add(
            Case(
                source=Source(
                    id=secrets.token_hex(32),
                    reply_fingerprint="D" * 40,
                    reply_public_key="public",
                    reply_secret_key="locked",
                ),
                registration_number=f"{scope.tenant.slug}/{secrets.token_hex(8)}",
                category="pemerasan",
                status=CaseStatus.SELESAI if closed else CaseStatus.TELAAH,
                received_at=answered,
                first_response_due=received + dt.timedelta(days=9),
                closure_due=received + dt.timedelta(days=42),
                first_response_at=answered,
                closed_at=answered + dt.timedelta(days=20) if closed else None,
            )
        )


@pytest.fixture(scope="module")
def tenants(demo) -> None:  # type: ignore[no-untyped-def]
    with demo.inst.sessions() as session:
        kind = TenantKind.PEMERINTAH_KABUPATEN
        own = create_tenant(session, slug=OWN, name="Pemkab Statistik", kind=kind)
        other = create_tenant(session, slug=OTHER, name="Pemkab Tetangga", kind=kind)
        session.flush()
        scope, other_scope = TenantScope(session, own), TenantScope(session, other)
        _cases(scope, dt.date(2026, 4, 14), 2)  # Q2: two reports, shown as "< 5"
        _cases(scope, dt.date(2026, 8, 4), 4)  # Q3: six received and answered, three closed
        _cases(scope, dt.date(2026, 8, 5), 2, closed=True)
        _cases(scope, dt.date(2026, 11, 2), 1, closed=True)
        _cases(other_scope, dt.date(2026, 8, 4), 30, closed=True)  # never on the own page
        _cases(other_scope, dt.date(2025, 1, 6), 7)
        session.commit()


def _cells(html: str) -> list[list[str]]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [re.sub(r"<[^>]+>|\s+", " ", cell).strip() for cell in CELL.findall(row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


@pytest.mark.parametrize("lang", ["id", "en"])
def test_statistics_page_in_both_languages(demo, client, tenants, lang: str) -> None:  # type: ignore[no-untyped-def]
    client.set_cookie("peluit_l", lang)
    reporter = Reporter(client, tenant=OWN)
    with time_machine.travel(NOW, tick=False):
        landing = check_page(reporter.get("/"), lang=lang)
        assert f'href="/t/{OWN}/statistik"' in landing
        html = check_page(reporter.get("/statistik"), lang=lang)
    quarter = {"id": "Triwulan %d 2026", "en": "Q%d 2026"}[lang]
    hidden = "&lt;&nbsp;5"
    assert _cells(html) == [
        [quarter % 3, "6", "6", hidden],
        [quarter % 2, hidden, hidden, hidden],
    ]
    # The quarter under way is not published, and the caption counts up to yesterday (WIB).
    assert quarter % 4 not in html
    yesterday = {"id": "2 Desember 2026", "en": "December 2, 2026"}[lang]
    assert yesterday in html
    why = {"id": "dapat menunjuk kepada seorang pelapor", "en": "could point at a single reporter"}
    assert why[lang] in html and "“&lt; 5”" in html
    assert {"id": "7 hari kerja", "en": "7 working days"}[lang] in html


def test_a_tenant_with_no_ended_quarter_says_so(demo, client, tenants) -> None:  # type: ignore[no-untyped-def]
    with demo.inst.sessions() as session:
        kind = TenantKind.PEMERINTAH_KABUPATEN
        create_tenant(session, slug="pemkab-baru", name="Pemkab Baru", kind=kind)
        session.commit()
    with time_machine.travel(NOW, tick=False):
        html = check_page(Reporter(client, tenant="pemkab-baru").get("/statistik"))
    assert "<table" not in html and "Belum ada triwulan yang berakhir" in html


def test_the_page_is_the_same_all_day(demo, client, tenants) -> None:  # type: ignore[no-untyped-def]
    reporter = Reporter(client, tenant=OTHER)
    with time_machine.travel(NOW, tick=False) as clock:
        before = check_page(reporter.get("/statistik"))
        with demo.inst.sessions() as session:
            tenant = session.query(Tenant).filter_by(slug=OTHER).one()
            _cases(TenantScope(session, tenant), dt.date(2026, 9, 1), 5)
            session.commit()
        clock.move_to(NOW + dt.timedelta(hours=23, minutes=59))  # 23:59 WIB, 16:59 UTC
        assert check_page(reporter.get("/statistik")) == before
        clock.move_to(NOW + dt.timedelta(days=1))  # midnight WIB: the next day's figures
        after = check_page(reporter.get("/statistik"))
    assert ["Triwulan 3 2026", "30", "30", "30"] in _cells(before)
    assert ["Triwulan 3 2026", "35", "35", "30"] in _cells(after)
