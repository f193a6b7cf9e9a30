"""Pelimpahan with real gpg: tenant A forwards a case to tenant B; C sees nothing.

The reporter files at A through the source interface; A's workstation (A's secret key only)
imports A's bundle, which pins the instance signing key, verifies B's signed key list and
re-encrypts every item to B's key; the server checks the package without decrypting and opens
the linked case in B. B's workstation (B's key only) decrypts every forwarded item; A's and
C's keys cannot. B replies with the workstation's reply flow; the reporter reads it at A's
site with the same codename, and their follow-up is encrypted to B. Every refusal stores
nothing and leaves both cases as they were.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine

from crypto.keyring import kill_agent
from crypto.padding import unframe
from peluit.demo import make_workstation_key
from source_iface import create_app as create_source_app
from tests.journalist_iface.conftest import HUB, TENANT, Demo
from tests.journalist_iface.test_api import Api, api_login
from tests.source_iface.conftest import GOOD_ANSWERS, Reporter
from tests.support import short_tempdir
from tests.workstation.helpers import run
from wbs.bundle import write_bundle
from wbs.casework import post_reply
from wbs.context import Context
from wbs.domain import CaseStatus, EventKind, Role, SubmissionKind, TenantKind
from wbs.forwarding import SIGNATURE, linked_source_id, verify_signature
from wbs.models import Case, Event, Reply, Source, Submission, Tenant
from wbs.monitoring import dashboard
from wbs.tenants import (
    add_recipient_key,
    create_tenant,
    current_keys,
    get_tenant,
    recipient_keys,
)
from wbs.workdays import local_date

B, C = "pemkab-banyuasin", "pemkab-lahat"
B_NAME = "Pemerintah Kabupaten Banyuasin"
# Over the investigator interface's 256 KiB form limit: a real package passes the web form.
FILE = b"%PDF-1.4 kuitansi pembayaran fee proyek jalan" + bytes(range(256)) * 1600
A_REPLY = "Terima kasih, laporan Anda kami verifikasi."
B_REPLY = "Laporan Anda kini kami tangani di Inspektorat Banyuasin."
FOLLOW_UP = "Tambahan dari pelapor: kontraknya bernomor 027/XII/2026."
MESSAGE = "Saya punya foto serah terima uang."


def _gpg(home: Path, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--pinentry-mode", "loopback",
         "--passphrase", "", *args],
        input=data, capture_output=True, check=False,
    )


def decrypt(home: Path, ciphertext: bytes) -> bytes | None:
    """The plaintext (padding stripped) with ``home``'s keys, or None if they cannot."""
    done = _gpg(home, "--decrypt", data=ciphertext)
    return unframe(done.stdout)[0] if done.returncode == 0 else None


@dataclass
class World:
    homes: dict[str, Path]  # GnuPG homes, each with one tenant's secret key only
    source_app: Any


@pytest.fixture(scope="module")
def world(demo: Demo) -> Iterator[World]:
    roots: list[Path] = []
    homes: dict[str, Path] = {}
    try:
        with demo.inst.sessions() as session:
            for slug, name in ((B, B_NAME), (C, "Pemerintah Kabupaten Lahat")):
                tenant = create_tenant(
                    session, slug=slug, name=name, kind=TenantKind.PEMERINTAH_KABUPATEN,
                    province="Sumatera Selatan",
                )
                root = short_tempdir("fw-")
                roots.append(root)
                armored = make_workstation_key(root / "gnupg", f"{name} <{slug}@test.invalid>")
                add_recipient_key(session, demo.inst.keyring, tenant, armored)
                homes[slug] = root / "gnupg"
            session.commit()
            demo_fprs = {
                slug: [k.fingerprint for k in recipient_keys(session, get_tenant(session, slug))]
                for slug in (TENANT, HUB)
            }
        for slug, fprs in demo_fprs.items():
            root = short_tempdir("fw-")
            roots.append(root)
            (root / "gnupg").mkdir(mode=0o700)
            secret = _gpg(demo.workstation, "--export-secret-keys", *fprs).stdout
            assert _gpg(root / "gnupg", "--import", data=secret).returncode == 0
            homes[slug] = root / "gnupg"
        yield World(homes, create_source_app(demo.inst, testing=True))
    finally:
        for home in homes.values():
            kill_agent(home)
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


def workstation(world: World, slug: str) -> Path:
    """A workstation data folder whose GnuPG home holds ``slug``'s secret key only."""
    home = short_tempdir("fws-")
    shutil.copytree(world.homes[slug], home / "gnupg", ignore=shutil.ignore_patterns("S.*"))
    return home


@dataclass
class Filed:
    case_id: int
    number: str
    codename: str
    reporter: Reporter


def file_report(demo: Demo, world: World) -> Filed:
    """A report filed at A through the source interface, with a file, a reply from A and a
    follow-up from the reporter: every kind of item a case holds."""
    reporter = Reporter(world.source_app.test_client(), TENANT)
    codename = reporter.new_codename()
    sent = reporter.send_report(GOOD_ANSWERS, [("kuitansi.pdf", FILE)])
    assert sent.status_code == 302, sent.get_data(as_text=True)
    number = sent.location.rsplit("/", 1)[1]
    with demo.inst.sessions() as session:
        case = session.scalar(sa.select(Case).where(Case.registration_number == number))
        assert case is not None
        from wbs.context import Context

        post_reply(Context(demo.inst, session, get_tenant(session, TENANT)), case, A_REPLY)
        case_id = case.id
    assert reporter.send_follow_up(number, MESSAGE).status_code == 302
    return Filed(case_id, number, codename, reporter)


def import_bundle(demo: Demo, ws: Path, tenant: str, case_id: int, folder: Path) -> None:
    path = folder / f"bundle-{tenant}-{case_id}.zip"
    with demo.inst.sessions() as session, path.open("wb") as out:
        case = session.get(Case, case_id)
        assert case is not None
        write_bundle(demo.inst, session, get_tenant(session, tenant), [case], out)
    done = run(ws, "import", str(path))
    assert done.exit_code == 0, done.output


def key_list(api: Api, slug: str, folder: Path) -> Path:
    response = api.get("/api/v1/keys", query_string={"tenant": slug})
    assert response.status_code == 200, response.get_data(as_text=True)
    path = folder / f"keys-{slug}.json"
    path.write_bytes(response.get_data())
    return path


def make_package(ws: Path, number: str, to: str, keys: Path, output: Path) -> Path:
    done = run(ws, "forward", number, "--to", to, "--keys", str(keys), "-o", str(output))
    assert done.exit_code == 0, done.output
    return output


def sign(home: Path, manifest: bytes) -> bytes:
    """A detached signature over ``manifest`` by the (one) secret key of ``home``."""
    done = _gpg(home, "--armor", "--detach-sign", data=manifest)
    assert done.returncode == 0, done.stderr
    return done.stdout


def rewrite(
    package: Path, target: Path, signer: Path | None = None, **changes: object
) -> Path:
    """The package with its manifest changed (the items untouched), signed again by the key
    in ``signer`` (a GnuPG home); without one the old signature stays, over other bytes."""
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(target, "w") as out:
        manifest = json.loads(source.read("manifest.json"))
        manifest.update(changes)
        document = json.dumps(manifest).encode()
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "manifest.json":
                data = document
            elif info.filename == SIGNATURE and signer is not None:
                data = sign(signer, document)
            out.writestr(info, data)
    return target


def unsigned(package: Path, target: Path) -> Path:
    """The package without its signature."""
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            if info.filename != SIGNATURE:
                out.writestr(info, source.read(info))
    return target


def upload(api: Api, case_id: int, package: Path) -> Any:
    return api.post(
        f"/api/v1/cases/{case_id}/forward", data=package.read_bytes(),
        content_type="application/zip",
    )


def snapshot(demo: Demo, case_id: int) -> tuple[Any, ...]:
    """Everything a forwarding could change: the rows of every kind, the stored files, the
    origin's status and link."""
    with demo.inst.sessions() as session:
        counts = [
            session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Case, Submission, Reply, Source)
        ]
        # Case entries of the log (making an account logs one too, about no case).
        counts.append(
            session.scalar(sa.select(sa.func.count(Event.id)).where(Event.case_id.isnot(None)))
        )
        case = session.get(Case, case_id)
        assert case is not None
        state = (case.status, case.linked_to_case_id)
    files = sorted(p.name for p in demo.inst.store.root.rglob("*") if p.is_file())
    return counts, state, files


def test_a_forwards_to_b_with_real_keys_and_the_reporter_keeps_one_codename(
    demo: Demo, world: World, tmp_path: Path
) -> None:
    filed = file_report(demo, world)
    a_ws, b_ws = workstation(world, TENANT), workstation(world, B)
    try:
        import_bundle(demo, a_ws, TENANT, filed.case_id, tmp_path)
        a_api = api_login(demo, TENANT)
        package = make_package(
            a_ws, filed.number, B, key_list(a_api, B, tmp_path), tmp_path / "paket.zip"
        )
        with zipfile.ZipFile(package) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            assert SIGNATURE in archive.namelist()
        assert manifest["format"] == "peluit-forward/2"
        assert sorted(item["kind"] for item in manifest["items"]) == [
            "file", "form", "message", "reply"
        ]
        before = snapshot(demo, filed.case_id)

        # Tenant C cannot forward A's case: it is not C's (404, nothing stored).
        c_api = api_login(demo, C)
        assert upload(c_api, filed.case_id, package).status_code == 404
        assert snapshot(demo, filed.case_id) == before

        now = dt.datetime.now(dt.UTC)
        with time_machine.travel(now, tick=False):
            done = upload(a_api, filed.case_id, package)
            assert done.status_code == 201, done.get_data(as_text=True)
            body = done.get_json()
            assert body["status"] == "diteruskan"
            assert body["forwarded_to"]["tenant"] == B
            linked_number = body["forwarded_to"]["registration_number"]
            with demo.inst.sessions() as session:
                origin = session.get(Case, filed.case_id)
                linked = session.scalar(
                    sa.select(Case).where(Case.registration_number == linked_number)
                )
                assert origin is not None and linked is not None
                b = get_tenant(session, B)
                # Its own number and deadlines, counted in working days from the forwarding.
                assert linked.tenant_id == b.id and linked_number != filed.number
                assert B.upper() in linked_number
                today = local_date(now)
                assert linked.first_response_due == demo.inst.calendar.add_working_days(
                    today, b.first_response_days
                )
                assert linked.received_at.date() == today
                assert origin.status == CaseStatus.DITERUSKAN
                assert origin.linked_to_case_id == linked.id
                assert linked.linked_from_case_id == origin.id
                # KPK's dashboard counts it forwarded at A and received at B.
                lines = {line.slug: line for line in dashboard(
                    session, session.scalar(sa.select(Tenant).where(Tenant.is_hub)),
                    today=today).tenants}
                assert (lines[TENANT].forwarded, lines[TENANT].received) == (1, 0)
                assert (lines[B].forwarded, lines[B].received) == (0, 1)
                origin_events = session.scalars(
                    sa.select(Event).where(Event.case_id == origin.id,
                                           Event.tenant_id == origin.tenant_id)
                ).all()
                forwarded = [e for e in origin_events if e.kind == EventKind.FORWARDED]
                assert len(forwarded) == 1 and B_NAME in (forwarded[0].note or "")
                assert forwarded[0].actor_investigator_id == a_api.account.id
                assert any(
                    e.kind == EventKind.STATUS_CHANGED and e.note == f"Diteruskan ke {B_NAME}"
                    for e in origin_events
                )
                linked_events = session.scalars(
                    sa.select(Event).where(Event.case_id == linked.id, Event.tenant_id == b.id)
                ).all()
                linked_kinds = {e.kind for e in linked_events}
                assert linked_kinds == {EventKind.CASE_CREATED, EventKind.FORWARD_RECEIVED}
                # The receiving side records which of A's keys signed the package.
                received = next(
                    e for e in linked_events if e.kind == EventKind.FORWARD_RECEIVED
                )
                a_keys = [
                    k.fingerprint
                    for k in recipient_keys(session, get_tenant(session, TENANT))
                ]
                signer = [fpr for fpr in a_keys if fpr in (received.note or "")]
                assert len(signer) == 1, received.note
                # The linked source: B's own row, the reporter's reply PUBLIC key only.
                source = session.get(Source, linked.source_id)
                origin_source = session.get(Source, origin.source_id)
                assert source is not None and origin_source is not None
                assert source.tenant_id == b.id and source.reply_secret_key == ""
                assert source.reply_fingerprint == origin_source.reply_fingerprint
                assert source.id == linked_source_id(origin_source.id, b)
                linked_id = linked.id
                stored = [(s.kind, s.store_path) for s in linked.submissions] + [
                    ("reply", r.store_path) for r in linked.replies
                ]

        # The monitor sees it in the table of reports handed on and received.
        from tests.journalist_iface.conftest import logged_in

        page = logged_in(demo, HUB, Role.PEMANTAU_KPK).get("/pemantauan").get_data(as_text=True)
        for slug, cells in ((TENANT, ["1", "0", "0", "0"]), (B, ["0", "0", "0", "1"])):
            row = re.search(rf'<tr id="handoff-{slug}">(.*?)</tr>', page, re.S)
            assert row is not None, slug
            assert re.findall(r'<td class="num">([^<]*)</td>', row.group(1)) == cells

        # Every forwarded item decrypts with B's key, and with neither A's nor C's.
        texts = {}
        for kind, path in stored:
            ciphertext = demo.inst.store.resolve(path).read_bytes()
            plain = decrypt(world.homes[B], ciphertext)
            assert plain is not None, kind
            assert decrypt(world.homes[TENANT], ciphertext) is None, kind
            assert decrypt(world.homes[C], ciphertext) is None, kind
            assert decrypt(world.homes[HUB], ciphertext) is None, kind
            texts[str(kind)] = plain
        assert json.loads(texts["form"])["apa"] == GOOD_ANSWERS["apa"]
        assert texts["file"] == FILE
        assert texts["message"].decode() == MESSAGE
        assert texts["reply"].decode() == A_REPLY

        # B's workstation imports B's bundle and decrypts the whole case with B's key.
        import_bundle(demo, b_ws, B, linked_id, tmp_path)
        assert run(b_ws, "decrypt", linked_number).exit_code == 0
        decrypted = b_ws / "cases" / B / linked_number / "decrypted"
        assert FILE in [p.read_bytes() for p in decrypted.iterdir()]
        # B replies with the workstation's reply flow; the server takes it as B's reply.
        replied = run(b_ws, "reply", linked_number, "--message", B_REPLY)
        assert replied.exit_code == 0, replied.output
        ciphertext = next((b_ws / "outbox").iterdir()).read_bytes()
        b_api = api_login(demo, B)
        stored_reply = b_api.post(
            f"/api/v1/cases/{linked_id}/replies", data=ciphertext,
            content_type="application/pgp-encrypted",
        )
        assert stored_reply.status_code == 201, stored_reply.get_data(as_text=True)

        # The reporter logs in at A's site with the same codename: B handles it, B's reply
        # is there, in words.
        reporter = Reporter(world.source_app.test_client(), TENANT)
        assert reporter.login(filed.codename).status_code == 302
        page = reporter.get("/pengaduan").get_data(as_text=True)
        assert B_NAME in page and B_REPLY in page and A_REPLY in page
        assert "dilimpahkan kepada" in page
        assert _kpk_answer(page) == "Tidak"  # neither A nor B shares it with KPK
        # The follow-up reaches B: stored in B's case, encrypted to B's key (not A's).
        assert reporter.send_follow_up(filed.number, FOLLOW_UP).status_code == 302
        with demo.inst.sessions() as session:
            linked = session.get(Case, linked_id)
            origin = session.get(Case, filed.case_id)
            assert linked is not None and origin is not None
            messages = [s for s in linked.submissions if s.kind == SubmissionKind.MESSAGE]
            assert len(messages) == 2 and linked.unread
            newest = demo.inst.store.resolve(messages[-1].store_path).read_bytes()
            assert len([s for s in origin.submissions if s.kind == SubmissionKind.MESSAGE]) == 1
        assert decrypt(world.homes[B], newest) == FOLLOW_UP.encode()
        assert decrypt(world.homes[TENANT], newest) is None

        # Tenant C sees nothing of either case.
        for case_id in (filed.case_id, linked_id):
            assert c_api.get(f"/api/v1/cases/{case_id}").status_code == 404
        listed = {case["id"] for case in c_api.get("/api/v1/cases").get_json()["cases"]}
        assert not listed & {filed.case_id, linked_id}
        # And the same package again is a replay: refused, nothing stored.
        again = snapshot(demo, filed.case_id)
        replay = upload(a_api, filed.case_id, package)
        assert replay.status_code == 409 and replay.get_json()["error"] == "forward_replayed"
        assert snapshot(demo, filed.case_id) == again
        # A forwards no more: the case is handled by B now.
        fresh = make_package(a_ws, filed.number, B, key_list(a_api, B, tmp_path),
                             tmp_path / "lagi.zip")
        handled = upload(a_api, filed.case_id, fresh)
        assert handled.status_code == 409
        assert handled.get_json()["error"] == "forward_not_handler"
        assert snapshot(demo, filed.case_id) == again
    finally:
        for home in (a_ws, b_ws):
            kill_agent(home / "gnupg")
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def prepared(demo: Demo, world: World, tmp_path: Path) -> Iterator[tuple[Filed, Path, Api, Path]]:
    """A report at A, A's workstation with it imported, B's key list, a good package."""
    filed = file_report(demo, world)
    ws = workstation(world, TENANT)
    try:
        import_bundle(demo, ws, TENANT, filed.case_id, tmp_path)
        api = api_login(demo, TENANT)
        keys = key_list(api, B, tmp_path)
        package = make_package(ws, filed.number, B, keys, tmp_path / "paket.zip")
        yield filed, ws, api, package
    finally:
        kill_agent(ws / "gnupg")
        shutil.rmtree(ws, ignore_errors=True)


def refused(demo: Demo, api: Api, filed: Filed, package: Path, status: int, code: str) -> str:
    before = snapshot(demo, filed.case_id)
    response = upload(api, filed.case_id, package)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"] == code
    assert snapshot(demo, filed.case_id) == before
    return str(response.get_json()["message"])


def test_a_package_encrypted_to_another_tenants_keys_is_refused(
    demo: Demo, world: World, prepared: tuple[Filed, Path, Api, Path], tmp_path: Path
) -> None:
    filed, ws, api, _package = prepared
    for_c = make_package(ws, filed.number, C, key_list(api, C, tmp_path), tmp_path / "c.zip")
    wrong = rewrite(for_c, tmp_path / "wrong.zip", world.homes[TENANT], to_tenant=B)
    message = refused(demo, api, filed, wrong, 400, "forward_wrong_keys")
    with demo.inst.sessions() as session:
        b_key = recipient_keys(session, get_tenant(session, B))[0].fingerprint
    assert b_key in message


def test_a_package_encrypted_to_too_few_keys_is_refused(
    demo: Demo, world: World, prepared: tuple[Filed, Path, Api, Path], tmp_path: Path
) -> None:
    filed, _ws, api, package = prepared
    # B adds a second key after the package was made: the package lacks it.
    home = short_tempdir("fw2-")
    try:
        armored = make_workstation_key(home / "gnupg", "Banyuasin tim 2 <b2@test.invalid>")
        with demo.inst.sessions() as session:
            key = add_recipient_key(session, demo.inst.keyring, get_tenant(session, B), armored)
            session.commit()
            second = key.fingerprint
        try:
            message = refused(demo, api, filed, package, 400, "forward_wrong_keys")
            assert second in message
        finally:
            with demo.inst.sessions() as session:
                from wbs.tenants import revoke_recipient_key

                revoke_recipient_key(session, get_tenant(session, B), second)
                session.commit()
    finally:
        kill_agent(home / "gnupg")
        shutil.rmtree(home, ignore_errors=True)


def test_a_package_for_a_tenant_that_does_not_exist_is_refused(
    demo: Demo, world: World, prepared: tuple[Filed, Path, Api, Path], tmp_path: Path
) -> None:
    filed, _ws, api, package = prepared
    nowhere = rewrite(
        package, tmp_path / "nowhere.zip", world.homes[TENANT], to_tenant="pemkab-atlantis"
    )
    refused(demo, api, filed, nowhere, 404, "forward_no_tenant")
    assert api.get("/api/v1/keys", query_string={"tenant": "pemkab-atlantis"}).status_code == 404


def test_a_package_for_another_case_or_missing_an_item_is_refused(
    demo: Demo, world: World, prepared: tuple[Filed, Path, Api, Path], tmp_path: Path
) -> None:
    filed, _ws, api, package = prepared
    other = file_report(demo, world)
    # Uploaded on another case of A: bound to its origin case, refused.
    before = snapshot(demo, other.case_id)
    response = upload(api, other.case_id, package)
    assert response.status_code == 400 and response.get_json()["error"] == "forward_other_case"
    assert snapshot(demo, other.case_id) == before
    # An item left out (the reply): not every item of the case.
    with zipfile.ZipFile(package) as source:
        manifest = json.loads(source.read("manifest.json"))
        originals = [item for item in manifest["items"] if item["kind"] != "reply"]
        # Renumbered copies (the originals keep their paths in the package, to read them).
        kept = [
            {**item, "path": f"items/{number:04d}-{item['kind']}.gpg"}
            for number, item in enumerate(originals, start=1)
        ]
        target = tmp_path / "short.zip"
        with zipfile.ZipFile(target, "w") as out:
            for item, original in zip(kept, originals, strict=True):
                out.writestr(item["path"], source.read(original["path"]))
            document = json.dumps({**manifest, "items": kept}).encode()
            out.writestr("manifest.json", document)
            out.writestr(SIGNATURE, sign(world.homes[TENANT], document))
    message = refused(demo, api, filed, target, 400, "forward_refused")
    assert "every item" in message
    # Not a package at all.
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert "not a forwarding package" in refused(demo, api, filed, junk, 400, "forward_refused")


def test_a_monitor_of_kpk_cannot_forward_another_tenants_case(
    demo: Demo, prepared: tuple[Filed, Path, Api, Path]
) -> None:
    filed, _ws, _api, package = prepared
    monitor = api_login(demo, HUB, Role.PEMANTAU_KPK)
    before = snapshot(demo, filed.case_id)
    assert upload(monitor, filed.case_id, package).status_code == 404
    assert snapshot(demo, filed.case_id) == before


def test_a_key_list_is_signed_and_a_forged_one_is_refused_by_the_workstation(
    demo: Demo, prepared: tuple[Filed, Path, Api, Path], tmp_path: Path
) -> None:
    filed, ws, api, _package = prepared
    keys = key_list(api, B, tmp_path)
    envelope = json.loads(keys.read_text())
    document = json.loads(envelope["document"])
    assert document["tenant"] == B and len(document["keys"]) >= 1
    # A key swapped in the document: the signature no longer holds.
    document["keys"][0]["fingerprint"] = "0" * 40
    envelope["document"] = json.dumps(document)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(envelope))
    done = run(ws, "forward", filed.number, "--to", B, "--keys", str(forged),
               "-o", str(tmp_path / "x.zip"))
    assert done.exit_code != 0 and "key list refused" in done.output
    assert not (tmp_path / "x.zip").exists()
    # A key list of another tenant than --to is refused too.
    wrong = run(ws, "forward", filed.number, "--to", C, "--keys", str(keys),
                "-o", str(tmp_path / "y.zip"))
    assert wrong.exit_code != 0 and not (tmp_path / "y.zip").exists()


def test_forwarding_outside_the_system_records_the_letter_and_nothing_leaves(
    demo: Demo, world: World
) -> None:
    filed = file_report(demo, world)
    api = api_login(demo, TENANT)
    url = f"/api/v1/cases/{filed.case_id}/forward-external"
    files = snapshot(demo, filed.case_id)[2]
    bad = api.post(url, json={"body": "interpol", "letter_number": "R-1"})
    assert bad.status_code == 400 and bad.get_json()["error"] == "forward_bad_body"
    empty = api.post(url, json={"body": "kejaksaan", "letter_number": " "})
    assert empty.status_code == 400 and empty.get_json()["error"] == "forward_bad_letter"
    done = api.post(url, json={"body": "kejaksaan", "letter_number": "R-045/PW.01/12/2026"})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["status"] == "diteruskan"
    with demo.inst.sessions() as session:
        notes = [
            e.note for e in session.scalars(
                sa.select(Event).where(Event.case_id == filed.case_id,
                                       Event.kind == EventKind.FORWARDED_EXTERNAL)
            )
        ]
    assert notes == ["Diteruskan ke Kejaksaan, surat nomor R-045/PW.01/12/2026"]
    assert snapshot(demo, filed.case_id)[2] == files  # no file was written or copied


def test_the_case_page_offers_forwarding_and_names_the_destination(
    demo: Demo, world: World, prepared: tuple[Filed, Path, Api, Path]
) -> None:
    from tests.journalist_iface.conftest import logged_in

    filed, _ws, _api, package = prepared
    assert package.stat().st_size > 256 * 1024  # the app's limit for a form without a file
    browser = logged_in(demo, TENANT)
    page_url = f"/pengaduan/{filed.case_id}"
    html = browser.get(page_url).get_data(as_text=True)
    assert f"/kunci/{B}" in html and "/limpahkan" in html
    # The forwarding section stands on its own, not inside the items' table (a browser would
    # move it out of a <thead>, but the markup would still be invalid).
    for table in re.findall(r"<table.*?</table>", html, flags=re.DOTALL):
        assert "<section" not in table and "f-forward" not in table
    assert browser.get(f"/kunci/{B}").status_code == 200
    response = browser.post(
        f"{page_url}/limpahkan", {"package": (io.BytesIO(package.read_bytes()), "paket.zip")},
        token_from=page_url, content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    html = browser.get(page_url).get_data(as_text=True)
    assert f"Diteruskan ke {B_NAME}" in html and "/limpahkan" not in html


def _kpk_answer(page: str) -> str:
    """What the pelapor's page answers to "Also sent to KPK"."""
    found = re.search(r"<dt>Juga dikirim ke KPK</dt><dd>(.*?)</dd>", page)
    assert found, page
    return found.group(1)


def _linked(demo: Demo, number: str) -> tuple[int, list[bytes]]:
    """A case by its registration number: its id and every stored item's ciphertext, the
    pelapor's first (in order), then the replies."""
    with demo.inst.sessions() as session:
        case = session.scalar(sa.select(Case).where(Case.registration_number == number))
        assert case is not None
        paths = [r.store_path for r in case.replies] + [s.store_path for s in case.submissions]
        return case.id, [demo.inst.store.resolve(path).read_bytes() for path in paths]


def _reply(demo: Demo, case_id: int, slug: str, text: str) -> None:
    from wbs.context import Context

    with demo.inst.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        post_reply(Context(demo.inst, session, get_tenant(session, slug)), case, text)


def test_a_forwards_to_kpk_and_kpk_to_b_and_the_reporter_follows_with_one_codename(
    demo: Demo, world: World, tmp_path: Path
) -> None:
    filed = file_report(demo, world)
    a_ws, kpk_ws = workstation(world, TENANT), workstation(world, HUB)
    others = {TENANT, HUB, B, C}
    try:
        # A to KPK.
        import_bundle(demo, a_ws, TENANT, filed.case_id, tmp_path)
        a_api = api_login(demo, TENANT)
        to_kpk = make_package(a_ws, filed.number, HUB, key_list(a_api, HUB, tmp_path),
                              tmp_path / "ke-kpk.zip")
        done = upload(a_api, filed.case_id, to_kpk)
        assert done.status_code == 201, done.get_data(as_text=True)
        kpk_number = done.get_json()["forwarded_to"]["registration_number"]
        kpk_id, items = _linked(demo, kpk_number)
        for ciphertext in items:
            assert decrypt(world.homes[HUB], ciphertext) is not None
            for slug in others - {HUB}:
                assert decrypt(world.homes[slug], ciphertext) is None, slug
        # KPK replies; the reporter reads it at A's site and answers; KPK decrypts it.
        _reply(demo, kpk_id, HUB, "KPK menelaah laporan Anda.")
        reporter = Reporter(world.source_app.test_client(), TENANT)
        assert reporter.login(filed.codename).status_code == 302
        page = reporter.get("/pengaduan").get_data(as_text=True)
        assert "Komisi Pemberantasan Korupsi" in page and "KPK menelaah laporan Anda." in page
        # The pelapor had not chosen KPK, but KPK reads the report now: the page says so.
        assert _kpk_answer(page) == "Ya: KPK juga dapat membaca pengaduan ini."
        assert reporter.send_follow_up(filed.number, FOLLOW_UP).status_code == 302
        kpk_id, items = _linked(demo, kpk_number)
        assert decrypt(world.homes[HUB], items[-1]) == FOLLOW_UP.encode()

        # KPK to B (outside KPK's jurisdiction: to the kabupaten's APIP).
        import_bundle(demo, kpk_ws, HUB, kpk_id, tmp_path)
        kpk_api = api_login(demo, HUB, Role.VERIFIKATOR)
        to_b = make_package(kpk_ws, kpk_number, B, key_list(kpk_api, B, tmp_path),
                            tmp_path / "ke-b.zip")
        done = upload(kpk_api, kpk_id, to_b)
        assert done.status_code == 201, done.get_data(as_text=True)
        b_number = done.get_json()["forwarded_to"]["registration_number"]
        b_id, items = _linked(demo, b_number)
        assert len(items) == 6  # form, file, A's message, A's reply, KPK's reply, follow-up
        for ciphertext in items:
            assert decrypt(world.homes[B], ciphertext) is not None
            for slug in others - {B}:
                assert decrypt(world.homes[slug], ciphertext) is None, slug
        _reply(demo, b_id, B, B_REPLY)
        page = reporter.get("/pengaduan").get_data(as_text=True)
        assert B_NAME in page and B_REPLY in page
        last = reporter.send_follow_up(filed.number, "Pesan terakhir untuk Banyuasin.")
        assert last.status_code == 302
        b_id, items = _linked(demo, b_number)
        newest = items[-1]
        assert decrypt(world.homes[B], newest) == b"Pesan terakhir untuk Banyuasin."
        assert decrypt(world.homes[HUB], newest) is None
        # C sees nothing at any step.
        c_api = api_login(demo, C)
        for case_id in (filed.case_id, kpk_id, b_id):
            assert c_api.get(f"/api/v1/cases/{case_id}").status_code == 404
    finally:
        for home in (a_ws, kpk_ws):
            kill_agent(home / "gnupg")
            shutil.rmtree(home, ignore_errors=True)


def test_an_item_changed_after_the_manifest_was_written_is_refused(
    demo: Demo, prepared: tuple[Filed, Path, Api, Path], tmp_path: Path
) -> None:
    filed, _ws, api, package = prepared
    target = tmp_path / "changed.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("-file.gpg"):
                data = data[:-1] + bytes([data[-1] ^ 1])  # same size, another hash
            out.writestr(info, data)
    assert "not the file the manifest describes" in refused(
        demo, api, filed, target, 400, "forward_refused"
    )


# --- the package's signature ---------------------------------------------------------------------


def test_an_unsigned_package_is_refused_and_nothing_is_stored(
    demo: Demo, prepared: tuple[Filed, Path, Api, Path], tmp_path: Path
) -> None:
    filed, _ws, api, package = prepared
    before_status = snapshot(demo, filed.case_id)[1]
    message = refused(demo, api, filed, unsigned(package, tmp_path / "bare.zip"), 400,
                      "forward_unsigned")
    assert "not signed" in message
    # An unsigned package of the first format (an older workstation) says so.
    old = unsigned(rewrite(package, tmp_path / "v1.zip", format="peluit-forward/1"),
                   tmp_path / "v1-bare.zip")
    assert "older workstation" in refused(demo, api, filed, old, 400, "forward_unsigned")
    # An empty signature is no signature.
    empty = tmp_path / "empty-sig.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(empty, "w") as out:
        for info in source.infolist():
            out.writestr(info, b"" if info.filename == SIGNATURE else source.read(info))
    refused(demo, api, filed, empty, 400, "forward_unsigned")
    # The case is still A's, as it was: the signed package goes through afterwards.
    assert snapshot(demo, filed.case_id)[1] == before_status
    assert before_status[0] != CaseStatus.DITERUSKAN and before_status[1] is None
    assert upload(api, filed.case_id, package).status_code == 201


def test_a_manifest_changed_after_signing_is_refused(
    demo: Demo, prepared: tuple[Filed, Path, Api, Path], tmp_path: Path
) -> None:
    filed, _ws, api, package = prepared
    # The same manifest, one field changed, the original signature kept: over other bytes.
    changed = rewrite(package, tmp_path / "changed.zip", to_kpk=True)
    message = refused(demo, api, filed, changed, 400, "forward_bad_signature")
    assert "BADSIG" in message
    # Even the same JSON written with other whitespace is other bytes.
    with zipfile.ZipFile(package) as source:
        same = json.loads(source.read("manifest.json"))
    respaced = rewrite(package, tmp_path / "respaced.zip", **same)
    refused(demo, api, filed, respaced, 400, "forward_bad_signature")


def test_a_package_signed_by_another_tenants_key_is_refused(
    demo: Demo, world: World, prepared: tuple[Filed, Path, Api, Path], tmp_path: Path
) -> None:
    filed, _ws, api, package = prepared
    for slug in (C, B):  # C's key; the receiver's own key does not vouch for A either
        forged = rewrite(package, tmp_path / f"by-{slug}.zip", world.homes[slug])
        message = refused(demo, api, filed, forged, 400, "forward_bad_signature")
        assert "NO_PUBKEY" in message, message
    # The unchanged manifest, re-signed by A's key: accepted (the refusal was the signer).
    again = rewrite(package, tmp_path / "by-a.zip", world.homes[TENANT])
    assert upload(api, filed.case_id, again).status_code == 201


def test_a_package_signed_by_a_revoked_key_is_refused(
    demo: Demo, prepared: tuple[Filed, Path, Api, Path], tmp_path: Path
) -> None:
    filed, _ws, api, package = prepared
    home = short_tempdir("fwr-")
    try:
        armored = make_workstation_key(home / "gnupg", "Sumsel lama <old@test.invalid>")
        with demo.inst.sessions() as session:
            tenant = get_tenant(session, TENANT)
            second = add_recipient_key(session, demo.inst.keyring, tenant, armored).fingerprint
            session.commit()
        by_second = rewrite(package, tmp_path / "by-second.zip", home / "gnupg")
        # While the key is current, the server takes its signature (and names it).
        with demo.inst.sessions() as session, zipfile.ZipFile(by_second) as archive:
            ctx = Context(demo.inst, session, get_tenant(session, TENANT))
            assert verify_signature(ctx, archive)[1] == second
        with demo.inst.sessions() as session:
            from wbs.tenants import revoke_recipient_key

            revoke_recipient_key(session, get_tenant(session, TENANT), second)
            session.commit()
        message = refused(demo, api, filed, by_second, 400, "forward_bad_signature")
        assert "NO_PUBKEY" in message
    finally:
        kill_agent(home / "gnupg")
        shutil.rmtree(home, ignore_errors=True)


def test_the_workstation_writes_no_package_when_it_cannot_sign(
    demo: Demo, world: World, prepared: tuple[Filed, Path, Api, Path], tmp_path: Path
) -> None:
    filed, ws, api, _package = prepared
    keys = key_list(api, B, tmp_path)
    with demo.inst.sessions() as session:
        b_key = recipient_keys(session, get_tenant(session, B))[0].fingerprint
    # B's public key is in the key list, never its secret half on A's workstation.
    target = tmp_path / "cannot-sign.zip"
    done = run(ws, "forward", filed.number, "--to", B, "--keys", str(keys), "-o", str(target),
               "--sign-with", b_key)
    assert done.exit_code != 0 and "could not be signed" in done.output, done.output
    assert not target.exists()
    # Named explicitly, A's own key signs.
    with demo.inst.sessions() as session:
        a_keys = [k.fingerprint for k in recipient_keys(session, get_tenant(session, TENANT))]
    own = tmp_path / "own.zip"
    done = run(ws, "forward", filed.number, "--to", B, "--keys", str(keys), "-o", str(own),
               "--sign-with", a_keys[0])
    assert done.exit_code == 0, done.output
    assert upload(api, filed.case_id, own).status_code == 201


def test_a_protected_key_signs_with_the_passphrase_forward_already_takes(
    demo: Demo, world: World, tmp_path: Path
) -> None:
    """A workstation whose only key is a passphrase-protected recipient key of A: the
    passphrase that decrypts the case signs the package too, with that key by default."""
    from workstation.gpg import WorkstationGpg

    passphrase = "lemari arsip inspektorat lantai dua"
    ws = short_tempdir("fwp-")
    gpg = WorkstationGpg(ws / "gnupg")
    protected = ""
    try:
        protected = gpg.generate_key("Sumsel tim 2 <tim2@test.invalid>", passphrase)
        public = gpg.export_public(protected)
        gpg.close()
        with demo.inst.sessions() as session:
            add_recipient_key(session, demo.inst.keyring, get_tenant(session, TENANT), public)
            session.commit()
        filed = file_report(demo, world)  # encrypted to the new key too
        import_bundle(demo, ws, TENANT, filed.case_id, tmp_path)
        api = api_login(demo, TENANT)
        keys = key_list(api, B, tmp_path)
        # No passphrase and no terminal: nothing is written.
        target = tmp_path / "no-passphrase.zip"
        done = run(ws, "forward", filed.number, "--to", B, "--keys", str(keys),
                   "-o", str(target))
        assert done.exit_code != 0 and not target.exists(), done.output
        secret = tmp_path / "passphrase.txt"
        secret.write_text(passphrase + "\n")
        target = tmp_path / "protected.zip"
        done = run(ws, "forward", filed.number, "--to", B, "--keys", str(keys),
                   "--passphrase-file", str(secret), "-o", str(target))
        assert done.exit_code == 0, done.output
        response = upload(api, filed.case_id, target)
        assert response.status_code == 201, response.get_data(as_text=True)
        linked_number = response.get_json()["forwarded_to"]["registration_number"]
        with demo.inst.sessions() as session:
            linked = session.scalar(
                sa.select(Case).where(Case.registration_number == linked_number)
            )
            assert linked is not None
            notes = [
                e.note for e in session.scalars(
                    sa.select(Event).where(Event.case_id == linked.id,
                                           Event.kind == EventKind.FORWARD_RECEIVED)
                )
            ]
        assert len(notes) == 1 and protected in (notes[0] or "")
    finally:
        with demo.inst.sessions() as session:
            from wbs.tenants import revoke_recipient_key

            tenant = get_tenant(session, TENANT)
            if any(k.fingerprint == protected for k in current_keys(session, tenant)):
                revoke_recipient_key(session, tenant, protected)
                session.commit()
        kill_agent(ws / "gnupg")
        shutil.rmtree(ws, ignore_errors=True)


def test_the_signature_refusals_speak_both_languages_on_the_case_page(
    demo: Demo, prepared: tuple[Filed, Path, Api, Path], tmp_path: Path
) -> None:
    from flask_babel import force_locale

    from journalist_iface import refusals
    from tests.journalist_iface.conftest import logged_in
    from wbs.casework import Refusal

    for code in ("forward_unsigned", "forward_bad_signature"):
        refusal = Refusal(code, "English message", reason="BADSIG")
        with demo.app.test_request_context(), force_locale("id"):
            indonesian = refusals.message(refusal, "PLT-X-1")
        with demo.app.test_request_context(), force_locale("en"):
            english = refusals.message(refusal, "PLT-X-1")
        assert "PLT-X-1" in indonesian and "PLT-X-1" in english
        assert indonesian != english and "English message" not in (indonesian, english)
    filed, _ws, _api, package = prepared
    browser = logged_in(demo, TENANT)
    page_url = f"/pengaduan/{filed.case_id}"
    before = snapshot(demo, filed.case_id)
    bare = unsigned(package, tmp_path / "bare.zip").read_bytes()
    response = browser.post(
        f"{page_url}/limpahkan", {"package": (io.BytesIO(bare), "paket.zip")},
        token_from=page_url, content_type="multipart/form-data", follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "tidak ditandatangani" in html and filed.number in html, html[:2000]
    assert snapshot(demo, filed.case_id) == before


def test_a_forwarding_that_fails_half_way_leaves_both_cases_as_they_were(
    demo: Demo, prepared: tuple[Filed, Path, Api, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every item checked and stored, then the database fails while opening the linked case:
    the rows roll back, the stored ciphertext goes with them, the origin is unchanged."""
    filed, _ws, api, package = prepared
    before = snapshot(demo, filed.case_id)
    stored_before = sorted(p.name for p in demo.inst.store.root.rglob("*") if p.is_file())

    def broken(*_args: object, **_kwargs: object) -> Case:
        raise RuntimeError("the database went away")

    monkeypatch.setattr("wbs.forwarding.new_case_row", broken)
    with demo.inst.sessions() as session:
        from wbs.context import Context
        from wbs.forwarding import accept_forward
        from wbs.models import Investigator

        account = session.get(Investigator, api.account.id)
        ctx = Context(demo.inst, session, get_tenant(session, TENANT), account)
        case = ctx.scope.get(Case, filed.case_id)
        assert case is not None
        with package.open("rb") as stream, pytest.raises(RuntimeError):
            accept_forward(ctx, case, stream)
    assert snapshot(demo, filed.case_id) == before
    assert sorted(p.name for p in demo.inst.store.root.rglob("*") if p.is_file()) == (
        stored_before
    )
    # And the same package still forwards once the database is back.
    monkeypatch.undo()
    done = upload(api, filed.case_id, package)
    assert done.status_code == 201, done.get_data(as_text=True)
