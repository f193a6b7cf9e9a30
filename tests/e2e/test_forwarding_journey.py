"""Pelimpahan end to end: three tenants and KPK, real keys, a real Chromium with JavaScript off.

Both interfaces run on loopback against one demo instance. The journey is the issue's:

1. a pelapor files a report with a file at tenant A (the province) in the browser;
2. A's verifikator exports the case, downloads KPK's signed key list, and A's air-gapped
   workstation (A's secret key only) re-encrypts the case to KPK; the package is uploaded on
   the case page, which then says *Diteruskan ke* KPK;
3. KPK's verifikator finds the linked case in KPK's inbox and replies in the browser;
4. the pelapor logs in with the same codename, sees that KPK handles the report, reads KPK's
   reply and sends a follow-up, which KPK's key decrypts and no other key does;
5. KPK forwards the case to tenant B (a kabupaten's APIP) the same way; B replies;
6. the pelapor reads B's reply with the same codename and sends B a last follow-up;
7. tenant C logs in and sees nothing of it: no inbox row, 404 on every case page.

Every stored item of each of the three cases decrypts with its own institution's workstation
key and with no other. Each page is screenshotted to ``test-artifacts/screenshots/forwarding/``
(``Journey.capture`` also checks there is no script and no traceback), and the browser asks
nothing of any origin but the two apps.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext
from werkzeug.serving import make_server

from crypto.keyring import kill_agent
from journalist_iface import create_app as create_investigator_app
from peluit.demo import make_workstation_key
from source_iface.forms import STATUS_WORDING
from tests.e2e.conftest import REPO_ROOT, Served
from tests.e2e.test_investigator_journey import Account, fresh_code, new_account
from tests.e2e.test_source_journey import ANSWERS, Journey, check_accessibility, wording
from tests.journalist_iface.test_forwarding import _gpg, decrypt
from tests.support import short_tempdir
from tests.workstation.helpers import run
from wbs.domain import CaseStatus, Role, TenantKind
from wbs.models import Case
from wbs.tenants import add_recipient_key, create_tenant, get_tenant, recipient_keys

SHOTS = REPO_ROOT / "test-artifacts" / "screenshots" / "forwarding"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
A, KPK, B, C = "pemprov-sumsel", "kpk", "pemkab-musi-rawas", "pemkab-ogan-ilir"
NAMES = {B: "Pemerintah Kabupaten Musi Rawas", C: "Pemerintah Kabupaten Ogan Ilir"}
EVIDENCE_NAME = "rekap-setoran.txt"
MAY_BE_FORWARDED = (
    "If another institution is competent to handle your report, the complaint unit may forward "
    "it there. The report is then encrypted for that institution only; you keep the same "
    "codename, see here which institution handles it, read its answers and send it more "
    "information."
)


@dataclass
class Chain:
    desk_origin: str
    homes: dict[str, Path]  # one GnuPG home per institution, with that one's secret key only
    accounts: dict[str, Account]  # a verifikator of each institution
    names: dict[str, str]


@pytest.fixture(scope="module")
def chain(served: Served) -> Iterator[Chain]:
    roots: list[Path] = []
    homes: dict[str, Path] = {}
    try:
        with served.inst.sessions() as session:
            for slug, name in NAMES.items():
                tenant = create_tenant(
                    session, slug=slug, name=name, kind=TenantKind.PEMERINTAH_KABUPATEN,
                    province="Sumatera Selatan",
                )
                root = short_tempdir("e2efw-")
                roots.append(root)
                armored = make_workstation_key(root / "gnupg", f"{name} <{slug}@test.invalid>")
                add_recipient_key(session, served.inst.keyring, tenant, armored)
                homes[slug] = root / "gnupg"
            session.commit()
            demo_keys = {
                slug: [k.fingerprint for k in recipient_keys(session, get_tenant(session, slug))]
                for slug in (A, KPK)
            }
            names = {
                slug: get_tenant(session, slug).name for slug in (A, KPK, B, C)
            }
        # The demo workstation holds every demo tenant's key: split it, one home each.
        for slug, fingerprints in demo_keys.items():
            root = short_tempdir("e2efw-")
            roots.append(root)
            (root / "gnupg").mkdir(mode=0o700)
            secret = _gpg(served.workstation, "--export-secret-keys", *fingerprints).stdout
            assert _gpg(root / "gnupg", "--import", data=secret).returncode == 0
            homes[slug] = root / "gnupg"
        accounts = {slug: new_account(served, slug, Role.VERIFIKATOR) for slug in (A, KPK, B, C)}
        app = create_investigator_app(served.inst)  # as deployed: CSRF enforced, error pages
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="e2e-fw-desk", daemon=True)
        thread.start()
        try:
            yield Chain(f"http://127.0.0.1:{server.server_port}", homes, accounts, names)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
    finally:
        for home in homes.values():
            kill_agent(home)
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


def workstation(chain: Chain, slug: str) -> Path:
    """A workstation data folder whose GnuPG home holds ``slug``'s secret key only."""
    home = short_tempdir("e2efws-")
    shutil.copytree(chain.homes[slug], home / "gnupg", ignore=shutil.ignore_patterns("S.*"))
    return home


def log_in(journey: Journey, chain: Chain, slug: str, shot: str) -> None:
    account = chain.accounts[slug]
    page = journey.page
    page.goto(chain.desk_origin + "/masuk")
    page.fill("#f-username", account.username)
    page.fill("#f-password", account.password)
    page.fill("#f-totp", fresh_code(account))
    journey.submit('main form[action="/masuk"] button[type="submit"]')
    assert page.url == chain.desk_origin + "/", (page.url, page.content()[:2000])
    journey.capture(shot)


def open_case(journey: Journey, chain: Chain, number: str, shot: str) -> int:
    """From the inbox to the case page by its registration number; the case's id."""
    page = journey.page
    page.goto(chain.desk_origin + "/")
    journey.follow(f'main table tbody td a:text-is("{number}")')
    assert page.locator("main h1").inner_text().strip() == number
    journey.capture(shot)
    return int(page.url.rsplit("/", 1)[1])


def forward(
    journey: Journey, served: Served, chain: Chain, slug: str, case_id: int, number: str, to: str,
    folder: Path, shot: str,
) -> str:
    """Export the case and the receiving institution's key list in the browser, make the
    package on ``slug``'s workstation, upload it on the case page; the linked case's number."""
    page = journey.page
    with page.expect_download() as exported:
        page.click(f'main form[action="/pengaduan/{case_id}/ekspor"] button')
    bundle = folder / f"bundle-{slug}.zip"
    exported.value.save_as(bundle)
    with page.expect_download() as listed:
        page.click(f'main a[href="/kunci/{to}"]')
    keys = folder / f"keys-{to}.json"
    listed.value.save_as(keys)
    ws = workstation(chain, slug)
    try:
        imported = run(ws, "import", str(bundle))
        assert imported.exit_code == 0, imported.output
        package = folder / f"paket-{slug}-{to}.zip"
        made = run(ws, "forward", number, "--to", to, "--keys", str(keys), "-o", str(package))
        assert made.exit_code == 0, made.output
        # Only ciphertext left the workstation: the evidence is nowhere in the package.
        assert b"Setoran" not in package.read_bytes()
    finally:
        kill_agent(ws / "gnupg")
        shutil.rmtree(ws, ignore_errors=True)
    page.set_input_files("#f-forward", package)
    journey.submit(f'main form[action="/pengaduan/{case_id}/limpahkan"] button')
    assert page.url == f"{chain.desk_origin}/pengaduan/{case_id}", page.url
    with served.inst.sessions() as session:
        origin = session.get(Case, case_id)
        assert origin is not None and origin.linked_to_case_id is not None
        linked = session.get(Case, origin.linked_to_case_id)
        assert linked is not None
        linked_number = linked.registration_number
    assert to.upper() in linked_number
    notice = page.locator('main p.ok[role="status"]').inner_text()
    assert chain.names[to] in notice and linked_number in notice, notice
    assert page.locator("main dd.status", has_text=chain.names[to]).count() == 1
    journey.capture(shot)
    return linked_number


def reply(journey: Journey, chain: Chain, case_id: int, text: str, shot: str) -> None:
    page = journey.page
    page.fill("#f-reply", text)
    journey.submit(f'main form[action="/pengaduan/{case_id}/balas"] button')
    assert page.url == f"{chain.desk_origin}/pengaduan/{case_id}", page.url
    journey.capture(shot)


def reporter_reads(journey: Journey, served: Served, codename: str, number: str) -> Any:
    """The pelapor logs in with the codename; their report's section of the page."""
    page = journey.page
    page.goto(served.base + "/masuk")
    page.fill("#f-codename", codename)
    journey.submit('form[action$="/masuk"] button[type="submit"]')
    assert page.url == served.base + "/pengaduan", page.url
    return page.locator(f"#case-{number}")


def send_follow_up(journey: Journey, number: str, text: str, shot: str) -> None:
    page = journey.page
    page.fill(f"#m-{number}", text)
    journey.submit(f'form[action$="/pengaduan/{number}/kirim"] button[type="submit"]')
    journey.capture(shot)
    journey.submit('main form[action$="/keluar"] button[type="submit"]')


def stored_items(served: Served, number: str) -> tuple[int, list[bytes]]:
    """A case by its number: its id and the ciphertext of every stored item."""
    with served.inst.sessions() as session:
        case = session.scalar(sa.select(Case).where(Case.registration_number == number))
        assert case is not None
        paths = [s.store_path for s in case.submissions] + [r.store_path for r in case.replies]
        return case.id, [served.inst.store.resolve(path).read_bytes() for path in paths]


@pytest.mark.slow
def test_a_report_travels_from_a_to_kpk_to_b_and_the_reporter_follows_it(
    served: Served, chain: Chain, browser: Browser, axe_js: Path, tmp_path: Path
) -> None:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    marker = os.urandom(6).hex()
    evidence = tmp_path / EVIDENCE_NAME
    evidence.write_bytes(f"Setoran ke rekening pribadi kepala dinas. {marker}\n".encode())
    kpk_reply = f"KPK menelaah laporan Anda. {marker}"
    kpk_follow_up = f"Tambahan untuk KPK: nomor kontrak 027/XII. {marker}"
    b_reply = f"Inspektorat Musi Rawas kini menangani laporan Anda. {marker}"
    b_follow_up = f"Tambahan untuk Musi Rawas: saksi dua orang. {marker}"

    requests: list[str] = []
    contexts: list[BrowserContext] = []
    journeys: list[Journey] = []

    def new_journey(base: str, name: str) -> Journey:
        context = browser.new_context(java_script_enabled=False, **DESKTOP)
        context.on("request", lambda request: requests.append(request.url))
        context.set_default_timeout(15_000)
        contexts.append(context)
        shots = SHOTS / name
        shots.mkdir(exist_ok=True)
        journeys.append(Journey(context.new_page(), base, "id", shots))
        return journeys[-1]

    try:
        # --- 1. the pelapor files at A ---------------------------------------------------------
        reporter = new_journey(served.base, "pelapor")
        page = reporter.page
        page.goto(served.base + "/kode-baru")
        codename = page.locator("p.codename").inner_text().strip()
        page.check("#noted")
        reporter.submit('form[action$="/kode-baru"] button[type="submit"]')
        page.select_option("#f-category", "suap_menyuap")
        for name, text in ANSWERS.items():
            page.fill(f"#f-{name}", text)
        page.fill("#f-kronologi", f"Setiap bulan setoran. {marker}")
        page.set_input_files("#r-files", evidence)
        reporter.submit('form[action$="/lapor"] button[type="submit"]')
        number = page.locator("p.regno").inner_text().strip()
        # The receipt says the report may be forwarded, and what that means for the pelapor.
        assert wording(served, "id", MAY_BE_FORWARDED) in page.locator("main").inner_text()
        reporter.capture("01-receipt")
        reporter.submit('main form[action$="/keluar"] button[type="submit"]')

        # --- 2. A forwards to KPK --------------------------------------------------------------
        a_desk = new_journey(chain.desk_origin, "a")
        log_in(a_desk, chain, A, "01-inbox")
        a_case = open_case(a_desk, chain, number, "02-case")
        kpk_number = forward(
            a_desk, served, chain, A, a_case, number, KPK, tmp_path, "03-forwarded"
        )
        assert a_desk.page.locator("#f-forward").count() == 0  # handled elsewhere now

        # --- 3. KPK replies --------------------------------------------------------------------
        kpk_desk = new_journey(chain.desk_origin, "kpk")
        log_in(kpk_desk, chain, KPK, "01-inbox")
        kpk_case = open_case(kpk_desk, chain, kpk_number, "02-case")
        assert kpk_desk.page.locator("main", has_text=chain.names[A]).count() == 1
        reply(kpk_desk, chain, kpk_case, kpk_reply, "03-replied")

        # --- 4. the pelapor reads KPK's reply with the same codename and answers --------------
        section = reporter_reads(reporter, served, codename, number)
        assert chain.names[KPK] in section.locator("dd.handler").inner_text()
        replies = [text.strip() for text in section.locator(".reply p.text").all_inner_texts()]
        assert kpk_reply in replies, replies
        reporter.capture("02-kpk-handles")
        send_follow_up(reporter, number, kpk_follow_up, "03-sent-to-kpk")

        # --- 5. KPK forwards to B --------------------------------------------------------------
        kpk_desk.page.reload()
        b_number = forward(
            kpk_desk, served, chain, KPK, kpk_case, kpk_number, B, tmp_path, "04-forwarded"
        )
        b_desk = new_journey(chain.desk_origin, "b")
        log_in(b_desk, chain, B, "01-inbox")
        b_case = open_case(b_desk, chain, b_number, "02-case")
        reply(b_desk, chain, b_case, b_reply, "03-replied")

        # --- 6. the pelapor reads B's reply and sends B a last follow-up -----------------------
        section = reporter_reads(reporter, served, codename, number)
        assert chain.names[B] in section.locator("dd.handler").inner_text()
        replies = [text.strip() for text in section.locator(".reply p.text").all_inner_texts()]
        assert b_reply in replies and kpk_reply in replies, replies
        # The history follows the report from one institution to the next, by name.
        steps = [
            " ".join(text.split()[3:])  # after the date ("3 Desember 2026")
            for text in section.locator("ol.history li").all_inner_texts()
        ]
        forwarded = [step for step in steps if step.startswith(("Dilimpahkan", "Diterima"))]
        assert forwarded == [
            f"Dilimpahkan kepada {chain.names[KPK]}", f"Diterima oleh {chain.names[KPK]}",
            f"Dilimpahkan kepada {chain.names[B]}", f"Diterima oleh {chain.names[B]}",
        ], steps
        assert steps[0] == wording(served, "id", STATUS_WORDING[CaseStatus.BARU]), steps
        reporter.capture("04-b-handles")
        send_follow_up(reporter, number, b_follow_up, "05-sent-to-b")

        # --- 7. C sees nothing -----------------------------------------------------------------
        c_desk = new_journey(chain.desk_origin, "c")
        log_in(c_desk, chain, C, "01-inbox")
        inbox = c_desk.page.content()
        for seen in (number, kpk_number, b_number):
            assert seen not in inbox
        for case_id in (a_case, kpk_case, b_case):
            response = c_desk.page.goto(f"{chain.desk_origin}/pengaduan/{case_id}")
            assert response is not None and response.status == 404
    finally:
        for context in contexts:
            context.close()

    # --- every item decrypts with its institution's key and with no other ----------------------
    opened: dict[str, list[bytes]] = {}
    for slug, case_number in ((A, number), (KPK, kpk_number), (B, b_number)):
        _, items = stored_items(served, case_number)
        opened[slug] = []
        for ciphertext in items:
            plain = decrypt(chain.homes[slug], ciphertext)
            assert plain is not None, (slug, case_number)
            opened[slug].append(plain)
            for other in {A, KPK, B, C} - {slug}:
                assert decrypt(chain.homes[other], ciphertext) is None, (slug, other)
    assert evidence.read_bytes() in opened[A]
    assert evidence.read_bytes() in opened[KPK] and evidence.read_bytes() in opened[B]
    # KPK's case holds its reply and the follow-up sent to it; B's the whole thread and B's own.
    assert kpk_reply.encode() in opened[KPK] and kpk_follow_up.encode() in opened[KPK]
    assert kpk_follow_up.encode() not in opened[A]
    for text in (kpk_reply, kpk_follow_up, b_reply, b_follow_up):
        assert text.encode() in opened[B], text
    assert b_follow_up.encode() not in opened[KPK]

    # --- the browser asked nothing of anyone else -------------------------------------------
    origins = (served.origin + "/", chain.desk_origin + "/")
    foreign = [url for url in requests if not url.startswith(origins)]
    assert foreign == [], f"requests to other origins: {foreign}"

    # --- and every page of the journey passes axe-core, none wider than the screen -----------
    visited = [visit for journey in journeys for visit in journey.visited]
    assert len(visited) == 16, [visit.name for visit in visited]
    check_accessibility(browser, axe_js, DESKTOP, visited, "forwarding")
