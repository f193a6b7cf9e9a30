"""Replies written on the workstation, encrypted before they leave it.

A reply is encrypted to the pelapor's reply key (shipped in the bundle) and to the instansi's
own keys, so the case history stays readable here; only the ciphertext goes to the outbox, to
be carried back and uploaded as a pre-encrypted reply. The plaintext is never written to disk
by this module.

The reply is padded inside the encryption exactly as the server pads its own
(:mod:`crypto.padding`): the server records every uploaded reply as padded, its stored size is
a bucket's, and the pelapor's reply page strips the frame.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

from crypto.keyring import Keyring, normalize_fingerprint
from crypto.padding import FRAMING_PADME
from crypto.replykeys import encrypt_reply
from workstation.gpg import WorkstationGpg, primaries_for_key_ids, recipients_of
from workstation.store import CaseRecord, Workstation, WorkstationError

MAX_REPLY_BYTES = 256 * 1024


def tenant_recipients(ws: Workstation, gpg: WorkstationGpg, case: CaseRecord) -> list[str]:
    """The instansi's keys on this workstation: those the pelapor's items were encrypted to."""
    key_ids: list[str] = []
    for item in case.ordered_items():
        if item.kind != "reply":
            key_ids += recipients_of(gpg, ws.case_dir(case) / item.file)
    return primaries_for_key_ids(gpg, key_ids)


def keys_not_here(ws: Workstation, gpg: WorkstationGpg, case: CaseRecord) -> list[str]:
    """Key ids the pelapor's newest item is encrypted to that no key on this workstation owns.

    The newest item was encrypted to the keys current when it arrived: for a case shared with
    KPK those are KPK's too, which the server requires of a reply as well. The workstation
    never takes a recipient from the server's word (a bundle), only from its own keyring, so
    KPK's public key must be imported here (checked out of band) before replying.
    """
    sent = [item for item in case.ordered_items() if item.kind != "reply"]
    if not sent:
        return []
    key_ids = recipients_of(gpg, ws.case_dir(case) / sent[-1].file)
    return [key for key in key_ids if not primaries_for_key_ids(gpg, [key])]


def write_reply(
    ws: Workstation,
    case: CaseRecord,
    text: str,
    recipients: Sequence[str] = (),
) -> Path:
    """Encrypt ``text`` as a reply to ``case``; return the ciphertext file in the outbox."""
    plaintext = text.encode("utf-8")
    if not text.strip():
        raise WorkstationError("the reply is empty")
    if len(plaintext) > MAX_REPLY_BYTES:
        raise WorkstationError(f"a reply is at most {MAX_REPLY_BYTES // 1024} KiB")
    gpg = WorkstationGpg(ws.gnupg_home, ws.gpg_binary)
    try:
        chosen = [normalize_fingerprint(fpr) for fpr in recipients]
    except ValueError as exc:
        raise WorkstationError(str(exc)) from exc
    if not chosen:
        chosen = tenant_recipients(ws, gpg, case)
        missing = keys_not_here(ws, gpg, case) if case.meta.get("sent_to_kpk") else []
        if missing:
            # Refused here, not by the server after a trip back: the reply would lack KPK.
            raise WorkstationError(
                f"{case.registration_number} is shared with KPK, and its newest item is also "
                f"encrypted to key(s) {', '.join(missing)} that are not on this workstation "
                "(KPK's, or another key of the instansi): the server refuses a reply without "
                "them. Import KPK's public key (peluit-workstation keys import FILE; compare "
                "its fingerprint out of band) and reply again, or name the keys with "
                "--recipient"
            )
    if not chosen:
        raise WorkstationError(
            "none of the keys this case is encrypted to is on this workstation; "
            "name the instansi's keys with --recipient FINGERPRINT"
        )
    key_file = ws.case_dir(case) / "reply-key.asc"
    reply_key = key_file.read_text(encoding="ascii")
    with Keyring(ws.gnupg_home, ws.gpg_binary) as keyring:
        ciphertext = encrypt_reply(keyring, chosen, reply_key, plaintext, framing=FRAMING_PADME)
    ws.outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = ws.outbox / f"{case.registration_number}-reply-{stamp}.gpg"
    number = 1
    while target.exists():
        number += 1
        target = ws.outbox / f"{case.registration_number}-reply-{stamp}-{number}.gpg"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(ciphertext)
    return target
