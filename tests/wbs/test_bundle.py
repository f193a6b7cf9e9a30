"""Export bundles with real gpg: written on the server, verified and decrypted as a workstation."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from crypto.bundle import FORMAT_V1
from crypto.codenames import generate_codename
from crypto.padding import FRAMING_NONE, FRAMING_PADME
from crypto.signing import Signer
from tests.conftest import DemoInstance
from wbs.bundle import FORMAT, BundleError, read_bundle, write_bundle
from wbs.casework import KLARIFIKASI_LOG_NOTE, change_status
from wbs.context import Context
from wbs.domain import CATEGORY_LABELS, CaseStatus
from wbs.intake import Intake, ReportAnswers
from wbs.models import Case, Source
from wbs.sources import register_source
from wbs.tenancy import TenantIsolationError
from wbs.tenants import get_tenant

MARKER = "PENANDA-RAHASIA-b7d1"
ORIGINAL_NAME = "kontrak-rahasia-2026.pdf"


def answers() -> ReportAnswers:
    return ReportAnswers(
        category="suap_menyuap", mcp_area="pengadaan_barang_jasa",
        apa=f"Suap pengadaan {MARKER}", siapa="Kepala bidang X", kapan="Maret 2026",
        dimana="Dinas Kesehatan", bagaimana="Fee 10%", berapa="Rp 500 juta", kronologi="...",
    )


@dataclass
class Exported:
    demo: DemoInstance
    path: Path
    registration_numbers: list[str]
    # What each stored item decrypts to, by store path.
    plaintexts: dict[str, bytes]

    @property
    def fingerprint(self) -> str:
        return self.demo.instance.signing.fingerprint


def _upload(intake: Intake, name: str, data: bytes) -> None:
    sink = intake.open_file("file", name, {})
    for start in range(0, len(data), 65536):
        sink.write(data[start : start + 65536])
    sink.close()


def _make_cases(demo: DemoInstance, evidence: bytes) -> tuple[list[int], dict[str, bytes]]:
    """Two cases of pemprov-sumsel: a form + a file + a reply, and a form + a message."""
    inst = demo.instance
    plaintexts: dict[str, bytes] = {}
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        first = register_source(Context(inst, session, tenant), generate_codename())
        intake = Intake(Context(inst, session, tenant), first.source_id, to_kpk=False)
        _upload(intake, ORIGINAL_NAME, evidence)
        case1 = intake.new_case(answers())
        # Klarifikasi: the question goes to the pelapor as an encrypted reply.
        change_status(Context(inst, session, tenant), case1, CaseStatus.KLARIFIKASI,
                      "Mohon kirim salinan kontrak.")
        reply = case1.replies[-1]
        form1, file1 = case1.submissions
        plaintexts[form1.store_path] = answers().document()
        plaintexts[file1.store_path] = evidence
        plaintexts[reply.store_path] = b"Mohon kirim salinan kontrak."

        second = register_source(Context(inst, session, tenant), generate_codename())
        ctx = Context(inst, session, tenant)
        case2 = Intake(ctx, second.source_id, to_kpk=True).new_case(answers())
        Intake(Context(inst, session, tenant), second.source_id, to_kpk=True).follow_up(
            case2, f"Tambahan {MARKER}"
        )
        form2, message2 = case2.submissions
        plaintexts[form2.store_path] = answers().document()
        plaintexts[message2.store_path] = f"Tambahan {MARKER}".encode()
        return [case1.id, case2.id], plaintexts


def _export(demo: DemoInstance, case_ids: list[int], out: io.BufferedIOBase | Path) -> list[str]:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        cases = [session.get(Case, case_id) for case_id in case_ids]
        assert all(case is not None for case in cases)
        if isinstance(out, Path):
            with out.open("wb") as sink:
                write_bundle(inst, session, tenant, cases, sink)  # type: ignore[arg-type]
        else:
            write_bundle(inst, session, tenant, cases, out)  # type: ignore[arg-type]
        return [case.registration_number for case in cases if case is not None]


@pytest.fixture
def exported(demo: DemoInstance, tmp_path: Path) -> Exported:
    case_ids, plaintexts = _make_cases(demo, os.urandom(300_000) + MARKER.encode())
    path = tmp_path / "bundle.zip"
    regs = _export(demo, case_ids, path)
    return Exported(demo, path, regs, plaintexts)


# --- a good bundle -----------------------------------------------------------------------------


def test_bundle_verifies_and_every_item_decrypts_on_the_workstation(exported: Exported) -> None:
    inst = exported.demo.instance
    bundle = read_bundle(exported.path, exported.fingerprint)
    assert bundle.signing_fingerprint == exported.fingerprint
    assert bundle.tenant_slug == "pemprov-sumsel"
    assert [c.registration_number for c in bundle.cases] == exported.registration_numbers
    case1, case2 = bundle.cases
    assert [i.kind for i in case1.items] == ["form", "file", "reply"]
    assert [i.kind for i in case2.items] == ["form", "message"]
    assert case1.status == "klarifikasi" and not case1.sent_to_kpk and case2.sent_to_kpk
    assert [(e.kind, e.from_status, e.to_status, e.note) for e in case1.timeline] == [
        ("case_created", None, "baru", None),
        ("reply_added", None, None, None),
        ("status_changed", "baru", "klarifikasi", KLARIFIKASI_LOG_NOTE),
    ]

    with inst.sessions() as session:
        stored = {}
        for case_id_reg in exported.registration_numbers:
            case = session.query(Case).filter_by(registration_number=case_id_reg).one()
            source = session.get(Source, case.source_id)
            assert source is not None
            paths = [s.store_path for s in case.submissions] + [r.store_path for r in case.replies]
            stored[case_id_reg] = (paths, source.reply_public_key)

    decrypted = []
    for case in bundle.cases:
        paths, reply_key = stored[case.registration_number]
        key_out = io.BytesIO()
        bundle.copy_file(case.reply_key.path, key_out)
        assert key_out.getvalue().decode() == reply_key
        for item, store_path in zip(case.items, paths, strict=True):
            out = io.BytesIO()
            bundle.copy_file(item.path, out)
            ciphertext = out.getvalue()
            # The very ciphertext the store holds, and what it decrypts to.
            assert ciphertext == inst.store.open(store_path).read()
            plaintext = exported.demo.decrypt(ciphertext)
            assert plaintext == exported.plaintexts[store_path]
            decrypted.append(plaintext)
    assert len(decrypted) == 5


def test_bundle_holds_ciphertext_only_and_no_original_names(exported: Exported) -> None:
    raw = exported.path.read_bytes()
    assert MARKER.encode() not in raw
    assert ORIGINAL_NAME.encode() not in raw
    with zipfile.ZipFile(exported.path) as zf:
        names = zf.namelist()
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
        manifest = json.loads(zf.read("manifest.json"))
    reg1, reg2 = exported.registration_numbers
    assert sorted(names) == sorted([
        "manifest.json", "manifest.json.sig", "signing-key.asc",
        f"keys/{reg1}-reply.asc", f"keys/{reg2}-reply.asc",
        f"items/{reg1}/01-form.gpg", f"items/{reg1}/02-file.gpg", f"items/{reg1}/03-reply.gpg",
        f"items/{reg2}/01-form.gpg", f"items/{reg2}/02-message.gpg",
    ])
    assert manifest["format"] == FORMAT
    assert manifest["signing_key_fingerprint"] == exported.fingerprint


def test_manifest_signature_verifies_with_plain_gpg(exported: Exported) -> None:
    home = Path(tempfile.mkdtemp(prefix="bv-", dir="/tmp"))
    try:
        with zipfile.ZipFile(exported.path) as zf:
            zf.extract("manifest.json", home)
            zf.extract("manifest.json.sig", home)
            key = zf.read("signing-key.asc")
        subprocess.run(["gpg", "--homedir", str(home), "--batch", "--import"],
                       input=key, capture_output=True, check=True)
        checked = subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--status-fd", "1",
             "--verify", str(home / "manifest.json.sig"), str(home / "manifest.json")],
            capture_output=True, check=True,
        )
        assert f"VALIDSIG {exported.fingerprint}".encode() in checked.stdout
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_first_bundle_is_trusted_on_first_use(exported: Exported) -> None:
    assert read_bundle(exported.path, None).signing_fingerprint == exported.fingerprint


def test_bundle_can_be_written_to_a_pipe(demo: DemoInstance) -> None:
    case_ids, _ = _make_cases(demo, b"small evidence")

    class Pipe(io.RawIOBase):
        """A write-only stream that cannot seek or tell, like a socket or a pipe."""

        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:  # type: ignore[no-untyped-def, override]
            self.data.extend(b)
            return len(b)

    pipe = Pipe()
    _export(demo, case_ids, pipe)
    path = Path(tempfile.mkdtemp(prefix="bp-", dir="/tmp")) / "piped.zip"
    try:
        path.write_bytes(bytes(pipe.data))
        assert len(read_bundle(path, demo.instance.signing.fingerprint).cases) == 2
    finally:
        shutil.rmtree(path.parent)


# --- tampering ---------------------------------------------------------------------------------


def rebuild(
    src: Path,
    dst: Path,
    *,
    replace: dict[str, bytes] | None = None,
    drop: tuple[str, ...] = (),
    add: list[tuple[str, bytes]] | None = None,
) -> Path:
    """Copy a bundle entry by entry, as a tamperer would, with well-formed ZIP structure."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            zout.writestr(info.filename, replace.get(info.filename, zin.read(info.filename)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about a duplicate name; we mean it
            for name, data in add or []:
                zout.writestr(name, data)
    return dst


def flip(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x01
    return bytes(changed)


def refused(path: Path, trusted: str | None) -> str:
    with pytest.raises(BundleError) as caught:
        read_bundle(path, trusted)
    return caught.value.reason


def entry(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


def test_untouched_rebuild_still_verifies(exported: Exported, tmp_path: Path) -> None:
    # The tamper tests below are only meaningful if the rebuild itself changes nothing.
    copy = rebuild(exported.path, tmp_path / "copy.zip")
    assert len(read_bundle(copy, exported.fingerprint).cases) == 2


def test_one_byte_changed_in_an_item_is_refused(exported: Exported, tmp_path: Path) -> None:
    name = f"items/{exported.registration_numbers[0]}/02-file.gpg"
    tampered = rebuild(
        exported.path, tmp_path / "t.zip",
        replace={name: flip(entry(exported.path, name), 1000)},
    )
    assert refused(tampered, exported.fingerprint) == "item_mismatch"


def test_one_byte_flipped_in_the_file_is_refused(exported: Exported, tmp_path: Path) -> None:
    # Damage in place, ZIP checksums left wrong: a bad USB stick rather than an attacker.
    name = f"items/{exported.registration_numbers[0]}/02-file.gpg"
    with zipfile.ZipFile(exported.path) as zf:
        info = zf.getinfo(name)
        offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 500
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(flip(exported.path.read_bytes(), offset))
    assert refused(damaged, exported.fingerprint) in ("damaged", "item_mismatch")


def test_one_byte_changed_in_the_manifest_is_refused(exported: Exported, tmp_path: Path) -> None:
    manifest = entry(exported.path, "manifest.json")
    # Change a recorded size, the kind of edit that would hide a swapped file.
    position = manifest.index(b'"size": ') + len(b'"size": ')
    tampered = rebuild(
        exported.path, tmp_path / "t.zip",
        replace={"manifest.json": flip(manifest, position)},
    )
    assert refused(tampered, exported.fingerprint) == "bad_signature"
    assert refused(tampered, None) == "bad_signature"


def test_one_byte_changed_in_the_signature_is_refused(exported: Exported, tmp_path: Path) -> None:
    signature = entry(exported.path, "manifest.json.sig")
    lines = signature.split(b"\n")
    body = next(i for i, line in enumerate(lines) if len(line) == 64)  # a base64 line
    lines[body] = lines[body][:10] + (b"A" if lines[body][10:11] != b"A" else b"B") + lines[
        body
    ][11:]
    tampered = rebuild(
        exported.path, tmp_path / "t.zip", replace={"manifest.json.sig": b"\n".join(lines)}
    )
    assert refused(tampered, exported.fingerprint) == "bad_signature"


def test_added_file_is_refused(exported: Exported, tmp_path: Path) -> None:
    reg = exported.registration_numbers[0]
    tampered = rebuild(
        exported.path, tmp_path / "t.zip", add=[(f"items/{reg}/04-file.gpg", b"planted")]
    )
    assert refused(tampered, exported.fingerprint) == "unexpected_file"


def test_removed_file_is_refused(exported: Exported, tmp_path: Path) -> None:
    reg = exported.registration_numbers[1]
    tampered = rebuild(exported.path, tmp_path / "t.zip", drop=(f"items/{reg}/02-message.gpg",))
    assert refused(tampered, exported.fingerprint) == "missing_file"
    no_sig = rebuild(exported.path, tmp_path / "n.zip", drop=("manifest.json.sig",))
    assert refused(no_sig, exported.fingerprint) == "missing_file"


def test_duplicate_name_is_refused(exported: Exported, tmp_path: Path) -> None:
    name = f"items/{exported.registration_numbers[0]}/01-form.gpg"
    tampered = rebuild(exported.path, tmp_path / "t.zip", add=[(name, b"second copy")])
    assert refused(tampered, exported.fingerprint) == "duplicate_name"


@pytest.mark.parametrize(
    "name", ["items/../../etc/cron.d/x", "/etc/passwd", "items\\..\\x.gpg", "C:/x.gpg", "./a"]
)
def test_unsafe_paths_are_refused(exported: Exported, tmp_path: Path, name: str) -> None:
    tampered = rebuild(exported.path, tmp_path / "t.zip", add=[(name, b"x")])
    assert refused(tampered, exported.fingerprint) == "unsafe_path"


def test_manifest_signed_by_another_key(exported: Exported, tmp_path: Path) -> None:
    """An attacker re-signs a changed manifest with their own key and ships that key."""
    manifest = json.loads(entry(exported.path, "manifest.json"))
    manifest["cases"][0]["status"] = "selesai"  # the forgery closes a case
    with Signer(Path(tempfile.mkdtemp(prefix="bo-", dir="/tmp")) / "signing") as attacker:
        try:
            manifest["signing_key_fingerprint"] = attacker.ensure_key()
            forged = json.dumps(manifest).encode()
            replaced = rebuild(
                exported.path, tmp_path / "t.zip",
                replace={
                    "manifest.json": forged,
                    "manifest.json.sig": attacker.sign_detached(forged),
                    "signing-key.asc": attacker.public_key().encode(),
                },
            )
            # Against the pinned instance key: refused.
            assert refused(replaced, exported.fingerprint) == "untrusted_signer"
            # Without a pin the bundle is self-consistent, and says plainly whose key signed it,
            # which is what the workstation shows before it pins anything.
            unpinned = read_bundle(replaced, None)
            assert unpinned.signing_fingerprint == attacker.fingerprint != exported.fingerprint

            # The attacker's signature next to the instance's own key: not a good signature.
            mixed = rebuild(
                exported.path, tmp_path / "m.zip",
                replace={
                    "manifest.json": forged,
                    "manifest.json.sig": attacker.sign_detached(forged),
                },
            )
            assert refused(mixed, exported.fingerprint) == "bad_signature"
            assert refused(mixed, None) == "bad_signature"
        finally:
            shutil.rmtree(attacker.home.parent, ignore_errors=True)


def test_signed_manifest_naming_an_unsafe_path_is_refused(
    exported: Exported, tmp_path: Path
) -> None:
    # Even a manifest the instance key signed may not point outside the bundle's layout.
    inst = exported.demo.instance
    manifest = json.loads(entry(exported.path, "manifest.json"))
    manifest["cases"][0]["items"][0]["path"] = "items/../../evil.gpg"
    forged = json.dumps(manifest).encode()
    tampered = rebuild(
        exported.path, tmp_path / "t.zip",
        replace={"manifest.json": forged, "manifest.json.sig": inst.signing.sign_detached(forged)},
    )
    assert refused(tampered, exported.fingerprint) == "bad_manifest"


def _resigned(exported: Exported, tmp_path: Path, manifest: dict[str, object]) -> Path:
    forged = json.dumps(manifest).encode()
    signing = exported.demo.instance.signing
    return rebuild(
        exported.path, tmp_path / "t.zip",
        replace={"manifest.json": forged, "manifest.json.sig": signing.sign_detached(forged)},
    )


def test_every_item_states_its_padding_and_its_padded_size(exported: Exported) -> None:
    manifest = json.loads(entry(exported.path, "manifest.json"))
    items = [item for case in manifest["cases"] for item in case["items"]]
    assert {item["framing"] for item in items} == {FRAMING_PADME}
    bundle = read_bundle(exported.path, exported.fingerprint)
    assert {item.framing for case in bundle.cases for item in case.items} == {FRAMING_PADME}
    # Sizes are the padded ciphertext's: the forms, the message and the reply (all shorter
    # than 4 KiB) are one size per recipient set, whatever their text.
    sizes = {(case["registration_number"], item["kind"]): item["size"]
             for case in manifest["cases"] for item in case["items"]}
    reg1, reg2 = exported.registration_numbers
    assert sizes[reg2, "form"] == sizes[reg2, "message"]  # both to the instansi and KPK
    assert sizes[reg1, "form"] < sizes[reg1, "file"]


def test_a_bundle_of_the_first_format_reads_as_unpadded(
    exported: Exported, tmp_path: Path
) -> None:
    # Bundles written before padding existed say peluit-bundle/1 and name no framing.
    manifest = json.loads(entry(exported.path, "manifest.json"))
    manifest["format"] = FORMAT_V1
    for case in manifest["cases"]:
        for item in case["items"]:
            del item["framing"]
    old = read_bundle(_resigned(exported, tmp_path, manifest), exported.fingerprint)
    assert {item.framing for case in old.cases for item in case.items} == {FRAMING_NONE}


@pytest.mark.parametrize(
    ("version", "framing"),
    [(FORMAT, "padme/2"), (FORMAT, None), (FORMAT, 1), (FORMAT_V1, FRAMING_PADME)],
    ids=["unknown", "missing", "not_text", "in_the_first_format"],
)
def test_a_framing_the_reader_does_not_know_is_refused(
    exported: Exported, tmp_path: Path, version: str, framing: object
) -> None:
    manifest = json.loads(entry(exported.path, "manifest.json"))
    manifest["format"] = version
    item = manifest["cases"][0]["items"][1]
    if framing is None:
        del item["framing"]
    else:
        item["framing"] = framing
    assert refused(_resigned(exported, tmp_path, manifest), exported.fingerprint) == "bad_manifest"


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nothing.zip"
    path.write_bytes(b"PK\x03\x04 not really")
    assert refused(path, None) == "not_a_bundle"


def test_copy_rechecks_the_hash(exported: Exported, tmp_path: Path) -> None:
    bundle = read_bundle(exported.path, exported.fingerprint)
    item = bundle.cases[0].items[1]
    # The file is swapped after verification (it sits on a USB stick).
    rebuild(exported.path, tmp_path / "swap.zip",
            replace={item.path: flip(entry(exported.path, item.path), 7)})
    shutil.copy(tmp_path / "swap.zip", exported.path)
    with pytest.raises(BundleError) as caught:
        bundle.copy_file(item.path, io.BytesIO())
    assert caught.value.reason == "item_mismatch"


# --- the server side ---------------------------------------------------------------------------


def test_another_tenants_case_is_refused(demo: DemoInstance) -> None:
    inst = demo.instance
    with inst.sessions() as session:
        kpk = get_tenant(session, "kpk")
        sumsel = get_tenant(session, "pemprov-sumsel")
        source = register_source(Context(inst, session, kpk), generate_codename())
        ctx = Context(inst, session, kpk)
        kpk_case = Intake(ctx, source.source_id, to_kpk=False).new_case(answers())
        out = io.BytesIO()
        with pytest.raises(TenantIsolationError):
            write_bundle(inst, session, sumsel, [kpk_case], out)
        assert out.getvalue() == b""  # nothing of it was written


def test_item_that_changed_in_the_store_is_not_exported(demo: DemoInstance) -> None:
    case_ids, plaintexts = _make_cases(demo, b"evidence")
    store_path = next(iter(plaintexts))
    with demo.instance.store.resolve(store_path).open("ab") as damaged:
        damaged.write(b"\x00")
    with pytest.raises(BundleError) as caught:
        _export(demo, case_ids, io.BytesIO())
    assert caught.value.reason == "store_mismatch"


def _peak_growth(action: Callable[[], object]) -> int:
    process = psutil.Process()
    baseline = peak = process.memory_info().rss
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, process.memory_info().rss)
            stop.wait(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        action()
    finally:
        stop.set()
        watcher.join()
    return max(peak, process.memory_info().rss) - baseline


def test_big_item_is_streamed_not_loaded(demo: DemoInstance, tmp_path: Path) -> None:
    size = 50 * 1024 * 1024
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        source = register_source(Context(inst, session, tenant), generate_codename())
        intake = Intake(Context(inst, session, tenant), source.source_id, to_kpk=False)
        sink = intake.open_file("file", "video.mp4", {})
        block = os.urandom(1024 * 1024)
        for _ in range(size // len(block)):
            sink.write(block)
        sink.close()
        case_id = intake.new_case(answers()).id
    path = tmp_path / "big.zip"

    grown = _peak_growth(lambda: _export(demo, [case_id], path))
    assert path.stat().st_size > size
    assert grown < 20 * 1024 * 1024, f"writing grew RSS by {grown / 2**20:.1f} MiB"

    result = []
    grown = _peak_growth(lambda: result.append(read_bundle(path, inst.signing.fingerprint)))
    assert result[0].cases[0].items[1].size > size
    assert grown < 20 * 1024 * 1024, f"verifying grew RSS by {grown / 2**20:.1f} MiB"


def test_reader_needs_no_server_layer(exported: Exported) -> None:
    """The workstation imports the reader without SQLAlchemy, Flask or the wbs models."""
    script = (
        "import sys\n"
        "from wbs.bundle import read_bundle\n"
        f"bundle = read_bundle({str(exported.path)!r}, {exported.fingerprint!r})\n"
        "assert len(bundle.cases) == 2\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'flask', 'werkzeug', 'source_iface', 'journalist_iface')"
        " or m in ('wbs.models', 'wbs.tenancy', 'wbs.instance', 'wbs.db')]\n"
        "assert not loaded, loaded\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", script], cwd=root, check=True, capture_output=True)


def test_the_manifest_carries_the_indonesian_labels_of_its_codes(exported: Exported) -> None:
    bundle = read_bundle(exported.path, exported.fingerprint)
    case1 = bundle.cases[0]
    assert bundle.labels["status"][case1.status] == "Klarifikasi"
    assert bundle.labels["category"][case1.category] == CATEGORY_LABELS[case1.category]
    assert bundle.labels["event"]["case_created"] == "Pengaduan masuk"
    assert bundle.labels["item"]["reply"] == "Balasan"
    # Every code a case or its log can hold has its words.
    for case in bundle.cases:
        assert case.status in bundle.labels["status"]
        assert all(event.kind in bundle.labels["event"] for event in case.timeline)
        assert all(item.kind in bundle.labels["item"] for item in case.items)


@pytest.mark.parametrize(
    "labels", [["Baru"], {"status": ["Baru"]}, {"status": {"baru": 7}}, "Baru"]
)
def test_signed_labels_of_the_wrong_shape_are_refused(
    exported: Exported, tmp_path: Path, labels: object
) -> None:
    inst = exported.demo.instance
    manifest = json.loads(entry(exported.path, "manifest.json"))
    manifest["labels"] = labels
    forged = json.dumps(manifest).encode()
    tampered = rebuild(
        exported.path, tmp_path / "t.zip",
        replace={"manifest.json": forged, "manifest.json.sig": inst.signing.sign_detached(forged)},
    )
    assert refused(tampered, exported.fingerprint) == "bad_manifest"


def test_a_bundle_written_before_labels_travelled_still_reads(
    exported: Exported, tmp_path: Path
) -> None:
    inst = exported.demo.instance
    manifest = json.loads(entry(exported.path, "manifest.json"))
    del manifest["labels"]
    older = json.dumps(manifest).encode()
    rebuilt = rebuild(
        exported.path, tmp_path / "old.zip",
        replace={"manifest.json": older, "manifest.json.sig": inst.signing.sign_detached(older)},
    )
    bundle = read_bundle(rebuilt, exported.fingerprint)
    assert bundle.labels == {} and len(bundle.cases) == 2
