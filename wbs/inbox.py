"""What an investigator's inbox lists: their tenant's cases, and for KPK's accounts also the
cases shared with KPK (KPK's copy, :class:`wbs.tenancy.SharedScope`), filtered, sorted by
deadline and paged.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from wbs.context import Context
from wbs.deadlines import first_response_overdue
from wbs.domain import CaseStatus
from wbs.models import Case, Investigator, Tenant
from wbs.numbers import ID_DIGITS, whole_number

PAGE_SIZE = 50
SORTS = ("deadline", "received")
# What a search by registration number keeps of what was typed: the characters numbers are
# made of ("PLT-PEMPROV-SUMSEL-2026-004817"), upper-cased, so a pasted number with spaces or a
# lower-case one still matches; at most as long as a number may be (the column's length).
_NUMBER_CHARACTERS = re.compile(r"[^A-Z0-9-]")
MAX_NUMBER_QUERY = 80


def number_query(raw: str) -> str | None:
    """The registration-number search as typed, cleaned; None when nothing is left."""
    cleaned = _NUMBER_CHARACTERS.sub("", raw.upper())[:MAX_NUMBER_QUERY]
    return cleaned or None


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
    starred: bool = False
    needs_reply: bool = False
    # A registration number, whole or in part ("2026-0048", "004817"): see number_query.
    number: str | None = None
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
        assignee: int | str | None = (
            "none" if raw_assignee == "none" else whole_number(raw_assignee, ID_DIGITS)
        )
        sort = args.get("sort", "deadline")
        page = whole_number(args.get("page", "1"), 7)
        return cls(
            status=status,
            category=args.get("category") or None,
            mcp_area=args.get("mcp_area") or None,
            assignee=assignee,
            overdue=args.get("overdue") == "1",
            unread=args.get("unread") == "1",
            starred=args.get("starred") == "1",
            needs_reply=args.get("needs_reply") == "1",
            number=number_query(args.get("number", "")),
            sort=sort if sort in SORTS else "deadline",
            page=max(1, min(page, 1_000_000)) if page is not None else 1,
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
            "starred": "1" if self.starred else None,
            "needs_reply": "1" if self.needs_reply else None,
            "number": self.number,
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
    slugs: dict[int, str]


def readable_cases(ctx: Context) -> sa.Select[Case]:
    """Every case ``ctx``'s investigator may read: the own tenant's, and for KPK's accounts
    also the cases shared with KPK. The inbox lists them, the e-mail alerts
    (:mod:`wbs.alerts`) count them."""
    return ctx.shared().select(Case) if ctx.reads_shared_cases else ctx.scope.select(Case)


def readable_parts(ctx: Context) -> tuple[sa.Select[Case], ...]:
    """The same cases as :func:`readable_cases`, as disjoint parts (KPK's copy has two:
    :meth:`wbs.tenancy.SharedScope.select_parts`), so that the inbox counts and sorts each
    through an index rather than scanning every case for an OR."""
    if ctx.reads_shared_cases:
        return ctx.shared().select_parts(Case)
    return (ctx.scope.select(Case),)


def _filtered(
    statement: sa.Select[Case], filters: InboxFilters, tenant_id: int, today: dt.date
) -> sa.Select[Case]:
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
            Case.assignee_id == filters.assignee, Case.tenant_id == tenant_id
        )
    if filters.overdue:
        statement = statement.where(first_response_overdue(today))
    if filters.unread:
        statement = statement.where(Case.unread.is_(True))
    # The marks are the own team's: another tenant's marks mean nothing to a monitor.
    if filters.starred:
        statement = statement.where(Case.starred.is_(True), Case.tenant_id == tenant_id)
    if filters.needs_reply:
        statement = statement.where(Case.needs_reply.is_(True), Case.tenant_id == tenant_id)
    if filters.number:
        # Within what this reader may read (the statement is already scoped): a whole number
        # matches itself, a part matches every number containing it. The query is cleaned to
        # letters, digits and hyphens, and escaped all the same.
        statement = statement.where(
            Case.registration_number.contains(filters.number, autoescape=True)
        )
    return statement


def _count(session: Session, parts: tuple[sa.Select[Case], ...]) -> int:
    """The cases of all the (disjoint) parts: one statement, one count per part."""
    counts = [part.with_only_columns(sa.func.count(Case.id)) for part in parts]
    if len(counts) == 1:
        return int(session.scalar(counts[0]) or 0)
    row = session.execute(sa.select(*(count.scalar_subquery() for count in counts))).one()
    return sum(int(value or 0) for value in row)


def _order(entity: Any, sort: str) -> tuple[Any, ...]:
    if sort == "received":
        return (entity.received_at.desc(), entity.id.desc())
    return (entity.first_response_due, entity.id)


def _page(
    session: Session, parts: tuple[sa.Select[Case], ...], sort: str, offset: int
) -> list[Case]:
    """One page of the parts' cases in the inbox's order. Several parts are merged: each
    part's first ``offset + PAGE_SIZE`` in order (an index scan that stops early), then the
    page of their union, in the same order (ids break ties, so the order is total)."""
    if len(parts) == 1:
        return list(
            session.scalars(
                parts[0].order_by(*_order(Case, sort)).limit(PAGE_SIZE).offset(offset)
            )
        )
    firsts = [
        sa.select(part.order_by(*_order(Case, sort)).limit(offset + PAGE_SIZE).subquery())
        for part in parts
    ]
    merged = aliased(Case, sa.union_all(*firsts).subquery())
    return list(
        session.scalars(
            sa.select(merged).order_by(*_order(merged, sort)).limit(PAGE_SIZE).offset(offset)
        )
    )


def inbox(
    ctx: Context, filters: InboxFilters, today: dt.date
) -> InboxPage:
    """One page of the cases ``ctx`` may read: the own tenant's, and for KPK's accounts also
    the cases shared with KPK (KPK's copy, read-only)."""
    session, tenant = ctx.session, ctx.tenant
    parts = readable_parts(ctx)
    unread = _count(session, tuple(part.where(Case.unread.is_(True)) for part in parts))
    filtered = tuple(_filtered(part, filters, tenant.id, today) for part in parts)
    total = _count(session, filtered)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(filters.page, pages)
    rows = _page(session, filtered, filters.sort, (page - 1) * PAGE_SIZE)
    return InboxPage(
        cases=rows,
        total=total,
        page=page,
        pages=pages,
        unread=unread,
        names=investigator_names(ctx),
        tenants={row.id: row.name for row in session.execute(sa.select(Tenant.id, Tenant.name))},
        slugs=tenant_slugs(ctx),
    )


def tenant_slugs(ctx: Context) -> dict[int, str]:
    """Every tenant's slug by id (tenants are public: their names are on their landing pages)."""
    return {row.id: row.slug for row in ctx.session.execute(sa.select(Tenant.id, Tenant.slug))}


def investigator_names(ctx: Context) -> dict[int, str]:
    rows = ctx.session.execute(
        ctx.scope.restrict(sa.select(Investigator.id, Investigator.display_name), Investigator)
    )
    return {row.id: row.display_name for row in rows}


def assignable(ctx: Context) -> list[Investigator]:
    return list(
        ctx.session.scalars(
            ctx.scope.select(Investigator)
            .where(Investigator.active.is_(True))
            .order_by(Investigator.display_name)
        )
    )
