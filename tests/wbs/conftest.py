"""Fixtures for the domain tests: a migrated database session and a tenant, on each database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from wbs import db
from wbs.domain import TenantKind
from wbs.models import Tenant
from wbs.tenants import create_tenant


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    """A session on a database built by the migrations (SQLite and PostgreSQL)."""
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    with db.make_session_factory(engine)() as session:
        yield session
    engine.dispose()


@pytest.fixture
def tenant(session: Session) -> Tenant:
    made = create_tenant(
        session, slug="pemkot-medan", name="Pemkot Medan", kind=TenantKind.PEMERINTAH_KOTA
    )
    session.commit()
    return made
