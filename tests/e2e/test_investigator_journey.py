"""The investigators' side of one case, end to end in a real Chromium with JavaScript off.

Both interfaces run on loopback against one demo instance: the source interface on one port,
the investigator interface on another. The journey:

1. the admin instansi logs in (password + TOTP) and uploads a new recipient public key, made
   with gpg in a separate GnuPG home (a second workstation), and sees it accepted;
2. a pelapor sends a report with a file through the source interface;
3. the verifikator logs in, finds the case in the inbox by its registration number, opens it,
   asks a question (status Klarifikasi), sends a typed reply and exports the bundle, which
   verifies and whose every item is encrypted to the new key (and opens with it);
4. the pelapor logs in again and reads the question and the reply.

Every investigator page is screenshotted to ``test-artifacts/screenshots/investigator/`` and
checked with axe-core (as in ``test_source_journey``); no page has a script, and the browser
asks nothing of any origin but the two apps.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask
from flask_babel import force_locale, gettext
from playwright.sync_api import Browser, BrowserContext
from werkzeug.serving import make_server

from crypto.keyring import kill_agent
from crypto.padding import FRAMING_PADME, unframe
from crypto.recipients import ciphertext_key_ids
from journalist_iface import create_app as create_investigator_app
from peluit.demo import make_workstation_key
from source_iface.forms import STATUS_WORDING
from tests.e2e.conftest import REPO_ROOT, Served
from tests.e2e.test_source_journey import (
    ANSWERS,
    WIDTHS,
    Journey,
    Visited,
    check_accessibility,
    wording,
)
from tests.journalist_iface.conftest import make_report
from tests.support import short_tempdir
from wbs.accounts import create_investigator, start_enrolment
from wbs.bundle import read_bundle
from wbs.context import Context
from wbs.domain import CaseStatus, Role
from wbs.matters import link_numbers
from wbs.models import Investigator, Tenant

SHOTS = REPO_ROOT / "test-artifacts" / "screenshots" / "investigator"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
TENANT = "pemprov-sumsel"
EVIDENCE_NAME = "daftar-transfer.txt"
NEW_KEY_OWNER = "Inspektorat, tim 2"


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    totp_secret: str


@dataclass
class Desk:
    """The investigator interface of the same instance, on its own port, with two accounts."""

    app: Flask
    origin: str
    admin: Account
    verifikator: Account


@pytest.fixture(scope="module")
def desk(served: Served) -> Iterator[Desk]:
    settings = served.inst.auth_settings()
    accounts: dict[Role, Account] = {}
    with served.inst.sessions() as session:
        tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == TENANT))
        assert tenant is not None
        for role, username in (
            (Role.ADMIN_INSTANSI, "e2e.admin"),
            (Role.VERIFIKATOR, "e2e.verifikator"),
        ):
            account, password = create_investigator(
                session, tenant, username, f"E2E {role.value}", role, settings=settings
            )
            assert password is not None
            enrolment = start_enrolment(session, account, settings=settings)
            accounts[role] = Account(username, password, enrolment.secret)
        session.commit()
    app = create_investigator_app(served.inst)  # as deployed: CSRF enforced, error pages
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-desk", daemon=True)
    thread.start()
    try:
        yield Desk(
            app=app,
            origin=f"http://127.0.0.1:{server.server_port}",
            admin=accounts[Role.ADMIN_INSTANSI],
            verifikator=accounts[Role.VERIFIKATOR],
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def second_workstation() -> Iterator[Path]:
    """A GnuPG home standing for another investigator's air-gapped machine."""
    root = short_tempdir("e2enk-")
    try:
        yield root / "gnupg"
    finally:
        kill_agent(root / "gnupg")
        shutil.rmtree(root, ignore_errors=True)


def desk_wording(desk: Desk, message: str, **values: Any) -> str:
    """What the investigator interface shows for the msgid ``message`` in Indonesian."""
    with desk.app.test_request_context(), force_locale("id"):
        return str(gettext(message, **values))


def gpg(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
        capture_output=True,
        check=check,
    )


def encryption_key_ids(home: Path) -> set[str]:
    listing = gpg(home, "--with-colons", "--list-keys").stdout.decode()
    return {
        line.split(":")[4].upper()
        for line in listing.splitlines()
        if line.startswith("sub:") and "e" in line.split(":")[11]
    }


# The time step of each account's last code: the server refuses a code used once already
# (replay), so a second login within the same 30 s waits for the next code, as a person would.
_LAST_STEP: dict[str, int] = {}


def fresh_code(account: Account) -> str:
    totp = pyotp.TOTP(account.totp_secret)
    while totp.timecode(dt.datetime.now(dt.UTC)) == _LAST_STEP.get(account.username):
        time.sleep(0.5)
    now = dt.datetime.now(dt.UTC)
    _LAST_STEP[account.username] = totp.timecode(now)
    return totp.at(now)


def log_in(journey: Journey, desk: Desk, account: Account, shot: str) -> None:
    page = journey.page
    page.goto(desk.origin + "/masuk")
    journey.capture(shot)
    page.fill("#f-username", account.username)
    page.fill("#f-password", account.password)
    page.fill("#f-totp", fresh_code(account))
    journey.submit('main form[action="/masuk"] button[type="submit"]')
    assert page.url == desk.origin + "/", (page.url, page.content()[:2000])


@pytest.mark.slow
def test_investigator_journey(
    served: Served,
    desk: Desk,
    browser: Browser,
    axe_js: Path,
    tmp_path: Path,
    second_workstation: Path,
) -> None:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    reporter_shots = tmp_path / "reporter-shots"  # the source test screenshots those pages
    reporter_shots.mkdir()

    marker = "PENANDA-" + os.urandom(6).hex()
    question = "Siapa nama pemilik rekening penerima? TANYA-" + os.urandom(6).hex()
    answer = "Terima kasih, laporan Anda sedang kami telaah. BALAS-" + os.urandom(6).hex()
    evidence = tmp_path / EVIDENCE_NAME
    evidence.write_bytes(f"Transfer 12 Maret ke rekening pribadi. {marker}\n".encode())

    # The new recipient key, made on "another workstation": only its public half is uploaded.
    armored = make_workstation_key(
        second_workstation, "Inspektorat Sumsel tim 2 <tim2@demo.peluit.invalid>"
    )
    kill_agent(second_workstation)
    key_file = tmp_path / "tim2.asc"
    key_file.write_text(armored)
    fingerprint = re.search(
        r"^fpr:+([0-9A-F]{40}):",
        gpg(second_workstation, "--with-colons", "--list-keys").stdout.decode(),
        re.MULTILINE,
    )
    assert fingerprint
    new_fingerprint = fingerprint.group(1)
    new_key_ids = encryption_key_ids(second_workstation)
    assert len(new_key_ids) == 1

    requests: list[str] = []
    contexts: list[BrowserContext] = []

    def new_journey(base: str, shots: Path) -> Journey:
        context = browser.new_context(java_script_enabled=False, **DESKTOP)
        context.on("request", lambda request: requests.append(request.url))
        context.set_default_timeout(10_000)
        contexts.append(context)
        return Journey(context.new_page(), base, "id", shots)

    visited = []
    try:
        # --- 1. the admin adds the key -------------------------------------------------------
        admin = new_journey(desk.origin, SHOTS)
        log_in(admin, desk, desk.admin, "01-admin-login")
        admin.capture("02-admin-inbox")
        admin.follow('header nav a[href="/admin/"]')
        admin.capture("03-admin-accounts")
        admin.follow('main nav.actions a[href="/admin/kunci"]')
        page = admin.page
        assert new_fingerprint not in page.content()
        admin.capture("04-admin-keys")
        page.fill("#f-owner", NEW_KEY_OWNER)
        page.set_input_files("#f-key-file", key_file)
        admin.submit('main form[action="/admin/kunci"] button[type="submit"]')
        assert page.url == desk.origin + "/admin/kunci", page.url
        accepted = desk_wording(
            desk,
            "Key %(fingerprint)s accepted: new reports are encrypted to it from now on.",
            fingerprint=new_fingerprint,
        )
        assert page.locator('main p.ok[role="status"]').inner_text().strip() == accepted
        row = page.locator("main table tbody tr", has_text=new_fingerprint)
        assert row.count() == 1
        assert NEW_KEY_OWNER in row.inner_text()
        assert desk_wording(desk, "current") in row.inner_text()
        assert page.locator("#e-key").count() == 0
        admin.capture("05-admin-key-added")
        visited += admin.visited

        # --- 2. a pelapor reports, with a file -----------------------------------------------
        reporter = new_journey(served.base, reporter_shots)
        page, base = reporter.page, served.base
        page.goto(base + "/")
        reporter.capture("01-landing")
        reporter.follow(f'main .actions a.button[href="/t/{TENANT}/panduan"]')
        reporter.follow('main a.button[href$="/kode-baru"]')
        codename = page.locator("p.codename").inner_text().strip()
        assert len(codename.split()) >= 7, codename
        reporter.capture("02-codename")
        page.check("#noted")
        reporter.submit('form[action$="/kode-baru"] button[type="submit"]')
        assert page.url == base + "/lapor"
        page.select_option("#f-category", "suap_menyuap")
        page.select_option("#f-mcp_area", "perizinan")
        for name, text in ANSWERS.items():
            page.fill(f"#f-{name}", text)
        page.fill("#f-kronologi", f"Maret: diminta transfer. {marker}")
        page.set_input_files("#r-files", evidence)
        reporter.capture("03-report")
        reporter.submit('form[action$="/lapor"] button[type="submit"]')
        registration = page.locator("p.regno").inner_text().strip()
        assert registration
        assert page.url == f"{base}/tanda-terima/{registration}", page.url
        reporter.capture("04-receipt")
        reporter.submit('main form[action$="/keluar"] button[type="submit"]')

        # --- 3. the verifikator handles the case ---------------------------------------------
        verifikator = new_journey(desk.origin, SHOTS)
        page = verifikator.page
        log_in(verifikator, desk, desk.verifikator, "06-verifikator-login")
        link = page.locator("main table tbody td a", has_text=registration)
        assert link.count() == 1, page.content()[:3000]
        row = page.locator("main table tbody tr", has=page.locator("td a", has_text=registration))
        assert row.locator("td.status").inner_text().strip() == CaseStatus.BARU.label
        verifikator.capture("07-inbox")
        verifikator.follow(f'main table tbody td a:text-is("{registration}")')
        case_match = re.fullmatch(re.escape(desk.origin) + r"/pengaduan/(\d+)", page.url)
        assert case_match, page.url
        case_id = int(case_match.group(1))
        assert page.locator("main h1").inner_text().strip() == registration
        assert page.locator("main dd.status").inner_text().strip() == CaseStatus.BARU.label
        assert page.locator("main table tbody tr td a[download]").count() == 2  # form, file
        verifikator.capture("08-case")

        page.select_option("#f-status", CaseStatus.KLARIFIKASI.value)
        page.fill("#f-note", question)
        verifikator.submit(f'main form[action="/pengaduan/{case_id}/status"] button')
        assert page.url == f"{desk.origin}/pengaduan/{case_id}", page.url
        assert page.locator("main dd.status").inner_text().strip() == (
            CaseStatus.KLARIFIKASI.label
        )
        changed = desk_wording(
            desk, "Status changed to %(status)s.", status=CaseStatus.KLARIFIKASI.label
        )
        assert page.locator('main p.ok[role="status"]').inner_text().strip() == changed
        verifikator.capture("09-klarifikasi")

        page.fill("#f-reply", answer)
        verifikator.submit(f'main form[action="/pengaduan/{case_id}/balas"] button')
        assert page.url == f"{desk.origin}/pengaduan/{case_id}", page.url
        sent = desk_wording(desk, "The reply was encrypted and sent to the reporter.")
        assert page.locator('main p.ok[role="status"]').inner_text().strip() == sent
        # Two replies now among the items (the question and the answer), and neither's plain
        # text anywhere on the page: the question is not kept in the log.
        assert page.locator("main table tbody tr td a[download]").count() == 4
        assert question not in page.content()
        assert answer not in page.content()
        verifikator.capture("10-replied")

        with page.expect_download() as download_info:
            page.click(f'main form[action="/pengaduan/{case_id}/ekspor"] button')
        download = download_info.value
        assert download.suggested_filename == f"{registration}.zip"
        bundle_path = tmp_path / download.suggested_filename
        download.save_as(bundle_path)
        verifikator.capture("11-exported")
        visited += verifikator.visited

        # --- 4. the pelapor reads the question and the answer --------------------------------
        reporter.page.goto(served.base + "/masuk")
        page = reporter.page
        page.fill("#f-codename", codename)
        reporter.submit('form[action$="/masuk"] button[type="submit"]')
        assert page.url == served.base + "/pengaduan", page.url
        case = page.locator(f"#case-{registration}")
        assert case.locator("h2").inner_text().strip() == registration
        status = wording(served, "id", STATUS_WORDING[CaseStatus.KLARIFIKASI])
        assert case.locator("dd.status").inner_text().strip() == status
        texts = [text.strip() for text in case.locator(".reply p.text").all_inner_texts()]
        assert sorted(texts) == sorted([question, answer]), texts
        reporter.capture("05-cases")
    finally:
        for context in contexts:
            context.close()

    # --- the bundle: signed, complete, and every item readable with the new key -------------
    bundle = read_bundle(bundle_path, None)
    assert bundle.tenant_slug == TENANT
    assert [c.registration_number for c in bundle.cases] == [registration]
    (bundled,) = bundle.cases
    assert bundled.status == CaseStatus.KLARIFIKASI.value
    kinds = sorted(item.kind for item in bundled.items)
    assert kinds == ["file", "form", "reply", "reply"], kinds
    opened: dict[str, bytes] = {}
    for item in bundled.items:
        ciphertext = tmp_path / Path(item.path).name
        with ciphertext.open("wb") as out:
            bundle.copy_file(item.path, out)
        recipients = ciphertext_key_ids(ciphertext.read_bytes())
        assert new_key_ids <= recipients, (item.path, recipients, new_key_ids)
        # The demo key and the new key; a reply also to the pelapor's own key.
        assert len(recipients) == (3 if item.kind == "reply" else 2), (item.path, recipients)
        plain = gpg(second_workstation, "--decrypt", str(ciphertext)).stdout
        # Every item is padded inside the encryption, as its manifest entry says.
        assert item.framing == FRAMING_PADME, item
        opened[item.path] = unframe(plain)[0]
    kill_agent(second_workstation)
    plaintexts = list(opened.values())
    assert evidence.read_bytes() in plaintexts
    assert question.encode() in plaintexts and answer.encode() in plaintexts
    # The guided report's answers, with the chronology's marker.
    assert any(marker.encode() in text and b"suap_menyuap" in text for text in plaintexts)

    # --- the browser asked nothing of anyone else -------------------------------------------
    origins = (served.origin + "/", desk.origin + "/")
    foreign = [url for url in requests if not url.startswith(origins)]
    assert foreign == [], f"requests to other origins: {foreign}"
    assert any(url == desk.origin + "/static/peluit.css" for url in requests), "no style sheet"

    # --- accessibility of every investigator page --------------------------------------------
    assert [visit.name for visit in visited] == [
        "01-admin-login", "02-admin-inbox", "03-admin-accounts", "04-admin-keys",
        "05-admin-key-added", "06-verifikator-login", "07-inbox", "08-case",
        "09-klarifikasi", "10-replied", "11-exported",
    ]
    check_accessibility(browser, axe_js, DESKTOP, visited, "investigator")


# --- every page of the investigator interface, at a phone's width and a desktop's ------------

PAGES = REPO_ROOT / "test-artifacts" / "screenshots" / "investigator-pages"


def new_account(served: Served, tenant_slug: str, role: Role) -> Account:
    """A fresh account (each TOTP step is accepted once per account, so runs never share)."""
    settings = served.inst.auth_settings()
    username = f"e2e.{role.value.split('_')[0]}.{os.urandom(3).hex()}"
    with served.inst.sessions() as session:
        tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == tenant_slug))
        assert tenant is not None
        account, password = create_investigator(
            session, tenant, username, f"E2E {role.value}", role, settings=settings
        )
        assert password is not None
        enrolment = start_enrolment(session, account, settings=settings)
        session.commit()
    return Account(username, password, enrolment.secret)


def listed(journey: Journey) -> list[str]:
    return [text.strip() for text in
            journey.page.locator("main table tbody td a.mono").all_inner_texts()]


@pytest.mark.slow
@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_investigator_page_fits_the_screen_and_passes_axe(
    served: Served, desk: Desk, browser: Browser, axe_js: Path, width: str
) -> None:
    """Login, two-step login, inbox (searched and filtered), case page (marked, a refusal, in
    English too), every admin page, the summary and KPK's monitoring (its province map alone
    too, displayed and sized without script): screenshotted to
    ``test-artifacts/screenshots/investigator-pages/<width>/``, none wider than the screen,
    none with an axe-core violation of any impact."""
    shots = PAGES / width
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    report = make_report(served, files=(b"bukti",))
    shared = make_report(served, to_kpk=True)
    number = report.registration_number
    admin_account = new_account(served, TENANT, Role.ADMIN_INSTANSI)
    monitor_account = new_account(served, "kpk", Role.PEMANTAU_KPK)
    with served.inst.sessions() as session:
        monitor_id = session.scalar(
            sa.select(Investigator.id).where(Investigator.username == monitor_account.username)
        )
    options = WIDTHS[width]
    visited: list[Visited] = []
    contexts: list[BrowserContext] = []

    def journey() -> Journey:
        context = browser.new_context(java_script_enabled=False, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return Journey(context.new_page(), desk.origin, "id", shots)

    try:
        admin = journey()
        page = admin.page
        log_in(admin, desk, admin_account, "01-login")
        admin.capture("02-inbox")
        # Search: a part of the number finds the case, and only cases containing it.
        page.fill("#f-number", number.rsplit("-", 1)[1])
        admin.submit("main form.filters button[type=submit]")
        assert number in listed(admin)
        assert all(number.rsplit("-", 1)[1] in found for found in listed(admin))
        admin.capture("03-inbox-searched")
        admin.follow(f'main table tbody td a:text-is("{number}")')
        case_url = page.url
        admin.capture("04-case")
        admin.submit('main form[action$="/tanda"] button[value="1"] >> nth=0')
        admin.submit('main form[action$="/tanda"] button[value="1"]')
        assert page.locator("main dd .tag.star").count() == 1
        assert page.locator("main dd .tag.reply-due").count() == 1
        admin.capture("05-case-marked")
        # A refusal, in Indonesian, naming the case.
        page.select_option("#f-status", CaseStatus.DIARSIPKAN.value)
        with page.expect_navigation():
            page.click('main form[action$="/status"] button')
        error = page.locator('main p.error[role="alert"]').inner_text()
        assert number in error and error == desk_wording(
            desk, "Write the reason for archiving %(case)s.", case=number
        )
        admin.capture("06-case-refused")
        page.goto(desk.origin + "/?starred=1&needs_reply=1")
        assert number in listed(admin)
        admin.capture("07-inbox-marked")
        for path, name in (("/admin/", "08-admin-accounts"), ("/admin/kunci", "09-admin-keys"),
                           ("/admin/pengaturan", "10-admin-settings"),
                           ("/ringkasan", "11-summary"), ("/akun/2fa", "12-account")):
            page.goto(desk.origin + path)
            admin.capture(name)
        admin.submit('main form[action="/akun/2fa"] button')
        assert page.locator("main .qr svg").count() == 1
        admin.capture("13-account-new-authenticator")
        page.goto(desk.origin + "/admin/kunci")
        admin.follow('main table tbody a[href$="/cabut"] >> nth=0')
        admin.capture("14-admin-confirm")
        # The English interface: labels and statuses in English.
        english = Journey(page, desk.origin, "en", shots)
        page.goto(case_url)
        admin.follow('header nav a[href^="/bahasa/en"]')
        assert page.locator("main dd.status").inner_text().strip() == "New"
        english.capture("15-case-en")
        page.goto(desk.origin + "/")
        english.capture("16-inbox-en")
        visited += admin.visited + english.visited

        monitor = journey()
        log_in(monitor, desk, monitor_account, "20-monitor-login")
        assert shared.registration_number in listed(monitor)
        monitor.capture("21-monitor-inbox")
        monitor.page.goto(desk.origin + "/pemantauan")
        monitor.capture("22-monitor-dashboard")
        # The province maps, drawn without script: displayed, with a size, fitting the screen;
        # the demo province's tile coloured by its reports, a province without institutions an
        # outline. The section alone is screenshotted too.
        for map_id in ("map-reports", "map-categories"):
            shown = monitor.page.locator(f"#{map_id}")
            assert shown.is_visible()
            box = shown.bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0
            assert box["x"] + box["width"] <= options["viewport"]["width"]
            tile = monitor.page.locator(f"#{map_id}-16 rect").bounding_box()
            assert tile is not None and tile["width"] > 0 and tile["height"] > 0
        assert re.fullmatch(r"tile map-r[1-5]",
                            monitor.page.locator("#map-reports-16").get_attribute("class") or "")
        assert monitor.page.locator("#map-reports-94").get_attribute("class") == "tile map-none"
        # Scrolled to and clipped from the viewport: an element screenshot of a long page in
        # Chromium's mobile emulation captured the page's top instead.
        section = monitor.page.locator("#province-map .maps")
        section.scroll_into_view_if_needed()
        clip = section.bounding_box()
        assert clip is not None
        monitor.page.screenshot(path=str(shots / "22-province-map.png"), clip=clip)
        assert (shots / "22-province-map.png").stat().st_size > 0
        # Filtered by this year, with the filter form (no script: a GET form).
        # This year as the page offers it (the first period after "all time"): the page's
        # today, not the test's, so the WIB new year cannot fall between the two.
        this_year = monitor.page.locator("#f-periode option").nth(1).get_attribute("value")
        assert this_year is not None and this_year.isdigit()
        monitor.page.select_option("#f-periode", this_year)
        # By keyboard (Enter on the button): on the long 390 px page a pointer click raced the
        # layout under load; the form is submitted the same way, without script.
        with monitor.page.expect_navigation() as navigation:
            monitor.page.locator("main form.filters button[type=submit]").press("Enter")
        assert navigation.value is not None and navigation.value.ok
        assert monitor.page.locator("#f-periode option[selected]").inner_text().strip() == (
            this_year)
        assert monitor.page.locator("main tr[id^=trend-]").count() == 12
        monitor.capture("22-monitor-dashboard-year")
        monitor.page.goto(desk.origin + f"/pengaduan/{shared.case_id}")
        monitor.capture("23-monitor-case")
        # KPK's matters: two shared reports linked in one matter, as KPK's verifikator would.
        other_shared = make_report(served, to_kpk=True)
        with served.inst.sessions() as session:
            hub = session.scalar(sa.select(Tenant).where(Tenant.slug == "kpk"))
            assert hub is not None
            link_numbers(
                Context(served.inst, session, hub, session.get(Investigator, monitor_id)),
                shared.registration_number, other_shared.registration_number,
            )
        monitor.page.goto(desk.origin + "/perkara")
        assert monitor.page.locator("main", has_text=other_shared.registration_number).count()
        monitor.capture("24-monitor-matters")
        visited += monitor.visited
    finally:
        for context in contexts:
            context.close()
    assert len(visited) == 22, [visit.name for visit in visited]
    # Strict: a violation of any impact fails, and so does a page wider than the screen.
    check_accessibility(browser, axe_js, options, visited, f"investigator {width}")
