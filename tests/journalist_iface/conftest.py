"""A real instance for the investigator interface: demo tenants, real gpg keys, cheap KDF.

Built once per test module (keys and migrations are the slow part). Accounts are made fresh
for each test that logs in, since an account accepts each TOTP step only once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from crypto.codenames import generate_codename
from crypto.kdf import SourceSecrets
from crypto.keyring import kill_agent
from journalist_iface import create_app
from peluit.demo import ensure_demo
from tests.support import CHEAP_KDF, short_tempdir, wib_today
from wbs.accounts import AuthSettings, create_investigator, start_enrolment
from wbs.config import load_config
from wbs.context import Context
from wbs.domain import CaseStatus, EventKind, Role
from wbs.instance import Instance, init_instance
from wbs.intake import Intake, ReportAnswers
from wbs.models import Case, Event, new_registration_number
from wbs.sources import register_source
from wbs.tenancy import TenantScope
from wbs.tenants import get_tenant

TENANT = "pemprov-sumsel"
HUB = "kpk"
SETTINGS = AuthSettings.from_kdf(CHEAP_KDF)


@dataclass
class Demo:
    inst: Instance
    app: Flask
    workstation: Path
    # What ensure_demo printed (the demo accounts' passphrases and TOTP secrets).
    demo_lines: list[str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("journalist")
    gnupg, workstation = short_tempdir("ji-"), short_tempdir("jiws-")
    env = {
        "PELUIT_GNUPG_HOME": str(gnupg),
        "PELUIT_KDF_TIME_COST": str(CHEAP_KDF.time_cost),
        "PELUIT_KDF_MEMORY_KIB": str(CHEAP_KDF.memory_kib),
        "PELUIT_DISK_FLOOR_BYTES": "1M",
    }
    config = load_config(env, instance_dir=root / "instance")
    init_instance(config)
    inst = Instance.open(config)
    with inst.sessions() as session:
        lines = ensure_demo(session, inst.keyring, workstation, settings=inst.auth_settings())
    app = create_app(inst, testing=True, auth_settings=SETTINGS)
    try:
        yield Demo(inst=inst, app=app, workstation=workstation / "gnupg", demo_lines=lines)
    finally:
        inst.close()
        kill_agent(workstation / "gnupg")
        kill_agent(gnupg)
        shutil.rmtree(gnupg, ignore_errors=True)
        shutil.rmtree(workstation, ignore_errors=True)


_names = itertools.count(1)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "page has no CSRF token"
    return found.group(1)


@dataclass
class Account:
    id: int
    username: str
    password: str
    secret: str  # TOTP, pending until the first login confirms it
    tenant: str
    role: Role

    def code(self) -> str:
        return pyotp.TOTP(self.secret).now()


def make_account(demo: Demo, tenant: str = TENANT, role: Role = Role.VERIFIKATOR) -> Account:
    """An account as the CLI makes it: a generated passphrase and a pending TOTP secret."""
    username = f"{role.value.split('_')[0]}{next(_names)}"
    with demo.inst.sessions() as session:
        account, password = create_investigator(
            session, get_tenant(session, tenant), username, f"Petugas {username}", role,
            settings=demo.inst.auth_settings(),
        )
        enrolment = start_enrolment(session, account, settings=demo.inst.auth_settings())
        session.commit()
        assert password is not None
        return Account(account.id, username, password, enrolment.secret, tenant, role)


class Browser:
    """An investigator's browser."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.account: Account | None = None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def token(self, path: str = "/masuk") -> str:
        response = self.get(path)
        if response.status_code == 302:  # the login page sends a logged-in browser home
            response = self.get(response.location)
        return csrf_token(response.get_data(as_text=True))

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        """POST with the CSRF token of the page at ``path``'s case or of the login page."""
        fields = dict(data or {})
        fields.setdefault("csrf_token", self.token(kwargs.pop("token_from", "/masuk")))
        return self.client.post(path, data=fields, **kwargs)

    def login(self, account: Account, code: str | None = None, password: str | None = None) -> Any:
        return self.post(
            "/masuk",
            {
                "username": account.username,
                "password": account.password if password is None else password,
                "totp": account.code() if code is None else code,
            },
        )


def logged_in(demo: Demo, tenant: str = TENANT, role: Role = Role.VERIFIKATOR) -> Browser:
    browser = Browser(demo.app.test_client())
    browser.account = make_account(demo, tenant, role)
    response = browser.login(browser.account)
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def answers(**changes: str) -> ReportAnswers:
    fields = dict(
        category="suap_menyuap", mcp_area="perizinan", apa="Pungutan izin", siapa="Kasi X",
        kapan="Maret 2026", dimana="Dinas Y", bagaimana="Transfer", berapa="Rp5 juta",
        kronologi="",
    )
    fields.update(changes)
    return ReportAnswers(**fields)  # type: ignore[arg-type]


@dataclass
class Report:
    case_id: int
    registration_number: str
    secrets: SourceSecrets


def make_report(
    demo: Demo, tenant: str = TENANT, *, to_kpk: bool = False,
    files: tuple[bytes, ...] = (), **changes: str,
) -> Report:
    """A real report through the intake: encrypted form and files in the store."""
    inst = demo.inst
    with inst.sessions() as session:
        owner = get_tenant(session, tenant)
        secrets = register_source(Context(inst, session, owner), generate_codename())
        intake = Intake(Context(inst, session, owner), secrets.source_id, to_kpk=to_kpk)
        for number, data in enumerate(files):
            sink = intake.open_file("file", f"bukti-{number}.pdf")
            sink.write(data)
            sink.close()
        case = intake.new_case(answers(**changes))
        return Report(case.id, case.registration_number, secrets)


def add_bare_cases(
    demo: Demo, count: int, tenant: str = TENANT, **values: Any
) -> list[int]:
    """Case rows without items, for inbox tests (one source, no encryption per case)."""
    inst = demo.inst
    with inst.sessions() as session:
        owner = get_tenant(session, tenant)
        secrets = register_source(Context(inst, session, owner), generate_codename())
        scope = TenantScope(session, owner)
        made = []
        for _ in range(count):
            fields: dict[str, Any] = dict(
                category="gratifikasi", mcp_area=None, status=CaseStatus.BARU,
                first_response_due=wib_today() + dt.timedelta(days=10),
            )
            fields.update(values)
            case = Case(
                source_id=secrets.source_id,
                registration_number=new_registration_number(session, owner, 2026),
                **fields,
            )
            scope.add(case)
            session.flush()
            scope.add(Event(case_id=case.id, kind=EventKind.CASE_CREATED, to_status=case.status))
            made.append(case.id)
        session.commit()
        return made


@pytest.fixture
def browser(demo: Demo) -> Browser:
    return logged_in(demo)
