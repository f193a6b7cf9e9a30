"""Processes killed in the middle of a sync: nothing lost, nothing applied twice.

The hub's endpoint (``peluit federation serve``) and the member's sync
(``peluit federation sync --url``) run as real processes on loopback and are killed with
SIGKILL while a batch is in flight: first the member, then the hub. Afterwards one more
sync must leave every case on the hub exactly once, and each side's count of applied
messages must equal its cursor (a message applied twice would make the count run ahead).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import open_demo
from tests.federation.conftest import (
    add_cases,
    federate,
    installation_config,
    member_installation,
    mirrored_cases,
)
from tests.support import short_tempdir
from wbs.config import Config
from wbs.instance import Instance
from wbs.models import FederationPeer

CASES = 3000  # six batches of 500, with the instansi: 3001 messages


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(config: Config) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PELUIT_")}
    env.update(
        PELUIT_GNUPG_HOME=str(config.gnupg_home),
        PELUIT_KDF_TIME_COST=str(config.kdf.time_cost),
        PELUIT_KDF_MEMORY_KIB=str(config.kdf.memory_kib),
        PELUIT_DATABASE_URL=config.database_url,
    )
    return env


def _peluit(config: Config, *args: str) -> list[str]:
    return [sys.executable, "-m", "peluit.cli", "--instance", str(config.instance_dir), *args]


def _cursor(inst: Instance, name: str) -> tuple[int, int, int]:
    with inst.sessions() as session:
        peer = session.scalar(sa.select(FederationPeer).where(FederationPeer.name == name))
        assert peer is not None
        return peer.received_seq, peer.applied_count, peer.acked_seq


def _wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _serve(config: Config, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            _peluit(config, "federation", "serve", "--port", str(port)),
            env=_env(config), stdout=out, stderr=subprocess.STDOUT,
        )

    def up() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    _wait_until(up, 60, "the federation endpoint")
    return proc


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture
def root() -> Iterator[Path]:
    import shutil

    path = short_tempdir("fed-crash-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_killed_member_and_hub_lose_nothing_and_apply_nothing_twice(root: Path) -> None:
    hub_config = installation_config(root, "hub")
    member_config = installation_config(root, "a")
    with ExitStack() as stack:
        hub = stack.enter_context(open_demo(hub_config)).instance
        member = stack.enter_context(member_installation(member_config, "kemendes"))
        federate(hub, member, "member-a")
        numbers = add_cases(member, "kemendes", CASES)
        port = _free_port()
        url = f"http://127.0.0.1:{port}/federation/v1/exchange"
        server = _serve(hub_config, port, root / "hub.log")
        stack.callback(lambda: _kill(server))
        sync_log = (root / "sync.log").open("ab")
        stack.callback(sync_log.close)

        # 1. The member is killed once the hub has applied a batch, before the last one.
        syncing = subprocess.Popen(
            _peluit(member_config, "federation", "sync", "--url", url),
            env=_env(member_config), stdout=sync_log, stderr=subprocess.STDOUT,
        )
        _wait_until(lambda: _cursor(hub, "member-a")[0] >= 500, 120, "a first batch applied")
        _kill(syncing)
        received, applied, _ = _cursor(hub, "member-a")
        assert 0 < received < CASES + 1, "the member was not killed mid-sync"
        assert applied == received

        # 2. The hub is killed while it applies the next batch the restarted member sends.
        syncing = subprocess.Popen(
            _peluit(member_config, "federation", "sync", "--url", url),
            env=_env(member_config), stdout=sync_log, stderr=subprocess.STDOUT,
        )
        _wait_until(lambda: _cursor(hub, "member-a")[0] > received, 120, "another batch")
        _kill(server)
        syncing.wait(timeout=180)
        assert syncing.returncode == 1  # the hub went away: a clear error, not a traceback
        assert "Traceback" not in (root / "sync.log").read_text()
        half = _cursor(hub, "member-a")
        assert half[0] < CASES + 1, "the hub was not killed mid-sync"
        assert half[1] == half[0]

        # 3. Both back: one sync completes the link.
        server = _serve(hub_config, port, root / "hub.log")
        stack.callback(lambda: _kill(server))
        done = subprocess.run(
            _peluit(member_config, "federation", "sync", "--url", url),
            env=_env(member_config), capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith("0 pending")
        received, applied, _ = _cursor(hub, "member-a")
        assert received == applied == CASES + 1
        assert sorted(mirrored_cases(hub, "member-a")) == sorted(numbers)
        # The member applied the hub's one message (KPK's keys) once, and knows all arrived.
        member_received, member_applied, member_acked = _cursor(member, "kpk")
        assert member_received == member_applied == 1
        assert member_acked == CASES + 1
