"""``peluit alerts send --daily|--weekly``: mail the content-free digests (:mod:`wbs.alerts`)
through the configured SMTP relay, the only network this command touches.

Run by ``deploy/systemd/peluit-alerts-daily.timer`` and ``peluit-alerts-weekly.timer``. A digest
is recorded as sent only once the relay accepted it, so an unreachable relay leaves everything to
the next run; a digest already sent today (weekly: this ISO week) is not sent again.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import click

from peluit.clikit import config_of, opened
from wbs.alerts import Digest, Kind, compose, mark_sent, pending_digests
from wbs.config import Config
from wbs.models import utcnow
from wbs.onion import investigator_onion

# The Message-ID's domain and the name given in EHLO: smtplib's and make_msgid's default is
# this machine's host name, which a mail relay has no business learning.
MESSAGE_ID_DOMAIN = "peluit.invalid"
EHLO_NAME = MESSAGE_ID_DOMAIN


class AlertError(RuntimeError):
    """The relay is not configured, cannot be reached, or refused: one line for the operator."""


def _one_line(exc: BaseException) -> str:
    """The relay's or the system's reason, on one line (a relay's reply may span several)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        text = f"{exc.smtp_code} {text}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Relay:
    """The SMTP relay of the configuration: checked before anything is counted."""

    def __init__(self, config: Config) -> None:
        if not config.smtp_host:
            raise AlertError(
                "no SMTP relay is configured: set [smtp] host and from in peluit.toml "
                "(or PELUIT_SMTP_HOST and PELUIT_SMTP_FROM)"
            )
        if not config.smtp_from:
            raise AlertError("no sender address: set [smtp] from (or PELUIT_SMTP_FROM)")
        if config.smtp_security == "none" and not _is_loopback(config.smtp_host):
            # The counts would cross the network in clear, and so would the password.
            raise AlertError(
                f"smtp_security = none is allowed only for a relay on loopback, "
                f"not {config.smtp_host}: use starttls or tls"
            )
        if (config.smtp_user is None) != (config.smtp_password is None):
            raise AlertError("set both [smtp] user and password, or neither")
        self.config = config
        self.host: str = config.smtp_host
        self.where = f"{config.smtp_host}:{config.smtp_port}"

    @contextmanager
    def connect(self) -> Iterator[smtplib.SMTP]:
        cfg, host = self.config, self.host
        try:
            smtp: smtplib.SMTP
            if cfg.smtp_security == "tls":
                smtp = smtplib.SMTP_SSL(
                    host, cfg.smtp_port, timeout=cfg.smtp_timeout,
                    context=ssl.create_default_context(), local_hostname=EHLO_NAME,
                )
            else:
                smtp = smtplib.SMTP(
                    host, cfg.smtp_port, timeout=cfg.smtp_timeout, local_hostname=EHLO_NAME
                )
            try:
                if cfg.smtp_security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.smtp_user is not None and cfg.smtp_password is not None:
                    smtp.login(cfg.smtp_user, cfg.smtp_password)
            except BaseException:
                smtp.close()
                raise
        except (OSError, smtplib.SMTPException) as exc:
            reason = _one_line(exc)
            raise AlertError(f"the SMTP relay {self.where} is unreachable: {reason}") from None
        try:
            yield smtp
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def message(self, digest: Digest, link: str | None) -> EmailMessage:
        subject, body = compose(digest, link)
        message = EmailMessage()
        message["From"] = str(self.config.smtp_from)
        message["To"] = digest.email
        message["Subject"] = subject
        # UTC, so the header says nothing about the server's time zone either.
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=MESSAGE_ID_DOMAIN)
        message.set_content(body)
        return message


@click.group()
def alerts() -> None:
    """Content-free e-mail alerts to investigators (counts and a link, nothing else)."""


@alerts.command("send")
@click.option("--daily", "kind", flag_value=Kind.DAILY.value, help="Each account's daily digest.")
@click.option(
    "--weekly", "kind", flag_value=Kind.WEEKLY.value,
    help="The weekly totals to admin instansi and pemantau KPK.",
)
@click.pass_context
def send(ctx: click.Context, kind: str | None) -> None:
    """Send the digests not yet sent today (weekly: this week) through the SMTP relay."""
    if kind is None:
        raise click.UsageError("say which digest: --daily or --weekly")
    relay = Relay(config_of(ctx))
    digest_kind = Kind(kind)
    with opened(ctx) as inst, inst.sessions() as session:
        now = utcnow()
        digests = pending_digests(inst, session, digest_kind, now)
        mailed = [digest for digest in digests if not digest.counts.empty]
        link = investigator_onion(inst)
        url = f"http://{link}/" if link else None
        refused: list[str] = []
        if mailed:
            with relay.connect() as smtp:
                for digest in mailed:
                    try:
                        smtp.send_message(relay.message(digest, url))
                    except smtplib.SMTPRecipientsRefused:
                        # One bad address must not hold back everyone else's digest.
                        refused.append(digest.email)
                        continue
                    except (OSError, smtplib.SMTPException) as exc:
                        raise AlertError(
                            f"the SMTP relay {relay.where} failed: {_one_line(exc)}"
                        ) from None
                    mark_sent(digest, now)
                    session.commit()
        # Nothing to report is done too, but only once the relay worked: an unreachable relay
        # leaves every digest for the next run.
        for digest in digests:
            if digest.counts.empty:
                mark_sent(digest, now)
        session.commit()
    sent = len(mailed) - len(refused)
    click.echo(
        f"{sent} {digest_kind.value} digest(s) sent, "
        f"{len(digests) - len(mailed)} with nothing to report"
    )
    if refused:
        raise AlertError(f"the relay refused {len(refused)} address(es): {', '.join(refused)}")
