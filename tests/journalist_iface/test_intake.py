"""Operator intake through the investigators' interface and API, with real keys: the case
reaches the inbox, the codename is shown once (no-store) and logs in on the reporter's side,
where the reporter sees the case and sends a follow-up."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from flask_babel import force_locale

from journalist_iface import refusals
from source_iface import create_app as create_source_app
from tests.journalist_iface.conftest import TENANT, Demo, logged_in, make_account
from tests.source_iface.conftest import Reporter
from tests.support import clocks, short_tempdir, wib_today
from tests.workstation.helpers import kill_agent, run, workstation_home
from wbs import operator_intake
from wbs.casework import Refusal
from wbs.domain import Channel, EventKind, Role, SubmissionKind
from wbs.intake import ANSWER_DAYS
from wbs.models import Case, Event
from wbs.tenants import current_recipients, get_tenant
from wbs.workdays import local_date

ANSWERS = {"apa": "Pungli izin usaha mikro", "siapa": "Staf loket", "kapan": "Kemarin",
           "dimana": "Mal Pelayanan Publik", "bagaimana": "Diminta uang tunai"}
_CODENAME = re.compile(r'<p class="codename"><strong lang="id">([a-z ]+)</strong></p>')


@pytest.fixture
def home(demo: Demo) -> Iterator[Path]:
    folder = short_tempdir("jwi-")
    yield workstation_home(demo, folder)  # type: ignore[arg-type]
    kill_agent(folder)


def _package(demo: Demo, home: Path, tenant: str = TENANT, channel: str = "whatsapp") -> bytes:
    answers = home / "answers.json"
    answers.write_text(json.dumps(ANSWERS), encoding="utf-8")
    with demo.inst.sessions() as session:
        keys = current_recipients(session, get_tenant(session, tenant))
    output = home / f"p-{len(list(home.glob('p-*')))}.zip"
    args = ["intake", "--tenant", tenant, "--channel", channel, "--category", "pungutan_liar",
            "--answers", str(answers), "-o", str(output)]
    for fpr in keys:
        args += ["--recipient", fpr]
    made = run(home, *args)
    assert made.exit_code == 0, made.output
    return output.read_bytes()


def _upload(browser, data: bytes):  # type: ignore[no-untyped-def]
    return browser.post(
        "/pengaduan-baru", token_from="/pengaduan-baru",
        data={"package": (io.BytesIO(data), "paket.zip")}, content_type="multipart/form-data",
    )


def test_an_uploaded_package_opens_a_case_whose_codename_the_reporter_uses(
    demo: Demo, home: Path
) -> None:
    browser = logged_in(demo)
    form = browser.get("/pengaduan-baru")
    html = form.get_data(as_text=True)
    with demo.inst.sessions() as session:
        keys = current_recipients(session, get_tenant(session, TENANT))
    # The page lists the keys to encrypt to, and the command that does it.
    assert all(fpr in html for fpr in keys) and "peluit-workstation intake" in html
    # And the codes the command takes: the tenant's categories, the channels.
    assert "<code>pungutan_liar</code>" in html and "<code>whatsapp</code>" in html

    done = _upload(browser, _package(demo, home))
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.headers["Cache-Control"] == "no-store"
    page = done.get_data(as_text=True)
    assert "hanya sekali" in page
    found = _CODENAME.search(page)
    assert found, page
    codename = found.group(1)

    with demo.inst.sessions() as session:
        case = session.scalars(sa.select(Case).order_by(Case.id.desc())).first()
        assert case is not None and case.channel == Channel.WHATSAPP
        number, case_id = case.registration_number, case.id
        kinds = list(session.scalars(sa.select(Event.kind).where(Event.case_id == case_id)))
        assert EventKind.OPERATOR_INTAKE in kinds
    assert number in page
    # In the inbox, like any new case.
    assert number in browser.get("/").get_data(as_text=True)
    # Not shown again: the case page does not carry it.
    assert codename not in browser.get(f"/pengaduan/{case_id}").get_data(as_text=True)

    reporter = Reporter(create_source_app(demo.inst, testing=True).test_client())
    logged = reporter.login(codename)
    assert logged.status_code == 302, logged.get_data(as_text=True)
    assert number in reporter.get("/pengaduan").get_data(as_text=True)
    sent = reporter.send_follow_up(number, "Saya punya bukti kuitansi.")
    assert sent.status_code == 302
    with demo.inst.sessions() as session:
        kinds = list(session.scalars(
            sa.select(Case).where(Case.id == case_id)
        ).one().submissions)
        assert [s.kind for s in kinds] == [SubmissionKind.FORM, SubmissionKind.MESSAGE]


def test_refusals_are_shown_and_store_nothing(demo: Demo, home: Path) -> None:
    browser = logged_in(demo)
    data = _package(demo, home, channel="surat")
    assert _upload(browser, data).status_code == 200
    with demo.inst.sessions() as session:
        before = session.scalar(sa.select(sa.func.count()).select_from(Case))
    again = _upload(browser, data)
    assert again.status_code == 400
    assert "sudah pernah diunggah" in again.get_data(as_text=True)
    garbage = _upload(browser, b"bukan zip")
    assert garbage.status_code == 400
    assert "Paket pengaduan ditolak" in garbage.get_data(as_text=True)
    other = _upload(browser, _package(demo, home, tenant="kpk"))
    assert "instansi lain" in other.get_data(as_text=True)
    huge = browser.client.post(
        "/pengaduan-baru", data={"csrf_token": browser.token("/pengaduan-baru")},
        environ_overrides={"CONTENT_LENGTH": str(demo.inst.config.max_upload_bytes + 2**22)},
    )
    assert huge.status_code == 413
    with demo.inst.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == before


def test_a_kpk_monitor_cannot_record_for_another_tenant(demo: Demo) -> None:
    # A monitor's tenant is the hub: the page is theirs, and it records for KPK only.
    browser = logged_in(demo, "kpk", Role.PEMANTAU_KPK)
    assert browser.get("/pengaduan-baru").status_code == 200
    assert "--tenant kpk" in browser.get("/pengaduan-baru").get_data(as_text=True)


def test_the_api_opens_a_case_and_answers_the_codename_once(demo: Demo, home: Path) -> None:
    account = make_account(demo)
    client = demo.app.test_client()
    token = client.post("/api/v1/token", json={
        "username": account.username, "password": account.password, "totp": account.code(),
    }).get_json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    data = _package(demo, home, channel="sms")
    wrong_type = client.post("/api/v1/intake", data=data, headers=auth, content_type="text/plain")
    assert wrong_type.status_code == 415
    made = client.post("/api/v1/intake", data=data, headers=auth, content_type="application/zip")
    assert made.status_code == 201, made.get_json()
    assert made.headers["Cache-Control"] == "no-store"
    body = made.get_json()
    assert body["channel"] == "sms" and len(body["codename"].split()) >= 7
    replayed = client.post("/api/v1/intake", data=data, headers=auth,
                           content_type="application/zip")
    assert replayed.status_code == 409
    assert replayed.get_json()["error"] == "intake_replayed"
    garbage = client.post("/api/v1/intake", data=b"PK\x03\x04 no", headers=auth,
                          content_type="application/zip")
    assert garbage.status_code == 400 and garbage.get_json()["error"] == "intake_refused"
    detail = client.get(f"/api/v1/cases/{body['id']}", headers=auth).get_json()
    assert detail["channel"] == "sms" and body["codename"] not in json.dumps(detail)
    # Larger than the instance's limit for one submission (plus room): refused unread.
    too_large = client.post(
        "/api/v1/intake", data=data, headers=auth, content_type="application/zip",
        environ_overrides={"CONTENT_LENGTH": str(demo.inst.config.max_upload_bytes + 2**21)},
    )
    assert too_large.status_code == 413 and too_large.get_json()["error"] == "too_large"
    unauthenticated = client.post("/api/v1/intake", data=data, content_type="application/zip")
    assert unauthenticated.status_code == 401


SOURCE = Path(operator_intake.__file__).read_text(encoding="utf-8")
RAISED = set(re.findall(r'Refusal\(\s*"(\w+)"', SOURCE))


def test_every_intake_refusal_has_a_translated_sentence(demo: Demo) -> None:
    assert {"intake_refused", "intake_wrong_keys", "intake_replayed"} <= RAISED
    params = {"reason": "x", "tenant": "kpk", "number": "PLT-X-2026-000001", "keys": "ABCD",
              "label": "items/01-form.gpg", "what": "report"}
    for code in sorted(RAISED - set(refusals.HTTP_ONLY)):
        refusal = Refusal(code, "English message", **params)
        with demo.app.test_request_context(), force_locale("id"):
            indonesian = refusals.message(refusal)
        with demo.app.test_request_context(), force_locale("en"):
            english = refusals.message(refusal)
        assert indonesian and english and indonesian != english, code
        assert indonesian != "English message", code


def test_the_summary_counts_reports_by_channel(demo: Demo, home: Path) -> None:
    browser = logged_in(demo)
    assert _upload(browser, _package(demo, home, channel="langsung")).status_code == 200
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    page = admin.get("/ringkasan").get_data(as_text=True)
    assert 'id="channel-langsung"' in page and "Datang langsung" in page
    assert "Menurut saluran" in page


@clocks
def test_an_intake_case_is_received_on_the_wib_day_of_upload(
    demo: Demo, home: Path, clock: dt.datetime
) -> None:
    data = _package(demo, home, channel="email")
    with time_machine.travel(clock):
        browser = logged_in(demo)
        assert _upload(browser, data).status_code == 200
        today = wib_today()
    assert today == local_date(clock)
    calendar = demo.inst.calendar
    with demo.inst.sessions() as session:
        case = session.scalars(sa.select(Case).order_by(Case.id.desc())).first()
        assert case is not None and case.channel == Channel.EMAIL
        days = get_tenant(session, TENANT).first_response_days
        # As for a drop-box report: the WIB day of receipt, whatever the UTC date.
        assert case.received_at.date() == today
        assert case.first_response_due == calendar.add_working_days(today, days)
        assert case.closure_due == calendar.add_working_days(today, ANSWER_DAYS)


def test_the_codename_is_not_logged(
    demo: Demo, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    browser = logged_in(demo)
    data = _package(demo, home)
    with caplog.at_level(logging.DEBUG):
        page = _upload(browser, data).get_data(as_text=True)
    found = _CODENAME.search(page)
    assert found
    assert found.group(1) not in caplog.text
