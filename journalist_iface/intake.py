"""Operator intake: an investigator uploads the package the workstation made for a report
that arrived by WhatsApp, SMS, telephone, letter, in person or e-mail, and is shown, once,
the codename to hand back to the reporter (:mod:`wbs.operator_intake`).

The package is ciphertext and coarse fields only. Werkzeug may spool the upload to a
temporary file, as it does for any large form; nothing in it is plaintext of the report. The
codename is in this one response (no-store) and nowhere else: not in a redirect, a flash, a
cookie or a log.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from journalist_iface import refusals
from journalist_iface.auth import investigator_required
from journalist_iface.context import instance
from wbs.casework import Refusal
from wbs.context import Context
from wbs.domain import CATEGORY_LABELS, OPERATOR_CHANNELS, KpkSharing
from wbs.operator_intake import accept_package as accept
from wbs.operator_intake import check_may_record, max_package_bytes
from wbs.tenants import TenantError, current_recipients

bp = Blueprint("intake", __name__)
UPLOAD_ENDPOINT = "intake.upload"


def upload_limit() -> int:
    """The request size the upload view may receive: the largest package, with the form."""
    return instance().config.max_upload_bytes + 2 * 1024 * 1024


def _keys(ctx: Context, *, to_kpk: bool) -> list[str]:
    try:
        return current_recipients(ctx.session, ctx.tenant, to_kpk=to_kpk)
    except TenantError:
        return []


def _page(ctx: Context, *, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    tenant = ctx.tenant
    kpk = not tenant.is_hub and tenant.kpk_sharing != KpkSharing.NEVER
    return render_template(
        "intake.html",
        channels=OPERATOR_CHANNELS,
        category_labels=CATEGORY_LABELS,
        tenant_keys=_keys(ctx, to_kpk=False),
        kpk_keys=[fpr for fpr in _keys(ctx, to_kpk=True) if fpr not in _keys(ctx, to_kpk=False)]
        if kpk else [],
        kpk_always=kpk and tenant.kpk_sharing == KpkSharing.ALWAYS,
        limit_mib=max_package_bytes(ctx) // (1024 * 1024),
        error=error,
    ), status


@bp.get("/pengaduan-baru")
@investigator_required()
def form(ctx: Context) -> ResponseReturnValue:
    try:
        check_may_record(ctx)
    except Refusal:
        abort(403)
    return _page(ctx)


@bp.post("/pengaduan-baru")
@investigator_required()
def upload(ctx: Context) -> ResponseReturnValue:
    upload = request.files.get("package")
    if upload is None or not upload.filename:
        return _page(ctx, error=gettext("Choose the intake package file."), status=400)
    try:
        opened = accept(ctx, upload.stream, language="id")
    except Refusal as refusal:
        ctx.session.rollback()
        if refusal.code in refusals.HTTP_ONLY:
            abort(refusals.HTTP_ONLY[refusal.code])
        return _page(ctx, error=refusals.message(refusal), status=400)
    response = current_app.make_response(
        render_template("intake_done.html", case=opened.case, codename=opened.codename)
    )
    response.headers["Cache-Control"] = "no-store"
    return response
