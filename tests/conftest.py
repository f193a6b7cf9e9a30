"""Shared fixtures: cheap key derivation, isolated instances, short GnuPG homes, databases.

Every test gets its own instance folder. Database tests run on SQLite and on a real PostgreSQL
server that this file starts once per test session (or the one named by PELUIT_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

from tests.support import CHEAP_KDF, short_tempdir
from wbs.config import Config, generate_secrets, load_config
from wbs.instance import Instance

# Property tests (tests/reliability/) run the same examples on every run and keep no example
# database: a failure reproduces from the test alone, and nothing (.hypothesis/) is written into
# the repository. Each property sets its own small max_examples so the harness stays a couple
# of minutes.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("ci")
# Hypothesis also keeps a cache of constants (even without a database), from collection on:
# in a temp folder of this run, removed at exit.
_HYPOTHESIS_HOME = short_tempdir("hyp-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)




@pytest.fixture
def gnupg_home() -> Iterator[Path]:
    home = short_tempdir("pg-")
    os.chmod(home, 0o700)
    yield home
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True
    )
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def instance_dir(tmp_path: Path) -> Path:
    path = tmp_path / "instance"
    path.mkdir()
    return path


@pytest.fixture
def make_config(instance_dir: Path, gnupg_home: Path):  # type: ignore[no-untyped-def]
    """Build a Config for this test's instance; keyword arguments become PELUIT_* settings."""

    def make(**settings: object) -> Config:
        env = {f"PELUIT_{key.upper()}": str(value) for key, value in settings.items()}
        env.setdefault("PELUIT_GNUPG_HOME", str(gnupg_home))
        env.setdefault("PELUIT_KDF_TIME_COST", str(CHEAP_KDF.time_cost))
        env.setdefault("PELUIT_KDF_MEMORY_KIB", str(CHEAP_KDF.memory_kib))
        return load_config(env, instance_dir=instance_dir)

    return make


@pytest.fixture
def config(make_config) -> Config:  # type: ignore[no-untyped-def]
    cfg: Config = make_config()
    generate_secrets(cfg.instance_dir)
    return cfg


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A URL of an empty PostgreSQL server: PELUIT_TEST_POSTGRES_URL, or a private cluster.

    The private cluster listens on loopback and a socket in a temp folder, runs as the
    'postgres' user when the tests run as root (initdb refuses root), and is stopped at the end.
    """
    url = os.environ.get("PELUIT_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.fail(
            "PostgreSQL is needed for the database tests: install it "
            "(apt-get install postgresql) or set PELUIT_TEST_POSTGRES_URL"
        )
    root = short_tempdir("pgsql-")
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-U", "peluit", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60",
            "-o", f"-h 127.0.0.1 -p {port} -k {sock} -F", "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://peluit@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


_db_counter = iter(range(10**6))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind: a file for SQLite, a fresh database on the server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    import sqlalchemy as sa

    server = request.getfixturevalue("postgres_server")
    name = f"t{os.getpid()}_{next(_db_counter)}_{int(time.time() * 1000) % 100000}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- A whole instance -------------------------------------------------------------------------


@dataclass
class DemoInstance:
    """An initialised instance with the demo tenants, and the workstation that can read it."""

    instance: Instance
    workstation: Path  # GNUPGHOME holding the demo tenants' secret keys

    def decrypt(self, ciphertext: bytes, framing: str = "padme/1") -> bytes:
        """What a stored item says, as the workstation reads it: decrypted with real gpg, then
        its padding frame checked and stripped (everything the server stores now is padded;
        pass the row's framing for anything else)."""
        from crypto.padding import FRAMING_PADME, unframe

        plain = subprocess.run(
            ["gpg", "--homedir", str(self.workstation), "--batch", "--decrypt"],
            input=ciphertext, capture_output=True, check=True,
        ).stdout
        return unframe(plain)[0] if framing == FRAMING_PADME else plain


@contextmanager
def open_demo(config: Config) -> Iterator[DemoInstance]:
    from crypto.keyring import kill_agent
    from peluit.demo import ensure_demo
    from wbs.instance import init_instance

    init_instance(config)
    workstation = short_tempdir("ws-")
    try:
        with Instance.open(config) as instance:
            with instance.sessions() as session:
                settings = instance.auth_settings()
                ensure_demo(session, instance.keyring, workstation, settings=settings)
            yield DemoInstance(instance, workstation / "gnupg")
    finally:
        kill_agent(workstation / "gnupg")
        shutil.rmtree(workstation, ignore_errors=True)


@pytest.fixture
def demo(config: Config) -> Iterator[DemoInstance]:
    """A demo instance on SQLite."""
    with open_demo(config) as opened:
        yield opened


@pytest.fixture
def demo_any_db(make_config, database_url: str) -> Iterator[DemoInstance]:  # type: ignore[no-untyped-def]
    """A demo instance on each database (SQLite and PostgreSQL)."""
    with open_demo(make_config(database_url=database_url)) as opened:
        yield opened
