"""Tenants (instansi) and their recipient keys.

A tenant's submissions are encrypted to every current (unrevoked) recipient key of the tenant,
and to KPK's keys as well when the report goes to KPK. The server's keyring holds the public
halves only; :meth:`crypto.keyring.Keyring.import_public_key` refuses anything else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.keyring import Keyring
from wbs.context import Context
from wbs.domain import DEFAULT_CATEGORY_CODES, EventKind, KpkSharing, TenantKind
from wbs.models import Event, RecipientKey, Tenant, utcnow
from wbs.tenancy import TenantScope

# The model enforces the same rule; checked here first for a message an operator can act on.
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class TenantError(ValueError):
    """A tenant operation that cannot be done; the message says why in plain words."""


class NoKpkKey(TenantError):
    """Something must be encrypted to KPK (a report sent to KPK, a new item of a case shared
    with it) and KPK has no current recipient key: refused, nothing is stored."""


def create_tenant(
    session: Session,
    *,
    slug: str,
    name: str,
    kind: TenantKind,
    province: str | None = None,
    first_response_days: int = 7,
    categories: Sequence[str] = DEFAULT_CATEGORY_CODES,
    kpk_sharing: KpkSharing = KpkSharing.OPTIONAL,
) -> Tenant:
    if not (_SLUG.match(slug) and 2 <= len(slug) <= 40):
        raise TenantError(
            f"slug {slug!r}: 2-40 characters, lower-case letters and digits, "
            "words joined by single hyphens"
        )
    if session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise TenantError(f"a tenant with slug {slug!r} exists already")
    is_hub = kind == TenantKind.HUB
    if is_hub and session.scalar(sa.select(Tenant.id).where(Tenant.is_hub)) is not None:
        raise TenantError("there is a hub tenant (KPK) already; there can be only one")
    if first_response_days < 1:
        raise TenantError("the first-response deadline must be at least one working day")
    tenant = Tenant(
        slug=slug,
        name=name,
        kind=kind,
        province=province,
        is_hub=is_hub,
        first_response_days=first_response_days,
        categories=list(categories),
        # The hub receives reports itself: "also send to KPK" means nothing there.
        kpk_sharing=KpkSharing.NEVER if is_hub else kpk_sharing,
    )
    session.add(tenant)
    session.flush()
    return tenant


def get_tenant(session: Session, slug: str) -> Tenant:
    tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise TenantError(f"no tenant with slug {slug!r}")
    return tenant


def hub_tenant(session: Session) -> Tenant | None:
    return session.scalar(sa.select(Tenant).where(Tenant.is_hub))


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(sa.select(Tenant).order_by(Tenant.is_hub.desc(), Tenant.slug)))


def add_recipient_key(
    session: Session,
    keyring: Keyring,
    tenant: Tenant,
    armored: str | bytes,
    *,
    owner: str | None = None,
    actor_id: int | None = None,
) -> RecipientKey:
    """Check and import a public key (armored, or binary as ``gpg --export`` writes it), and
    make it a recipient of the tenant's submissions.

    Raises :class:`crypto.errors.KeyRefused` (with its reason) for a key that must not be used.
    """
    info = keyring.import_public_key(armored)
    scope = TenantScope(session, tenant)
    existing = session.scalar(
        scope.select(RecipientKey).where(RecipientKey.fingerprint == info.fingerprint)
    )
    if existing is not None:
        if existing.revoked_at is None:
            raise TenantError(f"key {info.fingerprint} is already a recipient of {tenant.slug}")
        raise TenantError(
            f"key {info.fingerprint} was revoked for {tenant.slug}; a revoked key is not "
            "taken back: make a new key"
        )
    key = RecipientKey(
        fingerprint=info.fingerprint,
        public_key=keyring.export_public_key(info.fingerprint),
        owner=owner,
    )
    scope.add(key)
    scope.add(
        Event(kind=EventKind.KEY_ADDED, actor_investigator_id=actor_id, note=info.fingerprint)
    )
    session.flush()
    return key


def revoke_recipient_key(
    session: Session, tenant: Tenant, fingerprint: str, *, actor_id: int | None = None
) -> RecipientKey:
    """Stop encrypting new submissions to a key; what it could read stays readable to it."""
    scope = TenantScope(session, tenant)
    fingerprint = fingerprint.replace(" ", "").upper()
    key = session.scalar(
        scope.select(RecipientKey).where(RecipientKey.fingerprint == fingerprint)
    )
    if key is None:
        raise TenantError(f"{fingerprint} is not a recipient key of {tenant.slug}")
    if key.revoked_at is not None:
        raise TenantError(f"{fingerprint} is revoked already")
    key.revoked_at = utcnow()
    scope.add(Event(kind=EventKind.KEY_REVOKED, actor_investigator_id=actor_id, note=fingerprint))
    session.flush()
    return key


def recipient_keys(session: Session, tenant: Tenant) -> list[RecipientKey]:
    scope = TenantScope(session, tenant)
    return list(session.scalars(scope.select(RecipientKey).order_by(RecipientKey.created_at)))


def current_recipients(session: Session, tenant: Tenant, *, to_kpk: bool = False) -> list[str]:
    """Fingerprints a new submission of ``tenant`` is encrypted to.

    Fails closed: a tenant (or, with ``to_kpk``, a hub) without a current key raises, so nothing
    is ever stored that no one can read, or that was meant for KPK and is not readable there
    (:class:`NoKpkKey`).
    """
    fingerprints = _active(session, tenant)
    if not fingerprints:
        raise TenantError(f"{tenant.slug} has no current recipient key: intake is closed")
    if to_kpk and not tenant.is_hub:
        fingerprints += [fpr for fpr in kpk_recipients(session) if fpr not in fingerprints]
    return fingerprints


def kpk_recipients(session: Session) -> list[str]:
    """KPK's current recipient fingerprints; :class:`NoKpkKey` if it has none (or no hub)."""
    hub = hub_tenant(session)
    hub_keys = _active(session, hub) if hub is not None else []
    if not hub_keys:
        raise NoKpkKey("KPK has no current recipient key: cannot send the report to KPK")
    return hub_keys


def current_keys(session: Session, tenant: Tenant) -> list[RecipientKey]:
    """The tenant's unrevoked recipient keys, oldest first."""
    return [key for key in recipient_keys(session, tenant) if key.revoked_at is None]


def _active(session: Session, tenant: Tenant) -> list[str]:
    scope = TenantScope(session, tenant)
    keys = session.scalars(
        scope.select(RecipientKey)
        .where(RecipientKey.revoked_at.is_(None))
        .order_by(RecipientKey.created_at, RecipientKey.id)
    )
    return [key.fingerprint for key in keys]


# --- settings ---------------------------------------------------------------------------------

MIB = 1024 * 1024
MAX_FIRST_RESPONSE_DAYS = 60
MAX_NAME = 200


@dataclass(frozen=True)
class TenantSettings:
    name: str
    categories: tuple[str, ...]
    first_response_days: int
    kpk_sharing: KpkSharing
    max_upload_bytes: int | None

    @classmethod
    def of(cls, tenant: Tenant) -> TenantSettings:
        return cls(
            name=tenant.name,
            categories=tuple(tenant.categories),
            first_response_days=tenant.first_response_days,
            kpk_sharing=tenant.kpk_sharing,
            max_upload_bytes=tenant.max_upload_bytes,
        )


def _changes(old: TenantSettings, new: TenantSettings) -> list[str]:
    # Field names and short values: settings are not report content, and the log says what
    # an admin changed. The name itself is not repeated (it can be long).
    notes = []
    if old.name != new.name:
        notes.append("name")
    if old.categories != new.categories:
        notes.append("categories")
    if old.first_response_days != new.first_response_days:
        notes.append(f"first_response_days {old.first_response_days}→{new.first_response_days}")
    if old.kpk_sharing != new.kpk_sharing:
        notes.append(f"kpk_sharing {old.kpk_sharing.value}→{new.kpk_sharing.value}")
    if old.max_upload_bytes != new.max_upload_bytes:
        def mib(value: int | None) -> str:
            return "default" if value is None else f"{value // MIB}MiB"

        notes.append(f"max_upload {mib(old.max_upload_bytes)}→{mib(new.max_upload_bytes)}")
    return notes


def apply_settings(ctx: Context, new: TenantSettings) -> list[str]:
    """Store ``new`` and log one SETTINGS_CHANGED event; return what changed. Commits."""
    tenant = ctx.tenant
    changed = _changes(TenantSettings.of(tenant), new)
    if not changed:
        return []
    tenant.name = new.name
    tenant.categories = list(new.categories)
    tenant.first_response_days = new.first_response_days
    tenant.kpk_sharing = new.kpk_sharing
    tenant.max_upload_bytes = new.max_upload_bytes
    ctx.scope.add(
        Event(
            kind=EventKind.SETTINGS_CHANGED,
            actor_investigator_id=ctx.actor_id,
            note="; ".join(changed),
        )
    )
    ctx.session.commit()
    return changed
