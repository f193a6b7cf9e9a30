"""A real SMTP server on loopback for the e-mail alert tests (aiosmtpd, in a thread).

Import the fixture into a test module (``from tests.smtpd import smtpd``): it starts a server on
a free port of 127.0.0.1 and keeps every message it accepts, parsed, in ``received``.
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    # The name the client gave in EHLO/HELO.
    helo: str = ""

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]


@dataclass
class SmtpServer:
    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    # Credentials the server accepts (AUTH PLAIN/LOGIN); no AUTH is asked for unless a client
    # offers it.
    user: str = "peluit"
    password: str = "rahasia relay"
    logins: list[str] = field(default_factory=list)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.server.received.append(
            Received(str(envelope.mail_from), [str(to) for to in envelope.rcpt_tos], parsed,
                     str(session.host_name))
        )
        return "250 OK"


def _authenticator(server: SmtpServer) -> Any:
    def check(smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, auth: Any) -> Any:
        ok = (
            isinstance(auth, LoginPassword)
            and auth.login.decode() == server.user
            and auth.password.decode() == server.password
        )
        if ok:
            server.logins.append(server.user)
        return AuthResult(success=ok)

    return check


@contextmanager
def running_smtpd(**options: Any) -> Iterator[SmtpServer]:
    """A server on a free loopback port; ``options`` go to aiosmtpd (TLS contexts)."""
    server = SmtpServer("127.0.0.1", free_port())
    controller = Controller(
        _Handler(server), hostname=server.host, port=server.port,
        authenticator=_authenticator(server),
        # Plain AUTH on loopback: the relay's TLS is not what most tests are about.
        auth_require_tls=False,
        **options,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def smtpd() -> Iterator[SmtpServer]:
    with running_smtpd() as server:
        yield server


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost and its key, made by openssl: a relay's TLS
    that a client trusts only if told to (SSL_CERT_FILE)."""
    cert, key = folder / "relay.pem", folder / "relay.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True, capture_output=True,
    )
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
