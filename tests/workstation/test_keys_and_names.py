"""Workstation keys with a passphrase, and hostile names inside real ciphertext."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from crypto import gpgrun
from tests.workstation.helpers import kill_agent, run
from workstation.names import place_without_overwrite, safe_filename, terminal_safe
from workstation.store import CaseRecord, ItemRecord, State, Workstation

PASSPHRASE = "kuda lari di padang 7"


def _generate(home: Path, tmp_path: Path) -> str:
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n", encoding="utf-8")
    result = run(
        home, "keys", "generate", "--name", "Tim WBS Uji", "--passphrase-file", str(secret)
    )
    assert result.exit_code == 0, result.output
    return result.output.split("created key ")[1].split()[0]


def _case_with_files(home: Path, fingerprint: str, names: list[str]) -> CaseRecord:
    """A case whose items are files encrypted to ``fingerprint`` under the given names."""
    ws = Workstation(home)
    case = CaseRecord(
        tenant="kpk", tenant_name="KPK", registration_number="PLT-KPK-2026-000001",
        bundle_created_at="2026-03-01T00:00:00+00:00", meta={"status": "baru"}, timeline=[],
        reply_fingerprint="B" * 40,
    )
    items_dir = ws.case_dir(case) / "items"
    items_dir.mkdir(parents=True)
    for number, name in enumerate(names):
        data = f"isi berkas {number}".encode()
        ciphertext = subprocess.run(
            ["gpg", "--homedir", str(home / "gnupg"), "--batch", "--trust-model", "always",
             "--recipient", fingerprint, "--set-filename", name, "--encrypt"],
            input=data, capture_output=True, check=True,
        ).stdout
        sha = hashlib.sha256(ciphertext).hexdigest()
        (items_dir / f"{sha}.gpg").write_bytes(ciphertext)
        case.items.append(
            ItemRecord(sha, "file", len(ciphertext), f"2026-03-01T00:00:0{number}+00:00")
        )
    ws.save(State(signer="A" * 40, cases={case.key: case}))
    return case


def test_keys_generate_list_export(ws_home: Path, tmp_path: Path) -> None:
    fingerprint = _generate(ws_home, tmp_path)
    listed = run(ws_home, "keys", "list")
    assert f"sec {fingerprint} Tim WBS Uji" in listed.output
    exported = run(ws_home, "keys", "export", fingerprint)
    assert exported.exit_code == 0
    assert "BEGIN PGP PUBLIC KEY BLOCK" in exported.output
    assert "PRIVATE" not in exported.output
    shown = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--show-keys"],
        input=exported.output.encode(), capture_output=True, check=True,
    ).stdout.decode()
    assert ":ed25519:" in shown and ":cv25519:" in shown


def test_the_advice_after_generate_is_the_command_that_writes_the_key_file(
    ws_home: Path, tmp_path: Path
) -> None:
    """The same words as the admin page and the README: keys export ... --output key.asc."""
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n", encoding="utf-8")
    made = run(ws_home, "keys", "generate", "--name", "Tim Saran", "--passphrase-file",
               str(secret))
    fingerprint = made.output.split("created key ")[1].split()[0]
    advice = f"peluit-workstation keys export {fingerprint} --output key.asc"
    assert advice in made.output
    target = tmp_path / "key.asc"
    written = run(ws_home, "keys", "export", fingerprint, "--output", str(target))
    assert written.exit_code == 0, written.output
    text = target.read_text(encoding="ascii")
    assert text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----") and "PRIVATE" not in text


def test_a_binary_public_key_is_imported(ws_home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    try:
        fingerprint = _generate(other, tmp_path)
        binary = subprocess.run(
            ["gpg", "--homedir", str(other / "gnupg"), "--batch", "--export", fingerprint],
            capture_output=True, check=True,
        ).stdout
    finally:
        kill_agent(other)
    assert binary[0] & 0x80 and b"BEGIN PGP" not in binary
    key_file = tmp_path / "tim.gpg"
    key_file.write_bytes(binary)
    imported = run(ws_home, "keys", "import", str(key_file))
    assert imported.exit_code == 0, imported.output
    assert f"imported {fingerprint}" in imported.output
    assert f"pub {fingerprint}" in run(ws_home, "keys", "list").output


@pytest.mark.parametrize(
    "weak", ["12345", "kuda7", "kuda lari padang", "ab" * 15, "aaaaaaaaaaaaaaaaaaaaaaaaa"]
)
def test_keys_generate_refuses_a_weak_passphrase_from_a_file(
    ws_home: Path, tmp_path: Path, weak: str
) -> None:
    secret = tmp_path / "weak.txt"
    secret.write_text(weak + "\n", encoding="utf-8")
    result = run(ws_home, "keys", "generate", "--name", "Tim Lemah", "--passphrase-file",
                 str(secret))
    assert result.exit_code == 1
    assert "passphrase is too weak" in result.output and "20 characters" in result.output
    assert "sec " not in run(ws_home, "keys", "list").output


def test_keys_generate_refuses_a_passphrase_longer_than_gpg_takes(
    ws_home: Path, tmp_path: Path
) -> None:
    # 256 bytes: gpg-agent keeps 255, and the key was locked with a passphrase nobody typed.
    secret = tmp_path / "long.txt"
    secret.write_text(("kuda lari di padang " * 13)[:128] + "\u00e9" * 64 + "\n", encoding="utf-8")
    result = run(ws_home, "keys", "generate", "--name", "Tim Panjang", "--passphrase-file",
                 str(secret))
    assert result.exit_code == 1, result.output
    assert "passphrase is too long: at most 255 bytes" in result.output
    assert "sec " not in run(ws_home, "keys", "list").output


def test_keys_generate_asks_again_after_a_weak_passphrase(ws_home: Path) -> None:
    result = run(ws_home, "keys", "generate", "--name", "Tim Prompt",
                 input=f"rahasia\n{PASSPHRASE}\n{PASSPHRASE}\n")
    assert result.exit_code == 0, result.output
    assert "passphrase is too weak" in result.output
    fingerprint = result.output.split("created key ")[1].split()[0]
    assert f"sec {fingerprint} Tim Prompt" in run(ws_home, "keys", "list").output


def test_wrong_and_missing_passphrase_then_safe_names(ws_home: Path, tmp_path: Path) -> None:
    fingerprint = _generate(ws_home, tmp_path)
    names = [".bashrc", "laporan\u202egpj.exe", "bukti.pdf", "bukti.pdf", "CON", "a\x1b[31m.txt"]
    case = _case_with_files(ws_home, fingerprint, names)
    # A new agent: nothing cached from key generation.
    subprocess.run(["gpgconf", "--homedir", str(ws_home / "gnupg"), "--kill", "gpg-agent"],
                   check=False)

    wrong = tmp_path / "wrong.txt"
    wrong.write_text("bukan ini", encoding="utf-8")
    failed = run(ws_home, "decrypt", case.registration_number, "--passphrase-file", str(wrong))
    assert failed.exit_code == 1
    assert "wrong passphrase" in failed.output
    missing = run(ws_home, "decrypt", case.registration_number)
    assert missing.exit_code == 1
    assert "passphrase" in missing.output
    decrypted = ws_home / "cases" / "kpk" / case.registration_number / "decrypted"
    assert list(decrypted.iterdir()) == []

    right = tmp_path / "pass.txt"
    done = run(ws_home, "decrypt", case.registration_number, "--passphrase-file", str(right))
    assert done.exit_code == 0, done.output
    got = sorted(p.name for p in decrypted.iterdir())
    assert got == sorted(
        ["bashrc", "laporangpj.exe", "bukti.pdf", "bukti (2).pdf", "_CON", "a[31m.txt"]
    )


def test_a_passphrase_beyond_ascii_locks_and_opens_the_key(ws_home: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pass.txt"
    secret.write_text("sandi r\u00e2hasia \u20ac \U0001f511 kunci lemari\n", encoding="utf-8")
    made = run(ws_home, "keys", "generate", "--name", "Tim Unicode", "--passphrase-file",
               str(secret))
    assert made.exit_code == 0, made.output
    fingerprint = made.output.split("created key ")[1].split()[0]
    case = _case_with_files(ws_home, fingerprint, ["bukti.pdf"])
    subprocess.run(["gpgconf", "--homedir", str(ws_home / "gnupg"), "--kill", "gpg-agent"],
                   check=False)
    done = run(ws_home, "decrypt", case.registration_number, "--passphrase-file", str(secret))
    assert done.exit_code == 0, done.output
    decrypted = ws_home / "cases" / "kpk" / case.registration_number / "decrypted"
    assert (decrypted / "bukti.pdf").read_bytes() == b"isi berkas 0"


def test_blanks_around_the_passphrase_are_part_of_it(ws_home: Path, tmp_path: Path) -> None:
    # A key made with " x " once opened only with "x" (gpg trimmed the parameter it was given).
    secret = tmp_path / "pass.txt"
    secret.write_text(f"  {PASSPHRASE} \n", encoding="utf-8")
    made = run(ws_home, "keys", "generate", "--name", "Tim Spasi", "--passphrase-file",
               str(secret))
    assert made.exit_code == 0, made.output
    fingerprint = made.output.split("created key ")[1].split()[0]
    case = _case_with_files(ws_home, fingerprint, ["bukti.pdf"])
    decrypted = ws_home / "cases" / "kpk" / case.registration_number / "decrypted"
    trimmed = tmp_path / "trimmed.txt"
    trimmed.write_text(PASSPHRASE, encoding="utf-8")
    # A fresh agent before each try, with nothing in its cache (gone before the next gpg).
    gpgrun.kill_agent(ws_home / "gnupg", wait=True)
    failed = run(ws_home, "decrypt", case.registration_number, "--passphrase-file", str(trimmed))
    assert failed.exit_code == 1 and "wrong passphrase" in failed.output, failed.output
    gpgrun.kill_agent(ws_home / "gnupg", wait=True)
    done = run(ws_home, "decrypt", case.registration_number, "--passphrase-file", str(secret))
    assert done.exit_code == 0, done.output
    assert (decrypted / "bukti.pdf").read_bytes() == b"isi berkas 0"


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32", "system32"),
        ("..", "fallback.bin"),
        ("", "fallback.bin"),
        (None, "fallback.bin"),
        ("...hidden", "hidden"),
        ("laporan\u202efdp.exe", "laporanfdp.exe"),
        ("a\u200fb\u2066c.txt", "abc.txt"),
        ("baris\nbaru\r.txt", "barisbaru.txt"),
        ("tanya?:*.txt", "tanya___.txt"),
        ("nul.txt", "_nul.txt"),
        ("e\u0301.txt", "\u00e9.txt"),
        ("trailing. . ", "trailing"),
    ],
)
def test_safe_filename(raw: str | None, safe: str) -> None:
    assert safe_filename(raw, "fallback.bin") == safe


def test_long_names_keep_their_extension() -> None:
    name = safe_filename("a" * 500 + ".pdf", "x")
    assert name.endswith(".pdf")
    assert len(name.encode()) <= 200


def test_place_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("first")
    temp = tmp_path / ".part-1"
    temp.write_text("second")
    placed = place_without_overwrite(temp, tmp_path, "a.txt")
    assert placed.name == "a (2).txt"
    assert (tmp_path / "a.txt").read_text() == "first"
    assert not temp.exists()


def test_terminal_safe_drops_escapes() -> None:
    assert terminal_safe("ok\x1b[2J\u202e\nbaris") == "ok\ufffd[2J\ufffd\nbaris"
