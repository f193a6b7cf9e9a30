"""KPK's copy: a case shared with KPK is read by KPK's accounts as KPK reads its own.

Real gpg throughout: every item KPK downloads (the form, a file, a follow-up, a reply) is
decrypted with a GnuPG home that holds KPK's secret key and nothing else, and KPK's export
bundle is verified and imported by a workstation that holds only that key.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from crypto.bundle import read_bundle
from crypto.keyring import kill_agent
from crypto.padding import FRAMING_PADME, unframe
from crypto.replykeys import encrypt_reply
from tests.journalist_iface.conftest import (
    HUB,
    TENANT,
    Demo,
    Report,
    logged_in,
    make_report,
)
from tests.journalist_iface.test_api import api_login
from tests.support import short_tempdir
from tests.workstation.helpers import run, workstation_home
from wbs.context import Context
from wbs.domain import CaseStatus, EventKind, Role
from wbs.intake import Intake
from wbs.models import Case, Event, Source
from wbs.sharing import log_share
from wbs.tenancy import TenantScope
from wbs.tenants import current_recipients, get_tenant, recipient_keys

ORIGIN_NOTE = "Bukan wewenang: terlapor Bupati Xenophon"


def _gpg(home: Path, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--pinentry-mode", "loopback",
         "--passphrase", "", *args],
        input=data, capture_output=True, check=False,
    )


@pytest.fixture(scope="module")
def homes(demo: Demo) -> Iterator[dict[str, Path]]:
    """A GnuPG home per tenant, each holding that tenant's demo secret key and no other."""
    made: dict[str, Path] = {}
    with demo.inst.sessions() as session:
        fingerprints = {
            slug: [key.fingerprint for key in recipient_keys(session, get_tenant(session, slug))]
            for slug in (TENANT, HUB)
        }
    try:
        for slug, fprs in fingerprints.items():
            home = short_tempdir("kc-") / "gnupg"
            home.mkdir(mode=0o700)
            secret = _gpg(demo.workstation, "--export-secret-keys", *fprs)
            assert secret.returncode == 0 and secret.stdout
            assert _gpg(home, "--import", data=secret.stdout).returncode == 0
            listed = _gpg(home, "--with-colons", "--list-secret-keys").stdout.decode()
            assert listed.count("\nsec:") + listed.startswith("sec:") == len(fprs)
            made[slug] = home
        yield made
    finally:
        for home in made.values():
            kill_agent(home)
            shutil.rmtree(home.parent, ignore_errors=True)


def decrypt(home: Path, ciphertext: bytes) -> bytes | None:
    """What the item says to the holder of ``home``'s keys, or None if they cannot read it."""
    done = _gpg(home, "--decrypt", data=ciphertext)
    if done.returncode != 0:
        return None
    return unframe(done.stdout)[0]


def follow_up(demo: Demo, report: Report, message: str) -> None:
    """The pelapor's follow-up, as the source interface sends it (to KPK too if shared)."""
    with demo.inst.sessions() as session:
        owner = get_tenant(session, TENANT)
        case = session.get(Case, report.case_id)
        assert case is not None
        Intake(Context(demo.inst, session, owner), report.secrets.source_id,
               to_kpk=case.sent_to_kpk).follow_up(case, message)


def reply_from_origin(demo: Demo, report: Report, text: str) -> None:
    origin = logged_in(demo, TENANT, Role.VERIFIKATOR)
    page = f"/pengaduan/{report.case_id}"
    assert origin.post(f"{page}/balas", {"text": text}, token_from=page).status_code == 302


def share_events(demo: Demo, case_id: int, tenant: str) -> list[Event]:
    with demo.inst.sessions() as session:
        scope = TenantScope(session, get_tenant(session, tenant))
        return list(session.scalars(scope.select(Event).where(
            Event.case_id == case_id, Event.kind == EventKind.SENT_TO_KPK)))


@pytest.mark.parametrize("role", [Role.VERIFIKATOR, Role.PEMANTAU_KPK])
def test_kpk_downloads_and_decrypts_every_item_of_a_shared_case(
    demo: Demo, homes: dict[str, Path], role: Role
) -> None:
    report = make_report(demo, TENANT, to_kpk=True, files=(b"bukti-asli-untuk-kpk",))
    follow_up(demo, report, "Pesan tambahan: saksi ada dua.")
    reply_from_origin(demo, report, "Terima kasih, kami telaah.")
    kpk = logged_in(demo, HUB, role)
    page = kpk.get(f"/pengaduan/{report.case_id}").get_data(as_text=True)
    said: dict[str, bytes] = {}
    for number in range(1, 5):
        assert f"/pengaduan/{report.case_id}/berkas/{number}" in page
        response = kpk.get(f"/pengaduan/{report.case_id}/berkas/{number}")
        assert response.status_code == 200
        ciphertext = response.get_data()
        plain = decrypt(homes[HUB], ciphertext)
        assert plain is not None, f"KPK's key cannot read item {number}"
        # The origin reads it too: KPK's copy is an extra recipient, not a replacement.
        assert decrypt(homes[TENANT], ciphertext) == plain
        kind = response.headers["Content-Disposition"].rsplit("-", 1)[1].split(".")[0]
        said[kind] = plain
    assert sorted(said) == ["file", "form", "message", "reply"]
    assert json.loads(said["form"])["apa"] == "Pungutan izin"
    assert said["file"] == b"bukti-asli-untuk-kpk"
    assert said["message"] == b"Pesan tambahan: saksi ada dua."
    assert said["reply"] == b"Terima kasih, kami telaah."
    # KPK's downloads are on record in KPK's log; the origin's log has none of them.
    with demo.inst.sessions() as session:
        downloads = session.scalars(sa.select(Event).where(
            Event.case_id == report.case_id, Event.kind == EventKind.ITEM_DOWNLOADED)).all()
        hub_id = get_tenant(session, HUB).id
        assert len(downloads) == 4 and {event.tenant_id for event in downloads} == {hub_id}


def test_kpk_cannot_read_a_case_of_the_same_tenant_that_was_not_shared(
    demo: Demo, homes: dict[str, Path]
) -> None:
    report = make_report(demo, TENANT, files=(b"tidak untuk KPK",))
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None and not case.sent_to_kpk
        stored = demo.inst.store.open(case.submissions[0].store_path).read()
    # Not encrypted to KPK, and not served to KPK either.
    assert decrypt(homes[HUB], stored) is None
    assert decrypt(homes[TENANT], stored) is not None
    for role in (Role.VERIFIKATOR, Role.PEMANTAU_KPK):
        kpk = logged_in(demo, HUB, role)
        base = f"/pengaduan/{report.case_id}"
        assert kpk.get(base).status_code == 404
        assert kpk.get(f"{base}/berkas/1").status_code == 404
        assert kpk.post(f"{base}/ekspor", token_from="/").status_code == 404
        api = api_login(demo, HUB, role)
        for url in (f"/api/v1/cases/{report.case_id}", f"/api/v1/cases/{report.case_id}/items/1",
                    f"/api/v1/cases/{report.case_id}/bundle"):
            assert api.get(url).status_code == 404, url
        listed = api.get("/api/v1/cases", query_string={"number": report.registration_number})
        assert listed.get_json()["cases"] == []


def test_kpk_exports_a_shared_case_and_its_workstation_imports_it(
    demo: Demo, homes: dict[str, Path], tmp_path: Path
) -> None:
    report = make_report(demo, TENANT, to_kpk=True, files=(b"bukti",))
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    page = f"/pengaduan/{report.case_id}"
    assert admin.post(f"{page}/status", {"status": "diarsipkan", "note": ORIGIN_NOTE},
                      token_from=page).status_code == 302
    kpk = logged_in(demo, HUB, Role.VERIFIKATOR)
    response = kpk.post(f"{page}/ekspor", token_from=page)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    path = tmp_path / "kpk.zip"
    path.write_bytes(response.get_data())

    bundle = read_bundle(path, demo.inst.signing.fingerprint)  # signature, hashes, files
    assert (bundle.tenant_slug, bundle.reader_slug) == (TENANT, HUB)
    (case,) = bundle.cases
    assert case.registration_number == report.registration_number and case.sent_to_kpk
    kinds = [entry.kind for entry in case.timeline]
    assert kinds.count("sent_to_kpk") == 1 and "status_changed" in kinds
    assert "exported" in kinds  # KPK's own entry, written before the bundle
    # The origin's notes stay home, in the bundle as on the page.
    assert all(entry.note is None or "Xenophon" not in entry.note for entry in case.timeline)
    assert "Xenophon" not in path.read_bytes().decode("latin-1")

    # A workstation that holds only KPK's key imports it under the case's own tenant and
    # reads it.
    home = short_tempdir("kcw-")
    try:
        shutil.copytree(homes[HUB], home / "gnupg", ignore=shutil.ignore_patterns("S.*"))
        imported = run(home, "import", str(path))
        assert imported.exit_code == 0, imported.output
        read = run(home, "read", report.registration_number)
        assert read.exit_code == 0, read.output
        assert "Pungutan izin" in read.output
        case_dir = home / "cases" / TENANT / report.registration_number
        state = json.loads((home / "state.json").read_text(encoding="utf-8"))
        meta = state["cases"][f"{TENANT}/{report.registration_number}"]["meta"]
        assert meta["reader"] == HUB
        html = (case_dir / "case.html").read_text(encoding="utf-8")
        assert "Salinan untuk Komisi Pemberantasan Korupsi (kpk), hanya baca" in html
    finally:
        kill_agent(home / "gnupg")
        shutil.rmtree(home, ignore_errors=True)

    # The export is in KPK's log, not the origin's; the origin's own bundle names itself.
    with demo.inst.sessions() as session:
        exports = session.scalars(sa.select(Event).where(
            Event.case_id == report.case_id, Event.kind == EventKind.EXPORTED)).all()
        assert [event.tenant_id for event in exports] == [get_tenant(session, HUB).id]
    own = admin.post(f"{page}/ekspor", token_from=page)
    path.write_bytes(own.get_data())
    mine = read_bundle(path, demo.inst.signing.fingerprint)
    assert (mine.tenant_slug, mine.reader_slug) == (TENANT, TENANT)
    assert any(entry.note == ORIGIN_NOTE for entry in mine.cases[0].timeline)


def test_the_api_lists_and_serves_shared_cases_to_kpk_read_only(demo: Demo) -> None:
    shared = make_report(demo, TENANT, to_kpk=True, files=(b"bukti",))
    private = make_report(demo, TENANT)
    own = make_report(demo, HUB)
    api = api_login(demo, HUB, Role.PEMANTAU_KPK)
    listed = {}
    for report in (shared, private, own):
        found = api.get("/api/v1/cases", query_string={"number": report.registration_number})
        listed.update({case["id"]: case for case in found.get_json()["cases"]})
    assert set(listed) == {shared.case_id, own.case_id}
    entry = listed[shared.case_id]
    assert entry["tenant"] == TENANT and entry["read_only"] is True
    assert entry["next_statuses"] == [] and entry["assignee"] is None
    assert listed[own.case_id]["tenant"] == HUB and listed[own.case_id]["read_only"] is False

    base = f"/api/v1/cases/{shared.case_id}"
    detail = api.get(base).get_json()
    assert [item["kind"] for item in detail["items"]] == ["form", "file"]
    item = api.get(f"{base}/items/2")
    with demo.inst.sessions() as session:
        case = session.get(Case, shared.case_id)
        assert case is not None
        assert item.get_data() == demo.inst.store.open(case.submissions[1].store_path).read()
    bundle = api.get(f"{base}/bundle")
    assert bundle.status_code == 200 and bundle.get_data()[:2] == b"PK"
    # Reading is all: every action that changes the case answers 404.
    for path, body in (("status", {"status": "verifikasi"}), ("flags", {"starred": True}),
                       ("classification", {"category": "gratifikasi"})):
        assert api.post(f"{base}/{path}", json=body).status_code == 404, path
    refused = api.post(f"{base}/replies", data=b"x", content_type="application/pgp-encrypted")
    assert refused.status_code == 404
    with demo.inst.sessions() as session:
        case = session.get(Case, shared.case_id)
        assert case is not None and case.status == CaseStatus.BARU and case.replies == []
        assert not case.starred


def test_the_share_is_logged_once_on_each_side(demo: Demo) -> None:
    shared = make_report(demo, TENANT, to_kpk=True)
    private = make_report(demo, TENANT)
    follow_up(demo, shared, "Pesan kedua.")
    for tenant in (TENANT, HUB):
        (event,) = share_events(demo, shared.case_id, tenant)
        # Caused by the pelapor's sending: kept to the day, like every time of theirs.
        assert (event.created_at.hour, event.created_at.minute) == (0, 0)
        assert event.note is None
        assert share_events(demo, private.case_id, tenant) == []
    # Logging again changes nothing: once is once.
    with demo.inst.sessions() as session:
        owner = get_tenant(session, TENANT)
        case = session.get(Case, shared.case_id)
        assert case is not None
        log_share(Context(demo.inst, session, owner), case)
        session.commit()
    assert len(share_events(demo, shared.case_id, TENANT)) == 1
    assert len(share_events(demo, shared.case_id, HUB)) == 1
    # Each side's timeline shows it once.
    for tenant, role in ((TENANT, Role.VERIFIKATOR), (HUB, Role.PEMANTAU_KPK)):
        timeline = api_login(demo, tenant, role).get(
            f"/api/v1/cases/{shared.case_id}").get_json()["timeline"]
        assert [event["kind"] for event in timeline].count("sent_to_kpk") == 1, tenant


def test_a_reply_to_a_shared_case_must_be_encrypted_to_kpk_too(
    demo: Demo, homes: dict[str, Path]
) -> None:
    report = make_report(demo, TENANT, to_kpk=True)
    api = api_login(demo, TENANT, Role.VERIFIKATOR)
    url = f"/api/v1/cases/{report.case_id}/replies"
    with demo.inst.sessions() as session:
        owner = get_tenant(session, TENANT)
        case = session.get(Case, report.case_id)
        assert case is not None
        source = session.get(Source, case.source_id)
        assert source is not None
        own_keys = current_recipients(session, owner)
        with_kpk = current_recipients(session, owner, to_kpk=True)
        kpk_keys = [fpr for fpr in with_kpk if fpr not in own_keys]
        assert kpk_keys

        def encrypted(recipients: list[str], text: str) -> bytes:
            return encrypt_reply(demo.inst.keyring, recipients, source.reply_public_key,
                                 text.encode(), framing=FRAMING_PADME)

        only_origin = encrypted(own_keys, "Tanpa KPK.")
        only_kpk = encrypted(kpk_keys, "Tanpa instansi.")
        both = encrypted(with_kpk, "Untuk pelapor, instansi dan KPK.")
    refused = api.post(url, data=only_origin, content_type="application/pgp-encrypted")
    assert refused.status_code == 400
    body = refused.get_json()
    assert body["error"] == "reply_refused" and "KPK" in body["message"]
    assert all(fpr in body["message"] for fpr in kpk_keys)
    refused = api.post(url, data=only_kpk, content_type="application/pgp-encrypted")
    assert refused.status_code == 400 and "every current key of the instansi" in (
        refused.get_json()["message"])
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None and case.replies == []
    accepted = api.post(url, data=both, content_type="application/pgp-encrypted")
    assert accepted.status_code == 201, accepted.get_data(as_text=True)
    # KPK downloads it and reads it with its own key.
    kpk = api_login(demo, HUB, Role.VERIFIKATOR)
    items = kpk.get(f"/api/v1/cases/{report.case_id}").get_json()["items"]
    assert items[-1]["kind"] == "reply"
    stored = kpk.get(f"/api/v1/cases/{report.case_id}/items/{items[-1]['number']}").get_data()
    assert decrypt(homes[HUB], stored) == b"Untuk pelapor, instansi dan KPK."


def test_an_operator_intake_sent_to_kpk_is_shared_like_a_drop_box_report(
    demo: Demo, homes: dict[str, Path]
) -> None:
    folder = short_tempdir("kco-")
    try:
        home = workstation_home(demo, folder)  # type: ignore[arg-type]
        answers = home / "answers.json"
        answers.write_text(json.dumps({"apa": "Pungli izin usaha", "siapa": "Staf loket",
                                       "kapan": "Mei 2026", "dimana": "DPMPTSP",
                                       "bagaimana": "Diminta tunai"}), encoding="utf-8")
        with demo.inst.sessions() as session:
            keys = current_recipients(session, get_tenant(session, TENANT), to_kpk=True)
        package = home / "paket.zip"
        made = run(home, "intake", "--tenant", TENANT, "--channel", "telepon", "--category",
                   "pungutan_liar", "--to-kpk", "--answers", str(answers), "-o", str(package),
                   *[arg for fpr in keys for arg in ("--recipient", fpr)])
        assert made.exit_code == 0, made.output
        operator = logged_in(demo, TENANT, Role.VERIFIKATOR)
        uploaded = operator.post(
            "/pengaduan-baru", token_from="/pengaduan-baru",
            data={"package": (io.BytesIO(package.read_bytes()), "paket.zip")},
            content_type="multipart/form-data",
        )
        assert uploaded.status_code == 200, uploaded.get_data(as_text=True)
    finally:
        kill_agent(folder / "gnupg")
        shutil.rmtree(folder, ignore_errors=True)
    with demo.inst.sessions() as session:
        case = session.scalars(sa.select(Case).order_by(Case.id.desc())).first()
        assert case is not None and case.sent_to_kpk and case.channel.value == "telepon"
        case_id = case.id
    assert len(share_events(demo, case_id, TENANT)) == 1
    assert len(share_events(demo, case_id, HUB)) == 1
    kpk = logged_in(demo, HUB, Role.VERIFIKATOR)
    form = kpk.get(f"/pengaduan/{case_id}/berkas/1")
    assert form.status_code == 200
    plain = decrypt(homes[HUB], form.get_data())
    assert plain is not None and json.loads(plain)["apa"] == "Pungli izin usaha"
