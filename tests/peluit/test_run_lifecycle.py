"""``peluit run`` on an instance made without ``--demo``, and its private tor on every way out.

A real ``peluit run`` in a subprocess with a real tor (no mock): it must serve, stop cleanly on
SIGTERM and on SIGINT, and leave no tor behind. The way out by an error is tested in-process,
with an error injected after tor has started (there is no real failure left to provoke there).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner

from peluit import devrun, devtor
from peluit.cli import main
from tests.support import short_tempdir


@pytest.fixture
def plain_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An instance made by ``peluit init`` without ``--demo``: no tenant, no account."""
    if shutil.which("tor") is None:
        pytest.fail("tor is needed: apt-get install tor")
    monkeypatch.setenv("PELUIT_GNUPG_HOME", str(short_tempdir("run-")))
    monkeypatch.setenv("PELUIT_KDF_MEMORY_KIB", "8")
    monkeypatch.delenv("TOR_CONTROL", raising=False)
    instance = tmp_path / "instance"
    result = CliRunner().invoke(main, ["--instance", str(instance), "init"])
    assert result.exit_code == 0, result.output
    return instance


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tors(folder: Path) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(folder) in " ".join(p.info["cmdline"] or []) and p.status() != psutil.STATUS_ZOMBIE
    ]


def _gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_run_without_demo_serves_and_stops_its_tor(
    plain_instance: Path, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port, investigator_port = _free_port(), _free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "peluit.cli", "--instance", str(plain_instance), "run",
             "--port", str(port), "--investigator-port", str(investigator_port)],
            stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while "Onion services are added" not in log.read_text():
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            # The crash came "a second after start": give it that second and more.
            time.sleep(2)
            assert server.poll() is None, log.read_text()
            with urllib.request.urlopen(f"http://127.0.0.1:{investigator_port}/masuk") as page:
                assert page.status == 200
            tors = _tors(plain_instance / "tor")
            assert len(tors) == 1, "run started one private tor"
            tor_pid = tors[0].pid
        finally:
            server.send_signal(stop_signal)
            code = server.wait(timeout=30)
    printed = log.read_text()
    assert code == 0, printed
    assert "stopped" in printed
    assert "Traceback" not in printed and "AccountError" not in printed
    assert _gone(tors[0]), f"tor (pid {tor_pid}) outlived peluit run"
    assert not psutil.pid_exists(tor_pid) or _gone(psutil.Process(tor_pid))


def test_an_error_after_tor_started_still_stops_tor(
    plain_instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[subprocess.Popen[bytes]] = []
    real_start = devtor.start_private_tor

    def start_and_remember(folder: Path, tor_binary: str = "tor") -> Any:
        process, spec = real_start(folder, tor_binary)
        started.append(process)
        return process, spec

    def fail(*args: object) -> None:
        raise RuntimeError("injected failure after tor started")

    monkeypatch.setattr(devrun, "start_private_tor", start_and_remember)
    # Injected: no real failure remains at this point of run (the demo-account loop was one).
    monkeypatch.setattr(devrun, "_demo_client_keys", fail)
    result = CliRunner().invoke(
        main,
        ["--instance", str(plain_instance), "run", "--port", str(_free_port()),
         "--investigator-port", str(_free_port())],
    )
    assert result.exit_code == 1
    assert "injected failure" in result.output
    assert len(started) == 1
    assert started[0].poll() is not None, "tor outlived the failed run"
    assert not psutil.pid_exists(started[0].pid)
