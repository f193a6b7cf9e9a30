"""The pelapor's whole journey in a real Chromium with JavaScript off, as in Tor Browser at its
"Safest" level: landing, safety guidance, codename, guided report with two files chosen at once,
receipt listing them, log out, a wrong codename refused, the codename with a mistyped word and
capitals accepted, the investigator's question, a follow-up with a file, listed and in the
history.

Run at a desktop and a phone width, in Indonesian and in English (switched by the app's own
language link). Each page is screenshotted to ``test-artifacts/screenshots/<width>/<lang>/`` and
checked with axe-core in a separate context where JavaScript runs only to run axe.

Afterwards: nothing readable on the server's disk (the instance folder, the server's GnuPG
home, anything new under the temp folder), every stored item decrypts on the demo workstation
with its original filename, and the page never asked anything of another origin.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask_babel import force_locale, gettext
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route

from crypto.codenames import load_wordlist
from source_iface.forms import STATUS_WORDING
from tests.e2e.conftest import REPO_ROOT, Served
from tests.support import decrypt_item, pseudo_mounts
from wbs.casework import change_status
from wbs.context import Context
from wbs.domain import CaseStatus
from wbs.models import Case, Reply, Source, Submission, Tenant, utcnow
from wbs.public_stats import Quarter
from wbs.tenancy import TenantScope
from wbs.workdays import local_date

SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
WIDTHS: dict[str, dict[str, Any]] = {
    "1280": {"viewport": {"width": 1280, "height": 900}},
    "390": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
BIG_NAME = "bukti transfer rekening.bin"
SMALL_NAME = "catatan-rapat.txt"
FOLLOW_UP_NAME = "salinan kontrak.txt"
# What the server names the report's answers and a follow-up's message inside the ciphertext.
FORM_NAME, MESSAGE_NAME = "laporan.json", "pesan.txt"
# Every impact blocks: both interfaces pass axe-core with no violation at all (issue #15).
BLOCKING_IMPACTS = ("minor", "moderate", "serious", "critical")
# The guided report's answers (4W+1H+berapa); the chronology carries the marker.
ANSWERS = {
    "apa": "Kepala seksi meminta uang pelicin untuk menerbitkan izin usaha.",
    "siapa": "Kepala Seksi Perizinan, Dinas Penanaman Modal dan PTSP",
    "kapan": "Maret 2025, masih berlangsung",
    "dimana": "Kantor Dinas Penanaman Modal, lantai 2",
    "bagaimana": "Pemohon diminta transfer ke rekening pribadi sebelum izin terbit.",
    "berapa": "Rp5.000.000 per izin",
}


@dataclass
class Visited:
    name: str
    url: str
    html: str


@dataclass
class Journey:
    """One browser tab walking the journey, with what it saw and asked for."""

    page: Page
    base: str
    lang: str
    shots: Path
    visited: list[Visited] = field(default_factory=list)

    def capture(self, name: str) -> None:
        """Check the page as it stands, screenshot it, and keep its HTML for axe."""
        page = self.page
        assert page.locator("script").count() == 0, f"{name}: a <script> element in the DOM"
        assert len(page.frames) == 1, f"{name}: the page has frames"
        assert page.locator("html").get_attribute("lang") == self.lang, name
        assert "Traceback" not in page.content()
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
        self.visited.append(Visited(name, page.url.split("#", 1)[0], page.content()))

    def submit(self, selector: str) -> None:
        """Click a submit button and wait for the page that answers it."""
        with self.page.expect_navigation() as navigation:
            self.page.click(selector)
        response = navigation.value
        assert response is not None and response.ok, (
            response and response.status,
            self.page.content()[:3000],
        )

    def follow(self, selector: str) -> None:
        with self.page.expect_navigation():
            self.page.click(selector)


def wording(served: Served, lang: str, message: Any) -> str:
    """What the app shows for ``message`` (a lazy string or an msgid) in ``lang``."""
    with served.app.test_request_context(), force_locale(lang):
        return str(message) if not isinstance(message, str) else gettext(message)


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("width", list(WIDTHS))
def test_source_journey(
    served: Served,
    browser: Browser,
    axe_js: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    width: str,
    lang: str,
) -> None:
    shots = SCREENSHOTS / width / lang
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)

    marker = "PENANDA-" + os.urandom(8).hex()
    question = "Mohon kirim salinan kontrak pengadaan. TANYA-" + os.urandom(8).hex()
    # The evidence the pelapor picks from their own disk (this test's folder, not the server's).
    big = os.urandom(1_200_000) + marker.encode() + os.urandom(4096)
    small = f"Notulen rapat 12 Maret: {marker}\n".encode()
    follow_up_file = f"Salinan kontrak, halaman 3. {marker}\n".encode()
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for name, data in ((BIG_NAME, big), (SMALL_NAME, small), (FOLLOW_UP_NAME, follow_up_file)):
        (evidence / name).write_bytes(data)

    # pytest's folders (this test's evidence files among them) are not the server's.
    not_server = {tmp_path_factory.getbasetemp().resolve()}
    temp_before = temp_snapshot(not_server)
    started = time.time()

    context = browser.new_context(java_script_enabled=False, **WIDTHS[width])
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    try:
        journey = Journey(context.new_page(), served.base, lang, shots)
        codename, case_id = walk(journey, served, marker, question, evidence)
    finally:
        context.close()

    # --- the browser asked nothing of anyone else ------------------------------------------
    foreign = [url for url in requests if not url.startswith(served.origin + "/")]
    assert foreign == [], f"requests to other origins: {foreign}"
    assert any(url.endswith("/static/peluit.css") for url in requests), "no style sheet loaded"

    # --- nothing readable on the server's disk ----------------------------------------------
    roots = [served.inst.config.instance_dir, served.server_gnupg]
    new_temp = temp_files_changed(temp_before, started, not_server)
    secrets = [marker.encode(), question.encode(), codename.encode()]
    server_files = files_under(roots)
    store = served.inst.config.store_dir
    assert any(store in path.parents for path in server_files), "the store was not scanned"
    leaks = [
        (str(path), secret.decode()[:20])
        for path in [*server_files, *new_temp]
        for secret in secrets
        if contains(path, secret)
    ]
    assert leaks == [], f"plaintext on the server's disk: {leaks}"

    # --- every stored item decrypts on the workstation, under its original name -------------
    with served.inst.sessions() as session:
        paths = session.scalars(
            sa.select(Submission.store_path).where(Submission.case_id == case_id)
        ).all()
        reply_paths = session.scalars(
            sa.select(Reply.store_path).where(Reply.case_id == case_id)
        ).all()
    plain: dict[str, bytes] = {}
    for path in paths:
        data, name = gpg_decrypt(served.workstation, served.inst.store.resolve(path))
        assert name not in plain, f"two stored items named {name!r}"
        plain[name] = data
    assert set(plain) == {FORM_NAME, BIG_NAME, SMALL_NAME, MESSAGE_NAME, FOLLOW_UP_NAME}
    assert plain[BIG_NAME] == big
    assert plain[SMALL_NAME] == small
    assert plain[FOLLOW_UP_NAME] == follow_up_file
    assert marker in plain[MESSAGE_NAME].decode()
    report = json.dumps(json.loads(plain[FORM_NAME]), ensure_ascii=False)
    for answer in ANSWERS.values():
        assert answer in report
    assert marker in report
    # The investigator's question is readable on the workstation too (the case history).
    replies = [gpg_decrypt(served.workstation, served.inst.store.resolve(p)) for p in reply_paths]
    assert [data for data, _name in replies] == [question.encode()]

    # --- accessibility, page by page --------------------------------------------------------
    check_accessibility(browser, axe_js, WIDTHS[width], journey.visited, f"{width}/{lang}")


def walk(
    journey: Journey, served: Served, marker: str, question: str, evidence: Path
) -> tuple[str, int]:
    """The pelapor's journey; returns the codename and the case's id."""
    page, base, lang = journey.page, journey.base, journey.lang

    # Landing, in the chosen language (Indonesian by default; English by the app's link).
    page.goto(base + "/")
    if lang != "id":
        journey.follow(f'header nav a[hreflang="{lang}"]')
        assert page.url == base + "/"
    journey.capture("01-landing")

    # The province's complaint unit is its Inspektorat Daerah (KPK's is checked elsewhere).
    assert "Inspektorat Daerah" in page.locator("main").inner_text()

    # The public statistics, from the footer: a table of the last ended quarter, and back.
    seed_past_reports(served)
    journey.follow('footer a[href$="/statistik"]')
    # The seeded quarter's row (the last ended one, or the one before if a quarter ended
    # between the seeding and the page): six received, a figure not suppressed.
    received = page.locator("table.stats tbody tr td:first-of-type").all_inner_texts()
    assert "6" in [text.strip() for text in received], received
    journey.capture("01b-statistics")
    journey.follow("header .brand a")
    assert page.url == base + "/"

    journey.follow(f'main .actions a.button[href="/t/{slug(base)}/panduan"]')
    if lang == "id":  # Tor Browser's menu word, in Indonesian too
        assert "Settings" not in page.locator("main").inner_text()
    journey.capture("02-guidance")

    journey.follow('main a.button[href$="/kode-baru"]')
    codename = page.locator("p.codename").inner_text().strip()
    assert codename == page.locator('input[name="codename"]').get_attribute("value")
    assert len(codename.split()) >= 7, codename
    journey.capture("03-codename")
    page.check("#noted")
    journey.submit('form[action$="/kode-baru"] button[type="submit"]')
    assert page.url == base + "/lapor"

    # The guided report: 4W+1H+berapa and a chronology, and two files.
    page.select_option("#f-category", "suap_menyuap")
    page.select_option("#f-mcp_area", "perizinan")
    for name, answer in ANSWERS.items():
        page.fill(f"#f-{name}", answer)
    page.fill("#f-kronologi", f"Januari: permohonan diajukan. Maret: diminta uang. {marker}")
    # One file input takes both files at once; its limits are stated before anything is sent.
    assert page.locator('input[type="file"]').count() == 1
    assert page.locator("#r-files").get_attribute("multiple") is not None
    hint = page.locator("#r-files-hint").inner_text()
    assert "20" in hint and "500 MB" in hint, hint
    optional = wording(served, lang, "(optional)")
    for name in ("berapa", "kronologi", "mcp_area"):
        assert optional in page.locator(f'label[for="f-{name}"]').inner_text(), name
    assert optional in page.locator('label[for="r-files"]').inner_text()
    page.set_input_files("#r-files", [evidence / BIG_NAME, evidence / SMALL_NAME])
    # Also to KPK in one language, not in the other: the receipt confirms either choice.
    to_kpk = lang == "en"
    if to_kpk:
        page.check("#f-kpk")
    journey.capture("04-report")
    journey.submit('form[action$="/lapor"] button[type="submit"]')

    # The receipt: a registration number, never the codename.
    registration = page.locator("p.regno").inner_text().strip()
    assert registration
    # Named by the registration number, never the database id.
    assert page.url == f"{base}/tanda-terima/{registration}", page.url
    assert codename not in page.content()
    # What arrived, by the names the browser sent (never stored), and the KPK choice.
    arrived = page.locator("ul.arrived").inner_text()
    assert BIG_NAME in arrived and SMALL_NAME in arrived and "1,1 MB" in arrived.replace(
        "1.1 MB", "1,1 MB"), arrived
    kpk_answer = "Yes: KPK can read this report too." if to_kpk else "No"
    assert wording(served, lang, kpk_answer) in page.locator("main dl").inner_text()
    journey.capture("05-receipt")

    journey.submit('main form[action$="/keluar"] button[type="submit"]')
    journey.capture("06-logged-out")
    page.goto(base + "/pengaduan")  # logged out for real: the cases page sends to the login
    assert page.url.startswith(base + "/masuk"), page.url

    # Meanwhile the complaint unit asks a question (Klarifikasi), as an investigator would.
    case_id = investigator_asks(served, registration, question)

    journey.follow("header .brand a")
    journey.follow('main .actions a[href$="/masuk"]')
    journey.capture("07-login")
    # The codename entry is visible (a text area the words wrap in), never a password field.
    assert page.locator("#f-codename").evaluate("e => e.tagName") == "TEXTAREA"
    # A wrong word is another codename: refused, and the field comes back empty.
    words = codename.split()
    other = next(w for w in load_wordlist(lang) if w not in words)
    wrong = " ".join([*words[:-1], other])
    page.fill("#f-codename", wrong)
    journey.submit('form[action$="/masuk"] button[type="submit"]')
    assert page.url == base + "/masuk", page.url
    assert page.locator("#e-codename").is_visible()
    assert page.locator("#f-codename").input_value() == ""
    assert codename not in page.content() and wrong not in page.content()
    journey.capture("07b-login-refused")
    # The codename as people type it: capitals, doubled spaces, one letter wrong in one word.
    typed = [w.capitalize() for w in words]
    typed[1] = mistype(words[1], lang).capitalize()
    page.fill("#f-codename", "  ".join(typed))
    journey.submit('form[action$="/masuk"] button[type="submit"]')
    assert page.url == base + "/pengaduan", page.url

    # The follow-up page: the status in the pelapor's words, the question, a form to answer.
    case = page.locator(f"#case-{registration}")
    assert case.locator("h2").inner_text().strip() == registration
    status = wording(served, lang, STATUS_WORDING[CaseStatus.KLARIFIKASI])
    if lang != "en":  # translated for real, not the English msgid shown for want of a catalog
        assert status != wording(served, "en", STATUS_WORDING[CaseStatus.KLARIFIKASI])
    assert case.locator("dd.status").inner_text().strip() == status
    assert case.locator(".reply p.text").inner_text().strip() == question
    assert codename not in page.content()
    # What the unit holds, counted (the names were shown once, on the receipt).
    details = case.locator("dl").inner_text()
    assert BIG_NAME not in page.content()
    assert ("2 berkas" if lang == "id" else "2 files") in details, details
    assert wording(served, lang, kpk_answer) in details
    journey.capture("08-cases")

    page.fill(f"#m-{registration}", f"Salinan kontrak terlampir. {marker}")
    page.set_input_files(f"#c{registration}-files", evidence / FOLLOW_UP_NAME)
    journey.submit(f'form[action$="/pengaduan/{registration}/kirim"] button[type="submit"]')
    assert page.url == f"{base}/pengaduan?sent={registration}#case-{registration}", page.url
    notice = case.locator('div.ok[role="status"]')
    assert notice.locator("p").first.inner_text().strip() == wording(
        served, lang, "Sent. Thank you.")
    assert FOLLOW_UP_NAME in notice.locator("ul.arrived").inner_text()
    history = case.locator("ol.history").inner_text()
    assert wording(served, lang, "You sent more information") in history
    journey.capture("09-sent")
    return codename, case_id


def mistype(word: str, lang: str) -> str:
    """``word`` with one letter changed, where the list makes the correction unambiguous."""
    from crypto.codenames import _one_edit_away

    listed = frozenset(load_wordlist(lang))
    for i in range(len(word)):
        for c in "qxzjvkw":
            typo = word[:i] + c + word[i + 1:]
            if typo not in listed and {w for w in _one_edit_away(typo) if w in listed} == {word}:
                return typo
    raise AssertionError(f"no unambiguous typo for {word!r}")


def slug(base: str) -> str:
    return base.rsplit("/t/", 1)[1]


def seed_past_reports(served: Served) -> None:
    """Six reports received in the last ended quarter (once per instance), so the statistics
    page has figures to show: only ended quarters are published (wbs.public_stats)."""
    received = Quarter.of(local_date(utcnow())).previous().start + dt.timedelta(days=14)
    with served.inst.sessions() as session:
        tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == slug(served.base)))
        assert tenant is not None
        scope = TenantScope(session, tenant)
        seeded = sa.select(sa.func.count()).select_from(Case).where(
            Case.registration_number.startswith("statistik/")
        )
        if session.scalar(scope.restrict(seeded, Case)):
            return
        for _ in range(6):
            scope.add(Case(
                source=Source(id=os.urandom(32).hex(), reply_fingerprint="D" * 40,
                              reply_public_key="public", reply_secret_key="locked"),
                registration_number="statistik/" + os.urandom(8).hex(),
                category="pemerasan",
                received_at=dt.datetime.combine(received, dt.time(), tzinfo=dt.UTC),
                first_response_due=received + dt.timedelta(days=9),
            ))
        session.commit()


def investigator_asks(served: Served, registration: str, question: str) -> int:
    with served.inst.sessions() as session:
        case = session.scalar(sa.select(Case).where(Case.registration_number == registration))
        assert case is not None, registration
        tenant = session.get(Tenant, case.tenant_id)
        assert tenant is not None and tenant.slug == slug(served.base)
        # The question goes to the pelapor as an encrypted reply.
        change_status(Context(served.inst, session, tenant), case, CaseStatus.KLARIFIKASI,
                      question)
        return case.id


# --- the server's disk ----------------------------------------------------------------------

# Under the temp folder, what belongs to the browser (its profile and Playwright's scratch
# space) or to pytest (this and other tests' folders) is not the server's.
_NOT_SERVER = re.compile(r"^(playwright|\.org\.chromium\.|\.com\.google\.Chrome|pytest-of-)")


def temp_walk(excluded: set[Path]) -> Iterator[Path]:
    root = Path(tempfile.gettempdir())
    pseudo = pseudo_mounts()
    for current, dirs, files in os.walk(root, onerror=lambda _err: None):
        here = Path(current)
        dirs[:] = [
            d for d in dirs
            if (here / d).resolve() not in excluded
            and here / d not in pseudo
            and not (here == root and _NOT_SERVER.match(d))
        ]
        for name in files:
            if not (here == root and _NOT_SERVER.match(name)):
                yield here / name


def temp_snapshot(excluded: set[Path]) -> set[Path]:
    return set(temp_walk(excluded))


def temp_files_changed(before: set[Path], since: float, excluded: set[Path]) -> list[Path]:
    """Regular files under the temp folder that are new or were written during the journey."""
    changed = []
    for path in temp_walk(excluded):
        try:
            if not path.is_file() or path.is_symlink():
                continue
            if path not in before or path.stat().st_mtime >= since - 1:
                changed.append(path)
        except OSError:
            continue
    return changed


def files_under(roots: list[Path]) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def contains(path: Path, needle: bytes, chunk: int = 1 << 20) -> bool:
    """Whether the file holds ``needle``, read in chunks (files of other tests may be large)."""
    tail = b""
    try:
        with path.open("rb") as handle:
            while block := handle.read(chunk):
                if needle in tail + block:
                    return True
                tail = block[-len(needle):]
    except OSError:
        return False
    return False


def gpg_decrypt(home: Path, path: Path) -> tuple[bytes, str]:
    """Plaintext and the original filename, with the workstation's keys (real gpg); the
    name travels in the padding frame (tests.support.decrypt_item)."""
    data, name = decrypt_item(home, path)
    return data, name or ""


# --- accessibility --------------------------------------------------------------------------


def check_accessibility(
    browser: Browser, axe_js: Path, options: dict[str, Any], visited: list[Visited], where: str
) -> None:
    """axe-core on each page the journey saw, replayed from its HTML in a context where
    JavaScript runs (the pages have none; it runs axe). Style sheets come from the app."""
    context: BrowserContext = browser.new_context(
        java_script_enabled=True, bypass_csp=True, **options
    )
    current: dict[str, str] = {}

    def replay(route: Route, request: Request) -> None:
        if request.is_navigation_request() and request.url in current:
            route.fulfill(status=200, content_type="text/html; charset=utf-8",
                          body=current[request.url])
        else:
            route.continue_()

    blocking: list[str] = []
    try:
        page = context.new_page()
        page.route("**/*", replay)
        for visit in visited:
            current.clear()
            current[visit.url] = visit.html
            page.goto(visit.url)
            page.add_script_tag(path=str(axe_js))
            # Without the style sheet, colour contrast and layout would go unchecked.
            rules = page.evaluate(
                "() => Array.from(document.styleSheets).reduce((n, s) => n + s.cssRules.length, 0)"
            )
            assert rules > 0, f"{visit.name}: the style sheet did not load in the axe context"
            results = page.evaluate("async () => await axe.run(document)")
            assert results["passes"], f"{visit.name}: axe checked nothing"
            for item in results["incomplete"]:
                print(f"axe {where} {visit.name}: needs review: {item['id']}: {item['help']}")
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            if overflow > 0:
                blocking.append(f"{visit.name}: {overflow}px wider than the screen")
            for violation in results["violations"]:
                line = (
                    f"{visit.name}: [{violation['impact']}] {violation['id']}: "
                    f"{violation['help']} at "
                    + ", ".join(str(node["target"]) for node in violation["nodes"][:5])
                )
                if violation["impact"] in BLOCKING_IMPACTS:
                    blocking.append(line)
                else:
                    print(f"axe {where} {line}")
    finally:
        context.close()
    assert blocking == [], f"accessibility ({where}):\n" + "\n".join(blocking)
