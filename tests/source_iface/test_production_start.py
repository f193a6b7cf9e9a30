"""The production server's start (gunicorn with deploy/gunicorn.conf.py), run for real."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import sqlalchemy as sa

from wbs.config import Config
from wbs.domain import TenantKind
from wbs.instance import Instance, init_instance
from wbs.models import Source, Submission, utcnow
from wbs.tenancy import TenantScope
from wbs.tenants import create_tenant

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
    except urllib.error.HTTPError:
        return True  # any HTTP answer: a worker is serving
    except OSError:
        return False
    return True


def test_gunicorn_start_sweeps_what_killed_workers_left_in_the_store(config: Config) -> None:
    init_instance(config)
    store = config.store_dir
    folder = store / "pemkot-uji" / ("a" * 64)
    folder.mkdir(parents=True)
    # What a SIGKILLed worker leaves: a .part file; and an interrupted deletion of an item that
    # no row references any more.
    (folder / f"{'1' * 32}.gpg.part").write_bytes(b"half a ciphertext")
    (folder / f"{'2' * 32}.gpg.deleting").write_bytes(b"deleted item")
    kept = folder / f"{'3' * 32}.gpg"
    kept.write_bytes(b"a complete item")  # unreferenced but complete: not the sweep's business
    with Instance.open(config) as inst, inst.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Submission)) == 0
        # A codename confirmed three weeks ago that never reported: forgotten at the start.
        tenant = create_tenant(session, slug="pemkot-uji", name="Pemkot Uji",
                               kind=TenantKind.PEMERINTAH_KOTA)
        TenantScope(session, tenant).add(Source(
            id="b" * 64, reply_fingerprint="D" * 40, reply_public_key="public",
            reply_secret_key="locked", created_at=utcnow() - dt.timedelta(days=21)))
        session.commit()

    port = _free_port()
    env = {
        **os.environ,
        "PELUIT_INSTANCE": str(config.instance_dir),
        "PELUIT_GNUPG_HOME": str(config.gnupg_home),
        "PELUIT_KDF_TIME_COST": str(config.kdf.time_cost),
        "PELUIT_KDF_MEMORY_KIB": str(config.kdf.memory_kib),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(REPO / "deploy" / "gunicorn.conf.py"),
         "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
            time.sleep(0.2)
        assert sorted(p.name for p in folder.iterdir()) == [kept.name]
        # And publishes the store before the first write: the pool of empty files is there,
        # and the item left over carries its day, not its moment (midnight WIB = 17:00 UTC).
        assert len(list((store / ".pool").iterdir())) >= 32
        assert kept.stat().st_mtime_ns % (86400 * 10**9) == 17 * 3600 * 10**9
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    assert b"removed 2 unfinished upload(s) from the store" in stderr
    with Instance.open(config) as inst, inst.sessions() as session:
        assert session.get(Source, "b" * 64) is None
