"""Decrypting an imported case into its folder, and reading back what it says.

A padded item (``padme/1``, as the signed manifest says) decrypts to its data, zero padding and
a trailer (:mod:`crypto.padding`); the trailer is checked and the file cut down to the data
before it gets its name, so what lands in ``decrypted/`` is byte for byte what the pelapor sent.
An item whose frame does not hold is refused on its own: its file is removed, the other items
are decrypted, and the refusal is reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto.padding import FRAMING_PADME, PaddingError, unframe_file
from workstation.gpg import PassphraseNeeded, ProgressCallback, WorkstationGpg
from workstation.names import place_without_overwrite, safe_filename
from workstation.store import CaseRecord, ItemRecord, State, Workstation

REPORT_FORMAT = "peluit-report/1"
REPORT_FIELDS = (
    "category", "mcp_area", "apa", "siapa", "kapan", "dimana", "bagaimana", "berapa", "kronologi",
    # The jurisdiction hint's two coarse answers (codes; older forms have neither).
    "pejabat", "nilai",
)
CHOICE_FIELDS = ("pejabat", "nilai")
# Forms, messages and replies are read into memory to be shown; nothing honest is this big.
_MAX_TEXT_BYTES = 16 * 1024 * 1024

PassphraseSource = Callable[[], str]
ProgressFactory = Callable[[ItemRecord], ProgressCallback | None]


@dataclass(frozen=True)
class Decrypted:
    """What one decryption run did: how many items it decrypted, and which it refused."""

    count: int
    refused: tuple[str, ...]  # one message per refused item, naming it


@dataclass(frozen=True)
class ShownItem:
    number: int
    item: ItemRecord
    text: str | None  # messages and replies
    answers: dict[str, str] | None  # the form
    # The decrypted file's size: the true one, which only exists here (the server and the
    # bundle know the padded ciphertext's only). None while not decrypted.
    size: int | None = None


def _fallback_name(number: int, kind: str) -> str:
    extension = {"form": "json", "file": "bin"}.get(kind, "txt")
    return f"{number:02d}-{kind}.{extension}"


def decrypt_case(
    ws: Workstation,
    gpg: WorkstationGpg,
    state: State,
    case: CaseRecord,
    passphrase: str | None = None,
    ask_passphrase: PassphraseSource | None = None,
    progress: ProgressFactory | None = None,
) -> Decrypted:
    """Decrypt every item not decrypted yet; save the state after each.

    Without a passphrase gpg uses cached or unprotected keys; when it needs one,
    ``ask_passphrase`` is called once and its answer used for the rest of the case. An item
    whose padding frame is malformed is refused and left undecrypted; the rest go on.
    """
    case_dir = ws.case_dir(case)
    out_dir = case_dir / "decrypted"
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    done = 0
    refused: list[str] = []
    for number, item in enumerate(case.ordered_items(), start=1):
        if item.decrypted is not None and (case_dir / item.decrypted).is_file():
            continue
        callback = progress(item) if progress is not None else None
        source = case_dir / item.file
        try:
            temp, embedded = gpg.decrypt_to_temp(source, out_dir, passphrase, callback)
        except PassphraseNeeded:
            if ask_passphrase is None or passphrase is not None:
                raise
            passphrase = ask_passphrase()
            temp, embedded = gpg.decrypt_to_temp(source, out_dir, passphrase, callback)
        if item.framing == FRAMING_PADME:
            try:
                embedded = unframe_file(temp).name
            except PaddingError as exc:
                temp.unlink(missing_ok=True)
                refused.append(f"item {number:02d} ({item.kind}) refused: {exc}")
                continue
        fallback = _fallback_name(number, item.kind)
        # Only attachments keep the pelapor's name; the others are ours to name.
        name = safe_filename(embedded, fallback) if item.kind == "file" else fallback
        final = place_without_overwrite(temp, out_dir, name)
        item.decrypted = str(final.relative_to(case_dir))
        item.embedded_name = embedded if item.kind == "file" else None
        state.cases[case.key] = case
        ws.save(state)
        done += 1
    return Decrypted(done, tuple(refused))


def _read_text(path: Path) -> str:
    with path.open("rb") as src:
        data = src.read(_MAX_TEXT_BYTES + 1)
    if len(data) > _MAX_TEXT_BYTES:
        return data[:_MAX_TEXT_BYTES].decode("utf-8", "replace") + "\n[... truncated ...]"
    return data.decode("utf-8", "replace")


def parse_report(text: str) -> dict[str, str]:
    """The form's answers as strings; an unexpected document is shown raw, never trusted."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        return {"kronologi": text, "_warning": "the form is not JSON; shown as text"}
    if not isinstance(data, dict):
        return {"kronologi": text, "_warning": "the form is not a JSON object; shown as text"}
    answers = {
        field: "" if data.get(field) is None else str(data.get(field)) for field in REPORT_FIELDS
    }
    if data.get("format") != REPORT_FORMAT:
        answers["_warning"] = f"unknown form format {str(data.get('format'))[:40]!r}"
    return answers


def shown_items(ws: Workstation, case: CaseRecord) -> list[ShownItem]:
    """What a decrypted case says, item by item, in time order."""
    case_dir = ws.case_dir(case)
    shown = []
    for number, item in enumerate(case.ordered_items(), start=1):
        text = answers = None
        size = None
        if item.decrypted is not None and (case_dir / item.decrypted).is_file():
            size = (case_dir / item.decrypted).stat().st_size
            if item.kind == "form":
                answers = parse_report(_read_text(case_dir / item.decrypted))
            elif item.kind in ("message", "reply"):
                text = _read_text(case_dir / item.decrypted)
        shown.append(ShownItem(number, item, text, answers, size))
    return shown


def case_answers(ws: Workstation, case: CaseRecord) -> dict[str, str] | None:
    """The first decrypted form of a case, or None."""
    for shown in shown_items(ws, case):
        if shown.answers is not None:
            return shown.answers
    return None
