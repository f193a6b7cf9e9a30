"""End-to-end fixtures: the real source interface on loopback, a real Chromium, axe-core.

The app runs in a background thread of the test process (Werkzeug's threaded server on a free
port of 127.0.0.1) against a real instance: the demo tenants, real gpg keys, SQLite and a local
store, a cheap KDF. Chromium is Debian's (``apt-get install chromium``), driven by Playwright;
axe-core comes from ``scripts/fetch-axe.sh`` at a pinned version.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Playwright, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from crypto.keyring import kill_agent
from peluit.demo import ensure_demo
from source_iface import create_app
from tests.support import CHEAP_KDF, short_tempdir
from wbs.config import load_config
from wbs.instance import Instance, init_instance

REPO_ROOT = Path(__file__).resolve().parents[2]
TENANT = "pemprov-sumsel"
CHROMIUM = os.environ.get("PELUIT_CHROMIUM", "/usr/bin/chromium")
AXE_JS = Path(os.environ.get("PELUIT_AXE_JS", REPO_ROOT / ".venv" / "axe" / "axe.min.js"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    # This machine has no network; without these Chromium keeps calling home in the background.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Served:
    """The source interface of a demo instance, listening on loopback."""

    inst: Instance
    app: Flask
    origin: str  # "http://127.0.0.1:<port>": the only place pages may load anything from
    base: str  # the tenant's drop box: origin + "/t/<slug>"
    # The demo workstation's GnuPG home: the only place the recipients' secret keys exist.
    workstation: Path
    server_gnupg: Path


@pytest.fixture(scope="session")
def axe_js() -> Path:
    if not AXE_JS.is_file():
        pytest.fail(
            f"axe-core is missing at {AXE_JS}: run scripts/fetch-axe.sh (make test runs it), "
            "or point PELUIT_AXE_JS at an axe.min.js"
        )
    return AXE_JS


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is needed for the end-to-end tests and is not at {CHROMIUM}: install "
            "the Debian package 'chromium' (apt-get install chromium, or make system-deps), "
            "or set PELUIT_CHROMIUM to its path"
        )
    found = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield found
    finally:
        found.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("e2e")
    gnupg, workstation = short_tempdir("e2e-"), short_tempdir("e2ews-")
    env = {
        "PELUIT_GNUPG_HOME": str(gnupg),
        "PELUIT_KDF_TIME_COST": str(CHEAP_KDF.time_cost),
        "PELUIT_KDF_MEMORY_KIB": str(CHEAP_KDF.memory_kib),
        # The default refuses uploads when less than 1 GiB is free: not the machine under test.
        "PELUIT_DISK_FLOOR_BYTES": "1M",
    }
    config = load_config(env, instance_dir=root / "instance")
    init_instance(config)
    inst = Instance.open(config)
    server: BaseWSGIServer | None = None
    thread: threading.Thread | None = None
    try:
        with inst.sessions() as session:
            ensure_demo(session, inst.keyring, workstation, settings=inst.auth_settings())
        # As deployed: not in testing mode, so errors become pages and CSRF is enforced.
        app = create_app(inst)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="e2e-app", daemon=True)
        thread.start()
        origin = f"http://127.0.0.1:{server.server_port}"
        yield Served(
            inst=inst,
            app=app,
            origin=origin,
            base=f"{origin}/t/{TENANT}",
            workstation=workstation / "gnupg",
            server_gnupg=gnupg,
        )
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        inst.close()
        kill_agent(workstation / "gnupg")
        kill_agent(gnupg)
        shutil.rmtree(gnupg, ignore_errors=True)
        shutil.rmtree(workstation, ignore_errors=True)
