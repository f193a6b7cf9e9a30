"""The 38 provinces, a tenant's free-text province matched to one, and a dashboard's figures
summed per province (the province map)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import Counter, defaultdict

import pytest

from wbs.domain import CATEGORY_LABELS, TenantKind
from wbs.monitoring import Dashboard, TenantFigures
from wbs.provinces import (
    GRID_COLUMNS,
    GRID_ROWS,
    PROVINCES,
    CountClass,
    Unplaced,
    match_province,
    province_map,
    report_classes,
    shade,
)

# --- the table ---------------------------------------------------------------------------------


def test_there_are_38_provinces_each_with_its_own_code_name_label_and_tile() -> None:
    assert len(PROVINCES) == 38
    for attribute in ("code", "name", "label"):
        values = [getattr(province, attribute) for province in PROVINCES]
        assert len(set(values)) == 38, attribute
    cells = [(province.column, province.row) for province in PROVINCES]
    assert len(set(cells)) == 38  # no two tiles on one cell
    for province in PROVINCES:
        assert province.code.isdigit() and len(province.code) == 2
        assert province.label.isalpha() and province.label.isupper()
        assert 2 <= len(province.label) <= 4
        assert 0 <= province.column < GRID_COLUMNS and 0 <= province.row < GRID_ROWS
    # Code order, the order the tables list them in.
    assert [province.code for province in PROVINCES] == sorted(p.code for p in PROVINCES)


def test_the_provinces_of_2022_are_there_with_kemendagri_codes() -> None:
    codes = {province.name: province.code for province in PROVINCES}
    assert codes["Aceh"] == "11"
    assert codes["Sumatera Selatan"] == "16"
    assert codes["DKI Jakarta"] == "31"
    assert codes["Kalimantan Utara"] == "65"
    assert codes["Papua"] == "91"
    assert codes["Papua Barat"] == "92"
    assert codes["Papua Selatan"] == "93"
    assert codes["Papua Tengah"] == "94"
    assert codes["Papua Pegunungan"] == "95"
    assert codes["Papua Barat Daya"] == "96"


def _at(name: str) -> tuple[int, int]:
    province = match_province(name)
    assert province is not None
    return province.column, province.row


def test_the_grid_reads_as_indonesia() -> None:
    # West to east: Sumatra, Java, Kalimantan, Sulawesi, Maluku, Papua.
    assert _at("Aceh")[0] < _at("Jawa Barat")[0] < _at("Jawa Timur")[0] < _at("Bali")[0]
    assert _at("Kalimantan Barat")[0] < _at("Sulawesi Tengah")[0] < _at("Maluku")[0]
    assert _at("Maluku")[0] < _at("Papua Barat Daya")[0] < _at("Papua")[0]
    # North to south: Kalimantan above Java, DKI Jakarta on Java's north coast, DIY south.
    assert _at("Kalimantan Tengah")[1] < _at("Jawa Tengah")[1] < _at("DI Yogyakarta")[1]
    assert _at("DKI Jakarta")[1] < _at("Jawa Barat")[1]
    assert _at("Sulawesi Utara")[1] < _at("Sulawesi Selatan")[1]
    assert _at("Papua")[1] < _at("Papua Selatan")[1]


# --- matching a tenant's province ---------------------------------------------------------------


def test_every_name_and_alias_resolves_to_its_province_and_no_alias_is_shared() -> None:
    seen: dict[str, str] = {}
    for province in PROVINCES:
        for name in (province.name, *province.aliases):
            assert match_province(name) is province, name
            key = " ".join(name.casefold().split())
            assert seen.setdefault(key, province.code) == province.code, name


@pytest.mark.parametrize(("typed", "code"), [
    ("DKI Jakarta", "31"), ("Jakarta", "31"), ("  jakarta ", "31"), ("D.K.I. Jakarta", "31"),
    ("Daerah Khusus Ibukota Jakarta", "31"), ("DI Yogyakarta", "34"), ("Yogyakarta", "34"),
    ("Daerah Istimewa Yogyakarta", "34"), ("D.I. Yogyakarta", "34"), ("DIY", "34"),
    ("Kepulauan Bangka Belitung", "19"), ("Bangka Belitung", "19"), ("NTB", "52"),
    ("Nusa Tenggara Barat", "52"), ("NTT", "53"), ("Kepri", "21"), ("KEPULAUAN RIAU", "21"),
    ("Provinsi Sumatera Selatan", "16"), ("Prov. Jawa Barat", "32"), ("jawa\tbarat", "32"),
    ("Sumatra Utara", "12"), ("Papua Barat Daya", "96"), ("papua   barat", "92"),
])
def test_a_typed_province_is_matched_whatever_its_case_and_spacing(typed: str, code: str) -> None:
    found = match_province(typed)
    assert found is not None and found.code == code


@pytest.mark.parametrize("typed", [None, "", "  ", "Atlantis", "Jawa", "Papua Utara", "Sumatera"])
def test_an_unknown_name_matches_nothing(typed: str | None) -> None:
    assert match_province(typed) is None


# --- the scale ----------------------------------------------------------------------------------


def test_report_classes_cover_one_to_the_largest_without_gaps() -> None:
    assert report_classes([]) == ()
    assert report_classes([0, 0]) == ()
    assert report_classes([0, 3, 1]) == (CountClass(1, 1), CountClass(2, 2), CountClass(3, 3))
    assert report_classes([7, 2]) == (CountClass(1, 2), CountClass(3, 3), CountClass(4, 5),
                                      CountClass(6, 6), CountClass(7, 7))
    for largest in range(1, 300):
        classes = report_classes([largest])
        assert classes[0].low == 1 and classes[-1].high == largest
        assert len(classes) == min(largest, 5)
        for before, after in itertools.pairwise(classes):
            assert before.low <= before.high and after.low == before.high + 1
        # The most reports are the darkest shade; a class darker than the one before.
        assert shade(classes, 0) is None
        assert shade(classes, largest) == 5
        shades = [shade(classes, count) for count in range(1, largest + 1)]
        assert shades == sorted(shades) and len(set(shades)) == len(classes)


# --- the figures per province -------------------------------------------------------------------

TODAY = dt.date(2026, 11, 2)
NAMES = ["Sumatera Selatan", "sumsel", "Jawa Barat", "DKI Jakarta", "Jakarta", "Bali", None,
         "", "Atlantis", "Papua Tengah", "Provinsi Jawa Barat", "Negeri Antah"]


def _board(tenants: list[TenantFigures], pairs: list[tuple[int, str, int]]) -> Dashboard:
    # The dashboard gives the categories per province as entered (summed in the database).
    province_of = {line.tenant_id: line.province for line in tenants}
    per_province: Counter[tuple[str | None, str]] = Counter()
    for tenant_id, code, n in pairs:
        per_province[province_of[tenant_id], code] += n
    return Dashboard(
        today=TODAY, tenant_id=None, total=sum(line.total for line in tenants), open=0,
        by_status=(), by_category=(), by_mcp_area=(), without_mcp_area=0,
        tenants=tuple(tenants), overdue_first_response=0, overdue_closure=0, responded=0,
        median_first_response_days=None, median_first_response_working_days=None,
        by_province_category=tuple(
            (name, code, n) for (name, code), n in per_province.items()),
    )


def _random_board(seed: int) -> tuple[Dashboard, list[tuple[int, str, int]]]:
    rng = random.Random(seed)
    categories = sorted(CATEGORY_LABELS)[:4]
    tenants, pairs = [], []
    for tenant_id in range(1, rng.randint(1, 25)):
        per_category = {code: rng.choice([0, 0, 1, 2, 3]) for code in categories}
        pairs += [(tenant_id, code, n) for code, n in per_category.items() if n]
        tenants.append(TenantFigures(
            tenant_id=tenant_id, slug=f"t{tenant_id}", name=f"T{tenant_id}",
            kind=TenantKind.PEMERINTAH_KOTA, total=sum(per_category.values()), open=0,
            overdue_first_response=0, overdue_closure=0, province=rng.choice(NAMES),
        ))
    return _board(tenants, pairs), pairs


@pytest.mark.parametrize("seed", range(40))
def test_province_map_agrees_with_a_brute_force_count(seed: int) -> None:
    board, pairs = _random_board(seed)
    found = province_map(board)
    assert [line.province for line in found.provinces] == list(PROVINCES)
    # Brute force: each tenant's province by hand, then count.
    by_hand = {"Sumatera Selatan": "16", "sumsel": "16", "Jawa Barat": "32",
               "Provinsi Jawa Barat": "32", "DKI Jakarta": "31", "Jakarta": "31", "Bali": "51",
               "Papua Tengah": "94"}
    for line in found.provinces:
        mine = [t for t in board.tenants if by_hand.get(t.province or "") == line.province.code]
        ids = {t.tenant_id for t in mine}
        assert line.institutions == len(mine)
        assert line.reports == sum(t.total for t in mine)
        tally: defaultdict[str, int] = defaultdict(int)
        for tenant_id, code, n in pairs:
            if tenant_id in ids:
                tally[code] += n
        if line.reports:
            best = max(tally.values())
            assert line.prone_count == best
            assert line.prone_category == min(code for code, n in tally.items() if n == best)
        else:
            assert (line.prone_category, line.prone_count) == (None, 0)
    # Nothing dropped: every tenant's reports are on the map or counted apart.
    placed = sum(line.reports for line in found.provinces)
    apart = sum(line.reports for line in found.unplaced)
    assert placed + apart == board.total
    unknown = Counter(t.province for t in board.tenants
                      if t.province in ("Atlantis", "Negeri Antah"))
    assert {line.name: line.institutions for line in found.unmatched} == dict(unknown)
    without = [t for t in board.tenants if not t.province]
    if without:
        assert found.unplaced[-1] == Unplaced(None, len(without), sum(t.total for t in without))
    else:
        assert all(line.name is not None for line in found.unplaced)


def test_a_tie_between_categories_goes_to_the_first_code() -> None:
    tenants = [TenantFigures(1, "a", "A", TenantKind.PEMERINTAH_KOTA, 4, 0, 0, 0,
                             province="Bali")]
    board = _board(tenants, [(1, "suap_menyuap", 2), (1, "pemerasan", 2)])
    bali = next(line for line in province_map(board).provinces if line.province.code == "51")
    assert (bali.prone_category, bali.prone_count, bali.reports) == ("pemerasan", 2, 4)
    assert province_map(board).prone_categories == ("pemerasan",)
