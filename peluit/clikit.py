"""What every command group of ``peluit`` shares: the instance, the ports, one-line errors.

Errors the operator can fix (a bad setting, a refused key, an unknown tenant) are printed as one
clear line and exit with status 1; never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from crypto.errors import CryptoError
from wbs.accounts import AccountError
from wbs.config import Config, ConfigError
from wbs.instance import Instance
from wbs.tenants import TenantError

# Where the interfaces listen on loopback (deploy/gunicorn.conf.py binds the same port).
SOURCE_PORT = 8080
INVESTIGATOR_PORT = 8081

# Errors whose message is the whole story for an operator.
OPERATOR_ERRORS = (ConfigError, TenantError, CryptoError, FileNotFoundError, RuntimeError)


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
        except OPERATOR_ERRORS as exc:
            raise click.ClickException(str(exc)) from None


class AccountGroup(OperatorGroup):
    """Also a refused account operation (an unknown user, a taken name) in one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
