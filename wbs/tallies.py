"""Maintained tallies of cases: what the dashboards count, kept current by the database.

KPK's dashboard counts every connected institution's cases. Counting them at each view grows
with the number of cases (three index scans of every case at 100,000); the architecture's
budget is 50 ms at 100,000 cases and 100 ms at 1,000,000. So the database keeps the counts
itself: ``case_tallies`` holds, per *figure*, institution and month received, how many cases
have each value, and triggers on ``cases`` add and subtract as rows are inserted, updated and
deleted, in the same transaction as the change. Every writer is covered (the casework service,
forwarding, takeover, federation mirrors, retention, a migration's UPDATE, a bulk load), and a
view costs the same whatever the log did since the last one.

Each figure is kept per month, quarter and year received, and over every month (``grain``
m, q, y, a; ``month`` the period's first day, :data:`ALL_MONTHS` for every month), so a view
reads one row per institution and value for its period, whatever its length; and each is
kept for every case and again per category and per MCP area (:func:`facet`), so a view
narrowed to one of them reads only its own rows. The figures KPK's whole view shows without
an institution's breakdown are also summed over every institution (:data:`EVERY_INSTITUTION`).

The figures (``value`` is text):

* ``status``: ``<status>|<answer>``, answer ``met``/``late``/``none`` from
  ``first_response_in_time`` (the stored judgement of the first response);
* ``category``, ``area`` (``''`` where no MCP area is set), ``channel``;
* ``hint``: ``''``, the cases whose form points at KPK's jurisdiction;
* ``days`` and ``workdays``: the first response's delay, for the cases answered;
* ``answer``: the answer alone (the months' trend);
* ``frdue`` and ``frday``: the month (``YYYY-MM``) and the day (ISO) the first response is due,
  for open cases not answered yet;
* ``cldue`` and ``clday``: the same of the closure, for open cases with a closure due day;
* ``forwarded``, ``taken``, ``merged``, ``received``: ``''``, the cases forwarded to another
  institution, taken over by KPK, closed into a matter's lead, and received by forwarding or
  takeover.

The due figures are what today's overdue counts need, a due day before today: the cases due
in an earlier month, plus those due earlier this month (:func:`overdue_ranges`), so a view
reads a row per month and one per day of this month, not one per day of history. Nothing here holds
content, a source or an account: the same handling metadata the hub reads of ``cases``
(:data:`wbs.tenancy.HUB_READABLE`).

The triggers are generated from :data:`FIGURES` by :func:`install` (migration 0024). Changing
a figure, or :data:`~wbs.domain.OPEN_STATUSES`, needs a migration that calls :func:`install`
and :func:`refill` again. A SQLite migration that rebuilds ``cases`` (``batch_alter_table``)
drops its triggers with the old table: such a migration must install them again
(``tests/wbs/test_tallies.py`` checks they exist at head). In production, ``peluit doctor``
checks them (:func:`problems`) and ``peluit db tallies`` counts everything again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from wbs.domain import OPEN_STATUSES

# The month of the all-months rows.
ALL_MONTHS = dt.date(1, 1, 1)
# The grains of ``case_tallies.grain``: every month ('a', month ALL_MONTHS), and a month,
# a quarter, a year received ('m', 'q', 'y', month the period's first day).
EVERY_MONTH, MONTH, QUARTER, YEAR = "a", "m", "q", "y"


def grain_of(start: dt.date, end: dt.date) -> str | None:
    """The grain of a period from ``start`` (a first of month) to ``end`` (excluded): a
    month, a quarter or a year as the dashboards' filters name them; None for another."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if start.day != 1 or end.day != 1:
        return None
    if months == 1:
        return MONTH
    if months == 3 and start.month % 3 == 1:
        return QUARTER
    if months == 12 and start.month == 1:
        return YEAR
    return None


# The institution of the rows summed over every institution (no tenant has id 0).
EVERY_INSTITUTION = 0

# The columns of ``cases`` the figures read: an UPDATE of any other leaves the tallies alone.
WATCHED = (
    "tenant_id", "received_at", "status", "category", "mcp_area", "channel", "kpk_hint",
    "first_response_at", "first_response_in_time", "first_response_days",
    "first_response_workdays", "first_response_due", "closure_due", "linked_to_case_id",
    "linked_from_case_id", "taken_over_at", "merged_at",
)

# The SQL below is built from the constants of this module and wbs.domain, never from input.
_OPEN_VALUES = ", ".join(f"'{status.value}'" for status in sorted(OPEN_STATUSES))
_OPEN = "CAST({r}.status AS VARCHAR(32)) IN (" + _OPEN_VALUES + ")"
_OWING = "{r}.first_response_at IS NULL AND " + _OPEN
_CLOSING = "{r}.closure_due IS NOT NULL AND " + _OPEN
_ANSWER = (
    "CASE WHEN {r}.first_response_in_time IS NULL THEN 'none'"
    " WHEN {r}.first_response_in_time THEN 'met' ELSE 'late' END"
)


@dataclass(frozen=True)
class _Figure:
    name: str
    # SQL over a row named {r}; {day:column} and {month:column} are a date column as ISO
    # text (YYYY-MM-DD, YYYY-MM) in either dialect.
    value: str
    when: str | None = None
    # Kept per category and per MCP area (the facets 'c:' and 'a:') besides every case's:
    # not for the figure that names the facet itself (one value: the facet's total).
    facets: tuple[str, ...] = ("c", "a")
    # Kept per month in those facets too: the months' trend's figures only. The others, per
    # category or area, count every month (see facet()).
    monthly_in_facets: bool = False
    # Kept summed over every institution too (tenant_id EVERY_INSTITUTION): the figures KPK's
    # whole view shows without an institution's breakdown (its tables, the trend).
    across: bool = False


FIGURES: tuple[_Figure, ...] = (
    _Figure(
        "status",
        "CAST({r}.status AS VARCHAR(32)) || '|' || " + _ANSWER, across=True,
    ),
    _Figure("answer", _ANSWER, monthly_in_facets=True, across=True),
    _Figure("category", "{r}.category", facets=("a",)),
    _Figure("area", "COALESCE({r}.mcp_area, '')", facets=("c",), across=True),
    _Figure("channel", "CAST({r}.channel AS VARCHAR(32))", across=True),
    _Figure("hint", "''", "{r}.kpk_hint", across=True),
    _Figure(
        "days", "CAST({r}.first_response_days AS VARCHAR(12))",
        "{r}.first_response_days IS NOT NULL", across=True,
    ),
    _Figure(
        "workdays", "CAST({r}.first_response_workdays AS VARCHAR(12))",
        "{r}.first_response_workdays IS NOT NULL", across=True,
    ),
    # Open and owing a first response, by the month (YYYY-MM) and the day it is due.
    _Figure("frdue", "{month:first_response_due}", _OWING, monthly_in_facets=True, across=True),
    _Figure("frday", "{day:first_response_due}", _OWING, monthly_in_facets=True, across=True),
    # Open with a closure due, likewise.
    _Figure("cldue", "{month:closure_due}", _CLOSING),
    _Figure("clday", "{day:closure_due}", _CLOSING),
    # Handed on or in: forwarded to another institution (pelimpahan), taken over by KPK,
    # closed into a matter's lead, received by forwarding or takeover.
    _Figure("forwarded", "''", "{r}.linked_to_case_id IS NOT NULL AND {r}.taken_over_at IS NULL"),
    _Figure("taken", "''", "{r}.taken_over_at IS NOT NULL"),
    _Figure("merged", "''", "{r}.merged_at IS NOT NULL"),
    _Figure("received", "''", "{r}.linked_from_case_id IS NOT NULL"),
)


# Every figure is kept for all cases (facet ''), and for the cases of each category
# ('c:<code>') and of each MCP area ('a:<code>', 'a:' for none), so a view narrowed to one
# category or one area reads its own rows: per month, quarter and year for every case; for a
# category or an area, over every month and per quarter and year (per month only for the
# trend's figures). Kept per month in every facet, the tallies would hold nearly a row per
# case and figure where cases are spread thin (hundreds of institutions, a few cases each a
# month): a month of one category or area is counted from its cases instead.
_FACET_GRAINS = (EVERY_MONTH, QUARTER, YEAR)
_FACET_SQL = {"": "''", "c": "'c:' || {r}.category", "a": "'a:' || COALESCE({r}.mcp_area, '')"}


def facet(category: str | None, mcp_area: str | None, *, grain: str | None) -> str | None:
    """The facet that counts the cases of ``category`` or ``mcp_area`` (one, or neither) at
    the view's ``grain`` (None: a period of no grain); None where no tally counts them (both
    at once, or one in a single month): the view counts those cases' rows."""
    if category is None and mcp_area is None:
        return "" if grain is not None else None
    if category is not None and mcp_area is not None:
        return None
    if grain not in _FACET_GRAINS:
        return None
    return f"c:{category}" if category is not None else f"a:{mcp_area}"


class _Dialect:
    def __init__(self, name: str) -> None:
        if name not in ("sqlite", "postgresql"):
            raise ValueError(f"no tallies for the {name} dialect")
        self.name = name

    def period(self, row: str, grain: str) -> str:
        """The first day of the month, quarter or year ``row`` was received in."""
        # received_at holds day labels (midnight UTC of the WIB day): its UTC date's.
        if self.name == "sqlite":
            received = f"{row}.received_at"
            return {
                MONTH: f"date({received}, 'start of month')",
                QUARTER: f"date({received}, 'start of month', '-' ||"
                         f" ((CAST(strftime('%m', {received}) AS INTEGER) - 1) % 3)"
                         " || ' months')",
                YEAR: f"date({received}, 'start of year')",
            }[grain]
        unit = {MONTH: "month", QUARTER: "quarter", YEAR: "year"}[grain]
        return f"CAST(date_trunc('{unit}', {row}.received_at AT TIME ZONE 'UTC') AS DATE)"

    @property
    def all_months(self) -> str:
        text = ALL_MONTHS.isoformat()
        return f"'{text}'" if self.name == "sqlite" else f"DATE '{text}'"

    def day(self, row: str, column: str) -> str:
        if self.name == "sqlite":
            return f"{row}.{column}"  # stored as ISO text already
        return f"to_char({row}.{column}, 'YYYY-MM-DD')"

    def month_of(self, row: str, column: str) -> str:
        if self.name == "sqlite":
            return f"substr({row}.{column}, 1, 7)"
        return f"to_char({row}.{column}, 'YYYY-MM')"


def _parts(dialect: _Dialect, row: str, sign: int, figure: _Figure) -> list[str]:
    """One SELECT per facet, grain and institution giving a row's deltas of ``figure``: a
    statement a figure (SQLite allows 500 SELECTs in one)."""
    value = figure.value
    for column in ("first_response_due", "closure_due"):
        value = value.replace(f"{{day:{column}}}", dialect.day(row, column))
        value = value.replace(f"{{month:{column}}}", dialect.month_of(row, column))
    value = value.format(r=row)
    when = f" WHERE {figure.when.format(r=row)}" if figure.when else ""
    institutions = [f"{row}.tenant_id"]
    if figure.across:
        institutions.append(str(EVERY_INSTITUTION))
    parts = []
    for facet in ("", *figure.facets):
        grains = [(EVERY_MONTH, dialect.all_months)]
        grains += [
            (grain, dialect.period(row, grain))
            for grain in (MONTH, QUARTER, YEAR)
            if facet == "" or grain in _FACET_GRAINS
            or (grain == MONTH and figure.monthly_in_facets)
        ]
        for grain, month in grains:
            for institution in institutions:
                parts.append(
                    f"SELECT '{figure.name}' AS figure, {_FACET_SQL[facet].format(r=row)}"
                    f" AS facet, '{grain}' AS grain, {month} AS month, {value} AS value,"
                    f" {institution} AS tenant_id, {sign} AS delta{when}"
                )
    return parts


def _apply(parts: list[str]) -> str:
    """One statement that adds the deltas, summed per tally row and in a fixed order: two
    transactions moving cases in opposite directions lock the rows in the same order (no
    deadlock on PostgreSQL), and no row is touched twice by one statement."""
    deltas = " UNION ALL ".join(parts)
    return (
        "INSERT INTO case_tallies (figure, facet, grain, month, value, tenant_id, cases)"  # noqa: S608
        " SELECT figure, facet, grain, month, value, tenant_id, sum(delta)"
        f" FROM ({deltas}) AS deltas WHERE true"
        " GROUP BY figure, facet, grain, month, value, tenant_id HAVING sum(delta) <> 0"
        " ORDER BY figure, facet, grain, month, value, tenant_id"
        " ON CONFLICT (figure, facet, grain, month, value, tenant_id)"
        " DO UPDATE SET cases = case_tallies.cases + excluded.cases"
    )


def _statements(dialect: _Dialect) -> tuple[str, str, str]:
    """What an INSERT, a DELETE and an UPDATE of a case do to the tallies: a statement a
    figure, the figures in the key's order, so that every transaction locks tally rows in
    one order (the key's) whichever figures it changes."""
    figures = sorted(FIGURES, key=lambda figure: figure.name)
    added = "; ".join(_apply(_parts(dialect, "NEW", 1, figure)) for figure in figures)
    removed = "; ".join(_apply(_parts(dialect, "OLD", -1, figure)) for figure in figures)
    changed = "; ".join(
        _apply(_parts(dialect, "OLD", -1, figure) + _parts(dialect, "NEW", 1, figure))
        for figure in figures
    )
    return added, removed, changed


def install(connection: sa.Connection) -> None:
    """(Re)create the triggers that keep ``case_tallies`` current."""
    dialect = _Dialect(connection.dialect.name)
    uninstall(connection)
    added, removed, changed = _statements(dialect)
    watched = ", ".join(WATCHED)
    if dialect.name == "sqlite":
        connection.exec_driver_sql(
            f"CREATE TRIGGER case_tallies_insert AFTER INSERT ON cases BEGIN {added}; END"
        )
        connection.exec_driver_sql(
            f"CREATE TRIGGER case_tallies_delete AFTER DELETE ON cases BEGIN {removed}; END"
        )
        connection.exec_driver_sql(
            f"CREATE TRIGGER case_tallies_update AFTER UPDATE OF {watched} ON cases"
            f" BEGIN {changed}; END"
        )
        return
    connection.exec_driver_sql(
        "CREATE FUNCTION case_tallies_apply() RETURNS trigger LANGUAGE plpgsql AS $tally$"
        f" BEGIN IF TG_OP = 'INSERT' THEN {added};"
        f" ELSIF TG_OP = 'DELETE' THEN {removed};"
        f" ELSE {changed}; END IF; RETURN NULL; END $tally$"
    )
    connection.exec_driver_sql(
        "CREATE TRIGGER case_tallies_insert_delete AFTER INSERT OR DELETE ON cases"
        " FOR EACH ROW EXECUTE FUNCTION case_tallies_apply()"
    )
    connection.exec_driver_sql(
        f"CREATE TRIGGER case_tallies_update AFTER UPDATE OF {watched} ON cases"
        " FOR EACH ROW EXECUTE FUNCTION case_tallies_apply()"
    )


def uninstall(connection: sa.Connection) -> None:
    if connection.dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS case_tallies_{name}")
        return
    for name in ("insert_delete", "update"):
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS case_tallies_{name} ON cases")
    connection.exec_driver_sql("DROP FUNCTION IF EXISTS case_tallies_apply()")


def refill(connection: sa.Connection) -> None:
    """Count every case again from scratch (after :func:`install`, in the same transaction)."""
    dialect = _Dialect(connection.dialect.name)
    connection.exec_driver_sql("DELETE FROM case_tallies")
    if dialect.name == "postgresql":
        # Room on each page for a row's next versions: a change of a count (no indexed
        # column) is then written beside the row (a HOT update) and the key order holds.
        connection.exec_driver_sql("ALTER TABLE case_tallies SET (fillfactor = 70)")
    for figure in sorted(FIGURES, key=lambda figure: figure.name):
        counted = " UNION ALL ".join(
            _from_cases(part) for part in _parts(dialect, "c", 1, figure)
        )
        connection.exec_driver_sql(
            "INSERT INTO case_tallies (figure, facet, grain, month, value, tenant_id, cases)"  # noqa: S608
            " SELECT figure, facet, grain, month, value, tenant_id, sum(delta)"
            f" FROM ({counted}) AS counted WHERE true"
            " GROUP BY figure, facet, grain, month, value, tenant_id"
            # In the key's order: PostgreSQL keeps rows where they are written, and a view
            # reads a range of the key (a figure's rows on a few pages, not one page a row).
            " ORDER BY figure, facet, grain, month, value, tenant_id"
        )


def _from_cases(part: str) -> str:
    # "SELECT ... AS delta[ WHERE cond]" over every case row.
    select, _, when = part.partition(" WHERE ")
    return f"{select} FROM cases AS c" + (f" WHERE {when}" if when else "")


_TRIGGERS = {
    "sqlite": {"case_tallies_insert", "case_tallies_delete", "case_tallies_update"},
    "postgresql": {"case_tallies_insert_delete", "case_tallies_update"},
}


def problems(connection: sa.Connection) -> list[str]:
    """What is wrong with the tallies, cheaply (for ``peluit doctor``): a trigger missing (a
    migration that rebuilt ``cases`` without installing them again), or an institution whose
    cases by status and answer differ from its tallies (one GROUP BY of the cases, from an
    index). Empty when they agree. :func:`refill` repairs both."""
    name = connection.dialect.name
    if name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'cases'"
    else:
        query = ("SELECT tgname FROM pg_trigger WHERE tgrelid = 'cases'::regclass"
                 " AND NOT tgisinternal")
    found = set(connection.exec_driver_sql(query).scalars())
    missing = sorted(_TRIGGERS[name] - found)
    if missing:
        return [f"trigger(s) missing on cases: {', '.join(missing)}"]
    answers = {None: "none", True: "met", False: "late"}
    counted: dict[tuple[int, str], int] = {}
    cases = sa.table("cases", sa.column("tenant_id"), sa.column("status"),
                     sa.column("first_response_in_time", sa.Boolean))
    for tenant_id, status, in_time, count in connection.execute(
        sa.select(cases.c.tenant_id, cases.c.status, cases.c.first_response_in_time,
                  sa.func.count()).group_by(cases.c.tenant_id, cases.c.status,
                                            cases.c.first_response_in_time)
    ):
        counted[tenant_id, f"{status}|{answers[in_time]}"] = count
    tallied = sa.table("case_tallies", sa.column("figure"), sa.column("facet"),
                       sa.column("grain"), sa.column("value"),
                       sa.column("tenant_id"), sa.column("cases"))
    stored = {
        (tenant_id, value): count
        for tenant_id, value, count in connection.execute(
            sa.select(tallied.c.tenant_id, tallied.c.value, tallied.c.cases).where(
                tallied.c.figure == "status", tallied.c.facet == "",
                tallied.c.grain == EVERY_MONTH, tallied.c.tenant_id != EVERY_INSTITUTION,
                tallied.c.cases != 0,
            )
        )
    }
    wrong = sorted({key[0] for key in counted.keys() | stored.keys()
                    if counted.get(key, 0) != stored.get(key, 0)})
    if wrong:
        return [f"{len(wrong)} institution(s) counted wrong by the tallies"
                f" (ids {', '.join(map(str, wrong[:5]))}{', ...' if len(wrong) > 5 else ''})"]
    return []


def overdue_ranges(today: dt.date) -> tuple[str, tuple[str, str]]:
    """What is due before ``today``: the months (``frdue``/``cldue`` values) before this
    one, and the days (``frday``/``clday``, from .. before) of this month before today."""
    return f"{today:%Y-%m}", (today.replace(day=1).isoformat(), today.isoformat())


__all__ = [
    "ALL_MONTHS",
    "EVERY_INSTITUTION",
    "EVERY_MONTH",
    "FIGURES",
    "MONTH",
    "QUARTER",
    "WATCHED",
    "YEAR",
    "facet",
    "grain_of",
    "install",
    "overdue_ranges",
    "problems",
    "refill",
    "uninstall",
]
