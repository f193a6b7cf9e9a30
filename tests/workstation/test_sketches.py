"""Keyed similarity sketches: normalisation, scores of reworded and unrelated reports, the
key, and the export through the CLI (numbers and signatures, never text)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crypto.sketches import THRESHOLD, parse_document, score, similar_pairs
from tests.conftest import DemoInstance
from tests.workstation.helpers import export, make_case, run, workstation_home
from workstation.incidents import amount_text, generate_incidents
from workstation.sketches import (
    key_id,
    normalize_text,
    parse_key_file,
    period_tokens,
    signatures,
)

KEY = bytes(range(32))

ORIGINAL = {
    "apa": "Kepala Dinas meminta fee proyek pembangunan jembatan gantung kepada kontraktor.",
    "siapa": "Bapak Ir. Hendra Siregar, M.M., Kepala Dinas PU",
    "kapan": "Maret 2025",
    "dimana": "Dinas Pekerjaan Umum Kota Prabumulih",
    "bagaimana": "Uang fee sebesar Rp 1,5 miliar diserahkan tunai di rumah makan dekat kantor. "
    "Kontraktor yang menolak tidak mendapat pekerjaan.",
    "berapa": "Rp 1,5 miliar",
    "kronologi": "Pada awal Maret 2025 kontraktor CV Karya Mandiri dipanggil ke ruang kepala "
    "dinas dan diminta menyetor fee sepuluh persen sebelum kontrak ditandatangani.",
}
# The same affair told by another pelapor: other words, another order, the amount in words,
# the name with other titles, an extra sentence of their own.
REWORDED = {
    "apa": "Pimpinan dinas menuntut setoran dari penyedia jasa untuk paket pekerjaan jembatan "
    "gantung. Saya takut melapor dengan nama sendiri.",
    "siapa": "Hendra Siregar",
    "kapan": "03/2025",
    "dimana": "di kantor dinas pekerjaan umum kota prabumulih",
    "bagaimana": "CV Karya Mandiri dipanggil ke ruang kepala dinas dan harus menyetor sepuluh "
    "persen sebelum kontrak ditandatangani.",
    "berapa": "satu setengah miliar rupiah",
    "kronologi": "Dana diberikan dalam amplop di sebuah rumah makan dekat kantor; penyedia yang "
    "menolak tidak diberi proyek.",
}
# Another affair of the same official at the same office: another modus, amount and period.
UNRELATED = {
    "apa": "Perjalanan dinas fiktif ke Jakarta dibuat dengan tiket pesawat palsu.",
    "siapa": "Hendra Siregar, Kepala Dinas PU",
    "kapan": "Oktober 2023",
    "dimana": "Dinas Pekerjaan Umum Kota Prabumulih",
    "bagaimana": "Bendahara menyusun kuitansi hotel sendiri dan daftar hadir dipalsukan.",
    "berapa": "Rp 75.000.000",
    "kronologi": "Sebanyak dua belas pegawai tercatat berangkat padahal tetap di kantor.",
}


@pytest.mark.parametrize(
    "written",
    [
        "Rp 1,5 miliar", "Rp1.500.000.000", "Rp 1.500.000.000,-", "satu setengah miliar rupiah",
        "1.500 juta", "Rp1,5 M", "sebesar 1,5 milyar",
    ],
)
def test_amounts_written_any_way_become_one_token(written: str) -> None:
    assert normalize_text(written) == ["rp1500000000"]


def test_amounts_in_words_and_bare_numbers() -> None:
    assert normalize_text("dua ratus lima puluh juta") == ["rp250000000"]
    assert normalize_text("sebelas juta rupiah") == ["rp11000000"]
    # Close figures meet (two significant digits); a year or a count is not money.
    assert normalize_text("Rp148,5 juta") == normalize_text("Rp 150 juta")
    assert normalize_text("tahun 2025 ada 3 orang") == ["tahun", "2025", "3", "orang"]


@pytest.mark.parametrize("amount", [25_000_000, 150_000_000, 1_500_000_000, 3_500_000_000])
def test_every_way_the_benchmark_writes_an_amount_reads_back(amount: int) -> None:
    tokens = {tuple(normalize_text(amount_text(amount, style))) for style in range(5)}
    assert tokens == {(f"rp{amount}",)}


def test_periods_and_function_words() -> None:
    assert period_tokens("Maret 2025") == period_tokens("03/2025") == {"y:2025", "m:2025-03"}
    assert normalize_text("Uang itu diserahkan kepada dia, di kantor!") == [
        "uang", "diserahkan", "kantor"
    ]


def test_reworded_report_scores_above_the_threshold_and_unrelated_below() -> None:
    original, reworded, unrelated = (
        signatures(KEY, answers) for answers in (ORIGINAL, REWORDED, UNRELATED)
    )
    assert score(original, reworded) >= THRESHOLD
    assert score(original, unrelated) < THRESHOLD
    assert score(reworded, unrelated) < THRESHOLD
    pairs = similar_pairs([original, unrelated, reworded])
    assert [(i, j) for i, j, _ in pairs] == [(0, 2)]


def test_the_key_changes_every_signature() -> None:
    other = bytes(reversed(range(32)))
    with_key, again, with_other = (
        signatures(key, ORIGINAL) for key in (KEY, KEY, other)
    )
    assert with_key == again
    for part in with_key:
        assert with_key[part] != with_other[part]
    # Sketches of one report under two keys look unrelated: the key is what makes them meet.
    assert score(with_key, with_other) < 0.2
    assert key_id(KEY) != key_id(other)
    assert re.fullmatch(r"[0-9a-f]{16}", key_id(KEY))


def test_an_empty_field_is_an_empty_signature() -> None:
    sketch = signatures(KEY, dict(ORIGINAL, berapa="", kapan=""))
    assert sketch["kapan"] == ()
    # The amount comes from the narrative when the berapa field is empty.
    assert sketch["berapa"] == signatures(KEY, ORIGINAL)["berapa"]


def test_generated_reworded_reports_precision_and_recall() -> None:
    corpus = generate_incidents(400, seed=3)
    ids = sorted(corpus.reports)
    sketches = [signatures(KEY, corpus.reports[rid]) for rid in ids]
    found = {(ids[i], ids[j]) for i, j, _ in similar_pairs(sketches)}
    hits = len(found & corpus.duplicate_pairs)
    assert len(corpus.duplicate_pairs) > 50
    assert hits / len(found) >= 0.95
    assert hits / len(corpus.duplicate_pairs) >= 0.9


def test_key_file_refusals(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a sketch key file"):
        parse_key_file("hello\n00\n")
    with pytest.raises(ValueError, match="32 bytes"):
        parse_key_file("peluit-sketch-key/1\nabcd\n")
    assert parse_key_file(f"peluit-sketch-key/1\n{KEY.hex()}\n") == KEY


def test_cli_key_and_export_hold_no_text(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    first = make_case(demo, big_size=10)
    second = make_case(demo, big_size=10, siapa="Ahmad Fauzi")
    home = workstation_home(demo, ws_home)
    bundle = export(demo, [first.case_id, second.case_id], tmp_path / "b.zip")
    assert run(home, "import", str(bundle)).exit_code == 0
    for loop in (first, second):
        assert run(home, "decrypt", loop.registration_number).exit_code == 0

    out = tmp_path / "sketches.json"
    refused = run(home, "sketches", "export", "--output", str(out))
    assert refused.exit_code == 1 and "no sketch key" in refused.output
    assert not out.exists()

    key_file = tmp_path / "kpk.key"
    made = run(home, "sketch-key", "generate", "--output", str(key_file))
    assert made.exit_code == 0, made.output
    assert key_file.stat().st_mode & 0o077 == 0
    again = run(home, "sketch-key", "generate", "--output", str(tmp_path / "k2"))
    assert again.exit_code == 1 and "already has a sketch key" in again.output

    result = run(home, "sketches", "export", "--output", str(out), "--tenant", "pemprov-sumsel")
    assert result.exit_code == 0, result.output
    raw = out.read_text(encoding="ascii")
    document = parse_document(json.loads(raw))
    assert document.key_id == key_id(parse_key_file(key_file.read_text()))
    assert {s.registration_number for s in document.sketches} == {
        first.registration_number, second.registration_number
    }
    # Nothing of the report travels: no word of any answer, only digits and the format's names.
    for word in ("Ahmad", "Fauzi", "Dinas", "Kesehatan", "kontrak", "Maret", "fee", "juta"):
        assert word.lower() not in raw.lower()
    assert set(re.findall(r"[a-z_]+", raw)) <= {
        "format", "peluit", "sketches", "key_id", "registration_number", "signatures",
        "text", "siapa", "dimana", "berapa", "kapan", "pemprov", "sumsel",
    } | set(re.findall(r"[a-z_]+", document.key_id)) | set(
        re.findall(r"[a-z_]+", " ".join(s.registration_number for s in document.sketches))
    )

    # Another workstation with the same key makes the same sketches.
    other_home = tmp_path / "other"
    imported = run(other_home, "sketch-key", "import", str(key_file))
    assert imported.exit_code == 0 and document.key_id in imported.output

    pairs = run(home, "duplicates")
    assert pairs.exit_code == 0, pairs.output
    lines = [line for line in pairs.output.splitlines() if "pemprov-sumsel/" in line]
    assert len(lines) == 1 and "siapa 1.00" in lines[0]

    nothing = run(home, "sketches", "export", "--output", str(out), "--tenant", "nope")
    assert nothing.exit_code == 1 and "no decrypted case" in nothing.output
