"""Pelimpahan: a case handed to another institution of the deployment, without the server
ever decrypting it; and forwarding to bodies outside the system, recorded only.

The design follows the operator intake (:mod:`wbs.operator_intake`,
``docs/intake-package.md``); ``docs/forwarding.md`` describes the formats:

1. The server exports a **signed key list** of the receiving tenant (``peluit-keylist/1``,
   :func:`signed_key_list`): its current recipient public keys and KPK's, signed by the
   instance's signing key, which the workstation already pins from export bundles.
2. The forwarding institution's workstation decrypts every item of the case (form, files,
   follow-ups, replies) and re-encrypts it to exactly the receiving tenant's keys (plus
   KPK's when the case is shared with KPK; replies also to the pelapor's reply key, so the
   pelapor keeps reading the whole thread), padded like every stored item, into a
   **forwarding package** (``peluit-forward/1``, ``workstation/forward.py``).
3. An investigator of the origin tenant uploads it; :func:`accept_forward` checks it without
   decrypting, then in one transaction opens the **linked case** in the receiving tenant (its
   own registration number, deadlines counted in working days from today), marks the origin
   case *diteruskan* with a ``forwarded`` entry naming the destination, and logs the
   forwarding on both sides. Any refusal or failure stores nothing and changes nothing.

**The package is signed by the institution that sends it.** ``manifest.json.sig`` is a
detached OpenPGP signature over the exact bytes of ``manifest.json``, which lists every item
with its size and SHA-256, so it covers the whole package. It is made on the workstation with
one of the forwarding tenant's own recipient keys (their ed25519 primary keys sign; the
secret halves never leave the workstation), and :func:`verify_signature` checks it without any
private key, in a throwaway GnuPG home holding only the PUBLIC halves of the origin tenant's
CURRENT recipient keys (:func:`crypto.signing.verify_detached_by_any`): a package that is
unsigned (``forward_unsigned``; a ``peluit-forward/1`` package from an older workstation is
one), signed over other bytes, or signed by any other key (another tenant's, a revoked one:
``forward_bad_signature``) is refused before its manifest is even parsed. The signer's
fingerprint is recorded on the receiving case's ``forward_received`` entry. The authenticated,
role-checked upload still decides who may forward; the signature makes the package itself
vouch for its content and sender, which is what counts once packages travel between
installations (where no upload by the sender's own account vouches for them). Confidentiality
is checked too (exactly the receiving keys), integrity comes from each item's MDC/AEAD and the
manifest's hashes. The package is bound to the origin case (tenant and registration number,
which the server checks against the case the upload names) and carries a random id, kept on
the linked case, so it cannot be replayed.

**The pelapor keeps one codename.** A source row belongs to one tenant (composite foreign
keys), so the receiving tenant gets a *linked source*: a row of its own whose id is derived
from the origin source's id and the receiving tenant (:func:`linked_source_id`), holding the
pelapor's reply PUBLIC key only (the locked secret half stays with the origin row, the only
one the pelapor's session unlocks). The receiving tenant thus encrypts replies to the pelapor
like for its own cases; the pelapor, logged in at the origin's site, is shown who handles the
report now, reads the handler's replies and sends follow-ups that are encrypted to the
handler's keys (:func:`handling_case`, used by :mod:`source_iface`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import sqlalchemy as sa

from crypto.padding import FRAMING_PADME
from crypto.recipients import NotAnEncryptedMessage, ciphertext_key_ids, key_id
from crypto.signing import MAX_SIGNATURE_BYTES, SignatureError, verify_detached_by_any
from wbs.casework import Refusal
from wbs.context import Context
from wbs.coordination import claim_case, settle_request
from wbs.deadlines import record_first_response
from wbs.domain import (
    CaseStatus,
    EventKind,
    KpkSharing,
    Role,
    SubmissionKind,
    can_transition,
)
from wbs.intake import IntakeClosed, committed_with_files, ensure_space, new_case_row
from wbs.matters import carry_forward
from wbs.models import (
    Case,
    Event,
    FederationPeer,
    RecipientKey,
    Reply,
    Source,
    Submission,
    Tenant,
)
from wbs.operator_intake import PackageItem, check_recipients, store_item
from wbs.packages import check_files, manifest_bytes, open_zip, parse_manifest, read_entry
from wbs.sharing import log_share
from wbs.tenancy import TenantScope
from wbs.tenants import current_keys, hub_tenant

FORMAT = "peluit-forward/2"
# The unsigned format of earlier workstations: refused as unsigned, with a word on why.
UNSIGNED_FORMAT = "peluit-forward/1"
# The detached signature over manifest.json's exact bytes.
SIGNATURE = "manifest.json.sig"
KEYLIST_FORMAT = "peluit-keylist/1"
ITEM_KINDS = ("form", "message", "file", "reply")
# A case holds at most this many items to forward (the drop box's limits allow far fewer).
MAX_ITEMS = 2000
_MAX_MANIFEST_BYTES = 1024 * 1024
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_ITEM_RE = re.compile(r"^items/(?P<nn>[0-9]{4})-(?P<kind>form|message|file|reply)\.gpg$")
_MANIFEST_KEYS = frozenset(
    {"format", "package_id", "origin_tenant", "origin_registration_number", "to_tenant",
     "to_kpk", "items"}
)
_ITEM_KEYS = frozenset({"path", "kind", "size", "sha256"})
# How many links a pelapor's page follows (A to KPK to B ...): a loop would be a bug.
MAX_LINKS = 10
# Forwarding outside the system: recorded with the destination and the letter number only.
EXTERNAL_BODIES: Mapping[str, str] = {
    "kejaksaan": "Kejaksaan",
    "polri": "Polri",
    "bpk": "BPK",
}
MAX_LETTER_NUMBER = 100


# --- the signed key list -------------------------------------------------------------------------


def _key_json(key: RecipientKey) -> dict[str, Any]:
    return {"fingerprint": key.fingerprint, "owner": key.owner, "public_key": key.public_key}


def key_list_document(ctx: Context, tenant: Tenant) -> dict[str, Any]:
    """What the key list says: the tenant's current keys and KPK's, and the tenant's policy
    for KPK (which decides, with the case, whether a forwarded case goes to KPK too)."""
    hub = hub_tenant(ctx.session)
    kpk = [] if hub is None or tenant.is_hub else current_keys(ctx.session, hub)
    return {
        "format": KEYLIST_FORMAT,
        "tenant": tenant.slug,
        "tenant_name": tenant.name,
        "is_hub": tenant.is_hub,
        "kpk_sharing": tenant.kpk_sharing.value,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "keys": [_key_json(key) for key in current_keys(ctx.session, tenant)],
        "kpk_keys": [_key_json(key) for key in kpk],
    }


def signed_key_list(ctx: Context, slug: str) -> bytes:
    """The receiving tenant's key list, signed by the instance's signing key: one JSON file
    holding the document (as the exact signed text), its detached signature and the public
    signing key (which the workstation checks against the key it pinned)."""
    tenant = forward_destination(ctx, slug)
    if not current_keys(ctx.session, tenant):
        raise Refusal("no_key", f"{tenant.slug} has no current recipient key.", what="forward")
    document = json.dumps(key_list_document(ctx, tenant), ensure_ascii=False, indent=2)
    signing = ctx.inst.signing
    envelope = {
        "format": KEYLIST_FORMAT,
        "document": document,
        "signature": signing.sign_detached(document.encode("utf-8")).decode("ascii"),
        "signing_key": signing.public_key(),
    }
    return json.dumps(envelope, indent=2).encode("utf-8")


# --- who may forward what ------------------------------------------------------------------------


def _reachable(ctx: Context) -> sa.ColumnElement[bool]:
    """The tenants a case of the context's tenant may be forwarded to: this installation's
    own; on a member, KPK (its mirror here: the package travels to the hub over the
    federation link, :mod:`wbs.federation.handling`); and for KPK on a hub, a member's
    instansi (the package travels to the member). Only over a link that is active."""
    if ctx.tenant.federation_peer_id is not None:
        return sa.false()  # a mirror's cases are handled on its own installation
    # KPK's mirror, when the hub is KPK's own installation (a regional hub cannot pass a
    # case on to KPK).
    kpk = _active("hub", FederationPeer.kpk_direct.is_(True))
    reach = Tenant.federation_peer_id.is_(None) | (
        Tenant.is_hub & Tenant.federation_peer_id.in_(kpk)
    )
    if ctx.tenant.is_hub:
        # A member's instansi; not one behind a regional hub (not relayed).
        reach = reach | (
            Tenant.federation_peer_id.in_(_active("member"))
            & Tenant.federation_relayed.is_(False)
        )
    return reach


def _active(role: str, *more: sa.ColumnElement[bool]) -> sa.Select[int]:
    return sa.select(FederationPeer.id).where(
        FederationPeer.role == role, FederationPeer.status == "active", *more
    )


def forward_destinations(ctx: Context) -> list[Tenant]:
    """Every tenant the context's tenant may forward a case to, by name."""
    return [
        tenant
        for tenant in ctx.session.scalars(
            sa.select(Tenant).where(_reachable(ctx)).order_by(Tenant.name)
        )
        if tenant.id != ctx.tenant.id
    ]


def forward_destination(ctx: Context, slug: object) -> Tenant:
    """The tenant a case may be forwarded to: see :func:`forward_destinations`."""
    tenant = (
        ctx.session.scalar(sa.select(Tenant).where(Tenant.slug == slug, _reachable(ctx)))
        if isinstance(slug, str)
        else None
    )
    if tenant is None:
        # A mirror's cases live on its own installation: only KPK's hub reaches it, over the
        # federation link; never into the mirror from a member.
        raise Refusal(
            "forward_no_tenant",
            "There is no institution with this name in the system.",
            tenant=str(slug)[:80],
        )
    return tenant


def check_may_forward(ctx: Context, case: Case) -> None:
    """An investigator forwards a case their own tenant handles (a pemantau KPK only KPK's);
    a case already forwarded is handled elsewhere, a closed case by no one."""
    _check_role(ctx, case)
    _check_handler(case)


def _check_role(ctx: Context, case: Case) -> None:
    actor = ctx.actor
    if actor is None or (actor.role == Role.PEMANTAU_KPK and not ctx.tenant.is_hub):
        raise Refusal("forbidden", "Your role does not allow forwarding a case.")
    if case.tenant_id != ctx.tenant.id:
        raise Refusal("not_found", "No such case.")


def _check_handler(case: Case) -> None:
    if case.linked_to_case_id is not None:
        raise Refusal(
            "forward_not_handler",
            f"{case.registration_number} was forwarded already: it is handled elsewhere.",
        )
    if not can_transition(case.status, CaseStatus.DITERUSKAN):
        raise Refusal(
            "transition_refused",
            f"A case cannot go from {case.status.value} to {CaseStatus.DITERUSKAN.value}.",
            current=case.status,
            new=CaseStatus.DITERUSKAN,
        )


def forwarded_to_kpk(origin: Case, destination: Tenant) -> bool:
    """Whether the linked case is shared with KPK: when the origin was (the pelapor's choice,
    or the origin's policy, stands), or the receiving tenant always sends to KPK. Never when
    the receiver is KPK itself."""
    if destination.is_hub:
        return False
    return origin.sent_to_kpk or destination.kpk_sharing == KpkSharing.ALWAYS


# What the investigator interface lets a form upload carry before it knows the case (the form
# is parsed, for its CSRF token, before the view runs); the view then holds the package to
# max_forward_bytes of its case. The API reads the body after authentication, with the case's.
MAX_FORM_PACKAGE_BYTES = 8 * 1024 * 1024 * 1024


def max_forward_bytes(case: Case) -> int:
    """The largest package accepted for ``case``: its stored items (re-encrypted to other keys
    they differ by a few hundred bytes each) with room for the manifest and the ZIP."""
    stored = sum(s.size for s in case.submissions) + sum(r.size for r in case.replies)
    count = len(case.submissions) + len(case.replies)
    return stored + stored // 8 + count * 16 * 1024 + 2 * 1024 * 1024


# --- reading the package -------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardItem:
    path: str
    kind: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ForwardPackage:
    package_id: str
    destination: Tenant
    to_kpk: bool
    items: tuple[ForwardItem, ...]
    signer: str  # the primary fingerprint of the origin tenant's key that signed it


def _refuse(reason: str) -> Refusal:
    return Refusal("forward_refused", reason, reason=reason)


def _unsigned(manifest: bytes) -> Refusal:
    old = f'"{UNSIGNED_FORMAT}"'.encode() in manifest
    return Refusal(
        "forward_unsigned",
        "The forwarding package is not signed"
        + (f" (it is {UNSIGNED_FORMAT}, made by an older workstation)" if old else "")
        + ": make it again with peluit-workstation forward, which signs it.",
        old=old,
    )


def verify_signature(ctx: Context, archive: zipfile.ZipFile) -> tuple[bytes, str]:
    """The manifest's exact bytes and the fingerprint of the key that signed them: one of the
    origin tenant's (the context's) CURRENT recipient keys, checked with their public halves
    only. Refused (``forward_unsigned``, ``forward_bad_signature``) otherwise."""
    manifest = manifest_bytes(archive, _refuse, _MAX_MANIFEST_BYTES)
    signature = read_entry(archive, SIGNATURE, _refuse, MAX_SIGNATURE_BYTES)
    if not signature:
        raise _unsigned(manifest)
    keys = current_keys(ctx.session, ctx.tenant)
    if not keys:
        raise Refusal(
            "forward_bad_signature",
            f"{ctx.tenant.slug} has no current recipient key to check the signature with.",
            reason="no current key",
        )
    try:
        signer = verify_detached_by_any(
            manifest, signature, [key.public_key for key in keys], ctx.inst.config.gpg_binary
        )
    except SignatureError as exc:
        raise Refusal(
            "forward_bad_signature",
            "The forwarding package's signature is not a good signature of manifest.json by "
            f"a current key of {ctx.tenant.slug}: {exc}",
            reason=str(exc)[:200],
        ) from exc
    return manifest, signer


def _parse_items(raw: object) -> tuple[ForwardItem, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ITEMS:
        raise _refuse("the package holds no items, or too many")
    items = []
    for number, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict) or set(entry) != _ITEM_KEYS:
            raise _refuse(f"item {number} of the manifest has the wrong fields")
        path, kind, size, sha256 = (entry[k] for k in ("path", "kind", "size", "sha256"))
        found = _ITEM_RE.match(path) if isinstance(path, str) else None
        if found is None or int(found["nn"]) != number or found["kind"] != kind:
            raise _refuse(f"item {number} must be items/{number:04d}-<kind>.gpg")
        if type(size) is not int or size <= 0:
            raise _refuse(f"item {number} has no valid size")
        if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
            raise _refuse(f"item {number} has no valid SHA-256")
        items.append(ForwardItem(path, kind, size, sha256))
    return tuple(items)


def _kind_counts(kinds: list[str]) -> dict[str, int]:
    return {kind: kinds.count(kind) for kind in ITEM_KINDS}


def parse_forward(ctx: Context, case: Case, archive: zipfile.ZipFile) -> ForwardPackage:
    """The manifest, its signature first, checked strictly, against the case it is uploaded
    for and its items."""
    manifest, signer = verify_signature(ctx, archive)
    data = parse_manifest(manifest, _refuse, fmt=FORMAT, keys=_MANIFEST_KEYS)
    if (
        data["origin_tenant"] != ctx.tenant.slug
        or data["origin_registration_number"] != case.registration_number
    ):
        raise Refusal(
            "forward_other_case",
            "The package was made for another case: "
            f"{str(data['origin_registration_number'])[:80]}.",
            number=str(data["origin_registration_number"])[:80],
        )
    destination = forward_destination(ctx, data["to_tenant"])
    if destination.id == ctx.tenant.id:
        raise _refuse("a case is forwarded to another institution, not to its own")
    if destination.is_hub and destination.federation_peer_id is not None and case.sent_to_kpk:
        # KPK on another installation holds this case already (shared): it takes it over
        # there, or asks for it; a package as well could open it twice.
        raise Refusal(
            "forward_shared",
            f"{case.registration_number} is shared with KPK already: KPK takes it over "
            "(pengambilalihan) or asks for it to be forwarded.",
        )
    package_id = data["package_id"]
    if not isinstance(package_id, str) or not _ID_RE.match(package_id):
        raise _refuse("package_id must be 32 lowercase hexadecimal digits")
    to_kpk = data["to_kpk"]
    if to_kpk is not forwarded_to_kpk(case, destination):
        raise _refuse(
            "to_kpk must be "
            + ("true: the case is shared with KPK" if not to_kpk else "false for this case")
        )
    items = _parse_items(data["items"])
    expected = _kind_counts(
        [s.kind.value for s in case.submissions] + ["reply"] * len(case.replies)
    )
    if _kind_counts([item.kind for item in items]) != expected:
        raise _refuse(
            "the package does not hold every item of the case ("
            + ", ".join(f"{count} {kind}" for kind, count in expected.items() if count)
            + ")"
        )
    check_files(
        archive, ((item.path, item.size) for item in items), _refuse, frozenset({SIGNATURE})
    )
    return ForwardPackage(package_id, destination, to_kpk, items, signer)


# --- checking the ciphertext ---------------------------------------------------------------------


def _key_ids(ctx: Context, armored: str) -> frozenset[str]:
    info = ctx.inst.keyring.inspect_public_key(armored)
    return frozenset(key_id(fpr) for fpr in info.encryption_fingerprints)


def _expected(
    ctx: Context, destination: Tenant, to_kpk: bool
) -> dict[str, frozenset[str]]:
    """The receiving tenant's current keys (and KPK's), each with its encryption key ids."""
    keys = current_keys(ctx.session, destination)
    if not keys:
        raise Refusal(
            "no_key", f"{destination.slug} has no current recipient key.", what="forward"
        )
    if to_kpk:
        hub = hub_tenant(ctx.session)
        kpk = current_keys(ctx.session, hub) if hub is not None else []
        if not kpk:
            raise Refusal("no_kpk_key", "KPK has no current recipient key.")
        keys += [key for key in kpk if key.fingerprint not in {k.fingerprint for k in keys}]
    return {key.fingerprint: _key_ids(ctx, key.public_key) for key in keys}


def _check_item(
    ctx: Context,
    path: str,
    item: ForwardItem,
    expected: Mapping[str, frozenset[str]],
    reply_key: Mapping[str, frozenset[str]],
) -> None:
    try:
        found = ciphertext_key_ids(ctx.inst.store.resolve(path), ctx.inst.config.gpg_binary)
    except NotAnEncryptedMessage as exc:
        raise _refuse(f"{item.path} is not an encrypted item: {exc}") from exc
    wanted = {**expected, **reply_key} if item.kind == "reply" else expected
    try:
        check_recipients(found, wanted, item.path)
    except Refusal as refusal:
        code = "forward_wrong_keys" if refusal.code == "intake_wrong_keys" else (
            "forward_extra_keys"
        )
        raise Refusal(code, str(refusal), **refusal.params) from refusal


# --- the linked source ---------------------------------------------------------------------------


def linked_source_id(source_id: str, destination: Tenant) -> str:
    """The id of the pelapor's linked source in ``destination``: derived from the origin
    source's id (itself derived from the codename, never the codename) and the tenant."""
    message = f"peluit/linked-source\0{source_id}\0{destination.slug}".encode()
    return hashlib.sha256(message).hexdigest()


def linked_source(ctx: Context, origin: Source, destination: Tenant) -> Source:
    scope = TenantScope(ctx.session, destination)
    linked_id = linked_source_id(origin.id, destination)
    found = scope.get(Source, linked_id)
    if found is not None:
        return found
    linked = Source(
        id=linked_id,
        reply_fingerprint=origin.reply_fingerprint,
        reply_public_key=origin.reply_public_key,
        # Never the locked secret half: only the origin row's is unlocked by the pelapor.
        reply_secret_key="",
    )
    scope.add(linked)
    return linked


# --- accepting a package -------------------------------------------------------------------------


def accept_forward(ctx: Context, case: Case, stream: IO[bytes]) -> Case:
    """Check a forwarding package for ``case`` (the context's own) and forward the case.
    Commits; returns the linked case. Raises :class:`Refusal` with nothing stored."""
    _check_role(ctx, case)
    with _open_package(stream) as archive:
        package = parse_forward(ctx, case, archive)
        destination = package.destination
        dest_scope = TenantScope(ctx.session, destination)
        previous = ctx.session.scalar(
            dest_scope.select(Case).where(Case.intake_package == package.package_id)
        )
        if previous is not None:
            raise Refusal(
                "forward_replayed",
                "This package was already uploaded.",
                number=case.registration_number,
            )
        _check_handler(case)
        expected = _expected(ctx, destination, package.to_kpk)
        origin_source = ctx.scope.get(Source, case.source_id)
        if origin_source is None:
            raise Refusal("no_source", "The case has no reporter.")
        reply_key = {
            origin_source.reply_fingerprint: _key_ids(ctx, origin_source.reply_public_key)
        }
        try:
            ensure_space(
                ctx.inst.store,
                ctx.inst.config.disk_floor_bytes,
                sum(item.size for item in package.items),
            )
        except IntakeClosed as exc:
            raise Refusal("intake_closed", str(exc)) from exc
        dest_ctx = Context(ctx.inst, ctx.session, destination)
        stored: list[str] = []
        try:
            for item in package.items:
                try:
                    store_item(dest_ctx, archive, _as_intake_item(item), stored)
                except Refusal as refusal:
                    if refusal.code != "intake_refused":
                        raise
                    raise _refuse(str(refusal)) from refusal
                _check_item(ctx, stored[-1], item, expected, reply_key)
            linked = _forward(ctx, dest_ctx, case, origin_source, package, stored)
        except BaseException:
            ctx.session.rollback()
            for path in stored:
                ctx.inst.store.discard(path)
            raise
    return linked


def _open_package(stream: IO[bytes]) -> zipfile.ZipFile:
    return open_zip(stream, _refuse, "a forwarding package")


def _as_intake_item(item: ForwardItem) -> PackageItem:
    # The intake's copy (size and hash checked on the way) needs the path, size and hash.
    return PackageItem(item.path, SubmissionKind.FILE, item.size, item.sha256)


def _forward(
    ctx: Context,
    dest_ctx: Context,
    origin: Case,
    origin_source: Source,
    package: ForwardPackage,
    stored: list[str],
) -> Case:
    destination = package.destination
    now = dt.datetime.now(dt.UTC)
    try:
        with committed_with_files(ctx.session, ctx.inst.store, stored):
            source = linked_source(dest_ctx, origin_source, destination)
            linked = new_case_row(
                dest_ctx, source.id, origin.category, origin.mcp_area, to_kpk=package.to_kpk
            )
            linked.channel = origin.channel
            linked.intake_package = package.package_id
            linked.linked_from_case_id = origin.id
            dest_ctx.scope.add(linked)
            for item, path in zip(package.items, stored, strict=True):
                if item.kind == "reply":
                    dest_ctx.scope.add(
                        Reply(case=linked, store_path=path, size=item.size,
                              framing=FRAMING_PADME, read_by_source=True)
                    )
                else:
                    dest_ctx.scope.add(
                        Submission(case=linked, kind=SubmissionKind(item.kind), store_path=path,
                                   size=item.size, framing=FRAMING_PADME, seen=False)
                    )
            ctx.session.flush()
            # Two uploads for one case at once (to B and to C), or an upload racing KPK's
            # takeover: the conditional claim decides (wbs.coordination.claim_case); the other
            # finds the case handled elsewhere, and its rows and files go.
            if not claim_case(ctx.session, ctx.scope, origin.id, linked.id):
                raise Refusal(
                    "forward_not_handler",
                    f"{origin.registration_number} was forwarded already: it is handled "
                    "elsewhere.",
                )
            # The origin as committed: a status changed meanwhile (closed: refused; the
            # entry's from_status), a request of KPK that arrived meanwhile (answered too).
            ctx.session.refresh(origin, ["status", "forward_requested_at"])
            _check_handler(origin)
            dest_ctx.scope.add(
                Event(case_id=linked.id, kind=EventKind.CASE_CREATED, to_status=CaseStatus.BARU)
            )
            # The receiving side: where it came from (institution and number; no content).
            dest_ctx.scope.add(
                Event(
                    case_id=linked.id,
                    kind=EventKind.FORWARD_RECEIVED,
                    note=(
                        f"Dilimpahkan dari {ctx.tenant.name} ({origin.registration_number}); "
                        f"paket ditandatangani kunci {package.signer}"
                    ),
                )
            )
            if linked.sent_to_kpk:
                log_share(dest_ctx, linked)
            # The origin side: diteruskan, naming the destination, by the uploading account.
            ctx.scope.add(
                Event(
                    case_id=origin.id,
                    kind=EventKind.STATUS_CHANGED,
                    from_status=origin.status,
                    to_status=CaseStatus.DITERUSKAN,
                    actor_investigator_id=ctx.actor_id,
                    note=f"Diteruskan ke {destination.name}",
                    created_at=now,
                )
            )
            ctx.scope.add(
                Event(
                    case_id=origin.id,
                    kind=EventKind.FORWARDED,
                    actor_investigator_id=ctx.actor_id,
                    note=f"Diteruskan ke {destination.name} ({linked.registration_number})",
                    created_at=now,
                )
            )
            origin.status = CaseStatus.DITERUSKAN
            record_first_response(origin, now, ctx.inst.calendar)
            origin.linked_to_case_id = linked.id
            # KPK's open request to forward the case is answered (to KPK or elsewhere).
            settle_request(ctx, origin, destination.name, linked.registration_number)
            # A case of a matter: the linked case takes its place there (wbs.matters).
            carry_forward(ctx, origin, linked)
    except sa.exc.IntegrityError as exc:
        raise Refusal(
            "forward_replayed", "This package was already uploaded.",
            number=origin.registration_number,
        ) from exc
    return linked


# --- forwarding outside the system ---------------------------------------------------------------


def forward_external(ctx: Context, case: Case, body: str, letter_number: str) -> Event:
    """Record that the case was forwarded to a body outside the system (Kejaksaan, Polri,
    BPK) by letter: the destination and the letter's number, as a log entry; no content
    leaves. The case moves to *diteruskan* where the workflow allows it. Commits."""
    if ctx.actor is None or (ctx.actor.role == Role.PEMANTAU_KPK and not ctx.tenant.is_hub):
        raise Refusal("forbidden", "Your role does not allow forwarding a case.")
    if case.linked_to_case_id is not None:
        raise Refusal(
            "forward_not_handler",
            f"{case.registration_number} was forwarded already: it is handled elsewhere.",
        )
    name = EXTERNAL_BODIES.get(body)
    letter = letter_number.strip()
    if name is None:
        raise Refusal(
            "forward_bad_body", "body must be one of " + ", ".join(EXTERNAL_BODIES),
        )
    if not letter or len(letter) > MAX_LETTER_NUMBER or any(ord(ch) < 0x20 for ch in letter):
        raise Refusal(
            "forward_bad_letter",
            f"letter_number is required, one line of at most {MAX_LETTER_NUMBER} characters.",
        )
    now = dt.datetime.now(dt.UTC)
    note = f"Diteruskan ke {name}, surat nomor {letter}"
    if can_transition(case.status, CaseStatus.DITERUSKAN):
        ctx.scope.add(
            Event(case_id=case.id, kind=EventKind.STATUS_CHANGED, from_status=case.status,
                  to_status=CaseStatus.DITERUSKAN, actor_investigator_id=ctx.actor_id,
                  note=f"Diteruskan ke {name}", created_at=now)
        )
        case.status = CaseStatus.DITERUSKAN
        record_first_response(case, now, ctx.inst.calendar)
    event = Event(case_id=case.id, kind=EventKind.FORWARDED_EXTERNAL,
                  actor_investigator_id=ctx.actor_id, note=note, created_at=now)
    ctx.scope.add(event)
    settle_request(ctx, case, name)
    ctx.session.commit()
    return event


# --- following the link (the pelapor's side and the case pages) ----------------------------------


@dataclass(frozen=True)
class Handler:
    """Where a pelapor's report is handled now: the case at the end of its links, its
    tenant, and the linked source id the pelapor has there."""

    case: Case
    tenant: Tenant
    # KPK took the handling over (pengambilalihan, wbs.takeover) rather than being forwarded
    # the case: the last link was a takeover.
    taken_over: bool = False


def handling_chain(ctx: Context, case: Case) -> list[Handler]:
    """The cases that handled ``case`` after it, in order (A to KPK to B: KPK's, then B's);
    empty if it was never forwarded. ``case`` is the context's own (the pelapor's, or an
    investigator's): the link is followed from there only, never listed."""
    if case.tenant_id != ctx.tenant.id or case.linked_to_case_id is None:
        return []
    chain: list[Handler] = []
    current = case
    for _ in range(MAX_LINKS):
        if current.linked_to_case_id is None:
            break
        following = ctx.session.get(Case, current.linked_to_case_id)
        if following is None or following.linked_from_case_id != current.id:
            break
        tenant = ctx.session.get(Tenant, following.tenant_id)
        if tenant is None:  # a tenant with cases cannot be removed (the log refuses)
            break
        # A link KPK made by taking the case over (wbs.takeover) rather than being forwarded it.
        chain.append(Handler(following, tenant, taken_over=current.taken_over_at is not None))
        current = following
    return chain


def handling_case(ctx: Context, case: Case) -> Handler | None:
    """The case that handles ``case`` now, if it was forwarded (following every link, A to KPK
    to B); None if ``case`` handles itself."""
    chain = handling_chain(ctx, case)
    return chain[-1] if chain else None


def origin_tenant_name(ctx: Context, case: Case) -> str | None:
    """The institution a linked case came from (for the receiving tenant's case page)."""
    if case.linked_from_case_id is None:
        return None
    origin = ctx.session.get(Case, case.linked_from_case_id)
    if origin is None or origin.linked_to_case_id != case.id:
        return None
    tenant = ctx.session.get(Tenant, origin.tenant_id)
    return tenant.name if tenant is not None else None


def handler_tenant_name(ctx: Context, case: Case) -> str | None:
    handler = handling_case(ctx, case)
    return handler.tenant.name if handler is not None else None

