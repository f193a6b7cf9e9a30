"""The pelapor's pages: landing, safety guidance, codename, report, receipt, login, follow-up.

Views parse, call :mod:`wbs.sources` and :mod:`wbs.intake`, and render. The two upload views
read the request body as a stream (:mod:`source_iface.upload`) and never touch
``request.form`` or ``request.files``, which would spool files of more than 500 KB to plaintext
temporary files.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, cast

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import format_date, gettext
from flask_wtf.csrf import ValidationError, validate_csrf
from werkzeug.exceptions import RequestEntityTooLarge

from crypto.codenames import (
    generate_codename,
    looks_like_codename,
    normalize_codename,
    unrecognised_words,
    words_needed,
)
from crypto.kdf import SourceSecrets
from iface_common.language import add_language_switch
from source_iface.auth import count_submission, current_source, log_in, log_out, source_required
from source_iface.context import (
    LANGUAGE_COOKIE,
    context,
    db,
    instance,
    select_locale,
    tenant,
)
from source_iface.errors import message_page
from source_iface.flood import FloodGuard, wait_minutes
from source_iface.forms import (
    HONEYPOT_FIELD,
    OFFICIAL_CHOICES,
    STATUS_WORDING,
    VALUE_CHOICES,
    category_name,
    check_message,
    check_report,
    field_value,
    honeypot_filled,
    human_size,
    mcp_area_name,
    reading_unit,
    wants_kpk,
)
from source_iface.upload import FileSink, UploadError, UploadLimits, parse_upload
from wbs.context import Context
from wbs.domain import MCP_AREAS, CaseStatus, EventKind, KpkSharing, SubmissionKind
from wbs.forwarding import Handler, handling_case, handling_chain
from wbs.intake import Intake, IntakeClosed, KpkUnavailable, ReportError
from wbs.matters import merged_into
from wbs.models import Case, Event, Reply
from wbs.public_stats import SUPPRESS_BELOW, DailyCache
from wbs.sources import (
    authenticate_source,
    case_history,
    delete_reply,
    own_reply,
    register_source,
    reply_token,
    source_case,
    source_cases,
    source_replies,
)
from wbs.tenants import list_tenants
from wbs.texts import ShownText, tenant_text

bp = Blueprint("source", __name__)

# Exempt from CSRFProtect's automatic check, which reads request.form; they check the token
# themselves, inside the stream, before the first file byte is stored.
STREAMED_UPLOAD_VIEWS = ("submit_report", "send_follow_up")
# Submissions (new reports and follow-ups) one login session may make per hour.
SESSION_SUBMISSIONS_PER_HOUR = 10
# Files one submission may carry (one file input that takes several files).
MAX_FILES = UploadLimits.max_files
# What the page after an upload lists of the files that just arrived: their names, read from the
# request and carried to the next page in the browser's own signed session cookie, never kept
# on the server. Capped so the cookie stays far below the 4 KB browsers accept.
ARRIVED_KEY = "arrived"
ARRIVED_NAME_CHARS = 80
# The names' share of the cookie, as JSON with non-ASCII escaped (six bytes a character at
# worst). A cookie over 4 KB would be dropped whole, and the form's CSRF secret with it.
ARRIVED_JSON_BYTES = 1500

Fields = dict[str, list[str]]


def flood() -> FloodGuard:
    guard: FloodGuard = current_app.extensions["peluit_flood"]
    return guard


# --- information pages ----------------------------------------------------------------------


@bp.get("/")
def index() -> ResponseReturnValue:
    if g.get("tenant") is None:
        return render_template("dev_index.html", tenants=list_tenants(db()))
    return render_template(
        "index.html",
        logged_in=current_source() is not None,
        reading_unit=reading_unit(tenant().kind),
        texts=_tenant_texts("intro", "contact", "next_steps"),
    )


def _tenant_texts(*keys: str) -> dict[str, ShownText]:
    """The admin's own texts for this page, in the page's language (see :mod:`wbs.texts`);
    a key that is missing shows the default text of the template."""
    scope, language = context().scope, select_locale()
    found = {key: tenant_text(scope, key, language) for key in keys}
    return {key: text for key, text in found.items() if text is not None}


@bp.get("/panduan")
def guidance() -> ResponseReturnValue:
    return render_template("guidance.html", texts=_tenant_texts("guidance"))


@bp.get("/statistik")
def statistics() -> ResponseReturnValue:
    cache: DailyCache = current_app.extensions["peluit_public_stats"]
    figures = cache.current(context().scope)
    return render_template(
        "statistics.html",
        figures=figures,
        counted_until=format_date(figures.counted_until, "long"),
        threshold=SUPPRESS_BELOW,
    )


add_language_switch(bp, cookie=LANGUAGE_COOKIE, home_endpoint="source.index")


# When every key-derivation slot stayed busy for the whole queue time: come back in a minute.
KDF_BUSY_SECONDS = 60


# --- codename -------------------------------------------------------------------------------


def _codename_tag(codename: str) -> str:
    # The confirmation form carries the codename back; the tag proves the server drew it, so
    # nobody can register a codename of their own choosing (a guessable one).
    key = instance().secrets.session_key
    return hmac.new(key, b"peluit/codename\0" + codename.encode(), hashlib.sha256).hexdigest()


def _codename_page(codename: str, *, error: bool = False) -> ResponseReturnValue:
    return render_template(
        "codename.html",
        codename=codename,
        tag=_codename_tag(codename),
        words=len(codename.split()),
        error=error,
    )


@bp.get("/kode-baru")
def new_codename() -> ResponseReturnValue:
    return _codename_page(generate_codename(select_locale()))


@bp.post("/kode-baru")
def confirm_codename() -> ResponseReturnValue:
    codename = request.form.get("codename", "")
    tag = request.form.get("tag", "")
    if not looks_like_codename(codename) or not hmac.compare_digest(tag, _codename_tag(codename)):
        abort(400)
    if request.form.get("noted") != "1":
        return _codename_page(codename, error=True)
    # Registering costs two argon2id runs and a key generation, and a re-sent confirmation
    # logs in: both go through the same throttle as a login.
    wait = flood().login_wait(tenant().id)
    if wait:
        return _slow_down_page(wait)
    with flood().kdf_slot() as slot:
        if not slot:
            return _slow_down_page(KDF_BUSY_SECONDS)
        try:
            secrets = register_source(context(), codename)
        except ReportError:
            # The confirmation sent twice (back button): the codename is registered already.
            found = authenticate_source(context(), codename)
            if found is None:
                abort(400)
            secrets = found
    return log_in(secrets, url_for("source.report"))


# --- login ---------------------------------------------------------------------------------


@bp.get("/masuk")
def login() -> ResponseReturnValue:
    return render_template("login.html", error=None, expired=bool(request.args.get("expired")))


def _not_a_codename(typed: str) -> str:
    """What to check, said without repeating what was typed.

    The login page never echoes the codename back (the field comes back empty): the response
    would carry the reporter's only credential in its body, where a back-forward cache, a
    restored session or a glance at a shared screen could keep it. Naming the count and the
    positions of the words to check gives the reporter what they need to retype it.
    """
    count, positions = unrecognised_words(typed)
    if positions:
        return str(gettext(
            "That is not a codename: word %(words)s is not one of the codename words. Check "
            "those words on your paper and type the codename again.",
            words=", ".join(str(p) for p in positions),
        ))
    return str(gettext(
        "That is not a codename: you typed %(typed)d words, and a codename is %(n)d words, "
        "separated by spaces. Type it again.",
        typed=count,
        n=words_needed(select_locale()),
    ))


@bp.post("/masuk")
def check_login() -> ResponseReturnValue:
    typed = request.form.get("codename", "")
    codename = normalize_codename(typed)
    if not looks_like_codename(codename):
        # Answered without touching the database: a typo, not a probe.
        return render_template("login.html", error=_not_a_codename(typed), expired=False), 200
    wait = flood().login_wait(tenant().id)
    if wait:
        return _slow_down_page(wait)
    with flood().kdf_slot() as slot:
        if not slot:
            return _slow_down_page(KDF_BUSY_SECONDS)
        secrets = authenticate_source(context(), codename)
    if secrets is None:
        # Also for a codename of another instansi: which one a codename belongs to is not said.
        error = gettext("No report was found for this codename. Check the words and try again.")
        return render_template("login.html", error=error, expired=False), 200
    return log_in(secrets, url_for("source.cases"))


@bp.post("/keluar")
def logout() -> ResponseReturnValue:
    response = current_app.make_response(render_template("logged_out.html"))
    session.clear()  # the CSRF secret goes too
    return log_out(response)


# --- uploads --------------------------------------------------------------------------------


class _Stop(Exception):
    """Ends an upload early with a page for the reporter; nothing has been stored."""

    def __init__(self, response: ResponseReturnValue) -> None:
        super().__init__("upload stopped")
        self.response = response


def _limits() -> UploadLimits:
    t = tenant()
    return UploadLimits(
        max_bytes=t.max_upload_bytes or instance().config.max_upload_bytes,
        max_files=MAX_FILES,
    )


def _check_form(fields: Fields) -> None:
    """The token and the honeypot, before anything is stored."""
    try:
        validate_csrf(field_value(fields, "csrf_token"))
    except ValidationError:
        raise _Stop(
            message_page(
                gettext("This form has expired"),
                gettext(
                    "For your safety, forms are valid for a limited time and only in this "
                    "browser session. Go back, reload the page and send it again."
                ),
                400,
            )
        ) from None
    if honeypot_filled(fields):
        raise _Stop(
            message_page(
                gettext("Not sent"),
                gettext("Your submission could not be accepted. Nothing was stored."),
                400,
            )
        )


class _Counted:
    """A file sink that counts the plaintext bytes passing through, for the receipt."""

    def __init__(self, sink: FileSink, arrived: list[list[str | int]], filename: str) -> None:
        self.sink = sink
        # The name as the receipt shows it: the last path part, shortened.
        name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip() or "?"
        self.entry: list[str | int] = [name[:ARRIVED_NAME_CHARS], 0]
        arrived.append(self.entry)

    def write(self, chunk: bytes) -> None:
        self.sink.write(chunk)
        self.entry[1] = int(self.entry[1]) + len(chunk)

    def close(self) -> None:
        self.sink.close()

    def abort(self) -> None:
        self.sink.abort()


def _receive(prepare: Callable[[Fields], Intake]) -> tuple[Fields, Intake, list[list[str | int]]]:
    """Stream the upload into an :class:`Intake` made by ``prepare`` from the text fields.

    ``prepare`` runs before the first file byte (or after the body when no file came) and may
    raise :class:`_Stop`. Whatever goes wrong, everything stored so far is removed. Also returns
    each file's name and size as sent, for the next page to list (never stored).
    """
    limits = _limits()
    intakes: list[Intake] = []
    arrived: list[list[str | int]] = []

    def on_first_file(fields: Fields) -> None:
        intakes.append(prepare(fields))

    def open_file(name: str, filename: str, fields: dict[str, str]) -> FileSink:
        return _Counted(intakes[0].open_file(name, filename, fields), arrived, filename)

    try:
        # The parser enforces the limit; Werkzeug's check of the declared length stays on.
        request.max_content_length = limits.max_bytes
        parsed = parse_upload(
            cast(BinaryIO, request.stream),
            request.content_type or "",
            request.content_length,
            limits,
            open_file,
            on_first_file=on_first_file,
        )
        if not intakes:
            intakes.append(prepare(parsed.fields))
    except (UploadError, RequestEntityTooLarge, IntakeClosed) as exc:
        for intake in intakes:
            intake.abort()
        raise _Stop(_upload_refused_page(exc)) from None
    except BaseException:
        for intake in intakes:
            intake.abort()
        raise
    return parsed.fields, intakes[0], arrived


def _remember_arrived(number: str, arrived: list[list[str | int]], *, message: bool) -> None:
    """Hand the names of what just arrived to the next page, in the browser's session cookie.

    The receipt and the "sent" notice are pages of their own (a reload must not send the
    report twice), so the names travel there in the signed session cookie, which lives only in
    the browser; the next page takes them out again. The server keeps none of them.
    """
    kept: list[list[str | int]] = []
    used = 0
    for entry in arrived:
        used += len(json.dumps(entry))
        if used > ARRIVED_JSON_BYTES:
            break
        kept.append(entry)
    session[ARRIVED_KEY] = {
        "number": number,
        "files": kept,
        "more": len(arrived) - len(kept),
        "message": message,
    }


def _take_arrived(number: str) -> dict[str, object] | None:
    """What :func:`_remember_arrived` left for this case's page, once; None otherwise."""
    found = session.pop(ARRIVED_KEY, None)
    if not isinstance(found, dict) or found.get("number") != number:
        return None
    files = [
        (str(name), human_size(int(size)))
        for name, size in found.get("files", [])
    ]
    more = found.get("more", 0)
    return {
        "files": files,
        "more": more if isinstance(more, int) else 0,
        "message": bool(found.get("message")),
    }


def _upload_refused_page(exc: Exception) -> ResponseReturnValue:
    if isinstance(exc, KpkUnavailable):
        # Said as it is: the report goes to KPK too, and KPK cannot take it now. Nothing went
        # to the institution either, so no report is half sent.
        return message_page(
            gettext("Your report cannot be sent to KPK right now"),
            gettext(
                "This report goes to KPK too, and KPK cannot receive reports at the moment. "
                "Nothing was stored, not even for the institution. Please try again in a few "
                "hours."
            ),
            503,
        )
    if isinstance(exc, IntakeClosed):
        return message_page(
            gettext("Reports cannot be received right now"),
            gettext(
                "Receiving is closed for a while for technical reasons. Nothing was stored. "
                "Please try again in a few hours."
            ),
            503,
        )
    code = exc.code if isinstance(exc, UploadError) else "too_large"
    if code in ("too_large", "field_too_large", "too_many_files"):
        limit_mb = _limits().max_bytes // (1024 * 1024)
        return message_page(
            gettext("What you sent is too large"),
            gettext(
                "At most %(mb)d MB can be sent at once, in at most %(files)d files. Nothing "
                "was stored. Send fewer or smaller files, or send the rest as follow-up "
                "messages after logging in with your codename.",
                mb=limit_mb,
                files=_limits().max_files,
            ),
            413,
        )
    return message_page(
        gettext("The upload did not arrive completely"),
        gettext("Nothing was stored. Check your connection and send the form again."),
        400,
    )


def _submission_allowed(source: SourceSecrets, *, new_case: bool) -> None:
    t = tenant()
    wait = (
        flood().new_case_wait(t.id, source.source_id)
        if new_case
        else flood().follow_up_wait(t.id, source.source_id)
    )
    if not wait and count_submission() > SESSION_SUBMISSIONS_PER_HOUR:
        wait = 3600
    if wait:
        raise _Stop(_slow_down_page(wait))


def _slow_down_page(seconds: int) -> ResponseReturnValue:
    title, text = (
        gettext("Please wait a few minutes"),
        gettext(
            "Many reports are arriving right now. Nothing was stored. Please try again in "
            "%(minutes)d minutes.",
            minutes=wait_minutes(seconds),
        ),
    )
    page, status = message_page(title, text, 429)
    return page, status, {"Retry-After": str(seconds)}


# --- the report -----------------------------------------------------------------------------


def _report_page(
    values: dict[str, str], errors: dict[str, str], *, status: int = 200
) -> ResponseReturnValue:
    t = tenant()
    page = render_template(
        "report.html",
        values=values,
        errors=errors,
        categories=[(code, category_name(code)) for code in t.categories],
        mcp_areas=[(code, mcp_area_name(code)) for code, _ in MCP_AREAS],
        kpk_choice=not t.is_hub and t.kpk_sharing == KpkSharing.OPTIONAL,
        kpk_always=not t.is_hub and t.kpk_sharing == KpkSharing.ALWAYS,
        file_limits=_file_limits(),
        honeypot=HONEYPOT_FIELD,
        official_choices=OFFICIAL_CHOICES,
        value_choices=VALUE_CHOICES,
    )
    return page, status


@bp.get("/lapor")
@source_required
def report(_source: SourceSecrets) -> ResponseReturnValue:
    return _report_page({}, {})


@bp.post("/lapor")
@source_required
def submit_report(source: SourceSecrets) -> ResponseReturnValue:
    t = tenant()

    def prepare(fields: Fields) -> Intake:
        _check_form(fields)
        check = check_report(t, fields)
        if check.answers is None:
            raise _Stop(_report_page(check.values, check.errors, status=400))
        _submission_allowed(source, new_case=True)
        return Intake(context(), source.source_id, to_kpk=wants_kpk(t, fields))

    try:
        fields, intake, arrived = _receive(prepare)
    except _Stop as stop:
        return stop.response
    answers = check_report(t, fields).answers
    if answers is None:  # the fields were checked in prepare; they cannot have changed
        intake.abort()
        abort(400)
    try:
        case = intake.new_case(answers)
    except IntakeClosed as exc:
        # The disk filled while the form was stored; new_case removed everything.
        return _upload_refused_page(exc)
    flood().record_new_case(t.id, source.source_id)
    _remember_arrived(case.registration_number, arrived, message=False)
    return redirect(url_for("source.receipt", number=case.registration_number))


# A pelapor's URLs name a case by its registration number (random digits), never its database
# id, which is sequential across every tenant.
@bp.get("/tanda-terima/<number>")
@source_required
def receipt(source: SourceSecrets, number: str) -> ResponseReturnValue:
    case = source_case(context(), source.source_id, number[:64])
    if case is None:
        abort(404)
    return render_template(
        "receipt.html",
        case=case,
        due=format_date(case.first_response_due, "long"),
        received=format_date(case.received_at, "long"),
        arrived=_take_arrived(case.registration_number),
        stored=_stored_summary(case),
    )


def _file_limits() -> dict[str, object]:
    """The upload limits as the form states them before anything is sent."""
    limits = _limits()
    return {"files": limits.max_files, "size": human_size(limits.max_bytes)}


@dataclass(frozen=True)
class StoredSummary:
    """What the server holds of a case, counted, for the reporter: never names."""

    files: int
    messages: int
    # The encrypted size, which is close to what was sent (a little larger).
    size: str


def _stored_summary(case: Case) -> StoredSummary:
    files = [s for s in case.submissions if s.kind == SubmissionKind.FILE]
    messages = sum(1 for s in case.submissions if s.kind == SubmissionKind.MESSAGE)
    return StoredSummary(
        files=len(files), messages=messages, size=human_size(sum(s.size for s in files))
    )


# --- following up ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseView:
    case: Case
    # The institution that handles the report now, if it was forwarded; None otherwise.
    handler: str | None
    # Whether KPK can read the report: sent to KPK at any step (the pelapor's choice, an
    # institution's policy, a receiving institution that always shares), or forwarded to KPK.
    kpk_reads: bool
    # The handler took the report over (KPK's pengambilalihan) rather than being forwarded it.
    taken_over: bool
    # The institution handling the matter the report was closed into (wbs.matters), if it was.
    merged: str | None
    category: str
    status: str
    received: str
    first_response_due: str
    closure_due: str | None
    stored: StoredSummary
    history: list[tuple[str, str]]
    # (reply, its date, its text, its link token)
    replies: list[tuple[Reply, str, str, str]]


def _case_view(source: SourceSecrets, case: Case) -> CaseView:
    ctx = context()
    # Forwarded (pelimpahan): the institution at the end of the links handles it now; the
    # pelapor reads its status and replies here, with the same codename, and follows the
    # report from one institution to the next in the history.
    chain = handling_chain(ctx, case)
    handler = chain[-1] if chain else None
    history = _history(ctx, case, chain)
    thread = handler.case if handler is not None else None
    replies = [
        (
            reply, format_date(reply.created_at, "long"), text,
            # Only the own tenant's replies can be deleted from here.
            reply_token(ctx, reply) if thread is None else "",
        )
        for reply, text in source_replies(ctx, source, case, thread)
    ]
    status = handler.case.status if handler is not None else case.status
    return CaseView(
        case=case,
        handler=handler.tenant.name if handler is not None else None,
        kpk_reads=case.sent_to_kpk
        or any(step.case.sent_to_kpk or step.tenant.is_hub for step in chain),
        taken_over=handler is not None and handler.taken_over,
        merged=_merged_into(ctx, case),
        category=category_name(case.category),
        status=str(STATUS_WORDING[status]),
        received=format_date(case.received_at, "long"),
        first_response_due=format_date(case.first_response_due, "long"),
        closure_due=format_date(case.closure_due, "long") if case.closure_due else None,
        stored=_stored_summary(case),
        history=history,
        replies=replies,
    )


def _history(ctx: Context, case: Case, chain: list[Handler]) -> list[tuple[str, str]]:
    """What the pelapor may follow, institution by institution: each case's status changes
    and their own follow-ups; a forwarded case's arrival names the institution that received
    it, and the status change that forwarded it names where it went."""
    steps = [(ctx, case, None)] + [
        (Context(ctx.inst, ctx.session, step.tenant), step.case, step.tenant.name)
        for step in chain
    ]
    history = []
    for index, (step_ctx, step_case, received_by) in enumerate(steps):
        events = case_history(step_ctx, step_case)
        following = chain[index] if index < len(chain) else None
        forwarded_to = following.tenant.name if following is not None else None
        # The forwarding is the case's last change to diteruskan (an earlier one was to a
        # body outside the system, worded as such).
        forwarding = next(
            (event for event in reversed(events) if event.to_status == CaseStatus.DITERUSKAN),
            None,
        ) if forwarded_to is not None else None
        for event in events:
            if event.kind == EventKind.CASE_CREATED and received_by is not None:
                wording = gettext("Received by %(name)s", name=received_by)
            elif event is forwarding and following is not None and following.taken_over:
                wording = gettext("Taken over by %(name)s", name=forwarded_to)
            elif event is forwarding:
                wording = gettext("Forwarded to %(name)s", name=forwarded_to)
            else:
                wording = _event_wording(event)
            history.append((format_date(event.created_at, "long"), str(wording)))
    return history

def _merged_into(ctx: Context, case: Case) -> str | None:
    # Only the institution: never the other case's number or anything of its pelapor.
    tenant = merged_into(ctx, case)
    return tenant.name if tenant is not None else None


def _event_wording(event: Event) -> str:
    if event.kind == EventKind.SUBMISSION_ADDED:
        return str(gettext("You sent more information"))
    status = event.to_status or CaseStatus.BARU
    return str(STATUS_WORDING[status])


def _cases_page(
    source: SourceSecrets, *, errors: dict[str, str] | None = None, status: int = 200
) -> ResponseReturnValue:
    views = [_case_view(source, case) for case in source_cases(context(), source.source_id)]
    sent = request.args.get("sent")
    page = render_template(
        "cases.html",
        cases=views,
        errors=errors or {},
        sent=sent,
        arrived=_take_arrived(sent) if sent else None,
        deleted=bool(request.args.get("deleted")),
        file_limits=_file_limits(),
        honeypot=HONEYPOT_FIELD,
        klarifikasi=CaseStatus.KLARIFIKASI,
    )
    return page, status


@bp.get("/pengaduan")
@source_required
def cases(source: SourceSecrets) -> ResponseReturnValue:
    return _cases_page(source)


@bp.post("/pengaduan/<number>/kirim")
@source_required
def send_follow_up(source: SourceSecrets, number: str) -> ResponseReturnValue:
    t = tenant()
    case = source_case(context(), source.source_id, number[:64])
    if case is None:
        abort(404)
    # A forwarded report: the follow-up goes to the institution that handles it now,
    # encrypted to its keys, on the pelapor's linked source there.
    handler = handling_case(context(), case)
    target = handler.case if handler is not None else case

    def prepare(fields: Fields) -> Intake:
        _check_form(fields)
        _message, error = check_message(fields)
        if error:
            raise _Stop(_cases_page(source, errors={case.registration_number: error}, status=400))
        _submission_allowed(source, new_case=False)
        if handler is not None:
            handler_ctx = Context(instance(), db(), handler.tenant)
            return Intake(handler_ctx, target.source_id, to_kpk=target.sent_to_kpk)
        return Intake(context(), source.source_id, to_kpk=case.sent_to_kpk)

    try:
        fields, intake, arrived = _receive(prepare)
    except _Stop as stop:
        return stop.response
    message, _error = check_message(fields)
    if message is None and not intake.stored:
        intake.abort()
        error = gettext("Write a message or attach a file.")
        return _cases_page(source, errors={case.registration_number: error}, status=400)
    try:
        intake.follow_up(target, message)
    except IntakeClosed as exc:
        # The disk filled while the message was stored; follow_up removed everything.
        return _upload_refused_page(exc)
    flood().record_follow_up(t.id, source.source_id)
    number = case.registration_number
    _remember_arrived(number, arrived, message=message is not None)
    return redirect(url_for("source.cases", sent=number, _anchor=f"case-{number}"))


def _own_reply(source: SourceSecrets, token: str) -> Reply:
    reply = own_reply(context(), source.source_id, token[:64])
    if reply is None:
        abort(404)
    return reply


# A reply is named by an opaque token, never its database id (sequential across tenants).
@bp.get("/balasan/<token>/hapus")
@source_required
def confirm_delete_reply(source: SourceSecrets, token: str) -> ResponseReturnValue:
    reply = _own_reply(source, token)
    return render_template(
        "delete_reply.html", token=token, date=format_date(reply.created_at, "long")
    )


@bp.post("/balasan/<token>/hapus")
@source_required
def delete_reply_now(source: SourceSecrets, token: str) -> ResponseReturnValue:
    _own_reply(source, token)
    if not delete_reply(context(), source.source_id, token[:64]):
        # Only a reply the pelapor has read (seen on the follow-up page) can be deleted.
        abort(400)
    return redirect(url_for("source.cases", deleted=1))
