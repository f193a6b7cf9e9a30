"""Self-service for any logged-in investigator: set up a new authenticator (TOTP), and choose
the content-free e-mail alerts (:mod:`wbs.alerts`): the address, opt-out and language.

The new secret is pending until a code made from it is confirmed here: the old one keeps
working until then, so a mistyped or abandoned set-up never locks anyone out
(:func:`wbs.accounts.start_enrolment`, :func:`wbs.accounts.confirm_enrolment`).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from markupsafe import Markup

from journalist_iface.auth import investigator_required
from journalist_iface.context import auth_settings, db, select_locale
from wbs.accounts import Enrolment, confirm_enrolment, start_enrolment
from wbs.alerts import LANGUAGES, MAX_EMAIL, AlertSettingError, alert_setting, save_alert_setting
from wbs.context import Context
from wbs.models import Investigator

bp = Blueprint("account", __name__)


def _page(
    investigator: Investigator,
    *,
    enrolment: Enrolment | None = None,
    error: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    return render_template(
        "account/totp.html",
        active=investigator.totp_secret_sealed is not None,
        pending=investigator.totp_pending_sealed is not None,
        enrolment=enrolment,
        # Drawn by segno on the server from our own URI: no user input reaches the markup.
        qr=Markup(enrolment.qr_svg) if enrolment else None,  # noqa: S704
        error=error,
    ), status


@bp.get("/akun/2fa")
@investigator_required()
def totp(ctx: Context) -> ResponseReturnValue:
    return _page(ctx.investigator)


@bp.post("/akun/2fa")
@investigator_required()
def start_totp(ctx: Context) -> ResponseReturnValue:
    # Shown once, in this response (no-store): the secret never goes into a cookie or a flash.
    enrolment = start_enrolment(db(), ctx.investigator, settings=auth_settings())
    db().commit()
    return _page(ctx.investigator, enrolment=enrolment)


@bp.post("/akun/2fa/konfirmasi")
@investigator_required()
def confirm_totp(ctx: Context) -> ResponseReturnValue:
    code = request.form.get("code", "")[:16]
    if ctx.investigator.totp_pending_sealed is None:
        return _page(ctx.investigator, error=gettext("Start the set-up first."), status=400)
    if not confirm_enrolment(db(), ctx.investigator, code, settings=auth_settings()):
        db().rollback()
        message = gettext(
            "That code does not match the new secret. Check the app's clock and try the next "
            "code, or start again. Your current authenticator still works."
        )
        return _page(ctx.investigator, error=message, status=400)
    db().commit()
    flash(gettext("The new authenticator is active; the old one no longer works."))
    return redirect(url_for("account.totp"))


# --- e-mail alerts ----------------------------------------------------------------------------


def _alerts_page(
    ctx: Context, *, form: dict[str, str] | None = None, error: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    if form is None:
        setting = alert_setting(ctx, ctx.investigator.id)
        form = {
            "email": (setting.email or "") if setting else "",
            "enabled": "1" if setting is None or setting.enabled else "",
            # No setting yet: the mail speaks the language this page is read in.
            "language": setting.language if setting else select_locale(),
        }
    return render_template(
        "account/alerts.html", form=form, error=error, languages=LANGUAGES,
        max_email=MAX_EMAIL,
    ), status


@bp.get("/akun/peringatan")
@investigator_required()
def alerts(ctx: Context) -> ResponseReturnValue:
    return _alerts_page(ctx)


@bp.post("/akun/peringatan")
@investigator_required()
def save_alerts(ctx: Context) -> ResponseReturnValue:
    # Only the account's own session reaches this: the investigator decides, not an admin.
    form = {
        "email": request.form.get("email", "").strip()[: MAX_EMAIL + 1],
        "enabled": "1" if request.form.get("enabled") == "1" else "",
        "language": request.form.get("language", ""),
    }
    try:
        save_alert_setting(
            ctx, email=form["email"], enabled=bool(form["enabled"]), language=form["language"]
        )
    except AlertSettingError:
        db().rollback()
        return _alerts_page(
            ctx, form=form, error=gettext("That is not an e-mail address."), status=400
        )
    db().commit()
    flash(gettext("Your e-mail alert settings are saved."))
    return redirect(url_for("account.alerts"))
