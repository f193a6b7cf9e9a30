"""``peluit alerts send``, run as the timer runs it, against a real SMTP server on loopback."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from click.testing import CliRunner, Result

from crypto.codenames import generate_codename
from peluit.cli import main
from tests.conftest import DemoInstance
from tests.smtpd import (  # smtpd: the fixture
    SmtpServer,
    free_port,
    running_smtpd,
    self_signed_certificate,
    server_context,
    smtpd,  # noqa: F401
)
from tests.support import CHEAP_KDF
from wbs.accounts import create_investigator
from wbs.context import Context
from wbs.domain import CATEGORY_LABELS, CaseStatus, Role
from wbs.intake import Intake, ReportAnswers
from wbs.models import AlertSetting, Case, new_registration_number
from wbs.onion import investigator_key, investigator_onion
from wbs.sources import register_source
from wbs.tenancy import TenantScope
from wbs.tenants import get_tenant

TENANT, HUB = "pemprov-sumsel", "kpk"
# Wednesday 2 December 2026, 08:00 WIB; the next day at the same hour.
WEDNESDAY = dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.UTC)
THURSDAY = WEDNESDAY + dt.timedelta(days=1)
TODAY = dt.date(2026, 12, 2)
REPORT_TEXT = ("Pungutan izin reklame", "Kasi Perizinan Bapak Sutrisno", "Rp75 juta")


def _day(days: int) -> dt.datetime:
    day = TODAY + dt.timedelta(days=days)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


@dataclass
class Setup:
    demo: DemoInstance
    smtp: SmtpServer
    run: Callable[..., Result]
    verifikator: int
    numbers: list[str]
    categories: list[str]
    case_ids: list[int]

    def setting(self, investigator_id: int) -> AlertSetting:
        with self.demo.instance.sessions() as session:
            found = session.get(AlertSetting, investigator_id)
            assert found is not None
            session.expunge(found)
            return found


def _cases(demo: DemoInstance) -> tuple[list[str], list[str], list[int]]:
    """Cases of the tenant with known figures on Wednesday: 3 new (received Tuesday, one of
    them a real report through the intake), 1 due within two working days, 1 overdue."""
    inst = demo.instance
    with time_machine.travel(WEDNESDAY, tick=True), inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        ctx = Context(inst, session, tenant)
        secrets = register_source(ctx, generate_codename())
        report = Intake(ctx, secrets.source_id, to_kpk=False).new_case(ReportAnswers(
            category="pemerasan", mcp_area="perizinan", apa=REPORT_TEXT[0], siapa=REPORT_TEXT[1],
            kapan="November 2026", dimana="Dinas Perizinan", bagaimana="Tunai",
            berapa=REPORT_TEXT[2], kronologi="",
        ))
        report.received_at = _day(-1)
        scope = TenantScope(session, tenant)
        specs: list[dict[str, Any]] = [
            # new (Tuesday), nothing due soon
            dict(received_at=_day(-1), status=CaseStatus.BARU, first_response_due=TODAY
                 + dt.timedelta(days=8), category="gratifikasi"),
            # new, first response due Thursday: within two working days
            dict(received_at=_day(-1), status=CaseStatus.VERIFIKASI,
                 first_response_due=TODAY + dt.timedelta(days=1), category="suap_menyuap"),
            # received today: tomorrow's digest
            dict(received_at=_day(0), status=CaseStatus.BARU,
                 first_response_due=TODAY + dt.timedelta(days=9),
                 category="penggelapan_dalam_jabatan"),
            # old and overdue
            dict(received_at=_day(-12), status=CaseStatus.TELAAH,
                 first_response_due=TODAY - dt.timedelta(days=3), category="perbuatan_curang"),
            # old and closed: nothing
            dict(received_at=_day(-12), status=CaseStatus.SELESAI,
                 first_response_due=TODAY - dt.timedelta(days=3),
                 category="benturan_kepentingan_pengadaan"),
        ]
        for spec in specs:
            scope.add(Case(
                source_id=secrets.source_id,
                registration_number=new_registration_number(session, tenant, 2026), **spec,
            ))
        session.commit()
        rows = list(session.scalars(scope.select(Case)))
        return (
            [row.registration_number for row in rows],
            sorted({row.category for row in rows}),
            [row.id for row in rows],
        )


@pytest.fixture
def setup(demo: DemoInstance, smtpd: SmtpServer, gnupg_home: Path,  # noqa: F811
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    config = demo.instance.config
    for name, value in {
        "PELUIT_GNUPG_HOME": str(gnupg_home),
        "PELUIT_KDF_TIME_COST": str(CHEAP_KDF.time_cost),
        "PELUIT_KDF_MEMORY_KIB": str(CHEAP_KDF.memory_kib),
        "PELUIT_SMTP_HOST": smtpd.host,
        "PELUIT_SMTP_PORT": str(smtpd.port),
        "PELUIT_SMTP_SECURITY": "none",
        "PELUIT_SMTP_FROM": "peluit@inspektorat.example.go.id",
        "PELUIT_SMTP_TIMEOUT": "5",
    }.items():
        monkeypatch.setenv(name, value)

    def run(*args: str, when: dt.datetime = WEDNESDAY) -> Result:
        with time_machine.travel(when, tick=True):
            return CliRunner().invoke(main, ["--instance", str(config.instance_dir), *args])

    numbers, categories, case_ids = _cases(demo)
    with demo.instance.sessions() as session:
        tenant = get_tenant(session, TENANT)
        account, _ = create_investigator(
            session, tenant, "penerima", "Petugas Penerima", Role.VERIFIKATOR
        )
        TenantScope(session, tenant).add(
            AlertSetting(investigator_id=account.id, email="penerima@example.go.id")
        )
        session.commit()
        yield Setup(demo, smtpd, run, account.id, numbers, categories, case_ids)


def _figures(body: str) -> list[int]:
    """Every number in the body apart from dates and the onion link: the counts, in order."""
    text = re.sub(r"http://[a-z2-7]{56}\.onion/", "", body)
    text = re.sub(r"\d{4}-\d{2}-\d{2}", "", text)
    return [int(number) for number in re.findall(r"\d+", text)]


def test_the_daily_digest_arrives_with_the_counts_and_nothing_else(setup: Setup) -> None:
    onion = investigator_key(setup.demo.instance).hostname
    assert investigator_onion(setup.demo.instance) == onion
    result = setup.run("alerts", "send", "--daily")
    assert result.exit_code == 0, result.output
    assert "1 daily digest(s) sent" in result.output
    (mail,) = setup.smtp.received
    assert mail.rcpt_tos == ["penerima@example.go.id"]
    assert mail.mail_from == "peluit@inspektorat.example.go.id"
    body = mail.body
    # Indonesian by default: new since yesterday (3), due soon (1), overdue (1).
    assert "Laporan baru (diterima 2026-12-01 s.d. 2026-12-01): 3" in body
    assert "Kasus dengan tenggat dalam dua hari kerja: 1" in body
    assert "Kasus lewat tenggat: 1" in body
    assert f"http://{onion}/" in body
    assert _figures(body) == [3, 1, 1]
    # No content: no registration number, category (code or label), report text, tenant or
    # person's name, and no number but the counts (so no case id).
    whole = mail.message.as_string()
    for forbidden in [*setup.numbers, *REPORT_TEXT, "Petugas Penerima", "penerima ",
                      "Sumatera Selatan"]:
        assert forbidden not in whole
    for code in setup.categories:
        assert code not in whole
        assert CATEGORY_LABELS.get(code, code) not in whole
    assert mail.message["Message-ID"].endswith("@peluit.invalid>")
    # Not the server's own name in EHLO either (the relay would learn it).
    assert mail.helo == "peluit.invalid"
    assert setup.setting(setup.verifikator).daily_sent_at is not None


def test_a_second_run_the_same_day_sends_nothing_and_the_next_day_counts_on(
    setup: Setup,
) -> None:
    assert setup.run("alerts", "send", "--daily").exit_code == 0
    again = setup.run("alerts", "send", "--daily",
                      when=WEDNESDAY + dt.timedelta(hours=9))  # 17:00 WIB, same day
    assert again.exit_code == 0, again.output
    assert "0 daily digest(s) sent, 0 with nothing to report" in again.output
    assert len(setup.smtp.received) == 1
    # Thursday: the report received on Wednesday is new; nothing counted twice.
    thursday = setup.run("alerts", "send", "--daily", when=THURSDAY)
    assert thursday.exit_code == 0, thursday.output
    assert len(setup.smtp.received) == 2
    assert "Laporan baru (diterima 2026-12-02 s.d. 2026-12-02): 1" in setup.smtp.received[1].body


def test_an_account_that_opted_out_gets_nothing(setup: Setup) -> None:
    with setup.demo.instance.sessions() as session:
        setting = session.get(AlertSetting, setup.verifikator)
        assert setting is not None
        setting.enabled = False
        session.commit()
    result = setup.run("alerts", "send", "--daily")
    assert result.exit_code == 0, result.output
    assert "0 daily digest(s) sent" in result.output
    assert setup.smtp.received == []
    assert setup.setting(setup.verifikator).daily_sent_at is None


def test_an_unreachable_relay_is_one_line_and_marks_nothing_sent(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("PELUIT_SMTP_PORT", str(port))
    result = setup.run("alerts", "send", "--daily")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: the SMTP relay 127.0.0.1:{port} is unreachable: ")
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert setup.setting(setup.verifikator).daily_sent_at is None
    assert setup.smtp.received == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"PELUIT_SMTP_HOST": None}, "no SMTP relay is configured"),
        ({"PELUIT_SMTP_FROM": None}, "no sender address"),
        ({"PELUIT_SMTP_HOST": "mail.example.go.id"}, "allowed only for a relay on loopback"),
        ({"PELUIT_SMTP_USER": "peluit"}, "set both [smtp] user and password"),
        ({"PELUIT_SMTP_SECURITY": "ssl"}, "PELUIT_SMTP_SECURITY: expected one of"),
    ],
)
def test_a_relay_that_is_not_configured_is_one_line(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, settings: dict[str, str | None],
    message: str,
) -> None:
    for name, value in settings.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    result = setup.run("alerts", "send", "--daily")
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert setup.setting(setup.verifikator).daily_sent_at is None


def test_the_relay_login_and_the_weekly_totals_go_to_admins_and_kpk_monitors(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PELUIT_SMTP_USER", setup.smtp.user)
    monkeypatch.setenv("PELUIT_SMTP_PASSWORD", setup.smtp.password)
    with setup.demo.instance.sessions() as session:
        for slug, role, name, language in [
            (TENANT, Role.ADMIN_INSTANSI, "adminmail", "en"),
            (HUB, Role.PEMANTAU_KPK, "kpkmail", "id"),
        ]:
            tenant = get_tenant(session, slug)
            account, _ = create_investigator(session, tenant, name, name, role)
            TenantScope(session, tenant).add(AlertSetting(
                investigator_id=account.id, email=f"{name}@example.go.id", language=language,
            ))
        session.commit()
        everyone_open = session.scalar(
            sa.select(sa.func.count(Case.id)).where(
                Case.status.not_in([CaseStatus.SELESAI, CaseStatus.DIARSIPKAN])
            )
        )
    result = setup.run("alerts", "send", "--weekly")
    assert result.exit_code == 0, result.output
    assert setup.smtp.logins == [setup.smtp.user]
    mails = {mail.rcpt_tos[0]: mail for mail in setup.smtp.received}
    # The verifikator gets no weekly totals.
    assert set(mails) == {"adminmail@example.go.id", "kpkmail@example.go.id"}
    admin = mails["adminmail@example.go.id"].body
    assert admin.startswith("Peluit's weekly digest of all your institution's cases.")
    # The tenant's week: the three of Tuesday (today's is next week's), 1 due soon, 1 overdue,
    # 5 open cases of the tenant (the closed one is not).
    assert _figures(admin) == [3, 1, 1, 5]
    kpk = mails["kpkmail@example.go.id"].body
    assert kpk.startswith("Ringkasan mingguan Peluit untuk kasus seluruh instansi.")
    assert f"Kasus terbuka: {everyone_open}" in kpk
    again = setup.run("alerts", "send", "--weekly", when=THURSDAY)
    assert "0 weekly digest(s) sent" in again.output
    assert len(setup.smtp.received) == 2


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_the_relay_over_tls_is_verified(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, security: str
) -> None:
    # A relay whose certificate the system does not trust is refused (nothing marked sent);
    # trusted (SSL_CERT_FILE, read by ssl.create_default_context), the digest goes through it.
    cert, key = self_signed_certificate(tmp_path)
    context = server_context(cert, key)
    options: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True}
        if security == "starttls" else {"ssl_context": context}
    )
    with running_smtpd(**options) as relay:
        monkeypatch.setenv("PELUIT_SMTP_PORT", str(relay.port))
        monkeypatch.setenv("PELUIT_SMTP_SECURITY", security)
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nothing.pem"))
        refused = setup.run("alerts", "send", "--daily")
        assert refused.exit_code == 1
        assert "is unreachable" in refused.output and "certificate verify failed" in refused.output
        assert len(refused.output.strip().splitlines()) == 1
        assert setup.setting(setup.verifikator).daily_sent_at is None
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        result = setup.run("alerts", "send", "--daily")
        assert result.exit_code == 0, result.output
        (mail,) = relay.received
        assert mail.rcpt_tos == ["penerima@example.go.id"]
    assert setup.smtp.received == []
