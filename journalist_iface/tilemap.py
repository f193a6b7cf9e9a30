"""The province map of the dashboards, as the template draws it: inline SVG tiles, one per
province, on the grid of :mod:`wbs.provinces` (a tile-grid cartogram, not a boundary map).

What the template needs beyond :class:`wbs.provinces.ProvinceMap`: where a tile goes, the CSS
class that colours it (the colours live in ``peluit.css``: the page has no style attribute), and
what its ``<title>`` says. Two maps: reports per province on a sequential scale of
:data:`wbs.provinces.CLASSES` classes, and the most frequent category per province on a
categorical palette (one colour per category code).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import format_decimal, gettext

from journalist_iface.labels import category_label
from wbs.domain import CATEGORY_LABELS
from wbs.monitoring import Dashboard
from wbs.provinces import (
    GRID_COLUMNS,
    GRID_ROWS,
    CountClass,
    ProvinceFigures,
    ProvinceMap,
    province_map,
    shade,
)

# SVG user units: a tile and the gap around it.
TILE = 40
GAP = 3


@dataclass(frozen=True)
class Tile:
    figures: ProvinceFigures
    x: int
    y: int
    size: int
    report_class: str
    category_class: str
    report_title: str
    category_title: str

    @property
    def label_x(self) -> float:
        return self.x + self.size / 2

    @property
    def label_y(self) -> float:
        return self.y + self.size / 2


@dataclass(frozen=True)
class MapView:
    figures: ProvinceMap
    tiles: tuple[Tile, ...]
    width: int
    height: int

    @property
    def legend(self) -> tuple[tuple[str, CountClass], ...]:
        """The scale's classes with their CSS class, lightest first."""
        classes = self.figures.classes
        return tuple((f"map-r{shade(classes, found.low)}", found) for found in classes)

    @property
    def has_empty(self) -> bool:
        """Some province has institutions but no report (the legend's "no report" swatch)."""
        return any(line.institutions and not line.reports for line in self.figures.provinces)


def _count(value: int) -> str:
    return str(format_decimal(value, format="#,##0"))


def class_range(found: CountClass) -> str:
    """A class of the scale as the legend shows it: "3" or "3" to "5" with an en dash."""
    if found.low == found.high:
        return _count(found.low)
    return f"{_count(found.low)}\u2013{_count(found.high)}"


def _report_class(pmap: ProvinceMap, line: ProvinceFigures) -> str:
    if not line.institutions:
        return "map-none"
    found = pmap.shade(line.reports)
    return "map-zero" if found is None else f"map-r{found}"


def category_class(code: str) -> str:
    """Every category code of :data:`wbs.domain.CATEGORY_LABELS` has a colour in peluit.css;
    a code added later shares one grey until it is given its own."""
    return f"map-k-{code}" if code in CATEGORY_LABELS else "map-k-other"


def _category_class(line: ProvinceFigures) -> str:
    if not line.institutions:
        return "map-none"
    if line.prone_category is None:
        return "map-zero"
    return category_class(line.prone_category)


def _report_title(line: ProvinceFigures) -> str:
    name = line.province.name
    if not line.institutions:
        return str(gettext("%(province)s. No connected institution.", province=name))
    return str(gettext("%(province)s. Reports: %(reports)s. Institutions: %(institutions)s.",
                   province=name, reports=_count(line.reports),
                   institutions=_count(line.institutions)))


def _category_title(line: ProvinceFigures) -> str:
    name = line.province.name
    if not line.institutions:
        return str(gettext("%(province)s. No connected institution.", province=name))
    if line.prone_category is None:
        return str(gettext("%(province)s. No report.", province=name))
    return str(gettext(
        "%(province)s. Most frequent category: %(category)s (%(count)s of %(reports)s reports).",
                   province=name, category=category_label(line.prone_category),
                   count=_count(line.prone_count), reports=_count(line.reports)))


def map_view(board: Dashboard) -> MapView:
    pmap = province_map(board)
    size = TILE - 2 * GAP
    tiles = tuple(
        Tile(
            figures=line,
            x=line.province.column * TILE + GAP,
            y=line.province.row * TILE + GAP,
            size=size,
            report_class=_report_class(pmap, line),
            category_class=_category_class(line),
            report_title=_report_title(line),
            category_title=_category_title(line),
        )
        for line in pmap.provinces
    )
    return MapView(pmap, tiles, GRID_COLUMNS * TILE, GRID_ROWS * TILE)
