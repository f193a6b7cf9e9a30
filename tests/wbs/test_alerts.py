"""The digests' counts (wbs.alerts) against a case-by-case count through wbs.deadlines, over
random cases and frozen clocks; who gets which digest; the account's own setting."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy.orm import Session

from crypto.codenames import generate_codename
from tests.conftest import DemoInstance
from tests.support import CLOCKS
from wbs.accounts import create_investigator
from wbs.alerts import (
    DUE_SOON_WORKING_DAYS,
    AlertSettingError,
    Counts,
    Kind,
    alert_setting,
    pending_digests,
    save_alert_setting,
)
from wbs.context import Context
from wbs.deadlines import Closure, FirstResponse, closure, first_response
from wbs.domain import FINAL_STATUSES, OPEN_STATUSES, CaseStatus, Role
from wbs.models import AlertSetting, Case, Investigator, Tenant, new_registration_number, utcnow
from wbs.sources import register_source
from wbs.tenancy import TenantScope
from wbs.tenants import get_tenant
from wbs.workdays import local_date

TENANT, HUB = "pemprov-sumsel", "kpk"
# Frozen instants: both sides of WIB midnight, a Friday, the cuti bersama at Christmas, the
# year's end; the random cases spread around all of them.
TIMES = ["16:59-utc", "00:30-wib", "friday-before-weekend", "christmas-eve-cuti-bersama",
         "new-year-00:00-wib"]
BASE = dt.date(2026, 12, 2)


def _at(day: dt.date, hour: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def _random_cases(session: Session, tenant: Tenant, source_id: str, rng: random.Random,
                  count: int) -> None:
    scope = TenantScope(session, tenant)
    for _ in range(count):
        def day(low: int = -12, high: int = 40) -> dt.date:
            return BASE + dt.timedelta(days=rng.randint(low, high))

        status = rng.choice(list(CaseStatus))
        received = day(-12, 32)
        case = Case(
            source_id=source_id,
            registration_number=new_registration_number(session, tenant, 2026),
            category=rng.choice(["gratifikasi", "suap_menyuap", "pemerasan"]),
            status=status,
            sent_to_kpk=rng.random() < 0.4,
            received_at=_at(received),
            first_response_due=day(),
            closure_due=day() if rng.random() < 0.8 else None,
            first_response_at=(
                _at(day(), rng.randint(0, 23)) if rng.random() < 0.4 else None
            ),
            closed_at=(
                _at(day(), rng.randint(0, 23))
                if status in FINAL_STATUSES and rng.random() < 0.7 else None
            ),
        )
        scope.add(case)
    session.flush()


def _account(session: Session, tenant: Tenant, role: Role, name: str, **setting: object
             ) -> Investigator:
    account, _ = create_investigator(session, tenant, name, f"Petugas {name}", role)
    TenantScope(session, tenant).add(AlertSetting(investigator_id=account.id, **setting))
    session.flush()
    return account


@dataclass
class Expected:
    visible: Callable[[Case], bool]
    open: bool


def _expected(cases: list[Case], visible: Callable[[Case], bool], today: dt.date,
              since: dt.date, horizon: dt.date, with_open: bool) -> Counts:
    """Case by case, through wbs.deadlines: what the SQL counts must say."""
    rows = [case for case in cases if visible(case)]

    def received(case: Case) -> dt.date:
        return case.received_at.astimezone(dt.UTC).date()  # the stored WIB day's label

    def due_soon(case: Case) -> bool:
        if case.status not in OPEN_STATUSES:
            return False
        first = (first_response(case, today) is FirstResponse.PENDING
                 and case.first_response_due <= horizon)
        close = (closure(case, today) is Closure.PENDING
                 and case.closure_due is not None and case.closure_due <= horizon)
        return first or close

    return Counts(
        new=sum(since <= received(case) < today for case in rows),
        due_soon=sum(due_soon(case) for case in rows),
        overdue=sum(
            first_response(case, today) is FirstResponse.MISSING
            or closure(case, today) is Closure.OVERDUE
            for case in rows
        ),
        open=sum(case.status in OPEN_STATUSES for case in rows) if with_open else None,
    )


def test_digests_count_what_a_case_by_case_count_finds(demo_any_db: DemoInstance) -> None:
    inst = demo_any_db.instance
    rng = random.Random(20261203)
    with inst.sessions() as session:
        tenant, hub = get_tenant(session, TENANT), get_tenant(session, HUB)
        for owner in (tenant, hub):
            secrets = register_source(Context(inst, session, owner), generate_codename())
            _random_cases(session, owner, secrets.source_id, rng, 70)
        accounts = {
            "verifikator": _account(session, tenant, Role.VERIFIKATOR, "alertv",
                                    email="v@example.go.id"),
            "admin": _account(session, tenant, Role.ADMIN_INSTANSI, "alerta",
                              email="a@example.go.id", language="en"),
            "pemantau": _account(session, hub, Role.PEMANTAU_KPK, "alertk",
                                 email="k@example.go.id"),
            # Never a digest: opted out, no address, deactivated.
            "opted-out": _account(session, tenant, Role.VERIFIKATOR, "alerto",
                                  email="o@example.go.id", enabled=False),
            "no-address": _account(session, tenant, Role.ADMIN_INSTANSI, "alertn"),
            "inactive": _account(session, hub, Role.PEMANTAU_KPK, "alerti",
                                 email="i@example.go.id"),
        }
        accounts["inactive"].active = False
        session.commit()
        ids = {name: account.id for name, account in accounts.items()}
        tenant_id, hub_id = tenant.id, hub.id

    visible = {
        ("verifikator", Kind.DAILY): lambda c: c.tenant_id == tenant_id,
        ("admin", Kind.DAILY): lambda c: c.tenant_id == tenant_id,
        ("pemantau", Kind.DAILY): lambda c: c.tenant_id == hub_id or c.sent_to_kpk,
        ("admin", Kind.WEEKLY): lambda c: c.tenant_id == tenant_id,
        ("pemantau", Kind.WEEKLY): lambda c: True,  # the hub's totals: every tenant
    }
    checked = 0
    seen = {"new": 0, "due_soon": 0, "overdue": 0, "open": 0}
    for name in TIMES:
        with time_machine.travel(CLOCKS[name], tick=False):
            now = utcnow()
            today = local_date(now)
            horizon = inst.calendar.add_working_days(today, DUE_SOON_WORKING_DAYS)
            with inst.sessions() as session:
                # A random last digest for each account, or none yet.
                last: dict[tuple[str, Kind], dt.datetime | None] = {}
                for account, ident in ids.items():
                    setting = session.get(AlertSetting, ident)
                    assert setting is not None
                    for kind in Kind:
                        value = (
                            now - dt.timedelta(days=rng.randint(1, 12), hours=rng.randint(0, 5))
                            if rng.random() < 0.6 else None
                        )
                        last[(account, kind)] = value
                        setattr(setting, f"{kind.value}_sent_at", value)
                session.commit()
                cases = list(session.scalars(sa.select(Case)))
                for kind in Kind:
                    digests = {d.email.split("@")[0]: d
                               for d in pending_digests(inst, session, kind, now)}
                    names = {"v": "verifikator", "a": "admin", "k": "pemantau"}
                    expected_names = {a for (a, k) in visible if k is kind}
                    assert {names[key] for key in digests} == expected_names
                    for key, digest in digests.items():
                        account = names[key]
                        sent = last[(account, kind)]
                        # Not sent in this ISO week: due; the first one counts back 7 days.
                        default = today - dt.timedelta(days=1 if kind is Kind.DAILY else 7)
                        since = local_date(sent) if sent else default
                        assert digest.since == since
                        want = _expected(cases, visible[(account, kind)], today, since,
                                         horizon, kind is Kind.WEEKLY)
                        assert digest.counts == want, (name, account, kind)
                        checked += 1
                        for figure in seen:
                            seen[figure] += getattr(want, figure) or 0
    # The data must exercise every figure, or the comparison proves little.
    assert checked == len(TIMES) * len(visible)
    assert all(seen.values()), seen


def test_no_second_digest_on_the_same_day_or_in_the_same_week(demo: DemoInstance) -> None:
    inst = demo.instance
    with time_machine.travel(CLOCKS["00:30-wib"], tick=False), inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        account = _account(session, tenant, Role.ADMIN_INSTANSI, "alertw",
                           email="w@example.go.id")
        session.commit()
        now = utcnow()
        setting = session.get(AlertSetting, account.id)
        assert setting is not None
        # 00:20 WIB today: today's daily is done; 23:59 WIB yesterday: not today's.
        setting.daily_sent_at = now - dt.timedelta(minutes=10)
        assert pending_digests(inst, session, Kind.DAILY, now) == []
        setting.daily_sent_at = now - dt.timedelta(minutes=31)
        assert [d.email for d in pending_digests(inst, session, Kind.DAILY, now)] == [
            "w@example.go.id"
        ]
        # Thursday 3 December: a weekly of Monday 30 November is this week's; of Sunday the
        # 29th, last week's.
        setting.weekly_sent_at = _at(dt.date(2026, 11, 30), 1)
        assert pending_digests(inst, session, Kind.WEEKLY, now) == []
        setting.weekly_sent_at = _at(dt.date(2026, 11, 29), 1)
        assert len(pending_digests(inst, session, Kind.WEEKLY, now)) == 1


def test_the_investigator_sets_their_own_alerts_and_bad_addresses_are_refused(
    demo: DemoInstance,
) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        account, _ = create_investigator(session, tenant, "alerts", "Petugas", Role.VERIFIKATOR)
        session.commit()
        ctx = Context(inst, session, tenant, actor=account)
        for bad in ("bukan alamat", "a@b", "a@example.go.id\r\nBcc: x@example.com",
                    "<a@example.go.id>", "x" * 250 + "@example.go.id"):
            with pytest.raises(AlertSettingError):
                save_alert_setting(ctx, email=bad, enabled=True, language="id")
        with pytest.raises(AlertSettingError):
            save_alert_setting(ctx, email="a@example.go.id", enabled=True, language="fr")
        save_alert_setting(ctx, email=" a@example.go.id ", enabled=False, language="en")
        session.commit()
        saved = alert_setting(ctx, account.id)
        assert saved is not None
        assert (saved.email, saved.enabled, saved.language) == ("a@example.go.id", False, "en")
        # An empty address removes it: no mail at all.
        save_alert_setting(ctx, email="", enabled=True, language="id")
        session.commit()
        assert alert_setting(ctx, account.id).email is None  # type: ignore[union-attr]
        # Without an acting investigator (an operator's context) nobody's setting changes.
        with pytest.raises(PermissionError):
            save_alert_setting(Context(inst, session, tenant), email="b@example.go.id",
                               enabled=True, language="id")
