"""Template filters and helpers: dates in the investigator's language, sizes, labels."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from flask_babel import format_date, format_datetime, lazy_gettext

from journalist_iface import labels
from wbs.casework import KLARIFIKASI_LOG_NOTE
from wbs.deadlines import closure, first_response
from wbs.domain import SOURCE_EVENT_KINDS
from wbs.items import TimelineEntry
from wbs.workdays import local_date

_ITEM_KINDS = {
    "form": lazy_gettext("Report form"),
    "message": lazy_gettext("Message"),
    "file": lazy_gettext("Evidence file"),
    "reply": lazy_gettext("Reply"),
}


def day(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        # The WIB day: right for exact times, and for source-side day labels too (midnight
        # UTC of a WIB date is 07:00 WIB on that same date; see wbs.models.round_to_day).
        value = local_date(value)
    return str(format_date(value, "medium"))


def moment(value: dt.datetime | None) -> str:
    return "—" if value is None else str(format_datetime(value, "medium"))


def event_time(event: TimelineEntry) -> str:
    """When an event happened, to the precision kept: a pelapor's actions have a day only.

    Showing their midnight-UTC label as a time would invent "07.00" WIB.
    """
    if event.kind in SOURCE_EVENT_KINDS:
        return day(event.created_at)
    return moment(event.created_at)


# Notes the system writes itself (not typed by an investigator), in the reader's language.
_SYSTEM_NOTES = {
    KLARIFIKASI_LOG_NOTE: lazy_gettext("The question was sent to the reporter as a reply"),
}


def event_note(note: str | None) -> str:
    if note is None:
        return ""
    found = _SYSTEM_NOTES.get(note)
    return str(found) if found is not None else note


def filesize(size: int) -> str:
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"  # unreachable; keeps mypy's return check simple


def item_kind(kind: str) -> str:
    label = _ITEM_KINDS.get(kind)
    return str(label) if label is not None else kind


def register(app: Flask) -> None:
    app.add_template_filter(day)
    app.add_template_filter(moment)
    app.add_template_filter(event_time)
    app.add_template_filter(filesize)
    app.add_template_filter(event_note)
    app.add_template_global(labels.status_label)
    app.add_template_global(labels.category_label)
    app.add_template_global(labels.mcp_label)
    app.add_template_global(labels.event_label)
    app.add_template_global(labels.takeover_reasons)
    app.add_template_global(labels.request_reasons)
    app.add_template_global(labels.decline_reasons)
    app.add_template_global(labels.role_label)
    app.add_template_global(item_kind)
    app.add_template_global(first_response)
    app.add_template_global(closure)
