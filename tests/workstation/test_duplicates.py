"""The duplicate finder on plain dicts, on a generated corpus, and through the CLI."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import DemoInstance
from tests.workstation.helpers import export, make_case, run, workstation_home
from workstation.corpus import generate_corpus
from workstation.duplicates import (
    find_duplicates,
    normalize_party,
    normalize_place,
    precision_recall,
)

BASE = {
    "apa": "Pengadaan alat kesehatan di rumah sakit daerah dimark up tiga kali lipat",
    "bagaimana": "Panitia lelang menerima fee sepuluh persen dari pemenang tender",
    "kronologi": "Pada bulan Maret pemenang tender menyerahkan uang tunai kepada ketua panitia "
    "di ruang rapat lantai dua disaksikan dua staf keuangan",
    "siapa": "Bapak H. Budi Santoso, S.E.",
    "dimana": "RSUD Kota Palembang",
}


def test_titles_and_fillers_do_not_matter() -> None:
    assert normalize_party("Bapak H. Budi Santoso, S.E.") == normalize_party("budi  santoso")
    assert normalize_place("di RSUD Kota Palembang") == normalize_place("RSUD kota palembang")


def test_reworded_report_is_found_with_reasons() -> None:
    reworded = dict(BASE, siapa="Budi Santoso", dimana="di RSUD Kota Palembang")
    reworded["kronologi"] = BASE["kronologi"].replace("Maret", "April")
    other = {
        "apa": "Pungutan liar pembuatan KTP",
        "bagaimana": "Petugas meminta uang",
        "kronologi": "Setiap pemohon diminta lima puluh ribu rupiah",
        "siapa": "Budi Santoso",
        "dimana": "Kantor Camat",
    }
    pairs = find_duplicates({"a": BASE, "b": reworded, "c": other}, threshold=0.5)
    assert [(p.first, p.second) for p in pairs] == [("a", "b")]
    reasons = " ".join(pairs[0].reasons)
    assert "similar text" in reasons and "same terlapor" in reasons and "same place" in reasons


def test_same_terlapor_alone_is_not_a_duplicate() -> None:
    other = dict(BASE, apa="x y z", bagaimana="lain sama sekali", kronologi="tidak ada hubungan")
    assert find_duplicates({"a": BASE, "b": other}, threshold=0.5) == []


def test_generated_corpus_precision_and_recall() -> None:
    corpus = generate_corpus(1500, seed=11)
    found = find_duplicates(corpus.reports, threshold=0.5)
    precision, recall = precision_recall(
        [(p.first, p.second) for p in found], corpus.duplicate_pairs
    )
    assert len(corpus.duplicate_pairs) > 100
    assert precision >= 0.95, precision
    assert recall >= 0.9, recall


def test_cli_finds_duplicates_across_cases(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    first = make_case(demo, big_size=10)
    second = make_case(demo, big_size=10, siapa="Ahmad Fauzi")
    third = make_case(
        demo, big_size=10, apa="Pungli KTP", bagaimana="minta uang", kronologi="tiap pemohon",
        siapa="Camat", dimana="Kecamatan",
    )
    home = workstation_home(demo, ws_home)
    bundle = export(demo, [first.case_id, second.case_id, third.case_id], tmp_path / "b.zip")
    assert run(home, "import", str(bundle)).exit_code == 0
    for loop in (first, second, third):
        assert run(home, "decrypt", loop.registration_number).exit_code == 0
    result = run(home, "duplicates", "--threshold", "0.5")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "pemprov-sumsel/" in line]
    assert len(lines) == 1
    assert first.registration_number in lines[0] and second.registration_number in lines[0]
    # Scored by the sketches' parts: the terlapor's part matched.
    assert "siapa 1.00" in lines[0]
