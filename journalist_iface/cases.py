"""What an investigator may see: the inbox query and the case lookups, all through a scope.

Two kinds of reader:

* Everyone reads their own tenant's cases through :class:`~wbs.tenancy.TenantScope`, and only
  these can be acted on (status, assignment, replies, downloads, export).
* A **pemantau KPK** (hub tenant) also reads, through :class:`~wbs.tenancy.HubScope`, the
  cases of other tenants that were sent to KPK (``sent_to_kpk``): their metadata and event log
  only, read-only. An id of any other case answers None, which the views turn into 404.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from wbs.domain import OPEN_STATUSES, CaseStatus, Role
from wbs.models import Case, Event, Investigator, Reply, Submission, Tenant, round_to_day
from wbs.tenancy import HubScope, TenantScope

PAGE_SIZE = 50
SORTS = ("deadline", "received")


def reads_across_tenants(investigator: Investigator, tenant: Tenant) -> bool:
    return tenant.is_hub and investigator.role == Role.PEMANTAU_KPK


@dataclass(frozen=True)
class InboxFilters:
    """The inbox's GET form, parsed; unknown or malformed values are ignored, never errors."""

    status: CaseStatus | None = None
    category: str | None = None
    mcp_area: str | None = None
    # An investigator id, or "none" for unassigned cases.
    assignee: int | str | None = None
    overdue: bool = False
    unread: bool = False
    sort: str = "deadline"
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> InboxFilters:
        status: CaseStatus | None
        try:
            status = CaseStatus(args.get("status", ""))
        except ValueError:
            status = None
        raw_assignee = args.get("assignee", "")
        assignee: int | str | None = None
        if raw_assignee == "none":
            assignee = "none"
        elif raw_assignee.isdigit():
            assignee = int(raw_assignee)
        sort = args.get("sort", "deadline")
        page = args.get("page", "1")
        return cls(
            status=status,
            category=args.get("category") or None,
            mcp_area=args.get("mcp_area") or None,
            assignee=assignee,
            overdue=args.get("overdue") == "1",
            unread=args.get("unread") == "1",
            sort=sort if sort in SORTS else "deadline",
            page=max(1, min(int(page), 1_000_000)) if page.isdigit() else 1,
        )

    def query_args(self, **changes: Any) -> dict[str, Any]:
        """The filters as URL arguments (for the pager links), with ``changes`` applied."""
        values: dict[str, Any] = {
            "status": self.status.value if self.status else None,
            "category": self.category,
            "mcp_area": self.mcp_area,
            "assignee": self.assignee,
            "overdue": "1" if self.overdue else None,
            "unread": "1" if self.unread else None,
            "sort": self.sort if self.sort != "deadline" else None,
            "page": self.page if self.page != 1 else None,
        }
        values.update(changes)
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class InboxPage:
    cases: list[Case]
    total: int
    page: int
    pages: int
    unread: int
    # Display names of the own tenant's investigators (for assignees), and tenant names (for
    # a monitor's cross-tenant rows): one query each, not one per row.
    names: dict[int, str]
    tenants: dict[int, str]


def _visible(session: Session, investigator: Investigator, tenant: Tenant) -> sa.Select[Any]:
    if reads_across_tenants(investigator, tenant):
        hub = HubScope(session, tenant)
        return hub.select(Case).where(
            sa.or_(Case.tenant_id == tenant.id, Case.sent_to_kpk.is_(True))
        )
    return TenantScope(session, tenant).select(Case)


def inbox(
    session: Session,
    investigator: Investigator,
    tenant: Tenant,
    filters: InboxFilters,
    today: dt.date,
) -> InboxPage:
    base = _visible(session, investigator, tenant)
    unread = session.scalar(
        base.where(Case.unread.is_(True)).with_only_columns(sa.func.count(Case.id))
    )
    statement = base
    if filters.status is not None:
        statement = statement.where(Case.status == filters.status)
    if filters.category:
        statement = statement.where(Case.category == filters.category)
    if filters.mcp_area:
        statement = statement.where(Case.mcp_area == filters.mcp_area)
    if filters.assignee == "none":
        statement = statement.where(Case.assignee_id.is_(None))
    elif isinstance(filters.assignee, int):
        # An assignee id means one of the own tenant's investigators.
        statement = statement.where(
            Case.assignee_id == filters.assignee, Case.tenant_id == tenant.id
        )
    if filters.overdue:
        statement = statement.where(
            Case.first_response_due < today, Case.status.in_(OPEN_STATUSES)
        )
    if filters.unread:
        statement = statement.where(Case.unread.is_(True))
    total = int(session.scalar(statement.with_only_columns(sa.func.count(Case.id))) or 0)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(filters.page, pages)
    if filters.sort == "received":
        order: tuple[Any, ...] = (Case.received_at.desc(), Case.id.desc())
    else:
        order = (Case.first_response_due, Case.id)
    rows = list(
        session.scalars(
            statement.order_by(*order).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
        )
    )
    return InboxPage(
        cases=rows,
        total=total,
        page=page,
        pages=pages,
        unread=int(unread or 0),
        names=investigator_names(session, tenant),
        tenants={row.id: row.name for row in session.execute(sa.select(Tenant.id, Tenant.name))},
    )


def investigator_names(session: Session, tenant: Tenant) -> dict[int, str]:
    scope = TenantScope(session, tenant)
    rows = session.execute(
        scope.restrict(sa.select(Investigator.id, Investigator.display_name), Investigator)
    )
    return {row.id: row.display_name for row in rows}


def assignable(session: Session, tenant: Tenant) -> list[Investigator]:
    scope = TenantScope(session, tenant)
    return list(
        session.scalars(
            scope.select(Investigator)
            .where(Investigator.active.is_(True))
            .order_by(Investigator.display_name)
        )
    )


def own_case(scope: TenantScope, case_id: int) -> Case | None:
    """A case the investigator may act on: their own tenant's, nothing else."""
    return scope.get(Case, case_id)


def readable_case(
    session: Session, investigator: Investigator, tenant: Tenant, case_id: int
) -> Case | None:
    """A case the investigator may read: their tenant's, or (for a monitor) one sent to KPK."""
    case = TenantScope(session, tenant).get(Case, case_id)
    if case is not None or not reads_across_tenants(investigator, tenant):
        return case
    found = HubScope(session, tenant).get(Case, case_id)
    if found is None or not found.sent_to_kpk:
        return None
    return found


@dataclass(frozen=True)
class Item:
    """One encrypted item of a case, numbered as in an export bundle."""

    number: int
    kind: str  # form, message, file, reply
    size: int
    created_at: dt.datetime
    row_id: int

    def filename(self, registration_number: str, width: int) -> str:
        # Never the original filename: it travels only inside the ciphertext.
        return f"{registration_number}-{self.number:0{width}d}-{self.kind}.gpg"


Reader = TenantScope | HubScope


def case_items(session: Session, case: Case, reader: Reader) -> list[Item]:
    """Submissions then replies of ``case``, in the order :mod:`wbs.bundle` numbers them.

    ``reader``: the investigator's tenant scope, or a monitor's hub scope for a cross-tenant
    case (see :func:`reader_for`).
    """
    subs = reader.select(Submission).where(Submission.case_id == case.id)
    reps = reader.select(Reply).where(Reply.case_id == case.id)
    rows: list[tuple[dt.datetime, int, int, dt.datetime, str, int]] = [
        (round_to_day(sub.created_at), 0, sub.id, sub.created_at, str(sub.kind), sub.size)
        for sub in session.scalars(subs)
    ]
    rows += [
        (round_to_day(rep.created_at), 1, rep.id, rep.created_at, "reply", rep.size)
        for rep in session.scalars(reps)
    ]
    rows.sort()
    return [
        Item(number, kind, size, created, row_id)
        for number, (_, _, row_id, created, kind, size) in enumerate(rows, start=1)
    ]


def number_width(items: list[Item]) -> int:
    return max(2, len(str(len(items))))


def timeline(session: Session, case: Case, reader: Reader) -> list[Event]:
    return list(
        session.scalars(
            reader.select(Event).where(Event.case_id == case.id).order_by(Event.id)
        )
    )


def reader_for(session: Session, scope: TenantScope, tenant: Tenant, case: Case) -> Reader:
    """The scope to read ``case`` through: the own tenant's, else the hub's (read-only)."""
    if case.tenant_id == scope.tenant_id:
        return scope
    return HubScope(session, tenant)
