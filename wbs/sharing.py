"""KPK's copy: the moment a case becomes shared with KPK, on record on both sides.

A case is shared with KPK when the pelapor chose to send it to KPK too, or the tenant's
``kpk_sharing`` policy sends every report (at intake, from the drop box or an operator's
package). From then on every new item of it is encrypted to KPK's current keys as well
(:func:`wbs.tenants.current_recipients` with ``to_kpk``; replies in :mod:`wbs.casework`), and
KPK's accounts read it through :class:`wbs.tenancy.SharedScope`.

The share is one ``SENT_TO_KPK`` entry in the origin tenant's log and one in KPK's, each
written once: what each side did and when stays in its own log.
"""

from __future__ import annotations

import sqlalchemy as sa

from wbs.context import Context
from wbs.domain import EventKind
from wbs.models import Case, Event
from wbs.tenancy import TenantScope
from wbs.tenants import NoKpkKey, hub_tenant


def log_share(ctx: Context, case: Case) -> None:
    """Add the share's entries to both logs (committed with the caller's transaction).

    ``case`` is the context's own, already flushed (it has an id) and shared. Written once:
    an entry already in the origin's log means the share is on record. The note is empty:
    the kind and the case say everything, and the log is plaintext.
    """
    if not case.sent_to_kpk or case.id is None or case.tenant_id != ctx.tenant.id:
        raise ValueError("log_share needs an own, saved case that is shared with KPK")
    hub = hub_tenant(ctx.session)
    if hub is None:
        raise NoKpkKey("there is no KPK tenant: cannot share the report with KPK")
    logged = ctx.session.scalar(
        ctx.scope.restrict(sa.select(sa.func.count(Event.id)), Event).where(
            Event.case_id == case.id, Event.kind == EventKind.SENT_TO_KPK
        )
    )
    if logged:
        return
    ctx.scope.add(Event(case_id=case.id, kind=EventKind.SENT_TO_KPK,
                        actor_investigator_id=ctx.actor_id))
    # KPK's side: an entry of KPK's own log about the case it now holds a copy of; no
    # actor (KPK did nothing yet; the origin's account, if any, is not KPK's).
    TenantScope(ctx.session, hub).add(Event(case_id=case.id, kind=EventKind.SENT_TO_KPK))
