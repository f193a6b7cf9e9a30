from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from crypto.errors import KeyRefused
from crypto.keyring import Keyring, kill_agent
from peluit.demo import make_workstation_key
from tests.support import short_tempdir
from wbs.domain import EventKind, KpkSharing, TenantKind
from wbs.models import Event, Tenant
from wbs.tenants import (
    TenantError,
    add_recipient_key,
    create_tenant,
    current_recipients,
    revoke_recipient_key,
)


@pytest.fixture(scope="module")
def public_keys() -> Iterator[list[str]]:
    """Three real ed25519/cv25519 public keys; their secret halves stay in a separate home."""
    home = short_tempdir("ws-")
    yield [make_workstation_key(home, f"Investigator {n}") for n in range(3)]
    kill_agent(home)



@pytest.fixture
def keyring(gnupg_home: Path) -> Iterator[Keyring]:
    with Keyring(gnupg_home) as ring:
        yield ring


def _tenant(
    session: Session, slug: str = "pemkot-palembang", kind: TenantKind = TenantKind.PEMERINTAH_KOTA
) -> Tenant:
    return create_tenant(session, slug=slug, name=slug.title(), kind=kind)


def test_tenant_slug_and_hub_rules(session: Session) -> None:
    hub = _tenant(session, "kpk", TenantKind.HUB)
    assert hub.is_hub and hub.kpk_sharing == KpkSharing.NEVER
    with pytest.raises(TenantError, match="only one"):
        _tenant(session, "kpk-2", TenantKind.HUB)
    with pytest.raises(TenantError, match="exists"):
        _tenant(session, "kpk")
    with pytest.raises(TenantError, match="slug"):
        _tenant(session, "Bad Slug")


def test_recipient_keys_flow(session: Session, keyring: Keyring, public_keys: list[str]) -> None:
    tenant = _tenant(session)
    with pytest.raises(TenantError, match="intake is closed"):
        current_recipients(session, tenant)

    first = add_recipient_key(session, keyring, tenant, public_keys[0], owner="Tim 1")
    second = add_recipient_key(session, keyring, tenant, public_keys[1])
    assert current_recipients(session, tenant) == [first.fingerprint, second.fingerprint]
    assert first.fingerprint in keyring
    assert "PUBLIC KEY" in first.public_key

    with pytest.raises(TenantError, match="already"):
        add_recipient_key(session, keyring, tenant, public_keys[0])

    revoke_recipient_key(session, tenant, first.fingerprint)
    assert current_recipients(session, tenant) == [second.fingerprint]
    with pytest.raises(TenantError, match="revoked"):
        add_recipient_key(session, keyring, tenant, public_keys[0])
    session.commit()
    kinds = [e.kind for e in session.query(Event).order_by(Event.id)]
    assert kinds == [EventKind.KEY_ADDED, EventKind.KEY_ADDED, EventKind.KEY_REVOKED]


def test_sending_to_kpk_needs_kpk_keys(
    session: Session, keyring: Keyring, public_keys: list[str]
) -> None:
    tenant = _tenant(session)
    own = add_recipient_key(session, keyring, tenant, public_keys[0])
    hub = _tenant(session, "kpk", TenantKind.HUB)
    with pytest.raises(TenantError, match="KPK has no current recipient key"):
        current_recipients(session, tenant, to_kpk=True)
    kpk = add_recipient_key(session, keyring, hub, public_keys[2])
    assert current_recipients(session, tenant, to_kpk=True) == [own.fingerprint, kpk.fingerprint]
    # One tenant's keys are never another's recipients.
    assert current_recipients(session, hub) == [kpk.fingerprint]


def test_a_refused_key_adds_nothing(session: Session, keyring: Keyring) -> None:
    tenant = _tenant(session)
    with pytest.raises(KeyRefused) as refused:
        add_recipient_key(session, keyring, tenant, "not a key at all")
    assert refused.value.reason == "not_a_key"
    assert keyring.fingerprints() == []
    with pytest.raises(TenantError):
        current_recipients(session, tenant)
