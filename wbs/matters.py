"""One handler per matter (*koordinasi dan supervisi*): cases of one affair linked as a
**matter** (perkara), one of them named the **lead** by KPK, the others closed into it.

Reports of one affair arrive at several institutions (the same procurement reported to the
kabupaten, the province and KPK). Investigators link the cases they can see into one matter;
KPK names the case whose institution leads the handling; every other case's own institution
closes it with the reason *Digabung ke <nomor registrasi>*, and its pelapor reads that the
report is handled together with another one, by the lead's institution.

**Who sees what.** One rule, :func:`_readers`, decides which cases an account may name, link
or be shown, by asking the scopes of :mod:`wbs.tenancy` (never re-deriving them):

* every account: its own tenant's cases (:class:`~wbs.tenancy.TenantScope`);
* KPK's accounts: also the cases shared with KPK (:class:`~wbs.tenancy.SharedScope`);
* a pemantau KPK: also every tenant's case metadata (:class:`~wbs.tenancy.HubScope`), which
  its dashboard and the duplicates page already show;
* a provincial government's admin instansi: also the cases of the kabupaten and kota it
  coordinates (:class:`~wbs.tenancy.ProvinceScope`), metadata only: the province may link
  them, never close them.

A case the account cannot see is "not found", exactly like a number that does not exist, so
registration numbers of other tenants cannot be probed; a matter is "not found" to an account
that sees none of its cases. A matter's cases are read here across tenants (the link crosses
them, like :mod:`wbs.forwarding`'s), and shown to each reader as this rule allows: a case it
cannot see is left out, unless it is the lead (the others must know what they close into,
and whose institution handles it); KPK's accounts see it as "a case at <institution>".

**What is linkable.** Only a case that handles its report: a forwarded case's origin and the
linked case it opened are one report already, so the origin (``linked_to_case_id`` set) is
refused and the case that handles it now is linked instead. Closed cases are not linked.
Linking two cases already in different matters merges the groups (at most one of them may
have a lead). A case leaves its matter (:func:`unlink`) only before a lead is named, by the
tenant that linked it or by KPK; a matter left with one case dissolves.

**The log.** Every change writes an entry in the log of every case concerned, each in its own
tenant's log (KPK's account is named as actor only in KPK's log; the others say which
institution acted). Notes name registration numbers of the log's own tenant and of the lead,
institutions otherwise, and never content.

**Closing into the lead.** :func:`close_merged` moves the case to *diarsipkan* through
:func:`wbs.casework.change_status` with the reason *Digabung ke <lead>*: archiving is the
workflow's closure "without an outcome of its own, with a reason", reachable from every open
status but *diteruskan*. A case forwarded outside the system (*diteruskan*, still its own
handler) cannot be archived; it becomes *selesai*, the status the workflow gives a forwarding
unit once the handling is reported. The ``merged`` entry is written with the status change,
in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from wbs.casework import Refusal, change_status
from wbs.context import Context
from wbs.deadlines import FirstResponse, first_response
from wbs.domain import CaseStatus, EventKind, Role, TenantKind, can_transition
from wbs.models import Case, Event, Matter, Tenant, utcnow
from wbs.tenancy import ProvinceScope, TenantScope

MERGED_NOTE = "Digabung ke {number}"
# A typed registration number: PLT-<slug of at most 40>-<year>-<6 digits>, with room.
MAX_NUMBER = 80


def _not_found() -> Refusal:
    # The same answer for a case or matter the account cannot see as for none at all.
    return Refusal("not_found", "No such case or matter.")


# --- who sees which case -------------------------------------------------------------------------


def coordinates_province(ctx: Context) -> bool:
    """A provincial government's admin instansi: the account that coordinates the kabupaten
    and kota of its province (the role of its *koordinasi* dashboard)."""
    return (
        ctx.actor is not None
        and ctx.actor.role == Role.ADMIN_INSTANSI
        and ctx.tenant.kind == TenantKind.PEMERINTAH_PROVINSI
        and bool(ctx.tenant.province)
    )


def _readers(ctx: Context) -> list[sa.Select[Any]]:
    """``select(Case)`` of every scope this account reads cases through: the one rule."""
    selects: list[sa.Select[Any]] = [ctx.scope.select(Case)]
    if ctx.actor is None:
        return selects
    if ctx.reads_across_tenants:
        selects.append(ctx.hub().select(Case))
    elif ctx.reads_shared_cases:
        selects.append(ctx.shared().select(Case))
    if coordinates_province(ctx):
        selects.append(ProvinceScope(ctx.session, ctx.tenant).select(Case))
    return selects


def visible_ids(ctx: Context, condition: sa.ColumnElement[bool]) -> set[int]:
    """The ids of the cases matching ``condition`` that this account may see."""
    found: set[int] = set()
    for select in _readers(ctx):
        found.update(ctx.session.scalars(select.with_only_columns(Case.id).where(condition)))
    return found


def find_case(ctx: Context, number: str) -> Case:
    """The case with this registration number, if this account may see it; else not found."""
    number = number.strip().upper()[:MAX_NUMBER]
    if not number:
        raise Refusal("matter_number_required", "Give the registration number of a case.")
    for select in _readers(ctx):
        case: Case | None = ctx.session.scalar(select.where(Case.registration_number == number))
        if case is not None:
            return case
    raise _not_found()


def _members(ctx: Context, matter: Matter) -> list[Case]:
    # Across tenants: the matter's own cases, shown through MatterView as the reader may see.
    return list(ctx.session.scalars(
        sa.select(Case).where(Case.matter_id == matter.id).order_by(Case.id)
    ))


def find_matter(ctx: Context, matter_id: int) -> Matter:
    """A matter with at least one case this account may see; else not found."""
    matter = ctx.session.get(Matter, matter_id)
    if matter is None or not visible_ids(ctx, Case.matter_id == matter.id):
        raise _not_found()
    return matter


# --- the log -------------------------------------------------------------------------------------


def _tenant(ctx: Context, tenant_id: int) -> Tenant:
    tenant = ctx.session.get(Tenant, tenant_id)
    if tenant is None:  # a tenant with cases cannot be removed (the log refuses)
        raise _not_found()
    return tenant


def _label(ctx: Context, case: Case, log_tenant: int, lead_id: int | None) -> str:
    """How a case is named in the log of ``log_tenant``: its number when it is that tenant's
    own or the lead, or the log is the acting tenant's (which saw the cases it acted on); in
    KPK's log, the institution; elsewhere only "another institution's case". An institution
    learns which other institution received a report of the affair only when it leads: who
    else was told is none of its business, and could tell the reported office where to look.
    """
    if case.tenant_id == log_tenant or case.id == lead_id or log_tenant == ctx.tenant.id:
        return case.registration_number
    if _tenant(ctx, log_tenant).is_hub:
        return f"pengaduan di {_tenant(ctx, case.tenant_id).name}"
    return "pengaduan instansi lain"


def _answers_to(ctx: Context, case: Case) -> bool:
    """Whether ``case``'s tenant answers to the acting tenant for it: KPK, or the province
    coordinating its kabupaten and kota."""
    if ctx.tenant.is_hub:
        return True
    return coordinates_province(ctx) and case.tenant_id in {
        tenant.id for tenant in ProvinceScope(ctx.session, ctx.tenant).tenants
    }


def _log(
    ctx: Context, cases: Iterable[Case], kind: EventKind, note: Callable[[int], str],
    now: dt.datetime,
) -> None:
    """An entry in the log of every case in ``cases``, each in its own tenant's log.

    ``note(tenant_id)`` writes the note for that tenant's log. The acting account is named
    only in its own tenant's log; another tenant's log says which institution acted, and the
    acting tenant's log gets its own entry about that case too (as a share is on record on
    both sides), so that KPK's or the province's act stays accountable in their own log.
    """
    for case in cases:
        if case.tenant_id == ctx.tenant.id:
            ctx.scope.add(Event(case_id=case.id, kind=kind, note=note(ctx.tenant.id),
                                created_at=now, actor_investigator_id=ctx.actor_id))
            continue
        # The actor is named there only when the tenant answers to it for the case: KPK, or
        # the province coordinating it. An ordinary institution linking its own cases stays
        # "another institution" to the others (who else received a report stays untold).
        actor = ctx.tenant.name if _answers_to(ctx, case) else "instansi lain"
        TenantScope(ctx.session, _tenant(ctx, case.tenant_id)).add(
            Event(case_id=case.id, kind=kind, created_at=now,
                  note=f"{note(case.tenant_id)} (oleh {actor})")
        )
        ctx.scope.add(Event(case_id=case.id, kind=kind, note=note(ctx.tenant.id),
                            created_at=now, actor_investigator_id=ctx.actor_id))


# --- linking -------------------------------------------------------------------------------------


def _lock(ctx: Context, statement: sa.Select[Any]) -> None:
    """Lock the rows ``statement`` selects and read them again (FOR UPDATE)."""
    ctx.session.scalars(
        statement.with_for_update().execution_options(populate_existing=True)
    ).all()


def _check_actor(ctx: Context) -> None:
    actor = ctx.actor
    if actor is None or (actor.role == Role.PEMANTAU_KPK and not ctx.tenant.is_hub):
        raise Refusal("forbidden", "Your role does not allow linking cases.")


def _check_linkable(case: Case) -> None:
    _check_not_forwarded(case)
    if case.status.is_final:
        raise Refusal(
            "matter_closed_case", f"{case.registration_number} is closed.",
            number=case.registration_number,
        )


def _check_not_forwarded(case: Case) -> None:
    if case.linked_to_case_id is not None:
        raise Refusal(
            "matter_not_handler",
            f"{case.registration_number} was forwarded: link the case that handles it now.",
            number=case.registration_number,
        )


def link(ctx: Context, case: Case, number: str) -> Matter:
    """Link ``case`` (one this account may see) with the case numbered ``number``. Commits."""
    return link_cases(ctx, case, find_case(ctx, number))


def link_numbers(ctx: Context, first: str, second: str) -> Matter:
    """Link two cases named by their registration numbers (KPK's matters and duplicates
    pages). Commits."""
    return link_cases(ctx, find_case(ctx, first), find_case(ctx, second))


def link_cases(ctx: Context, first: Case, second: Case) -> Matter:
    """Put two visible, open, handling cases in one matter, merging their groups. Commits.

    Returns the matter. Refused with nothing changed when either case is not the account's
    to see (not found), is the same case, was forwarded, is closed, when both are in one
    matter already, or when both groups have a lead.
    """
    _check_actor(ctx)
    if not visible_ids(ctx, Case.id.in_([first.id, second.id])) >= {first.id, second.id}:
        raise _not_found()
    if first.id == second.id:
        raise Refusal("matter_same_case", "A case cannot be linked with itself.",
                      number=first.registration_number)
    # Two links at once (PostgreSQL): the cases' rows are locked and read again, so the second
    # waits for the first and sees its matter. (SQLite serialises every write anyway.)
    _lock(ctx, sa.select(Case).where(Case.id.in_([first.id, second.id])))
    for case in (first, second):
        _check_linkable(case)
    # And their matters, read again: a lead named meanwhile is seen before the groups merge.
    matter_ids = [m for m in (first.matter_id, second.matter_id) if m is not None]
    if matter_ids:
        _lock(ctx, sa.select(Matter).where(Matter.id.in_(matter_ids)))
    kept = ctx.session.get(Matter, first.matter_id) if first.matter_id else None
    other = ctx.session.get(Matter, second.matter_id) if second.matter_id else None
    if kept is not None and other is not None and kept.id != other.id:
        _check_may_join(ctx, kept, other, second)
    if kept is not None and other is not None and kept.id == other.id:
        raise Refusal(
            "matter_already_linked",
            f"{first.registration_number} and {second.registration_number} are in one matter "
            "already.",
            number=second.registration_number,
        )
    if kept is not None and other is not None and kept.lead_case_id and other.lead_case_id:
        raise Refusal(
            "matter_two_leads", "Both matters have a lead handler; they cannot be merged.",
            number=second.registration_number,
        )
    now = utcnow()
    if kept is None or (other is not None and other.lead_case_id and not kept.lead_case_id):
        kept, other = other, kept
    if kept is None:
        kept = Matter(created_at=now)
        ctx.session.add(kept)
        ctx.session.flush()
    if other is not None:
        # The merged group: its cases move, keeping who linked them; the emptied matter goes.
        for moved in _members(ctx, other):
            moved.matter_id = kept.id
        ctx.session.flush()
        ctx.session.delete(other)
    for case in (first, second):
        if case.matter_id != kept.id:
            case.matter_id, case.matter_linked_by = kept.id, ctx.tenant.id
    ctx.session.flush()
    members = _members(ctx, kept)
    lead = kept.lead_case_id
    _log(
        ctx, members, EventKind.MATTER_LINKED,
        lambda log: f"Perkara {kept.id}: "
        f"{_label(ctx, first, log, lead)} ditautkan dengan {_label(ctx, second, log, lead)}",
        now,
    )
    ctx.session.commit()
    return kept


def _check_may_join(ctx: Context, kept: Matter, other: Matter, second: Case) -> None:
    """Joining two matters moves every case of one into the other, under the other's lead if
    it has one: KPK's coordination. Another account joins only groups of cases it sees all
    of (its own), never moving another institution's case under a lead it did not choose."""
    if ctx.tenant.is_hub:
        return
    members = {case.id for matter in (kept, other) for case in _members(ctx, matter)}
    if not visible_ids(ctx, Case.id.in_(members)) >= members:
        raise Refusal(
            "matter_join_kpk",
            "Both cases are in matters holding other institutions' cases: only KPK joins them.",
            number=second.registration_number,
        )


def unlink(ctx: Context, matter: Matter, number: str) -> None:
    """Take the case numbered ``number`` out of ``matter``. Commits.

    Only before a lead is named, and only by the tenant that linked the case or by KPK. A
    matter left with a single case dissolves (that case is in no matter any more).
    """
    _check_actor(ctx)
    case = find_case(ctx, number)
    if case.matter_id != matter.id:
        raise Refusal(
            "matter_not_member", f"{case.registration_number} is not in this matter.",
            number=case.registration_number,
        )
    _lock(ctx, sa.select(Matter).where(Matter.id == matter.id))
    if matter.lead_case_id is not None:
        raise Refusal(
            "matter_lead_named",
            "A lead handler is named: the matter's cases stay together.",
            number=case.registration_number,
        )
    if case.matter_linked_by != ctx.tenant.id and not ctx.tenant.is_hub:
        raise Refusal("forbidden", "Only the institution that linked the case, or KPK, "
                                   "unlinks it.")
    now = utcnow()
    before = _members(ctx, matter)
    _log(
        ctx, before, EventKind.MATTER_UNLINKED,
        lambda log: f"Perkara {matter.id}: {_label(ctx, case, log, None)} dilepas",
        now,
    )
    case.matter_id, case.matter_linked_by = None, None
    remaining = [member for member in before if member.id != case.id]
    if len(remaining) < 2:
        for member in remaining:
            member.matter_id, member.matter_linked_by = None, None
        ctx.session.flush()
        ctx.session.delete(matter)
    ctx.session.commit()


def name_lead(ctx: Context, matter: Matter, number: str) -> Case:
    """KPK names the case whose institution leads the matter's handling. Commits.

    Once: the other cases then close into it, and a lead changed afterwards would leave them
    closed into a case that no longer leads. The lead must be open and handle its report.
    """
    if ctx.actor is None or not ctx.tenant.is_hub:
        raise Refusal("forbidden", "Only KPK names the lead handler of a matter.")
    case = find_case(ctx, number)
    if case.matter_id != matter.id:
        raise Refusal(
            "matter_not_member", f"{case.registration_number} is not in this matter.",
            number=case.registration_number,
        )
    _lock(ctx, sa.select(Matter).where(Matter.id == matter.id))
    if matter.lead_case_id is not None:
        raise Refusal("matter_lead_named", "The matter has a lead handler already.",
                      number=case.registration_number)
    _check_linkable(case)
    now = utcnow()
    matter.lead_case_id, matter.lead_named_at = case.id, now
    lead_tenant = _tenant(ctx, case.tenant_id).name
    _log(
        ctx, _members(ctx, matter), EventKind.LEAD_NAMED,
        lambda _log: f"Perkara {matter.id}: penangan utama {case.registration_number} "
        f"({lead_tenant})",
        now,
    )
    ctx.session.commit()
    return case


def carry_forward(ctx: Context, origin: Case, linked: Case) -> None:
    """A case of a matter was forwarded (:mod:`wbs.forwarding`, in its transaction): the
    linked case that handles the report now takes the origin's place in the matter, and its
    role as lead if it had it, so the matter keeps holding only handling cases. ``linked`` is
    flushed (it has an id); nothing happens for a case in no matter."""
    matter = ctx.session.get(Matter, origin.matter_id) if origin.matter_id else None
    if matter is None:
        return
    linked.matter_id, linked.matter_linked_by = matter.id, origin.matter_linked_by
    origin.matter_id, origin.matter_linked_by = None, None
    if matter.lead_case_id == origin.id:
        matter.lead_case_id = linked.id
    now = utcnow()
    lead = matter.lead_case_id
    _log(ctx, [origin], EventKind.MATTER_UNLINKED,
         lambda log: f"Perkara {matter.id}: dilimpahkan, kini diwakili "
         f"{_label(ctx, linked, log, lead)}", now)
    _log(ctx, [linked], EventKind.MATTER_LINKED,
         lambda log: f"Perkara {matter.id}: menggantikan {_label(ctx, origin, log, lead)} "
         "yang dilimpahkan", now)


# --- closing into the lead -------------------------------------------------------------------


def merged_status(case: Case) -> CaseStatus:
    """The final status a case closes into the lead with (see the module's docstring)."""
    for status in (CaseStatus.DIARSIPKAN, CaseStatus.SELESAI):
        if can_transition(case.status, status):
            return status
    raise Refusal(
        "transition_refused",
        f"A case cannot go from {case.status.value} to {CaseStatus.DIARSIPKAN.value}.",
        current=case.status, new=CaseStatus.DIARSIPKAN,
    )


def lead_of(ctx: Context, case: Case) -> Case | None:
    """The lead case of ``case``'s matter, if one is named."""
    matter = ctx.session.get(Matter, case.matter_id) if case.matter_id else None
    if matter is None or matter.lead_case_id is None:
        return None
    return ctx.session.get(Case, matter.lead_case_id)


def close_merged(ctx: Context, case: Case) -> Case:
    """Close an own case of a matter into its lead: *Digabung ke <lead>*. Commits; returns
    the lead. Only the case's own tenant does this (``case`` is the context's own): KPK
    names the lead, it does not close another institution's case."""
    if case.tenant_id != ctx.tenant.id or ctx.actor is None:
        raise _not_found()
    if case.matter_id is None:
        raise Refusal("matter_none", f"{case.registration_number} is in no matter.")
    lead = lead_of(ctx, case)
    if lead is None:
        raise Refusal("matter_no_lead", "KPK has not named the lead handler yet.")
    if lead.id == case.id:
        raise Refusal("matter_is_lead", f"{case.registration_number} is the lead handler.")
    _check_not_forwarded(case)
    status = merged_status(case)
    reason = MERGED_NOTE.format(number=lead.registration_number)
    now = utcnow()
    # Before the status change, in its transaction (change_status commits both): the pelapor's
    # page reads "merged" from this entry followed by the status change (merged_into).
    ctx.scope.add(Event(case_id=case.id, kind=EventKind.MERGED, note=reason,
                        actor_investigator_id=ctx.actor_id, created_at=now))
    case.merged_at = now  # what the dashboards count (wbs.tallies)
    change_status(ctx, case, status, reason)
    return lead


def merged_into(ctx: Context, case: Case) -> Tenant | None:
    """The institution handling the matter ``case`` was closed into, for the pelapor's page;
    None unless the case's latest status change is its closing into the lead.

    ``case`` is the context's own. The pelapor learns that their report is handled together
    with another one, and by whom; never the other case's number or anything of its pelapor.
    """
    if case.tenant_id != ctx.tenant.id or not case.status.is_final or case.matter_id is None:
        return None
    merged = ctx.session.scalar(
        ctx.scope.select(Event).with_only_columns(sa.func.max(Event.id))
        .where(Event.case_id == case.id, Event.kind == EventKind.MERGED)
    )
    if merged is None:
        return None
    changes = list(ctx.session.scalars(
        ctx.scope.select(Event).with_only_columns(Event.id)
        .where(Event.case_id == case.id, Event.kind == EventKind.STATUS_CHANGED,
               Event.id > merged)
    ))
    # Exactly the closing change after the merge entry: a reopening since means it is not.
    if len(changes) != 1:
        return None
    lead = lead_of(ctx, case)
    return _tenant(ctx, lead.tenant_id) if lead is not None else None


# --- what a reader is shown --------------------------------------------------------------------


@dataclass(frozen=True)
class MemberView:
    """One case of a matter as one reader may see it. ``visible`` False: only the institution
    (and the number, for the lead)."""

    case_id: int
    tenant_slug: str
    tenant_name: str
    own: bool
    visible: bool
    lead: bool
    registration_number: str | None
    status: CaseStatus | None
    received_at: dt.datetime | None
    first_response: FirstResponse | None
    first_response_at: dt.datetime | None
    # Whether this reader may take it out of the matter (no lead yet; its linker, or KPK).
    may_unlink: bool


@dataclass(frozen=True)
class MatterView:
    id: int
    created_at: dt.datetime
    lead_named_at: dt.datetime | None
    members: tuple[MemberView, ...]
    # KPK's accounts name the lead (once) among the cases they see.
    may_name_lead: bool

    @property
    def lead(self) -> MemberView | None:
        return next((member for member in self.members if member.lead), None)


def _view(
    ctx: Context, matter: Matter, members: list[Case], seen: set[int], today: dt.date
) -> MatterView:
    views = []
    for case in members:
        tenant = _tenant(ctx, case.tenant_id)
        visible = case.id in seen
        lead = case.id == matter.lead_case_id
        if not (visible or lead or ctx.tenant.is_hub):
            # Another institution's case, not the lead: an institution is not told who else
            # received a report of the affair (KPK, the coordinator, is: "a case at X").
            continue
        views.append(MemberView(
            case_id=case.id, tenant_slug=tenant.slug, tenant_name=tenant.name,
            own=case.tenant_id == ctx.tenant.id, visible=visible, lead=lead,
            registration_number=case.registration_number if visible or lead else None,
            status=case.status if visible else None,
            received_at=case.received_at if visible else None,
            first_response=first_response(case, today) if visible else None,
            first_response_at=case.first_response_at if visible else None,
            may_unlink=visible and matter.lead_case_id is None and ctx.actor is not None
            and (case.matter_linked_by == ctx.tenant.id or ctx.tenant.is_hub),
        ))
    return MatterView(
        id=matter.id, created_at=matter.created_at, lead_named_at=matter.lead_named_at,
        members=tuple(views),
        may_name_lead=ctx.tenant.is_hub and ctx.actor is not None
        and matter.lead_case_id is None,
    )


def matter_view(ctx: Context, matter: Matter, today: dt.date) -> MatterView:
    members = _members(ctx, matter)
    return _view(ctx, matter, members, visible_ids(ctx, Case.matter_id == matter.id), today)


def case_matter(ctx: Context, case: Case, today: dt.date) -> MatterView | None:
    """The matter of a case the reader is on (its case page), if any."""
    if case.matter_id is None:
        return None
    matter = ctx.session.get(Matter, case.matter_id)
    return matter_view(ctx, matter, today) if matter is not None else None


def matters(ctx: Context, today: dt.date) -> list[MatterView]:
    """Every matter with a case this account may see, newest first: KPK's monitor sees them
    all; an institution, those its cases are in; a tenant with no case in a matter, nothing.
    """
    seen = visible_ids(ctx, Case.matter_id.isnot(None))
    if not seen:
        return []
    ids = set(ctx.session.scalars(
        sa.select(Case.matter_id).where(Case.id.in_(seen)).distinct()
    ))
    found = list(ctx.session.scalars(
        sa.select(Matter).where(Matter.id.in_(ids)).order_by(Matter.id.desc())
    ))
    members: dict[int, list[Case]] = {matter.id: [] for matter in found}
    for case in ctx.session.scalars(
        sa.select(Case).where(Case.matter_id.in_(ids)).order_by(Case.id)
    ):
        members[case.matter_id or 0].append(case)
    return [_view(ctx, matter, members[matter.id], seen, today) for matter in found]
