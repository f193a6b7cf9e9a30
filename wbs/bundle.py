"""Export bundles: one signed ZIP of ciphertext that investigators carry to the workstation.

A bundle holds one or more cases of one tenant (for KPK: its own, or cases shared with it,
whose tenant the manifest names beside KPK as the reader): every item's ciphertext exactly
as stored, the source's reply public key, and a manifest with the metadata (status,
deadlines, the event log) and the SHA-256 of every file, signed by the instance's signing
key (:mod:`crypto.signing`).
The format is described in ``docs/export-bundle.md``.

This module writes bundles on the server (:func:`write_bundle`). Reading and verifying them is
the workstation's business and lives in :mod:`crypto.bundle`, which needs the standard library
and ``crypto`` only; its names are re-exported here so server-side code and tests can keep
importing them from ``wbs.bundle``. Importing this module pulls in neither SQLAlchemy nor Flask
(the database models are imported when :func:`write_bundle` is called).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from crypto.bundle import (
    _CHUNK,
    _REG_RE,
    _ZIP_EPOCH,
    _ZIP_MODE,
    FORMAT,
    ITEM_KINDS,
    MANIFEST,
    SIGNATURE,
    SIGNING_KEY,
    BundleCase,
    BundleError,
    BundleItem,
    ReplyKeyFile,
    TimelineEntry,
    VerifiedBundle,
    read_bundle,
)
from wbs.domain import bundle_labels

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from wbs.instance import Instance
    from wbs.models import Case, Tenant

__all__ = [
    "FORMAT",
    "ITEM_KINDS",
    "MANIFEST",
    "SIGNATURE",
    "SIGNING_KEY",
    "BundleCase",
    "BundleError",
    "BundleItem",
    "BundleSummary",
    "ReplyKeyFile",
    "TimelineEntry",
    "VerifiedBundle",
    "read_bundle",
    "write_bundle",
]


@dataclass(frozen=True)
class BundleSummary:
    signing_fingerprint: str
    cases: int
    items: int
    item_bytes: int
    manifest_sha256: str


# --- writing (server side) -------------------------------------------------------------------


def _zip_entry(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = _ZIP_MODE
    info.file_size = size  # lets zipfile choose ZIP64 up front for items over 4 GiB
    return info


def _write_small(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    zf.writestr(_zip_entry(name, len(data)), data)


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def write_bundle(
    inst: Instance,
    session: Session,
    tenant: Tenant,
    cases: Sequence[Case],
    out: BinaryIO,
) -> BundleSummary:
    """Write a signed bundle of ``cases`` for ``tenant``, the tenant that reads it, to ``out``.

    The cases are ``tenant``'s own or, for KPK, cases shared with KPK (KPK's copy,
    :class:`wbs.tenancy.SharedScope`); all of one tenant, which the manifest names as
    ``tenant`` (the workstation files the cases under it), while ``reader`` names who the
    bundle was made for. The log is written as the reader may see it
    (:func:`wbs.items.case_timeline`): another tenant's notes never leave in KPK's bundle.

    Items are streamed from the store into the ZIP a megabyte at a time, hashed on the way, so
    memory stays flat whatever their size; ``out`` may be a file or a pipe. On an error the
    partial output has no signed manifest and must be discarded (no reader would accept it).
    Raises TenantIsolationError, before writing anything, for a case the reader may not read.
    """
    # Imported here, not at the top: the reading half of this module must import on the
    # workstation without the database layer (see the module docstring).
    from wbs.items import Reader, case_items, case_timeline, number_width
    from wbs.models import Case, Source, Tenant
    from wbs.tenancy import SharedScope, TenantIsolationError, TenantScope

    own = TenantScope(session, tenant)
    shared = SharedScope(session, tenant) if tenant.is_hub else None
    if not cases:
        raise BundleError("no_cases", "a bundle needs at least one case")
    checked: list[Case] = []
    for case in cases:
        if own.get(Case, case.id) is None and (
            shared is None or shared.get(Case, case.id) is None
        ):
            raise TenantIsolationError(f"{case!r} belongs to another tenant")
        if checked and case.tenant_id != checked[0].tenant_id:
            raise TenantIsolationError("a bundle holds the cases of one tenant")
        if not _REG_RE.match(case.registration_number):
            raise BundleError("bad_manifest", f"unusable registration number {case!r}")
        if case not in checked:
            checked.append(case)
    owner = session.get(Tenant, checked[0].tenant_id)
    if owner is None:
        raise TenantIsolationError("the cases' tenant does not exist")
    scope: Reader
    if owner.id == tenant.id:
        scope = own
    elif shared is not None:
        scope = shared
    else:  # unreachable: every case was checked above
        raise TenantIsolationError("the cases belong to another tenant")
    # Before anything is written: an instance without a signing key fails here, cleanly.
    fingerprint = inst.signing.fingerprint
    created_at = dt.datetime.now(dt.UTC).replace(microsecond=0)

    manifest_cases: list[dict[str, Any]] = []
    item_count = item_bytes = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for case in checked:
            reg = case.registration_number
            source = scope.get(Source, case.source_id)
            if source is None:
                raise BundleError("store_mismatch", f"case {reg} has no source")
            key_path = f"keys/{reg}-reply.asc"
            key_bytes = source.reply_public_key.encode("ascii")
            _write_small(zf, key_path, key_bytes)

            # Numbered by the one rule the case page and the API use too.
            numbered = case_items(session, scope, case)
            width = number_width(numbered)
            items = []
            for item in numbered:
                # Never the original filename: it lives inside the ciphertext only.
                path = f"items/{reg}/{item.number:0{width}d}-{item.kind}.gpg"
                digest = _copy_item(inst, zf, item.store_path, path, item.size)
                items.append(
                    {
                        "path": path,
                        "kind": item.kind,
                        "size": item.size,
                        "framing": item.framing,
                        "sha256": digest,
                        "created_at": _iso(item.created_at),
                    }
                )
                item_count += 1
                item_bytes += item.size

            events = case_timeline(session, scope, tenant.id, case)
            manifest_cases.append(
                {
                    "registration_number": reg,
                    "category": case.category,
                    "mcp_area": case.mcp_area,
                    "status": str(case.status),
                    "sent_to_kpk": case.sent_to_kpk,
                    "received_at": _iso(case.received_at),
                    "first_response_due": _iso(case.first_response_due),
                    "closure_due": _iso(case.closure_due),
                    "timeline": [
                        {
                            "kind": str(event.kind),
                            "from_status": None if event.from_status is None
                            else str(event.from_status),
                            "to_status": None if event.to_status is None
                            else str(event.to_status),
                            "created_at": _iso(event.created_at),
                            "note": event.note,
                        }
                        for event in events
                    ],
                    "reply_key": {
                        "path": key_path,
                        "fingerprint": source.reply_fingerprint,
                        "size": len(key_bytes),
                        "sha256": hashlib.sha256(key_bytes).hexdigest(),
                    },
                    "items": items,
                }
            )

        manifest = {
            "format": FORMAT,
            "created_at": _iso(created_at),
            "signing_key_fingerprint": fingerprint,
            # Whose cases these are (the workstation files them under it) and who the
            # bundle was made for: the same tenant, except for KPK's copy of a shared case.
            "tenant": {"slug": owner.slug, "name": owner.name},
            "reader": {"slug": tenant.slug, "name": tenant.name},
            "cases": manifest_cases,
            "labels": bundle_labels(),
        }
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
        # The signature covers these exact bytes; the reader verifies them before parsing.
        signature = inst.signing.sign_detached(manifest_bytes)
        _write_small(zf, MANIFEST, manifest_bytes)
        _write_small(zf, SIGNATURE, signature)
        _write_small(zf, SIGNING_KEY, inst.signing.public_key().encode("ascii"))
    return BundleSummary(
        signing_fingerprint=fingerprint,
        cases=len(checked),
        items=item_count,
        item_bytes=item_bytes,
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
    )


def _copy_item(
    inst: Instance, zf: zipfile.ZipFile, store_path: str, name: str, size: int
) -> str:
    """Stream one stored ciphertext into the ZIP; return its SHA-256."""
    digest = hashlib.sha256()
    copied = 0
    with inst.store.open(store_path) as src:
        # A file that is not the size the database recorded is damaged or being replaced:
        # exporting it would hand the workstation something nobody can vouch for.
        if inst.store.size(store_path) != size:
            raise BundleError("store_mismatch", f"{name}: the stored file is not its recorded size")
        with zf.open(_zip_entry(name, size), "w") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                copied += len(chunk)
    if copied != size:
        raise BundleError("store_mismatch", f"{name}: the stored file changed while exported")
    return digest.hexdigest()
