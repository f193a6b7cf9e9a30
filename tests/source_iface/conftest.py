"""A real instance for the source interface: demo tenants, real gpg keys, cheap KDF.

Built once per test module (key generation and migrations are the slow part); tests that need
an empty store measure what they add instead of assuming nothing is there.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crypto.keyring import kill_agent
from peluit.demo import ensure_demo
from source_iface import create_app
from tests.support import CHEAP_KDF, short_tempdir
from wbs.config import load_config
from wbs.instance import Instance, init_instance

TENANT = "pemprov-sumsel"
OTHER_TENANT = "kpk"
MAX_UPLOAD = 4 * 1024 * 1024


@dataclass
class Demo:
    inst: Instance
    app: Flask
    # The demo workstation's GnuPG home: the only place the recipients' secret keys exist.
    workstation: Path
    temp: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("source")
    gnupg, workstation = short_tempdir("si-"), short_tempdir("siws-")
    env = {
        "PELUIT_GNUPG_HOME": str(gnupg),
        "PELUIT_KDF_TIME_COST": str(CHEAP_KDF.time_cost),
        "PELUIT_KDF_MEMORY_KIB": str(CHEAP_KDF.memory_kib),
        "PELUIT_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "PELUIT_DISK_FLOOR_BYTES": "1M",
    }
    config = load_config(env, instance_dir=root / "instance")
    init_instance(config)
    inst = Instance.open(config)
    with inst.sessions() as session:
        ensure_demo(session, inst.keyring, workstation, settings=inst.auth_settings())
    app = create_app(inst, testing=True)
    try:
        yield Demo(inst=inst, app=app, workstation=workstation / "gnupg", temp=root)
    finally:
        inst.close()
        kill_agent(workstation / "gnupg")
        kill_agent(gnupg)
        shutil.rmtree(gnupg, ignore_errors=True)
        shutil.rmtree(workstation, ignore_errors=True)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CODENAME = re.compile(r'name="codename" value="([^"]+)"')
_TAG = re.compile(r'name="tag" value="([^"]+)"')


def csrf_token(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "page has no CSRF token"
    return found.group(1)


def multipart(
    fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]
) -> tuple[bytes, str]:
    """A multipart body built in memory, text fields first, as a browser sends the form.

    Built by hand rather than by the test client, whose encoder spools large bodies to a
    temporary file: the test must not be the one writing plaintext to disk.
    """
    boundary = "----peluit" + secrets.token_hex(12)
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for name, filename, data in files:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


GOOD_ANSWERS = {
    "category": "suap_menyuap",
    "mcp_area": "perizinan",
    "apa": "Kepala seksi meminta uang pelicin untuk menerbitkan izin usaha.",
    "siapa": "Kepala Seksi Perizinan, Dinas Penanaman Modal",
    "kapan": "Maret 2025, masih berlangsung",
    "dimana": "Kantor Dinas Penanaman Modal",
    "bagaimana": "Pemohon diminta transfer ke rekening pribadi sebelum izin terbit.",
    "berapa": "Rp5.000.000 per izin",
    "kronologi": "",
}


class Reporter:
    """A pelapor's browser at one tenant (development paths on loopback)."""

    def __init__(self, client: FlaskClient, tenant: str = TENANT) -> None:
        self.client = client
        self.prefix = f"/t/{tenant}"
        # Every response, so tests can check what went into cookies and redirects.
        self.responses: list[Any] = []

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(self.prefix + path, **kwargs)
        self.responses.append(response)
        return response

    def post(self, path: str, **kwargs: Any) -> Any:
        response = self.client.post(self.prefix + path, **kwargs)
        self.responses.append(response)
        return response

    def new_codename(self) -> str:
        page = self.get("/kode-baru").get_data(as_text=True)
        codename = _CODENAME.search(page)
        tag = _TAG.search(page)
        assert codename and tag
        response = self.post(
            "/kode-baru",
            data={
                "csrf_token": csrf_token(page),
                "codename": codename.group(1),
                "tag": tag.group(1),
                "noted": "1",
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        return codename.group(1)

    def token(self, path: str = "/lapor") -> str:
        return csrf_token(self.get(path).get_data(as_text=True))

    def send_report(
        self,
        answers: dict[str, str] | None = None,
        files: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
        *,
        token: str | None = None,
        extra: list[tuple[str, str]] = (),  # type: ignore[assignment]
    ) -> Any:
        token = self.token() if token is None else token
        fields = [("csrf_token", token), ("website", ""), *extra]
        fields += list((answers or GOOD_ANSWERS).items())
        body, content_type = multipart(fields, [("file", n, d) for n, d in files])
        return self.post("/lapor", data=body, content_type=content_type)

    def send_follow_up(
        self, number: str, message: str, files: list[tuple[str, bytes]] = ()  # type: ignore[assignment]
    ) -> Any:
        """Send more to the case with registration number ``number``."""
        token = self.token("/pengaduan")
        fields = [("csrf_token", token), ("website", ""), ("message", message)]
        body, content_type = multipart(fields, [("file", n, d) for n, d in files])
        return self.post(f"/pengaduan/{number}/kirim", data=body, content_type=content_type)

    def login(self, codename: str) -> Any:
        token = self.token("/masuk")
        return self.post("/masuk", data={"csrf_token": token, "codename": codename})

    def logout(self) -> Any:
        token = self.token("/pengaduan")
        return self.post("/keluar", data={"csrf_token": token})


@pytest.fixture
def client(demo: Demo) -> FlaskClient:
    return demo.app.test_client()


@pytest.fixture
def reporter(client: FlaskClient) -> Reporter:
    return Reporter(client)
