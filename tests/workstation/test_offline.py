"""The workstation never opens a socket and never imports the server's code."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DemoInstance
from tests.workstation.helpers import TENANT, export, make_case, run, workstation_home
from wbs.tenants import current_recipients, get_tenant

REPO = Path(__file__).resolve().parents[2]


def _intake_args(demo: DemoInstance, tmp_path: Path) -> list[str]:
    """An operator intake (peluit-workstation intake), answers read from a file."""
    answers = tmp_path / "answers.json"
    answers.write_text('{"apa": "Pungli di loket"}', encoding="utf-8")
    with demo.instance.sessions() as session:
        keys = current_recipients(session, get_tenant(session, TENANT))
    args = ["intake", "--tenant", TENANT, "--channel", "sms", "--category", "pungutan_liar",
            "--answers", str(answers), "-o", str(tmp_path / "intake.zip")]
    return args + [arg for fpr in keys for arg in ("--recipient", fpr)]


def test_no_server_module_is_imported() -> None:
    code = (
        "import sys, workstation.cli, workstation.duplicates, workstation.reply\n"
        "import workstation.intake\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('flask', 'werkzeug', 'sqlalchemy', 'wbs'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.strip() == ""


def test_commands_run_with_sockets_forbidden(
    demo: DemoInstance, ws_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = make_case(demo, big_size=5000)
    bundle = export(demo, [loop.case_id], tmp_path / "b.zip")
    home = workstation_home(demo, ws_home)

    def no_socket(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("the workstation tried to open a socket")

    monkeypatch.setattr(socket, "socket", no_socket)
    monkeypatch.setattr(socket, "create_connection", no_socket)
    for args in (
        ["import", str(bundle)],
        ["read", loop.registration_number],
        ["reply", loop.registration_number, "--message", "Baik."],
        ["duplicates"],
        _intake_args(demo, tmp_path),
    ):
        result = run(home, *args)
        assert result.exit_code == 0, (args, result.output, result.exception)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_cli_works_in_a_network_namespace_without_interfaces(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    loop = make_case(demo, big_size=5000)
    bundle = export(demo, [loop.case_id], tmp_path / "b.zip")
    home = workstation_home(demo, ws_home)
    flag = "-n" if os.geteuid() == 0 else "-rn"
    probe = subprocess.run(["unshare", flag, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.decode()[:200]}")
    cli = [sys.executable, "-m", "workstation.cli", "--home", str(home)]
    for args in (
        ["import", str(bundle)],
        ["decrypt", loop.registration_number],
        ["reply", loop.registration_number, "--message", "Baik."],
        _intake_args(demo, tmp_path),
    ):
        done = subprocess.run(
            ["unshare", flag, *cli, *args], capture_output=True, text=True, check=False, cwd=REPO
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    # And the namespace really had no network: even loopback is down in it.
    check = subprocess.run(
        ["unshare", flag, sys.executable, "-c",
         "import socket; socket.create_connection(('127.0.0.1', 9), timeout=2)"],
        capture_output=True, check=False,
    )
    assert check.returncode != 0
    assert len(list((home / "outbox").iterdir())) == 1
