"""The JSON API under ``/api/v1``, for the investigators' workstation and other clients.

Described in ``docs/openapi.json``. Authentication is a bearer token: ``POST /api/v1/token``
checks username, password and TOTP code with :func:`wbs.accounts.authenticate` (its throttling
included) and answers a :func:`wbs.accounts.open_session` token, which the client sends as
``Authorization: Bearer <token>``; it has the idle and absolute lifetimes of a browser session
and ``DELETE /api/v1/token`` ends it. No cookie is read or set here, so CSRF protection does not
apply (the blueprint is exempt): a browser never sends the header on its own.

Every case lookup goes through the investigator's :class:`~wbs.tenancy.TenantScope`: another
tenant's case answers 404, the same as an id that does not exist, and a monitor's read-only
cross-tenant view is not offered here. Errors are JSON ``{"error": code, "message": text}``;
nothing about a request is logged.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec

import sqlalchemy as sa
from flask import Blueprint, Flask, current_app, g, jsonify, request, send_file
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from journalist_iface.cases import (
    PAGE_SIZE,
    Item,
    case_items,
    investigator_names,
    number_width,
    own_case,
    timeline,
)
from journalist_iface.context import auth_settings, db, instance
from journalist_iface.views import (
    KLARIFIKASI_LOG_NOTE,
    MAX_NOTE,
    MAX_REPLY,
    NOTE_REQUIRED,
    _stream_bundle,
)
from wbs.accounts import (
    LOGIN_FAILED_MESSAGE,
    ActiveSession,
    authenticate,
    close_session,
    open_session,
    resume_session,
)
from wbs.domain import (
    ALLOWED_TRANSITIONS,
    CATEGORY_LABELS,
    OPEN_STATUSES,
    CaseStatus,
    EventKind,
)
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

bp = Blueprint("api", __name__, url_prefix="/api/v1")

P = ParamSpec("P")
ApiView = Callable[Concatenate[Investigator, Tenant, TenantScope, P], ResponseReturnValue]

# Field limits of the login body: the same as the login form's.
_MAX_USERNAME, _MAX_PASSWORD, _MAX_TOTP = 128, 1024, 16
REPLY_CONTENT_TYPES = frozenset({"application/pgp-encrypted", "application/octet-stream"})
_BOOLEAN_ARGS: Mapping[str, bool] = {"1": True, "true": True, "0": False, "false": False}
_MAX_PAGE = 1_000_000


def register(app: Flask) -> None:
    """Mount the API and exempt it from CSRFProtect (it reads no cookie)."""
    app.register_blueprint(bp)
    app.extensions["csrf"].exempt(bp)


# --- errors ---------------------------------------------------------------------------------


def error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="peluit"'
    return response


_HTTP_CODES: Mapping[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "A valid bearer token is required."),
    403: ("forbidden", "Your role does not allow this action."),
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "This resource cannot be used with that method."),
    413: ("too_large", "The request body is too large."),
    415: ("unsupported_media_type", "The request body has the wrong content type."),
}


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code, message = _HTTP_CODES.get(status, ("error", "The request failed."))
    return error(status, code, message)


# --- authentication -------------------------------------------------------------------------


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _active_session() -> ActiveSession | None:
    if "api_user" not in g:
        token = _bearer_token()
        g.api_user = resume_session(db(), token, settings=auth_settings()) if token else None
    found: ActiveSession | None = g.api_user
    return found


def token_required(view: ApiView[P]) -> Callable[P, ResponseReturnValue]:
    """Hand the token's investigator, their tenant and its scope to the view; else 401."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        active = _active_session()
        if active is None:
            return error(401, "unauthorized", "A valid bearer token is required.")
        scope = TenantScope(db(), active.tenant)
        return view(active.investigator, active.tenant, scope, *args, **kwargs)

    return wrapper


def _login_failed() -> Response:
    # One body for every failure: unknown user, wrong password or code, throttled, malformed.
    return error(401, "login_failed", LOGIN_FAILED_MESSAGE)


@bp.post("/token")
def create_token() -> ResponseReturnValue:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _login_failed()
    username, password, totp = body.get("username"), body.get("password"), body.get("totp")
    if not (isinstance(username, str) and isinstance(password, str) and isinstance(totp, str)):
        return _login_failed()
    result = authenticate(
        db(),
        username[:_MAX_USERNAME],
        password[:_MAX_PASSWORD],
        totp[:_MAX_TOTP],
        settings=auth_settings(),
    )
    if result.investigator is None:
        # The reason only, as for the login form: never the username.
        current_app.logger.warning("api login refused: %s", result.reason)
        return _login_failed()
    now = utcnow()
    token = open_session(db(), result.investigator, now)
    expires_at = now + auth_settings().sessions.absolute
    response = jsonify(
        {
            "token": token,
            "expires_at": _timestamp(expires_at),
            "idle_timeout_seconds": int(auth_settings().sessions.idle.total_seconds()),
        }
    )
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/token")
@token_required
def delete_token(investigator: Investigator, tenant: Tenant, scope: TenantScope) -> Response:
    token = _bearer_token()
    if token:
        close_session(db(), token)
    return Response(status=204)


# --- serialisation --------------------------------------------------------------------------


def _timestamp(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _today() -> dt.date:
    return local_date(utcnow())


def _case_json(case: Case, names: Mapping[int, str], today: dt.date) -> dict[str, Any]:
    assignee = (
        {"id": case.assignee_id, "name": names.get(case.assignee_id, "")}
        if case.assignee_id is not None
        else None
    )
    return {
        "id": case.id,
        "registration_number": case.registration_number,
        "status": case.status.value,
        "status_label": case.status.label,
        "category": case.category,
        "category_label": CATEGORY_LABELS.get(case.category, case.category),
        "mcp_area": case.mcp_area,
        "received_at": _timestamp(case.received_at),
        "last_activity_at": _timestamp(case.last_activity_at),
        "first_response_due": case.first_response_due.isoformat(),
        "closure_due": case.closure_due.isoformat() if case.closure_due else None,
        "overdue": case.first_response_due < today and case.status in OPEN_STATUSES,
        "unread": case.unread,
        "sent_to_kpk": case.sent_to_kpk,
        "assignee": assignee,
        "next_statuses": sorted(
            (status.value for status in ALLOWED_TRANSITIONS[case.status]),
            key=[status.value for status in CaseStatus].index,
        ),
    }


def _event_json(event: Event, names: Mapping[int, str]) -> dict[str, Any]:
    actor = event.actor_investigator_id
    return {
        "id": event.id,
        "kind": event.kind.value if isinstance(event.kind, EventKind) else str(event.kind),
        "from_status": event.from_status.value if event.from_status else None,
        "to_status": event.to_status.value if event.to_status else None,
        "actor": {"id": actor, "name": names.get(actor, "")} if actor is not None else None,
        "note": event.note,
        "created_at": _timestamp(event.created_at),
    }


def _item_json(item: Item, case: Case, width: int) -> dict[str, Any]:
    return {
        "number": item.number,
        "kind": item.kind,
        "size": item.size,
        "created_at": _timestamp(item.created_at),
        "filename": item.filename(case.registration_number, width),
    }


# --- query arguments ------------------------------------------------------------------------


class _BadArgument(ValueError):
    pass


def _flag(name: str) -> bool:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() not in _BOOLEAN_ARGS:
        raise _BadArgument(f"{name} must be 1, 0, true or false")
    return _BOOLEAN_ARGS[raw.lower()]


def _page() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_PAGE:
        raise _BadArgument(f"page must be a whole number from 1 to {_MAX_PAGE}")
    return int(raw)


def _status_arg() -> CaseStatus | None:
    raw = request.args.get("status")
    if not raw:
        return None
    try:
        return CaseStatus(raw)
    except ValueError:
        raise _BadArgument(
            "status must be one of " + ", ".join(status.value for status in CaseStatus)
        ) from None


# --- cases ----------------------------------------------------------------------------------


@bp.get("/cases")
@token_required
def list_cases(investigator: Investigator, tenant: Tenant, scope: TenantScope) -> Response:
    try:
        status, unread, overdue, page = _status_arg(), _flag("unread"), _flag("overdue"), _page()
    except _BadArgument as exc:
        return error(400, "bad_argument", str(exc))
    today = _today()
    statement = scope.select(Case)
    if status is not None:
        statement = statement.where(Case.status == status)
    if unread:
        statement = statement.where(Case.unread.is_(True))
    if overdue:
        statement = statement.where(
            Case.first_response_due < today, Case.status.in_(OPEN_STATUSES)
        )
    session = db()
    total = int(session.scalar(statement.with_only_columns(sa.func.count(Case.id))) or 0)
    pages = max(1, -(-total // PAGE_SIZE))
    rows = session.scalars(
        statement.order_by(Case.first_response_due, Case.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    names = investigator_names(session, tenant)
    return jsonify(
        {
            "cases": [_case_json(case, names, today) for case in rows],
            "page": page,
            "pages": pages,
            "per_page": PAGE_SIZE,
            "total": total,
        }
    )


def _case_or_none(scope: TenantScope, case_id: int) -> Case | None:
    return own_case(scope, case_id)


def _not_found() -> Response:
    return error(404, "not_found", "No such resource.")


@bp.get("/cases/<int:case_id>")
@token_required
def get_case(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int
) -> Response:
    case = _case_or_none(scope, case_id)
    if case is None:
        return _not_found()
    return jsonify(_case_detail(tenant, scope, case))


def _case_detail(tenant: Tenant, scope: TenantScope, case: Case) -> dict[str, Any]:
    session = db()
    names = investigator_names(session, tenant)
    items = case_items(session, case, scope)
    width = number_width(items)
    detail = _case_json(case, names, _today())
    detail["timeline"] = [_event_json(event, names) for event in timeline(session, case, scope)]
    detail["items"] = [_item_json(item, case, width) for item in items]
    return detail


@bp.get("/cases/<int:case_id>/items/<int:number>")
@token_required
def get_item(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int, number: int
) -> ResponseReturnValue:
    case = _case_or_none(scope, case_id)
    if case is None:
        return _not_found()
    items = case_items(db(), case, scope)
    item = next((found for found in items if found.number == number), None)
    if item is None:
        return _not_found()
    model: type[Reply] | type[Submission] = Reply if item.kind == "reply" else Submission
    row: Reply | Submission | None = scope.get(model, item.row_id)
    if row is None:
        return _not_found()
    return send_file(
        instance().store.open(row.store_path),
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=item.filename(case.registration_number, number_width(items)),
        max_age=0,
    )


@bp.get("/cases/<int:case_id>/bundle")
@token_required
def get_bundle(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int
) -> Response:
    case = _case_or_none(scope, case_id)
    if case is None:
        return _not_found()
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


@bp.post("/cases/<int:case_id>/replies")
@token_required
def upload_reply(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int
) -> Response:
    case = _case_or_none(scope, case_id)
    if case is None:
        return _not_found()
    if request.mimetype not in REPLY_CONTENT_TYPES:
        return error(
            415,
            "unsupported_media_type",
            "Send the binary OpenPGP message as application/pgp-encrypted or "
            "application/octet-stream.",
        )
    # Ciphertext only; a larger body is refused (413) before it is read.
    request.max_content_length = MAX_ENCRYPTED_REPLY_BYTES
    data = request.get_data(cache=False)
    try:
        reply = accept_encrypted_reply(
            instance(), db(), tenant, case, data, investigator_id=investigator.id
        )
    except ReportError as exc:
        # The reason names keys and shapes, never content: the server cannot read the reply.
        return error(400, "reply_refused", str(exc))
    response = jsonify({"id": reply.id, "size": reply.size})
    response.status_code = 201
    return response


@bp.post("/cases/<int:case_id>/status")
@token_required
def set_status(
    investigator: Investigator, tenant: Tenant, scope: TenantScope, case_id: int
) -> Response:
    """The web view's rules: an allowed transition; a note for diarsipkan (the reason) and
    klarifikasi (the question, which goes to the pelapor as an encrypted reply)."""
    case = _case_or_none(scope, case_id)
    if case is None:
        return _not_found()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, "bad_request", "Send a JSON object with status and note.")
    unknown = set(body) - {"status", "note"}
    if unknown:
        return error(400, "bad_request", "Unknown fields: " + ", ".join(sorted(unknown)))
    raw_status, raw_note = body.get("status"), body.get("note", "")
    if raw_note is None:
        raw_note = ""
    if not isinstance(raw_status, str) or not isinstance(raw_note, str):
        return error(400, "bad_request", "status and note must be strings.")
    try:
        new = CaseStatus(raw_status)
    except ValueError:
        return error(
            400,
            "bad_status",
            "status must be one of " + ", ".join(status.value for status in CaseStatus),
        )
    if new not in ALLOWED_TRANSITIONS[case.status]:
        return error(
            409, "transition_refused", f"A case cannot go from {case.status.value} to {new.value}."
        )
    note = raw_note.strip()
    if new in NOTE_REQUIRED and not note:
        message = (
            "note must hold the question for the reporter."
            if new == CaseStatus.KLARIFIKASI
            else "note must hold the reason for archiving."
        )
        return error(400, "note_required", message)
    limit = MAX_REPLY if new == CaseStatus.KLARIFIKASI else MAX_NOTE
    if len(note) > limit:
        return error(400, "note_too_long", f"note has at most {limit} characters.")
    log_note: str | None = note or None
    if new == CaseStatus.KLARIFIKASI:
        try:
            post_reply(instance(), db(), tenant, case, note, investigator_id=investigator.id)
        except (ReportError, TenantError):
            return error(
                409, "no_key", "The question could not be encrypted: the institution has no key."
            )
        log_note = KLARIFIKASI_LOG_NOTE
    change_status(db(), tenant, case, new, actor_id=investigator.id, note=log_note)
    return jsonify(_case_detail(tenant, scope, case))
