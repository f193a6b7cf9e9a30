"""Operator intake: a report that arrived by WhatsApp, SMS, telephone, letter, in person or
e-mail becomes a case like the drop box's, without its plaintext ever reaching the server.

The operator types the report on the air-gapped workstation, which encrypts it there to the
instansi's recipient keys and writes an **intake package** (``peluit-intake/1``, described in
``docs/intake-package.md``; ``workstation/intake.py`` writes it). An investigator uploads the
package; :func:`accept_package` checks it without decrypting anything, stores its ciphertext
as it is, and opens the case with a new source whose codename is shown once to the uploader,
who hands it back through the original channel. From then on the reporter follows the case
on the drop box like anyone who reported there.

What is checked, all before anything is kept: the ZIP's shape and the manifest (strictly);
that the package names this tenant; the channel, category and MCP area; that each item is an
OpenPGP message, integrity-protected (MDC or AEAD), encrypted to exactly the tenant's current
recipient keys (and KPK's when the report goes to KPK), nothing more and nothing less; that the
package was not uploaded before (its random id is kept on the case). On any refusal nothing is
stored: no file, no row, no source.

The package is not signed. Integrity of each item comes from its encryption (MDC/AEAD), and
the manifest only carries what the server would accept from a form anyway (a channel, a
category); who may open a case this way is decided by the authenticated, role-checked upload,
which the case log records with the account. A signature by the workstation's key would need
its passphrase for every intake and would prove nothing the log does not.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import sqlalchemy as sa

from crypto.codenames import generate_codename
from crypto.padding import FRAMING_PADME
from crypto.recipients import NotAnEncryptedMessage, ciphertext_key_ids, key_id
from wbs.casework import Refusal
from wbs.context import Context
from wbs.domain import (
    MCP_AREA_LABELS,
    OPERATOR_CHANNELS,
    CaseStatus,
    Channel,
    EventKind,
    KpkSharing,
    Role,
    SubmissionKind,
)
from wbs.intake import (
    IntakeClosed,
    committed_with_files,
    disk_was_full,
    ensure_space,
    new_case_row,
)
from wbs.models import Case, Event, RecipientKey, Submission
from wbs.packages import check_files, open_zip, read_manifest
from wbs.sharing import log_share
from wbs.sources import register_source
from wbs.tenancy import TenantScope
from wbs.tenants import TenantError, current_recipients, hub_tenant

FORMAT = "peluit-intake/1"
# The report form and at most twenty files, as on the drop box.
MAX_FILES = 20
_MAX_MANIFEST_BYTES = 64 * 1024
# Room for the manifest and the ZIP's own headers on top of the items' ciphertext.
PACKAGE_OVERHEAD_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_ITEM_RE = re.compile(r"^items/(?P<nn>[0-9]{2})-(?P<kind>form|file)\.gpg$")
_MANIFEST_KEYS = frozenset(
    {"format", "package_id", "tenant", "channel", "category", "mcp_area", "to_kpk", "items"}
)
_ITEM_KEYS = frozenset({"path", "kind", "size", "sha256"})


@dataclass(frozen=True)
class PackageItem:
    path: str
    kind: SubmissionKind
    size: int
    sha256: str


@dataclass(frozen=True)
class Package:
    """A package's manifest, parsed and checked against the tenant it is uploaded to."""

    package_id: str
    tenant: str
    channel: Channel
    category: str
    mcp_area: str | None
    to_kpk: bool
    items: tuple[PackageItem, ...]


@dataclass(frozen=True)
class OpenedCase:
    """The case an intake opened and the codename of its new source: shown once, to the
    uploading investigator, and kept nowhere."""

    case: Case
    codename: str


def max_package_bytes(ctx: Context) -> int:
    """The largest package accepted: the drop box's limit for one submission, plus room."""
    return ctx.inst.config.max_upload_bytes + PACKAGE_OVERHEAD_BYTES


def _refuse(reason: str) -> Refusal:
    # The reason names shapes, keys and fields, never content: the server cannot read any.
    return Refusal("intake_refused", reason, reason=reason)


def check_may_record(ctx: Context) -> None:
    """An investigator records reports for their own tenant (the context guarantees the
    tenant). A pemantau KPK's place is KPK's own tenant, the hub; nowhere else."""
    actor = ctx.actor
    if actor is None or (actor.role == Role.PEMANTAU_KPK and not ctx.tenant.is_hub):
        raise Refusal("forbidden", "Your role does not allow recording a report.")


# --- reading the package -------------------------------------------------------------------------


def _open_zip(stream: IO[bytes]) -> zipfile.ZipFile:
    return open_zip(stream, _refuse, "an intake package")


def _read_manifest(archive: zipfile.ZipFile) -> dict[str, Any]:
    return read_manifest(
        archive, _refuse, fmt=FORMAT, keys=_MANIFEST_KEYS, max_bytes=_MAX_MANIFEST_BYTES
    )


def _parse_items(raw: object) -> tuple[PackageItem, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_FILES + 1:
        raise _refuse(f"a package holds the report form and at most {MAX_FILES} files")
    items = []
    for number, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict) or set(entry) != _ITEM_KEYS:
            raise _refuse(f"item {number} of the manifest has the wrong fields")
        path, kind, size, sha256 = (entry[k] for k in ("path", "kind", "size", "sha256"))
        expected_kind = "form" if number == 1 else "file"
        found = _ITEM_RE.match(path) if isinstance(path, str) else None
        if (
            found is None
            or int(found["nn"]) != number
            or found["kind"] != expected_kind
            or kind != expected_kind
        ):
            raise _refuse(f"item {number} must be items/{number:02d}-{expected_kind}.gpg")
        if type(size) is not int or size <= 0:
            raise _refuse(f"item {number} has no valid size")
        if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
            raise _refuse(f"item {number} has no valid SHA-256")
        items.append(PackageItem(path, SubmissionKind(kind), size, sha256))
    return tuple(items)


def parse_package(ctx: Context, archive: zipfile.ZipFile) -> Package:
    """The manifest, checked strictly and against ``ctx``'s tenant and its policies."""
    data = _read_manifest(archive)
    tenant = ctx.tenant
    if not isinstance(data["tenant"], str) or data["tenant"] != tenant.slug:
        raise Refusal(
            "intake_other_tenant",
            "The package was made for another institution.",
            tenant=str(data["tenant"])[:80],
        )
    package_id = data["package_id"]
    if not isinstance(package_id, str) or not _ID_RE.match(package_id):
        raise _refuse("package_id must be 32 lowercase hexadecimal digits")
    channel = data["channel"]
    if channel not in {c.value for c in OPERATOR_CHANNELS}:
        raise _refuse(
            "channel must be one of " + ", ".join(c.value for c in OPERATOR_CHANNELS)
        )
    category, mcp_area = data["category"], data["mcp_area"]
    if not isinstance(category, str) or category not in tenant.categories:
        raise _refuse("the category is not one this institution uses")
    if mcp_area is not None and mcp_area not in MCP_AREA_LABELS:
        raise _refuse("unknown MCP area")
    to_kpk = data["to_kpk"]
    if not isinstance(to_kpk, bool):
        raise _refuse("to_kpk must be true or false")
    if to_kpk != _kpk_policy(ctx, to_kpk):
        raise _refuse(
            "to_kpk does not follow the institution's policy for sending reports to KPK"
        )
    items = _parse_items(data["items"])
    check_files(archive, ((item.path, item.size) for item in items), _refuse)
    return Package(
        package_id, tenant.slug, Channel(channel), category, mcp_area, to_kpk, items
    )


def _kpk_policy(ctx: Context, wanted: bool) -> bool:
    """Whether a report goes to KPK: the tenant decides, unless it lets the reporter choose."""
    tenant = ctx.tenant
    if tenant.is_hub or tenant.kpk_sharing == KpkSharing.NEVER:
        return False
    if tenant.kpk_sharing == KpkSharing.ALWAYS:
        return True
    return wanted


# --- checking the ciphertext ---------------------------------------------------------------------


def _expected_key_ids(ctx: Context, to_kpk: bool) -> Mapping[str, frozenset[str]]:
    """The current recipient keys the items must be encrypted to, each with the key ids of
    its encryption (sub)keys: what a ciphertext's packets name."""
    try:
        fingerprints = current_recipients(ctx.session, ctx.tenant, to_kpk=to_kpk)
    except TenantError as exc:
        raise Refusal("no_key", str(exc), what="report") from exc
    tenants = [ctx.tenant]
    hub = hub_tenant(ctx.session) if to_kpk else None
    if hub is not None:
        tenants.append(hub)
    armored: dict[str, str] = {}
    for tenant in tenants:
        scope = TenantScope(ctx.session, tenant)
        for key in ctx.session.scalars(scope.select(RecipientKey)):
            armored.setdefault(key.fingerprint, key.public_key)
    expected = {}
    for fingerprint in fingerprints:
        info = ctx.inst.keyring.inspect_public_key(armored[fingerprint])
        expected[fingerprint] = frozenset(key_id(fpr) for fpr in info.encryption_fingerprints)
    return expected


def check_recipients(
    key_ids: frozenset[str], expected: Mapping[str, frozenset[str]], label: str
) -> None:
    """Refuse unless ``key_ids`` are exactly the expected keys: each one readable by every
    current key (or the case would not stay readable on the workstation), and by no one else
    (or someone outside the instansi could read the report)."""
    missing = [fpr for fpr, ids in expected.items() if not ids & key_ids]
    allowed = frozenset().union(*expected.values())
    extra = sorted(key_ids - allowed)
    if missing:
        raise Refusal(
            "intake_wrong_keys",
            f"{label} is not encrypted to every current key: " + ", ".join(missing),
            label=label, keys=", ".join(missing),
        )
    if extra:
        raise Refusal(
            "intake_extra_keys",
            f"{label} is also encrypted to keys that are not the institution's: "
            + ", ".join(extra),
            label=label, keys=", ".join(extra),
        )


def store_item(
    ctx: Context, archive: zipfile.ZipFile, item: PackageItem, stored: list[str]
) -> None:
    """Copy one item's ciphertext into the store as it is, checking its size and hash."""
    store = ctx.inst.store
    # No folder per source (wbs.store): the row links the item to its source.
    path = store.new_name(ctx.tenant.slug)
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(item.path) as raw, store.create(path) as out:
            stored.append(path)
            while chunk := raw.read(_CHUNK):
                size += len(chunk)
                if size > item.size:
                    break
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        if disk_was_full(store, ctx.inst.config.disk_floor_bytes, exc):
            raise Refusal("intake_closed", "The store's disk is full.") from exc
        raise
    except zipfile.BadZipFile as exc:
        raise _refuse(f"{item.path} is damaged") from exc
    if size != item.size or digest.hexdigest() != item.sha256:
        raise _refuse(f"{item.path} is not the file the manifest describes")


# --- opening the case ----------------------------------------------------------------------------


def accept_package(ctx: Context, stream: IO[bytes], *, language: str = "id") -> OpenedCase:
    """Check an intake package and open its case with a new source. Commits.

    ``stream`` is the uploaded package, seekable. Returns the case and the new codename (in
    ``language``'s word list), which the caller shows once and forgets. Raises
    :class:`~wbs.casework.Refusal` with nothing stored.
    """
    check_may_record(ctx)
    with _open_zip(stream) as archive:
        package = parse_package(ctx, archive)
        previous = ctx.session.scalar(
            ctx.scope.select(Case).where(Case.intake_package == package.package_id)
        )
        if previous is not None:
            raise Refusal(
                "intake_replayed",
                f"This package was already uploaded: {previous.registration_number}.",
                number=previous.registration_number,
            )
        expected = _expected_key_ids(ctx, package.to_kpk)
        try:
            ensure_space(
                ctx.inst.store,
                ctx.inst.config.disk_floor_bytes,
                sum(item.size for item in package.items),
            )
        except IntakeClosed as exc:
            raise Refusal("intake_closed", str(exc)) from exc
        codename = generate_codename(language)
        stored: list[str] = []
        try:
            # The source's id is derived from the codename: the items are stored in its folder.
            secrets = register_source(ctx, codename, commit=False)
            for item in package.items:
                store_item(ctx, archive, item, stored)
                try:
                    found = ciphertext_key_ids(
                        ctx.inst.store.resolve(stored[-1]), ctx.inst.config.gpg_binary
                    )
                except NotAnEncryptedMessage as exc:
                    raise _refuse(f"{item.path} is not an encrypted report: {exc}") from exc
                check_recipients(found, expected, item.path)
            case = _open_case(ctx, package, secrets.source_id, stored)
        except BaseException:
            ctx.session.rollback()
            for path in stored:
                ctx.inst.store.discard(path)
            raise
    return OpenedCase(case, codename)


def _open_case(ctx: Context, package: Package, source_id: str, stored: list[str]) -> Case:
    case = new_case_row(
        ctx, source_id, package.category, package.mcp_area, to_kpk=package.to_kpk
    )
    case.channel = package.channel
    case.intake_package = package.package_id
    try:
        _commit_case(ctx, case, package, stored)
    except sa.exc.IntegrityError as exc:
        # The same package uploaded twice at once: the unique index lets one of them through.
        raise Refusal(
            "intake_replayed", "This package was already uploaded.", number=""
        ) from exc
    return case


def _commit_case(ctx: Context, case: Case, package: Package, stored: list[str]) -> None:
    with committed_with_files(ctx.session, ctx.inst.store, stored):
        ctx.scope.add(case)
        for item, path in zip(package.items, stored, strict=True):
            ctx.scope.add(
                # The workstation pads every item (workstation.intake.encrypt_item); the server
                # cannot look inside, so it records what the package format promises.
                Submission(case=case, kind=item.kind, store_path=path, size=item.size,
                           framing=FRAMING_PADME)
            )
        ctx.session.flush()
        ctx.scope.add(
            Event(case_id=case.id, kind=EventKind.CASE_CREATED, to_status=CaseStatus.BARU)
        )
        # Who recorded it and from which channel: a code, never content.
        ctx.scope.add(
            Event(
                case_id=case.id,
                kind=EventKind.OPERATOR_INTAKE,
                actor_investigator_id=ctx.actor_id,
                note=package.channel.value,
            )
        )
        if case.sent_to_kpk:
            log_share(ctx, case)


