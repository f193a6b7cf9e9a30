import datetime as dt

import pytest

from wbs.workdays import WorkingCalendar, local_date

D = dt.date


def test_deadline_skips_weekend_and_national_holiday() -> None:
    cal = WorkingCalendar()
    # Wed 2026-08-12 + 5 working days: Thu 13, Fri 14, (Sat 15, Sun 16, Mon 17 = Independence
    # Day), Tue 18, Wed 19, Thu 20.
    assert cal.add_working_days(D(2026, 8, 12), 5) == D(2026, 8, 20)
    assert not cal.is_working_day(D(2026, 8, 17))
    assert cal.day_off_name(D(2026, 8, 17))


def test_deadline_skips_cuti_bersama_the_package_knows() -> None:
    cal = WorkingCalendar()
    # Idul Fitri 2026: 20 March (cuti bersama), 21-22 (holiday, weekend), 23-24 (cuti bersama).
    # Thu 19 March is Nyepi. Wed 18 March + 1 working day is Wed 25 March.
    assert cal.add_working_days(D(2026, 3, 17), 1) == D(2026, 3, 25)


def test_configured_cuti_bersama_is_a_day_off() -> None:
    plain = WorkingCalendar()
    extra = WorkingCalendar([D(2026, 11, 26)])
    assert plain.add_working_days(D(2026, 11, 24), 3) == D(2026, 11, 27)
    assert extra.add_working_days(D(2026, 11, 24), 3) == D(2026, 11, 30)
    assert extra.day_off_name(D(2026, 11, 26)) == "Cuti bersama"


def test_seven_working_days_from_friday_across_weekends() -> None:
    cal = WorkingCalendar()
    # Fri 2026-11-20: Mon 23 .. Fri 27 (5), Mon 30 Nov (6), Tue 1 Dec (7).
    assert cal.add_working_days(D(2026, 11, 20), 7) == D(2026, 12, 1)


def test_received_on_holiday_counts_from_next_working_day() -> None:
    cal = WorkingCalendar()
    # Christmas 2026 is Friday 25 Dec; 24 Dec is cuti bersama.
    assert cal.add_working_days(D(2026, 12, 25), 1) == D(2026, 12, 28)


def test_working_days_between_is_inverse_and_signed() -> None:
    cal = WorkingCalendar()
    start = D(2026, 8, 12)
    for n in (0, 1, 5, 30):
        due = cal.add_working_days(start, n)
        assert cal.working_days_between(start, due) == n
    assert cal.working_days_between(D(2026, 8, 20), D(2026, 8, 12)) == -5


def test_negative_days_refused() -> None:
    with pytest.raises(ValueError):
        WorkingCalendar().add_working_days(D(2026, 1, 5), -1)


def test_local_date_uses_wib_by_default() -> None:
    # 18:30 UTC on 31 Dec is already 1 Jan in Jakarta (UTC+7).
    moment = dt.datetime(2026, 12, 31, 18, 30, tzinfo=dt.UTC)
    assert local_date(moment) == D(2027, 1, 1)
    assert local_date(moment, "UTC") == D(2026, 12, 31)
    with pytest.raises(ValueError):
        local_date(dt.datetime(2026, 1, 1))
