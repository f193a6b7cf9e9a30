"""The investigator interface in production: real gunicorn with
deploy/gunicorn-journalist.conf.py, and the systemd units checked by systemd-analyze."""

from __future__ import annotations

import http.cookiejar
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pyotp
import pytest

from iface_common.app import SECURITY_HEADERS
from iface_common.gunicorn_quiet import QuietLogger
from wbs.accounts import create_investigator, start_enrolment
from wbs.config import Config
from wbs.domain import Role, TenantKind
from wbs.instance import Instance, init_instance
from wbs.tenants import create_tenant

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "gunicorn-journalist.conf.py"
UNITS = REPO / "deploy" / "systemd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as page:
            return page.status, dict(page.headers), page.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        return sock.recv(4096)


def _account(config: Config) -> tuple[str, str, str]:
    """An investigator as `peluit investigator add` makes one: username, passphrase, TOTP."""
    with Instance.open(config) as inst, inst.sessions() as session:
        tenant = create_tenant(session, slug="pemkot-uji", name="Pemkot Uji",
                               kind=TenantKind.PEMERINTAH_KOTA)
        account, passphrase = create_investigator(
            session, tenant, "verif.uji", "Verifikator Uji", Role.VERIFIKATOR,
            settings=inst.auth_settings(),
        )
        enrolment = start_enrolment(session, account, settings=inst.auth_settings())
        session.commit()
        assert passphrase is not None
        return account.username, passphrase, enrolment.secret


def _log_in(port: int, account: tuple[str, str, str]) -> tuple[str, str]:
    """Log in through the login form, as a browser would; the page it lands on and its URL."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    base = f"http://127.0.0.1:{port}"
    with opener.open(f"{base}/masuk", timeout=10) as page:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())
    assert token
    username, passphrase, secret = account
    form = urllib.parse.urlencode({
        "csrf_token": token.group(1), "username": username, "password": passphrase,
        "totp": pyotp.TOTP(secret).now(),
    }).encode()
    with opener.open(f"{base}/masuk", data=form, timeout=30) as landed:
        return landed.geturl(), landed.read().decode()


def test_gunicorn_serves_the_investigator_interface_quietly_on_loopback(config: Config) -> None:
    init_instance(config)
    account = _account(config)
    port = _free_port()
    env = {
        **os.environ,
        "PELUIT_INSTANCE": str(config.instance_dir),
        "PELUIT_GNUPG_HOME": str(config.gnupg_home),
        "PELUIT_KDF_TIME_COST": str(config.kdf.time_cost),
        "PELUIT_KDF_MEMORY_KIB": str(config.kdf.memory_kib),
    }
    server = subprocess.Popen(
        # The configuration's own wsgi_app: no application argument, as the unit may omit it.
        [sys.executable, "-m", "gunicorn", "-c", str(CONF),
         "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, headers, body = _get(port, "/masuk")
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
                time.sleep(0.2)
        home = _log_in(port, account)
        missing, _, _ = _get(port, "/rahasia-jalur-xq7?kode=rahasia-kueri-xq7")
        refused = _raw(port, b"GET /rahasia-baris-xq7 HTTP/1.1 EXTRA\r\n\r\n")
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=60)
    assert status == 200
    assert 'name="password"' in body or "type=\"password\"" in body
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, name
    assert missing == 404
    # Logged in: sent on from the login page to a page with a way to log out.
    landed_url, landed = home
    assert not landed_url.endswith("/masuk"), landed
    assert "/keluar" in landed, landed[:2000]
    assert refused.startswith(b"HTTP/1.1 400")
    printed = (stdout + stderr).decode()
    # No access log and no request detail in the error log, even for a malformed request.
    assert "invalid HTTP request refused" in printed
    for secret in ("rahasia-jalur-xq7", "rahasia-kueri-xq7", "rahasia-baris-xq7", "/masuk",
                   "127.0.0.1:", "Python-urllib", "GET "):
        assert secret not in printed, (secret, printed)


def test_configuration_binds_loopback_8081_only() -> None:
    # The investigator onion forwards to 127.0.0.1:8081. Loaded as gunicorn loads it (a file).
    spec = importlib.util.spec_from_file_location("gunicorn_journalist_conf", CONF)
    assert spec is not None and spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    assert conf.bind == ["127.0.0.1:8081"]
    assert conf.accesslog is None
    assert conf.forwarded_allow_ips == ""
    assert conf.logger_class is QuietLogger
    assert conf.wsgi_app == "journalist_iface.wsgi:make_app()"


def _offline_root(tmp_path: Path) -> Path:
    """A file-system root for ``systemd-analyze verify --root``: the system's own units (for
    sysinit.target and friends), the units under test, and stand-ins for the programs they run
    (verify checks that each ExecStart names an executable; it runs none)."""
    root = tmp_path / "root"
    venv = root / "opt" / "peluit" / ".venv" / "bin"
    venv.mkdir(parents=True)
    for program in ("gunicorn", "peluit"):
        (venv / program).write_text("#!/bin/sh\n")
        (venv / program).chmod(0o755)
    (root / "bin").mkdir()
    shutil.copy2("/bin/sh", root / "bin" / "sh")
    shutil.copytree("/usr/lib/systemd/system", root / "usr" / "lib" / "systemd" / "system",
                    symlinks=True)
    shutil.copytree(UNITS, root / "etc" / "systemd" / "system")
    return root


def _verify(root: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "--man=no", *names],
        cwd=root / "etc" / "systemd" / "system", capture_output=True, text=True, timeout=120,
    )


def test_systemd_units_verify(tmp_path: Path) -> None:
    # systemd-analyze exists here (Debian's systemd package) though systemd does not run as
    # PID 1, so the units are verified offline against a root that holds the system's units.
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is needed: apt-get install systemd")
    root = _offline_root(tmp_path)
    names = sorted(p.name for p in UNITS.iterdir() if p.suffix in (".service", ".timer"))
    assert "peluit-journalist.service" in names
    result = _verify(root, names)
    # Any unknown key, bad value or missing target is printed; a clean unit prints nothing.
    assert result.returncode == 0 and result.stderr == "", result.stderr
    # The check can fail: a unit with a misspelt key is reported.
    (root / "etc" / "systemd" / "system" / "peluit-broken.service").write_text(
        "[Service]\nExecStrat=/opt/peluit/.venv/bin/peluit doctor\n"
        "ExecStart=/opt/peluit/.venv/bin/peluit doctor\n"
    )
    broken = _verify(root, ["peluit-broken.service"])
    assert "Unknown key" in broken.stderr


def test_journalist_unit_has_the_source_units_sandbox() -> None:
    def hardening(name: str) -> list[str]:
        text = (UNITS / name).read_text()
        section = text.split("# --- hardening", 1)[1].split("[Install]", 1)[0]
        return [line for line in section.splitlines()[1:] if line and not line.startswith("#")]

    assert hardening("peluit-journalist.service") == hardening("peluit-source.service")
    unit = (UNITS / "peluit-journalist.service").read_text()
    assert "gunicorn-journalist.conf.py 'journalist_iface.wsgi:make_app()'" in unit
