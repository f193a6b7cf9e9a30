"""The workstation's data folder: its GnuPG home, the imported cases, and a small state file.

Layout of the home (default ``~/.peluit-workstation``)::

    gnupg/                                  the investigators' keys (secret halves live here)
    state.json                              pinned signer, imported cases and their items
    cases/<tenant>/<reg>/items/<sha256>.gpg each item's ciphertext, named by its hash
    cases/<tenant>/<reg>/reply-key.asc      the pelapor's reply public key
    cases/<tenant>/<reg>/decrypted/         plaintext, under safe versions of original names
    cases/<tenant>/<reg>/case.html          the case rendered for reading
    outbox/                                 encrypted replies to carry back to the server

Items are stored by their SHA-256, not by their number in a bundle: the server numbers a
case's items by time, and a later bundle of the same case may number them differently.
An import is all or nothing: every new file is copied into a staging folder (and checked
against the manifest's hash again on the way) before anything is moved into place, and the
state file is replaced atomically last.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crypto.bundle import BundleCase, BundleError, VerifiedBundle, read_bundle
from crypto.errors import CryptoError
from crypto.keyring import Keyring
from crypto.padding import FRAMING_NONE, FRAMINGS

STATE_VERSION = 1
_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class WorkstationError(Exception):
    """Something the investigator must fix; the message says what."""


class ImportRefused(WorkstationError):
    """A bundle was refused; nothing of it was imported. ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def default_home() -> Path:
    return Path(os.environ.get("PELUIT_WORKSTATION_HOME", "~/.peluit-workstation")).expanduser()


@dataclass
class ItemRecord:
    sha256: str
    kind: str
    size: int  # of the ciphertext (padded); the decrypted file has the true size
    created_at: str
    decrypted: str | None = None  # relative to the case folder
    embedded_name: str | None = None  # the original name, as sent (for display)
    # How the plaintext is padded inside the encryption, as the signed manifest says
    # (crypto.padding); items imported before padding existed are unpadded.
    framing: str = FRAMING_NONE

    @property
    def file(self) -> str:
        return f"items/{self.sha256}.gpg"


@dataclass
class CaseRecord:
    tenant: str
    tenant_name: str
    registration_number: str
    bundle_created_at: str
    meta: dict[str, Any]
    timeline: list[dict[str, Any]]
    reply_fingerprint: str
    items: list[ItemRecord] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.registration_number}"

    def ordered_items(self) -> list[ItemRecord]:
        # Time order, the pelapor's items before replies of the same day (as the server does).
        return sorted(self.items, key=lambda item: (item.created_at, item.kind == "reply"))

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "tenant_name": self.tenant_name,
            "registration_number": self.registration_number,
            "bundle_created_at": self.bundle_created_at,
            "meta": self.meta,
            "timeline": self.timeline,
            "reply_fingerprint": self.reply_fingerprint,
            "items": [vars(item) for item in self.items],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseRecord:
        items = [ItemRecord(**item) for item in data["items"]]
        for item in items:
            if not _SHA_RE.match(item.sha256):
                raise WorkstationError("the state file is damaged (bad item hash)")
            if item.framing not in FRAMINGS:
                raise WorkstationError("the state file is damaged (unknown item framing)")
        return cls(**{**data, "items": items})


@dataclass
class State:
    signer: str | None = None
    cases: dict[str, CaseRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "signer": self.signer,
            "cases": {key: case.to_json() for key, case in sorted(self.cases.items())},
        }


@dataclass(frozen=True)
class ImportResult:
    signer: str
    first_trust: bool
    cases: tuple[str, ...]
    new_items: int
    known_items: int


class Workstation:
    """The data folder; every command opens one and holds its lock while it works."""

    def __init__(self, home: Path, gpg_binary: str = "gpg") -> None:
        self.home = Path(home).absolute()
        self.gpg_binary = gpg_binary
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)

    @property
    def gnupg_home(self) -> Path:
        return self.home / "gnupg"

    @property
    def state_path(self) -> Path:
        return self.home / "state.json"

    @property
    def outbox(self) -> Path:
        return self.home / "outbox"

    def case_dir(self, case: CaseRecord) -> Path:
        return self.home / "cases" / case.tenant / case.registration_number

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One command at a time: two imports must not interleave their state writes."""
        fd = os.open(self.home / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- state ---------------------------------------------------------------------------------

    def load(self) -> State:
        if not self.state_path.exists():
            return State()
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            if data.get("version") != STATE_VERSION:
                raise WorkstationError(f"unknown state file version in {self.state_path}")
            return State(
                signer=data.get("signer"),
                cases={k: CaseRecord.from_json(v) for k, v in data["cases"].items()},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise WorkstationError(f"the state file {self.state_path} is damaged: {exc}") from exc

    def save(self, state: State) -> None:
        data = json.dumps(state.to_json(), ensure_ascii=False, indent=2).encode("utf-8")
        fd, temp = tempfile.mkstemp(prefix=".state-", dir=self.home)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.state_path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def find_case(self, state: State, name: str) -> CaseRecord:
        """A case by "REG" or "tenant/REG"."""
        if name in state.cases:
            return state.cases[name]
        matches = [case for case in state.cases.values() if case.registration_number == name]
        if not matches:
            raise WorkstationError(f"no imported case {name!r} (see: peluit-workstation cases)")
        if len(matches) > 1:
            keys = ", ".join(case.key for case in matches)
            raise WorkstationError(f"{name!r} is ambiguous; name one of: {keys}")
        return matches[0]

    # -- import --------------------------------------------------------------------------------

    def import_bundle(self, path: Path, trust_new_signer: bool = False) -> ImportResult:
        """Verify a bundle completely and import what is new in it, or import nothing."""
        state = self.load()
        pinned = None if trust_new_signer else state.signer
        try:
            bundle = read_bundle(path, pinned)
        except BundleError as exc:
            hint = ""
            if exc.reason == "untrusted_signer":
                hint = (
                    " If the instance's signing key was rotated, compare the new fingerprint "
                    "with the admin page out of band, then import with --trust-new-signer."
                )
            raise ImportRefused(exc.reason, f"bundle refused ({exc.reason}): {exc}.{hint}") from exc
        if not _TENANT_RE.match(bundle.tenant_slug):
            raise ImportRefused("bad_manifest", f"unusable tenant slug {bundle.tenant_slug!r}")
        if not _TENANT_RE.match(bundle.reader_slug):
            raise ImportRefused("bad_manifest", f"unusable reader slug {bundle.reader_slug!r}")

        staging = Path(tempfile.mkdtemp(prefix=".import-", dir=self.home))
        try:
            updated, moves, new_items, known = self._stage(state, bundle, staging)
            for source, target in moves:
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.replace(source, target)
            for case in updated:
                state.cases[case.key] = case
            first_trust = state.signer is None
            state.signer = bundle.signing_fingerprint
            self.save(state)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return ImportResult(
            signer=bundle.signing_fingerprint,
            first_trust=first_trust,
            cases=tuple(case.key for case in updated),
            new_items=new_items,
            known_items=known,
        )

    def _stage(
        self, state: State, bundle: VerifiedBundle, staging: Path
    ) -> tuple[list[CaseRecord], list[tuple[Path, Path]], int, int]:
        updated: list[CaseRecord] = []
        moves: list[tuple[Path, Path]] = []
        new_items = known = 0
        keyring = Keyring(staging / "gnupg", self.gpg_binary)
        try:
            for bcase in bundle.cases:
                key = f"{bundle.tenant_slug}/{bcase.registration_number}"
                old = state.cases.get(key)
                record = _merge(old, bundle, bcase)
                case_dir = self.case_dir(record)
                stage_dir = staging / key
                (stage_dir / "items").mkdir(mode=0o700, parents=True)

                key_file = stage_dir / "reply-key.asc"
                with key_file.open("wb") as out:
                    _copy_checked(bundle, bcase.reply_key.path, out)
                try:
                    info = keyring.inspect_public_key(key_file.read_bytes())
                except CryptoError as exc:
                    raise ImportRefused(
                        "bad_reply_key", f"{key}: the reply key is unusable ({exc})"
                    ) from exc
                if info.fingerprint != bcase.reply_key.fingerprint:
                    raise ImportRefused(
                        "bad_reply_key", f"{key}: the reply key is not the one the manifest names"
                    )
                if old is not None and old.reply_fingerprint != info.fingerprint:
                    raise ImportRefused(
                        "bad_reply_key",
                        f"{key}: the pelapor's reply key differs from the one imported before",
                    )
                moves.append((key_file, case_dir / "reply-key.asc"))

                have = {item.sha256 for item in record.items}
                # Items are stored by their hash, so two items with one hash are one file.
                # Older servers accepted the same encrypted reply twice, and their bundles
                # hold both: staging the file twice would move it twice, and the second move
                # would fail the whole import.
                staged_now: set[str] = set()
                for bitem in bcase.items:
                    on_disk = (case_dir / f"items/{bitem.sha256}.gpg").is_file()
                    if bitem.sha256 in staged_now or (bitem.sha256 in have and on_disk):
                        known += 1
                        continue
                    staged_now.add(bitem.sha256)
                    staged = stage_dir / "items" / f"{bitem.sha256}.gpg"
                    with staged.open("wb") as out:
                        _copy_checked(bundle, bitem.path, out)
                        out.flush()
                        os.fsync(out.fileno())
                    moves.append((staged, case_dir / "items" / staged.name))
                    if bitem.sha256 not in have:
                        record.items.append(
                            ItemRecord(
                                sha256=bitem.sha256,
                                kind=bitem.kind,
                                size=bitem.size,
                                created_at=bitem.created_at.isoformat(),
                                framing=bitem.framing,
                            )
                        )
                        have.add(bitem.sha256)
                    new_items += 1
                updated.append(record)
        finally:
            keyring.close()
        return updated, moves, new_items, known


def _copy_checked(bundle: VerifiedBundle, path_in_bundle: str, out: Any) -> None:
    try:
        bundle.copy_file(path_in_bundle, out)
    except BundleError as exc:
        # The USB stick changed under us after verification: nothing is kept.
        raise ImportRefused(exc.reason, f"bundle refused ({exc.reason}): {exc}") from exc


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _merge(old: CaseRecord | None, bundle: VerifiedBundle, bcase: BundleCase) -> CaseRecord:
    """The case as the newest bundle describes it, keeping every item seen before."""
    meta = {
        "category": bcase.category,
        "mcp_area": bcase.mcp_area,
        "status": bcase.status,
        "sent_to_kpk": bcase.sent_to_kpk,
        "received_at": _iso(bcase.received_at),
        "first_response_due": _iso(bcase.first_response_due),
        "closure_due": _iso(bcase.closure_due),
        # The Indonesian words for the codes, as the bundle carries them (workstation.render).
        "labels": {group: dict(words) for group, words in bundle.labels.items()},
        # Who the bundle was made for: the case's own tenant, or KPK for its copy of a case
        # shared with it (the case is still filed under its own tenant).
        "reader": bundle.reader_slug,
        "reader_name": bundle.reader_name,
    }
    timeline = [
        {
            "kind": entry.kind,
            "from_status": entry.from_status,
            "to_status": entry.to_status,
            "created_at": entry.created_at.isoformat(),
            "note": entry.note,
        }
        for entry in bcase.timeline
    ]
    created = bundle.created_at.isoformat()
    if old is None:
        return CaseRecord(
            tenant=bundle.tenant_slug,
            tenant_name=bundle.tenant_name,
            registration_number=bcase.registration_number,
            bundle_created_at=created,
            meta=meta,
            timeline=timeline,
            reply_fingerprint=bcase.reply_key.fingerprint,
        )
    record = CaseRecord.from_json(old.to_json())  # a copy: state changes only on success
    # An older bundle imported after a newer one adds its items but not its stale status.
    if dt.datetime.fromisoformat(created) >= dt.datetime.fromisoformat(old.bundle_created_at):
        record.bundle_created_at = created
        record.meta = meta
        record.timeline = timeline
        record.tenant_name = bundle.tenant_name
    return record
