"""Investigator accounts: passwords, TOTP, throttling, sessions, account management.

Every database test runs on SQLite and PostgreSQL. Time is injected (``now``), never slept.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pyotp
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.codenames import load_wordlist
from crypto.sealing import SealError, SealingKey
from wbs import accounts, db
from wbs.accounts import (
    LOGIN_FAILED_MESSAGE,
    AccountError,
    AccountPermissionError,
    AuthSettings,
    FailureReason,
    LoginResult,
    PasswordParams,
    SessionParams,
    ThrottleParams,
    authenticate,
    backoff_delay,
    check_password_policy,
    close_session,
    confirm_enrolment,
    create_investigator,
    deactivate,
    end_all_sessions,
    generate_passphrase,
    hash_password,
    open_secret,
    open_session,
    purge_expired_sessions,
    reset_password,
    reset_totp,
    resume_session,
    start_enrolment,
    verify_password,
)
from wbs.domain import EventKind, Role, TenantKind
from wbs.models import Event, Investigator, InvestigatorSession, LoginFailure, Tenant
from wbs.tenants import create_tenant

CHEAP = PasswordParams(time_cost=1, memory_kib=8, parallelism=1)
# A fixed test key: the instance's comes from its secrets (wbs.accounts.totp_key).
TOTP_KEY = SealingKey(b"k" * 32)
SETTINGS = AuthSettings(passwords=CHEAP, totp_key=TOTP_KEY)
PASSWORD = "tembok hijau sungai pagi"
# On a step boundary plus 10 s: codes of this step, the one before and the one after are known.
NOW = dt.datetime(2026, 3, 2, 2, 0, 10, tzinfo=dt.UTC)
STEP = dt.timedelta(seconds=30)




@pytest.fixture
def hub(session: Session) -> Tenant:
    made = create_tenant(session, slug="kpk", name="KPK", kind=TenantKind.HUB)
    session.commit()
    return made


def make_account(
    session: Session,
    tenant: Tenant,
    username: str = "siti",
    role: Role = Role.VERIFIKATOR,
    *,
    enrolled_at: dt.datetime = NOW - dt.timedelta(minutes=10),
) -> tuple[Investigator, pyotp.TOTP]:
    """An account with PASSWORD and a confirmed TOTP secret (confirmed at ``enrolled_at``)."""
    account, _ = create_investigator(
        session, tenant, username, username.title(), role, PASSWORD, settings=SETTINGS
    )
    enrolment = start_enrolment(session, account, settings=SETTINGS)
    totp = pyotp.TOTP(enrolment.secret)
    assert confirm_enrolment(
        session, account, totp.at(enrolled_at), now=enrolled_at, settings=SETTINGS
    )
    session.commit()
    return account, totp


def login(
    session: Session,
    totp: pyotp.TOTP,
    at: dt.datetime = NOW,
    *,
    username: str = "siti",
    password: str = PASSWORD,
    code: str | None = None,
    settings: AuthSettings = SETTINGS,
) -> LoginResult:
    return authenticate(
        session, username, password, code if code is not None else totp.at(at), at,
        settings=settings,
    )


def unsealed(account: Investigator, sealed: str | None) -> str | None:
    return None if sealed is None else open_secret(TOTP_KEY, account.id, sealed)


def events(session: Session, kind: EventKind) -> list[Event]:
    return list(session.scalars(sa.select(Event).where(Event.kind == kind).order_by(Event.id)))


# --- Passwords --------------------------------------------------------------------------------


def test_hash_verifies_only_its_password_and_survives_damage() -> None:
    stored = hash_password(PASSWORD, CHEAP)
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, PASSWORD, CHEAP)
    assert not verify_password(stored, PASSWORD + "!", CHEAP)
    assert not verify_password("not a hash", PASSWORD, CHEAP)
    # The same password typed with a decomposed accent matches (NFKC).
    assert verify_password(hash_password("café de la gare 2", CHEAP), "cafe\u0301 de la gare 2")


def test_generated_passphrase_is_seven_list_words_that_pass_the_policy() -> None:
    words = set(load_wordlist("en"))
    phrases = {generate_passphrase() for _ in range(20)}
    assert len(phrases) == 20
    for phrase in phrases:
        assert len(phrase.split(" ")) == 7
        assert set(phrase.split(" ")) <= words
        # A username with a digit: no list word contains it, so only the policy can fail here
        # (a name like "siti" sits inside "positive", which the policy rightly refuses).
        assert check_password_policy(phrase, "siti9") == []
    assert all(w in set(load_wordlist("id")) for w in generate_passphrase(6, "id").split())
    with pytest.raises(ValueError):
        generate_passphrase(4)


@pytest.mark.parametrize(
    "password",
    [
        "short one",  # under 14 characters
        "siti-suka-makan-rendang",  # holds the username
        "Password2024!!!!",  # common words, digits, symbols
        "IndonesiaMerdeka1945",
        "passwordpassword",
        "abcdefghijklmnopq",  # alphabet run
        "qwertyuiopasdfgh",  # keyboard run
        "12345678901234567",
        "aaaaaaaaaaaaaaaaaaab",  # too few distinct characters
        "",
        "x" * 1025,
    ],
)
def test_policy_refuses_weak_passwords(password: str) -> None:
    assert check_password_policy(password, "siti") != []


@pytest.mark.parametrize(
    "password", ["korupsi harus diberantas tuntas", "Rendang+Pempek=Kenyang!", "tembok hijau 42x"]
)
def test_policy_accepts_long_uncommon_passwords(password: str) -> None:
    assert check_password_policy(password, "siti") == []


def test_login_rehashes_when_the_cost_changed(session: Session, tenant: Tenant) -> None:
    account, totp = make_account(session, tenant)
    old_hash = account.password_hash
    assert "t=1," in old_hash

    stronger = dataclasses.replace(SETTINGS, passwords=PasswordParams(2, 16, 1))
    assert login(session, totp, settings=stronger).ok
    session.expire_all()
    new_hash = session.get(Investigator, account.id).password_hash  # type: ignore[union-attr]
    assert new_hash != old_hash and "m=16,t=2," in new_hash
    # The new hash is the same password, and with unchanged costs it is kept as it is.
    assert login(session, totp, NOW + STEP, settings=stronger).ok
    session.expire_all()
    assert session.get(Investigator, account.id).password_hash == new_hash  # type: ignore[union-attr]


# --- TOTP -------------------------------------------------------------------------------------


def test_enrolment_is_pending_until_a_code_confirms_it(session: Session, tenant: Tenant) -> None:
    account, _ = create_investigator(
        session, tenant, "budi", "Budi", Role.VERIFIKATOR, PASSWORD, settings=SETTINGS
    )
    enrolment = start_enrolment(session, account, settings=SETTINGS)
    assert account.totp_secret_sealed is None
    assert unsealed(account, account.totp_pending_sealed) == enrolment.secret
    assert enrolment.uri.startswith("otpauth://totp/Peluit:budi?")
    assert f"secret={enrolment.secret}" in enrolment.uri
    assert enrolment.secret not in repr(enrolment)
    # A server-drawn image: no script, no link, nothing fetched from anywhere.
    svg = enrolment.qr_svg
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    for forbidden in ("<script", "href", "url(", "<image", "<foreign"):
        assert forbidden not in svg

    totp = pyotp.TOTP(enrolment.secret)
    wrong = f"{(int(totp.at(NOW)) + 1) % 1_000_000:06d}"
    assert not confirm_enrolment(session, account, wrong, now=NOW, settings=SETTINGS)
    assert account.totp_secret_sealed is None
    assert not confirm_enrolment(session, account, "abcdef", now=NOW, settings=SETTINGS)
    assert confirm_enrolment(session, account, totp.at(NOW), now=NOW, settings=SETTINGS)
    assert unsealed(account, account.totp_secret_sealed) == enrolment.secret
    assert account.totp_pending_sealed is None
    # The code that confirmed the enrolment cannot be replayed to log in.
    session.commit()
    assert login(session, totp, username="budi").reason == FailureReason.REPLAYED_CODE


def test_re_enrolment_keeps_the_old_secret_until_confirmed(
    session: Session, tenant: Tenant
) -> None:
    account, old = make_account(session, tenant)
    enrolment = start_enrolment(session, account, settings=SETTINGS)
    session.commit()
    new = pyotp.TOTP(enrolment.secret)
    assert login(session, new).reason == FailureReason.BAD_CODE
    assert login(session, old, NOW + STEP).ok


def test_code_of_this_step_and_one_either_side_is_accepted(
    session: Session, tenant: Tenant
) -> None:
    _, totp = make_account(session, tenant)
    assert login(session, totp, NOW, code=totp.at(NOW - STEP)).ok
    assert login(session, totp, NOW + 2 * STEP, code=totp.at(NOW + 3 * STEP)).ok
    assert login(session, totp, NOW + 10 * STEP).ok


def test_codes_outside_the_window_or_malformed_are_refused(
    session: Session, tenant: Tenant
) -> None:
    _, totp = make_account(session, tenant)
    lenient = dataclasses.replace(SETTINGS, throttle=ThrottleParams(free_failures=100))
    for code in (totp.at(NOW - 2 * STEP), totp.at(NOW + 2 * STEP), "", "12345", "12a456"):
        if code in {totp.at(NOW - STEP), totp.at(NOW), totp.at(NOW + STEP)}:
            continue  # a chance collision of six digits
        assert login(session, totp, code=code, settings=lenient).reason == FailureReason.BAD_CODE
    # Spaces, as some apps show the code ("123 456"), are ignored.
    spaced = " ".join(totp.at(NOW)[i : i + 3] for i in (0, 3))
    assert login(session, totp, code=spaced, settings=lenient).ok


def test_a_code_is_never_accepted_twice_nor_an_older_one(
    session: Session, tenant: Tenant
) -> None:
    _, totp = make_account(session, tenant)
    code = totp.at(NOW)
    assert login(session, totp, code=code).ok
    assert login(session, totp, code=code).reason == FailureReason.REPLAYED_CODE
    # Still inside the window 20 s later, but its step has been used.
    assert login(session, totp, NOW + dt.timedelta(seconds=20), code=code).reason == (
        FailureReason.REPLAYED_CODE
    )
    assert login(session, totp, NOW + STEP, code=totp.at(NOW + STEP)).ok
    # A code of the previous step is within the window, but older than the last accepted.
    assert login(session, totp, NOW + STEP, code=totp.at(NOW)).reason == (
        FailureReason.REPLAYED_CODE
    )


def test_first_login_confirms_a_pending_enrolment(session: Session, tenant: Tenant) -> None:
    account, _ = create_investigator(
        session, tenant, "siti", "Siti", Role.VERIFIKATOR, PASSWORD, settings=SETTINGS
    )
    session.commit()
    no_totp = login(session, pyotp.TOTP(pyotp.random_base32()))
    assert no_totp.reason == FailureReason.NO_TOTP

    enrolment = start_enrolment(session, account, settings=SETTINGS)
    session.commit()
    totp = pyotp.TOTP(enrolment.secret)
    assert login(session, totp, NOW + STEP).ok
    session.expire_all()
    stored = session.get(Investigator, account.id)
    assert stored is not None
    assert unsealed(stored, stored.totp_secret_sealed) == enrolment.secret
    assert stored.totp_pending_sealed is None


# --- One failure for all ----------------------------------------------------------------------


def test_every_failure_looks_the_same_but_for_its_internal_reason(
    session: Session, tenant: Tenant
) -> None:
    _, totp = make_account(session, tenant)
    _, other_totp = make_account(session, tenant, "budi")
    gone, gone_totp = make_account(session, tenant, "lama")
    deactivate(session, gone)
    session.commit()
    assert login(session, totp, NOW - STEP).ok  # for the replay below

    results = {
        FailureReason.UNKNOWN_USER: login(session, totp, username="nobody"),
        FailureReason.BAD_PASSWORD: login(session, totp, password="salah sekali kata sandi"),
        FailureReason.BAD_CODE: login(session, totp, username="budi", code="000000")
        if other_totp.at(NOW) != "000000"
        else login(session, totp, username="budi", code="000001"),
        FailureReason.REPLAYED_CODE: login(session, totp, NOW - STEP),
        FailureReason.INACTIVE: login(session, gone_totp, username="lama"),
    }
    for reason, result in results.items():
        assert result.reason == reason
        assert not result.ok and result.investigator is None
        assert result.message == LOGIN_FAILED_MESSAGE
        assert dataclasses.replace(result, reason=None) == LoginResult(investigator=None)


def test_every_checked_attempt_runs_exactly_one_password_check(
    session: Session, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The response time must not tell which usernames exist: unknown users and throttled
    # accounts cost the same argon2 verification as a real check.
    account, totp = make_account(session, tenant)
    calls: list[str] = []
    real = accounts.verify_password

    def counting(password_hash: str, password: str, params: PasswordParams = CHEAP) -> bool:
        calls.append(password_hash)
        return real(password_hash, password, params)

    # authenticate looks verify_password up in its own module.
    monkeypatch.setattr(accounts.login, "verify_password", counting)
    for username in ("nobody", "siti"):
        calls.clear()
        assert not login(session, totp, username=username, password="salah sekali kata").ok
        assert len(calls) == 1
    calls.clear()
    assert login(session, totp).ok
    assert len(calls) == 1

    strict = dataclasses.replace(SETTINGS, throttle=ThrottleParams(free_failures=1))
    assert not login(session, totp, NOW + STEP, password="salah lagi sekali kata",
                     settings=strict).ok
    calls.clear()
    throttled = login(session, totp, NOW + STEP, settings=strict)
    assert throttled.reason == FailureReason.THROTTLED
    assert len(calls) == 1 and calls[0] != account.password_hash


# --- Throttling -------------------------------------------------------------------------------


def test_backoff_doubles_from_the_fifth_failure_up_to_fifteen_minutes() -> None:
    throttle = ThrottleParams()
    assert [backoff_delay(n, throttle) for n in range(5)] == [None] * 5
    seconds = [backoff_delay(n, throttle).total_seconds() for n in range(5, 12)]  # type: ignore[union-attr]
    assert seconds == [30, 60, 120, 240, 480, 900, 900]
    assert backoff_delay(10_000, throttle) == dt.timedelta(minutes=15)


def test_account_backs_off_then_lets_the_real_user_in(session: Session, tenant: Tenant) -> None:
    account, totp = make_account(session, tenant)
    wrong = "bukan kata sandinya"
    for _ in range(4):
        assert login(session, totp, password=wrong).reason == FailureReason.BAD_PASSWORD
    assert account.locked_until is None
    assert login(session, totp, password=wrong).reason == FailureReason.BAD_PASSWORD
    assert account.failed_logins == 5
    assert account.locked_until == NOW + dt.timedelta(seconds=30)

    # While refused, even the right password and code are not checked, and nothing is counted:
    # guessing cannot push the delay further.
    later = NOW + dt.timedelta(seconds=20)
    assert login(session, totp, later).reason == FailureReason.THROTTLED
    assert account.failed_logins == 5

    # One more wrong guess after the delay doubles it.
    after = NOW + dt.timedelta(seconds=31)
    assert login(session, totp, after, password=wrong).reason == FailureReason.BAD_PASSWORD
    assert account.locked_until == after + dt.timedelta(seconds=60)

    # After the back-off the real user gets in, and the count starts over.
    back = after + dt.timedelta(seconds=61)
    assert login(session, totp, back).ok
    session.expire_all()
    stored = session.get(Investigator, account.id)
    assert stored is not None
    assert stored.failed_logins == 0 and stored.locked_until is None
    assert stored.last_login_at == back


def test_longest_lock_is_fifteen_minutes(session: Session, tenant: Tenant) -> None:
    account, totp = make_account(session, tenant)
    at = NOW
    for _ in range(15):
        login(session, totp, at, password="bukan kata sandinya")
        at = max(at, account.locked_until or at) + dt.timedelta(seconds=1)
    assert account.locked_until is not None
    assert account.locked_until - (at - dt.timedelta(seconds=1)) <= dt.timedelta(minutes=15)
    assert login(session, totp, account.locked_until).ok


def test_global_limiter_slows_everyone_for_a_window(session: Session, tenant: Tenant) -> None:
    _, totp = make_account(session, tenant)
    settings = dataclasses.replace(
        SETTINGS, throttle=ThrottleParams(global_max_failures=3)
    )
    # Spraying: one guess each at many names, which no per-account limit sees.
    for name in ("andi", "budi", "citra"):
        assert login(session, totp, username=name, settings=settings).reason == (
            FailureReason.UNKNOWN_USER
        )
    blocked = login(session, totp, NOW + dt.timedelta(seconds=30), settings=settings)
    assert blocked.reason == FailureReason.GLOBAL_THROTTLED
    assert blocked.message == LOGIN_FAILED_MESSAGE
    # Refused attempts are not counted, so the limiter lifts one window after the failures.
    assert login(session, totp, NOW + dt.timedelta(seconds=61), settings=settings).ok
    assert accounts.recent_failures(session, NOW + dt.timedelta(seconds=61)) == 0


def test_successful_logins_are_not_counted_and_old_failures_are_purged(
    session: Session, tenant: Tenant
) -> None:
    _, totp = make_account(session, tenant)
    login(session, totp, NOW - dt.timedelta(minutes=5), username="nobody")
    assert login(session, totp).ok
    assert session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) == 0
    login(session, totp, NOW + STEP, username="nobody")
    assert session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) == 1


# --- Sessions ---------------------------------------------------------------------------------


def test_session_round_trip_stores_only_a_hash(session: Session, tenant: Tenant) -> None:
    account, _ = make_account(session, tenant)
    token = open_session(session, account, NOW)
    active = resume_session(session, token, NOW + dt.timedelta(minutes=1), settings=SETTINGS)
    assert active is not None
    assert active.investigator.id == account.id and active.tenant.id == tenant.id
    row = session.scalars(sa.select(InvestigatorSession)).one()
    assert token not in row.id and len(row.id) == 64
    for bad in ("", "x" * 500, token[:-1], token + "a"):
        assert resume_session(session, bad, NOW, settings=SETTINGS) is None
    close_session(session, token)
    assert resume_session(session, token, NOW, settings=SETTINGS) is None
    assert session.scalar(sa.select(sa.func.count()).select_from(InvestigatorSession)) == 0


def test_session_idle_expiry_slides(session: Session, tenant: Tenant) -> None:
    account, _ = make_account(session, tenant)
    token = open_session(session, account, NOW)
    at = NOW
    for _ in range(4):  # two hours of activity, never idle for 30 minutes
        at += dt.timedelta(minutes=29)
        assert resume_session(session, token, at, settings=SETTINGS) is not None
    assert resume_session(session, token, at + dt.timedelta(minutes=30), settings=SETTINGS) is None
    # Gone for good, even if asked at a time it would have been alive.
    assert resume_session(session, token, at, settings=SETTINGS) is None


def test_session_absolute_expiry(session: Session, tenant: Tenant) -> None:
    account, _ = make_account(session, tenant)
    token = open_session(session, account, NOW)
    at = NOW
    while at + dt.timedelta(minutes=20) < NOW + dt.timedelta(hours=12):
        at += dt.timedelta(minutes=20)
        assert resume_session(session, token, at, settings=SETTINGS) is not None
    assert resume_session(session, token, NOW + dt.timedelta(hours=12), settings=SETTINGS) is None


def test_purge_removes_only_expired_sessions(session: Session, tenant: Tenant) -> None:
    account, _ = make_account(session, tenant)
    open_session(session, account, NOW - dt.timedelta(hours=1))
    open_session(session, account, NOW - dt.timedelta(hours=13))
    live = open_session(session, account, NOW - dt.timedelta(minutes=5))
    short = dataclasses.replace(SETTINGS, sessions=SessionParams())
    assert purge_expired_sessions(session, NOW, settings=short) == 2
    assert resume_session(session, live, NOW, settings=short) is not None


def test_resets_and_deactivation_end_the_users_sessions_only(
    session: Session, tenant: Tenant
) -> None:
    siti, _ = make_account(session, tenant)
    budi, _ = make_account(session, tenant, "budi")
    budi_token = open_session(session, budi, NOW)

    for action in (
        lambda: reset_password(session, siti, settings=SETTINGS),
        lambda: reset_totp(session, siti, settings=SETTINGS),
        lambda: deactivate(session, siti),
    ):
        tokens = [open_session(session, siti, NOW) for _ in range(2)]
        action()
        session.commit()
        for token in tokens:
            assert resume_session(session, token, NOW, settings=SETTINGS) is None
        assert resume_session(session, budi_token, NOW, settings=SETTINGS) is not None
    assert end_all_sessions(session, budi) == 1


def test_session_of_a_deactivated_account_is_refused(session: Session, tenant: Tenant) -> None:
    account, _ = make_account(session, tenant)
    token = open_session(session, account, NOW)
    # Even if deactivated behind our back (another process, a direct SQL change).
    session.execute(sa.update(Investigator).values(active=False))
    session.commit()
    assert resume_session(session, token, NOW, settings=SETTINGS) is None


# --- Account management -----------------------------------------------------------------------


def test_create_generates_a_working_passphrase_and_logs_it(
    session: Session, tenant: Tenant
) -> None:
    account, generated = create_investigator(
        session, tenant, " Siti.Aminah ", "Siti Aminah", Role.VERIFIKATOR, settings=SETTINGS
    )
    assert generated is not None and len(generated.split()) == 7
    assert account.username == "siti.aminah" and account.tenant_id == tenant.id
    assert generated not in account.password_hash
    enrolment = start_enrolment(session, account, settings=SETTINGS)
    session.commit()
    totp = pyotp.TOTP(enrolment.secret)
    assert login(session, totp, username="Siti.Aminah", password=generated).ok

    [added] = events(session, EventKind.INVESTIGATOR_ADDED)
    assert added.tenant_id == tenant.id and added.note == "siti.aminah"
    assert added.actor_investigator_id is None


@pytest.mark.parametrize("username", ["ab", "1siti", "siti aminah", "siti/aminah", "x" * 65])
def test_usernames_are_validated(session: Session, tenant: Tenant, username: str) -> None:
    with pytest.raises(AccountError, match="username"):
        create_investigator(session, tenant, username, "X", Role.VERIFIKATOR, settings=SETTINGS)


def test_usernames_are_unique_across_tenants(
    session: Session, tenant: Tenant, hub: Tenant
) -> None:
    make_account(session, tenant)
    with pytest.raises(AccountError, match="taken"):
        create_investigator(session, hub, "SITI", "Siti", Role.VERIFIKATOR, settings=SETTINGS)


def test_chosen_password_must_pass_the_policy(session: Session, tenant: Tenant) -> None:
    with pytest.raises(AccountError, match="minimal 14"):
        create_investigator(
            session, tenant, "siti", "Siti", Role.VERIFIKATOR, "pendek", settings=SETTINGS
        )
    account, _ = make_account(session, tenant)
    with pytest.raises(AccountError, match="umum"):
        reset_password(session, account, "Password2024!!!!", settings=SETTINGS)


def test_kpk_monitors_exist_only_in_the_hub(session: Session, tenant: Tenant, hub: Tenant) -> None:
    with pytest.raises(AccountError, match="hub"):
        create_investigator(session, tenant, "pantau", "P", Role.PEMANTAU_KPK, settings=SETTINGS)
    monitor, _ = create_investigator(
        session, hub, "pantau", "P", Role.PEMANTAU_KPK, settings=SETTINGS
    )
    assert monitor.tenant_id == hub.id
    # The hub has its own admins and verifikator too (reports filed with KPK directly).
    create_investigator(session, hub, "admin.kpk", "A", Role.ADMIN_INSTANSI, settings=SETTINGS)
    with pytest.raises(AccountError, match="role"):
        create_investigator(session, hub, "nobody", "N", "superuser", settings=SETTINGS)


def test_only_an_admin_of_the_same_tenant_manages_accounts(
    session: Session, tenant: Tenant, hub: Tenant
) -> None:
    admin, _ = make_account(session, tenant, "admin", Role.ADMIN_INSTANSI)
    verifikator, _ = make_account(session, tenant, "budi")
    hub_admin, _ = make_account(session, hub, "admin.kpk", Role.ADMIN_INSTANSI)

    for actor in (verifikator, hub_admin):
        with pytest.raises(AccountPermissionError):
            create_investigator(
                session, tenant, "baru", "Baru", Role.VERIFIKATOR, actor=actor, settings=SETTINGS
            )
        with pytest.raises(AccountPermissionError):
            reset_totp(session, admin, actor=actor, settings=SETTINGS)
        with pytest.raises(AccountPermissionError):
            deactivate(session, admin, actor=actor)

    created, _ = create_investigator(
        session, tenant, "baru", "Baru", Role.VERIFIKATOR, actor=admin, settings=SETTINGS
    )
    assert events(session, EventKind.INVESTIGATOR_ADDED)[-1].actor_investigator_id == admin.id
    with pytest.raises(AccountError, match="own account"):
        deactivate(session, admin, actor=admin)
    deactivate(session, created, actor=admin)
    with pytest.raises(AccountError, match="inactive already"):
        deactivate(session, created, actor=admin)
    # A deactivated admin manages nothing.
    deactivate(session, admin)
    with pytest.raises(AccountPermissionError):
        reset_password(session, verifikator, actor=admin, settings=SETTINGS)


def test_reset_password_replaces_it_clears_the_throttle_and_logs(
    session: Session, tenant: Tenant
) -> None:
    account, totp = make_account(session, tenant)
    for _ in range(5):
        login(session, totp, password="bukan kata sandinya")
    assert account.locked_until is not None
    generated = reset_password(session, account, settings=SETTINGS)
    session.commit()
    assert generated is not None
    assert login(session, totp).reason == FailureReason.BAD_PASSWORD
    assert login(session, totp, NOW + STEP, password=generated).ok
    [logged] = events(session, EventKind.PASSWORD_RESET)
    assert logged.note == "siti" and generated not in (logged.note or "")
    chosen = "kata sandi baru yang panjang"
    assert reset_password(session, account, chosen, settings=SETTINGS) is None


def test_reset_totp_retires_the_old_secret_at_once(session: Session, tenant: Tenant) -> None:
    account, old = make_account(session, tenant)
    enrolment = reset_totp(session, account, settings=SETTINGS)
    session.commit()
    assert account.totp_secret_sealed is None
    assert unsealed(account, account.totp_pending_sealed) == enrolment.secret
    assert login(session, old).reason == FailureReason.BAD_CODE
    assert login(session, pyotp.TOTP(enrolment.secret), NOW + STEP).ok
    [logged] = events(session, EventKind.TOTP_RESET)
    assert logged.note == "siti" and logged.tenant_id == tenant.id


def test_deactivated_account_cannot_log_in(session: Session, tenant: Tenant) -> None:
    account, totp = make_account(session, tenant)
    deactivate(session, account)
    session.commit()
    assert login(session, totp).reason == FailureReason.INACTIVE
    [logged] = events(session, EventKind.INVESTIGATOR_DEACTIVATED)
    assert logged.note == "siti"


def test_parallel_guesses_cannot_slip_past_the_lock(database_url: str, tenant: Tenant) -> None:
    # Attempts are counted before the slow hash runs, so a burst of simultaneous guesses gets
    # exactly as many checks as the throttle allows, not one per request in flight.
    engine = db.make_engine(database_url)
    factory = db.make_session_factory(engine)
    with factory() as setup:
        make_account(setup, setup.merge(tenant))
    strict = dataclasses.replace(SETTINGS, throttle=ThrottleParams(free_failures=2))
    barrier = threading.Barrier(8)
    reasons: list[FailureReason | None] = []

    def guess() -> None:
        with factory() as own:
            barrier.wait()
            result = authenticate(own, "siti", "tebakan yang salah sekali", "000000", NOW,
                                  settings=strict)
            reasons.append(result.reason)

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    assert len(reasons) == 8
    assert reasons.count(FailureReason.BAD_PASSWORD) == 2
    assert reasons.count(FailureReason.THROTTLED) == 6


# --- TOTP secrets at rest ---------------------------------------------------------------------


def test_totp_secrets_are_sealed_in_the_database(session: Session, tenant: Tenant) -> None:
    account, totp = make_account(session, tenant)
    pending = start_enrolment(session, account, settings=SETTINGS)
    session.commit()
    row = session.execute(
        sa.text("SELECT * FROM investigators WHERE id = :id"), {"id": account.id}
    ).mappings().one()
    session.rollback()
    stored = " ".join(str(value) for value in row.values())
    # Neither the active nor the pending secret is in the row, in any spelling.
    for secret in (totp.secret, pending.secret):
        assert secret not in stored and secret.lower() not in stored
    assert row["totp_secret_sealed"].startswith("v1.")
    assert row["totp_pending_sealed"].startswith("v1.")
    assert unsealed(account, row["totp_secret_sealed"]) == totp.secret


def test_a_database_copy_alone_gives_no_working_totp_secret(
    session: Session, tenant: Tenant
) -> None:
    account, totp = make_account(session, tenant)
    sealed = account.totp_secret_sealed
    assert sealed is not None
    other = SealingKey(b"o" * 32)  # another instance, or a guess: not this instance's key
    with pytest.raises(SealError):
        open_secret(other, account.id, sealed)
    elsewhere = dataclasses.replace(SETTINGS, totp_key=other)
    assert login(session, totp, settings=elsewhere).reason == FailureReason.UNREADABLE_TOTP
    assert login(session, totp).ok


def test_a_sealed_secret_moved_to_another_account_does_not_open(
    session: Session, tenant: Tenant
) -> None:
    siti, siti_totp = make_account(session, tenant, "siti")
    budi, _ = make_account(session, tenant, "budi")
    # Someone who can write the database gives budi siti's (known) second factor.
    budi.totp_secret_sealed = siti.totp_secret_sealed
    session.commit()
    moved = login(session, siti_totp, username="budi")
    assert not moved.ok and moved.reason == FailureReason.UNREADABLE_TOTP


def test_without_the_instances_key_no_totp_operation_runs(
    session: Session, tenant: Tenant
) -> None:
    account, totp = make_account(session, tenant)
    keyless = AuthSettings(passwords=CHEAP)
    with pytest.raises(RuntimeError, match="totp_key"):
        start_enrolment(session, account, settings=keyless)
    with pytest.raises(RuntimeError, match="totp_key"):
        login(session, totp, settings=keyless)
    session.rollback()
