"""A real SMTP server on loopback for the e-mail alert tests (aiosmtpd, in a thread).

Import the fixture into a test module (``from tests.smtpd import smtpd``): it starts a server on
a free port of 127.0.0.1 and keeps every message it accepts, parsed, in ``received``.
"""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
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
            Received(str(envelope.mail_from), [str(to) for to in envelope.rcpt_tos], parsed)
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


@pytest.fixture
def smtpd() -> Iterator[SmtpServer]:
    server = SmtpServer("127.0.0.1", free_port())
    controller = Controller(
        _Handler(server), hostname=server.host, port=server.port,
        authenticator=_authenticator(server),
        # Plain AUTH on loopback: the relay's TLS is not what these tests are about.
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
