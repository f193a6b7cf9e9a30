"""Tenant scoping in one place, so that forgetting the tenant is impossible rather than unlikely.

Views obtain tenant-owned rows ONLY through a scope:

* :class:`TenantScope` for one instansi: every statement it builds is limited to the tenant's
  rows, ``get`` answers None for another tenant's id (the view then answers 404, the same as for
  an id that does not exist, so ids of other tenants cannot be probed), and ``add`` refuses rows
  of, or linked to, another tenant.
* :class:`HubScope` for KPK: read-only metadata across all tenants, constructible only for the
  hub tenant.
* :class:`ProvinceScope` for a provincial government coordinating its kabupaten and kota:
  read-only case metadata of the local governments in its province, for its dashboard only.

* :class:`SharedScope` for KPK's accounts: *KPK's copy*, the hub's own cases plus every case
  shared with KPK (sent to KPK at intake), with their items, sources' reply public keys and
  logs, read-only. A shared case's content is encrypted to KPK's keys too, so KPK reads it as
  it reads its own; it never writes another tenant's rows (its own log entries about such a
  case, an export or a download, go through the hub's :class:`TenantScope`).

Scoping is applied twice: an explicit ``tenant_id`` condition on the model asked for, and a
``with_loader_criteria`` option covering every tenant-owned entity in the statement (joins,
relationship loads), so a join to another table cannot reach across tenants. Below that, the
database's composite foreign keys refuse cross-tenant references (see :mod:`wbs.models`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, with_loader_criteria
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.orm.interfaces import ORMOption

from wbs.domain import TenantKind
from wbs.models import (
    TENANT_OWNED_MODELS,
    Base,
    Case,
    CaseSketch,
    Event,
    Reply,
    Source,
    Submission,
    Tenant,
    TenantOwned,
)

_T = TypeVar("_T", bound=TenantOwned)
# A string bound: SQLAlchemy 2.0's Select is not variadic, so this must not run at import.
_S = TypeVar("_S", bound="sa.Select[*tuple[Any, ...]]")
_B = TypeVar("_B", bound=Base)

# What KPK's monitors may read across tenants: handling metadata (status, category, deadlines,
# sizes, the log), and the cases' keyed similarity sketches, which the server compares for them
# without the key that would make them say anything (wbs.sketches). Not sources (their locked
# reply keys), not other tenants' accounts (password hashes, TOTP secrets) or key lists, which
# are none of the hub's business.
HUB_READABLE: tuple[type[Base], ...] = (Tenant, Case, Submission, Reply, Event, CaseSketch)


class TenantIsolationError(PermissionError):
    """A row of another tenant, or a model that is not tenant-owned, reached a scope."""


def _require_tenant_owned(model: type[Any]) -> None:
    if not (isinstance(model, type) and issubclass(model, TenantOwned)):
        raise TenantIsolationError(f"{model!r} is not tenant-owned; it cannot be scoped")


class TenantScope:
    """Everything one tenant's views may read or write, and nothing else."""

    def __init__(self, session: Session, tenant: Tenant) -> None:
        if tenant.id is None:
            raise ValueError("the tenant must be saved before it can scope queries")
        self.session = session
        self.tenant = tenant
        self.tenant_id: int = tenant.id

    def _criteria(self) -> ORMOption:
        tenant_id = self.tenant_id
        return with_loader_criteria(
            TenantOwned,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
        )

    def select(self, model: type[_T]) -> sa.Select[_T]:
        """``select(model)`` limited to this tenant's rows; refine it with ``.where`` etc."""
        _require_tenant_owned(model)
        return sa.select(model).where(model.tenant_id == self.tenant_id).options(self._criteria())

    def restrict(self, statement: _S, *models: type[TenantOwned]) -> _S:
        """Limit any select (aggregates, column lists) to this tenant.

        Each named model gets an explicit condition; every other tenant-owned entity in the
        statement is limited by the loader criteria. Name at least one model, so a statement
        that selects plain columns is never left unscoped.
        """
        if not models:
            raise TenantIsolationError("restrict() needs the tenant-owned models it selects from")
        for model in models:
            _require_tenant_owned(model)
            statement = statement.where(model.tenant_id == self.tenant_id)
        return statement.options(self._criteria())

    def update(self, model: type[_T]) -> sa.Update:
        """``update(model)`` limited to this tenant's rows; refine it with ``.where`` and
        ``.values``. For a conditional write whose row count says whether it happened (a
        claim: ``... WHERE linked_to_case_id IS NULL``), which holds on SQLite as on
        PostgreSQL, unlike a read ``FOR UPDATE`` before an unconditional write."""
        _require_tenant_owned(model)
        return sa.update(model).where(model.tenant_id == self.tenant_id)

    def get(self, model: type[_T], ident: Any) -> _T | None:
        """The row with this primary key if it belongs to this tenant, else None."""
        _require_tenant_owned(model)
        obj = self.session.get(model, ident, options=[self._criteria()])
        # The identity map may already hold another tenant's row; check, don't trust.
        if obj is None or obj.tenant_id != self.tenant_id:
            return None
        return obj

    def add(self, obj: TenantOwned) -> None:
        """Add a row to the session as this tenant's.

        A new row gets this tenant's id; a row of another tenant is refused, and so is a row
        linked (through a loaded relationship) to another tenant's row, since flushing would
        copy that tenant's id into it.
        """
        self._claim(obj, seen=set())
        self.session.add(obj)

    def add_all(self, objs: Iterable[TenantOwned]) -> None:
        for obj in objs:
            self.add(obj)

    def delete(self, obj: TenantOwned) -> None:
        """Delete one of this tenant's rows (the event log refuses, being append-only)."""
        self._check(obj)
        self.session.delete(obj)

    def _check(self, obj: object) -> None:
        _require_tenant_owned(type(obj))
        tenant_id = getattr(obj, "tenant_id", None)
        if tenant_id is not None and tenant_id != self.tenant_id:
            raise TenantIsolationError(f"{obj!r} belongs to another tenant")

    def _claim(self, obj: object, seen: set[int]) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        self._check(obj)
        if getattr(obj, "tenant_id", None) is None:
            obj.tenant_id = self.tenant_id  # type: ignore[attr-defined]
        state = sa.inspect(obj)
        for relationship in state.mapper.relationships:
            if not issubclass(relationship.mapper.class_, TenantOwned):
                continue
            # loaded_value: never trigger a lazy load from inside a check.
            value = state.attrs[relationship.key].loaded_value
            if value is NO_VALUE or value is None:
                continue
            related = value if isinstance(value, list | set | tuple) else [value]
            for item in related:
                self._claim(item, seen)


class HubScope:
    """KPK's read-only view across every tenant: handling metadata, never sources or accounts.

    The hub's own cases (reports filed directly with KPK) go through :attr:`own`, an ordinary
    :class:`TenantScope`; what KPK reads of cases shared with it, :class:`SharedScope`. This
    class offers no ``add`` or ``delete``.
    """

    def __init__(self, session: Session, hub: Tenant) -> None:
        if not hub.is_hub or hub.kind != TenantKind.HUB:
            raise TenantIsolationError(f"{hub!r} is not the hub tenant")
        self.session = session
        self.hub = hub
        self.own = TenantScope(session, hub)

    def select(self, model: type[_B]) -> sa.Select[_B]:
        self._require_readable(model)
        return sa.select(model)

    def get(self, model: type[_B], ident: Any) -> _B | None:
        self._require_readable(model)
        return self.session.get(model, ident)

    @staticmethod
    def _require_readable(model: type[Any]) -> None:
        if model not in HUB_READABLE:
            raise TenantIsolationError(f"the hub does not read {model!r} across tenants")


# The local governments a province coordinates (its inspektorat provinsi supervises their
# APIP): kabupaten and kota with the same province. Not ministries, agencies or companies that
# happen to sit in the province: those answer to their own chains.
PROVINCE_COORDINATES: tuple[TenantKind, ...] = (
    TenantKind.PEMERINTAH_KABUPATEN,
    TenantKind.PEMERINTAH_KOTA,
)


class ProvinceScope:
    """A provincial government's read-only view of case metadata in its province: its own
    cases and those of the kabupaten and kota there. Cases only (status, category, deadlines),
    never submissions, replies, the log, sources or accounts; no ``add`` or ``delete``.
    """

    def __init__(self, session: Session, province: Tenant) -> None:
        if province.kind != TenantKind.PEMERINTAH_PROVINSI or not province.province:
            raise TenantIsolationError(f"{province!r} is not a provincial government")
        self.session = session
        self.province = province
        self.tenants = list(
            session.scalars(
                sa.select(Tenant)
                .where(
                    sa.or_(
                        Tenant.id == province.id,
                        sa.and_(
                            Tenant.province == province.province,
                            Tenant.kind.in_(PROVINCE_COORDINATES),
                        ),
                    )
                )
                .order_by(Tenant.name, Tenant.id)
            )
        )
        self.tenant_ids = [tenant.id for tenant in self.tenants]

    def select(self, model: type[_B]) -> sa.Select[_B]:
        if model is not Case:
            raise TenantIsolationError(f"a province reads only case metadata, not {model!r}")
        return sa.select(model).where(Case.tenant_id.in_(self.tenant_ids))

# What KPK's copy holds of a shared case: the case, its items, its log and its source's row
# (for the reply PUBLIC key a bundle carries; the locked secret half is never sent anywhere).
SHARED_READABLE: tuple[type[Base], ...] = (Case, Submission, Reply, Event, Source)


def _shared_parts(hub_id: int) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    """The one rule of what KPK's copy holds: the hub's own cases and those sent to KPK, as
    two disjoint parts (the hub's own not sent to KPK; every case sent to KPK, the hub's
    included), so that a count or a sorted page can read each part through its own index
    (the partial indexes on ``sent_to_kpk``, migration 0021) instead of an OR that makes the
    planners scan the whole table."""
    return (
        sa.and_(Case.tenant_id == hub_id, Case.sent_to_kpk.is_not(True)),
        Case.sent_to_kpk.is_(True),
    )


def _is_shared(hub_id: int) -> sa.ColumnElement[bool]:
    """The rule as one condition: either part."""
    return sa.or_(*_shared_parts(hub_id))


class SharedScope:
    """KPK's copy: the hub's own cases and the cases shared with KPK, read-only.

    Every statement names its model with an explicit condition: a case is readable if it is
    the hub's or shared; a submission, reply or log entry if it is the hub's or belongs to a
    shared case; a source if it is the hub's or the source of a shared case. Loader criteria
    keep every other tenant-owned entity (accounts, keys, sessions) to the hub's rows, so a
    join cannot reach another tenant's accounts. There is no ``add`` or ``delete``: what KPK
    writes about a shared case (a download, an export) is its own log entry, added through
    the hub's :class:`TenantScope` (:attr:`own`).
    """

    def __init__(self, session: Session, hub: Tenant) -> None:
        if not hub.is_hub or hub.kind != TenantKind.HUB or hub.id is None:
            raise TenantIsolationError(f"{hub!r} is not the hub tenant")
        self.session = session
        self.hub = hub
        self.tenant_id: int = hub.id
        self.own = TenantScope(session, hub)

    def _condition(self, model: type[Any]) -> sa.ColumnElement[bool]:
        hub_id = self.tenant_id
        if model is Case:
            return _is_shared(hub_id)
        shared_cases = sa.select(Case.id).where(_is_shared(hub_id))
        if model is Source:
            return sa.or_(
                Source.tenant_id == hub_id,
                Source.id.in_(sa.select(Case.source_id).where(_is_shared(hub_id))),
            )
        if model in (Submission, Reply, Event):
            return sa.or_(model.tenant_id == hub_id, model.case_id.in_(shared_cases))
        raise TenantIsolationError(f"KPK's copy does not hold {model!r}")

    def _criteria(self) -> list[ORMOption]:
        hub_id = self.tenant_id
        return [
            with_loader_criteria(model, lambda cls: cls.tenant_id == hub_id, include_aliases=True)
            for model in TENANT_OWNED_MODELS
            if model not in SHARED_READABLE
        ]

    def select(self, model: type[_T]) -> sa.Select[_T]:
        """``select(model)`` limited to KPK's copy; refine it with ``.where`` etc."""
        _require_tenant_owned(model)
        return sa.select(model).where(self._condition(model)).options(*self._criteria())

    def select_parts(self, model: type[Case]) -> tuple[sa.Select[Case], ...]:
        """``select(Case)`` as disjoint parts whose union is exactly :meth:`select`'s rows,
        each with the scope's options: for counts (add them up) and sorted pages (merge
        them), which each part can read from an index."""
        if model is not Case:
            raise TenantIsolationError(f"only cases are read in parts, not {model!r}")
        return tuple(
            sa.select(Case).where(part).options(*self._criteria())
            for part in _shared_parts(self.tenant_id)
        )

    def get(self, model: type[_T], ident: Any) -> _T | None:
        """The row with this primary key if KPK's copy holds it, else None."""
        _require_tenant_owned(model)
        condition = self._condition(model)
        primary_key = sa.inspect(model).primary_key
        if len(primary_key) != 1:
            raise TenantIsolationError(f"{model!r} has no single-column primary key")
        # Asked of the database with the rule, not checked on an object from the identity
        # map: one condition, the same as select()'s, decides.
        return self.session.scalar(
            sa.select(model).where(primary_key[0] == ident, condition).options(*self._criteria())
        )
