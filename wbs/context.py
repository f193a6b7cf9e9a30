"""The one object a request hands to the domain: the instance, the database session, the tenant
whose rows it may touch (its scope) and who acts.

Every tenant-owned domain function takes a :class:`Context` instead of ``(inst, session,
tenant)``: the scope is built here, once per request, so no function can build one for the
wrong tenant, and the rule for what the KPK hub may read of other tenants' cases is asked of
the context rather than re-derived in each caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from wbs.domain import Role
from wbs.models import Investigator, Tenant
from wbs.tenancy import HubScope, SharedScope, TenantScope

if TYPE_CHECKING:
    from wbs.instance import Instance


@dataclass(frozen=True)
class Context:
    """What one request works with. ``actor`` is the investigator acting, or None for the
    pelapor's side and for operator commands (the log then names no account)."""

    inst: Instance
    session: Session
    tenant: Tenant
    actor: Investigator | None = None
    scope: TenantScope = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.actor is not None and self.actor.tenant_id != self.tenant.id:
            # An account acts for its own tenant only; anything else is a programming error.
            raise PermissionError("the actor belongs to another tenant")
        object.__setattr__(self, "scope", TenantScope(self.session, self.tenant))

    @property
    def investigator(self) -> Investigator:
        """The acting investigator, where a view is for logged-in investigators only."""
        if self.actor is None:
            raise PermissionError("no investigator acts in this context")
        return self.actor

    @property
    def actor_id(self) -> int | None:
        return self.actor.id if self.actor is not None else None

    @property
    def reads_across_tenants(self) -> bool:
        """A pemantau KPK reads the handling metadata of every tenant (the dashboard)."""
        return (
            self.tenant.is_hub
            and self.actor is not None
            and self.actor.role == Role.PEMANTAU_KPK
        )

    @property
    def reads_shared_cases(self) -> bool:
        """KPK's accounts (every role of the hub tenant) read KPK's copy: the cases shared
        with KPK, whose content is encrypted to KPK's keys, as they read the hub's own."""
        return self.tenant.is_hub and self.actor is not None

    def shared(self) -> SharedScope:
        """KPK's copy (read-only); refused for anyone but an account of the hub."""
        if not self.reads_shared_cases:
            raise PermissionError("only KPK's accounts read the cases shared with KPK")
        return SharedScope(self.session, self.tenant)

    def hub(self) -> HubScope:
        """The hub's read-only scope across tenants; refused for anyone but a pemantau KPK."""
        if not self.reads_across_tenants:
            raise PermissionError("only a pemantau KPK reads across tenants")
        return HubScope(self.session, self.tenant)
