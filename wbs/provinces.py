"""Indonesia's 38 provinces, a tenant's free-text province matched to one, and the figures of a
dashboard summed per province for the province map (a tile-grid cartogram).

The map is a TILE GRID, not a boundary map: each province is one equal square placed roughly
where it lies (columns west to east, rows north to south), on a grid written out below by hand.
No third-party geodata is involved, so there is nothing to license or to keep in step: the
openly licensed boundary sets predate the 2022 split of Papua into six provinces, and the
current ones are not openly licensed. Equal tiles also suit what the map is for: DKI Jakarta
and DI Yogyakarta, which hold many institutions, would be a few pixels on a boundary map, and
Papua's provinces would cover half of it whatever their figures.

**The list must be updated when provinces change** (a new province is formed, one is renamed):
add it to :data:`PROVINCES` with its Kemendagri code, a free cell of the grid and any alias,
and the tests hold the table together (38 entries today, unique codes, labels and cells).

Codes are Kemendagri's kode wilayah, as updated after the 2022 laws forming the new Papua
provinces: 91 Papua, 92 Papua Barat, 93 Papua Selatan, 94 Papua Tengah, 95 Papua Pegunungan,
96 Papua Barat Daya. BPS numbers the Papua provinces differently (91 is Papua Barat there); the
other 32 codes are the same in both. Labels are the ISO 3166-2:ID subdivision codes without the
``ID-`` prefix: two letters that fit a tile, one official code per province.

A tenant's province is free text typed by an admin; :func:`match_province` reads it
case- and space-insensitively, without a leading "Provinsi", and knows the common short forms
(Jabar, Sumsel, DKI, DIY, NTB, Kepri...). A name it cannot place is never dropped: the map
counts its reports apart, under the name as typed (:attr:`ProvinceMap.unmatched`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from wbs.monitoring import Dashboard


@dataclass(frozen=True)
class Province:
    code: str  # Kemendagri's two digits
    name: str  # as the rest of Peluit writes it (tenants, seeds, filters)
    label: str  # ISO 3166-2:ID without "ID-": the tile's text
    column: int  # west to east
    row: int  # north to south
    aliases: tuple[str, ...] = ()


PROVINCES: tuple[Province, ...] = (
    Province("11", "Aceh", "AC", 0, 0, ("Nanggroe Aceh Darussalam", "NAD", "Aceh Darussalam")),
    Province("12", "Sumatera Utara", "SU", 1, 0, ("Sumut", "Sumatra Utara")),
    Province("13", "Sumatera Barat", "SB", 1, 1, ("Sumbar", "Sumatra Barat")),
    Province("14", "Riau", "RI", 2, 1),
    Province("15", "Jambi", "JA", 2, 2),
    Province("16", "Sumatera Selatan", "SS", 2, 3, ("Sumsel", "Sumatra Selatan")),
    Province("17", "Bengkulu", "BE", 1, 2),
    Province("18", "Lampung", "LA", 2, 4),
    Province("19", "Kepulauan Bangka Belitung", "BB", 3, 3,
             ("Bangka Belitung", "Babel", "Kep. Bangka Belitung")),
    Province("21", "Kepulauan Riau", "KR", 3, 1, ("Kepri", "Kep. Riau")),
    Province("31", "DKI Jakarta", "JK", 4, 3,
             ("Jakarta", "DKI", "Daerah Khusus Ibukota Jakarta", "Daerah Khusus Ibu Kota Jakarta",
              "Daerah Khusus Jakarta", "DKJ")),
    Province("32", "Jawa Barat", "JB", 4, 4, ("Jabar",)),
    Province("33", "Jawa Tengah", "JT", 5, 4, ("Jateng",)),
    Province("34", "DI Yogyakarta", "YO", 5, 5,
             ("Daerah Istimewa Yogyakarta", "Yogyakarta", "DIY", "Jogja", "Jogjakarta")),
    Province("35", "Jawa Timur", "JI", 6, 4, ("Jatim",)),
    Province("36", "Banten", "BT", 3, 4),
    Province("51", "Bali", "BA", 7, 4),
    Province("52", "Nusa Tenggara Barat", "NB", 8, 4, ("NTB",)),
    Province("53", "Nusa Tenggara Timur", "NT", 9, 4, ("NTT",)),
    Province("61", "Kalimantan Barat", "KB", 6, 1, ("Kalbar",)),
    Province("62", "Kalimantan Tengah", "KT", 6, 2, ("Kalteng",)),
    Province("63", "Kalimantan Selatan", "KS", 7, 2, ("Kalsel",)),
    Province("64", "Kalimantan Timur", "KI", 7, 1, ("Kaltim",)),
    Province("65", "Kalimantan Utara", "KU", 7, 0, ("Kaltara",)),
    Province("71", "Sulawesi Utara", "SA", 10, 0, ("Sulut",)),
    Province("72", "Sulawesi Tengah", "ST", 9, 1, ("Sulteng",)),
    Province("73", "Sulawesi Selatan", "SN", 8, 3, ("Sulsel",)),
    Province("74", "Sulawesi Tenggara", "SG", 9, 3, ("Sultra",)),
    Province("75", "Gorontalo", "GO", 9, 0),
    Province("76", "Sulawesi Barat", "SR", 8, 2, ("Sulbar",)),
    Province("81", "Maluku", "MA", 11, 2),
    Province("82", "Maluku Utara", "MU", 11, 1, ("Malut",)),
    Province("91", "Papua", "PA", 14, 1),
    Province("92", "Papua Barat", "PB", 13, 1, ("Pabar",)),
    Province("93", "Papua Selatan", "PS", 14, 3),
    Province("94", "Papua Tengah", "PT", 13, 2),
    Province("95", "Papua Pegunungan", "PE", 14, 2),
    Province("96", "Papua Barat Daya", "PD", 12, 1),
)

GRID_COLUMNS = 1 + max(province.column for province in PROVINCES)
GRID_ROWS = 1 + max(province.row for province in PROVINCES)

_PREFIX = re.compile(r"^(?:provinsi|prov)\s+")


def _key(text: str) -> str:
    """Lower case, no dots ("D.K.I." is "DKI"), no commas, single spaces, no "Provinsi"."""
    folded = " ".join(text.replace(".", "").replace(",", " ").casefold().split())
    return _PREFIX.sub("", folded)


_BY_KEY: Mapping[str, Province] = {
    _key(name): province
    for province in PROVINCES
    for name in (province.name, *province.aliases)
}


def match_province(text: str | None) -> Province | None:
    """The province a tenant's free-text ``province`` names; None when it names none we know."""
    if text is None:
        return None
    return _BY_KEY.get(_key(text))


# --- the figures per province -----------------------------------------------------------------


@dataclass(frozen=True)
class ProvinceFigures:
    province: Province
    institutions: int
    reports: int
    # The most frequent category among the province's reports ("kategori rawan"), ties broken
    # by code; None without a report.
    prone_category: str | None
    prone_count: int


@dataclass(frozen=True)
class Unplaced:
    """The institutions whose province is missing (``name`` None) or matches none we know."""

    name: str | None
    institutions: int
    reports: int


@dataclass(frozen=True)
class CountClass:
    """One class of the report map's scale: ``low`` to ``high`` reports, both included."""

    low: int
    high: int


@dataclass(frozen=True)
class ProvinceMap:
    # Every province, in code order, zeros included.
    provinces: tuple[ProvinceFigures, ...]
    # Unknown names as typed (sorted), then the institutions without a province, if any.
    unplaced: tuple[Unplaced, ...]

    @property
    def unmatched(self) -> tuple[Unplaced, ...]:
        return tuple(line for line in self.unplaced if line.name is not None)

    @property
    def classes(self) -> tuple[CountClass, ...]:
        return report_classes(line.reports for line in self.provinces)

    def shade(self, reports: int) -> int | None:
        """The shade of a province with ``reports`` on this map (see :func:`shade`)."""
        return shade(self.classes, reports)

    @property
    def prone_categories(self) -> tuple[str, ...]:
        """The categories some province is prone to, by code: the category map's legend."""
        return tuple(sorted({
            line.prone_category for line in self.provinces if line.prone_category is not None
        }))


CLASSES = 5


def report_classes(counts: Iterable[int], classes: int = CLASSES) -> tuple[CountClass, ...]:
    """Equal-interval classes of whole reports from 1 to the largest count.

    Equal intervals read at a glance ("up to 40, up to 80...") and do not collapse when only a
    few provinces have reports, as quantiles would. When the largest count is at most
    ``classes``, each count from 1 to it is its own class.
    """
    largest = max(counts, default=0)
    if largest <= 0:
        return ()
    if largest <= classes:
        return tuple(CountClass(count, count) for count in range(1, largest + 1))
    found = []
    low = 1
    for index in range(1, classes + 1):
        high = -(-largest * index // classes)  # the ceiling, in integers
        found.append(CountClass(low, high))
        low = high + 1
    return tuple(found)


def shade(classes: tuple[CountClass, ...], reports: int) -> int | None:
    """The colour of ``reports``, 1 (lightest) to :data:`CLASSES` (darkest); None for no
    report. With fewer classes than colours (few reports), the darkest ones are used, so the
    province with the most reports is always the darkest tile."""
    for index, found in enumerate(classes):
        if found.low <= reports <= found.high:
            return CLASSES - len(classes) + index + 1
    return None


def province_map(board: Dashboard) -> ProvinceMap:
    """The dashboard's institutions and reports summed per province, with each province's most
    frequent category, and what could not be placed, counted apart."""
    institutions: Counter[str] = Counter()
    reports: Counter[str] = Counter()
    unplaced_institutions: Counter[str | None] = Counter()
    unplaced_reports: Counter[str | None] = Counter()
    for line in board.tenants:
        province = match_province(line.province)
        if province is None:
            name = line.province.strip() if line.province and line.province.strip() else None
            unplaced_institutions[name] += 1
            unplaced_reports[name] += line.total
        else:
            institutions[province.code] += 1
            reports[province.code] += line.total
    categories: dict[str, Counter[str]] = defaultdict(Counter)
    for name, category, count in board.by_province_category:
        province = match_province(name)
        if province is not None:
            categories[province.code][category] += count
    figures = []
    for province in PROVINCES:
        ranked = sorted(categories[province.code].items(), key=lambda item: (-item[1], item[0]))
        prone, prone_count = next(((code, n) for code, n in ranked if n > 0), (None, 0))
        figures.append(ProvinceFigures(province, institutions[province.code],
                                       reports[province.code], prone, prone_count))
    names = sorted(name for name in unplaced_institutions if name is not None)
    ordered: list[str | None] = [*names, *([None] if None in unplaced_institutions else [])]
    return ProvinceMap(
        provinces=tuple(figures),
        unplaced=tuple(
            Unplaced(name, unplaced_institutions[name], unplaced_reports[name])
            for name in ordered
        ),
    )
