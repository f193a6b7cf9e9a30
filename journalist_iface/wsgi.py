"""The investigator interface for gunicorn, built from the environment.

Run as ``gunicorn -c deploy/gunicorn-journalist.conf.py 'journalist_iface.wsgi:make_app()'``
(deploy/systemd/peluit-journalist.service); the investigator onion forwards to it on
127.0.0.1:8081.

Importing this module does nothing: no configuration is read, no database is opened. gunicorn
calls :func:`make_app` in each worker after it has forked (``preload_app`` stays off), so every
worker opens its own database engine and keyring rather than sharing connections inherited
across ``fork``.
"""

from __future__ import annotations

from flask import Flask

from journalist_iface import create_app
from wbs.config import load_config
from wbs.instance import Instance


def make_app() -> Flask:
    """The investigator interface of the instance named by ``PELUIT_INSTANCE`` and ``PELUIT_*``.

    A bad setting or an instance that is not initialised stops the worker with a message naming
    the problem; gunicorn then refuses to start rather than serve a broken app. There are no
    tenant paths here: an investigator's tenant comes from the account, never from the URL.
    """
    return create_app(Instance.open(load_config()))
