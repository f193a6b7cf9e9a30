"""Whole numbers typed by a person or sent by a client, parsed the same way everywhere.

``str.isdigit()`` is not the test: it admits "²" and other digits that ``int()`` refuses (a
ValueError, then a 500), and it sets no length (``int()`` refuses more than 4,300 digits, and
an id beyond the database's 64-bit integer fails in the driver instead of matching nothing).
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+")
# Digits an id may have: 18 digits always fit the 64-bit signed integer of SQLite and
# PostgreSQL's bigint (2**63 - 1 has 19), and no row will ever need more.
ID_DIGITS = 18


def whole_number(raw: str, max_digits: int) -> int | None:
    """``raw`` as an integer if it is 1 to ``max_digits`` ASCII digits, else None."""
    if len(raw) <= max_digits and _DIGITS.fullmatch(raw):
        return int(raw)
    return None
