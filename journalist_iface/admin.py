"""The admin instansi's pages: investigator accounts, recipient keys, the tenant's settings,
the texts of the reporter's pages (:mod:`wbs.texts`), and deleting case items and whole cases.

Only an admin instansi reaches these (others get 403, the app's answer to a refused role),
and only for their own tenant: an account, key or case of another tenant answers 404, like an
id that does not exist. Deletion pages sit under the case's URL and look the case up first, so
another tenant's case answers 404 before the role is even considered.

Deleting is the admin's alone, not the verifikator's: it erases evidence, so it belongs to
the role that answers for the tenant's accounts and keys, and it is allowed only for closed
cases not sent to KPK (see :func:`wbs.casework.check_case_deletable`).

Passphrases and TOTP secrets are shown once, in the response to the POST that made them
(never in a redirect, a cookie or a flash); every response carries ``Cache-Control:
no-store``, so the browser does not keep them either.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, lazy_gettext
from markupsafe import Markup

from crypto.errors import CryptoError, KeyRefused
from journalist_iface.admin_ops import KEY_CHECK_FAILED, key_verdict, parse_settings
from journalist_iface.auth import investigator_required
from journalist_iface.context import auth_settings, db, instance
from journalist_iface.refusals import HTTP_ONLY, message
from wbs import casework
from wbs import onion as onions
from wbs.accounts import (
    AccountError,
    Enrolment,
    create_investigator,
    deactivate,
    list_investigators,
    reset_password,
    reset_totp,
    start_enrolment,
)
from wbs.alerts import tenant_alert_settings
from wbs.casework import Refusal
from wbs.context import Context
from wbs.domain import DEFAULT_CATEGORIES, KpkSharing, Role
from wbs.models import Case, Investigator, RecipientKey, Tenant
from wbs.tenancy import TenantScope
from wbs.tenants import (
    TenantError,
    TenantSettings,
    add_recipient_key,
    apply_settings,
    recipient_keys,
    revoke_recipient_key,
)
from wbs.texts import (
    MAX_MARKUP_CHARS,
    TEXT_KEYS,
    TEXT_LANGUAGES,
    TextError,
    check_markup,
    save_text,
    text_markups,
)

bp = Blueprint("admin", __name__)

ADMIN_ONLY = (Role.ADMIN_INSTANSI,)
MAX_KEY_BYTES = 2 * 1024 * 1024
MAX_OWNER = 200

KPK_SHARING_CHOICES = (
    (KpkSharing.NEVER, lazy_gettext("Never: reports stay with the institution")),
    (KpkSharing.OPTIONAL, lazy_gettext("The reporter chooses on the form")),
    (KpkSharing.ALWAYS, lazy_gettext("Always: every report is also encrypted to KPK")),
)


def _confirm(**context: Any) -> ResponseReturnValue:
    return render_template("admin/confirm.html", **context)


def _secret_page(
    title: str, account: Investigator, *, passphrase: str | None = None,
    enrolment: Enrolment | None = None,
) -> ResponseReturnValue:
    return render_template(
        "admin/secret.html",
        title=title,
        account=account,
        passphrase=passphrase,
        enrolment=enrolment,
        # Drawn by segno on the server from our own URI: no user input reaches the markup.
        qr=Markup(enrolment.qr_svg) if enrolment else None,  # noqa: S704
    )


# --- investigators ----------------------------------------------------------------------------


def _roles(tenant: Tenant) -> list[Role]:
    return [role for role in Role if role != Role.PEMANTAU_KPK or tenant.is_hub]


def _investigators_page(
    tenant: Tenant, *, error: str | None = None, form: dict[str, str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    return render_template(
        "admin/investigators.html",
        accounts=list_investigators(db(), tenant),
        # Whether each account gets e-mail alerts: the admin sees it, only the account sets it.
        alerts=tenant_alert_settings(TenantScope(db(), tenant)),
        roles=_roles(tenant),
        error=error,
        form=form or {},
    ), status


@bp.get("/admin/")
@investigator_required(ADMIN_ONLY)
def investigators(ctx: Context) -> ResponseReturnValue:
    return _investigators_page(ctx.tenant)


def _account_error(username: str) -> str:
    """A translated reason for an AccountError (whose own message is English, for the CLI)."""
    # Usernames are unique across tenants (create_investigator checks the same way); the page
    # says only "taken", never where.
    if db().scalar(sa.select(Investigator.id).where(Investigator.username == username)):
        return str(gettext("This username is taken."))
    return str(
        gettext(
            "The username needs 3-64 characters: lower-case letters, digits, '.', '_' or "
            "'-', starting with a letter; the name needs 1-200 characters."
        )
    )


@bp.post("/admin/")
@investigator_required(ADMIN_ONLY)
def create_account(ctx: Context) -> ResponseReturnValue:
    form = {
        "username": request.form.get("username", "").strip().lower()[:64],
        "display_name": request.form.get("display_name", "").strip()[:200],
        "role": request.form.get("role", ""),
    }
    if form["role"] not in {role.value for role in _roles(ctx.tenant)}:
        return _investigators_page(
            ctx.tenant, error=gettext("Choose a role."), form=form, status=400
        )
    try:
        account, passphrase = create_investigator(
            db(), ctx.tenant, form["username"], form["display_name"], form["role"],
            actor=ctx.investigator, settings=auth_settings(),
        )
        enrolment = start_enrolment(db(), account, settings=auth_settings())
    except AccountError:
        db().rollback()
        message = _account_error(form["username"])
        return _investigators_page(ctx.tenant, error=message, form=form, status=400)
    db().commit()
    return _secret_page(
        gettext("Account created"), account, passphrase=passphrase, enrolment=enrolment
    )


def _other_account(scope: TenantScope, me: Investigator, investigator_id: int) -> Investigator:
    account = scope.get(Investigator, investigator_id)
    if account is None:
        abort(404)
    if account.id == me.id:
        # Resetting one's own login from here would end this very session; the account page
        # is the place for one's own second factor.
        abort(400)
    return account


@bp.route("/admin/petugas/<int:investigator_id>/nonaktifkan", methods=["GET", "POST"])
@investigator_required(ADMIN_ONLY)
def deactivate_account(ctx: Context, investigator_id: int) -> ResponseReturnValue:
    account = _other_account(ctx.scope, ctx.investigator, investigator_id)
    if request.method == "GET":
        return _confirm(
            title=gettext("Deactivate %(name)s?", name=account.display_name),
            text=[
                gettext("The account %(username)s can no longer log in, and its open sessions "
                        "end now. Cases and the log keep pointing at it; it is never deleted.",
                        username=account.username)
            ],
            action=request.path, button=gettext("Deactivate"), danger=True,
            back=url_for("admin.investigators"),
        )
    try:
        deactivate(db(), account, actor=ctx.investigator)
    except AccountError:
        db().rollback()
        flash(gettext("%(username)s is inactive already.", username=account.username))
        return redirect(url_for("admin.investigators"))
    db().commit()
    # A deactivated account keeps no way to the investigator onion: its client key goes now.
    revocation = onions.revoke_client_access(instance(), account.username)
    if not revocation.in_effect:
        # Without the username: this interface logs nothing that names a person.
        logging.getLogger(__name__).warning("deactivation: %s", revocation.note)
    flash(gettext("%(username)s was deactivated.", username=account.username))
    return redirect(url_for("admin.investigators"))


@bp.route("/admin/petugas/<int:investigator_id>/atur-ulang-2fa", methods=["GET", "POST"])
@investigator_required(ADMIN_ONLY)
def reset_account_totp(ctx: Context, investigator_id: int) -> ResponseReturnValue:
    account = _other_account(ctx.scope, ctx.investigator, investigator_id)
    if request.method == "GET":
        return _confirm(
            title=gettext("Reset two-step login of %(name)s?", name=account.display_name),
            text=[gettext("The old authenticator stops working at once and the account's "
                          "sessions end. The next page shows the new QR code once: give it "
                          "to the person in person.")],
            action=request.path, button=gettext("Reset two-step login"), danger=True,
            back=url_for("admin.investigators"),
        )
    enrolment = reset_totp(db(), account, actor=ctx.investigator, settings=auth_settings())
    db().commit()
    return _secret_page(gettext("Two-step login reset"), account, enrolment=enrolment)


@bp.route("/admin/petugas/<int:investigator_id>/atur-ulang-sandi", methods=["GET", "POST"])
@investigator_required(ADMIN_ONLY)
def reset_account_password(ctx: Context, investigator_id: int) -> ResponseReturnValue:
    account = _other_account(ctx.scope, ctx.investigator, investigator_id)
    if request.method == "GET":
        return _confirm(
            title=gettext("Reset the passphrase of %(name)s?", name=account.display_name),
            text=[gettext("The old passphrase stops working at once and the account's "
                          "sessions end. The next page shows the new passphrase once.")],
            action=request.path, button=gettext("Reset passphrase"), danger=True,
            back=url_for("admin.investigators"),
        )
    passphrase = reset_password(db(), account, actor=ctx.investigator, settings=auth_settings())
    db().commit()
    return _secret_page(gettext("Passphrase reset"), account, passphrase=passphrase)


# --- recipient keys ---------------------------------------------------------------------------


def _keys_page(
    tenant: Tenant, *, error: str | None = None, owner: str = "", status: int = 200
) -> ResponseReturnValue:
    keys = recipient_keys(db(), tenant)
    return render_template(
        "admin/keys.html",
        keys=keys,
        signing_fingerprint=_signing_fingerprint(),
        current=sum(1 for key in keys if key.revoked_at is None),
        error=error,
        owner=owner,
    ), status


def _signing_fingerprint() -> str | None:
    """The instance signing key's fingerprint, which the workstation asks investigators to
    compare with this page when it pins the key; None if the key cannot be read."""
    try:
        return instance().signing.fingerprint
    except CryptoError:
        logging.getLogger(__name__).warning("the instance signing key cannot be read")
        return None


@bp.get("/admin/kunci")
@investigator_required(ADMIN_ONLY)
def keys(ctx: Context) -> ResponseReturnValue:
    return _keys_page(ctx.tenant)


def _uploaded_key() -> str | bytes:
    """The key from the file (armored or binary, as gpg exports either), else the text field.

    The file goes to the key checks as it is: a binary export is as good as an armored one,
    and a binary secret key is refused by the same check, with the same warning, as an
    armored one (:meth:`crypto.keyring.Keyring.inspect_public_key`).
    """
    upload = request.files.get("key_file")
    data = upload.read(MAX_KEY_BYTES + 1) if upload and upload.filename else b""
    if len(data) > MAX_KEY_BYTES:
        abort(413)
    return data or request.form.get("armored", "")


@bp.post("/admin/kunci")
@investigator_required(ADMIN_ONLY)
def add_key(ctx: Context) -> ResponseReturnValue:
    owner = request.form.get("owner", "").strip()[:MAX_OWNER]
    armored = _uploaded_key()
    if not armored.strip():
        return _keys_page(ctx.tenant, error=gettext("Paste the public key or choose its file."),
                          owner=owner, status=400)
    try:
        key = add_recipient_key(
            db(), instance().keyring, ctx.tenant, armored, owner=owner or None,
            actor_id=ctx.investigator.id,
        )
    except KeyRefused as refused:
        db().rollback()
        return _keys_page(ctx.tenant, error=key_verdict(refused.reason), owner=owner, status=400)
    except TenantError:
        db().rollback()
        message = gettext("This key is a recipient already, or was revoked: a revoked key is "
                          "not taken back. Make a new key on the workstation.")
        return _keys_page(ctx.tenant, error=message, owner=owner, status=400)
    except CryptoError:
        # Fail closed: whatever gpg made of it, nothing is stored.
        db().rollback()
        return _keys_page(ctx.tenant, error=str(KEY_CHECK_FAILED), owner=owner, status=400)
    db().commit()
    flash(gettext("Key %(fingerprint)s accepted: new reports are encrypted to it from now on.",
                  fingerprint=key.fingerprint))
    return redirect(url_for("admin.keys"))


@bp.route("/admin/kunci/<int:key_id>/cabut", methods=["GET", "POST"])
@investigator_required(ADMIN_ONLY)
def revoke_key(ctx: Context, key_id: int) -> ResponseReturnValue:
    key = ctx.scope.get(RecipientKey, key_id)
    if key is None or key.revoked_at is not None:
        abort(404)
    if request.method == "GET":
        others = sum(1 for k in recipient_keys(db(), ctx.tenant) if k.revoked_at is None) - 1
        text = [gettext("New reports and replies will no longer be encrypted to %(fingerprint)s. "
                        "What was encrypted to it stays readable with it.",
                        fingerprint=key.fingerprint)]
        if others == 0:
            text.append(gettext("This is the last current key: no new report can be received "
                                "until another key is added."))
        return _confirm(
            title=gettext("Revoke this key?"), text=text, action=request.path,
            button=gettext("Revoke the key"), danger=True, back=url_for("admin.keys"),
        )
    revoke_recipient_key(db(), ctx.tenant, key.fingerprint, actor_id=ctx.investigator.id)
    db().commit()
    flash(gettext("Key %(fingerprint)s revoked.", fingerprint=key.fingerprint))
    return redirect(url_for("admin.keys"))


# --- settings ---------------------------------------------------------------------------------


@bp.route("/admin/pengaturan", methods=["GET", "POST"])
@investigator_required(ADMIN_ONLY)
def settings(ctx: Context) -> ResponseReturnValue:
    instance_max = instance().config.max_upload_bytes
    current = TenantSettings.of(ctx.tenant)
    problems: list[str] = []
    if request.method == "POST":
        parsed, problems = parse_settings(
            request.form, request.form.getlist("categories"), ctx.tenant, instance_max
        )
        if parsed is not None:
            changed = apply_settings(ctx, parsed)
            flash(gettext("Settings saved.") if changed else gettext("Nothing changed."))
            return redirect(url_for("admin.settings"))
    return render_template(
        "admin/settings.html",
        values=request.form if problems else None,
        chosen=request.form.getlist("categories") if problems else list(current.categories),
        current=current,
        categories=DEFAULT_CATEGORIES,
        sharing=KPK_SHARING_CHOICES,
        instance_max_mib=instance_max // (1024 * 1024),
        problems=problems,
        is_hub=ctx.tenant.is_hub,
    ), (400 if problems else 200)


# --- texts of the reporter's pages -----------------------------------------------------------

TEXT_NAMES = {
    "intro": lazy_gettext("Landing page introduction"),
    "guidance": lazy_gettext("Guidance of the institution"),
    "contact": lazy_gettext("Contact channels"),
    "next_steps": lazy_gettext("What happens next"),
}
TEXT_HINTS = {
    "intro": lazy_gettext("Shown under the heading of the landing page, instead of the default "
                          "introduction."),
    "guidance": lazy_gettext("Shown on the guidance page after the safety steps, which always "
                             "stay."),
    "contact": lazy_gettext("Other ways to reach the complaint unit, on the landing page. "
                            "Nothing is shown when empty."),
    "next_steps": lazy_gettext("Replaces the default \"What happens next\" steps on the landing "
                               "page."),
}
LANGUAGE_NAMES = {"id": lazy_gettext("Indonesian"), "en": lazy_gettext("English (optional)")}


def _text_problem(error: TextError) -> str:
    if error.code == "too_long":
        return str(gettext("At most %(n)d characters.", n=MAX_MARKUP_CHARS))
    return str(gettext("This text becomes too large for the reporter's page: shorten it."))


@bp.get("/admin/teks")
@investigator_required(ADMIN_ONLY)
def texts(ctx: Context) -> ResponseReturnValue:
    stored = text_markups(ctx.scope)
    return render_template(
        "admin/texts.html",
        keys=TEXT_KEYS,
        names=TEXT_NAMES,
        languages=TEXT_LANGUAGES,
        language_names=LANGUAGE_NAMES,
        stored=stored,
    )


@bp.route("/admin/teks/<key>", methods=["GET", "POST"])
@investigator_required(ADMIN_ONLY)
def edit_text(ctx: Context, key: str) -> ResponseReturnValue:
    """Edit one text in both languages; "Preview" shows the sanitised result without saving."""
    if key not in TEXT_KEYS:
        abort(404)
    stored = text_markups(ctx.scope)
    values = {lang: stored.get((key, lang), "") for lang in TEXT_LANGUAGES}
    previews: dict[str, str] = {}
    problems: dict[str, str] = {}
    if request.method == "POST":
        values = {lang: request.form.get(f"text_{lang}", "")[: MAX_MARKUP_CHARS * 4]
                  for lang in TEXT_LANGUAGES}
        for lang, markup in values.items():
            try:
                values[lang], previews[lang] = check_markup(markup)
            except TextError as error:
                problems[lang] = _text_problem(error)
        if not problems and request.form.get("action") == "save":
            changed = [save_text(ctx, key, lang, values[lang]) for lang in TEXT_LANGUAGES]
            flash(gettext("Text saved.") if any(changed) else gettext("Nothing changed."))
            return redirect(url_for("admin.texts"))
    return render_template(
        "admin/text.html",
        key=key,
        name=TEXT_NAMES[key],
        hint=TEXT_HINTS[key],
        languages=TEXT_LANGUAGES,
        language_names=LANGUAGE_NAMES,
        values=values,
        # Sanitised by wbs.texts (markdown subset, then bleach's allow-list): safe to show.
        previews={lang: Markup(html) for lang, html in previews.items()},  # noqa: S704
        problems=problems,
        max_chars=MAX_MARKUP_CHARS,
    ), (400 if problems else 200)


# --- deleting items and cases -----------------------------------------------------------------


def _case_for_deletion(ctx: Context, case_id: int) -> Case:
    # The case first: another tenant's id answers 404 whatever the role.
    try:
        case = casework.own_case(ctx, case_id)
        casework.require_deleter(ctx)
    except Refusal as refusal:
        abort(HTTP_ONLY.get(refusal.code, 400))
    return case


@bp.route("/pengaduan/<int:case_id>/berkas/<int:number>/hapus", methods=["GET", "POST"])
@investigator_required()
def delete_case_item(ctx: Context, case_id: int, number: int) -> ResponseReturnValue:
    case = _case_for_deletion(ctx, case_id)
    try:
        item = casework.item_by_number(ctx, case, number)
    except Refusal:
        abort(404)
    back = url_for("journalist.case_page", case_id=case.id)
    try:
        casework.check_items_deletable(case)
    except Refusal as refused:
        flash(message(refused, case.registration_number))
        return redirect(back)
    if request.method == "GET":
        return _confirm(
            title=gettext("Delete item %(number)d of %(case)s?", number=number,
                          case=case.registration_number),
            text=[gettext("The encrypted file and its record are deleted for good; the log "
                          "keeps a note that item %(number)d was deleted, by whom.",
                          number=number)],
            action=request.path, button=gettext("Delete the item"), danger=True, back=back,
            fields={"item": item.key},
        )
    if request.form.get("item") != item.key:
        # The numbering moved since the confirmation page: never delete another item.
        abort(409)
    casework.delete_item(ctx, case, item)
    flash(gettext("Item %(number)d was deleted.", number=number))
    return redirect(back)


@bp.route("/pengaduan/<int:case_id>/hapus", methods=["GET", "POST"])
@investigator_required()
def delete_whole_case(ctx: Context, case_id: int) -> ResponseReturnValue:
    case = _case_for_deletion(ctx, case_id)
    back = url_for("journalist.case_page", case_id=case.id)
    try:
        casework.check_case_deletable(case)
    except Refusal as refused:
        flash(message(refused, case.registration_number))
        return redirect(back)
    if request.method == "GET":
        return _confirm(
            title=gettext("Delete the case %(case)s?", case=case.registration_number),
            text=[gettext("Every encrypted item and reply of this case and its record are "
                          "deleted for good, and the reporter no longer sees it. The log keeps "
                          "its entries and a note of the deletion.")],
            action=request.path, button=gettext("Delete the case"), danger=True, back=back,
            fields={"registration_number": case.registration_number},
        )
    if request.form.get("registration_number") != case.registration_number:
        abort(400)
    number = case.registration_number
    casework.delete_case(ctx, case)
    flash(gettext("The case %(case)s was deleted.", case=number))
    return redirect(url_for("journalist.index"))
