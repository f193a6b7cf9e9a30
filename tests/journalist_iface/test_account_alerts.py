"""The account page's e-mail alerts: the investigator sets the address, opts out and picks the
language; an admin sees whether each account gets alerts, and changes nobody's."""

from __future__ import annotations

from tests.journalist_iface.conftest import Demo, logged_in
from wbs.domain import Role
from wbs.models import AlertSetting

PAGE = "/akun/peringatan"


def _setting(demo: Demo, investigator_id: int) -> AlertSetting | None:
    with demo.inst.sessions() as session:
        found = session.get(AlertSetting, investigator_id)
        if found is not None:
            session.expunge(found)
        return found


def test_the_investigator_sets_an_address_and_opts_out(demo: Demo) -> None:
    browser = logged_in(demo)
    assert browser.account is not None
    page = browser.get(PAGE).get_data(as_text=True)
    assert "Peringatan e-mail" in page
    # No setting yet: alerts on, in the page's language, no address.
    assert 'name="enabled" value="1" id="f-enabled" checked' in page
    assert '<option value="id" selected>' in page
    assert _setting(demo, browser.account.id) is None

    saved = browser.post(
        PAGE, {"email": "penyidik@example.go.id", "enabled": "1", "language": "en"},
        token_from=PAGE,
    )
    assert saved.status_code == 302
    setting = _setting(demo, browser.account.id)
    assert setting is not None
    assert (setting.email, setting.enabled, setting.language) == (
        "penyidik@example.go.id", True, "en",
    )
    page = browser.get(PAGE).get_data(as_text=True)
    assert "Pengaturan peringatan e-mail Anda tersimpan." in page
    assert 'value="penyidik@example.go.id"' in page

    # Opting out: the box unticked; the address stays for when they opt in again.
    browser.post(PAGE, {"email": "penyidik@example.go.id", "language": "en"}, token_from=PAGE)
    setting = _setting(demo, browser.account.id)
    assert setting is not None and setting.enabled is False
    assert setting.email == "penyidik@example.go.id"
    assert 'id="f-enabled" checked' not in browser.get(PAGE).get_data(as_text=True)


def test_a_bad_address_is_refused_and_nothing_is_saved(demo: Demo) -> None:
    browser = logged_in(demo)
    assert browser.account is not None
    refused = browser.post(
        PAGE, {"email": "penyidik@example.go.id\r\nBcc: x@example.com", "enabled": "1",
               "language": "id"},
        token_from=PAGE,
    )
    assert refused.status_code == 400
    assert "Itu bukan alamat e-mail." in refused.get_data(as_text=True)
    assert _setting(demo, browser.account.id) is None
    # Without the page's CSRF token nothing is saved either.
    forged = browser.client.post(PAGE, data={"email": "a@example.go.id", "enabled": "1",
                                             "language": "id"})
    assert forged.status_code in (400, 403)
    assert _setting(demo, browser.account.id) is None


def test_the_admin_sees_whether_accounts_get_alerts_but_sets_only_their_own(demo: Demo) -> None:
    investigator = logged_in(demo)
    assert investigator.account is not None
    investigator.post(PAGE, {"email": "v@example.go.id", "language": "id"}, token_from=PAGE)
    admin = logged_in(demo, role=Role.ADMIN_INSTANSI)
    assert admin.account is not None
    listing = admin.get("/admin/").get_data(as_text=True)
    row = next(line for line in listing.splitlines() if investigator.account.username in line)
    cell = listing[listing.index(row):].split("</tr>", 1)[0]
    assert "Peringatan e-mail" in cell and ">mati<" in cell
    assert "v@example.go.id" not in listing  # the admin sees on/off, not the address
    # The admin's own save changes the admin's row only.
    admin.post(PAGE, {"email": "admin@example.go.id", "enabled": "1", "language": "id"},
               token_from=PAGE)
    mine = _setting(demo, investigator.account.id)
    assert mine is not None and (mine.email, mine.enabled) == ("v@example.go.id", False)
    theirs = _setting(demo, admin.account.id)
    assert theirs is not None and theirs.email == "admin@example.go.id"


def test_the_page_in_english(demo: Demo) -> None:
    browser = logged_in(demo)
    browser.client.set_cookie("peluit_jl", "en")
    page = browser.get(PAGE).get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "E-mail alerts" in page and "Send me e-mail alerts" in page
    # No setting yet: the mail's language defaults to the page's.
    assert '<option value="en" selected>' in page
