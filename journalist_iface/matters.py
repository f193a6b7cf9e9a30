"""One handler per matter: the matters page, linking, the lead, closing into it
(:mod:`wbs.matters`).

``/perkara`` lists the matters with a case the account may see: all of them for KPK's monitor,
with each case's handling metadata; an institution sees the matters its cases are in, other
institutions' cases as "a case at <institution>". KPK's accounts name the lead there. The case
page links its case with another by registration number and, once KPK named a lead, closes a
non-lead case into it (views below, on the case page's refusal handling). A case or matter the
account cannot see answers 404, like one that does not exist.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from werkzeug.wrappers import Response

from journalist_iface import refusals
from journalist_iface.auth import investigator_required
from journalist_iface.views import case_action
from wbs import matters
from wbs.casework import Refusal
from wbs.context import Context
from wbs.models import Case, Matter, utcnow
from wbs.workdays import local_date

bp = Blueprint("matters", __name__)


def _today() -> dt.date:
    return local_date(utcnow())


def _back(case: Case) -> Response:
    return redirect(url_for("journalist.case_page", case_id=case.id))


def _page(ctx: Context, *, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    return render_template(
        "matters.html", matters=matters.matters(ctx, _today()), error=error,
        today=_today(),
    ), status


def _refused(ctx: Context, refusal: Refusal) -> ResponseReturnValue:
    if refusal.code in refusals.HTTP_ONLY:
        abort(refusals.HTTP_ONLY[refusal.code])
    ctx.session.rollback()
    return _page(ctx, error=refusals.message(refusal, refusal.params.get("number", "")),
                 status=400)


def _number(field: str = "number") -> str:
    return request.form.get(field, "")[: matters.MAX_NUMBER + 8]


@bp.get("/perkara")
@investigator_required()
def index(ctx: Context) -> ResponseReturnValue:
    return _page(ctx)


@bp.post("/perkara/tautkan")
@investigator_required()
def link_pair(ctx: Context) -> ResponseReturnValue:
    """Link two cases by number: KPK's matters page and the duplicates page."""
    try:
        matter = matters.link_numbers(ctx, _number("first"), _number("second"))
    except Refusal as refusal:
        return _refused(ctx, refusal)
    flash(gettext("The cases were linked in matter %(id)d.", id=matter.id))
    return redirect(url_for("matters.index", _anchor=f"perkara-{matter.id}"))


def _matter_action(ctx: Context, matter_id: int) -> Matter:
    try:
        return matters.find_matter(ctx, matter_id)
    except Refusal:
        abort(404)


@bp.post("/perkara/<int:matter_id>/ketua")
@investigator_required()
def name_lead(ctx: Context, matter_id: int) -> ResponseReturnValue:
    matter = _matter_action(ctx, matter_id)
    try:
        lead = matters.name_lead(ctx, matter, _number())
    except Refusal as refusal:
        return _refused(ctx, refusal)
    flash(gettext("%(number)s leads the handling of matter %(id)d.",
                  number=lead.registration_number, id=matter.id))
    return redirect(url_for("matters.index", _anchor=f"perkara-{matter.id}"))


@bp.post("/perkara/<int:matter_id>/lepas")
@investigator_required()
def unlink(ctx: Context, matter_id: int) -> ResponseReturnValue:
    matter = _matter_action(ctx, matter_id)
    number = _number()
    try:
        matters.unlink(ctx, matter, number)
    except Refusal as refusal:
        return _refused(ctx, refusal)
    flash(gettext("%(number)s was taken out of the matter.", number=number.strip().upper()))
    back = request.form.get("back", "")
    if back.isascii() and back.isdigit() and len(back) < 19:
        return redirect(url_for("journalist.case_page", case_id=int(back)))
    return redirect(url_for("matters.index"))


@bp.post("/pengaduan/<int:case_id>/perkara")
@investigator_required()
@case_action
def link_case(ctx: Context, case: Case) -> ResponseReturnValue:
    """Link the own case of this page with another the account may see, by number."""
    matter = matters.link(ctx, case, _number())
    flash(gettext("The cases were linked in matter %(id)d.", id=matter.id))
    return _back(case)


@bp.post("/pengaduan/<int:case_id>/gabung")
@investigator_required()
@case_action
def close_merged(ctx: Context, case: Case) -> ResponseReturnValue:
    """Close the own case into its matter's lead: *Digabung ke <lead>*."""
    lead = matters.close_merged(ctx, case)
    flash(gettext("Closed: merged into %(number)s.", number=lead.registration_number))
    return _back(case)
