"""Reading export bundles: verify the signed ZIP the server made, trust nothing before that.

A bundle (format in ``docs/export-bundle.md``) holds one or more cases of one tenant: every
item's ciphertext exactly as stored, the source's reply public key, and a manifest with the
metadata and the SHA-256 of every file, signed by the instance's signing key
(:mod:`crypto.signing`). The server writes bundles (``wbs.bundle.write_bundle``); this module is
the air-gapped workstation's half, so it needs the standard library and :mod:`crypto` only.

The reader trusts nothing in the ZIP before the manifest's signature is verified, and nothing
after it that the manifest does not name with its hash: a bundle is accepted whole or refused
with a :class:`BundleError`, never half read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from crypto.errors import CryptoError
from crypto.padding import FRAMING_NONE, FRAMINGS
from crypto.signing import verify_detached

# /2 says, item by item, how the plaintext is padded inside the encryption (crypto.padding).
# /1 bundles (made before padding existed) are still read: every item of one is unpadded. A
# workstation that knows only /1 refuses a /2 bundle instead of showing padded plaintext.
FORMAT = "peluit-bundle/2"
FORMAT_V1 = "peluit-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
SIGNING_KEY = "signing-key.asc"
ITEM_KINDS = ("form", "message", "file", "reply")

_CHUNK = 1024 * 1024
# ZIP entries carry no time of their own: the signed manifest says when the bundle was made.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Files in the bundle are readable by their owner only when a tool extracts them.
_ZIP_MODE = 0o100600 << 16
# Bounds on what the reader will even look at, so a hostile file cannot make it chew forever.
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_MAX_SMALL_FILE_BYTES = 1024 * 1024  # the signature, the signing key, a reply key
_MAX_ENTRIES = 200_000

# Registration numbers become folder and file names: letters, digits, '-' and '_' only, so no
# name in a bundle can hold a dot-dot, a slash or a drive letter.
_REG = r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}"
_REG_RE = re.compile(rf"^{_REG}$")
_ITEM_RE = re.compile(rf"^items/(?P<reg>{_REG})/(?P<nn>[0-9]{{2,6}})-(?P<kind>[a-z]+)\.gpg$")
_KEY_RE = re.compile(rf"^keys/(?P<reg>{_REG})-reply\.asc$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_FPR_RE = re.compile(r"^[0-9A-F]{40}$")


class BundleError(Exception):
    """A bundle could not be written, or was refused; ``reason`` is a stable code.

    Reasons: ``not_a_bundle``, ``unsafe_path``, ``duplicate_name``, ``unexpected_file``,
    ``missing_file``, ``bad_signature``, ``untrusted_signer``, ``bad_manifest``,
    ``item_mismatch``, ``damaged``, ``too_large`` (reading); ``no_cases``, ``store_mismatch``
    (writing).
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


# --- what a verified bundle holds ------------------------------------------------------------


@dataclass(frozen=True)
class BundleItem:
    path: str  # inside the ZIP: items/<registration number>/<nn>-<kind>.gpg
    kind: str  # form, message, file or reply
    size: int  # of the ciphertext, which is padded: never the document's exact size
    sha256: str
    created_at: dt.datetime  # day precision for what the pelapor sent
    framing: str = FRAMING_NONE  # what to strip after decryption (crypto.padding)


@dataclass(frozen=True)
class TimelineEntry:
    kind: str
    from_status: str | None
    to_status: str | None
    created_at: dt.datetime
    note: str | None


@dataclass(frozen=True)
class ReplyKeyFile:
    path: str  # keys/<registration number>-reply.asc
    fingerprint: str
    size: int
    sha256: str


@dataclass(frozen=True)
class BundleCase:
    registration_number: str
    category: str
    mcp_area: str | None
    status: str
    sent_to_kpk: bool
    received_at: dt.datetime
    first_response_due: dt.date
    closure_due: dt.date | None
    timeline: tuple[TimelineEntry, ...]
    reply_key: ReplyKeyFile
    items: tuple[BundleItem, ...]


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature, file list and every hash have been checked."""

    path: Path
    signing_fingerprint: str  # pin this on first use when no fingerprint was trusted yet
    created_at: dt.datetime
    tenant_slug: str
    tenant_name: str
    cases: tuple[BundleCase, ...]
    manifest: Mapping[str, Any]
    # The Indonesian words for the codes, by group ("status", "category", "mcp_area", "event",
    # "item"): the workstation imports no server code, so the labels travel with the codes.
    # Empty for a bundle written before they did; a reader then shows the codes.
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Who the bundle was made for: the tenant itself, or KPK for its copy of cases shared
    # with it. A bundle written before readers were named was made for its tenant.
    reader_slug: str = ""
    reader_name: str = ""

    def copy_file(self, path_in_bundle: str, out: BinaryIO) -> int:
        """Copy one listed file (an item or a reply key) to ``out``, checking its hash again.

        The bundle file may have changed since it was verified (it sits on a USB stick), so
        the hash is checked again on the way out; on a mismatch BundleError is raised and
        whatever was written to ``out`` must be discarded.
        """
        expected = self._listed().get(path_in_bundle)
        if expected is None:
            raise BundleError("unexpected_file", f"{path_in_bundle!r} is not in the manifest")
        with zipfile.ZipFile(self.path) as zf:
            _check_entry(zf, path_in_bundle, *expected, out=out)
        return expected[0]

    def _listed(self) -> dict[str, tuple[int, str]]:
        listed: dict[str, tuple[int, str]] = {}
        for case in self.cases:
            key = case.reply_key
            listed[key.path] = (key.size, key.sha256)
            for item in case.items:
                listed[item.path] = (item.size, item.sha256)
        return listed


# --- reading (workstation side) --------------------------------------------------------------


def _check_name(name: str) -> None:
    # Checked on every entry before anything is read, so the message names the actual problem;
    # the whitelist of shapes below would refuse these names as well.
    parts = name.split("/")
    if (
        not name
        or name.startswith(("/", "\\"))
        or "\\" in name
        or "\x00" in name
        or re.match(r"^[A-Za-z]:", name)
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise BundleError("unsafe_path", f"unsafe file name in the bundle: {name!r}")


def _check_entry(
    zf: zipfile.ZipFile, name: str, size: int, sha256: str, out: BinaryIO | None = None
) -> None:
    """Hash one entry as a stream and compare it with the manifest."""
    info = zf.getinfo(name)
    if info.file_size != size:
        raise BundleError(
            "item_mismatch", f"{name}: {info.file_size} bytes, the manifest says {size}"
        )
    digest = hashlib.sha256()
    read = 0
    try:
        with zf.open(info) as src:
            while chunk := src.read(_CHUNK):
                read += len(chunk)
                if read > size:
                    raise BundleError("item_mismatch", f"{name}: longer than the manifest says")
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        # zipfile checks each entry's CRC-32 and local header; a failure is damage or tampering.
        raise BundleError("damaged", f"{name}: damaged in the bundle ({exc})") from exc
    if read != size or digest.hexdigest() != sha256:
        raise BundleError("item_mismatch", f"{name}: its SHA-256 does not match the manifest")


def _read_small(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise BundleError("too_large", f"{name} is larger than {limit} bytes")
    try:
        with zf.open(info) as src:
            data = src.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BundleError("damaged", f"{name}: damaged in the bundle ({exc})") from exc
    if len(data) > limit:
        raise BundleError("too_large", f"{name} is larger than {limit} bytes")
    return data


def read_bundle(path: Path | str, trusted_fingerprint: str | None) -> VerifiedBundle:
    """Verify a bundle completely and describe it; raise BundleError on anything amiss.

    ``trusted_fingerprint`` is the instance signing key pinned on the workstation. With None
    (the very first bundle), the key shipped in the bundle is used and its fingerprint is
    returned for the caller to show and pin: trust on first use.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            return _read(zf, path, trusted_fingerprint)
    except zipfile.BadZipFile as exc:
        raise BundleError("not_a_bundle", f"{path.name} is not a readable ZIP ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise BundleError("not_a_bundle", f"{path.name} could not be read ({exc})") from exc


def _read(zf: zipfile.ZipFile, path: Path, trusted_fingerprint: str | None) -> VerifiedBundle:
    infos = zf.infolist()
    if len(infos) > _MAX_ENTRIES:
        raise BundleError("too_large", f"more than {_MAX_ENTRIES} files in the bundle")
    names: set[str] = set()
    for info in infos:
        _check_name(info.filename)
        if info.filename in names:
            # zipfile would silently serve the last of two same-named entries; a verifier that
            # hashed one and a reader that opened the other would disagree.
            raise BundleError("duplicate_name", f"{info.filename!r} appears twice in the bundle")
        names.add(info.filename)
        if info.is_dir():
            raise BundleError("unexpected_file", f"unexpected folder entry {info.filename!r}")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise BundleError(
                "unexpected_file", f"{info.filename}: compressed or encrypted ZIP entry"
            )
    for required in (MANIFEST, SIGNATURE, SIGNING_KEY):
        if required not in names:
            raise BundleError("missing_file", f"{required} is missing from the bundle")

    manifest_bytes = _read_small(zf, MANIFEST, _MAX_MANIFEST_BYTES)
    signature = _read_small(zf, SIGNATURE, _MAX_SMALL_FILE_BYTES)
    signing_key = _read_small(zf, SIGNING_KEY, _MAX_SMALL_FILE_BYTES)
    try:
        signer = verify_detached(manifest_bytes, signature, signing_key, None)
    except CryptoError as exc:
        raise BundleError("bad_signature", f"the manifest's signature is not valid: {exc}") from exc
    if trusted_fingerprint is not None:
        trusted = trusted_fingerprint.replace(" ", "").upper()
        if signer != trusted:
            raise BundleError(
                "untrusted_signer",
                f"signed by key {signer}, not by the trusted instance key {trusted}: "
                "this bundle did not come from the instance you trust",
            )

    # Only now, with the signature good, is the manifest's content looked at.
    manifest = _parse_manifest(manifest_bytes)
    if manifest.signing_fingerprint != signer:
        raise BundleError(
            "bad_manifest", "the manifest names another signing key than the one that signed it"
        )
    listed: dict[str, tuple[int, str]] = {}
    for case in manifest.cases:
        for path_in_bundle, size, sha256 in (
            (case.reply_key.path, case.reply_key.size, case.reply_key.sha256),
            *((item.path, item.size, item.sha256) for item in case.items),
        ):
            if path_in_bundle in listed or path_in_bundle in (MANIFEST, SIGNATURE, SIGNING_KEY):
                raise BundleError("bad_manifest", f"{path_in_bundle} is listed twice")
            listed[path_in_bundle] = (size, sha256)
    expected = {MANIFEST, SIGNATURE, SIGNING_KEY, *listed}
    missing, extra = sorted(expected - names), sorted(names - expected)
    if missing:
        raise BundleError("missing_file", f"missing from the bundle: {', '.join(missing)}")
    if extra:
        raise BundleError("unexpected_file", f"not in the manifest: {', '.join(extra)}")
    for name, (size, sha256) in listed.items():
        _check_entry(zf, name, size, sha256)
    return VerifiedBundle(
        path=path,
        signing_fingerprint=signer,
        created_at=manifest.created_at,
        tenant_slug=manifest.tenant_slug,
        tenant_name=manifest.tenant_name,
        cases=manifest.cases,
        manifest=manifest.raw,
        labels=manifest.labels,
        reader_slug=manifest.reader_slug,
        reader_name=manifest.reader_name,
    )


# --- the manifest's schema -------------------------------------------------------------------


@dataclass(frozen=True)
class _Manifest:
    raw: Mapping[str, Any]
    created_at: dt.datetime
    signing_fingerprint: str
    tenant_slug: str
    tenant_name: str
    cases: tuple[BundleCase, ...]
    labels: Mapping[str, Mapping[str, str]]
    reader_slug: str
    reader_name: str


class _Fields:
    """Typed access to one JSON object of the manifest; every miss is a bad_manifest."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise BundleError("bad_manifest", f"{where}: expected an object")
        self.data: dict[str, Any] = value
        self.where = where

    def _get(self, key: str, kind: type, optional: bool = False) -> Any:
        value = self.data.get(key)
        if value is None and optional:
            return None
        # An exact type: bool is an int in Python, and a size of true is not a size.
        if type(value) is not kind:
            raise BundleError("bad_manifest", f"{self.where}.{key}: missing or of the wrong type")
        return value

    def text(self, key: str) -> str:
        return str(self._get(key, str))

    def optional_text(self, key: str) -> str | None:
        value = self._get(key, str, optional=True)
        return None if value is None else str(value)

    def flag(self, key: str) -> bool:
        return bool(self._get(key, bool))

    def size(self, key: str) -> int:
        value = int(self._get(key, int))
        if value < 0:
            raise BundleError("bad_manifest", f"{self.where}.{key}: negative")
        return value

    def sha256(self, key: str) -> str:
        value = self.text(key)
        if not _SHA256_RE.match(value):
            raise BundleError("bad_manifest", f"{self.where}.{key}: not a SHA-256 in hex")
        return value

    def timestamp(self, key: str) -> dt.datetime:
        try:
            value = dt.datetime.fromisoformat(self.text(key))
        except ValueError as exc:
            raise BundleError("bad_manifest", f"{self.where}.{key}: not a time") from exc
        if value.tzinfo is None:
            raise BundleError("bad_manifest", f"{self.where}.{key}: a time without its zone")
        return value

    def date(self, key: str) -> dt.date:
        try:
            return dt.date.fromisoformat(self.text(key))
        except ValueError as exc:
            raise BundleError("bad_manifest", f"{self.where}.{key}: not a date") from exc

    def optional_date(self, key: str) -> dt.date | None:
        return None if self.data.get(key) is None else self.date(key)

    def objects(self, key: str) -> Iterator[tuple[int, object]]:
        return enumerate(self._get(key, list))


def _parse_manifest(data: bytes) -> _Manifest:
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError("bad_manifest", f"the manifest is not JSON ({exc})") from exc
    top = _Fields(raw, "manifest")
    version = top.text("format")
    if version not in (FORMAT, FORMAT_V1):
        raise BundleError(
            "bad_manifest", f"unknown bundle format {top.data.get('format')!r}, expected {FORMAT}"
        )
    fingerprint = top.text("signing_key_fingerprint")
    if not _FPR_RE.match(fingerprint):
        raise BundleError("bad_manifest", "manifest.signing_key_fingerprint: not a fingerprint")
    tenant = _Fields(top.data.get("tenant"), "manifest.tenant")
    # Optional: bundles written before it was named were made for their tenant.
    reader = (
        _Fields(top.data["reader"], "manifest.reader") if "reader" in top.data else tenant
    )
    cases = []
    seen_regs: set[str] = set()
    for index, value in top.objects("cases"):
        cases.append(
            _parse_case(_Fields(value, f"manifest.cases[{index}]"), seen_regs, version)
        )
    if not cases:
        raise BundleError("bad_manifest", "the manifest lists no case")
    return _Manifest(
        labels=_parse_labels(top.data.get("labels")),
        raw=raw,
        created_at=top.timestamp("created_at"),
        signing_fingerprint=fingerprint,
        tenant_slug=tenant.text("slug"),
        tenant_name=tenant.text("name"),
        cases=tuple(cases),
        reader_slug=reader.text("slug"),
        reader_name=reader.text("name"),
    )


def _framing(item: _Fields, version: str) -> str:
    """The item's framing: stated in a /2 manifest, always none in a /1 manifest."""
    if version == FORMAT_V1:
        if "framing" in item.data:
            raise BundleError("bad_manifest", f"{item.where}.framing: not part of {FORMAT_V1}")
        return FRAMING_NONE
    framing = item.text("framing")
    if framing not in FRAMINGS:
        raise BundleError("bad_manifest", f"{item.where}.framing: unknown framing {framing!r}")
    return framing


def _parse_labels(value: object) -> Mapping[str, Mapping[str, str]]:
    """``labels``: optional (older bundles lack it); if present, groups of code -> text."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BundleError("bad_manifest", "manifest.labels: expected an object")
    labels: dict[str, dict[str, str]] = {}
    for group, words in value.items():
        if not isinstance(words, dict) or not all(
            isinstance(code, str) and type(text) is str for code, text in words.items()
        ):
            raise BundleError("bad_manifest", f"manifest.labels.{group}: expected texts by code")
        labels[str(group)] = dict(words)
    return labels


def _parse_case(case: _Fields, seen_regs: set[str], version: str) -> BundleCase:
    reg = case.text("registration_number")
    if not _REG_RE.match(reg) or reg in seen_regs:
        raise BundleError("bad_manifest", f"{case.where}: bad or repeated registration number")
    seen_regs.add(reg)
    key = _Fields(case.data.get("reply_key"), f"{case.where}.reply_key")
    key_path = key.text("path")
    if key_path != f"keys/{reg}-reply.asc" or not _KEY_RE.match(key_path):
        raise BundleError("bad_manifest", f"{key.where}.path: {key_path!r} is not this case's key")
    reply_key = ReplyKeyFile(
        path=key_path,
        fingerprint=key.text("fingerprint"),
        size=key.size("size"),
        sha256=key.sha256("sha256"),
    )
    if reply_key.size > _MAX_SMALL_FILE_BYTES:
        raise BundleError("too_large", f"{key_path} is larger than a reply key can be")
    items = []
    for index, value in case.objects("items"):
        item = _Fields(value, f"{case.where}.items[{index}]")
        item_path, kind = item.text("path"), item.text("kind")
        match = _ITEM_RE.match(item_path)
        if (
            match is None
            or match.group("reg") != reg
            or match.group("kind") != kind
            or kind not in ITEM_KINDS
        ):
            raise BundleError("bad_manifest", f"{item.where}.path: {item_path!r} is not allowed")
        items.append(
            BundleItem(
                path=item_path,
                kind=kind,
                size=item.size("size"),
                sha256=item.sha256("sha256"),
                created_at=item.timestamp("created_at"),
                framing=_framing(item, version),
            )
        )
    timeline = []
    for index, value in case.objects("timeline"):
        event = _Fields(value, f"{case.where}.timeline[{index}]")
        timeline.append(
            TimelineEntry(
                kind=event.text("kind"),
                from_status=event.optional_text("from_status"),
                to_status=event.optional_text("to_status"),
                created_at=event.timestamp("created_at"),
                note=event.optional_text("note"),
            )
        )
    return BundleCase(
        registration_number=reg,
        category=case.text("category"),
        mcp_area=case.optional_text("mcp_area"),
        status=case.text("status"),
        sent_to_kpk=case.flag("sent_to_kpk"),
        received_at=case.timestamp("received_at"),
        first_response_due=case.date("first_response_due"),
        closure_due=case.optional_date("closure_due"),
        timeline=tuple(timeline),
        reply_key=reply_key,
        items=tuple(items),
    )
