"""Content-free e-mail alerts: what each account's daily or weekly digest says, and to whom.

A mail leaves the Tor-only world: it crosses an SMTP relay and sits in a mailbox the server does
not control. So a digest carries **counts only** and a link to the investigator onion: never a
registration number, a category, a case id, a status of one case, reporter-written text, a name
of a tenant or of a person. Who reads the counts learns how busy a complaint unit is, no more.

* **daily**, to every account that set an address and did not opt out: in the cases the account
  may read (:func:`wbs.inbox.readable_cases`, the inbox's own rule), the reports new since its
  last daily digest, the open cases with a first-response or closure deadline within two working
  days, and the overdue ones;
* **weekly**, to admin instansi (their tenant's cases) and pemantau KPK (every tenant's, as the
  hub's dashboard counts them): the same figures over the week, and the open cases.

Deadlines are judged by :mod:`wbs.deadlines` and counted in working days by the instance's
:class:`~wbs.workdays.WorkingCalendar`, as everywhere else.

"New since the last digest" counts whole WIB days: a report's arrival is kept to the day only
(see :func:`wbs.models.round_to_day`), so a digest sent at 07:00 cannot tell a report of this
morning from one of tonight. It counts the days from the day of the previous digest up to
yesterday; today's reports go into tomorrow's. The first digest counts yesterday (weekly: the
seven days before today).

This module computes and words digests; it sends nothing (``peluit alerts send`` does, see
:mod:`peluit.alerts`) and takes the time it is told, so tests freeze the clock.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from wbs.config import EMAIL_ADDRESS
from wbs.context import Context
from wbs.deadlines import (
    closure_due_between,
    closure_overdue,
    first_response_due_between,
    first_response_overdue,
)
from wbs.domain import OPEN_STATUSES, Role
from wbs.inbox import readable_cases
from wbs.models import AlertSetting, Case, Investigator, Tenant
from wbs.tenancy import HubScope, TenantScope
from wbs.workdays import WorkingCalendar, local_date

if TYPE_CHECKING:
    from wbs.instance import Instance

# "Within two working days": due today, or on one of the next two working days.
DUE_SOON_WORKING_DAYS = 2
LANGUAGES = ("id", "en")
MAX_EMAIL = 254


class AlertSettingError(ValueError):
    """An account's alert setting the investigator must correct (the message says what)."""


class Kind(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class Counts:
    new: int
    due_soon: int
    overdue: int
    # Weekly only: every open case in the counted cases.
    open: int | None = None

    @property
    def empty(self) -> bool:
        return not (self.new or self.due_soon or self.overdue or self.open)


@dataclass(frozen=True)
class Digest:
    kind: Kind
    email: str
    language: str
    today: dt.date
    # The first day whose new reports are counted; the last is the day before ``today``.
    since: dt.date
    counts: Counts
    # Weekly: the counts are every tenant's (a pemantau KPK's), not one tenant's.
    across_tenants: bool
    setting: AlertSetting = field(repr=False, compare=False)


def _day_start(day: dt.date) -> dt.datetime:
    # How a source-side day is stored (wbs.models.UTCDay): midnight UTC labelling the WIB date.
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def count_cases(
    session: Session,
    cases: sa.Select[Case],
    *,
    today: dt.date,
    since: dt.date,
    calendar: WorkingCalendar,
    with_open: bool = False,
) -> Counts:
    """The figures of one digest over ``cases`` (an already scoped select)."""
    last_soon = calendar.add_working_days(today, DUE_SOON_WORKING_DAYS)

    def count(*conditions: Any) -> int:
        statement = cases.where(*conditions).with_only_columns(sa.func.count(Case.id))
        return int(session.scalar(statement) or 0)

    return Counts(
        new=count(Case.received_at >= _day_start(since), Case.received_at < _day_start(today)),
        due_soon=count(
            sa.or_(
                first_response_due_between(today, last_soon),
                closure_due_between(today, last_soon),
            )
        ),
        overdue=count(sa.or_(first_response_overdue(today), closure_overdue(today))),
        open=count(Case.status.in_(OPEN_STATUSES)) if with_open else None,
    )


def is_due(setting: AlertSetting, kind: Kind, today: dt.date) -> bool:
    """Not yet sent today (daily) or this ISO week (weekly): a second run sends nothing."""
    if kind is Kind.DAILY:
        last = setting.daily_sent_at
        return last is None or local_date(last) < today
    last = setting.weekly_sent_at
    return last is None or local_date(last).isocalendar()[:2] != today.isocalendar()[:2]


def _since(setting: AlertSetting, kind: Kind, today: dt.date) -> dt.date:
    last = setting.daily_sent_at if kind is Kind.DAILY else setting.weekly_sent_at
    if last is not None:
        return min(local_date(last), today)
    return today - dt.timedelta(days=1 if kind is Kind.DAILY else 7)


def receives(investigator: Investigator, kind: Kind) -> bool:
    """Whose role gets this kind of digest: everyone the daily, the overseers the weekly."""
    if kind is Kind.DAILY:
        return True
    return investigator.role in (Role.ADMIN_INSTANSI, Role.PEMANTAU_KPK)


def pending_digests(
    inst: Instance, session: Session, kind: Kind, now: dt.datetime
) -> list[Digest]:
    """Every digest of this kind still to send at ``now``, tenant by tenant, each through the
    tenant's own scope. Digests with nothing to report are included (:attr:`Counts.empty`):
    the sender records them as done without mailing."""
    today = local_date(now)
    digests = []
    for tenant in session.scalars(sa.select(Tenant).order_by(Tenant.id)):
        scope = TenantScope(session, tenant)
        rows = session.execute(
            scope.select(Investigator)
            .add_columns(AlertSetting)
            .join(
                AlertSetting,
                sa.and_(
                    AlertSetting.investigator_id == Investigator.id,
                    AlertSetting.tenant_id == Investigator.tenant_id,
                ),
            )
            .where(
                Investigator.active.is_(True),
                AlertSetting.enabled.is_(True),
                AlertSetting.email.is_not(None),
            )
            .order_by(Investigator.id)
        )
        for investigator, setting in rows:
            if not (receives(investigator, kind) and is_due(setting, kind, today)):
                continue
            digests.append(_digest(inst, session, tenant, investigator, setting, kind, today))
    return digests


def _digest(
    inst: Instance,
    session: Session,
    tenant: Tenant,
    investigator: Investigator,
    setting: AlertSetting,
    kind: Kind,
    today: dt.date,
) -> Digest:
    ctx = Context(inst, session, tenant, actor=investigator)
    across = False
    if kind is Kind.DAILY:
        cases = readable_cases(ctx)
    elif ctx.reads_across_tenants:
        # The hub's totals: every tenant's cases, as KPK's dashboard counts them.
        cases = HubScope(session, tenant).select(Case)
        across = True
    else:
        cases = ctx.scope.select(Case)
    since = _since(setting, kind, today)
    counts = count_cases(
        session, cases, today=today, since=since, calendar=inst.calendar,
        with_open=kind is Kind.WEEKLY,
    )
    return Digest(
        kind=kind, email=str(setting.email), language=setting.language, today=today, since=since,
        counts=counts, across_tenants=across, setting=setting,
    )


def mark_sent(digest: Digest, now: dt.datetime) -> None:
    """Record the digest as done (the caller commits), so the same day or week sends no more."""
    if digest.kind is Kind.DAILY:
        digest.setting.daily_sent_at = now
    else:
        digest.setting.weekly_sent_at = now


# --- the account's own setting ----------------------------------------------------------------


def alert_setting(ctx: Context, investigator_id: int) -> AlertSetting | None:
    """An account's alert setting in ``ctx``'s tenant (an admin may look; None if not set)."""
    return ctx.scope.get(AlertSetting, investigator_id)


def tenant_alert_settings(scope: TenantScope) -> dict[int, AlertSetting]:
    """Every account's alert setting in one tenant, by account id (the admin's account list)."""
    return {row.investigator_id: row for row in scope.session.scalars(scope.select(AlertSetting))}


def save_alert_setting(ctx: Context, *, email: str, enabled: bool, language: str) -> AlertSetting:
    """The acting investigator's own choice: only they change it (:attr:`Context.investigator`).

    An empty address removes it (no mail at all). The sent times stay: changing the address
    does not make today's digest go out twice.
    """
    investigator = ctx.investigator
    address = email.strip()
    if address and (len(address) > MAX_EMAIL or not EMAIL_ADDRESS.fullmatch(address)):
        raise AlertSettingError("email")
    if language not in LANGUAGES:
        raise AlertSettingError("language")
    setting = alert_setting(ctx, investigator.id)
    if setting is None:
        setting = AlertSetting(investigator_id=investigator.id)
        ctx.scope.add(setting)
    setting.email = address or None
    setting.enabled = enabled
    setting.language = language
    return setting


# --- the words --------------------------------------------------------------------------------

_WORDS: dict[str, dict[str, str]] = {
    "id": {
        "subject_daily": "Peluit: ringkasan harian {day}",
        "subject_weekly": "Peluit: ringkasan mingguan {day}",
        "intro_daily": "Ringkasan harian Peluit untuk kasus yang dapat Anda lihat.",
        "intro_weekly_tenant": "Ringkasan mingguan Peluit untuk seluruh kasus instansi Anda.",
        "intro_weekly_hub": "Ringkasan mingguan Peluit untuk kasus seluruh instansi.",
        "new": "Laporan baru (diterima {since} s.d. {until})",
        "new_none": "Laporan baru",
        "due_soon": "Kasus dengan tenggat dalam dua hari kerja",
        "overdue": "Kasus lewat tenggat",
        "open": "Kasus terbuka",
        "link": "Buka aplikasi penyidik di Tor Browser:",
        "no_link": "Buka aplikasi penyidik di Tor Browser.",
        "footer": (
            "E-mail ini hanya berisi jumlah, tanpa isi laporan. Untuk berhenti menerimanya "
            "atau mengganti alamat, buka halaman Akun > Peringatan e-mail."
        ),
    },
    "en": {
        "subject_daily": "Peluit: daily digest {day}",
        "subject_weekly": "Peluit: weekly digest {day}",
        "intro_daily": "Peluit's daily digest of the cases you can see.",
        "intro_weekly_tenant": "Peluit's weekly digest of all your institution's cases.",
        "intro_weekly_hub": "Peluit's weekly digest of the cases of every institution.",
        "new": "New reports (received {since} to {until})",
        "new_none": "New reports",
        "due_soon": "Cases with a deadline within two working days",
        "overdue": "Overdue cases",
        "open": "Open cases",
        "link": "Open the investigator interface in Tor Browser:",
        "no_link": "Open the investigator interface in Tor Browser.",
        "footer": (
            "This e-mail holds counts only, no report content. To stop it or change the "
            "address, go to Account > E-mail alerts."
        ),
    },
}


def compose(digest: Digest, link: str | None) -> tuple[str, str]:
    """The subject and plain-text body of a digest: counts, dates and the link, nothing else."""
    words = _WORDS.get(digest.language, _WORDS["id"])
    day = digest.today.isoformat()
    subject = words[f"subject_{digest.kind.value}"].format(day=day)
    if digest.kind is Kind.DAILY:
        intro = words["intro_daily"]
    else:
        intro = words["intro_weekly_hub" if digest.across_tenants else "intro_weekly_tenant"]
    until = digest.today - dt.timedelta(days=1)
    new_label = (
        words["new"].format(since=digest.since.isoformat(), until=until.isoformat())
        if digest.since <= until
        else words["new_none"]
    )
    counts = digest.counts
    lines = [intro, "", f"{new_label}: {counts.new}"]
    lines.append(f"{words['due_soon']}: {counts.due_soon}")
    lines.append(f"{words['overdue']}: {counts.overdue}")
    if counts.open is not None:
        lines.append(f"{words['open']}: {counts.open}")
    lines.append("")
    lines.extend([words["link"], link] if link else [words["no_link"]])
    lines.extend(["", "-- ", words["footer"], ""])
    return subject, "\n".join(lines)
