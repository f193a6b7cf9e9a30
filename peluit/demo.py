"""Demo tenants and keys for ``make run``.

The demo recipient key pairs are made in a separate GnuPG home, the *demo workstation*, which
stands for the investigators' air-gapped machine. Only the public halves reach the server's
keyring (through the same checks as any uploaded key); the secret halves never do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.gpgrun import GpgHome
from crypto.keypairs import export_public_key, generate_key_pair
from crypto.keyring import Keyring
from wbs.accounts import AuthSettings, create_investigator, start_enrolment
from wbs.domain import KpkSharing, Role, TenantKind
from wbs.models import Investigator, Tenant
from wbs.tenants import add_recipient_key, create_tenant, recipient_keys


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    kind: TenantKind
    province: str | None = None


DEMO_TENANTS = (
    DemoTenant("kpk", "Komisi Pemberantasan Korupsi", TenantKind.HUB),
    DemoTenant(
        "pemprov-sumsel",
        "Pemerintah Provinsi Sumatera Selatan",
        TenantKind.PEMERINTAH_PROVINSI,
        "Sumatera Selatan",
    ),
)


@dataclass(frozen=True)
class DemoAccount:
    tenant_slug: str
    username: str
    display_name: str
    role: Role


# One account per role, to try the investigator interface (127.0.0.1:8081) after ``make run``.
DEMO_ACCOUNTS = (
    DemoAccount("pemprov-sumsel", "admin.sumsel", "Admin Demo Sumsel", Role.ADMIN_INSTANSI),
    DemoAccount("pemprov-sumsel", "verifikator.sumsel", "Verifikator Demo Sumsel",
                Role.VERIFIKATOR),
    DemoAccount("kpk", "pemantau.kpk", "Pemantau Demo KPK", Role.PEMANTAU_KPK),
)


def make_workstation_key(home: Path, uid: str, gpg_binary: str = "gpg") -> str:
    """Make an ed25519/cv25519 key pair in ``home``; return the armored PUBLIC key.

    No passphrase: this is a demo workstation, and its folder says so. A real investigator's key
    is made on the air-gapped workstation with a passphrase.
    """
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    gpg = GpgHome(home, gpg_binary)
    try:
        return export_public_key(gpg, generate_key_pair(gpg, uid))
    finally:
        gpg.kill_agent()


def ensure_demo(
    session: Session,
    keyring: Keyring,
    workstation: Path,
    *,
    settings: AuthSettings,
) -> list[str]:
    """Create the demo tenants, their keys and demo accounts if missing; return lines to print.

    A new demo account's passphrase and TOTP secret are printed once (add the secret to an
    authenticator app; the first login confirms it); an existing account is left as it is.
    """
    lines = []
    for demo in DEMO_TENANTS:
        tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == demo.slug))
        if tenant is None:
            tenant = create_tenant(
                session,
                slug=demo.slug,
                name=demo.name,
                kind=demo.kind,
                province=demo.province,
                kpk_sharing=KpkSharing.OPTIONAL,
            )
            lines.append(f"created demo tenant {demo.slug} ({demo.name})")
        if not recipient_keys(session, tenant):
            home = workstation / "gnupg"
            armored = make_workstation_key(
                home, f"Demo {demo.name} <{demo.slug}@demo.peluit.invalid>", keyring.gpg_binary
            )
            key = add_recipient_key(session, keyring, tenant, armored, owner="Demo workstation")
            lines.append(
                f"demo key {key.fingerprint} for {demo.slug}: secret half only in {home}"
            )
    session.flush()
    lines += _ensure_demo_accounts(session, settings)
    session.commit()
    return lines


def _ensure_demo_accounts(session: Session, settings: AuthSettings) -> list[str]:
    lines = []
    for demo in DEMO_ACCOUNTS:
        if session.scalar(sa.select(Investigator.id).where(Investigator.username == demo.username)):
            continue
        tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == demo.tenant_slug))
        if tenant is None:
            continue
        account, passphrase = create_investigator(
            session, tenant, demo.username, demo.display_name, demo.role, settings=settings
        )
        enrolment = start_enrolment(session, account, settings=settings)
        lines.append(
            f"demo account {demo.username} ({demo.role.value}, {demo.tenant_slug}): "
            f"passphrase '{passphrase}', TOTP secret {enrolment.secret}"
        )
    return lines
