"""Deadlines in *hari kerja* (working days).

A working day is Monday to Friday that is neither an Indonesian national holiday nor a day of
*cuti bersama* (collective leave). National holidays and the cuti bersama that the ``holidays``
package knows come from it; cuti bersama set by the yearly joint ministerial decree (SKB) can be
added in configuration, because the decree comes out after a package release may have been cut.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays

# Deadlines are counted in the tenant's local calendar; WIB is the default (tenants in WITA or
# WIT can say otherwise). Counting in UTC would move reports sent after 17:00 WIB to a day later.
DEFAULT_TIMEZONE = "Asia/Jakarta"


class WorkingCalendar:
    def __init__(self, extra_days_off: Iterable[dt.date] = ()) -> None:
        self._extra = frozenset(extra_days_off)

    @cached_property
    def _holidays(self) -> holidays.HolidayBase:
        # 'public' holds the national holidays; 'government' holds the cuti bersama days the
        # package knows. Years are filled in lazily as dates are asked about.
        return holidays.country_holidays("ID", categories=("public", "government"), language="id")

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self._extra and day not in self._holidays

    def day_off_name(self, day: dt.date) -> str | None:
        """Why a day is not a working day, or None if it is one."""
        if day in self._holidays:
            return str(self._holidays.get(day))
        if day in self._extra:
            return "Cuti bersama"
        if day.weekday() >= 5:
            return "Akhir pekan"
        return None

    def add_working_days(self, start: dt.date, days: int) -> dt.date:
        """The date of the ``days``-th working day after ``start`` (``start`` itself not counted).

        A report received on Friday with a 1-day deadline is due on Monday (or the next working
        day after it); a report received on a holiday starts counting from the next working day.
        """
        if days < 0:
            raise ValueError("days must not be negative")
        day = start
        remaining = days
        while remaining:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days after ``start`` up to and including ``end``; negative if ``end`` is
        earlier (so "days left" of an overdue case is negative)."""
        if end < start:
            return -self.working_days_between(end, start)
        count = 0
        day = start
        while day < end:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return count


def local_date(moment: dt.datetime, timezone: str = DEFAULT_TIMEZONE) -> dt.date:
    """The calendar date of an aware ``moment`` in the tenant's time zone."""
    if moment.tzinfo is None:
        raise ValueError("an aware datetime is needed")
    return moment.astimezone(ZoneInfo(timezone)).date()
