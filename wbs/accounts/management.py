"""Account management: create, deactivate, reset password or second factor.

These functions only flush, like :mod:`wbs.tenants`; the caller commits, so a view can make it
one transaction with its own changes. An acting investigator (``actor``) must be an active
admin instansi of the same tenant; ``None`` is the operator at the command line.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import Session

from wbs.accounts.login import normal_username
from wbs.accounts.passwords import (
    check_password_policy,
    generated_password,
    hash_password,
)
from wbs.accounts.sessions import end_all_sessions
from wbs.accounts.settings import (
    DEFAULT_SETTINGS,
    AccountError,
    AccountPermissionError,
    AuthSettings,
)
from wbs.accounts.totp import Enrolment, start_enrolment
from wbs.domain import EventKind, Role
from wbs.models import (
    Event,
    Investigator,
    Tenant,
)
from wbs.tenancy import TenantScope

# Lower-case, starting with a letter: one spelling per person, nothing that needs escaping in
# a URL, a log line or the CLI's tab-separated output.
_USERNAME = re.compile(r"[a-z][a-z0-9._-]{2,63}")


def _check_actor(actor: Investigator | None, tenant_id: int) -> None:
    # None is the operator at the command line, who runs the whole instance.
    if actor is None:
        return
    if not actor.active or actor.role != Role.ADMIN_INSTANSI or actor.tenant_id != tenant_id:
        raise AccountPermissionError(
            "only an active admin instansi of the same instansi may manage its accounts"
        )


def _log(
    session: Session, tenant_id: int, kind: EventKind, subject: Investigator,
    actor: Investigator | None,
) -> None:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise AccountError("the account's instansi does not exist")
    TenantScope(session, tenant).add(
        Event(
            kind=kind,
            actor_investigator_id=actor.id if actor is not None else None,
            note=subject.username,
        )
    )


def create_investigator(
    session: Session,
    tenant: Tenant,
    username: str,
    display_name: str,
    role: Role | str,
    password: str | None = None,
    *,
    actor: Investigator | None = None,
    settings: AuthSettings = DEFAULT_SETTINGS,
) -> tuple[Investigator, str | None]:
    """Create an account; return it and its generated passphrase (None if one was given).

    Flushes. 2FA is set up separately, with :func:`start_enrolment`: until then the account
    cannot log in.
    """
    _check_actor(actor, tenant.id)
    try:
        role = Role(role)
    except ValueError:
        raise AccountError(f"unknown role {role!r}") from None
    username = normal_username(username)
    if not _USERNAME.fullmatch(username):
        raise AccountError(
            f"username {username!r}: 3-64 characters, lower-case letters, digits, '.', '_' "
            "or '-', starting with a letter"
        )
    display_name = display_name.strip()
    if not 1 <= len(display_name) <= 200:
        raise AccountError("the display name must have 1-200 characters")
    if role == Role.PEMANTAU_KPK and not tenant.is_hub:
        # A monitor reads across every tenant; only KPK's own staff may hold that role.
        raise AccountError("pemantau_kpk accounts exist only in the hub tenant (KPK)")
    if session.scalar(sa.select(Investigator.id).where(Investigator.username == username)):
        raise AccountError(f"the username {username!r} is taken")
    generated: str | None = None
    if password is None:
        password = generated = generated_password(username)
    else:
        problems = check_password_policy(password, username)
        if problems:
            raise AccountError(" ".join(problems))
    investigator = Investigator(
        username=username,
        display_name=display_name,
        role=role,
        password_hash=hash_password(password, settings.passwords),
    )
    TenantScope(session, tenant).add(investigator)
    session.flush()
    _log(session, tenant.id, EventKind.INVESTIGATOR_ADDED, investigator, actor)
    session.flush()
    return investigator, generated


def get_investigator(session: Session, username: str) -> Investigator:
    """The account named ``username``, in any tenant: for the operator's command line."""
    found = session.scalar(
        sa.select(Investigator).where(Investigator.username == normal_username(username))
    )
    if found is None:
        raise AccountError(f"no investigator account {username!r}")
    return found


def list_investigators(session: Session, tenant: Tenant) -> list[Investigator]:
    scope = TenantScope(session, tenant)
    return list(session.scalars(scope.select(Investigator).order_by(Investigator.username)))


def deactivate(
    session: Session, investigator: Investigator, *, actor: Investigator | None = None
) -> None:
    """Deactivate an account (never deleted: cases and the log point at it). Flushes."""
    _check_actor(actor, investigator.tenant_id)
    if actor is not None and actor.id == investigator.id:
        raise AccountError("an admin cannot deactivate their own account")
    if not investigator.active:
        raise AccountError(f"{investigator.username} is inactive already")
    investigator.active = False
    end_all_sessions(session, investigator)
    _log(session, investigator.tenant_id, EventKind.INVESTIGATOR_DEACTIVATED, investigator, actor)
    session.flush()


def reset_password(
    session: Session,
    investigator: Investigator,
    new_password: str | None = None,
    *,
    actor: Investigator | None = None,
    settings: AuthSettings = DEFAULT_SETTINGS,
) -> str | None:
    """Set a new password (generated unless given); return the generated one. Flushes.

    Ends every session of the account, since whoever knew the old password may hold one, and
    clears the throttle, since the person has been identified by whoever reset it.
    """
    _check_actor(actor, investigator.tenant_id)
    generated: str | None = None
    if new_password is None:
        new_password = generated = generated_password(investigator.username)
    else:
        problems = check_password_policy(new_password, investigator.username)
        if problems:
            raise AccountError(" ".join(problems))
    investigator.password_hash = hash_password(new_password, settings.passwords)
    investigator.failed_logins = 0
    investigator.locked_until = None
    end_all_sessions(session, investigator)
    _log(session, investigator.tenant_id, EventKind.PASSWORD_RESET, investigator, actor)
    session.flush()
    return generated


def reset_totp(
    session: Session,
    investigator: Investigator,
    *,
    actor: Investigator | None = None,
    settings: AuthSettings = DEFAULT_SETTINGS,
) -> Enrolment:
    """Replace a lost or exposed second factor: the old secret stops working at once, and the
    returned one is pending until its first code is accepted. Ends every session. Flushes."""
    _check_actor(actor, investigator.tenant_id)
    investigator.totp_secret_sealed = None
    investigator.totp_last_step = None
    enrolment = start_enrolment(session, investigator, settings=settings)
    end_all_sessions(session, investigator)
    _log(session, investigator.tenant_id, EventKind.TOTP_RESET, investigator, actor)
    session.flush()
    return enrolment
