"""Pelimpahan on the workstation: a case re-encrypted, item by item, to the receiving
institution's keys, into a signed forwarding package (``peluit-forward/2``,
``docs/forwarding.md``).

The receiving tenant's keys come from the server's **signed key list** (``peluit-keylist/1``),
verified against the instance signing key this workstation pinned when it first imported a
bundle: never from the server's unsigned word. Every item of the case (form, files,
follow-ups, replies) is decrypted here with the institution's own key and encrypted again to
exactly the receiving tenant's current keys (and KPK's when the case is shared with KPK),
padded like every stored item; replies also to the pelapor's reply key, so the pelapor keeps
reading the whole thread from the institution that handles the report now. The plaintext
exists only in a private temporary folder while an item is re-encrypted, and is removed.

The package is **signed** by the forwarding institution itself: a detached signature over the
exact bytes of ``manifest.json`` (which holds every item's SHA-256), ``manifest.json.sig``, made
with one of the institution's own recipient keys whose secret half this workstation holds: by
default the key that decrypted the case's newest item (a recipient key of the institution,
most likely a current one), or the one named with ``--sign-with``. Recipient keys made by
``peluit-workstation keys new`` have an ed25519 primary key that signs (and a cv25519 subkey
that encrypts), so no extra key is needed. The server accepts the package only if the signer
is one of the institution's CURRENT recipient keys; the signature is checked here once
against the key's public half before the package is written, and if signing fails no package
is left.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from crypto.errors import CryptoError
from crypto.keyring import Keyring
from crypto.padding import FRAMING_PADME, PaddingError, unframe_file
from crypto.signing import SignatureError, verify_detached
from workstation.gpg import PassphraseNeeded, WorkstationGpg
from workstation.intake import encrypt_item, save_package
from workstation.store import CaseRecord, State, Workstation, WorkstationError

FORMAT = "peluit-forward/2"
KEYLIST_FORMAT = "peluit-keylist/1"
_MAX_KEYLIST_BYTES = 4 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class KeyList:
    """A verified key list: the receiving tenant's current keys and KPK's."""

    tenant: str
    tenant_name: str
    is_hub: bool
    kpk_sharing: str
    keys: tuple[tuple[str, str], ...]  # (fingerprint, armored public key)
    kpk_keys: tuple[tuple[str, str], ...]


def _keys(raw: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list):
        raise WorkstationError("the key list is damaged (keys)")
    out = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("fingerprint"), str) or (
            not isinstance(entry.get("public_key"), str)
        ):
            raise WorkstationError("the key list is damaged (a key)")
        out.append((entry["fingerprint"].upper(), entry["public_key"]))
    return tuple(out)


def read_key_list(path: Path, pinned: str | None, gpg_binary: str = "gpg") -> KeyList:
    """Verify the signed key list against the pinned instance signing key; refuse otherwise."""
    if pinned is None:
        raise WorkstationError(
            "no instance signing key is pinned yet: import an export bundle of this server "
            "first (peluit-workstation import), then forward"
        )
    if path.stat().st_size > _MAX_KEYLIST_BYTES:
        raise WorkstationError("the key list file is too large")
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
        document, signature, signing_key = (
            envelope["document"], envelope["signature"], envelope["signing_key"]
        )
        if envelope.get("format") != KEYLIST_FORMAT or not all(
            isinstance(value, str) for value in (document, signature, signing_key)
        ):
            raise ValueError("not a key list")
    except (ValueError, KeyError, TypeError) as exc:
        raise WorkstationError(f"not a key list ({KEYLIST_FORMAT}): {exc}") from exc
    try:
        verify_detached(
            document.encode("utf-8"), signature.encode("ascii"), signing_key, pinned, gpg_binary
        )
    except SignatureError as exc:
        raise WorkstationError(f"key list refused: {exc}") from exc
    data = json.loads(document)
    if not isinstance(data, dict) or data.get("format") != KEYLIST_FORMAT:
        raise WorkstationError("the key list is damaged (format)")
    keys = _keys(data.get("keys"))
    if not keys:
        raise WorkstationError(f"{data.get('tenant')} has no current recipient key")
    return KeyList(
        tenant=str(data["tenant"]),
        tenant_name=str(data["tenant_name"]),
        is_hub=data["is_hub"] is True,
        kpk_sharing=str(data["kpk_sharing"]),
        keys=keys,
        kpk_keys=_keys(data.get("kpk_keys")),
    )


def forwarded_to_kpk(case: CaseRecord, keys: KeyList) -> bool:
    """The server's rule (wbs.forwarding.forwarded_to_kpk), on what this workstation knows."""
    if keys.is_hub:
        return False
    return bool(case.meta.get("sent_to_kpk")) or keys.kpk_sharing == "always"


def _chunks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            yield chunk


def write_forward_package(
    ws: Workstation,
    state: State,
    case: CaseRecord,
    to: str,
    key_list: Path,
    passphrase: str | None = None,
    ask_passphrase: Callable[[], str] | None = None,
    output: Path | None = None,
    sign_with: str | None = None,
) -> Path:
    """Re-encrypt every item of ``case`` for the tenant ``to`` and write the package, signed
    with ``sign_with`` (a fingerprint) or the key that decrypted the case's newest item."""
    keys = read_key_list(key_list, state.signer, ws.gpg_binary)
    if keys.tenant != to:
        raise WorkstationError(
            f"the key list is {keys.tenant!r}'s, not {to!r}'s: fetch the receiving "
            "institution's key list"
        )
    if to == case.tenant:
        raise WorkstationError("a case is forwarded to another institution, not its own")
    to_kpk = forwarded_to_kpk(case, keys)
    if to_kpk and not keys.kpk_keys:
        raise WorkstationError("the case goes to KPK too, and the key list has no KPK key")
    chosen = list(keys.keys) + (list(keys.kpk_keys) if to_kpk else [])
    items = case.ordered_items()
    if not items:
        raise WorkstationError(f"{case.registration_number} has no items to forward")
    case_dir = ws.case_dir(case)
    reply_key = case_dir / "reply-key.asc"
    if output is None:
        ws.outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        output = ws.outbox / (
            f"forward-{case.registration_number}-{to}-{stamp}-{secrets.token_hex(3)}.zip"
        )
    staging = Path(tempfile.mkdtemp(prefix=".forward-", dir=ws.home))
    gpg = WorkstationGpg(ws.gnupg_home, ws.gpg_binary)
    try:
        if sign_with is not None:
            # Before anything is decrypted: the signing key must be one this workstation holds.
            sign_with = sign_with.replace(" ", "").upper()
            if sign_with not in gpg.secret_fingerprints():
                raise WorkstationError(
                    f"the package could not be signed with key {sign_with}: its secret half is "
                    "not on this workstation (name a key of your institution by its full "
                    "fingerprint); no package was written"
                )
        # Only the key list's keys, in a keyring of their own: nothing else can slip in.
        with Keyring(staging / "keys", ws.gpg_binary) as keyring:
            fingerprints = []
            for fingerprint, armored in chosen:
                info = keyring.import_public_key(armored)
                if info.fingerprint != fingerprint:
                    raise WorkstationError(f"the key list's key {fingerprint} is not what it says")
                fingerprints.append(fingerprint)
            plain = staging / "plain"
            plain.mkdir(mode=0o700)
            packed: list[tuple[str, Path]] = []
            decrypted_by: str | None = None
            for number, item in enumerate(items, start=1):
                source = case_dir / item.file
                try:
                    temp, embedded, decrypted_by = gpg.decrypt_item(source, plain, passphrase)
                except PassphraseNeeded:
                    if ask_passphrase is None or passphrase is not None:
                        raise
                    passphrase = ask_passphrase()
                    temp, embedded, decrypted_by = gpg.decrypt_item(source, plain, passphrase)
                try:
                    if item.framing == FRAMING_PADME:
                        try:
                            embedded = unframe_file(temp).name
                        except PaddingError as exc:
                            raise WorkstationError(
                                f"item {number} ({item.kind}) is damaged: {exc}"
                            ) from exc
                    name = f"items/{number:04d}-{item.kind}.gpg"
                    target = staging / f"{number:04d}-{item.kind}.gpg"
                    extra = [reply_key] if item.kind == "reply" else []
                    with target.open("wb") as sink:
                        encrypt_item(keyring, fingerprints, _chunks(temp), embedded, sink,
                                     extra_recipient_files=extra)
                finally:
                    temp.unlink(missing_ok=True)
                packed.append((name, target))
            manifest: dict[str, object] = {
                "format": FORMAT,
                "package_id": secrets.token_hex(16),
                "origin_tenant": case.tenant,
                "origin_registration_number": case.registration_number,
                "to_tenant": to,
                "to_kpk": to_kpk,
            }
            signer = sign_with or decrypted_by
            if signer is None:
                raise WorkstationError(
                    "gpg did not say which key decrypted the case: name the signing key with "
                    "--sign-with FINGERPRINT"
                )

            def sign(document: bytes) -> bytes:
                nonlocal passphrase
                try:
                    return _sign(gpg, document, signer, passphrase)
                except PassphraseNeeded:
                    if ask_passphrase is None or passphrase is not None:
                        raise
                    passphrase = ask_passphrase()
                    return _sign(gpg, document, signer, passphrase)

            save_package(output, packed, manifest, sign)
    finally:
        gpg.close()
        shutil.rmtree(staging, ignore_errors=True)
    return output



def _sign(gpg: WorkstationGpg, document: bytes, signer: str, passphrase: str | None) -> bytes:
    """The detached signature over the manifest, checked once against the signer's public key
    (as the server will check it) before the package is called done."""
    try:
        signature = gpg.sign_detached(document, signer, passphrase)
        verify_detached(document, signature, gpg.export_public(signer), signer, gpg.gpg_binary)
    except PassphraseNeeded:
        raise
    except (CryptoError, ValueError) as exc:
        raise WorkstationError(
            f"the package could not be signed with key {signer}: {exc}; no package was written"
        ) from exc
    return signature
