"""The investigator's pages: login, inbox, case page and the case actions.

Views parse the form, call one function of :mod:`wbs.casework` with the request's context and
render; a :class:`~wbs.casework.Refusal` becomes a translated message on the case page
(:mod:`journalist_iface.refusals`). A case of another tenant answers 404, the same as an id
that does not exist, so ids cannot be probed. KPK's accounts read the cases shared with KPK
as their own (the page, downloads, export bundles); actions that change a case (status,
assignment, reply, marks) reach only the own tenant's cases and answer 404 on any other.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Concatenate, ParamSpec

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext, lazy_gettext
from werkzeug.wrappers import Response

from iface_common.language import add_language_switch
from journalist_iface import labels, refusals
from journalist_iface.auth import (
    COOKIE_NAME,
    current_session,
    investigator_required,
    log_in,
    log_out,
)
from journalist_iface.context import (
    LANGUAGE_COOKIE,
    auth_settings,
    db,
)
from wbs import casework, coordination, forwarding, matters, takeover
from wbs.accounts import authenticate
from wbs.casework import MAX_ENCRYPTED_REPLY_BYTES, Refusal
from wbs.context import Context
from wbs.domain import (
    ALLOWED_TRANSITIONS,
    CATEGORY_LABELS,
    MCP_AREA_LABELS,
    CaseFlag,
    CaseStatus,
)
from wbs.inbox import InboxFilters, assignable, inbox, investigator_names
from wbs.items import number_width
from wbs.models import Case, Tenant, utcnow
from wbs.numbers import ID_DIGITS, whole_number
from wbs.workdays import local_date

bp = Blueprint("journalist", __name__)
P = ParamSpec("P")

LOGIN_FAILED = lazy_gettext(
    "Wrong username, password or authenticator code, or too many attempts. Check them and "
    "try again in a moment."
)


FLAG_NOTICES = {
    (CaseFlag.STAR, True): lazy_gettext("Starred."),
    (CaseFlag.STAR, False): lazy_gettext("The star was removed."),
    (CaseFlag.NEEDS_REPLY, True): lazy_gettext("Marked as needing a reply."),
    (CaseFlag.NEEDS_REPLY, False): lazy_gettext("No longer marked as needing a reply."),
}


def _today() -> dt.date:
    return local_date(utcnow())


# --- language, login, logout ------------------------------------------------------------------


add_language_switch(bp, cookie=LANGUAGE_COOKIE, home_endpoint="journalist.index")


@bp.get("/masuk")
def login() -> ResponseReturnValue:
    if current_session() is not None:
        return redirect(url_for("journalist.index"))
    return render_template("login.html", expired=request.args.get("expired") == "1")


@bp.post("/masuk")
def check_login() -> ResponseReturnValue:
    result = authenticate(
        db(),
        request.form.get("username", "")[:128],
        request.form.get("password", "")[:1024],
        request.form.get("totp", "")[:16],
        settings=auth_settings(),
    )
    if result.investigator is None:
        # The reason helps an operator tell a flood from a broken clock; the username is not
        # logged, since a mistyped password in that field would end up in the log.
        current_app.logger.warning("investigator login refused: %s", result.reason)
        return render_template("login.html", error=str(LOGIN_FAILED)), 200
    session.clear()  # a fresh CSRF secret for the logged-in session
    return log_in(result.investigator, url_for("journalist.index"))


@bp.post("/keluar")
def logout() -> ResponseReturnValue:
    session.clear()
    response = redirect(url_for("journalist.login"))
    if COOKIE_NAME in request.cookies:
        log_out(response)
    return response


# --- inbox ----------------------------------------------------------------------------------


@bp.get("/")
@investigator_required()
def index(ctx: Context) -> ResponseReturnValue:
    filters = InboxFilters.from_args(request.args)
    return render_template(
        "inbox.html",
        page=inbox(ctx, filters, _today()),
        filters=filters,
        statuses=list(CaseStatus),
        categories=labels.categories(),
        mcp_areas=labels.mcp_areas(),
        team=assignable(ctx),
        cross_tenant=ctx.reads_shared_cases,
        today=_today(),
    )


# --- the case page --------------------------------------------------------------------------


def _case_page(
    ctx: Context, case: Case, *, error: str | None = None, status: int = 200,
    form: dict[str, str] | None = None,
) -> ResponseReturnValue:
    writable = case.tenant_id == ctx.tenant.id
    items = casework.items(ctx, case)
    today, calendar = _today(), ctx.inst.calendar
    return render_template(
        "case.html",
        case=case,
        writable=writable,
        case_tenant=ctx.session.get(Tenant, case.tenant_id),
        items=items,
        width=number_width(items),
        events=casework.timeline(ctx, case),
        names=investigator_names(ctx),
        team=assignable(ctx) if writable else [],
        may_assign_anyone=ctx.actor is not None and ctx.actor.role in casework.ASSIGNS_ANYONE,
        next_statuses=sorted(ALLOWED_TRANSITIONS[case.status], key=list(CaseStatus).index),
        today=today,
        first_left=calendar.working_days_between(today, case.first_response_due),
        closure_left=(
            calendar.working_days_between(today, case.closure_due) if case.closure_due else None
        ),
        category_name=labels.category_label(case.category),
        all_categories={code: labels.category_label(code) for code in CATEGORY_LABELS},
        all_mcp_areas={code: labels.mcp_label(code) for code in MCP_AREA_LABELS},
        mcp_label=labels.mcp_label(case.mcp_area),
        error=error,
        form=form or {},
        handles=case.linked_to_case_id is None,
        taken_over=case.taken_over_at is not None,
        # KPK's side of a case shared with it: take it over, or ask for it to be forwarded.
        may_take_over=not writable and takeover.may_take_over(ctx, case),
        kpk_case=takeover.taken_over_case(ctx, case) if not writable else None,
        forwarded_to=forwarding.handler_tenant_name(ctx, case) if writable else None,
        forwarded_from=forwarding.origin_tenant_name(ctx, case) if writable else None,
        may_forward=writable and case.linked_to_case_id is None
        and CaseStatus.DITERUSKAN in ALLOWED_TRANSITIONS[case.status],
        destinations=forwarding.forward_destinations(ctx) if writable else [],
        external_bodies=forwarding.EXTERNAL_BODIES,
        matter=matters.case_matter(ctx, case, today),
    ), status


@bp.get("/pengaduan/<int:case_id>")
@investigator_required()
def case_page(ctx: Context, case_id: int) -> ResponseReturnValue:
    try:
        case = casework.readable_case(ctx, case_id)
    except Refusal:
        abort(404)
    return _case_page(ctx, case)


CaseAction = Callable[Concatenate[Context, Case, P], ResponseReturnValue]


def _case_view(
    view: CaseAction[P], lookup: Callable[[Context, int], Case]
) -> Callable[..., ResponseReturnValue]:
    def wrapper(
        ctx: Context, case_id: int, *args: P.args, **kwargs: P.kwargs
    ) -> ResponseReturnValue:
        try:
            case = lookup(ctx, case_id)
        except Refusal:
            abort(404)
        try:
            return view(ctx, case, *args, **kwargs)
        except Refusal as refusal:
            if refusal.code in refusals.HTTP_ONLY:
                abort(refusals.HTTP_ONLY[refusal.code])
            ctx.session.rollback()
            typed = {
                "status": request.form.get("status", ""),
                "note": request.form.get("note", "").strip(),
                "reply": request.form.get("text", "").strip(),
                "reason": request.form.get("reason", "").strip(),
            }
            error = refusals.message(refusal, case.registration_number)
            return _case_page(ctx, case, error=error, status=400, form=typed)

    # Flask names the endpoint after the function: keep the view's name (not functools.wraps,
    # whose type says the signature stays the same, while this one takes an id for a case).
    wrapper.__name__, wrapper.__doc__ = view.__name__, view.__doc__
    return wrapper


def case_action(view: CaseAction[P]) -> Callable[..., ResponseReturnValue]:
    """Look up the own case (another tenant's, or KPK's read-only copy, answers 404), run
    the action, and show a refusal on the case page with what was typed."""
    return _case_view(view, casework.own_case)


def case_reading(view: CaseAction[P]) -> Callable[..., ResponseReturnValue]:
    """As :func:`case_action`, for what only reads a case (a download, an export): any case
    the investigator may read, KPK's copy of a shared case included."""
    return _case_view(view, casework.readable_case)


def _back(case: Case) -> Response:
    return redirect(url_for("journalist.case_page", case_id=case.id))


# --- actions --------------------------------------------------------------------------------


@bp.post("/pengaduan/<int:case_id>/status")
@investigator_required()
@case_action
def set_status(ctx: Context, case: Case) -> ResponseReturnValue:
    new = casework.parse_status(request.form.get("status", ""))
    casework.change_status(ctx, case, new, request.form.get("note", ""))
    flash(gettext("Status changed to %(status)s.", status=labels.status_label(new)))
    return _back(case)


@bp.post("/pengaduan/<int:case_id>/klasifikasi")
@investigator_required()
@case_action
def reclassify(ctx: Context, case: Case) -> ResponseReturnValue:
    changed = casework.reclassify(
        ctx, case, request.form.get("category", ""), request.form.get("mcp_area", "")
    )
    flash(gettext("The classification was corrected.") if changed else gettext("Nothing changed."))
    return _back(case)


@bp.post("/pengaduan/<int:case_id>/tugaskan")
@investigator_required()
@case_action
def assign(ctx: Context, case: Case) -> ResponseReturnValue:
    raw = request.form.get("assignee", "")
    assignee = whole_number(raw, ID_DIGITS)
    if raw and assignee is None:
        abort(400)
    target = casework.assign(ctx, case, assignee)
    flash(
        gettext("Assigned to %(name)s.", name=target.display_name)
        if target
        else gettext("The assignment was removed.")
    )
    return _back(case)


@bp.post("/pengaduan/<int:case_id>/balas")
@investigator_required()
@case_action
def reply(ctx: Context, case: Case) -> ResponseReturnValue:
    casework.post_reply(ctx, case, request.form.get("text", ""))
    flash(gettext("The reply was encrypted and sent to the reporter."))
    return _back(case)


@bp.post("/pengaduan/<int:case_id>/balas-terenkripsi")
@investigator_required()
@case_action
def upload_encrypted_reply(ctx: Context, case: Case) -> ResponseReturnValue:
    """A reply encrypted on the air-gapped workstation: its plaintext never reaches us."""
    # Ciphertext only, so Werkzeug may buffer it as it likes; the size is still bounded.
    request.max_content_length = MAX_ENCRYPTED_REPLY_BYTES + 64 * 1024
    upload = request.files.get("reply_file")
    data = upload.read(MAX_ENCRYPTED_REPLY_BYTES + 1) if upload else b""
    casework.accept_encrypted_reply(ctx, case, data)
    flash(gettext("The encrypted reply was stored and the reporter can read it."))
    return _back(case)


@bp.post("/pengaduan/<int:case_id>/tanda")
@investigator_required()
@case_action
def set_flag(ctx: Context, case: Case) -> ResponseReturnValue:
    """Set or clear the star or "perlu dibalas": the button names the mark and the state."""
    flag = casework.parse_flag(request.form.get("flag", ""))
    on = request.form.get("on") == "1"
    if casework.set_flag(ctx, case, flag, on):
        flash(FLAG_NOTICES[flag, on])
    return _back(case)


@bp.post("/pengaduan/<int:case_id>/dibaca")
@investigator_required()
@case_action
def mark_seen(ctx: Context, case: Case) -> ResponseReturnValue:
    casework.mark_seen(ctx, case)
    flash(gettext("Marked as read."))
    return _back(case)


@bp.get("/pengaduan/<int:case_id>/berkas/<int:number>")
@investigator_required()
@case_reading
def download(ctx: Context, case: Case, number: int) -> ResponseReturnValue:
    item = casework.open_item(ctx, case, number)
    return send_file(
        item.stream,
        mimetype="application/pgp-encrypted",
        as_attachment=True,
        download_name=item.filename,
        max_age=0,
    )


@bp.post("/pengaduan/<int:case_id>/ekspor")
@investigator_required()
@case_reading
def export(ctx: Context, case: Case) -> ResponseReturnValue:
    bundle = casework.export(ctx, case, current_app.logger)
    return Response(
        bundle.chunks,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{bundle.filename}"'},
        direct_passthrough=True,
    )


# --- pelimpahan (wbs.forwarding, docs/forwarding.md) ----------------------------------------


@bp.get("/kunci/<slug>")
@investigator_required()
def key_list(ctx: Context, slug: str) -> ResponseReturnValue:
    """The receiving institution's signed key list, for the workstation's forward command."""
    try:
        data = forwarding.signed_key_list(ctx, slug[:40])
    except Refusal:
        abort(404)
    return Response(
        data,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="keys-{slug[:40]}.json"'},
    )


@bp.post("/pengaduan/<int:case_id>/limpahkan")
@investigator_required()
@case_action
def forward_case(ctx: Context, case: Case) -> ResponseReturnValue:
    """A forwarding package made on the workstation: ciphertext only."""
    upload = request.files.get("package")
    if upload is None:
        raise Refusal("forward_refused", "no package", reason="no package")
    size = upload.stream.seek(0, io.SEEK_END)
    upload.stream.seek(0)
    if size > forwarding.max_forward_bytes(case):
        reason = "the package is larger than this case's items re-encrypted can be"
        raise Refusal("forward_refused", reason, reason=reason)
    linked = forwarding.accept_forward(ctx, case, upload.stream)
    destination = ctx.session.get(Tenant, linked.tenant_id)
    flash(gettext(
        "Forwarded to %(name)s as %(number)s.",
        name=destination.name if destination else "", number=linked.registration_number,
    ))
    return _back(case)


@bp.post("/pengaduan/<int:case_id>/teruskan-luar")
@investigator_required()
@case_action
def forward_external(ctx: Context, case: Case) -> ResponseReturnValue:
    forwarding.forward_external(
        ctx, case, request.form.get("body", ""), request.form.get("letter_number", "")
    )
    flash(gettext("The forwarding was recorded."))
    return _back(case)


# --- pengambilalihan and permintaan pelimpahan (wbs.takeover, wbs.coordination) -------------


@bp.post("/pengaduan/<int:case_id>/ambil-alih")
@investigator_required()
@case_reading
def take_over(ctx: Context, case: Case) -> ResponseReturnValue:
    """KPK takes over a case shared with it: a linked case in KPK's tenant, the items copied
    as the ciphertext they are (the lookup lets KPK's copy through; the domain decides)."""
    linked = takeover.take_over(ctx, case, request.form.get("reason", ""))
    flash(gettext(
        "KPK took over %(case)s: it is KPK's case %(number)s now.",
        case=case.registration_number, number=linked.registration_number,
    ))
    return redirect(url_for("journalist.case_page", case_id=linked.id))


@bp.post("/pengaduan/<int:case_id>/minta-pelimpahan")
@investigator_required()
@case_reading
def request_forward(ctx: Context, case: Case) -> ResponseReturnValue:
    coordination.request_forward(ctx, case, request.form.get("reason", ""))
    flash(gettext("The request to forward %(case)s was sent.", case=case.registration_number))
    return _back(case)


@bp.post("/pengaduan/<int:case_id>/tolak-permintaan")
@investigator_required()
@case_action
def decline_request(ctx: Context, case: Case) -> ResponseReturnValue:
    coordination.decline_request(ctx, case, request.form.get("reason", ""))
    flash(gettext("KPK's request was declined; KPK sees the reason."))
    return _back(case)
