"""Demo tenants and keys for ``make run``.

The demo recipient key pairs are made in a separate GnuPG home, the *demo workstation*, which
stands for the investigators' air-gapped machine. Only the public halves reach the server's
keyring (through the same checks as any uploaded key); the secret halves never do.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.keyring import Keyring, kill_agent
from wbs.domain import KpkSharing, TenantKind
from wbs.models import Tenant
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


def _gpg(home: Path, gpg_binary: str, *args: str) -> str:
    result = subprocess.run(
        [gpg_binary, "--homedir", str(home), "--batch", "--no-tty", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def make_workstation_key(home: Path, uid: str, gpg_binary: str = "gpg") -> str:
    """Make an ed25519/cv25519 key pair in ``home``; return the armored PUBLIC key.

    No passphrase: this is a demo workstation, and its folder says so. A real investigator's key
    is made on the air-gapped workstation with a passphrase.
    """
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    _gpg(home, gpg_binary, "--passphrase", "", "--quick-generate-key", uid, "ed25519",
         "cert,sign", "never")
    listing = _gpg(home, gpg_binary, "--with-colons", "--list-secret-keys", uid)
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )
    _gpg(home, gpg_binary, "--passphrase", "", "--quick-add-key", fingerprint, "cv25519",
         "encr", "never")
    try:
        return _gpg(home, gpg_binary, "--armor", "--export", fingerprint)
    finally:
        kill_agent(home, gpg_binary)


def ensure_demo(session: Session, keyring: Keyring, workstation: Path) -> list[str]:
    """Create the demo tenants and their keys if missing; return lines to print."""
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
    session.commit()
    return lines
