"""Login, logout and sessions of the investigator interface."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pyotp
import pytest

from journalist_iface.auth import COOKIE_NAME
from tests.journalist_iface.conftest import Account, Browser, Demo, make_account
from wbs.accounts import LOGIN_FAILED_MESSAGE
from wbs.domain import Role


def _cookie(browser: Browser) -> str | None:
    found = browser.client.get_cookie(COOKIE_NAME)
    return found.value if found else None


def _wrong_code(secret: str) -> str:
    totp = pyotp.TOTP(secret)
    step = totp.timecode(dt.datetime.now())
    near = {totp.generate_otp(step + delta) for delta in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in near)


def test_login_opens_a_server_side_session_with_a_strict_cookie(demo: Demo) -> None:
    account = make_account(demo)
    browser = Browser(demo.app.test_client())
    response = browser.login(account)
    assert response.status_code == 302 and response.location.endswith("/")
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME))
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Expires" not in header
    assert account.username not in header
    page = browser.get("/").get_data(as_text=True)
    assert f"Petugas {account.username}" in page


def test_a_new_login_gets_a_new_token(demo: Demo) -> None:
    browser = Browser(demo.app.test_client())
    browser.login(make_account(demo))
    first = _cookie(browser)
    browser.login(make_account(demo))
    second = _cookie(browser)
    assert first and second and first != second
    # The first session was closed by the second login: its token no longer works.
    other = Browser(demo.app.test_client())
    other.client.set_cookie(COOKIE_NAME, first)
    assert other.get("/").status_code == 302


def test_every_failure_shows_the_same_message(
    demo: Demo, caplog: pytest.LogCaptureFixture
) -> None:
    account = make_account(demo)
    pages = []
    cases = {
        "unknown user": dict(account=make_account(demo), username="tidakada99"),
        "wrong password": dict(account=account, password="salah sekali kata sandi ini"),
        "wrong code": dict(account=account, code=_wrong_code(account.secret)),
    }
    with caplog.at_level(logging.WARNING):
        for label, attempt in cases.items():
            acct = attempt["account"]
            assert not isinstance(acct, str)
            if "username" in attempt:
                acct.username = str(attempt["username"])
            browser = Browser(demo.app.test_client())
            response = browser.login(
                acct, code=attempt.get("code"), password=attempt.get("password")  # type: ignore[arg-type]
            )
            assert response.status_code == 200, label
            assert _cookie(browser) is None, label
            pages.append(response.get_data(as_text=True))
    assert all(LOGIN_FAILED_MESSAGE in page for page in pages)
    # Same page apart from the CSRF token.
    strip = [re.sub(r'name="csrf_token" value="[^"]+"', "", page) for page in pages]
    assert len(set(strip)) == 1
    # The reason is logged, never the username.
    logged = caplog.text
    assert "unknown_user" in logged and "bad_password" in logged and "bad_code" in logged
    assert account.username not in logged and "tidakada99" not in logged


def test_a_replayed_code_is_refused(demo: Demo) -> None:
    account = make_account(demo)
    code = account.code()
    first = Browser(demo.app.test_client())
    assert first.login(account, code=code).status_code == 302
    second = Browser(demo.app.test_client())
    response = second.login(account, code=code)
    assert response.status_code == 200
    assert LOGIN_FAILED_MESSAGE in response.get_data(as_text=True)
    assert _cookie(second) is None


def test_logout_closes_the_session(demo: Demo, browser: Browser) -> None:
    token = _cookie(browser)
    assert token
    response = browser.post("/keluar", token_from="/")
    assert response.status_code == 302 and response.location.endswith("/masuk")
    assert _cookie(browser) is None
    # The old token is dead on the server, not just forgotten by this browser.
    other = Browser(demo.app.test_client())
    other.client.set_cookie(COOKIE_NAME, token)
    response = other.get("/")
    assert response.status_code == 302 and "expired=1" in response.location


def test_login_needs_csrf(demo: Demo) -> None:
    account = make_account(demo)
    client = demo.app.test_client()
    response = client.post(
        "/masuk",
        data={"username": account.username, "password": account.password, "totp": account.code()},
    )
    assert response.status_code == 400
    assert client.get_cookie(COOKIE_NAME) is None


def test_monitor_can_log_in(demo: Demo) -> None:
    browser = Browser(demo.app.test_client())
    assert browser.login(make_account(demo, "kpk", Role.PEMANTAU_KPK)).status_code == 302


def test_demo_accounts_are_made_once_and_can_log_in(demo: Demo) -> None:
    from peluit.demo import ensure_demo

    printed = {}
    for line in demo.demo_lines:
        found = re.match(r"demo account (\S+) \((\w+), ([\w-]+)\): passphrase '([^']+)', "
                         r"TOTP secret (\w+)$", line)
        if found:
            printed[found.group(1)] = found.groups()
    assert set(printed) == {"admin.sumsel", "verifikator.sumsel", "pemantau.kpk"}
    # Running it again makes nothing new (and prints no passphrase again).
    with demo.inst.sessions() as session:
        assert ensure_demo(
            session, demo.inst.keyring, demo.workstation.parent, settings=demo.inst.auth_settings()
        ) == []
    username, role, tenant, passphrase, secret = printed["pemantau.kpk"]
    account = Account(0, username, passphrase, secret, tenant, Role(role))
    browser = Browser(demo.app.test_client())
    assert browser.login(account).status_code == 302
    assert "Pemantau Demo KPK" in browser.get("/").get_data(as_text=True)
