"""The texts reporters read, end to end in Chromium at 1280 and 390 px, JavaScript off.

1. The admin instansi writes the contact channels in the investigator interface: a preview
   first, then saved. What was typed carries a script, an image from elsewhere, a style and an
   off-onion link; only the text and the onion link come through.
2. The reporter (JavaScript off) sees that text on the landing page, KPK's landing names KPK's
   own unit (no inspectorate, no APIP), and a report sent at 00:30 WIB on 3 December shows
   3 December on the receipt and the case page.

Both the admin's and the reporter's pages run at both widths. Screenshots go to
``test-artifacts/screenshots/texts/<width>/``; axe-core must find no violation at all (any
impact) on these pages, and none may be wider than the screen.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
import time_machine
from playwright.sync_api import Browser, BrowserContext, Request, Route
from werkzeug.serving import make_server

from journalist_iface import create_app as create_investigator_app
from tests.e2e.conftest import REPO_ROOT, Served
from tests.e2e.test_source_journey import ANSWERS, WIDTHS, Journey, slug
from tests.support import CLOCKS
from wbs.accounts import create_investigator, start_enrolment
from wbs.domain import Role
from wbs.models import Tenant, TenantText

SHOTS = REPO_ROOT / "test-artifacts" / "screenshots" / "texts"
ONION = "c" * 56 + ".onion"
HOSTILE = (
    "Kirim surat ke **Kotak Pos 575 Palembang**, atau lewat [kotak onion kami](http://"
    + ONION + "/).\n"
    "<script>document.title='x'</script>\n"
    "<img src=http://pelacak.example/p.png>\n"
    '<span style="color:red">gaya</span>\n'
    "[situs luar](https://luar.example/lapor)\n\n"
    "- Telepon: 0711-000000\n"
)


@dataclass(frozen=True)
class Admin:
    username: str
    password: str
    totp_secret: str


@dataclass(frozen=True)
class Desk:
    origin: str
    # One admin per width: a TOTP code is accepted once, and both runs fall in one period.
    admins: dict[str, Admin]


@pytest.fixture(scope="module")
def desk(served: Served) -> Iterator[Desk]:
    """The investigator interface of the same instance, with admins of the province."""
    settings = served.inst.auth_settings()
    admins: dict[str, Admin] = {}
    with served.inst.sessions() as session:
        tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == slug(served.base)))
        assert tenant is not None
        for width in WIDTHS:
            username = f"e2e.teks{width}"
            account, password = create_investigator(
                session, tenant, username, "E2E admin teks", Role.ADMIN_INSTANSI,
                settings=settings,
            )
            assert password is not None
            enrolment = start_enrolment(session, account, settings=settings)
            admins[width] = Admin(username, password, enrolment.secret)
        session.commit()
    app = create_investigator_app(served.inst)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-texts", daemon=True)
    thread.start()
    try:
        yield Desk(f"http://127.0.0.1:{server.server_port}", admins)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def check_no_violation(
    browser: Browser, axe_js: Path, options: dict[str, Any], journey: Journey
) -> None:
    """axe-core on each captured page, replayed from its HTML: no violation of any impact."""
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

    found: list[str] = []
    try:
        page = context.new_page()
        page.route("**/*", replay)
        for visit in journey.visited:
            current.clear()
            current[visit.url] = visit.html
            page.goto(visit.url)
            page.add_script_tag(path=str(axe_js))
            results = page.evaluate("async () => await axe.run(document)")
            assert results["passes"], f"{visit.name}: axe checked nothing"
            found += [f"{visit.name}: [{v['impact']}] {v['id']}: {v['help']}"
                      for v in results["violations"]]
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            if overflow > 0:
                found.append(f"{visit.name}: {overflow}px wider than the screen")
    finally:
        context.close()
    assert found == [], "\n".join(found)


@pytest.mark.slow
@pytest.mark.parametrize("width", list(WIDTHS))
def test_tenant_text_and_reporter_dates(
    served: Served, desk: Desk, browser: Browser, axe_js: Path, width: str
) -> None:
    shots = SHOTS / width
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    requests: list[str] = []

    # --- 1. the admin writes the contact channels ------------------------------------------
    # At the same width as the reporter's pages: the investigator interface works at 390 px too.
    desk_context = browser.new_context(java_script_enabled=False, **WIDTHS[width])
    desk_context.on("request", lambda request: requests.append(request.url))
    context = browser.new_context(java_script_enabled=False, **WIDTHS[width])
    context.on("request", lambda request: requests.append(request.url))
    try:
        admin = Journey(desk_context.new_page(), desk.origin, "id", shots)
        page = admin.page
        account = desk.admins[width]
        page.goto(desk.origin + "/masuk")
        page.fill("#f-username", account.username)
        page.fill("#f-password", account.password)
        page.fill("#f-totp", pyotp.TOTP(account.totp_secret).now())
        admin.submit('main form[action="/masuk"] button[type="submit"]')
        assert page.url == desk.origin + "/", page.url
        page.goto(desk.origin + "/admin/teks")
        admin.capture("01-admin-texts")
        admin.follow('main a[href="/admin/teks/contact"]')
        page.fill("#f-text-id", HOSTILE)
        admin.capture("02-admin-text-form")
        admin.submit('main button[name="action"][value="preview"]')
        preview = page.locator("section.preview .tenant-text").first
        assert "Kotak Pos 575 Palembang" in preview.inner_text()
        assert preview.locator(f'a[href="http://{ONION}/"]').count() == 1
        assert preview.locator("img, script, [style]").count() == 0
        assert "luar.example" not in preview.inner_html()
        admin.capture("03-admin-text-preview")
        admin.submit('main button[name="action"][value="save"]')
        assert page.url == desk.origin + "/admin/teks", page.url
        admin.capture("04-admin-text-saved")
        with served.inst.sessions() as session:
            markup = session.scalars(
                sa.select(TenantText.markup).where(TenantText.key == "contact")
            ).one()
        assert "<script" not in markup and "<img" not in markup and "style=" not in markup

        # --- 2. the reporter reads it, and KPK's landing names KPK's unit --------------------
        reporter = Journey(context.new_page(), served.base, "id", shots)
        page = reporter.page
        page.goto(served.base + "/")
        contact = page.locator("main .tenant-text")
        assert "Kotak Pos 575 Palembang" in contact.inner_text()
        assert contact.locator(f'a[href="http://{ONION}/"]').count() == 1
        assert contact.locator("img, script, [style]").count() == 0
        assert "luar.example" not in page.content() and "pelacak" not in page.content()
        reporter.capture("05-landing-with-contact")
        kpk = served.base.rsplit("/t/", 1)[0] + "/t/kpk/"
        page.goto(kpk)
        main = page.locator("main").inner_text()
        assert "Pengaduan Masyarakat (PLPM)" in main
        assert "APIP" not in main and "inspektorat" not in main.lower()
        reporter.capture("06-kpk-landing")

        # --- 3. a report at 00:30 WIB on 3 December is dated 3 December ----------------------
        with time_machine.travel(CLOCKS["00:30-wib"]):
            page.goto(served.base + "/kode-baru")
            page.check("#noted")
            reporter.submit('form[action$="/kode-baru"] button[type="submit"]')
            page.select_option("#f-category", "suap_menyuap")
            for name, answer in ANSWERS.items():
                page.fill(f"#f-{name}", answer)
            reporter.submit('form[action$="/lapor"] button[type="submit"]')
            received = page.locator("main dl dd").first.inner_text().strip()
            assert received == "3 Desember 2026", received
            assert "2 Desember" not in page.locator("main").inner_text()
            reporter.capture("07-receipt-00-30-wib")
            page.goto(served.base + "/pengaduan")
            text = page.locator("main").inner_text()
            assert "3 Desember 2026" in text and "2 Desember" not in text
            dates = page.locator("ol.history .date").all_inner_texts()
            assert dates and set(dates) == {"3 Desember 2026"}, dates
            reporter.capture("08-cases-00-30-wib")
    finally:
        context.close()
        desk_context.close()
        with served.inst.sessions() as session:
            session.execute(sa.delete(TenantText))
            session.commit()

    foreign = [url for url in requests
               if not (url.startswith(served.origin + "/") or url.startswith(desk.origin + "/"))]
    assert foreign == [], foreign
    assert any(url.endswith("/static/peluit.css") for url in requests), "no style sheet"
    check_no_violation(browser, axe_js, WIDTHS["1280"], admin)
    check_no_violation(browser, axe_js, WIDTHS[width], reporter)
