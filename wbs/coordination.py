"""Coordination between KPK and an instansi about one case shared with KPK: *permintaan
pelimpahan* (KPK asks the instansi to forward the case to it; the instansi forwards it or
declines with a reason) and the rules :mod:`wbs.takeover` (*pengambilalihan*) shares.

Every act is recorded on both sides, each side in its own log (the kinds of
:data:`wbs.domain.BOTH_SIDES_KINDS`: a reader sees its own entry, with its note): KPK's entry
names KPK's account, the instansi's entry names the instansi's account when it acted, never
the other side's (an account id means something only in its own tenant).

The open request is one column of the case, ``forward_requested_at`` (migration 0019), so the
inbox and the case page show it without reading the log; who asked and every answer are in
the logs. It is answered by forwarding the case (:mod:`wbs.forwarding` calls
:func:`settle_request` inside its transaction: to KPK as asked, or to another institution,
which the entry names), or by a decline with a reason; a takeover settles it too.

Reasons here are **codes chosen from a list** (:class:`wbs.domain.TakeoverReason`,
:class:`~wbs.domain.RequestReason`, :class:`~wbs.domain.DeclineReason`), never free text: each
act reaches the other tenant at once, in plaintext, and the other tenant may be the office a
report is about; a typed reason would name people (ARCHITECTURE.md: such text is content). The
logs keep the code's Indonesian label, next to tenant names and registration numbers only.

The acts that change who handles a case, or whether a request is open, are **conditional
writes** (:func:`claim_case`, ``UPDATE ... WHERE linked_to_case_id IS NULL``) whose row count
says whether this transaction won: a ``SELECT ... FOR UPDATE`` does nothing on SQLite, and a
check before an unconditional write lets two handlers commit for one report.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from wbs.casework import Refusal
from wbs.context import Context
from wbs.domain import DeclineReason, EventKind, RequestReason
from wbs.models import Case, Event, Tenant
from wbs.tenancy import TenantScope
from wbs.tenants import hub_tenant


def check_kpk_on_shared_case(ctx: Context, case: Case) -> Tenant:
    """The acting account is KPK's and ``case`` is another tenant's case shared with KPK (KPK's
    copy); returns the case's tenant. Anyone else answers 404, as for a case they cannot read:
    only KPK coordinates, and only about what it was sent."""
    if ctx.actor is None or not ctx.reads_shared_cases:
        raise Refusal("not_found", "No such case.")
    if case.tenant_id == ctx.tenant.id:
        raise Refusal(
            "kpk_own_case",
            f"{case.registration_number} is KPK's own case: KPK handles it already.",
        )
    if not case.sent_to_kpk:
        raise Refusal("not_found", "No such case.")
    origin = ctx.session.get(Tenant, case.tenant_id)
    if origin is None:  # a tenant with cases cannot be removed (the log refuses)
        raise Refusal("not_found", "No such case.")
    return origin


def check_still_handled_there(case: Case, code: str) -> None:
    """The case is still handled by its own tenant and open: not forwarded or taken over
    already (it is handled elsewhere), not closed (handled by no one)."""
    if case.linked_to_case_id is not None:
        raise Refusal(
            code,
            f"{case.registration_number} was forwarded or taken over already: it is handled "
            "elsewhere.",
            why="handled_elsewhere",
        )
    if case.status.is_final:
        raise Refusal(
            code, f"{case.registration_number} is closed ({case.status.value}).", why="closed"
        )


_R = TypeVar("_R", bound=StrEnum)


def reason_code(choices: type[_R], raw: object, *, what: str) -> _R:
    """The reason code ``raw`` names in ``choices``. Refused when missing (``reason_required``)
    or not one of the list (``unknown_reason``): whatever was sent instead is never stored,
    logged or repeated in the refusal."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise Refusal("reason_required", f"Choose the reason for the {what}.", what=what)
    try:
        return choices(text)
    except ValueError:
        raise Refusal(
            "unknown_reason",
            f"The reason for the {what} must be one of: "
            + ", ".join(choice.value for choice in choices) + ".",
            what=what,
        ) from None


def changed_one(session: Session, statement: sa.Update) -> bool:
    """Run a conditional ``UPDATE`` of one row; whether it changed that row (its condition
    held on the committed row). On PostgreSQL the row lock makes a concurrent writer wait and
    re-check the condition; on SQLite writers are serialised. Either way the loser sees 0
    rows and refuses, where a check before an unconditional write lets both commit. The
    in-memory row is not changed: the caller sets what it means to keep."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return cast("sa.CursorResult[Any]", result).rowcount == 1


def claim_case(session: Session, scope: TenantScope, case_id: int, linked_id: int) -> bool:
    """Make ``linked_id`` the case that handles ``case_id`` from now on, only if nobody did
    already (``linked_to_case_id IS NULL``): a forwarding or a takeover claims the origin
    with this and refuses when it returns False."""
    return changed_one(session, (
        scope.update(Case)
        .where(Case.id == case_id, Case.linked_to_case_id.is_(None))
        .values(linked_to_case_id=linked_id)
    ))


def _both_logs(
    ctx: Context, origin_tenant: Tenant, case: Case, kind: EventKind, *,
    kpk_note: str | None, origin_note: str | None, now: dt.datetime, kpk_acts: bool,
) -> None:
    """One act about ``case`` in KPK's log and in its tenant's, each naming only its own
    account: the one of the context, on the side that acts."""
    hub = hub_tenant(ctx.session)
    if hub is None:  # pragma: no cover - a case shared with KPK implies the hub
        raise Refusal("not_found", "No such case.")
    TenantScope(ctx.session, hub).add(
        Event(case_id=case.id, kind=kind, note=kpk_note, created_at=now,
              actor_investigator_id=ctx.actor_id if kpk_acts else None)
    )
    TenantScope(ctx.session, origin_tenant).add(
        Event(case_id=case.id, kind=kind, note=origin_note, created_at=now,
              actor_investigator_id=None if kpk_acts else ctx.actor_id)
    )


# --- permintaan pelimpahan ---------------------------------------------------------------------


def request_forward(ctx: Context, case: Case, reason: object) -> RequestReason:
    """KPK asks the tenant of a case shared with it to forward the case to KPK, for
    ``reason`` (a :class:`~wbs.domain.RequestReason` code), which both logs keep as its
    label. Commits.

    Refused for a case that is forwarded, taken over or closed already, and while a request
    is open (one at a time).
    """
    origin = check_kpk_on_shared_case(ctx, case)
    code = reason_code(RequestReason, reason, what="request")
    if origin.federation_peer_id is not None:
        # Its own installation would never hear of it (a request does not travel over the
        # federation link): KPK takes the case over instead.
        raise Refusal(
            "request_refused",
            f"{origin.name} runs its own installation: a request does not reach it there; "
            "take the case over instead.",
            why="federated",
        )
    check_still_handled_there(case, "request_refused")
    if case.forward_requested_at is not None:
        raise _request_open(case)
    now = dt.datetime.now(dt.UTC)
    # Two requests at once (two KPK accounts), or a request racing a forwarding or a
    # takeover: the conditional write decides; the loser changes nothing.
    scope = TenantScope(ctx.session, origin)
    if not changed_one(ctx.session, (
        scope.update(Case)
        .where(Case.id == case.id, Case.linked_to_case_id.is_(None),
               Case.forward_requested_at.is_(None))
        .values(forward_requested_at=now)
    )):
        ctx.session.rollback()
        ctx.session.refresh(case)
        check_still_handled_there(case, "request_refused")
        raise _request_open(case)
    _both_logs(
        ctx, origin, case, EventKind.FORWARD_REQUESTED, now=now, kpk_acts=True,
        kpk_note=code.label, origin_note=f"Diminta oleh {ctx.tenant.name}: {code.label}",
    )
    case.forward_requested_at = now
    ctx.session.commit()
    return code


def _request_open(case: Case) -> Refusal:
    return Refusal(
        "request_open",
        f"KPK already asked for {case.registration_number} to be forwarded; the request is "
        "open.",
    )


def decline_request(ctx: Context, case: Case, reason: object) -> DeclineReason:
    """The tenant declines KPK's open request to forward its own case, for ``reason`` (a
    :class:`~wbs.domain.DeclineReason` code), which both logs keep as its label (KPK reads it
    on its copy of the case). Commits."""
    if case.tenant_id != ctx.tenant.id or ctx.actor is None:
        raise Refusal("not_found", "No such case.")
    code = reason_code(DeclineReason, reason, what="decline")
    no_request = Refusal(
        "no_request", f"Nobody asked for {case.registration_number} to be forwarded."
    )
    if case.forward_requested_at is None:
        raise no_request
    # Two declines at once, or a decline racing the forwarding that answers the request:
    # only the write that finds the request still open records an answer.
    if not changed_one(ctx.session, (
        ctx.scope.update(Case)
        .where(Case.id == case.id, Case.forward_requested_at.is_not(None))
        .values(forward_requested_at=None)
    )):
        ctx.session.rollback()
        raise no_request
    now = dt.datetime.now(dt.UTC)
    _both_logs(
        ctx, ctx.tenant, case, EventKind.FORWARD_REQUEST_DECLINED, now=now, kpk_acts=False,
        kpk_note=f"Ditolak oleh {ctx.tenant.name}: {code.label}", origin_note=code.label,
    )
    case.forward_requested_at = None
    ctx.session.commit()
    return code


def settle_request(
    ctx: Context, case: Case, destination: str, number: str | None = None
) -> None:
    """An open request of KPK about the context's own ``case`` is answered: the case was
    forwarded to ``destination`` (KPK, as asked, or another body, which the entries name).
    Adds both entries and clears the request, in the caller's transaction (no commit);
    nothing when no request is open."""
    if case.forward_requested_at is None:
        return
    where = f"{destination} ({number})" if number else destination
    now = dt.datetime.now(dt.UTC)
    _both_logs(
        ctx, ctx.tenant, case, EventKind.FORWARD_REQUEST_ANSWERED, now=now, kpk_acts=False,
        kpk_note=f"Dilimpahkan oleh {ctx.tenant.name} ke {where}",
        origin_note=f"Dilimpahkan ke {where}",
    )
    case.forward_requested_at = None
