"""The hub's federation endpoint for gunicorn, built from the environment.

Run as ``gunicorn -c deploy/gunicorn-federation.conf.py 'federation_iface.wsgi:make_app()'``
(deploy/systemd/peluit-federation.service); the federation onion forwards to it on
127.0.0.1:8083. Importing this module does nothing; each worker opens its own instance.
"""

from __future__ import annotations

from flask import Flask

from federation_iface import create_app
from wbs.config import load_config
from wbs.instance import Instance


def make_app() -> Flask:
    """The federation endpoint of the instance named by ``PELUIT_INSTANCE`` and ``PELUIT_*``."""
    return create_app(Instance.open(load_config()))
