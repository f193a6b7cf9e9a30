"""Operator intake with real keys: a report typed on the workstation becomes a case on the
server without its plaintext passing through it, decrypts back on the workstation, and its
codename works on the reporter's side. Every refusal stores nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import DemoInstance
from tests.workstation.helpers import TENANT, export, kill_agent, run, workstation_home
from wbs.accounts import create_investigator
from wbs.casework import Refusal
from wbs.context import Context
from wbs.domain import Channel, EventKind, Role, SubmissionKind
from wbs.models import Case, Event, Investigator, RecipientKey, Source, utcnow
from wbs.operator_intake import accept_package
from wbs.sources import authenticate_source, source_cases
from wbs.tenants import add_recipient_key, current_recipients, get_tenant

HUB = "kpk"
ANSWERS = {
    "apa": "Pungutan liar pada pengurusan KTP elektronik di kecamatan",
    "siapa": "Petugas loket bernama Bapak Sutrisno",
    "kapan": "Oktober 2026",
    "dimana": "Kantor Kecamatan Ilir Barat",
    "bagaimana": "Warga diminta Rp100.000 agar KTP selesai hari itu",
    "berapa": "Rp100.000 per orang",
    "kronologi": "Pelapor menelepon unit pengaduan pada pagi hari.",
}
LETTER = b"%PDF-1.4 scan of the reporter's letter " + os.urandom(2000)


def _actor(demo: DemoInstance, tenant: str = TENANT, role: Role = Role.VERIFIKATOR) -> int:
    inst = demo.instance
    with inst.sessions() as session:
        name = f"op{role.value[:4]}{os.urandom(3).hex()}"
        account, _ = create_investigator(
            session, get_tenant(session, tenant), name, "Operator", role,
            settings=inst.auth_settings(),
        )
        session.commit()
        return account.id


def _keys(demo: DemoInstance, tenant: str = TENANT) -> list[str]:
    with demo.instance.sessions() as session:
        return current_recipients(session, get_tenant(session, tenant))


def _package(
    demo: DemoInstance, home: Path, tmp_path: Path, *, recipients: list[str] | None = None,
    tenant: str = TENANT, attach: bool = True, extra: tuple[str, ...] = (),
) -> Path:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(ANSWERS), encoding="utf-8")
    letter = tmp_path / "surat-pelapor.pdf"
    letter.write_bytes(LETTER)
    output = tmp_path / f"package-{os.urandom(4).hex()}.zip"
    args = ["intake", "--tenant", tenant, "--channel", "telepon", "--category", "pungutan_liar",
            "--mcp-area", "pelayanan_publik", "--answers", str(answers), "-o", str(output),
            *extra]
    for fpr in recipients if recipients is not None else _keys(demo, tenant):
        args += ["--recipient", fpr]
    if attach:
        args += ["--attach", str(letter)]
    made = run(home, *args)
    assert made.exit_code == 0, made.output
    return output


def _accept(demo: DemoInstance, actor_id: int, data: bytes, tenant: str = TENANT):  # type: ignore[no-untyped-def]
    inst = demo.instance
    with inst.sessions() as session:
        actor = session.get(Investigator, actor_id)
        ctx = Context(inst, session, get_tenant(session, tenant), actor)
        opened = accept_package(ctx, io.BytesIO(data))
        return opened.case.id, opened.case.registration_number, opened.codename


def _counts(demo: DemoInstance) -> tuple[int, int, int]:
    inst = demo.instance
    with inst.sessions() as session:
        cases = session.scalar(sa.select(sa.func.count()).select_from(Case))
        sources = session.scalar(sa.select(sa.func.count()).select_from(Source))
    files = sum(1 for _ in inst.store.items())
    return int(cases or 0), int(sources or 0), files


def test_an_intake_case_decrypts_on_the_workstation_and_its_codename_works(
    demo_any_db: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    demo = demo_any_db  # SQLite and PostgreSQL
    home = workstation_home(demo, ws_home)
    package = _package(demo, home, tmp_path)
    data = package.read_bytes()
    # Only ciphertext and coarse fields leave the workstation.
    for text in [*ANSWERS.values(), "surat-pelapor"]:
        assert text.encode() not in data
    assert LETTER[:40] not in data
    actor_id = _actor(demo)

    case_id, number, codename = _accept(demo, actor_id, data)

    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        case = session.get(Case, case_id)
        assert case is not None
        assert case.channel == Channel.TELEPON
        assert (case.category, case.mcp_area) == ("pungutan_liar", "pelayanan_publik")
        assert [s.kind for s in case.submissions] == [SubmissionKind.FORM, SubmissionKind.FILE]
        assert case.unread and not case.sent_to_kpk
        events = list(session.scalars(
            sa.select(Event).where(Event.case_id == case_id).order_by(Event.id)
        ))
        assert [e.kind for e in events] == [EventKind.CASE_CREATED, EventKind.OPERATOR_INTAKE]
        assert events[1].note == "telepon" and events[1].actor_investigator_id == actor_id
        # The items are stored exactly as the package carried them.
        with zipfile.ZipFile(package) as archive:
            assert inst.store.open(case.submissions[1].store_path).read() == archive.read(
                "items/02-file.gpg"
            )
        # The codename is the reporter's: it logs in and finds the case; it is stored nowhere.
        ctx = Context(inst, session, tenant)
        secrets = authenticate_source(ctx, codename)
        assert secrets is not None and secrets.source_id == case.source_id
        assert [c.registration_number for c in source_cases(ctx, secrets.source_id)] == [number]
        assert not any(
            codename in str(value)
            for source in session.scalars(sa.select(Source))
            for value in vars(source).values()
        )

    bundle = export(demo, [case_id], tmp_path / "b.zip")
    assert run(home, "import", str(bundle)).exit_code == 0
    read = run(home, "read", number)
    assert read.exit_code == 0, read.output
    assert ANSWERS["siapa"] in read.output
    folder = home / "cases" / TENANT / number / "decrypted"
    assert (folder / "surat-pelapor.pdf").read_bytes() == LETTER
    kill_agent(home)


def test_the_same_package_twice_opens_one_case(
    demo_any_db: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    demo = demo_any_db  # SQLite and PostgreSQL
    home = workstation_home(demo, ws_home)
    data = _package(demo, home, tmp_path, attach=False).read_bytes()
    actor_id = _actor(demo)
    _, number, _ = _accept(demo, actor_id, data)
    before = _counts(demo)
    with pytest.raises(Refusal) as refused:
        _accept(demo, actor_id, data)
    assert refused.value.code == "intake_replayed"
    assert refused.value.params["number"] == number
    assert _counts(demo) == before
    kill_agent(home)


def _refused(
    demo: DemoInstance, actor_id: int, data: bytes, code: str, tenant: str = TENANT
) -> Refusal:
    before = _counts(demo)
    with pytest.raises(Refusal) as refused:
        _accept(demo, actor_id, data, tenant)
    assert refused.value.code == code, refused.value
    # Nothing stored: no case, no source, no file.
    assert _counts(demo) == before
    for text in ANSWERS.values():
        assert text not in str(refused.value)
    return refused.value


def test_packages_for_other_keys_or_another_tenant_are_refused(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    home = workstation_home(demo, ws_home)
    tenant_keys, hub_keys = _keys(demo), _keys(demo, HUB)
    actor_id = _actor(demo)

    wrong = _package(demo, home, tmp_path, recipients=hub_keys).read_bytes()
    refusal = _refused(demo, actor_id, wrong, "intake_wrong_keys")
    assert tenant_keys[0] in str(refusal)

    extra = _package(demo, home, tmp_path, recipients=tenant_keys + hub_keys).read_bytes()
    _refused(demo, actor_id, extra, "intake_extra_keys")

    other = _package(demo, home, tmp_path, recipients=hub_keys, tenant=HUB).read_bytes()
    _refused(demo, actor_id, other, "intake_other_tenant")
    kill_agent(home)


def test_a_package_missing_one_of_two_current_keys_is_refused(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    home = workstation_home(demo, ws_home)
    first = _keys(demo)
    actor_id = _actor(demo)
    inst = demo.instance
    # A second workstation's key joins the tenant's current keys.
    second_home = tmp_path / "second"
    second_home.mkdir(mode=0o700)
    subprocess.run(
        ["gpg", "--homedir", str(second_home), "--batch", "--passphrase", "",
         "--quick-generate-key", "Kedua <kedua@demo.peluit.invalid>", "ed25519", "cert", "1y"],
        check=True, capture_output=True,
    )
    fpr = subprocess.run(
        ["gpg", "--homedir", str(second_home), "--with-colons", "--list-keys"],
        check=True, capture_output=True, text=True,
    ).stdout.split("fpr:::::::::")[1].split(":")[0]
    subprocess.run(
        ["gpg", "--homedir", str(second_home), "--batch", "--passphrase", "",
         "--quick-add-key", fpr, "cv25519", "encr", "1y"], check=True, capture_output=True,
    )
    armored = subprocess.run(
        ["gpg", "--homedir", str(second_home), "--armor", "--export", fpr],
        check=True, capture_output=True,
    ).stdout
    subprocess.run(["gpgconf", "--homedir", str(second_home), "--kill", "gpg-agent"], check=False)
    with inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        add_recipient_key(session, inst.keyring, tenant, armored.decode())
        session.commit()
    try:
        package = _package(demo, home, tmp_path, recipients=first, attach=False).read_bytes()
        refusal = _refused(demo, actor_id, package, "intake_wrong_keys")
        assert fpr in str(refusal)
        # With both keys (the second imported on the workstation) it is accepted.
        assert run(home, "keys", "import", str(_write(tmp_path / "k.asc", armored))).exit_code == 0
        both = _package(demo, home, tmp_path, recipients=[*first, fpr], attach=False).read_bytes()
        _accept(demo, actor_id, both)
    finally:
        with inst.sessions() as session:
            key = session.scalar(sa.select(RecipientKey).where(RecipientKey.fingerprint == fpr))
            assert key is not None
            key.revoked_at = utcnow()
            session.commit()
        kill_agent(home)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _rezip(source: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    """The package with its entries changed by ``change(name, data) -> data | None``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            data = change(info.filename, old.read(info))
            if data is not None:
                new.writestr(info.filename, data)
    return out.getvalue()


def _manifest_with(source: bytes, **fields: object) -> bytes:
    def change(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        return json.dumps({**json.loads(data), **fields}).encode()
    return _rezip(source, change)


def test_garbage_and_tampered_packages_are_refused(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    home = workstation_home(demo, ws_home)
    good = _package(demo, home, tmp_path).read_bytes()
    actor_id = _actor(demo)
    plain = subprocess.run(
        ["gpg", "--homedir", str(demo.workstation), "--batch", "--store"],
        input=b"plaintext report", capture_output=True, check=True,
    ).stdout
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(good)).read("manifest.json"))

    def swap_file(name: str, data: bytes) -> bytes:
        return plain if name == "items/02-file.gpg" else data

    unencrypted = _rezip(good, swap_file)
    unencrypted = _manifest_with(
        unencrypted,
        items=[manifest["items"][0], {**manifest["items"][1], "size": len(plain),
                                      "sha256": hashlib.sha256(plain).hexdigest()}],
    )
    flipped = _rezip(
        good, lambda n, d: d[:-1] + bytes([d[-1] ^ 1]) if n.endswith("file.gpg") else d
    )
    cases = {
        b"": "intake_refused",
        os.urandom(4096): "intake_refused",
        _rezip(good, lambda n, d: None if n == "manifest.json" else d): "intake_refused",
        _rezip(good, lambda n, d: None if n.endswith("file.gpg") else d): "intake_refused",
        flipped: "intake_refused",
        unencrypted: "intake_refused",
        _manifest_with(good, channel="situs"): "intake_refused",
        _manifest_with(good, channel="telegram"): "intake_refused",
        _manifest_with(good, category="bukan_kategori"): "intake_refused",
        _manifest_with(good, package_id="../../x"): "intake_refused",
        _manifest_with(good, format="peluit-intake/9"): "intake_refused",
        _manifest_with(good, extra="field"): "intake_refused",
    }
    for data, code in cases.items():
        _refused(demo, actor_id, data, code)
    # The untouched package is still accepted afterwards: the refusals left nothing behind.
    _accept(demo, actor_id, good)
    kill_agent(home)


def test_a_kpk_monitor_records_only_for_the_hub(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    home = workstation_home(demo, ws_home)
    monitor = _actor(demo, HUB, Role.PEMANTAU_KPK)
    package = _package(demo, home, tmp_path, recipients=_keys(demo, HUB), tenant=HUB)
    _, number, _ = _accept(demo, monitor, package.read_bytes(), HUB)
    assert number.startswith("PLT-KPK-")
    kill_agent(home)


def test_the_workstation_asks_for_the_answers_and_refuses_bad_input(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    home = workstation_home(demo, ws_home)
    keys = _keys(demo)
    base = ["intake", "--tenant", TENANT, "--category", "gratifikasi"]
    recipients = [arg for fpr in keys for arg in ("--recipient", fpr)]
    output = tmp_path / "asked.zip"
    typed = "\n".join(["Hadiah mobil untuk pejabat", "Kepala dinas", "Januari", "Palembang",
                       "Diserahkan di rumah", "", ""]) + "\n"
    asked = run(home, *base, "--channel", "surat", *recipients, "-o", str(output), input=typed)
    assert asked.exit_code == 0, asked.output
    with zipfile.ZipFile(output) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        form = archive.read("items/01-form.gpg")
    assert manifest["channel"] == "surat" and manifest["category"] == "gratifikasi"
    assert [item["kind"] for item in manifest["items"]] == ["form"]
    document = json.loads(demo.decrypt(form))
    assert document["format"] == "peluit-report/1"
    assert (document["apa"], document["siapa"]) == ("Hadiah mobil untuk pejabat", "Kepala dinas")

    refused = {
        "the drop box is no channel": [*base, "--channel", "situs", *recipients],
        "no recipient": [*base, "--channel", "sms"],
        "unknown key": [*base, "--channel", "sms", "--recipient", "A" * 40],
    }
    for why, args in refused.items():
        out = tmp_path / "refused.zip"
        result = run(home, *args, "-o", str(out), input=typed)
        assert result.exit_code != 0, why
        assert not out.exists(), why
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"siapa": "x"}), encoding="utf-8")
    no_apa = run(home, *base, "--channel", "sms", *recipients, "--answers", str(empty),
                 "-o", str(tmp_path / "no-apa.zip"))
    assert no_apa.exit_code == 1 and "apa" in no_apa.output
    assert not (tmp_path / "no-apa.zip").exists()
    # The encrypted items were staged in the workstation's folder and are gone again.
    assert not list(home.glob(".intake-*"))
    kill_agent(home)


def test_two_uploads_of_one_package_at_once_open_one_case(
    demo: DemoInstance, ws_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers that both checked before either committed: the unique index decides. The
    # second one's lookup is made to miss, as it would have in that race.
    home = workstation_home(demo, ws_home)
    data = _package(demo, home, tmp_path, attach=False).read_bytes()
    actor_id = _actor(demo)
    _accept(demo, actor_id, data)
    before = _counts(demo)
    inst = demo.instance
    with inst.sessions() as session:
        ctx = Context(inst, session, get_tenant(session, TENANT),
                      session.get(Investigator, actor_id))
        monkeypatch.setattr(session, "scalar", lambda *args, **kwargs: None)
        with pytest.raises(Refusal) as refused:
            accept_package(ctx, io.BytesIO(data))
    assert refused.value.code == "intake_replayed"
    assert "intake_package" in str(refused.value.__cause__)  # the index said no
    assert _counts(demo) == before
    kill_agent(home)
