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

Notes and reasons here are plaintext, in both logs, like a status note: a short reason, never
report content; the forms say so.
"""

from __future__ import annotations

import datetime as dt

from wbs.casework import MAX_NOTE, Refusal
from wbs.context import Context
from wbs.domain import EventKind
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


def short_text(raw: str, *, required: bool, what: str) -> str | None:
    """A reason or note for both logs: stripped, at most MAX_NOTE characters."""
    text = raw.strip()
    if required and not text:
        raise Refusal("reason_required", f"Write the reason for the {what}.", what=what)
    if len(text) > MAX_NOTE:
        raise Refusal("note_too_long", f"note has at most {MAX_NOTE} characters.", limit=MAX_NOTE)
    return text or None


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


def request_forward(ctx: Context, case: Case, note: str = "") -> None:
    """KPK asks the tenant of a case shared with it to forward the case to KPK. Commits.

    Refused for a case that is forwarded, taken over or closed already, and while a request
    is open (one at a time). ``note`` is optional: a short reason, in both logs.
    """
    origin = check_kpk_on_shared_case(ctx, case)
    text = short_text(note, required=False, what="request")
    check_still_handled_there(case, "request_refused")
    # Two requests at once (two KPK accounts): the first to lock the row asks; the other,
    # once it has committed, finds the request open.
    requested = ctx.session.execute(
        TenantScope(ctx.session, origin).select(Case)
        .with_only_columns(Case.forward_requested_at)
        .where(Case.id == case.id).with_for_update()
    ).scalar_one()
    if requested is not None or case.forward_requested_at is not None:
        raise Refusal(
            "request_open",
            f"KPK already asked for {case.registration_number} to be forwarded; the request "
            "is open.",
        )
    now = dt.datetime.now(dt.UTC)
    _both_logs(
        ctx, origin, case, EventKind.FORWARD_REQUESTED, now=now, kpk_acts=True,
        kpk_note=text,
        origin_note=f"Diminta oleh {ctx.tenant.name}" + (f": {text}" if text else ""),
    )
    case.forward_requested_at = now
    ctx.session.commit()


def decline_request(ctx: Context, case: Case, reason: str) -> None:
    """The tenant declines KPK's open request to forward its own case, with a reason, which
    both logs keep (KPK reads it on its copy of the case). Commits."""
    if case.tenant_id != ctx.tenant.id or ctx.actor is None:
        raise Refusal("not_found", "No such case.")
    text = short_text(reason, required=True, what="decline")
    if case.forward_requested_at is None:
        raise Refusal(
            "no_request", f"Nobody asked for {case.registration_number} to be forwarded."
        )
    now = dt.datetime.now(dt.UTC)
    _both_logs(
        ctx, ctx.tenant, case, EventKind.FORWARD_REQUEST_DECLINED, now=now, kpk_acts=False,
        kpk_note=f"Ditolak oleh {ctx.tenant.name}: {text}", origin_note=text,
    )
    case.forward_requested_at = None
    ctx.session.commit()


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
