"""Duplicates across institutions: an investigator uploads the keyed sketches their workstation
exported (:mod:`wbs.sketches`); KPK's monitor sees the candidate pairs across tenants.

The upload is numbers and keyed hash values, no text. The monitor's page shows a pair's score,
which parts of the sketches agreed, and the handling metadata of both cases (registration
number, institution, status, category): never content, which the server does not have. Only a
pemantau KPK sees it; an account of another tenant gets 403, so no tenant learns of another
tenant's cases through it.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from journalist_iface.auth import investigator_required
from wbs.casework import Refusal
from wbs.context import Context
from wbs.domain import Role
from wbs.sketches import MAX_SKETCH_BYTES, accept_sketches, duplicate_candidates, sketch_count
from wbs.tenancy import TenantIsolationError

bp = Blueprint("duplicates", __name__)
UPLOAD_ENDPOINT = "duplicates.upload"
UPLOAD_LIMIT = MAX_SKETCH_BYTES + 64 * 1024
PART_NAMES = ("text", "siapa", "dimana", "berapa", "kapan")


def refusal_message(refusal: Refusal) -> str:
    """The investigator's sentence for a refused sketch upload."""
    if refusal.code == "unknown_cases":
        return str(gettext(
            "Registration numbers in the file that are not cases of this institution: "
            "%(num)d (%(numbers)s). Nothing was stored.",
            num=refusal.params["count"], numbers=refusal.params["numbers"],
        ))
    if refusal.code == "sketches_too_large":
        return str(gettext("The sketch file is too large. Nothing was stored."))
    return str(gettext(
        "This is not a sketch file from 'peluit-workstation sketches export'. Nothing was stored."
    ))


def _page(*, error: str | None = None, stored: int | None = None, status: int = 200
          ) -> ResponseReturnValue:
    return render_template("sketches.html", error=error, stored=stored), status


@bp.get("/sketsa")
@investigator_required()
def form(ctx: Context) -> ResponseReturnValue:
    return _page()


@bp.post("/sketsa")
@investigator_required()
def upload(ctx: Context) -> ResponseReturnValue:
    upload = request.files.get("sketches")
    if upload is None or not upload.filename:
        return _page(error=gettext("Choose the sketch file."), status=400)
    try:
        stored = accept_sketches(ctx, upload.stream.read(MAX_SKETCH_BYTES + 1))
    except Refusal as refusal:
        ctx.session.rollback()
        return _page(error=refusal_message(refusal), status=400)
    return _page(stored=stored)


@bp.get("/pemantau/duplikat")
@investigator_required(roles=[Role.PEMANTAU_KPK])
def candidates(ctx: Context) -> ResponseReturnValue:
    try:
        pairs = duplicate_candidates(ctx.session, ctx.tenant)
        sketched = sketch_count(ctx.session, ctx.tenant)
    except TenantIsolationError:
        abort(403)  # a pemantau account outside the hub: not KPK's monitor
    return render_template(
        "duplicates.html", pairs=pairs, sketched=sketched, part_names=PART_NAMES
    )
