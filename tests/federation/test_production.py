"""A hub's federation endpoint in production: real gunicorn with
deploy/gunicorn-federation.conf.py, answering a member's sync; its unit runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.federation.conftest import Federation, add_cases, mirrored_cases
from wbs.federation.exchange import sync
from wbs.federation.transport import ENDPOINT, poster

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "gunicorn-federation.conf.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gunicorn_serves_the_federation_endpoint(federation: Federation) -> None:
    hub = federation.hub.config
    port = _free_port()
    env = {
        **os.environ,
        "PELUIT_INSTANCE": str(hub.instance_dir),
        "PELUIT_GNUPG_HOME": str(hub.gnupg_home),
        "PELUIT_DATABASE_URL": hub.database_url,
        "PELUIT_KDF_TIME_COST": str(hub.kdf.time_cost),
        "PELUIT_KDF_MEMORY_KIB": str(hub.kdf.memory_kib),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(CONF),
         "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "gunicorn did not listen within 60 s"
            time.sleep(0.2)
        numbers = add_cases(federation.a, "kemendes", 2)
        result = sync(federation.a, poster(f"http://127.0.0.1:{port}{ENDPOINT}"))
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=60)
    assert (result.sent, result.pending) == (3, 0)
    assert sorted(mirrored_cases(federation.hub, "member-a")) == sorted(numbers)
    # No access log, no request detail in the error log.
    assert ENDPOINT not in stderr.decode()


def test_the_units_run_the_endpoint_and_the_sync() -> None:
    units = REPO / "deploy" / "systemd"
    endpoint = (units / "peluit-federation.service").read_text()
    assert "gunicorn-federation.conf.py 'federation_iface.wsgi:make_app()'" in endpoint
    sync_unit = (units / "peluit-federation-sync.service").read_text()
    assert "ExecStart=/opt/peluit/.venv/bin/peluit federation sync" in sync_unit
    assert "Unit=peluit-federation-sync.service" in (
        units / "peluit-federation-sync.timer"
    ).read_text()
