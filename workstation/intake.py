"""Operator intake on the workstation: a report that arrived by WhatsApp, SMS, telephone,
letter, in person or e-mail, typed here and encrypted here into an intake package.

The package (``peluit-intake/1``, see ``docs/intake-package.md``) is a ZIP of stored entries:
``manifest.json`` (the coarse fields the server keeps for any case: tenant, channel, category,
MCP area, whether it goes to KPK, and each item's size and SHA-256) and the items, each an
OpenPGP message encrypted to the instansi's current recipient keys: ``items/01-form.gpg`` (the
answers, as the drop box's form document ``peluit-report/1``) and ``items/NN-file.gpg`` (the
attachments; their names travel inside the ciphertext). Carried by USB, an investigator uploads
it on the server, which checks it without decrypting and opens the case with a new codename.

Only ciphertext and those coarse fields leave the workstation; the typed text and the
attachments stay where they are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from crypto.encrypt import open_encryptor
from crypto.keyring import Keyring, normalize_fingerprint
from crypto.padding import FRAMING_PADME
from workstation.cases import CHOICE_FIELDS, REPORT_FIELDS, REPORT_FORMAT
from workstation.store import Workstation, WorkstationError

FORMAT = "peluit-intake/1"
# The forwarding package's detached signature over manifest.json (docs/forwarding.md).
MANIFEST_SIGNATURE = "manifest.json.sig"
# The server's list (wbs.domain.OPERATOR_CHANNELS); the server checks it again.
CHANNELS = ("whatsapp", "sms", "telepon", "surat", "langsung", "email")
MAX_FILES = 20
TEXT_FIELDS = tuple(
    field for field in REPORT_FIELDS if field not in ("category", "mcp_area", *CHOICE_FIELDS)
)
# Each answer at most this many characters, as on the drop box's form.
MAX_ANSWER_CHARACTERS = 20_000
_CHUNK = 1024 * 1024
# ZIP entries carry no time (as in export bundles): nothing says when the operator typed.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ZIP_MODE = 0o100600 << 16


@dataclass(frozen=True)
class IntakeReport:
    """What the operator recorded: the coarse fields and the answers, plaintext, here only."""

    tenant: str
    channel: str
    category: str
    mcp_area: str | None
    to_kpk: bool
    answers: Mapping[str, str]
    attachments: Sequence[Path] = ()

    def check(self) -> None:
        if self.channel not in CHANNELS:
            raise WorkstationError("channel must be one of " + ", ".join(CHANNELS))
        if not self.tenant or not self.category:
            raise WorkstationError("name the instansi (--tenant) and the category (--category)")
        unknown = set(self.answers) - set(TEXT_FIELDS)
        if unknown:
            raise WorkstationError("unknown answer field(s): " + ", ".join(sorted(unknown)))
        if not self.answers.get("apa", "").strip():
            raise WorkstationError("the answer 'apa' (what happened) is required")
        for field, text in self.answers.items():
            if len(text) > MAX_ANSWER_CHARACTERS:
                raise WorkstationError(f"{field}: at most {MAX_ANSWER_CHARACTERS} characters")
        if len(self.attachments) > MAX_FILES:
            raise WorkstationError(f"at most {MAX_FILES} attachments")
        for path in self.attachments:
            if not Path(path).is_file():
                raise WorkstationError(f"no such file: {path}")

    def document(self) -> bytes:
        """The form document, the same as the drop box's (``peluit-report/1``)."""
        fields = {field: self.answers.get(field, "") for field in TEXT_FIELDS}
        return json.dumps(
            {"format": REPORT_FORMAT, "category": self.category, "mcp_area": self.mcp_area,
             **fields},
            ensure_ascii=False, indent=2,
        ).encode("utf-8")


def encrypt_item(
    keyring: Keyring,
    recipients: Sequence[str],
    chunks: Iterable[bytes],
    filename: str | None,
    sink: BinaryIO,
    extra_recipient_files: Sequence[Path] = (),
) -> None:
    """Encrypt one item of a package into ``sink`` (a real file): the one place an intake
    (or forwarding) item is encrypted, so whatever the drop box's items get goes here too:
    padded inside the encryption like every stored item (:mod:`crypto.padding`), the server
    records it so. ``extra_recipient_files``: the pelapor's reply key, for a forwarded reply."""
    with open_encryptor(keyring, recipients, sink, filename,
                        extra_recipient_files=extra_recipient_files,
                        framing=FRAMING_PADME) as writer:
        for chunk in chunks:
            writer.write(chunk)


def _file_chunks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            yield chunk


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = _ZIP_MODE
    return info


def _add_file(archive: zipfile.ZipFile, name: str, path: Path) -> tuple[int, str]:
    """Copy ``path`` into the ZIP as ``name``; return its size and SHA-256."""
    digest, size = hashlib.sha256(), 0
    with archive.open(_zip_info(name), "w", force_zip64=True) as out:
        for chunk in _file_chunks(path):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


def write_package(
    ws: Workstation, report: IntakeReport, recipients: Sequence[str], output: Path | None = None
) -> Path:
    """Encrypt ``report`` to ``recipients`` and write its intake package; return its path.

    ``recipients`` are the fingerprints of the instansi's current keys (and KPK's when the
    report goes to KPK), as the server's intake page lists them: the server refuses a package
    encrypted to any other set. Nothing is left behind on failure but the plaintext the
    operator gave.
    """
    report.check()
    try:
        chosen = list(dict.fromkeys(normalize_fingerprint(fpr) for fpr in recipients))
    except ValueError as exc:
        raise WorkstationError(str(exc)) from exc
    if not chosen:
        raise WorkstationError(
            "name the instansi's current keys with --recipient FINGERPRINT "
            "(the server's intake page lists them)"
        )
    if output is None:
        ws.outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        output = ws.outbox / f"intake-{report.tenant}-{stamp}-{secrets.token_hex(3)}.zip"
    staging = Path(tempfile.mkdtemp(prefix=".intake-", dir=ws.home))
    try:
        items = _encrypt_items(ws, report, chosen, staging)
        manifest: dict[str, object] = {
            "format": FORMAT,
            "package_id": secrets.token_hex(16),
            "tenant": report.tenant,
            "channel": report.channel,
            "category": report.category,
            "mcp_area": report.mcp_area,
            "to_kpk": report.to_kpk,
        }
        save_package(output, items, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def save_package(
    output: Path,
    items: list[tuple[str, Path]],
    manifest: dict[str, object],
    sign: Callable[[bytes], bytes] | None = None,
) -> None:
    """Write the package to ``output``, a new file (0600; never over an existing one), synced
    to the disk before it is called done; on any failure no partial package is left (so a
    signature that cannot be made leaves no package either)."""
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            write_zip(out, items, manifest, sign)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        output.unlink(missing_ok=True)
        raise


def write_zip(
    out: BinaryIO,
    items: list[tuple[str, Path]],
    manifest: dict[str, object],
    sign: Callable[[bytes], bytes] | None = None,
) -> None:
    """The package: the items as ``items/NN-kind.gpg`` entries, then the manifest listing
    each with its kind, size and SHA-256 (also the forwarding package's shape). With ``sign``,
    its detached signature over the exact manifest bytes follows as ``manifest.json.sig``
    (the forwarding package, ``docs/forwarding.md``)."""
    listed: list[dict[str, object]] = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, path in items:
            size, sha256 = _add_file(archive, name, path)
            kind = name.rsplit("-", 1)[1].removesuffix(".gpg")
            listed.append({"path": name, "kind": kind, "size": size, "sha256": sha256})
        # Last: it needs the items' hashes (the reader looks it up by name).
        document = json.dumps(
            {**manifest, "items": listed}, ensure_ascii=False, indent=2
        ).encode()
        archive.writestr(_zip_info("manifest.json"), document)
        if sign is not None:
            archive.writestr(_zip_info(MANIFEST_SIGNATURE), sign(document))


def _encrypt_items(
    ws: Workstation, report: IntakeReport, recipients: Sequence[str], staging: Path
) -> list[tuple[str, Path]]:
    """Every item's ciphertext in ``staging``, as (name in the package, file)."""
    items: list[tuple[str, Path]] = []
    with Keyring(ws.gnupg_home, ws.gpg_binary) as keyring:
        sources: list[tuple[Iterable[bytes], str | None]] = [
            ([report.document()], "laporan.json")
        ]
        sources += [(_file_chunks(Path(path)), Path(path).name) for path in report.attachments]
        for number, (chunks, filename) in enumerate(sources, start=1):
            kind = "form" if number == 1 else "file"
            target = staging / f"{number:02d}-{kind}.gpg"
            with target.open("wb") as sink:
                encrypt_item(keyring, recipients, chunks, filename, sink)
            items.append((f"items/{number:02d}-{kind}.gpg", target))
    return items
