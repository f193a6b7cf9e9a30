"""The investigator's pages: login, inbox, case page and the case actions.

Views parse, call :mod:`wbs` (accounts, reports, bundle) and render. Every case-scoped view
looks the case up through the investigator's scope (:mod:`journalist_iface.cases`); a case of
another tenant answers 404, the same as an id that does not exist, so ids cannot be probed.
Actions (status, assignment, reply, download, export) reach only the own tenant's cases: a
monitor's cross-tenant cases are read-only and answer 404 to every action.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Iterator

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
from journalist_iface.auth import (
    COOKIE_NAME,
    current_session,
    investigator_required,
    log_in,
    log_out,
)
from journalist_iface.cases import (
    InboxFilters,
    assignable,
    case_items,
    inbox,
    investigator_names,
    number_width,
    own_case,
    readable_case,
    reader_for,
    reads_across_tenants,
    timeline,
)
from journalist_iface.context import (
    LANGUAGE_COOKIE,
    auth_settings,
    db,
    instance,
)
from wbs.accounts import authenticate
from wbs.bundle import write_bundle
from wbs.domain import (
    ALLOWED_TRANSITIONS,
    CATEGORY_LABELS,
    MCP_AREA_LABELS,
    MCP_AREAS,
    CaseStatus,
    EventKind,
    Role,
    can_transition,
)
from wbs.instance import Instance
from wbs.models import Case, Event, Investigator, Reply, Submission, Tenant, utcnow
from wbs.reports import (
    MAX_ENCRYPTED_REPLY_BYTES,
    ReportError,
    accept_encrypted_reply,
    change_status,
    post_reply,
)
from wbs.tenancy import TenantScope
from wbs.tenants import TenantError
from wbs.workdays import local_date

bp = Blueprint("journalist", __name__)

# What a monitor's or an admin's role adds: assigning a case to anyone of the tenant. A
# verifikator may only take a case themselves or give up their own assignment.
ASSIGNS_ANYONE = frozenset({Role.ADMIN_INSTANSI, Role.PEMANTAU_KPK})
# The log is plaintext: a reason, never report content. Klarifikasi's question goes to the
# pelapor as an encrypted reply, and the log says only that it did.
NOTE_REQUIRED = frozenset({CaseStatus.DIARSIPKAN, CaseStatus.KLARIFIKASI})
KLARIFIKASI_LOG_NOTE = "Pertanyaan dikirim sebagai balasan"
MAX_NOTE = 500
MAX_REPLY = 20_000
_CHUNK = 256 * 1024

LOGIN_FAILED = lazy_gettext(
    "Wrong username, password or authenticator code, or too many attempts. Check them and "
    "try again in a moment."
)


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
def index(investigator: Investigator, tenant: Tenant, scope: TenantScope) -> ResponseReturnValue:
    filters = InboxFilters.from_args(request.args)
    page = inbox(db(), investigator, tenant, filters, _today())
    return render_template(
        "inbox.html",
        page=page,
        filters=filters,
        statuses=list(CaseStatus),
        categories=sorted(CATEGORY_LABELS.items(), key=lambda item: item[1]),
        mcp_areas=MCP_AREAS,
        team=assignable(db(), tenant),
        cross_tenant=reads_across_tenants(investigator, tenant),
        today=_today(),
    )


# --- the case page --------------------------------------------------------------------------


def _case_page(
    investigator: Investigator,
    tenant: Tenant,
    scope: TenantScope,
    case: Case,
    *,
    error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> ResponseReturnValue:
    reader = reader_for(db(), scope, tenant, case)
    writable = reader is scope
    items = case_items(db(), case, reader)
    today = _today()
    calendar = instance().calendar
    return render_template(
        "case.html",
        case=case,
        writable=writable,
        case_tenant=db().get(Tenant, case.tenant_id),
        items=items,
        width=number_width(items),
        events=timeline(db(), case, reader),
        names=investigator_names(db(), tenant) if writable else {},
        team=assignable(db(), tenant) if writable else [],
        may_assign_anyone=investigator.role in ASSIGNS_ANYONE,
        next_statuses=sorted(ALLOWED_TRANSITIONS[case.status], key=list(CaseStatus).index),
        first_left=calendar.working_days_between(today, case.first_response_due),
        closure_left=(
            calendar.working_days_between(today, case.closure_due) if case.closure_due else None
        ),
        category_name=CATEGORY_LABELS.get(case.category, case.category),
        mcp_label=MCP_AREA_LABELS.get(case.mcp_area, case.mcp_area) if case.mcp_area else None,
        error=error,
        form=form or {},
    ), status


@bp.get("/pengaduan/<int:case_id>")
@investigator_required()
def case_page(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int
) -> ResponseReturnValue:
    case = readable_case(db(), investigator, tenant, case_id)
    if case is None:
        abort(404)
    return _case_page(investigator, tenant, scope, case)


def _own_case_or_404(scope: TenantScope, case_id: int) -> Case:
    case = own_case(scope, case_id)
    if case is None:
        abort(404)
    return case


def _back(case: Case) -> Response:
    return redirect(url_for("journalist.case_page", case_id=case.id))


# --- actions --------------------------------------------------------------------------------


@bp.post("/pengaduan/<int:case_id>/status")
@investigator_required()
def set_status(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int
) -> ResponseReturnValue:
    case = _own_case_or_404(scope, case_id)
    note = request.form.get("note", "").strip()
    form = {"status": request.form.get("status", ""), "note": note}
    try:
        new = CaseStatus(form["status"])
    except ValueError:
        return _refuse(investigator, tenant, scope, case, gettext("Choose the new status."), form)
    if not can_transition(case.status, new):
        message = gettext(
            "A case cannot go from %(current)s to %(new)s.",
            current=case.status.label,
            new=new.label,
        )
        return _refuse(investigator, tenant, scope, case, message, form)
    if new in NOTE_REQUIRED and not note:
        message = (
            gettext("Write the question for the reporter.")
            if new == CaseStatus.KLARIFIKASI
            else gettext("Write the reason for archiving.")
        )
        return _refuse(investigator, tenant, scope, case, message, form)
    limit = MAX_REPLY if new == CaseStatus.KLARIFIKASI else MAX_NOTE
    if len(note) > limit:
        message = gettext("The text is too long (at most %(limit)d characters).", limit=limit)
        return _refuse(investigator, tenant, scope, case, message, form)
    log_note: str | None = note or None
    if new == CaseStatus.KLARIFIKASI:
        try:
            post_reply(instance(), db(), tenant, case, note, investigator_id=investigator.id)
        except (ReportError, TenantError):
            message = gettext("The question could not be encrypted: the institution has no key.")
            return _refuse(investigator, tenant, scope, case, message, form)
        log_note = KLARIFIKASI_LOG_NOTE
    change_status(db(), tenant, case, new, actor_id=investigator.id, note=log_note)
    flash(gettext("Status changed to %(status)s.", status=new.label))
    return _back(case)


def _refuse(
    investigator: Investigator,
    tenant: Tenant,
    scope: TenantScope,
    case: Case,
    message: str,
    form: dict[str, str],
) -> ResponseReturnValue:
    return _case_page(investigator, tenant, scope, case, error=message, status=400, form=form)


@bp.post("/pengaduan/<int:case_id>/tugaskan")
@investigator_required()
def assign(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int
) -> ResponseReturnValue:
    case = _own_case_or_404(scope, case_id)
    raw = request.form.get("assignee", "")
    target: Investigator | None = None
    if raw:
        target = scope.get(Investigator, int(raw)) if raw.isdigit() else None
        if target is None or not target.active:
            abort(400)
    if investigator.role not in ASSIGNS_ANYONE:
        # Taking a case, or giving up one's own: nothing else for a verifikator.
        own = target is not None and target.id == investigator.id
        giving_up = target is None and case.assignee_id == investigator.id
        if not (own or giving_up):
            abort(403)
    if (target.id if target else None) == case.assignee_id:
        return _back(case)
    case.assignee_id = target.id if target else None
    scope.add(
        Event(
            case_id=case.id,
            kind=EventKind.ASSIGNED if target else EventKind.UNASSIGNED,
            actor_investigator_id=investigator.id,
            # Who the case went to: an account name, never report content.
            note=target.username if target else None,
        )
    )
    db().commit()
    flash(
        gettext("Assigned to %(name)s.", name=target.display_name)
        if target
        else gettext("The assignment was removed.")
    )
    return _back(case)


@bp.post("/pengaduan/<int:case_id>/balas")
@investigator_required()
def reply(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int
) -> ResponseReturnValue:
    case = _own_case_or_404(scope, case_id)
    text = request.form.get("text", "").strip()
    form = {"reply": text}
    if not text:
        return _refuse(investigator, tenant, scope, case, gettext("Write the reply."), form)
    if len(text) > MAX_REPLY:
        message = gettext("The text is too long (at most %(limit)d characters).", limit=MAX_REPLY)
        return _refuse(investigator, tenant, scope, case, message, form)
    try:
        post_reply(instance(), db(), tenant, case, text, investigator_id=investigator.id)
    except (ReportError, TenantError):
        message = gettext("The reply could not be encrypted: the institution has no key.")
        return _refuse(investigator, tenant, scope, case, message, form)
    flash(gettext("The reply was encrypted and sent to the reporter."))
    return _back(case)


@bp.post("/pengaduan/<int:case_id>/balas-terenkripsi")
@investigator_required()
def upload_encrypted_reply(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int
) -> ResponseReturnValue:
    """A reply encrypted on the air-gapped workstation: its plaintext never reaches us."""
    case = _own_case_or_404(scope, case_id)
    # Ciphertext only, so Werkzeug may buffer it as it likes; the size is still bounded.
    request.max_content_length = MAX_ENCRYPTED_REPLY_BYTES + 64 * 1024
    upload = request.files.get("reply_file")
    data = upload.read(MAX_ENCRYPTED_REPLY_BYTES + 1) if upload else b""
    try:
        accept_encrypted_reply(
            instance(), db(), tenant, case, data, investigator_id=investigator.id
        )
    except ReportError as exc:
        # The reason names keys and shapes, never content: the server cannot read the file.
        message = gettext("The encrypted reply was refused: %(reason)s", reason=str(exc))
        return _refuse(investigator, tenant, scope, case, message, {})
    flash(gettext("The encrypted reply was stored and the reporter can read it."))
    return _back(case)


@bp.post("/pengaduan/<int:case_id>/dibaca")
@investigator_required()
def mark_seen(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int
) -> ResponseReturnValue:
    case = _own_case_or_404(scope, case_id)
    case.unread = False
    for submission in db().scalars(
        scope.select(Submission).where(Submission.case_id == case.id, Submission.seen.is_(False))
    ):
        submission.seen = True
    scope.add(
        Event(case_id=case.id, kind=EventKind.MARKED_SEEN, actor_investigator_id=investigator.id)
    )
    db().commit()
    flash(gettext("Marked as read."))
    return _back(case)


@bp.get("/pengaduan/<int:case_id>/berkas/<int:number>")
@investigator_required()
def download(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int, number: int
) -> ResponseReturnValue:
    case = _own_case_or_404(scope, case_id)
    items = case_items(db(), case, scope)
    item = next((found for found in items if found.number == number), None)
    if item is None:
        abort(404)
    row: Reply | Submission | None = (
        scope.get(Reply, item.row_id)
        if item.kind == "reply"
        else scope.get(Submission, item.row_id)
    )
    if row is None:
        abort(404)
    return send_file(
        instance().store.open(row.store_path),
        mimetype="application/pgp-encrypted",
        as_attachment=True,
        download_name=item.filename(case.registration_number, number_width(items)),
        max_age=0,
    )


@bp.post("/pengaduan/<int:case_id>/ekspor")
@investigator_required()
def export(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int
) -> ResponseReturnValue:
    case = _own_case_or_404(scope, case_id)
    scope.add(
        Event(case_id=case.id, kind=EventKind.EXPORTED, actor_investigator_id=investigator.id)
    )
    db().commit()
    name = f"{case.registration_number}.zip"
    return Response(
        _stream_bundle(instance(), current_app.logger, tenant.id, case.id),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
        direct_passthrough=True,
    )


def _stream_bundle(
    inst: Instance, logger: logging.Logger, tenant_id: int, case_id: int
) -> Iterator[bytes]:
    """The bundle of one case, written by a thread into a pipe and read from it here.

    A pipe, not a temporary file: the manifest holds the case's metadata in plaintext, and
    nothing of it should be left on disk; memory stays flat whatever the items' size.
    """
    read_fd, write_fd = os.pipe()

    def write() -> None:
        try:
            with os.fdopen(write_fd, "wb") as out, inst.sessions() as session:
                tenant = session.get(Tenant, tenant_id)
                case = TenantScope(session, tenant).get(Case, case_id) if tenant else None
                if tenant is None or case is None:
                    return
                write_bundle(inst, session, tenant, [case], out)
        except BrokenPipeError:
            pass  # the browser went away; the partial bundle has no signature
        except Exception as exc:  # a thread's error must be logged, not lost
            # The type only: a message could name a path of the store.
            logger.error("bundle export failed: %s", type(exc).__name__)

    thread = threading.Thread(target=write, name="peluit-export", daemon=True)
    thread.start()
    with os.fdopen(read_fd, "rb") as source:
        while chunk := source.read(_CHUNK):
            yield chunk
    thread.join()
