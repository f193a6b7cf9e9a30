"""``peluit federation``: the offline exchange, a sync and the link's status, as an operator
types them (two installations, each its own instance folder and keyring)."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from peluit.cli import main
from peluit.devserver import loopback_server
from tests.support import short_tempdir
from wbs.config import load_config
from wbs.instance import Instance


class Operator:
    def __init__(self, root: Path, name: str) -> None:
        self.instance = root / name / "instance"
        self.env = {"PELUIT_GNUPG_HOME": str(root / name / "gnupg"), "PELUIT_KDF_MEMORY_KIB": "8"}

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(main, ["--instance", str(self.instance), *args], env=self.env)
        if ok:
            assert result.exit_code == 0, result.output
        return result


@pytest.fixture
def root() -> Iterator[Path]:
    path = short_tempdir("fed-cli-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _fingerprint(output: str) -> str:
    found = re.search(r"fingerprint[^:]*: ([0-9A-F]{40})", output)
    assert found is not None, output
    return found.group(1)


def test_join_sync_status_and_revoke_from_the_command_line(root: Path) -> None:
    hub, member = Operator(root, "hub"), Operator(root, "member")
    hub("init", "--demo", "--demo-workstation", str(root / "ws"))
    member("init")
    member("tenant", "add", "kemendes", "--name", "Kementerian Desa", "--kind", "kementerian")
    assert "not federated" in member("federation", "status").output

    request = root / "request.json"
    requested = member("federation", "request", "member-a", "--out", str(request))
    member_fpr = _fingerprint(requested.output)
    ticket = root / "ticket.json"
    # The hub's operator mistypes the fingerprint: refused in one line, nothing added.
    wrong = hub("federation", "add-member", str(request), "--fingerprint", "0" * 40,
                "--ticket", str(ticket), ok=False)
    assert wrong.exit_code == 1 and "not signed by the key" in wrong.output
    assert not ticket.exists()
    added = hub("federation", "add-member", str(request), "--fingerprint", member_fpr,
                "--ticket", str(ticket))
    hub_fpr = _fingerprint(added.output)
    # The ticket holds the member's client key: readable by its owner only.
    assert ticket.stat().st_mode & 0o777 == 0o600
    joined = member("federation", "join", str(ticket), "--hub-fingerprint", hub_fpr)
    assert "joined hub kpk" in joined.output

    from federation_iface import create_app

    env: dict[str, Any] = {"PELUIT_GNUPG_HOME": hub.env["PELUIT_GNUPG_HOME"],
                           "PELUIT_KDF_MEMORY_KIB": "8"}
    inst = Instance.open(load_config(env, instance_dir=hub.instance))
    server = loopback_server(create_app(inst), 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/federation/v1/exchange"
    try:
        synced = member("federation", "sync", "--url", url)
        assert synced.output.strip() == "synced: 1 sent, 1 received, 0 pending"
        status = hub("federation", "status").output
        assert re.search(r"member member-a\tactive\tlast sync 20\d\d-.*\treceived 1\trefused 0",
                         status), status
        assert "hub kpk\tactive" in member("federation", "status").output
        # Starting the link over (a database put back by hand): both sides count from one
        # again, and what the hub has is sent again without being stored twice.
        assert member("federation", "resync").output.strip() == "starting over: kpk"
        again = member("federation", "sync", "--url", url)
        assert again.output.strip() == "synced: 1 sent, 1 received, 0 pending"
        assert re.search(r"received 1\trefused 0", hub("federation", "status").output)
        unknown = member("federation", "resync", "nobody", ok=False)
        assert unknown.exit_code == 1 and "no active link with 'nobody'" in unknown.output
        revoked = hub("federation", "revoke", "member-a")
        assert "member-a revoked" in revoked.output
        refused = member("federation", "sync", "--url", url, ok=False)
        assert refused.exit_code == 1
        assert "the hub refused the request: revoked" in refused.output
        assert "Traceback" not in refused.output
        assert "error: the hub refused the request: revoked" in member(
            "federation", "status"
        ).output
        assert "refused 1" in hub("federation", "status").output
    finally:
        server.shutdown()
        inst.close()
