"""The one gpg runner: its status parser, its time limit and the agent it stops."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from crypto.gpgrun import (
    GpgHome,
    GpgResult,
    GpgRunError,
    gpgconf_for,
    kill_agent,
    parse_status,
    throwaway_home,
)
from crypto.signing import Signer, verify_detached


def test_status_lines_are_parsed_and_prose_is_skipped() -> None:
    lines = [
        "gpg: encrypted with cv25519 key, ID 0123456789ABCDEF",
        "[GNUPG:] ENC_TO 0123456789ABCDEF 18 0",
        "[GNUPG:] PLAINTEXT 62 1700000000 bukti%20akhir.pdf",
        "[GNUPG:] ERROR pkdecrypt_failed 67108875",
        "[GNUPG:] END_DECRYPTION\n",
    ]
    status = parse_status(lines)
    assert [line.keyword for line in status] == ["ENC_TO", "PLAINTEXT", "ERROR", "END_DECRYPTION"]
    assert status[0].fields == ("0123456789ABCDEF", "18", "0")
    assert status[1].rest == "62 1700000000 bukti%20akhir.pdf"
    # The source bits (here 4 << 24, gpg-agent) are not part of the error: 11 is a bad passphrase.
    assert status[2].error_code == 11
    assert status[3].fields == ()
    assert status[0].error_code is None
    # A code that is not ASCII digits is no code ("²" passes str.isdigit(), not int()).
    assert parse_status(["[GNUPG:] ERROR encrypt ²"])[0].error_code is None


def test_the_gpgconf_beside_the_configured_gpg_is_used() -> None:
    assert gpgconf_for("/opt/gnupg/bin/gpg") == "/opt/gnupg/bin/gpgconf"
    assert gpgconf_for("gpg") == "gpgconf"


def test_agent_is_stopped_with_the_gpgconf_beside_the_binary(tmp_path: Path) -> None:
    real_gpg, real_gpgconf = shutil.which("gpg"), shutil.which("gpgconf")
    assert real_gpg is not None and real_gpgconf is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gpg").symlink_to(real_gpg)
    marker = tmp_path / "gpgconf-ran"
    # The real gpgconf, run through a wrapper that leaves a mark: the bare one on PATH never does.
    (bin_dir / "gpgconf").write_text(f'#!/bin/sh\ntouch "{marker}"\nexec "{real_gpgconf}" "$@"\n')
    (bin_dir / "gpgconf").chmod(0o755)
    with throwaway_home(str(bin_dir / "gpg"), prefix="pt-") as home:
        started = home.run(["--list-secret-keys"])
        assert started.returncode == 0
    assert marker.exists()
    assert not home.home.exists()


def test_a_gpg_that_cannot_start_is_a_crypto_error(tmp_path: Path) -> None:
    with pytest.raises(GpgRunError):
        GpgHome(tmp_path, str(tmp_path / "no-such-gpg")).run(["--version"])


def test_a_failed_run_says_why() -> None:
    with throwaway_home(prefix="pt-", agent=False) as home:
        refused = home.run(["--no-autostart", "--decrypt"], b"this is no OpenPGP message")
    assert refused.returncode == 2
    # The exit code and the status line, which do not depend on gpg's language, then gpg's
    # own last words.
    assert refused.reason.startswith("exit code 2; FAILURE decrypt ")
    assert refused.stderr_tail
    assert refused.reason.endswith(refused.stderr_tail.splitlines()[-1])
    assert "[GNUPG:]" not in refused.stderr_tail


def test_an_agent_waited_for_is_gone_with_its_sockets(tmp_path: Path) -> None:
    # gpgconf --kill returns once the agent has been told to stop, and the agent removes its
    # sockets after that, at its own pace (on a loaded machine, after the caller looked). The
    # real gpgconf here tells it half a second late, which makes that pace visible: with wait,
    # kill_agent returns only once the sockets are gone.
    real_gpg, real_gpgconf = shutil.which("gpg"), shutil.which("gpgconf")
    assert real_gpg is not None and real_gpgconf is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gpg").symlink_to(real_gpg)
    (bin_dir / "gpgconf").write_text(
        "#!/bin/sh\n"
        'if [ "$3" = "--kill" ]; then\n'
        f'  (sleep 0.5; exec "{real_gpgconf}" "$@") >/dev/null 2>&1 &\n'
        "  exit 0\n"
        "fi\n"
        f'exec "{real_gpgconf}" "$@"\n'
    )
    (bin_dir / "gpgconf").chmod(0o755)
    gpg_binary = str(bin_dir / "gpg")
    with throwaway_home(gpg_binary, prefix="pt-") as home:
        subprocess.run(
            [real_gpgconf, "--homedir", str(home.home), "--launch", "gpg-agent"],
            check=True, capture_output=True,
        )
        assert (home.home / "S.gpg-agent").is_socket()
        kill_agent(home.home, gpg_binary, wait=True)
        assert list(home.home.glob("S.gpg-agent*")) == []


def test_passphrase_and_data_reach_gpg_apart(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir(mode=0o700)
    gpg = GpgHome(home, "gpg")
    passphrase = "kata sandi \u00f1\u20ac".encode()
    try:
        sealed = gpg.run(["--symmetric", "--armor"], b"isi laporan", passphrase=passphrase)
        assert sealed.returncode == 0
        assert "END_ENCRYPTION" in sealed.keywords
        opened = gpg.run(["--decrypt"], sealed.stdout, passphrase=passphrase)
        assert opened.stdout == b"isi laporan"
        # The same characters in another encoding are another passphrase.
        wrong = gpg.run(["--decrypt"], sealed.stdout, passphrase="kata sandi \u00f1\u20ac"
                        .encode("utf-16-le"))
        assert wrong.returncode != 0 and wrong.stdout == b""
    finally:
        gpg.kill_agent()
    assert os.listdir(home)  # gpg worked in the home it was given


def test_a_home_too_long_for_the_agents_sockets_still_signs() -> None:
    # A Unix socket address holds 108 bytes. In a home of exactly 87 bytes the agent's browser
    # socket ("/S.gpg-agent.browser") fills them all: gpg 2.2 takes it as fitting, the agent
    # then fails at start, and every secret-key operation fails with "No agent running"
    # (longer homes gpg redirects itself). Where that happens depends on where an instance
    # lives, and in the tests on pytest's numbered folders: the suite's intermittent "gpg
    # could not generate the signing key". Long homes go through a short alias instead.
    base = Path(tempfile.mkdtemp(prefix="lh-", dir="/tmp"))
    home = base / ("x" * (87 - len(os.fsencode(base)) - len("/signing") - 1)) / "signing"
    assert len(os.fsencode(home)) == 87
    signer = Signer(home)
    try:
        fingerprint = signer.ensure_key()
        signature = signer.sign_detached(b"manifest")
        signed_by = verify_detached(b"manifest", signature, signer.public_key(), fingerprint)
        assert signed_by == fingerprint
        # The key lives in the real home; only the sockets' path goes through the alias.
        assert any((home / "private-keys-v1.d").iterdir())
    finally:
        signer.close()
        shutil.rmtree(base, ignore_errors=True)


def test_a_result_never_shows_what_gpg_wrote() -> None:
    # A decrypted reply or a locked key in stdout must not reach a log line through a repr.
    result = GpgResult(0, b"isi balasan rahasia", (), stderr_tail="gpg: rahasia")
    assert "rahasia" not in repr(result) and "returncode=0" in repr(result)
