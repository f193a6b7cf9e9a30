"""Operator intake end to end, in a real Chromium with JavaScript off, at both widths.

A report that arrived by telephone is typed on the workstation (the real CLI, the demo
workstation's real keys) into an intake package; a verifikator uploads it on the *Catat
pengaduan* page and is shown the codename once; the case is in the inbox; the reporter logs in
on the drop box with that codename, finds the case and sends a follow-up. Every page is
screenshotted to ``test-artifacts/screenshots/intake/`` and checked with axe-core.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser

from tests.e2e.conftest import REPO_ROOT, TENANT, Served
from tests.e2e.test_investigator_journey import Desk, desk, desk_wording, log_in
from tests.e2e.test_source_journey import WIDTHS, Journey, check_accessibility
from tests.support import short_tempdir
from tests.workstation.helpers import kill_agent, run
from wbs.domain import Channel, SubmissionKind
from wbs.models import Case
from wbs.tenants import current_recipients, get_tenant

SHOTS = REPO_ROOT / "test-artifacts" / "screenshots" / "intake"
ANSWERS = {"apa": "Pungutan liar pembuatan KTP", "siapa": "Petugas loket kecamatan",
           "kapan": "November 2026", "dimana": "Kecamatan Ilir Barat",
           "bagaimana": "Diminta Rp100.000 agar selesai hari itu"}

__all__ = ["desk"]  # the investigator interface fixture, shared with the journey test


def _package(served: Served, folder: Path) -> Path:
    home = folder / "ws"
    shutil.copytree(served.workstation, home / "gnupg", ignore=shutil.ignore_patterns("S.*"))
    os.chmod(home, 0o700)
    answers = folder / "answers.json"
    answers.write_text(json.dumps(ANSWERS), encoding="utf-8")
    with served.inst.sessions() as session:
        keys = current_recipients(session, get_tenant(session, TENANT))
    output = folder / "paket.zip"
    args = ["intake", "--tenant", TENANT, "--channel", "telepon", "--category", "pungutan_liar",
            "--answers", str(answers), "-o", str(output)]
    for fpr in keys:
        args += ["--recipient", fpr]
    made = run(home, *args)
    kill_agent(home)
    assert made.exit_code == 0, made.output
    return output


@pytest.mark.slow
@pytest.mark.parametrize("width", list(WIDTHS))
def test_operator_intake_journey(
    served: Served, desk: Desk, browser: Browser, axe_js: Path, width: str
) -> None:
    shots = SHOTS / width
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    folder = short_tempdir("e2ein-")
    contexts = []
    try:
        package = _package(served, folder)
        options = WIDTHS[width]

        def journey(base: str) -> Journey:
            context = browser.new_context(java_script_enabled=False, **options)
            context.set_default_timeout(10_000)
            contexts.append(context)
            return Journey(context.new_page(), base, "id", shots)

        operator = journey(desk.origin)
        page = operator.page
        log_in(operator, desk, desk.verifikator, "01-login")
        operator.follow('header nav a[href="/pengaduan-baru"]')
        assert page.url == desk.origin + "/pengaduan-baru"
        operator.capture("02-intake-form")
        page.set_input_files("#f-package", package)
        operator.submit('main form[action="/pengaduan-baru"] button[type="submit"]')
        codename = page.locator("p.codename").inner_text().strip()
        assert len(codename.split()) >= 7, codename
        shown_once = desk_wording(desk, "The reporter's codename is shown only this once.")
        assert shown_once in page.locator("main p.alert").inner_text()
        operator.capture("03-codename-shown-once")
        number = re.search(r"PLT-[A-Z-]+-\d{4}-\d{6}", page.locator("main h1").inner_text())
        assert number, page.locator("main h1").inner_text()
        registration = number.group(0)
        operator.follow('header nav a[href="/"]')
        assert page.locator("main table tbody td a", has_text=registration).count() == 1
        operator.capture("04-inbox")

        reporter = journey(served.base)
        page = reporter.page
        page.goto(served.base + "/masuk")
        page.fill("#f-codename", codename)
        reporter.submit('form[action$="/masuk"] button[type="submit"]')
        assert page.url == served.base + "/pengaduan", page.url
        assert page.locator(f"#case-{registration}").count() == 1
        reporter.capture("05-reporter-cases")
        follow_up = "Saya menyimpan kuitansinya. " + os.urandom(4).hex()
        page.fill(f'#case-{registration} textarea[name="message"]', follow_up)
        reporter.submit(f'#case-{registration} form[action$="/kirim"] button[type="submit"]')
        reporter.capture("06-reporter-sent")
    finally:
        for context in contexts:
            context.close()
        shutil.rmtree(folder, ignore_errors=True)

    with served.inst.sessions() as session:
        case = session.scalar(sa.select(Case).where(Case.registration_number == registration))
        assert case is not None and case.channel == Channel.TELEPON
        assert [s.kind for s in case.submissions] == [SubmissionKind.FORM, SubmissionKind.MESSAGE]
    check_accessibility(browser, axe_js, options, operator.visited, f"intake-{width}")
    check_accessibility(browser, axe_js, options, reporter.visited, f"intake-reporter-{width}")
