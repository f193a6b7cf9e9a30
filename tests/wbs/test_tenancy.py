"""Tenant scoping: another tenant's rows are invisible, and cannot be written through a scope."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from wbs.domain import CaseStatus, EventKind, Role, SubmissionKind, TenantKind
from wbs.models import (
    Case,
    Event,
    Investigator,
    RecipientKey,
    Source,
    Submission,
    Tenant,
    new_registration_number,
)
from wbs.tenancy import HubScope, SharedScope, TenantIsolationError, TenantScope


def make_tenant(session: Session, slug: str, *, hub: bool = False) -> Tenant:
    tenant = Tenant(
        slug=slug,
        name=slug,
        kind=TenantKind.HUB if hub else TenantKind.PEMERINTAH_PROVINSI,
        is_hub=hub,
    )
    session.add(tenant)
    session.flush()
    return tenant


def new_source() -> Source:
    return Source(
        id=secrets.token_hex(32),
        reply_fingerprint="D" * 40,
        reply_public_key="public",
        reply_secret_key="locked",
    )


def new_case(session: Session, tenant: Tenant, source: Source) -> Case:
    return Case(
        source=source,
        registration_number=new_registration_number(session, tenant, 2025),
        category="pemerasan",
        first_response_due=dt.date(2025, 4, 1),
    )


@dataclass
class World:
    session: Session
    mine: Tenant
    theirs: Tenant
    my_case: Case
    their_case: Case

    @property
    def scope(self) -> TenantScope:
        return TenantScope(self.session, self.mine)


@pytest.fixture
def world(session: Session) -> World:
    mine, theirs = make_tenant(session, "mine"), make_tenant(session, "theirs")
    cases = {}
    for tenant in (mine, theirs):
        scope = TenantScope(session, tenant)
        case = new_case(session, tenant, new_source())
        scope.add(case)
        session.flush()
        scope.add(
            Submission(
                case=case,
                kind=SubmissionKind.FORM,
                store_path=f"{tenant.slug}/form.gpg",
                size=100,
            )
        )
        scope.add(Event(case_id=case.id, kind=EventKind.CASE_CREATED))
        cases[tenant.slug] = case
    session.commit()
    return World(session, mine, theirs, cases["mine"], cases["theirs"])


def test_select_sees_only_the_tenants_rows(world: World) -> None:
    for model in (Case, Source, Submission, Event):
        rows = world.session.scalars(world.scope.select(model)).all()
        assert rows and {row.tenant_id for row in rows} == {world.mine.id}


def test_select_refines_like_any_select(world: World) -> None:
    statement = world.scope.select(Case).where(Case.status == CaseStatus.BARU)
    assert world.session.scalars(statement).all() == [world.my_case]


def test_get_answers_none_for_another_tenants_id(world: World) -> None:
    assert world.scope.get(Case, world.my_case.id) is world.my_case
    assert world.scope.get(Case, world.their_case.id) is None
    assert world.scope.get(Source, world.their_case.source_id) is None
    assert world.scope.get(Case, 10**9) is None


def test_get_checks_rows_already_in_the_identity_map(world: World) -> None:
    # The session has just loaded the other tenant's case; the scope must not hand it out.
    assert world.session.get(Case, world.their_case.id) is world.their_case
    assert world.scope.get(Case, world.their_case.id) is None


def test_models_that_are_not_tenant_owned_are_refused(world: World) -> None:
    with pytest.raises(TenantIsolationError):
        world.scope.select(Tenant)  # type: ignore[type-var]
    with pytest.raises(TenantIsolationError):
        world.scope.get(Tenant, world.theirs.id)  # type: ignore[type-var]


def test_add_sets_the_tenant(world: World) -> None:
    key = RecipientKey(fingerprint="E" * 40, public_key="k")
    world.scope.add(key)
    world.session.flush()
    assert key.tenant_id == world.mine.id


def test_add_refuses_a_foreign_tenant_id(world: World) -> None:
    key = RecipientKey(tenant_id=world.theirs.id, fingerprint="E" * 40, public_key="k")
    with pytest.raises(TenantIsolationError):
        world.scope.add(key)
    assert key not in world.session


def test_add_refuses_a_row_linked_to_another_tenants_row(world: World) -> None:
    # Flushing would copy the other tenant's id from the case into the submission.
    smuggled = Submission(
        case=world.their_case, kind=SubmissionKind.FILE, store_path="x.gpg", size=1
    )
    with pytest.raises(TenantIsolationError):
        world.scope.add(smuggled)


def test_add_claims_new_related_rows(world: World) -> None:
    source = new_source()
    case = new_case(world.session, world.mine, source)
    world.scope.add(case)
    world.session.flush()
    assert source.tenant_id == case.tenant_id == world.mine.id


def test_delete_refuses_another_tenants_row(world: World) -> None:
    with pytest.raises(TenantIsolationError):
        world.scope.delete(world.their_case)
    world.scope.delete(world.my_case)
    world.session.commit()
    assert world.session.scalars(sa.select(Case)).all() == [world.their_case]


def test_restrict_scopes_aggregates(world: World) -> None:
    statement = world.scope.restrict(
        sa.select(Case.status, sa.func.count(Case.id)).group_by(Case.status), Case
    )
    assert world.session.execute(statement).all() == [(CaseStatus.BARU, 1)]


def test_restrict_needs_a_model(world: World) -> None:
    with pytest.raises(TenantIsolationError):
        world.scope.restrict(sa.select(Case.id))


def test_joined_tenant_owned_entities_are_scoped_too(world: World) -> None:
    # events.case_id has no foreign key, so a row of the other tenant can carry our case's id;
    # a join on it must still not surface that tenant's row.
    world.session.add(
        Event(tenant_id=world.theirs.id, case_id=world.my_case.id, kind=EventKind.EXPORTED)
    )
    world.session.commit()
    statement = world.scope.restrict(
        sa.select(Event.tenant_id).join(Case, Event.case_id == Case.id), Case
    )
    assert world.session.scalars(statement).all() == [world.mine.id]


def test_scope_needs_a_saved_tenant(session: Session) -> None:
    with pytest.raises(ValueError, match="saved"):
        TenantScope(session, Tenant(slug="unsaved", name="x", kind=TenantKind.LEMBAGA))


def test_hub_scope_only_for_the_hub(world: World) -> None:
    with pytest.raises(TenantIsolationError):
        HubScope(world.session, world.mine)


def test_hub_reads_case_metadata_across_tenants(world: World) -> None:
    kpk = make_tenant(world.session, "kpk", hub=True)
    hub = HubScope(world.session, kpk)
    cases = world.session.scalars(hub.select(Case)).all()
    assert set(cases) == {world.my_case, world.their_case}
    assert hub.get(Case, world.their_case.id) is world.their_case
    assert hub.own.tenant_id == kpk.id
    assert world.session.scalars(hub.own.select(Case)).all() == []


def test_hub_does_not_read_sources_or_accounts(world: World) -> None:
    kpk = make_tenant(world.session, "kpk", hub=True)
    hub = HubScope(world.session, kpk)
    for model in (Source, Investigator, RecipientKey):
        with pytest.raises(TenantIsolationError):
            hub.select(model)
    with pytest.raises(TenantIsolationError):
        hub.get(Source, world.my_case.source_id)
    assert not hasattr(hub, "add") and not hasattr(hub, "delete")


def test_investigator_rows_are_scoped(world: World) -> None:
    for tenant, name in ((world.mine, "ana"), (world.theirs, "budi")):
        TenantScope(world.session, tenant).add(
            Investigator(username=name, display_name=name, role=Role.VERIFIKATOR, password_hash="h")
        )
    world.session.flush()
    names = world.session.scalars(world.scope.select(Investigator)).all()
    assert [investigator.username for investigator in names] == ["ana"]


def test_kpks_copy_holds_shared_cases_and_nothing_else(world: World) -> None:
    kpk = make_tenant(world.session, "kpk", hub=True)
    world.their_case.sent_to_kpk = True
    world.session.flush()
    shared = SharedScope(world.session, kpk)
    assert world.session.scalars(shared.select(Case)).all() == [world.their_case]
    assert shared.get(Case, world.their_case.id) is world.their_case
    assert shared.get(Case, world.my_case.id) is None  # not shared: as if it did not exist
    for model in (Submission, Event):
        rows = world.session.scalars(shared.select(model)).all()
        assert rows and {row.case_id for row in rows} == {world.their_case.id}, model
    assert shared.get(Source, world.their_case.source_id) is world.their_case.source
    assert shared.get(Source, world.my_case.source_id) is None
    # The identity map holds the unshared case already; the scope must not hand it out.
    assert world.session.get(Case, world.my_case.id) is world.my_case
    assert shared.get(Case, world.my_case.id) is None


def test_kpks_copy_is_read_only_and_for_the_hub_only(world: World) -> None:
    with pytest.raises(TenantIsolationError):
        SharedScope(world.session, world.mine)
    kpk = make_tenant(world.session, "kpk", hub=True)
    shared = SharedScope(world.session, kpk)
    assert not hasattr(shared, "add") and not hasattr(shared, "delete")
    for model in (Investigator, RecipientKey):
        with pytest.raises(TenantIsolationError):
            shared.select(model)
    # KPK's own rows are in its copy too: its own log entries about a shared case.
    world.their_case.sent_to_kpk = True
    shared.own.add(Event(case_id=world.their_case.id, kind=EventKind.SENT_TO_KPK))
    world.session.flush()
    kinds = world.session.scalars(
        shared.select(Event).where(Event.case_id == world.their_case.id)
    ).all()
    assert {(event.tenant_id, event.kind) for event in kinds} == {
        (world.theirs.id, EventKind.CASE_CREATED), (kpk.id, EventKind.SENT_TO_KPK)
    }
