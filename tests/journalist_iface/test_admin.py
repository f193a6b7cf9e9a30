"""The admin instansi's pages: accounts, recipient keys, settings, deletion; and the
self-service authenticator set-up of every investigator."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
import time_machine

from crypto.keyring import kill_agent
from peluit.demo import make_workstation_key
from tests.journalist_iface.conftest import (
    HUB,
    TENANT,
    Account,
    Browser,
    Demo,
    logged_in,
    make_account,
    make_report,
)
from tests.support import clocks, short_tempdir, wib_today
from wbs import onion
from wbs.accounts import open_secret, totp_key
from wbs.casework import change_status
from wbs.context import Context
from wbs.domain import DEFAULT_CATEGORY_CODES, CaseStatus, EventKind, KpkSharing, Role
from wbs.models import Case, Event, Investigator, RecipientKey, Reply, Submission, Tenant
from wbs.sources import source_cases
from wbs.tenants import get_tenant

# --- helpers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    good: str
    good_fingerprint: str
    second: str
    secret: str
    weak_rsa: str


def _unsealed(demo: Demo, row: Investigator, sealed: str | None) -> str | None:
    return None if sealed is None else open_secret(totp_key(demo.inst.secrets), row.id, sealed)


def _gpg(home: Path, *args: str) -> str:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--pinentry-mode", "loopback",
         "--passphrase", "", *args],
        check=True, capture_output=True, text=True,
    ).stdout


def _fingerprint(home: Path) -> str:
    listing = _gpg(home, "--with-colons", "--list-keys")
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))


@pytest.fixture(scope="module")
def keys() -> Iterator[Keys]:
    """Keys as a workstation makes them: two good ones, a private export, a weak RSA key."""
    homes = [short_tempdir("adk-") for _ in range(3)]
    try:
        good = make_workstation_key(homes[0] / "g", "Tim 1 <tim1@example.test>")
        fpr = _fingerprint(homes[0] / "g")
        secret = _gpg(homes[0] / "g", "--armor", "--export-secret-keys", fpr)
        second = make_workstation_key(homes[1] / "g", "Tim 2 <tim2@example.test>")
        weak_home = homes[2] / "g"
        weak_home.mkdir(mode=0o700)
        _gpg(weak_home, "--quick-generate-key", "Lemah <weak@example.test>", "rsa2048",
             "default", "never")
        weak = _gpg(weak_home, "--armor", "--export", _fingerprint(weak_home))
        yield Keys(good, fpr, second, secret, weak)
    finally:
        for home in homes:
            kill_agent(home / "g")
            shutil.rmtree(home, ignore_errors=True)


def _html(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined, no-any-return]


def _events(demo: Demo, kind: EventKind, tenant: str = TENANT) -> list[Event]:
    with demo.inst.sessions() as session:
        owner = get_tenant(session, tenant)
        return list(session.scalars(
            sa.select(Event).where(Event.kind == kind, Event.tenant_id == owner.id)
            .order_by(Event.id)
        ))


_SECRET = re.compile(r'class="mono">([A-Z2-7]{32})</dd>')
_PASSPHRASE = re.compile(r'class="mono codename">([^<]+)</dd>')


def _shown(html: str) -> tuple[str | None, str | None]:
    passphrase, secret = _PASSPHRASE.search(html), _SECRET.search(html)
    return (passphrase.group(1) if passphrase else None, secret.group(1) if secret else None)


def _new_browser(demo: Demo) -> Browser:
    return Browser(demo.app.test_client())


# --- roles and tenants ------------------------------------------------------------------------

ADMIN_PAGES = ["/admin/", "/admin/kunci", "/admin/pengaturan"]


@pytest.mark.parametrize(("tenant", "role"), [(TENANT, Role.VERIFIKATOR),
                                              (HUB, Role.PEMANTAU_KPK)])
def test_admin_pages_refuse_other_roles(demo: Demo, tenant: str, role: Role) -> None:
    browser = logged_in(demo, tenant, role)
    for url in ADMIN_PAGES:
        assert browser.get(url).status_code == 403, url
        assert browser.post(url, {"username": "x", "name": "x"}).status_code == 403, url
    target = make_account(demo, tenant)
    for action in ("nonaktifkan", "atur-ulang-2fa", "atur-ulang-sandi"):
        url = f"/admin/petugas/{target.id}/{action}"
        assert browser.get(url).status_code == 403
        assert browser.post(url).status_code == 403
    with demo.inst.sessions() as session:
        account = session.get(Investigator, target.id)
        assert account is not None and account.active
    assert "/admin/" not in _html(browser.get("/"))  # no link to what is refused


def test_an_admin_cannot_reach_another_tenants_accounts_or_keys(demo: Demo) -> None:
    admin = logged_in(demo, HUB, Role.ADMIN_INSTANSI)
    victim = make_account(demo, TENANT)
    for action in ("nonaktifkan", "atur-ulang-2fa", "atur-ulang-sandi"):
        url = f"/admin/petugas/{victim.id}/{action}"
        assert admin.get(url).status_code == 404
        assert admin.post(url).status_code == 404
    with demo.inst.sessions() as session:
        key_id = session.scalars(
            sa.select(RecipientKey.id).where(
                RecipientKey.tenant_id == get_tenant(session, TENANT).id)
        ).first()
    assert admin.get(f"/admin/kunci/{key_id}/cabut").status_code == 404
    assert admin.post(f"/admin/kunci/{key_id}/cabut").status_code == 404
    assert victim.username not in _html(admin.get("/admin/"))
    with demo.inst.sessions() as session:
        account = session.get(Investigator, victim.id)
        key = session.get(RecipientKey, key_id)
        assert account is not None and account.active and account.totp_pending_sealed
        assert key is not None and key.revoked_at is None


def test_an_admin_cannot_reset_their_own_account_here(demo: Demo) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    assert admin.account is not None
    assert admin.post(f"/admin/petugas/{admin.account.id}/atur-ulang-2fa").status_code == 400
    assert admin.get("/admin/").status_code == 200  # still logged in


# --- accounts ---------------------------------------------------------------------------------


def test_a_created_account_logs_in_with_what_was_shown_once(demo: Demo) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    response = admin.post("/admin/", {"username": "siti.a", "display_name": "Siti A",
                                      "role": "verifikator"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = _html(response)
    passphrase, secret = _shown(html)
    assert passphrase and secret and "<svg" in html and "<script" not in html.lower()
    assert "Hanya ditampilkan sekali ini" in html
    newcomer = _new_browser(demo)
    account = Account(0, "siti.a", passphrase, secret, TENANT, Role.VERIFIKATOR)
    assert newcomer.login(account).status_code == 302
    assert "Siti A" in _html(newcomer.get("/"))
    assert [e.note for e in _events(demo, EventKind.INVESTIGATOR_ADDED)][-1] == "siti.a"
    # The list shows the account, never its secrets.
    listing = _html(admin.get("/admin/"))
    assert "siti.a" in listing and passphrase not in listing and secret not in listing


def test_account_form_errors_are_shown_and_nothing_is_made(demo: Demo) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    assert admin.account is not None
    taken = admin.post("/admin/", {"username": admin.account.username, "display_name": "X",
                                   "role": "verifikator"})
    assert taken.status_code == 400 and "Nama pengguna ini sudah dipakai" in _html(taken)
    bad = admin.post("/admin/", {"username": "1x", "display_name": "X", "role": "verifikator"})
    assert bad.status_code == 400 and "3-64 karakter" in _html(bad)
    # A monitor exists only at KPK.
    monitor = admin.post("/admin/", {"username": "pantau9", "display_name": "X",
                                     "role": "pemantau_kpk"})
    assert monitor.status_code == 400
    with demo.inst.sessions() as session:
        assert session.scalar(sa.select(Investigator).where(
            Investigator.username.in_(["1x", "pantau9"]))) is None


def test_deactivation_asks_first_and_ends_the_accounts_sessions(demo: Demo) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    colleague = logged_in(demo)
    assert colleague.account is not None
    url = f"/admin/petugas/{colleague.account.id}/nonaktifkan"
    confirm = admin.get(url)
    assert confirm.status_code == 200 and 'method="post"' in _html(confirm)
    assert colleague.get("/").status_code == 200  # a GET changes nothing
    done = admin.post(url, token_from=url)
    assert done.status_code == 302
    with demo.inst.sessions() as session:
        account = session.get(Investigator, colleague.account.id)
        assert account is not None and not account.active
    assert colleague.get("/").status_code == 302
    assert colleague.login(colleague.account).status_code == 200  # refused
    assert _events(demo, EventKind.INVESTIGATOR_DEACTIVATED)[-1].note == colleague.account.username


def test_deactivation_removes_the_accounts_onion_client_key(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No tor here: the stored key goes at once, tor's copy with the next publish.
    monkeypatch.setenv(onion.CONTROL_ENV, "127.0.0.1:1")
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    target = make_account(demo, TENANT)
    with demo.inst.sessions() as session:
        account = session.get(Investigator, target.id)
        assert account is not None
        onion.generate_client_key(demo.inst, account)
    assert target.username in onion.client_public_keys(demo.inst)
    url = f"/admin/petugas/{target.id}/nonaktifkan"
    assert admin.post(url, token_from=url).status_code == 302
    assert target.username not in onion.client_public_keys(demo.inst)


def test_password_and_totp_resets_show_new_secrets_once(demo: Demo) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    colleague = logged_in(demo)
    account = colleague.account
    assert account is not None
    url = f"/admin/petugas/{account.id}/atur-ulang-sandi"
    assert "<form" in _html(admin.get(url))
    passphrase, _ = _shown(_html(admin.post(url, token_from=url)))
    assert passphrase
    assert colleague.get("/").status_code == 302  # the reset ended the session
    url = f"/admin/petugas/{account.id}/atur-ulang-2fa"
    response = admin.post(url, token_from=url)
    _, secret = _shown(_html(response))
    assert secret and "<svg" in _html(response)
    # The old password and the old secret fail; the new ones work.
    old = _new_browser(demo)
    assert old.login(account).status_code == 200
    renewed = Account(account.id, account.username, passphrase, secret, TENANT, account.role)
    assert _new_browser(demo).login(renewed).status_code == 302
    kinds = {e.kind for e in _events(demo, EventKind.PASSWORD_RESET)} | {
        e.kind for e in _events(demo, EventKind.TOTP_RESET)}
    assert kinds == {EventKind.PASSWORD_RESET, EventKind.TOTP_RESET}


# --- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("which", "indonesian"),
    [
        ("secret", "Ini kunci PRIVAT"),
        ("weak_rsa", "terlalu lemah"),
        ("garbage", "bukan kunci publik OpenPGP"),
    ],
)
def test_a_refused_key_is_explained_and_not_stored(
    demo: Demo, keys: Keys, which: str, indonesian: str
) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    armored = {"secret": keys.secret, "weak_rsa": keys.weak_rsa,
               "garbage": "halo, ini bukan kunci"}[which]
    before = [event.id for event in _events(demo, EventKind.KEY_ADDED)]
    response = admin.post("/admin/kunci", {"armored": armored, "owner": "Tim X"})
    assert response.status_code == 400
    assert indonesian in _html(response)
    assert "BEGIN PGP PRIVATE KEY" not in _html(response)  # never echoed back
    assert [event.id for event in _events(demo, EventKind.KEY_ADDED)] == before
    with demo.inst.sessions() as session:
        assert session.scalar(sa.select(RecipientKey).where(RecipientKey.owner == "Tim X")) is None


def test_a_verdict_is_in_english_too(demo: Demo, keys: Keys) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    admin.get("/bahasa/en?next=/")
    response = admin.post("/admin/kunci", {"armored": keys.weak_rsa})
    assert response.status_code == 400 and "This key is too weak" in _html(response)


def test_a_good_key_is_added_from_a_file_and_revoked_after_confirmation(
    demo: Demo, keys: Keys
) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    response = admin.post(
        "/admin/kunci",
        {"owner": "Inspektorat, tim 1",
         "key_file": (io.BytesIO(keys.good.encode()), "tim1.asc")},  # type: ignore[dict-item]
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    listing = _html(admin.get("/admin/kunci"))
    assert keys.good_fingerprint in listing and "Inspektorat, tim 1" in listing
    with demo.inst.sessions() as session:
        key = session.scalar(sa.select(RecipientKey).where(
            RecipientKey.fingerprint == keys.good_fingerprint))
        assert key is not None and key.revoked_at is None
        key_id = key.id
    # The same key again: refused in words.
    again = admin.post("/admin/kunci", {"armored": keys.good})
    assert again.status_code == 400 and "sudah menjadi penerima" in _html(again)
    url = f"/admin/kunci/{key_id}/cabut"
    confirm = _html(admin.get(url))
    assert keys.good_fingerprint in confirm and 'method="post"' in confirm
    assert admin.post(url, token_from=url).status_code == 302
    with demo.inst.sessions() as session:
        key = session.get(RecipientKey, key_id)
        assert key is not None and key.revoked_at is not None
    assert _events(demo, EventKind.KEY_REVOKED)[-1].note == keys.good_fingerprint
    assert admin.get(url).status_code == 404  # revoked already: nothing to confirm


def test_key_uploads_up_to_two_mib_are_judged_and_larger_ones_refused(demo: Demo) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)

    def upload(data: bytes) -> int:
        return int(admin.post(
            "/admin/kunci",
            {"key_file": (io.BytesIO(data), "big.asc")},  # type: ignore[dict-item]
            content_type="multipart/form-data",
        ).status_code)

    # Above the interface's form limit (256 KiB) but within the key limit: judged, in words.
    assert upload(b"a" * (1024 * 1024)) == 400
    assert upload(b"a" * (2 * 1024 * 1024 + 128 * 1024)) == 413
    assert admin.post("/admin/kunci", {"armored": "a" * (1024 * 1024)}).status_code == 400
    binary = admin.post("/admin/kunci", {"key_file": (io.BytesIO(b"\x99\x01\xff"), "k.gpg")},  # type: ignore[dict-item]
                        content_type="multipart/form-data")
    assert binary.status_code == 400 and "bukan kunci publik OpenPGP" in _html(binary)


@dataclass(frozen=True)
class BinaryKeys:
    public: bytes
    secret: bytes
    fingerprint: str


@pytest.fixture(scope="module")
def binary_keys() -> Iterator[BinaryKeys]:
    """A workstation's key exported without --armor: the .gpg files the file picker offers."""
    home = short_tempdir("adb-")
    try:
        make_workstation_key(home / "g", "Tim 3 <tim3@example.test>")
        fpr = _fingerprint(home / "g")

        def export(*args: str) -> bytes:
            return subprocess.run(
                ["gpg", "--homedir", str(home / "g"), "--batch", "--no-tty", "--pinentry-mode",
                 "loopback", "--passphrase", "", *args, fpr],
                check=True, capture_output=True,
            ).stdout

        public, secret = export("--export"), export("--export-secret-keys")
        # Binary OpenPGP packets, not armor: the first byte is a packet tag.
        assert public[0] & 0x80 and secret[0] & 0x80
        assert b"BEGIN PGP" not in public + secret
        yield BinaryKeys(public, secret, fpr)
    finally:
        kill_agent(home / "g")
        shutil.rmtree(home, ignore_errors=True)


def _upload_key(admin: Any, data: bytes, name: str) -> Any:
    return admin.post(
        "/admin/kunci",
        {"owner": "Tim biner", "key_file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_a_binary_secret_key_is_refused_with_the_private_key_warning(
    demo: Demo, binary_keys: BinaryKeys
) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    response = _upload_key(admin, binary_keys.secret, "tim3-secret.gpg")
    assert response.status_code == 400
    assert "Ini kunci PRIVAT" in _html(response)
    assert "peluit-workstation keys export" in _html(response)
    with demo.inst.sessions() as session:
        assert session.scalar(sa.select(RecipientKey).where(
            RecipientKey.fingerprint == binary_keys.fingerprint)) is None
    # Nothing of it stayed in the server's keyring either.
    assert binary_keys.fingerprint not in demo.inst.keyring


def test_a_binary_public_key_is_accepted_like_an_armored_one(
    demo: Demo, binary_keys: BinaryKeys
) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    response = _upload_key(admin, binary_keys.public, "tim3.gpg")
    assert response.status_code == 302, _html(response)
    with demo.inst.sessions() as session:
        key = session.scalar(sa.select(RecipientKey).where(
            RecipientKey.fingerprint == binary_keys.fingerprint))
        assert key is not None and key.owner == "Tim biner"
        # Stored armored, as every recipient key is (the bundle and the replies use it so).
        assert key.public_key.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
        key_id = key.id
    admin.post(f"/admin/kunci/{key_id}/cabut", token_from=f"/admin/kunci/{key_id}/cabut")


def test_the_key_advice_names_the_workstation_command(demo: Demo) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    page = _html(admin.get("/admin/kunci"))
    assert "peluit-workstation keys export FINGERPRINT --output" in page
    assert "gpg --armor --export" not in page


def test_pasted_key_is_added(demo: Demo, keys: Keys) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    response = admin.post("/admin/kunci", {"armored": keys.second})
    assert response.status_code == 302
    fingerprint = _events(demo, EventKind.KEY_ADDED)[-1].note
    assert fingerprint and fingerprint != keys.good_fingerprint
    listing = _html(admin.get(response.location))
    assert f"Kunci {fingerprint} diterima" in listing and "—" in listing  # no owner given


# --- settings ---------------------------------------------------------------------------------


@clocks
def test_settings_change_is_logged_and_used_by_new_reports(
    demo: Demo, clock: dt.datetime
) -> None:
    with time_machine.travel(clock):
        _check_settings_change(demo)


def _check_settings_change(demo: Demo) -> None:
    # One run changes the settings; the next starts from what it left, so reset them first.
    with demo.inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        tenant.first_response_days, tenant.categories = 7, list(DEFAULT_CATEGORY_CODES)
        tenant.kpk_sharing = KpkSharing.OPTIONAL
        session.commit()
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    page = _html(admin.get("/admin/pengaturan"))
    assert 'type="checkbox" name="categories"' in page
    response = admin.client.post("/admin/pengaturan", data={
        "csrf_token": admin.token("/admin/pengaturan"),
        "name": "Pemprov Sumsel (uji)", "categories": ["gratifikasi", "suap_menyuap"],
        "first_response_days": "3", "kpk_sharing": "always", "max_upload_mib": "20",
    })
    assert response.status_code == 302
    with demo.inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        assert (tenant.name, tenant.categories, tenant.first_response_days,
                tenant.kpk_sharing, tenant.max_upload_bytes) == (
            "Pemprov Sumsel (uji)", ["suap_menyuap", "gratifikasi"], 3, KpkSharing.ALWAYS,
            20 * 1024 * 1024)
    note = _events(demo, EventKind.SETTINGS_CHANGED)[-1].note or ""
    assert "first_response_days 7→3" in note and "categories" in note
    assert "Pemprov Sumsel (uji)" not in note
    report = make_report(demo)
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None
        # Counted from today's date in WIB, which is also the day recorded as received.
        assert case.received_at.date() == wib_today()
        assert case.first_response_due == demo.inst.calendar.add_working_days(wib_today(), 3)
    # Invalid values: nothing stored, nothing logged, the problems in words.
    logged = len(_events(demo, EventKind.SETTINGS_CHANGED))
    refused = admin.post("/admin/pengaturan", {"name": "X", "first_response_days": "0",
                                                "kpk_sharing": "never"},
                         token_from="/admin/pengaturan")
    assert refused.status_code == 400
    html = _html(refused)
    assert "Tawarkan paling sedikit satu kategori" in html and "1 sampai 60 hari kerja" in html
    assert len(_events(demo, EventKind.SETTINGS_CHANGED)) == logged
    with demo.inst.sessions() as session:
        assert get_tenant(session, TENANT).first_response_days == 3


@pytest.mark.parametrize("bad", ["²", "٣", "9" * 5000])
def test_settings_with_digits_int_refuses_are_refused_in_words(demo: Demo, bad: str) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    with demo.inst.sessions() as session:
        days = get_tenant(session, TENANT).first_response_days
    refused = admin.post("/admin/pengaturan", {
        "name": "X", "categories": "gratifikasi", "kpk_sharing": "never",
        "first_response_days": bad, "max_upload_mib": bad,
    }, token_from="/admin/pengaturan")
    assert refused.status_code == 400
    html = _html(refused)
    assert "1 sampai 60 hari kerja" in html and "Batas unggahan" in html
    with demo.inst.sessions() as session:
        assert get_tenant(session, TENANT).first_response_days == days


# --- deletion ---------------------------------------------------------------------------------


def _items(demo: Demo, case_id: int) -> tuple[list[str], list[str]]:
    with demo.inst.sessions() as session:
        subs = list(session.scalars(sa.select(Submission.store_path)
                                    .where(Submission.case_id == case_id)))
        reps = list(session.scalars(sa.select(Reply.store_path).where(Reply.case_id == case_id)))
    return subs, reps


def test_an_item_is_deleted_with_its_file_after_confirmation(demo: Demo) -> None:
    report = make_report(demo, files=(b"bukti satu", b"bukti dua"))
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    verifikator = logged_in(demo)
    page = f"/pengaduan/{report.case_id}"
    assert "/hapus" in _html(admin.get(page)) and "/hapus" not in _html(verifikator.get(page))
    url = f"{page}/berkas/2/hapus"
    assert verifikator.get(url).status_code == 403
    assert verifikator.post(url, token_from=page).status_code == 403
    paths, _ = _items(demo, report.case_id)
    assert len(paths) == 3
    confirm = _html(admin.get(url))
    key = re.search(r'name="item" value="([^"]+)"', confirm)
    assert key is not None
    # A stale confirmation (another item now at that number) deletes nothing.
    assert admin.post(url, {"item": "submission-0"}, token_from=page).status_code == 409
    assert len(_items(demo, report.case_id)[0]) == 3
    assert admin.post(url, {"item": key.group(1)}, token_from=page).status_code == 302
    left, _ = _items(demo, report.case_id)
    gone = set(paths) - set(left)
    assert len(left) == 2 and len(gone) == 1
    assert not demo.inst.store.root.joinpath(*gone.pop().split("/")).exists()
    event = _events(demo, EventKind.ITEM_DELETED)[-1]
    assert event.case_id == report.case_id and event.note == "file #2"


def test_a_case_is_deleted_only_when_closed_and_vanishes_for_the_reporter(demo: Demo) -> None:
    report = make_report(demo, files=(b"bukti",))
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    url = f"/pengaduan/{report.case_id}/hapus"
    # Open: refused with a reason, nothing deleted.
    assert admin.post(url, {"registration_number": report.registration_number},
                      token_from="/").status_code == 302
    assert len(_items(demo, report.case_id)[0]) == 2
    page = f"/pengaduan/{report.case_id}"
    admin.post(f"{page}/balas", {"text": "Terima kasih"}, token_from=page)
    with demo.inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        case = session.get(Case, report.case_id)
        assert case is not None
        change_status(Context(demo.inst, session, tenant), case, CaseStatus.DIARSIPKAN,
                      "tidak ada unsur")
    subs, reps = _items(demo, report.case_id)
    assert len(subs) == 2 and len(reps) == 1
    verifikator = logged_in(demo)
    assert verifikator.post(url, {"registration_number": report.registration_number},
                            token_from="/").status_code == 403
    assert report.registration_number in _html(admin.get(url))
    assert admin.post(url, {"registration_number": report.registration_number},
                      token_from="/").status_code == 302
    with demo.inst.sessions() as session:
        assert session.get(Case, report.case_id) is None
        tenant = get_tenant(session, TENANT)
        assert source_cases(Context(demo.inst, session, tenant), report.secrets.source_id) == []
        kinds = [e.kind for e in session.scalars(
            sa.select(Event).where(Event.case_id == report.case_id).order_by(Event.id))]
    assert kinds[0] == EventKind.CASE_CREATED and kinds[-1] == EventKind.CASE_DELETED
    assert _items(demo, report.case_id) == ([], [])
    for path in subs + reps:
        assert not demo.inst.store.root.joinpath(*path.split("/")).exists()
    assert admin.get(page).status_code == 404


def test_a_case_sent_to_kpk_cannot_be_deleted(demo: Demo) -> None:
    report = make_report(demo, to_kpk=True)
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None
        change_status(Context(demo.inst, session, get_tenant(session, TENANT)), case,
                      CaseStatus.DIARSIPKAN,
                      "x")
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    url = f"/pengaduan/{report.case_id}/hapus"
    assert admin.get(url).status_code == 302
    admin.post(url, {"registration_number": report.registration_number}, token_from="/")
    with demo.inst.sessions() as session:
        assert session.get(Case, report.case_id) is not None


def test_a_case_sent_to_kpk_cannot_be_emptied_item_by_item(demo: Demo) -> None:
    # Still open (Baru): deleting its form and evidence one by one would bury the report from
    # KPK's view as surely as deleting the case.
    report = make_report(demo, to_kpk=True, files=(b"bukti",))
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    page = f"/pengaduan/{report.case_id}"
    for number in (1, 2):
        url = f"{page}/berkas/{number}/hapus"
        assert admin.get(url).status_code == 302  # back to the case, with the reason
        refused = admin.post(url, {"item": f"submission-{number}"}, token_from=page)
        assert refused.status_code == 302
    assert "tidak dapat dihapus" in admin.get(page).get_data(as_text=True)
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None and len(case.submissions) == 2


# --- self-service authenticator ---------------------------------------------------------------


def test_a_new_authenticator_replaces_the_old_only_after_confirmation(demo: Demo) -> None:
    browser = logged_in(demo)
    account = browser.account
    assert account is not None
    assert browser.get("/akun/2fa").status_code == 200
    started = browser.post("/akun/2fa", token_from="/akun/2fa")
    html = _html(started)
    _, secret = _shown(html)
    assert secret and secret != account.secret and "<svg" in html
    assert started.headers["Cache-Control"] == "no-store"
    with demo.inst.sessions() as session:
        row = session.get(Investigator, account.id)
        assert row is not None
        assert _unsealed(demo, row, row.totp_secret_sealed) == account.secret
        assert _unsealed(demo, row, row.totp_pending_sealed) == secret
    wrong = browser.post("/akun/2fa/konfirmasi", {"code": "000000"}, token_from="/akun/2fa")
    assert wrong.status_code == 400 and "tidak cocok" in _html(wrong)
    with demo.inst.sessions() as session:
        row = session.get(Investigator, account.id)
        assert row is not None and _unsealed(demo, row, row.totp_secret_sealed) == account.secret
    done = browser.post("/akun/2fa/konfirmasi", {"code": pyotp.TOTP(secret).now()},
                        token_from="/akun/2fa")
    assert done.status_code == 302
    with demo.inst.sessions() as session:
        row = session.get(Investigator, account.id)
        assert row is not None and _unsealed(demo, row, row.totp_secret_sealed) == secret
        assert row.totp_pending_sealed is None


def test_confirming_without_a_set_up_is_refused(demo: Demo) -> None:
    browser = logged_in(demo)
    response = browser.post("/akun/2fa/konfirmasi", {"code": "123456"}, token_from="/akun/2fa")
    assert response.status_code == 400


# --- languages, script ------------------------------------------------------------------------


def test_admin_pages_in_both_languages_without_script(demo: Demo) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    target = make_account(demo)
    pages = [*ADMIN_PAGES, "/akun/2fa", f"/admin/petugas/{target.id}/nonaktifkan"]
    expected = {"id": ["Akun petugas", "Kunci penerima", "Pengaturan instansi",
                       "Autentikasi dua langkah", "Nonaktifkan"],
                "en": ["Investigator accounts", "Recipient keys", "Institution settings",
                       "Two-step login", "Deactivate"]}
    for language in ("id", "en"):
        admin.get(f"/bahasa/{language}?next=/")
        for url, text in zip(pages, expected[language], strict=True):
            response = admin.get(url)
            html = _html(response)
            assert response.status_code == 200, url
            assert f'lang="{language}"' in html and text in html, (language, url)
            assert "<script" not in html.lower()
    with demo.inst.sessions() as session:
        assert session.scalar(sa.select(sa.func.count(Tenant.id))) == 2


def test_the_keys_page_shows_the_instance_signing_fingerprint(demo: Demo) -> None:
    # The workstation pins the signer of its first bundle and asks to compare its fingerprint
    # "with the admin page": this is that page, and the fingerprint is the same string.
    fingerprint = demo.inst.signing.fingerprint
    assert re.fullmatch(r"[0-9A-F]{40}", fingerprint)
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    page = _html(admin.get("/admin/kunci"))
    assert f'<p class="mono" id="signing-fingerprint">{fingerprint}</p>' in page
    assert "Kunci tanda tangan server" in page
    admin.get("/bahasa/en?next=/")
    assert "Instance signing key" in _html(admin.get("/admin/kunci"))
