"""Recipient key pairs (crypto.keypairs), as the workstation and the demo make them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from crypto.gpgrun import GpgHome
from crypto.keypairs import MAX_PASSPHRASE_BYTES, export_public_key, generate_key_pair

PASSPHRASE = b"tujuh ekor kucing melompati pagar kantor"


def _sign(home: Path, passphrase: bytes) -> subprocess.CompletedProcess[bytes]:
    # Plain gpg, not our code: can the key be used with this passphrase? (A key made under the
    # hurried clock was made minutes "in the future": gpg is told not to mind.)
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--ignore-time-conflict",
         "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--output", "-",
         "--detach-sign", "/dev/null"],
        input=passphrase, capture_output=True, check=False,
    )


def _export_secret(home: Path, fingerprint: str, passphrase: bytes) -> bytes:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
         "--passphrase-fd", "0", "--export-secret-keys", fingerprint],
        input=passphrase, capture_output=True, check=True,
    ).stdout


def test_a_key_pair_is_made_even_when_the_agent_forgot_the_passphrase(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, gnupg_home: Path,
    forgetful_agent: str, packets: Any,
) -> None:
    (gnupg_home / "gpg-agent.conf").write_text(forgetful_agent)
    gpg = GpgHome(gnupg_home)
    request.getfixturevalue("hurried_clock")  # for the generation only:
    fingerprint = generate_key_pair(gpg, "Tim APIP <tim@example.org>", PASSPHRASE)
    monkeypatch.delenv("LD_PRELOAD")
    gpg.kill_agent(wait=True)

    assert "BEGIN PGP PUBLIC KEY BLOCK" in export_public_key(gpg, fingerprint)
    secret = _export_secret(gnupg_home, fingerprint, PASSPHRASE)
    assert packets(secret).count("[v4 protected]") == 2  # primary and subkey alike
    assert _sign(gnupg_home, b"kata sandi lain").returncode != 0
    assert _sign(gnupg_home, PASSPHRASE).returncode == 0


def test_a_demo_key_pair_has_no_passphrase(gnupg_home: Path, packets: Any) -> None:
    gpg = GpgHome(gnupg_home)
    fingerprint = generate_key_pair(gpg, "Demo <demo@example.org>")
    secret = _export_secret(gnupg_home, fingerprint, b"")
    assert "[v4 protected]" not in packets(secret)
    assert _sign(gnupg_home, b"").returncode == 0


def test_blanks_around_a_passphrase_are_part_of_it(gnupg_home: Path) -> None:
    # gpg trims the blanks around a value of its parameter file: a key made with the passphrase
    # there was locked with " x " trimmed to "x", which the passphrase as typed never opened.
    gpg = GpgHome(gnupg_home)
    generate_key_pair(gpg, "Tim APIP <tim@example.org>", b"  " + PASSPHRASE + b" ")
    for tried, works in ((PASSPHRASE, False), (b"  " + PASSPHRASE + b" ", True)):
        gpg.kill_agent(wait=True)  # a fresh agent, which has no passphrase in its cache
        assert (_sign(gnupg_home, tried).returncode == 0) is works, tried


@pytest.mark.parametrize("passphrase", [b"", b"dua\nbaris", b"dua\rbaris", b"nol\0byte"])
def test_a_passphrase_gpg_would_cut_short_is_refused(gnupg_home: Path, passphrase: bytes) -> None:
    with pytest.raises(ValueError, match="one non-empty line"):
        generate_key_pair(GpgHome(gnupg_home), "Tim APIP <tim@example.org>", passphrase)
    assert not list(gnupg_home.glob("*.kbx"))


def test_the_longest_passphrase_gpg_agent_takes_locks_and_opens_the_key(gnupg_home: Path) -> None:
    longest = (PASSPHRASE * 7)[:MAX_PASSPHRASE_BYTES]
    assert len(longest) == MAX_PASSPHRASE_BYTES
    gpg = GpgHome(gnupg_home)
    generate_key_pair(gpg, "Tim APIP <tim@example.org>", longest)
    for tried, works in ((longest[:-1], False), (longest, True)):
        gpg.kill_agent(wait=True)
        assert (_sign(gnupg_home, tried).returncode == 0) is works, len(tried)
    # One byte more, and the agent would cut it: refused before gpg runs.
    with pytest.raises(ValueError, match=f"at most {MAX_PASSPHRASE_BYTES} bytes"):
        generate_key_pair(GpgHome(gnupg_home), "Tim 2 <tim2@example.org>", longest + b"x")
