"""Faults injected into a real instance: gpg dying mid-stream, the disk floor, a killed server.

Each fault must leave no partial item, no orphan file and no plaintext, give the reporter a
clear page with the security headers, and the next request must work. (A database locked past
the busy timeout is covered in tests/source_iface/test_pages.py, and a disk really filling on a
small tmpfs there too; a SIGKILLed encryption in tests/wbs/test_intake.py.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from source_iface import create_app
from tests.conftest import DemoInstance, open_demo
from tests.reliability.checks import snapshot
from tests.source_iface.conftest import TENANT, Reporter
from tests.source_iface.test_pages import check_page
from wbs.config import Config
from wbs.instance import Instance

REPO = Path(__file__).resolve().parents[2]


# --- gpg dying in the middle of a file ---------------------------------------------------------


@pytest.fixture
def dying_gpg(tmp_path: Path) -> str:
    """A gpg that, asked to encrypt, reads 64 KiB of the plaintext and is then SIGKILLed.

    Everything else (key generation at registration, key listing) is the real gpg. gpgconf
    sits beside it because the keyring calls the gpgconf of its gpg.
    """
    folder = tmp_path / "bin"
    folder.mkdir()
    real_gpg, real_gpgconf = shutil.which("gpg"), shutil.which("gpgconf")
    assert real_gpg and real_gpgconf
    script = folder / "gpg"
    script.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do\n'
        '  if [ "$arg" = "--encrypt" ]; then\n'
        "    head -c 65536 > /dev/null\n"
        "    kill -9 $$\n"
        "  fi\n"
        "done\n"
        f'exec {real_gpg} "$@"\n'
    )
    script.chmod(0o700)
    (folder / "gpgconf").symlink_to(real_gpgconf)
    return str(script)


def test_gpg_dying_mid_upload_stores_nothing_and_says_so(demo, dying_gpg: str) -> None:  # type: ignore[no-untyped-def]
    config = dataclasses.replace(demo.inst.config, gpg_binary=dying_gpg)
    evidence = b"PLAINTEXT-" + os.urandom(300_000)
    with Instance.open(config) as inst:
        # Served as in production: errors go to the error pages, not to the test.
        reporter = Reporter(create_app(inst).test_client())
        codename = reporter.new_codename()
        before = snapshot(demo.inst)
        for lang, says in (("id", "Tidak ada"), ("en", "Nothing you sent")):
            reporter.client.set_cookie("peluit_l", lang)
            html = check_page(reporter.send_report(files=[("bukti.pdf", evidence)]), 500,
                              lang=lang)
            assert says in html
            assert snapshot(demo.inst) == before
        assert not _plaintext_on_disk(demo.inst.config.instance_dir, evidence[:64])
    # gpg works again: the same codename sends its report.
    again = Reporter(demo.app.test_client())
    assert again.login(codename).status_code == 302
    assert again.send_report(files=[("bukti.pdf", evidence)]).status_code == 302
    assert snapshot(demo.inst).cases == before.cases + 1


def _plaintext_on_disk(folder: Path, marker: bytes) -> list[Path]:
    """Every file under ``folder`` (store, database and its journal, keys) holding ``marker``."""
    return [path for path in folder.rglob("*")
            if path.is_file() and not path.is_socket() and marker in path.read_bytes()]


# --- the disk floor above the free space -------------------------------------------------------


def test_the_floor_reached_closes_intake_and_stores_nothing(demo) -> None:  # type: ignore[no-untyped-def]
    free = shutil.disk_usage(demo.inst.config.store_dir).free
    config = dataclasses.replace(demo.inst.config, disk_floor_bytes=free + 2**40)
    with Instance.open(config) as inst:
        reporter = Reporter(create_app(inst).test_client())
        codename = reporter.new_codename()
        before = snapshot(demo.inst)
        for lang, says in (("id", "ditutup sementara"), ("en", "Nothing was stored")):
            reporter.client.set_cookie("peluit_l", lang)
            html = check_page(reporter.send_report(files=[("a.pdf", b"isi")]), 503, lang=lang)
            assert says in html
        assert snapshot(demo.inst) == before
    # The floor back where it was: the next report goes through.
    again = Reporter(demo.app.test_client())
    assert again.login(codename).status_code == 302
    assert again.send_report(files=[("a.pdf", b"isi")]).status_code == 302
    assert snapshot(demo.inst).cases == before.cases + 1


# --- the production server SIGKILLed in the middle of a large upload ---------------------------


def _bench_source() -> ModuleType:
    """bench/bench_source.py: its gunicorn runner and HTTP reporter drive the real server."""
    if "bench_source" in sys.modules:
        return sys.modules["bench_source"]
    path = REPO / "bench" / "bench_source.py"
    spec = importlib.util.spec_from_file_location("bench_source", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_source"] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def production(make_config) -> Iterator[tuple[DemoInstance, dict[str, str], str]]:  # type: ignore[no-untyped-def]
    """A demo instance as gunicorn serves it: its environment, and the tenant's onion Host."""
    from wbs.onion import assign_tenant_address

    config: Config = make_config(max_upload_bytes="512M", disk_floor_bytes="1M")
    with open_demo(config) as demo:
        host = assign_tenant_address(demo.instance, TENANT).hostname
        env = {
            **os.environ,
            "PELUIT_INSTANCE": str(config.instance_dir),
            "PELUIT_GNUPG_HOME": str(config.gnupg_home),
            "PELUIT_KDF_TIME_COST": str(config.kdf.time_cost),
            "PELUIT_KDF_MEMORY_KIB": str(config.kdf.memory_kib),
            "PELUIT_MAX_UPLOAD_BYTES": "512M",
            "PELUIT_DISK_FLOOR_BYTES": "1M",
        }
        yield demo, env, host


def _start(env: dict[str, str], port: int, stderr: Path) -> subprocess.Popen[bytes]:
    with stderr.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "deploy" / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err,
            # Its own process group: the kill takes the master, the worker and its gpg at once.
            start_new_session=True,
        )


def _wait_serving(bench: ModuleType, proc: subprocess.Popen[bytes], port: int, host: str,
                  stderr: Path) -> None:
    server = bench.Server(proc, port, stderr, host)
    bench._wait_until_serving(server)


def _slow_body(marker: bytes, stop: threading.Event) -> Iterator[bytes]:
    """Plaintext that says what it is, sent until the server dies (or at most 400 MiB)."""
    piece = marker * (1024 * 1024 // len(marker))
    for _ in range(400):
        if stop.is_set():
            return
        yield piece
        time.sleep(0.02)


def test_a_server_killed_mid_upload_leaves_nothing_and_serves_again(  # type: ignore[no-untyped-def]
    production, tmp_path: Path
) -> None:
    demo, env, host = production
    bench = _bench_source()
    store = demo.instance.config.store_dir
    port, stderr = bench._free_port(), tmp_path / "gunicorn.err"
    proc = _start(env, port, stderr)
    marker = b"RAHASIA-PELAPOR-" + secrets.token_hex(8).encode() + b"\n"
    try:
        _wait_serving(bench, proc, port, host, stderr)
        browser = bench.Browser(port, host)
        browser.register()
        token = bench._CSRF.search(browser.get("/lapor").text).group(1)
        before = snapshot(demo.instance)

        stop, failure = threading.Event(), []

        def upload() -> None:
            boundary = "----peluitkill" + secrets.token_hex(8)
            head = b"".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
                for name, value in [("csrf_token", token), ("website", ""),
                                    *bench.ANSWERS.items()]
            ) + (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 'filename="besar.bin"\r\n\r\n').encode()
            conn = browser._connection()
            conn.putrequest("POST", "/lapor", skip_host=True, skip_accept_encoding=True)
            for name, value in browser._headers().items():
                conn.putheader(name, value)
            conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            conn.putheader("Content-Length", str(len(head) + 400 * 1024 * 1024 + 64))
            conn.endheaders()
            try:
                conn.send(head)
                for piece in _slow_body(marker, stop):
                    conn.send(piece)
            except OSError as exc:
                failure.append(exc)

        sender = threading.Thread(target=upload, daemon=True)
        sender.start()
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 4 * 1024 * 1024 for p in store.rglob("*.part")):
            assert time.monotonic() < deadline, "the upload never reached the store"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        stop.set()
        sender.join(timeout=30)
        # The kill really was mid-upload: a half ciphertext is left behind, and no row.
        assert list(store.rglob("*.part")), "no unfinished upload was left to clean up"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    proc = _start(env, port, stderr)
    try:
        _wait_serving(bench, proc, port, host, stderr)
        # The restart swept the debris: the store and the database agree, as before the upload.
        assert snapshot(demo.instance) == before
        # No plaintext anywhere in the instance: store, database, its journal or WAL, keys.
        assert _plaintext_on_disk(demo.instance.config.instance_dir, marker) == []
        # The next reporter's upload works and decrypts to what was sent.
        fresh = bench.Browser(port, host)
        fresh.register()
        evidence = tmp_path / "bukti.bin"
        evidence.write_bytes(b"BUKTI-" + os.urandom(200_000))
        response = fresh.send_report(evidence, "bukti.bin")
        assert response.status == 302 and "/tanda-terima/" in response.headers["Location"]
        after = snapshot(demo.instance)
        assert after.cases == before.cases + 1
        new = sorted(after.files - before.files)
        plaintexts = [demo.decrypt((store / path).read_bytes()) for path in new]
        assert evidence.read_bytes() in plaintexts
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert "removed 1 unfinished upload(s)" in stderr.read_text(errors="replace")
