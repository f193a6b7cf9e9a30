"""Padded items on the workstation, with real gpg: stripped byte for byte, a malformed frame
refused for its item alone, and items stored before padding existed read as they were."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from crypto.encrypt import encrypt_bytes
from crypto.padding import FRAMING_NONE, FRAMING_PADME, frame, framed_size
from tests.conftest import DemoInstance
from tests.workstation.helpers import (
    MESSAGE,
    REPLY,
    TENANT,
    export,
    make_case,
    run,
    workstation_home,
)
from wbs.models import Case, Submission
from wbs.tenants import current_recipients, get_tenant


def _state(home: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((home / "state.json").read_text(encoding="utf-8"))
    return state


def _replace_item(
    demo: DemoInstance, case_id: int, kind: str, plaintext: bytes, framing: str,
    filename: str | None = None,
) -> None:
    """Put another ciphertext in place of a stored item, as a forger (or an older server)
    could: encrypted without padding to the instansi's public keys, plaintext chosen here."""
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        case = session.get(Case, case_id)
        assert case is not None
        row = next(sub for sub in case.submissions if str(sub.kind) == kind)
        ciphertext = encrypt_bytes(
            inst.keyring, current_recipients(session, tenant), plaintext, filename,
            framing=FRAMING_NONE,
        )
        inst.store.resolve(row.store_path).write_bytes(ciphertext)
        row.size = len(ciphertext)
        row.framing = framing
        session.commit()


def test_padded_items_decrypt_byte_for_byte_and_show_their_true_size(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    loop = make_case(demo, big_size=1_234_567)
    home = workstation_home(demo, ws_home)
    assert run(home, "import", str(export(demo, [loop.case_id], tmp_path / "b.zip"))).exit_code == 0
    items = _state(home)["cases"][f"{TENANT}/{loop.registration_number}"]["items"]
    assert {item["framing"] for item in items} == {FRAMING_PADME}
    big = next(item for item in items if item["size"] > 1_000_000)
    # The server and the bundle know only the padded size ...
    assert big["size"] > framed_size(1_234_567) > 1_234_567
    decrypted = run(home, "decrypt", loop.registration_number)
    assert decrypted.exit_code == 0, decrypted.output
    case_dir = home / "cases" / TENANT / loop.registration_number
    # ... the decrypted file is exactly what the pelapor sent, under the name from the frame.
    assert (case_dir / "decrypted" / "passwd").read_bytes() == loop.files["big"]
    assert (case_dir / "decrypted" / "laporanfdp.exe").read_bytes() == loop.files["small"]
    page = (case_dir / "case.html").read_text(encoding="utf-8")
    assert "(1234567 byte)" in page and str(big["size"]) not in page
    items = _state(home)["cases"][f"{TENANT}/{loop.registration_number}"]["items"]
    # The names the pelapor's browser sent, as the server made them safe before framing.
    assert {item["embedded_name"] for item in items} == {"passwd", "laporanfdp.exe", None}


def test_a_malformed_frame_is_refused_for_its_item_alone(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    loop = make_case(demo, big_size=10)
    # A frame cut short (its last byte gone), then a frame whose padding is not zero.
    truncated = frame(b"isi berkas", "bukti.pdf")[:-1]
    _replace_item(demo, loop.case_id, "file", truncated, FRAMING_PADME)
    bad_padding = bytearray(frame(MESSAGE.encode()))
    bad_padding[len(MESSAGE.encode()) + 7] = 0x41
    _replace_item(demo, loop.case_id, "message", bytes(bad_padding), FRAMING_PADME)
    home = workstation_home(demo, ws_home)
    assert run(home, "import", str(export(demo, [loop.case_id], tmp_path / "b.zip"))).exit_code == 0

    result = run(home, "read", loop.registration_number)
    # One clear line per refused item, not a traceback; the rest of the case is readable.
    assert result.exit_code == 1 and result.exception is not None
    assert "Traceback" not in result.output
    assert "(file) refused: the padded item does not end with a padding trailer" in result.output
    assert "(message) refused: the padding of the item is not all zero bytes" in result.output
    # The readable items were shown first: the form's answers and the reply.
    assert "Bapak Ahmad Fauzi, S.E." in result.output and REPLY in result.output
    case_dir = home / "cases" / TENANT / loop.registration_number
    names = sorted(p.name for p in (case_dir / "decrypted").iterdir())
    # The form, the reply and the second file; not the two refused items, no partial file.
    assert len(names) == 3 and "laporanfdp.exe" in names, names
    assert sorted(name.split("-", 1)[-1] for name in names) == [
        "form.json", "laporanfdp.exe", "reply.txt"
    ], names
    items = _state(home)["cases"][f"{TENANT}/{loop.registration_number}"]["items"]
    assert sum(item["decrypted"] is None for item in items) == 2
    assert "belum didekripsi" in (case_dir / "case.html").read_text(encoding="utf-8")


def test_an_item_stored_before_padding_reads_as_it_was(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    loop = make_case(demo, big_size=10)
    old = os.urandom(5000)
    # Recorded as unpadded (migration 0011's default): its name is in the literal packet.
    _replace_item(demo, loop.case_id, "file", old, FRAMING_NONE, filename="lama.bin")
    with demo.instance.sessions() as session:
        framings = sorted(
            row.framing for row in session.query(Submission).filter_by(case_id=loop.case_id)
        )
    assert framings == [FRAMING_NONE, FRAMING_PADME, FRAMING_PADME, FRAMING_PADME]
    home = workstation_home(demo, ws_home)
    assert run(home, "import", str(export(demo, [loop.case_id], tmp_path / "b.zip"))).exit_code == 0
    result = run(home, "decrypt", loop.registration_number)
    assert result.exit_code == 0, result.output
    decrypted = home / "cases" / TENANT / loop.registration_number / "decrypted"
    assert (decrypted / "lama.bin").read_bytes() == old
