"""What every command group of ``peluit`` shares: the instance, the ports, one-line errors.

Errors the operator can fix (a bad setting, a refused key, an unknown tenant) are printed as one
clear line and exit with status 1; never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.exc import DBAPIError

from crypto.errors import CryptoError
from wbs.accounts import AccountError
from wbs.config import Config, ConfigError
from wbs.instance import Instance
from wbs.tenants import TenantError

# Where the interfaces listen on loopback (deploy/gunicorn.conf.py binds the same port).
SOURCE_PORT = 8080
INVESTIGATOR_PORT = 8081
FEDERATION_PORT = 8083

# Errors whose message is the whole story for an operator.
OPERATOR_ERRORS = (ConfigError, TenantError, CryptoError, FileNotFoundError, RuntimeError)
# click's own ways of ending a command: --help and --version end with Exit(0), Ctrl-C at a
# prompt with Abort. Both are RuntimeErrors, so they must pass before OPERATOR_ERRORS is
# caught, or `--help` would print "Error: 0" and exit 1.
CLICK_ENDINGS = (click.exceptions.Exit, click.exceptions.Abort)


def config_of(ctx: click.Context) -> Config:
    """The configuration the root command loaded for this invocation."""
    cfg: Config = ctx.obj["config"]
    return cfg


@contextmanager
def opened(ctx: click.Context) -> Iterator[Instance]:
    with Instance.open(config_of(ctx)) as instance:
        yield instance


class OperatorGroup(click.Group):
    """A command group that turns an operator's error into one line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CLICK_ENDINGS:
            raise
        except OPERATOR_ERRORS as exc:
            raise click.ClickException(str(exc)) from None
        except DBAPIError as exc:
            # A database that refuses (read-only, locked, full, unreachable). The driver's own
            # message says why; SQLAlchemy's adds the statement and its parameters, which are
            # noise here and may quote a value the operator typed.
            raise click.ClickException(f"the database refused: {exc.orig}") from None
        except OSError as exc:
            # The instance folder, the keyring or the store cannot be written (a read-only or
            # full file system, wrong ownership): the system's message and the path say it.
            raise click.ClickException(str(exc)) from None


class AccountGroup(OperatorGroup):
    """Also a refused account operation (an unknown user, a taken name) in one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
