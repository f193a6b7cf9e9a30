"""The JSON API under ``/api/v1``, for the investigators' workstation and other clients.

Described in ``docs/openapi.json``. Authentication is a bearer token: ``POST /api/v1/token``
checks username, password and TOTP code with :func:`wbs.accounts.authenticate` (its throttling
included) and answers a :func:`wbs.accounts.open_session` token, which the client sends as
``Authorization: Bearer <token>``; it has the idle and absolute lifetimes of a browser session
and ``DELETE /api/v1/token`` ends it. No cookie is read or set here, so CSRF protection does not
apply (the blueprint is exempt): a browser never sends the header on its own.

Every case lookup goes through the investigator's :class:`~wbs.tenancy.TenantScope`: another
tenant's case answers 404, the same as an id that does not exist. KPK's accounts also read
KPK's copy (:class:`~wbs.tenancy.SharedScope`): the cases shared with KPK are listed, and
their details, items and bundles are read as the hub's own; every action that changes a case
answers 404 on them. Errors are JSON ``{"error": code, "message": text}``;
nothing about a request is logged.
"""

from __future__ import annotations

import datetime as dt
import functools
import shutil
import tempfile
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec

from flask import Blueprint, Flask, current_app, g, jsonify, request, send_file
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from journalist_iface.context import auth_settings, db, instance
from wbs import casework, coordination, matters, takeover
from wbs.accounts import (
    LOGIN_FAILED_MESSAGE,
    ActiveSession,
    authenticate,
    close_session,
    open_session,
    resume_session,
)
from wbs.casework import MAX_ENCRYPTED_REPLY_BYTES, Refusal
from wbs.context import Context
from wbs.deadlines import FirstResponse, closure, first_response
from wbs.domain import (
    ALLOWED_TRANSITIONS,
    CATEGORY_LABELS,
    CaseFlag,
    CaseStatus,
    EventKind,
    Role,
)
from wbs.forwarding import (
    accept_forward,
    forward_external,
    max_forward_bytes,
    signed_key_list,
)
from wbs.inbox import (
    PAGE_SIZE,
    InboxFilters,
    inbox,
    investigator_names,
    number_query,
    tenant_slugs,
)
from wbs.items import Item, TimelineEntry, number_width
from wbs.models import Case, Matter, Tenant, utcnow
from wbs.numbers import whole_number
from wbs.operator_intake import accept_package, max_package_bytes
from wbs.sketches import MAX_SKETCH_BYTES, accept_sketches, duplicate_candidates
from wbs.workdays import local_date

URL_PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=URL_PREFIX)

P = ParamSpec("P")
ApiView = Callable[Concatenate[Context, P], ResponseReturnValue]

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
    503: ("busy", "The server is busy; nothing was changed. Try again in a moment."),
}


def http_error(exc: HTTPException) -> Response:
    """Every HTTP error under ``/api/v1`` as JSON, whether a route matched or not (registered
    by :mod:`journalist_iface.errors`)."""
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
    """Hand the request's context (the token's investigator as the actor) to the view; else
    401."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        active = _active_session()
        if active is None:
            return error(401, "unauthorized", "A valid bearer token is required.")
        return view(Context(instance(), db(), active.tenant, active.investigator), *args, **kwargs)

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
def delete_token(ctx: Context) -> Response:
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


def _case_json(
    ctx: Context, case: Case, names: Mapping[int, str], today: dt.date,
    slugs: Mapping[int, str],
) -> dict[str, Any]:
    own = case.tenant_id == ctx.tenant.id
    # Another tenant's assignment is theirs: its account means nothing to KPK, and stays home.
    assignee = (
        {"id": case.assignee_id, "name": names.get(case.assignee_id, "")}
        if case.assignee_id is not None and own
        else None
    )
    return {
        "id": case.id,
        "registration_number": case.registration_number,
        # Whose case it is, and whether this reader may act on it (KPK's copy of a shared
        # case is read-only).
        "tenant": slugs.get(case.tenant_id, ""),
        "read_only": not own,
        "status": case.status.value,
        "status_label": case.status.label,
        "category": case.category,
        "category_label": CATEGORY_LABELS.get(case.category, case.category),
        "mcp_area": case.mcp_area,
        "received_at": _timestamp(case.received_at),
        "last_activity_at": _timestamp(case.last_activity_at),
        "first_response_due": case.first_response_due.isoformat(),
        "closure_due": case.closure_due.isoformat() if case.closure_due else None,
        "overdue": first_response(case, today) == FirstResponse.MISSING,
        "first_response": first_response(case, today).value,
        "closure": closure(case, today).value,
        # The marks are the own team's; another tenant's mean nothing to the reader.
        "unread": case.unread,
        "starred": case.starred and own,
        "needs_reply": case.needs_reply and own,
        "sent_to_kpk": case.sent_to_kpk,
        "kpk_jurisdiction_hint": case.kpk_hint,
        "channel": case.channel.value,
        "assignee": assignee,
        "next_statuses": sorted(
            (status.value for status in ALLOWED_TRANSITIONS[case.status]),
            key=[status.value for status in CaseStatus].index,
        ) if own and case.linked_to_case_id is None else [],
        # Forwarded or taken over: another case handles it; this one is read-only.
        "handled_elsewhere": case.linked_to_case_id is not None,
        "taken_over_by_kpk": case.taken_over_at is not None,
        # KPK's open request to forward the case (permintaan pelimpahan), if any.
        "forward_requested_at": (
            _timestamp(case.forward_requested_at) if case.forward_requested_at else None
        ),
    }


def _event_json(event: TimelineEntry, names: Mapping[int, str]) -> dict[str, Any]:
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
        "framing": item.framing,
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
    page = whole_number(request.args.get("page", "1"), len(str(_MAX_PAGE)))
    if page is None or not 1 <= page <= _MAX_PAGE:
        raise _BadArgument(f"page must be a whole number from 1 to {_MAX_PAGE}")
    return page


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

# How a refusal of the domain answers here: its code, with this HTTP status.
_REFUSAL_STATUS: Mapping[str, int] = {
    "not_found": 404,
    "forbidden": 403,
    "transition_refused": 409,
    "no_key": 409,
    "no_kpk_key": 409,
    "no_source": 409,
    "intake_replayed": 409,
    "intake_closed": 503,
    "forward_replayed": 409,
    "forward_not_handler": 409,
    "forward_shared": 409,
    "forward_no_tenant": 404,
    "handled_elsewhere": 409,
    "taken_over": 409,
    "kpk_own_case": 409,
    "takeover_refused": 409,
    "takeover_no_key": 409,
    "takeover_not_for_kpk": 409,
    "takeover_items_changed": 409,
    "request_refused": 409,
    "request_open": 409,
    "no_request": 409,

    "matter_already_linked": 409,
    "matter_two_leads": 409,
    "matter_join_kpk": 409,
    "in_matter": 409,
    "matter_lead_named": 409,
    "matter_closed_case": 409,
    "matter_not_handler": 409,
    "matter_no_lead": 409,
    "matter_is_lead": 409,
    "matter_none": 409,

    "sketches_too_large": 413,
}


def _refused(refusal: Refusal) -> Response:
    return error(_REFUSAL_STATUS.get(refusal.code, 400), refusal.code, str(refusal))


def _case_view(
    view: Callable[Concatenate[Context, Case, P], ResponseReturnValue],
    lookup: Callable[[Context, int], Case],
) -> Callable[..., ResponseReturnValue]:
    def wrapper(
        ctx: Context, case_id: int, *args: P.args, **kwargs: P.kwargs
    ) -> ResponseReturnValue:
        try:
            return view(ctx, lookup(ctx, case_id), *args, **kwargs)
        except Refusal as refusal:
            ctx.session.rollback()
            if refusal.code == "not_found":
                return _not_found()
            return _refused(refusal)

    # Not functools.wraps: the signature changes (an id in, a case out); Flask needs the name.
    wrapper.__name__, wrapper.__doc__ = view.__name__, view.__doc__
    return wrapper


def case_required(
    view: Callable[Concatenate[Context, Case, P], ResponseReturnValue],
) -> Callable[..., ResponseReturnValue]:
    """The own case by id, for an action that changes it (anything else, KPK's read-only
    copy of a shared case included, is 404), and every refusal as a JSON error."""
    return _case_view(view, casework.own_case)


def case_readable(
    view: Callable[Concatenate[Context, Case, P], ResponseReturnValue],
) -> Callable[..., ResponseReturnValue]:
    """As :func:`case_required`, for reading: any case the investigator may read, KPK's copy
    of a shared case included."""
    return _case_view(view, casework.readable_case)


@bp.get("/cases")
@token_required
def list_cases(ctx: Context) -> Response:
    try:
        filters = InboxFilters(
            status=_status_arg(),
            unread=_flag("unread"),
            overdue=_flag("overdue"),
            starred=_flag("starred"),
            needs_reply=_flag("needs_reply"),
            number=number_query(request.args.get("number", "")),
            page=_page(),
        )
    except _BadArgument as exc:
        return error(400, "bad_argument", str(exc))
    today = _today()
    page = inbox(ctx, filters, today)
    names = investigator_names(ctx)
    return jsonify(
        {
            "cases": [_case_json(ctx, case, names, today, page.slugs) for case in page.cases],
            "page": page.page,
            "pages": page.pages,
            "per_page": PAGE_SIZE,
            "total": page.total,
        }
    )


def _not_found() -> Response:
    return error(404, "not_found", "No such resource.")


@bp.get("/cases/<int:case_id>")
@token_required
@case_readable
def get_case(ctx: Context, case: Case) -> Response:
    return jsonify(_case_detail(ctx, case))


def _case_detail(ctx: Context, case: Case) -> dict[str, Any]:
    names = investigator_names(ctx)
    items = casework.items(ctx, case)
    width = number_width(items)
    detail = _case_json(ctx, case, names, _today(), tenant_slugs(ctx))
    detail["timeline"] = [_event_json(event, names) for event in casework.timeline(ctx, case)]
    detail["items"] = [_item_json(item, case, width) for item in items]
    return detail


@bp.get("/cases/<int:case_id>/items/<int:number>")
@token_required
@case_readable
def get_item(ctx: Context, case: Case, number: int) -> ResponseReturnValue:
    item = casework.open_item(ctx, case, number)
    return send_file(
        item.stream,
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=item.filename,
        max_age=0,
    )


@bp.get("/cases/<int:case_id>/bundle")
@token_required
@case_readable
def get_bundle(ctx: Context, case: Case) -> Response:
    bundle = casework.export(ctx, case, current_app.logger)
    return Response(
        bundle.chunks,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{bundle.filename}"'},
        direct_passthrough=True,
    )


@bp.post("/cases/<int:case_id>/replies")
@token_required
@case_required
def upload_reply(ctx: Context, case: Case) -> Response:
    if request.mimetype not in REPLY_CONTENT_TYPES:
        return error(
            415,
            "unsupported_media_type",
            "Send the binary OpenPGP message as application/pgp-encrypted or "
            "application/octet-stream.",
        )
    # Ciphertext only; a larger body is refused (413) before it is read.
    request.max_content_length = MAX_ENCRYPTED_REPLY_BYTES
    reply = casework.accept_encrypted_reply(ctx, case, request.get_data(cache=False))
    response = jsonify({"id": reply.id, "size": reply.size})
    response.status_code = 201
    return response


@bp.post("/cases/<int:case_id>/classification")
@token_required
@case_required
def reclassify(ctx: Context, case: Case) -> Response:
    """Correct the category and MCP area (:func:`wbs.casework.reclassify`)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, "bad_request", "Send a JSON object with category and mcp_area.")
    unknown = set(body) - {"category", "mcp_area"}
    if unknown:
        return error(400, "bad_request", "Unknown fields: " + ", ".join(sorted(unknown)))
    category, mcp_area = body.get("category"), body.get("mcp_area")
    if not isinstance(category, str) or not (mcp_area is None or isinstance(mcp_area, str)):
        return error(400, "bad_request", "category must be a string, mcp_area a string or null.")
    casework.reclassify(ctx, case, category, mcp_area)
    return jsonify(_case_detail(ctx, case))


@bp.post("/cases/<int:case_id>/status")
@token_required
@case_required
def set_status(ctx: Context, case: Case) -> Response:
    """The rules of :func:`wbs.casework.change_status`, as for the web form."""
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
    casework.change_status(ctx, case, casework.parse_status(raw_status), raw_note)
    return jsonify(_case_detail(ctx, case))


_FLAG_FIELDS: Mapping[str, CaseFlag] = {
    "starred": CaseFlag.STAR,
    "needs_reply": CaseFlag.NEEDS_REPLY,
}


@bp.post("/cases/<int:case_id>/flags")
@token_required
@case_required
def set_flags(ctx: Context, case: Case) -> Response:
    """Set or clear the team's marks: ``{"starred": true}``, ``{"needs_reply": false}`` or
    both. Each change is logged by :func:`wbs.casework.set_flag`; an unchanged mark is not."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not body:
        return error(400, "bad_request", "Send a JSON object with starred and/or needs_reply.")
    unknown = set(body) - set(_FLAG_FIELDS)
    if unknown:
        return error(400, "bad_request", "Unknown fields: " + ", ".join(sorted(unknown)))
    if not all(isinstance(value, bool) for value in body.values()):
        return error(400, "bad_request", "starred and needs_reply must be true or false.")
    for field, flag in _FLAG_FIELDS.items():
        if field in body:
            casework.set_flag(ctx, case, flag, body[field])
    return jsonify(_case_detail(ctx, case))
INTAKE_CONTENT_TYPES = frozenset({"application/zip", "application/octet-stream"})


@bp.post("/intake")
@token_required
def upload_intake(ctx: Context) -> Response:
    """An operator-intake package (``docs/intake-package.md``): a new case and its codename,
    in this response only (no-store)."""
    if request.mimetype not in INTAKE_CONTENT_TYPES:
        return error(
            415, "unsupported_media_type", "Send the package as application/zip."
        )
    request.max_content_length = max_package_bytes(ctx)
    # Ciphertext and coarse fields only; spooled to a temporary file (the ZIP reader seeks).
    with tempfile.TemporaryFile() as body:
        shutil.copyfileobj(request.stream, body, 1024 * 1024)
        body.seek(0)
        try:
            opened = accept_package(ctx, body)
        except Refusal as refusal:
            ctx.session.rollback()
            return _refused(refusal)
    case = opened.case
    response = jsonify(
        {
            "id": case.id,
            "registration_number": case.registration_number,
            "channel": case.channel.value,
            "first_response_due": case.first_response_due.isoformat(),
            "codename": opened.codename,
        }
    )
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


# --- pelimpahan (docs/forwarding.md) --------------------------------------------------------


@bp.get("/keys")
@token_required
def get_key_list(ctx: Context) -> Response:
    """The receiving institution's current keys (and KPK's), signed by the instance: what
    the workstation re-encrypts a forwarded case to. ``?tenant=<slug>``."""
    slug = request.args.get("tenant", "")[:40]
    try:
        data = signed_key_list(ctx, slug)
    except Refusal as refusal:
        ctx.session.rollback()
        if refusal.code == "forward_no_tenant":
            return _not_found()
        return _refused(refusal)
    return Response(
        data,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="keys-{slug}.json"'},
    )


@bp.post("/cases/<int:case_id>/forward")
@token_required
@case_required
def forward_case(ctx: Context, case: Case) -> Response:
    """A forwarding package for this case: the linked case is opened in the receiving
    tenant and this case becomes diteruskan, or nothing happens."""
    if request.mimetype not in INTAKE_CONTENT_TYPES:
        return error(415, "unsupported_media_type", "Send the package as application/zip.")
    request.max_content_length = max_forward_bytes(case)
    with tempfile.TemporaryFile() as body:
        shutil.copyfileobj(request.stream, body, 1024 * 1024)
        body.seek(0)
        linked = accept_forward(ctx, case, body)
    destination = ctx.session.get(Tenant, linked.tenant_id)
    if destination is None:  # pragma: no cover - the linked case's tenant exists
        return _not_found()
    response = jsonify(
        {
            "id": case.id,
            "registration_number": case.registration_number,
            "status": case.status.value,
            "forwarded_to": {
                "tenant": destination.slug,
                "name": destination.name,
                "registration_number": linked.registration_number,
            },
        }
    )
    response.status_code = 201
    return response


@bp.post("/cases/<int:case_id>/forward-external")
@token_required
@case_required
def forward_case_external(ctx: Context, case: Case) -> Response:
    """Record a forwarding outside the system (Kejaksaan, Polri, BPK) by letter."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("body"), str) or not isinstance(
        body.get("letter_number"), str
    ):
        return error(400, "bad_request", "Send JSON with body and letter_number.")
    forward_external(ctx, case, body["body"], body["letter_number"])
    return jsonify(_case_detail(ctx, case))


# --- pengambilalihan and permintaan pelimpahan (docs/takeover.md) --------------------------


def _reason_field() -> str | Response:
    """The ``reason`` code of a JSON object body (a code of a list, never free text: the domain
    checks it), or the error answer."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) - {"reason"}:
        return error(400, "bad_request", "Send a JSON object with reason only.")
    value = body.get("reason")
    if not isinstance(value, str):
        return error(400, "bad_request", "reason must be a string: a reason code.")
    return value


@bp.post("/cases/<int:case_id>/takeover")
@token_required
@case_readable
def take_over(ctx: Context, case: Case) -> Response:
    """KPK takes over a case shared with it (:func:`wbs.takeover.take_over`): ``{"reason"}``,
    a code of :class:`wbs.domain.TakeoverReason`."""
    reason = _reason_field()
    if isinstance(reason, Response):
        return reason
    linked = takeover.take_over(ctx, case, reason)
    response = jsonify(
        {
            "id": case.id,
            "registration_number": case.registration_number,
            "status": case.status.value,
            "taken_over_as": {
                "id": linked.id,
                "tenant": ctx.tenant.slug,
                "registration_number": linked.registration_number,
            },
        }
    )
    response.status_code = 201
    return response


@bp.post("/cases/<int:case_id>/forward-request")
@token_required
@case_readable
def request_forward(ctx: Context, case: Case) -> Response:
    """KPK asks the case's institution to forward it to KPK: ``{"reason"}``, a code of
    :class:`wbs.domain.RequestReason`."""
    reason = _reason_field()
    if isinstance(reason, Response):
        return reason
    coordination.request_forward(ctx, case, reason)
    return jsonify(_case_detail(ctx, case))


@bp.post("/cases/<int:case_id>/forward-request/decline")
@token_required
@case_required
def decline_forward_request(ctx: Context, case: Case) -> Response:
    """The institution declines KPK's open request, with ``{"reason"}`` (a code of
    :class:`wbs.domain.DeclineReason`), whose label KPK reads."""
    reason = _reason_field()
    if isinstance(reason, Response):
        return reason
    coordination.decline_request(ctx, case, reason)
    return jsonify(_case_detail(ctx, case))


# --- duplicates across institutions (keyed sketches) ---------------------------------------


@bp.post("/sketches")
@token_required
def upload_sketches(ctx: Context) -> Response:
    """The sketch document ``peluit-workstation sketches export`` wrote, for the
    investigator's own tenant's cases; all or nothing."""
    if request.mimetype != "application/json":
        return error(415, "unsupported_media_type", "Send the sketches as application/json.")
    request.max_content_length = MAX_SKETCH_BYTES
    try:
        stored = accept_sketches(ctx, request.get_data(cache=False))
    except Refusal as refusal:
        ctx.session.rollback()
        return _refused(refusal)
    return jsonify({"stored": stored})


@bp.get("/duplicates")
@token_required
def list_duplicates(ctx: Context) -> Response:
    """Candidate pairs across tenants, for KPK's monitor only: handling metadata and scores."""
    if ctx.investigator.role != Role.PEMANTAU_KPK or not ctx.tenant.is_hub:
        return error(403, "forbidden", "Only KPK's monitor sees duplicates across institutions.")
    pairs = duplicate_candidates(ctx.session, ctx.tenant)
    return jsonify(
        {
            "pairs": [
                {
                    "score": pair.score,
                    "parts": dict(pair.parts),
                    "cases": [
                        {
                            "registration_number": side.registration_number,
                            "tenant": side.tenant_slug,
                            "status": side.status.value,
                            "category": side.category,
                        }
                        for side in (pair.first, pair.second)
                    ],
                }
                for pair in pairs
            ]
        }
    )


# --- one handler per matter (wbs.matters) ---------------------------------------------------


def _matter_json(view: matters.MatterView) -> dict[str, Any]:
    lead = view.lead
    return {
        "id": view.id,
        "created_at": _timestamp(view.created_at),
        "lead": lead.registration_number if lead is not None else None,
        "lead_named_at": _timestamp(view.lead_named_at) if view.lead_named_at else None,
        # Each case as this reader may see it: one it cannot see names its institution only
        # (and its number when it is the lead).
        "cases": [
            {
                "registration_number": member.registration_number,
                "tenant": member.tenant_slug,
                "tenant_name": member.tenant_name,
                "visible": member.visible,
                "own": member.own,
                "lead": member.lead,
                "status": member.status.value if member.status else None,
                "received_at": _timestamp(member.received_at) if member.received_at else None,
                "first_response": member.first_response.value if member.first_response else None,
            }
            for member in view.members
        ],
    }


def _number_field(name: str = "registration_number") -> str | None:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) != {name} or not isinstance(body[name], str):
        return None
    return str(body[name])


def _matter_call(ctx: Context, matter_id: int, action: Callable[[Matter], object]) -> Response:
    try:
        matter = matters.find_matter(ctx, matter_id)
        action(matter)
        found = matters.find_matter(ctx, matter_id)
    except Refusal as refusal:
        ctx.session.rollback()
        return _not_found() if refusal.code == "not_found" else _refused(refusal)
    return jsonify(_matter_json(matters.matter_view(ctx, found, _today())))


@bp.get("/matters")
@token_required
def list_matters(ctx: Context) -> Response:
    """The matters with a case this account may see (KPK's monitor: all)."""
    return jsonify({"matters": [_matter_json(view) for view in matters.matters(ctx, _today())]})


@bp.post("/matters")
@token_required
def link_cases(ctx: Context) -> Response:
    """Link two cases the account may see: ``{"cases": [number, number]}``."""
    body = request.get_json(silent=True)
    numbers = body.get("cases") if isinstance(body, dict) and set(body) == {"cases"} else None
    if not (isinstance(numbers, list) and len(numbers) == 2
            and all(isinstance(number, str) for number in numbers)):
        return error(400, "bad_request", "Send JSON with cases: two registration numbers.")
    try:
        matter = matters.link_numbers(ctx, numbers[0], numbers[1])
    except Refusal as refusal:
        ctx.session.rollback()
        return _not_found() if refusal.code == "not_found" else _refused(refusal)
    response = jsonify(_matter_json(matters.matter_view(ctx, matter, _today())))
    response.status_code = 201
    return response


@bp.get("/matters/<int:matter_id>")
@token_required
def get_matter(ctx: Context, matter_id: int) -> Response:
    return _matter_call(ctx, matter_id, lambda _matter: None)


@bp.post("/matters/<int:matter_id>/lead")
@token_required
def name_lead(ctx: Context, matter_id: int) -> Response:
    """KPK names the lead handler: ``{"registration_number": ...}``."""
    number = _number_field()
    if number is None:
        try:
            matters.find_matter(ctx, matter_id)
        except Refusal:
            return _not_found()
        return error(400, "bad_request", "Send JSON with registration_number.")
    return _matter_call(ctx, matter_id, lambda matter: matters.name_lead(ctx, matter, number))


@bp.post("/matters/<int:matter_id>/unlink")
@token_required
def unlink_case(ctx: Context, matter_id: int) -> Response:
    """Take a case out of the matter before a lead is named: ``{"registration_number": ...}``.
    Answers ``{"matter": ...}``, null when the matter dissolved (one case was left)."""
    number = _number_field()
    try:
        matter = matters.find_matter(ctx, matter_id)
        if number is None:
            return error(400, "bad_request", "Send JSON with registration_number.")
        matters.unlink(ctx, matter, number)
    except Refusal as refusal:
        ctx.session.rollback()
        return _not_found() if refusal.code == "not_found" else _refused(refusal)
    try:
        # What is left, if this account still sees a case of it.
        left = matters.matter_view(ctx, matters.find_matter(ctx, matter_id), _today())
    except Refusal:
        return jsonify({"matter": None})
    return jsonify({"matter": _matter_json(left)})


@bp.post("/cases/<int:case_id>/close-merged")
@token_required
@case_required
def close_merged(ctx: Context, case: Case) -> Response:
    """Close the own case into its matter's lead (*Digabung ke <lead>*)."""
    matters.close_merged(ctx, case)
    return jsonify(_case_detail(ctx, case))
