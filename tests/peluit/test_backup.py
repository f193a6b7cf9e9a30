"""Backup and restore, with real gpg keys, a real reporter and a real workstation.

An instance takes a report and answers it; ``peluit backup`` seals it; the instance is wiped;
``peluit restore`` brings it back; and the reporter, the investigators and the workstation carry
on as if nothing happened. Every refused restore leaves the target exactly as it was.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crypto.backup import sealing_stream
from crypto.keyring import kill_agent
from peluit.cli import main
from source_iface import create_app
from tests.conftest import DemoInstance, open_demo
from tests.source_iface.conftest import GOOD_ANSWERS, Reporter
from tests.support import CHEAP_KDF, short_tempdir
from tests.workstation.helpers import TENANT, export, run, workstation_home
from wbs import backup as backups
from wbs import onion as onions
from wbs.casework import post_reply
from wbs.config import Config, load_config
from wbs.context import Context
from wbs.instance import Instance, init_instance, signer_for
from wbs.models import Case
from wbs.tenants import get_tenant

REPLY = "Terima kasih, laporan Anda sedang kami verifikasi."
SOURCE_TOML = "first_response_days = 5\n"
AFTER = "Setelah pemulihan: mohon kirim bukti tambahan."


# --- keys and instances -------------------------------------------------------------------------


def _gpg(home: Path, *args: str, data: bytes = b"", check: bool = True) -> bytes:
    done = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
        input=data, capture_output=True, check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def _make_backup_key(home: Path) -> tuple[str, bytes]:
    """An operators' backup key: ed25519 primary, cv25519 encryption subkey, no passphrase."""
    _gpg(home, "--passphrase", "", "--quick-gen-key", "Operator backup", "ed25519", "cert", "never")
    listing = _gpg(home, "--with-colons", "--list-keys").decode()
    fingerprint = re.search(r"^fpr:+([0-9A-F]{40}):", listing, re.M)
    assert fingerprint
    _gpg(home, "--passphrase", "", "--quick-add-key", fingerprint.group(1), "cv25519", "encr",
         "never")
    return fingerprint.group(1), _gpg(home, "--armor", "--export", fingerprint.group(1))


@dataclass
class BackupKey:
    home: Path  # holds the SECRET half: the operators' offline machine (or USB stick)
    public: Path
    fingerprint: str


@pytest.fixture(scope="module")
def backup_keys() -> Iterator[tuple[BackupKey, BackupKey]]:
    """The operators' backup key, and another one that is not this instance's."""
    made = []
    for name in ("bk-", "bkx-"):
        home = short_tempdir(name)
        fingerprint, public = _make_backup_key(home)
        (home / "public.asc").write_bytes(public)
        made.append(BackupKey(home, home / "public.asc", fingerprint))
    yield made[0], made[1]
    for key in made:
        kill_agent(key.home)
        shutil.rmtree(key.home, ignore_errors=True)


@pytest.fixture
def ws_home() -> Iterator[Path]:
    """The workstation's data folder (short: gpg-agent's socket lives in <home>/gnupg)."""
    home = short_tempdir("bkw-")
    yield home
    kill_agent(home / "gnupg")
    shutil.rmtree(home, ignore_errors=True)


def _env(config: Config) -> dict[str, str]:
    return {
        "PELUIT_GNUPG_HOME": str(config.gnupg_home),
        "PELUIT_DATABASE_URL": config.database_url,
        "PELUIT_KDF_TIME_COST": str(CHEAP_KDF.time_cost),
        "PELUIT_KDF_MEMORY_KIB": str(CHEAP_KDF.memory_kib),
    }


def peluit(config: Config, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(
        main, ["--instance", str(config.instance_dir), *args], env=_env(config)
    )
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _config(instance_dir: Path, gnupg_home: Path, database_url: str | None = None) -> Config:
    env = {
        "PELUIT_GNUPG_HOME": str(gnupg_home),
        "PELUIT_KDF_TIME_COST": str(CHEAP_KDF.time_cost),
        "PELUIT_KDF_MEMORY_KIB": str(CHEAP_KDF.memory_kib),
    }
    if database_url:
        env["PELUIT_DATABASE_URL"] = database_url
    return load_config(env, instance_dir=instance_dir)


@dataclass
class Filed:
    codename: str
    case_id: int
    registration_number: str
    marker: str


def _file_a_report(inst: Instance) -> Filed:
    """A reporter files a report through the source interface; an investigator answers."""
    reporter = Reporter(create_app(inst, testing=True).test_client())
    codename = reporter.new_codename()
    marker = "PENANDA-" + os.urandom(8).hex()
    answers = dict(GOOD_ANSWERS, apa=GOOD_ANSWERS["apa"] + " " + marker)
    sent = reporter.send_report(answers, [("bukti.txt", f"bukti {marker}".encode())])
    assert sent.status_code == 302
    with inst.sessions() as session:
        case_id = int(session.scalar(sa.select(sa.func.max(Case.id))) or 0)
        case = session.get(Case, case_id)
        assert case is not None
        tenant = get_tenant(session, TENANT)
        post_reply(Context(inst, session, tenant), case, REPLY)
        return Filed(codename, case_id, case.registration_number, marker)


def _archive_plaintext(archive: Path, key: BackupKey) -> bytes:
    """The tar inside the archive, as the operators could read it with the backup key."""
    return _gpg(key.home, "--skip-verify", "--decrypt", str(archive))


def _tree(*roots: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``roots``, to show that a refused restore changed nothing."""
    found: dict[str, bytes | None] = {}
    for root in roots:
        if not root.exists():
            found[str(root)] = None
            continue
        found[str(root)] = b"<dir>"
        for path in sorted(root.rglob("*")):
            if path.name.startswith("S.gpg-agent"):
                continue
            found[str(path)] = path.read_bytes() if path.is_file() else b"<dir>"
    return found


# --- the backup key -----------------------------------------------------------------------------


def test_backup_key_must_be_a_usable_public_key(
    make_config, backup_keys: tuple[BackupKey, BackupKey]  # type: ignore[no-untyped-def]
) -> None:
    config = make_config()
    key, _ = backup_keys
    secret = key.home / "secret.asc"
    secret.write_bytes(
        _gpg(key.home, "--armor", "--export-secret-keys", key.fingerprint)
    )
    refused = peluit(config, "backup-key", "import", str(secret), ok=False)
    assert refused.exit_code == 1 and "PRIVATE key" in refused.output
    assert not backups.backup_key_path(config).exists()
    no_key = peluit(config, "backup", str(config.instance_dir.parent), ok=False)
    assert no_key.exit_code == 1 and "backup-key import" in no_key.output

    done = peluit(config, "backup-key", "import", str(key.public))
    assert key.fingerprint in done.output
    assert backups.backup_key_path(config).stat().st_mode & 0o077 == 0
    peluit(config, "init")
    shown = peluit(config, "backup-key", "show").output
    with signer_for(config) as signer:
        assert f"backup key {key.fingerprint}" in shown
        assert f"signing key {signer.fingerprint}" in shown


# --- backup, wipe, restore, carry on ------------------------------------------------------------


def _fresh_postgres(server: str) -> str:
    name = f"restored_{os.getpid()}_{int(time.time() * 1000) % 10**6}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{server.rsplit('/', 1)[0]}/{name}"


@pytest.mark.postgres
@pytest.mark.slow
def test_backup_wipe_restore_and_everyone_carries_on(
    request: pytest.FixtureRequest,
    database_url: str,
    tmp_path: Path,
    backup_keys: tuple[BackupKey, BackupKey],
    ws_home: Path,
) -> None:
    key, _ = backup_keys
    gnupg = short_tempdir("bkg-")
    config = _config(tmp_path / "instance", gnupg, database_url)
    with open_demo(config) as demo:
        inst = demo.instance
        filed = _file_a_report(inst)
        tenant_onion = onions.assign_tenant_address(inst, TENANT).hostname
        investigator_onion = onions.investigator_key(inst).hostname
        fingerprint = inst.signing.fingerprint
        # The workstation pins the instance signing key with its first bundle.
        home = workstation_home(demo, ws_home)
        first = export(demo, [filed.case_id], tmp_path / "first.zip")
        assert run(home, "import", str(first)).exit_code == 0

        # The store is backed up as it is (an empty pool file too), crash debris excepted.
        (inst.store.root / "pool").mkdir()
        (inst.store.root / "pool" / "empty-1").write_bytes(b"")
        first_item = next(iter(inst.store.items()))
        debris = inst.store.resolve(first_item).with_suffix(".part")
        debris.write_bytes(b"half an upload")

        item_path = inst.store.resolve(first_item)
        os.utime(item_path, ns=(1_000_000_000, item_path.stat().st_mtime_ns))
        # The pool was empty (no publication yet): the writes made fresh inodes, marked by
        # hard links in .fresh/, which the archive does not carry twice.
        assert list((inst.store.root / ".fresh").iterdir())

        peluit(config, "backup-key", "import", str(key.public))
        out = peluit(config, "backup", str(tmp_path)).output.strip()
        # Read without leaving an access time.
        assert item_path.stat().st_atime_ns == 1_000_000_000
        line = re.fullmatch(r"(\S+)\t(\d+) bytes\tsha256 ([0-9a-f]{64})", out)
        assert line, out
        archive = Path(line.group(1))
        assert archive.parent == tmp_path and archive.name.endswith(backups.ARCHIVE_SUFFIX)
        assert archive.stat().st_size == int(line.group(2))
        assert archive.stat().st_mode & 0o077 == 0
        assert not list(tmp_path.glob("*.part"))

        # No plaintext of the report, and no codename, anywhere in the archive's plaintext.
        plain = _archive_plaintext(archive, key)
        assert filed.marker.encode() not in plain
        assert filed.codename.encode() not in plain
        with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
            members = tar.getnames()
            # No exact time of anything: every member is dated to a midnight WIB (17:00 UTC).
            assert {m.mtime % 86400 for m in tar.getmembers()} == {17 * 3600}
        assert not [m for m in members if m.startswith("store/.fresh/")]
        assert members[-1] == backups.MANIFEST
        assert any(m.startswith("store/") and m.endswith(".gpg") for m in members)
        assert "instance/secrets/source_id_pepper" in members
        assert any(m.startswith("instance/onion/tenants/") for m in members)
        assert any(m.startswith("instance/signing/private-keys-v1.d/") for m in members)
        assert "gnupg/pubring.kbx" in members
        assert not [m for m in members if m.endswith((".part", ".lock")) or "/S.gpg" in m]
        assert "store/pool/empty-1" in members

        # The machine is lost.
        inst.close()
        kill_agent(gnupg)
        kill_agent(config.instance_dir / "signing")
        shutil.rmtree(config.instance_dir)
        shutil.rmtree(gnupg)
        if config.database_url.startswith("sqlite"):
            backups.sqlite_path(config).unlink()
            target = config
        else:
            # A new machine, a new (empty) database on the server.
            server = request.getfixturevalue("postgres_server")
            target = _config(config.instance_dir, gnupg, _fresh_postgres(server))

        done = peluit(
            target, "restore", str(archive), "--signing-fingerprint", fingerprint,
            "--backup-key-home", str(key.home),
        )
        assert "restored" in done.output and "peluit store publish" in done.output
        assert not list(config.instance_dir.parent.glob(".instance.restore-*"))

        with Instance.open(target) as restored:
            # The same onion addresses: the onion keys came back.
            assert onions.tenant_key(restored, TENANT).hostname == tenant_onion
            assert onions.investigator_key(restored).hostname == investigator_onion
            assert restored.signing.fingerprint == fingerprint
            assert (restored.store.root / "pool" / "empty-1").read_bytes() == b""
            assert {
                restored.store.resolve(item).stat().st_mtime_ns % (86400 * 10**9)
                for item in restored.store.items()
            } == {17 * 3600 * 10**9}
            # The publication a restore asks for settles the restored store.
            assert "store published" in peluit(target, "store", "publish").output
            assert not debris.exists()
            after = DemoInstance(restored, demo.workstation)
            # The reporter logs in with the same codename and reads the reply sent before.
            reporter = Reporter(create_app(restored, testing=True).test_client())
            assert reporter.login(filed.codename).status_code == 302
            page = reporter.get("/pengaduan").get_data(as_text=True)
            assert filed.registration_number in page and REPLY in page
            # The investigators answer again, and the reporter reads that too.
            with restored.sessions() as session:
                case = session.get(Case, filed.case_id)
                assert case is not None
                tenant = get_tenant(session, TENANT)
                post_reply(Context(restored, session, tenant), case, AFTER)
            assert AFTER in reporter.get("/pengaduan").get_data(as_text=True)
            # A new report after the restore, and both cases decrypt on the workstation, whose
            # pinned signing key still matches (no --trust-new-signer).
            newer = _file_a_report(restored)
            bundle = export(after, [filed.case_id, newer.case_id], tmp_path / "after.zip")
            imported = run(home, "import", str(bundle))
            assert imported.exit_code == 0, imported.output
            for number in (filed.registration_number, newer.registration_number):
                decrypted = run(home, "decrypt", number)
                assert decrypted.exit_code == 0, decrypted.output
                folder = home / "cases" / TENANT / number / "decrypted"
                texts = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
                assert (filed.marker if number == filed.registration_number
                        else newer.marker).encode() in texts
            # Every stored item still decrypts with the workstation's key.
            for item in restored.store.items():
                assert after.decrypt(restored.store.resolve(item).read_bytes())


# --- refusals: nothing changes -------------------------------------------------------------------


@dataclass
class Prepared:
    config: Config
    fingerprint: str
    archive: Path
    crafted: Path  # where the hand-made archives go


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory, backup_keys: tuple[BackupKey, BackupKey]
) -> Iterator[Prepared]:
    """A demo instance (SQLite) with a report and a reply, and its backup."""
    key, _ = backup_keys
    root = tmp_path_factory.mktemp("backup-src")
    gnupg = short_tempdir("bks-")
    (root / "instance").mkdir(mode=0o700)
    (root / "instance" / "peluit.toml").write_text(SOURCE_TOML)
    config = _config(root / "instance", gnupg)
    try:
        with open_demo(config) as demo:
            _file_a_report(demo.instance)
            fingerprint = demo.instance.signing.fingerprint
            backups.import_backup_key(config, key.public.read_bytes())
            result = backups.write_backup(config, root)
        yield Prepared(config, fingerprint, result.path, root)
    finally:
        kill_agent(gnupg)
        kill_agent(config.instance_dir / "signing")
        shutil.rmtree(gnupg, ignore_errors=True)


def _reseal(prepared: Prepared, key: BackupKey, plain: bytes, name: str) -> Path:
    """A tar stream sealed exactly as ``peluit backup`` does, by the instance's own key."""
    path = prepared.crafted / name
    with (
        path.open("wb") as out,
        signer_for(prepared.config) as signer,
        sealing_stream(signer, key.public, out) as stream,
    ):
        stream.write(plain)
    return path


def _rewritten(prepared: Prepared, key: BackupKey, change: str) -> bytes:
    """The archive's tar with one member changed: the first store file, or the manifest."""
    out = io.BytesIO()
    changed = False
    with (
        tarfile.open(fileobj=io.BytesIO(_archive_plaintext(prepared.archive, key))) as source,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if data is not None and not changed:
                if change == "store" and member.name.startswith("store/"):
                    data = bytes([data[0] ^ 1]) + data[1:]
                    changed = True
                elif change == "revision" and member.name == backups.MANIFEST:
                    manifest = json.loads(data)
                    manifest["database"]["revision"] = "9999"
                    data = json.dumps(manifest).encode()
                    member.size = len(data)
                    changed = True
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    assert changed
    return out.getvalue()


def _with_entry(prepared: Prepared, key: BackupKey, name: str, data: bytes) -> bytes:
    """The archive's tar with one more regular file, ``name``, at its end."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(_archive_plaintext(prepared.archive, key))) as source,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member in source.getmembers():
            tar.addfile(member, source.extractfile(member) if member.isfile() else None)
        extra = tarfile.TarInfo(name)
        extra.size = len(data)
        tar.addfile(extra, io.BytesIO(data))
    return out.getvalue()


def _escaping(prepared: Prepared, key: BackupKey) -> Path:
    """Validly signed (by a thief of the signing key, say), with an entry that climbs out."""
    plain = _with_entry(prepared, key, "store/../../escaped.txt", b"outside\n")
    return _reseal(prepared, key, plain, "escaping.gpg")


def _twice(prepared: Prepared, key: BackupKey) -> Path:
    """Validly signed, with the manifest a second time (it would replace the first)."""
    plain = _with_entry(prepared, key, backups.MANIFEST, b"{}")
    return _reseal(prepared, key, plain, "twice.gpg")


def _tampered(prepared: Prepared, key: BackupKey) -> Path:
    """One store file changed, the manifest not: validly signed, but a hash mismatch."""
    return _reseal(prepared, key, _rewritten(prepared, key, "store"), "tampered.gpg")


def _from_a_newer_version(prepared: Prepared, key: BackupKey) -> Path:
    """A well-made archive whose schema this code does not know (a newer Peluit's)."""
    return _reseal(prepared, key, _rewritten(prepared, key, "revision"), "newer.gpg")


def _bad_signature(prepared: Prepared, key: BackupKey) -> Path:
    """Unwrapped offline, then one byte of the signed data changed: the signature is bad."""
    signed = bytearray(_gpg(key.home, "--unwrap", "--output", "-", str(prepared.archive)))
    # A byte of the data itself (the manifest's name in its tar header), not of the packet
    # framing around it, which would make the message unreadable rather than its signature bad.
    at = bytes(signed).rindex(backups.MANIFEST.encode())
    signed[at] ^= 0x20
    path = prepared.crafted / "badsig.sig"
    path.write_bytes(bytes(signed))
    return path


def _unsigned(prepared: Prepared, key: BackupKey) -> Path:
    """What anyone holding the PUBLIC backup key can make: the real tar, encrypted, unsigned."""
    path = prepared.crafted / "unsigned.gpg"
    path.write_bytes(
        _gpg(key.home, "--trust-model", "always", "--recipient-file", str(key.public),
             "--encrypt", data=_archive_plaintext(prepared.archive, key))
    )
    return path


def _truncated(prepared: Prepared, key: BackupKey) -> Path:
    path = prepared.crafted / "truncated.gpg"
    data = prepared.archive.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def _other_signer(prepared: Prepared, key: BackupKey) -> Path:
    """A well-made backup of ANOTHER instance (another signing key)."""
    gnupg = short_tempdir("bko-")
    config = _config(prepared.crafted / "other", gnupg)
    try:
        with open_demo(config):
            backups.import_backup_key(config, key.public.read_bytes())
            return backups.write_backup(config, prepared.crafted / "other.gpg").path
    finally:
        kill_agent(gnupg)
        kill_agent(config.instance_dir / "signing")
        shutil.rmtree(gnupg, ignore_errors=True)


REFUSALS = {
    "bad-signature": (_bad_signature, "signature is not valid (BADSIG"),
    "unsigned": (_unsigned, "does not carry exactly one good signature"),
    "another-signer": (_other_signer, "signed by key"),
    "tampered-file": (_tampered, "does not match its SHA-256"),
    "truncated": (_truncated, "damaged or truncated"),
    "newer-schema": (_from_a_newer_version, "revision '9999'"),
    "escaping-entry": (_escaping, "an entry outside it: 'store/../../escaped.txt'"),
    "entry-twice": (_twice, "holds 'manifest.json' twice"),
}


@pytest.fixture
def fresh_target(tmp_path: Path) -> Iterator[Config]:
    """A new machine: an instance folder holding only this machine's peluit.toml.

    Its keyring is inside the instance folder (the default layout), where the backed-up
    instance had it elsewhere: a restore puts each part where THIS machine's settings say.
    """
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "peluit.toml").write_text("codename_language = \"id\"\n")
    config = _config(tmp_path / "instance", tmp_path / "instance" / "gnupg")
    yield config
    kill_agent(config.gnupg_home)
    kill_agent(config.instance_dir / "signing")


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_bad_archive_is_refused_and_nothing_changes(
    case: str,
    prepared: Prepared,
    fresh_target: Config,
    backup_keys: tuple[BackupKey, BackupKey],
) -> None:
    key, _ = backup_keys
    craft, reason = REFUSALS[case]
    archive = craft(prepared, key)
    parent = fresh_target.instance_dir.parent
    before = _tree(parent, fresh_target.gnupg_home)
    # Encrypted archives are unwrapped with the backup key; an unwrapped one is given as is.
    unwrap = [] if archive.suffix == ".sig" else ["--backup-key-home", str(key.home)]
    refused = peluit(
        fresh_target, "restore", str(archive), "--signing-fingerprint", prepared.fingerprint,
        *unwrap, ok=False,
    )
    assert refused.exit_code == 1, refused.output
    assert reason in refused.output
    assert _tree(parent, fresh_target.gnupg_home) == before


def test_a_wrong_backup_key_or_a_wrong_fingerprint_is_refused(
    prepared: Prepared, fresh_target: Config, backup_keys: tuple[BackupKey, BackupKey]
) -> None:
    key, other = backup_keys
    parent = fresh_target.instance_dir.parent
    before = _tree(parent, fresh_target.gnupg_home)
    wrong_key = peluit(
        fresh_target, "restore", str(prepared.archive), "--signing-fingerprint",
        prepared.fingerprint, "--backup-key-home", str(other.home), ok=False,
    )
    assert "not encrypted to a backup key" in wrong_key.output
    wrong_signer = peluit(
        fresh_target, "restore", str(prepared.archive), "--signing-fingerprint",
        key.fingerprint, "--backup-key-home", str(key.home), ok=False,
    )
    assert f"not by the expected {key.fingerprint}" in wrong_signer.output
    still_encrypted = peluit(
        fresh_target, "restore", str(prepared.archive), "--signing-fingerprint",
        prepared.fingerprint, ok=False,
    )
    assert "still encrypted" in still_encrypted.output
    assert _tree(parent, fresh_target.gnupg_home) == before


def test_restore_from_an_archive_unwrapped_offline_and_never_over_an_instance(
    prepared: Prepared, fresh_target: Config, backup_keys: tuple[BackupKey, BackupKey]
) -> None:
    # The backup key never comes near the server: the operators unwrap on their offline
    # machine, and the server checks the signature and the hashes.
    key, _ = backup_keys
    unwrapped = prepared.crafted / "unwrapped.sig"
    unwrapped.write_bytes(_gpg(key.home, "--unwrap", "--output", "-", str(prepared.archive)))
    done = peluit(
        fresh_target, "restore", str(unwrapped), "--signing-fingerprint", prepared.fingerprint
    )
    assert "restored" in done.output
    # This machine's settings stay; the backup's are kept beside them to compare.
    assert (fresh_target.instance_dir / "peluit.toml").read_text() == 'codename_language = "id"\n'
    with Instance.open(fresh_target) as restored:
        assert restored.signing.fingerprint == prepared.fingerprint
        assert sorted(restored.store.items())
        # The public keyring landed where this machine keeps it, with the recipients' keys.
        assert restored.keyring.home == fresh_target.instance_dir / "gnupg"
        assert restored.keyring.fingerprints()
    assert (fresh_target.instance_dir / backups.CONFIG_FROM_BACKUP).read_text() == SOURCE_TOML

    # Now it is an instance: a second restore is refused, and changes nothing...
    parent = fresh_target.instance_dir.parent
    before = _tree(parent, fresh_target.gnupg_home)
    again = peluit(
        fresh_target, "restore", str(unwrapped), "--signing-fingerprint", prepared.fingerprint,
        ok=False,
    )
    assert "--force" in again.output
    assert _tree(parent, fresh_target.gnupg_home) == before
    # ...unless forced, and then the replaced instance is kept beside it.
    forced = peluit(
        fresh_target, "restore", str(unwrapped), "--signing-fingerprint", prepared.fingerprint,
        "--force",
    )
    kept = re.findall(r"kept in (\S+);", forced.output)
    assert kept and all(Path(p).exists() and ".before-restore-" in p for p in kept)
    with Instance.open(fresh_target) as restored:
        assert restored.signing.fingerprint == prepared.fingerprint


# --- a failure while putting things in place undoes every move ----------------------------------


@pytest.mark.postgres
def test_a_database_that_refuses_the_dump_leaves_everything_as_it_was(
    postgres_server: str, tmp_path: Path, backup_keys: tuple[BackupKey, BackupKey]
) -> None:
    key, _ = backup_keys
    gnupg = short_tempdir("bkpg-")
    source = _config(tmp_path / "src" / "instance", gnupg, _fresh_postgres(postgres_server))
    try:
        init_instance(source)
        backups.import_backup_key(source, key.public.read_bytes())
        archive = backups.write_backup(source, tmp_path).path
        with signer_for(source) as signer:
            fingerprint = signer.fingerprint
    finally:
        kill_agent(gnupg)
        kill_agent(source.instance_dir / "signing")
        shutil.rmtree(gnupg, ignore_errors=True)

    # A new machine whose database holds something in the way (not a Peluit instance).
    (tmp_path / "dst" / "instance").mkdir(parents=True)
    (tmp_path / "dst" / "instance" / "peluit.toml").write_text(SOURCE_TOML)
    target = _config(
        tmp_path / "dst" / "instance",
        tmp_path / "dst" / "keyring",
        _fresh_postgres(postgres_server),
    )
    engine = sa.create_engine(target.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE tenants (x integer)"))
    before = _tree(tmp_path / "dst")
    refused = peluit(
        target, "restore", str(archive), "--signing-fingerprint", fingerprint,
        "--backup-key-home", str(key.home), ok=False,
    )
    assert "the database refused the dump and is unchanged" in refused.output
    # The folders had been moved into place before the database load; every move is undone.
    assert _tree(tmp_path / "dst") == before
    assert set(sa.inspect(engine).get_table_names()) == {"tenants"}
    engine.dispose()


def test_a_failed_final_move_undoes_the_earlier_ones(
    prepared: Prepared,
    tmp_path: Path,
    backup_keys: tuple[BackupKey, BackupKey],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Mocked failure: as root no permission makes a rename fail, so the last one (the instance
    # folder) is made to fail here. The keyring and the database live outside the instance
    # folder, so they have been moved already and must go back.
    key, _ = backup_keys
    (tmp_path / "instance").mkdir()
    (tmp_path / "keyring").mkdir(mode=0o700)
    (tmp_path / "keyring" / "pubring.kbx").write_bytes(b"this machine's")
    target = _config(tmp_path / "instance", tmp_path / "keyring", f"sqlite:///{tmp_path}/p.db")
    before = _tree(tmp_path)
    real_rename = os.rename

    def rename(source: object, destination: object) -> None:
        # Only the move of the staged instance into place; undoing must still work.
        if Path(str(destination)) == target.instance_dir and ".restore-" in str(source):
            raise OSError(28, "No space left on device")
        real_rename(source, destination)  # type: ignore[arg-type]

    monkeypatch.setattr(backups.os, "rename", rename)
    refused = peluit(
        target, "restore", str(prepared.archive), "--signing-fingerprint", prepared.fingerprint,
        "--backup-key-home", str(key.home), ok=False,
    )
    assert "No space left on device" in refused.output
    assert _tree(tmp_path) == before


def test_an_expired_backup_key_is_refused_for_import_and_for_a_backup(
    make_config, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    home = short_tempdir("bke-")
    try:
        # Made in 2020 (gpg's faked clock) to expire after a year: expired today.
        _gpg(home, "--faked-system-time", "20200101T000000", "--passphrase", "",
             "--quick-gen-key", "Old backup", "ed25519", "cert,sign", "1y")
        listing = _gpg(home, "--with-colons", "--list-keys").decode()
        found = re.search(r"^fpr:+([0-9A-F]{40}):", listing, re.M)
        assert found
        _gpg(home, "--faked-system-time", "20200101T000000", "--passphrase", "",
             "--quick-add-key", found.group(1), "cv25519", "encr", "1y")
        expired = _gpg(home, "--armor", "--export", found.group(1))
    finally:
        kill_agent(home)
        shutil.rmtree(home, ignore_errors=True)
    config = make_config()
    (tmp_path / "old.asc").write_bytes(expired)
    refused = peluit(config, "backup-key", "import", str(tmp_path / "old.asc"), ok=False)
    assert refused.exit_code == 1 and "expired" in refused.output
    # One that expired after it was imported stops the backups, with the same answer.
    peluit(config, "init")
    backups.backup_key_path(config).write_bytes(expired)
    stopped = peluit(config, "backup", str(tmp_path), ok=False)
    assert stopped.exit_code == 1 and "expired" in stopped.output
    assert not list(tmp_path.glob("peluit-*"))
