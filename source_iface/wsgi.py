"""The source interface for gunicorn, built from the environment.

Run as ``gunicorn -c deploy/gunicorn.conf.py 'source_iface.wsgi:make_app()'``.

Importing this module does nothing: no configuration is read, no database is opened. gunicorn
calls :func:`make_app` in each worker after it has forked (``preload_app`` stays off in
``deploy/gunicorn.conf.py``), so every worker opens its own database engine and keyring rather
than sharing connections inherited across ``fork``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from source_iface import create_app, flood
from wbs import retention
from wbs.config import load_config
from wbs.instance import Instance

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def make_app() -> Flask:
    """The source interface of the instance named by ``PELUIT_INSTANCE`` and ``PELUIT_*``.

    A bad setting or an instance that is not initialised stops the worker with a message
    naming the problem (:class:`wbs.config.ConfigError`, or ``RuntimeError`` from
    :meth:`Instance.open`); gunicorn then refuses to start rather than serve a broken app.
    """
    config = load_config()
    inst = Instance.open(config)
    # Production: each tenant answers only to its own onion Host, never by /t/<slug>/ paths
    # (a visitor controls the Host header, so "loopback" is not proof of a local request).
    # The flood counters the master made before forking, shared by every worker (without it,
    # as under another WSGI server, each process counts for itself).
    app = create_app(inst, dev_tenant_paths=False, flood_guard=flood.shared_guard())
    app.wsgi_app = GunicornBodyInput(app.wsgi_app)  # type: ignore[method-assign]
    return app


def prepare_workers() -> None:
    """In gunicorn's master, before any worker forks: the flood counters they share."""
    flood.share_with_workers()


def settle_store() -> list[str]:
    """Settle the store of the instance named by the environment after a crash (see
    :meth:`wbs.store.Store.sweep`); return what was removed. For gunicorn's master, before it
    starts any worker (``on_starting`` in ``deploy/gunicorn.conf.py``).

    It also forgets what is kept only until it is no longer needed: pelapor sessions whose day
    is over, and codenames that never sent a report (:mod:`wbs.sources`).
    """
    # Opened and closed here: nothing of it (engine, keyring) is left for the workers to
    # inherit across fork.
    with Instance.open(load_config()) as inst:
        removed = inst.sweep_store()
        with inst.sessions() as session:
            retention.purge(session)
        return removed


class _BodyReader(io.RawIOBase):
    """``wsgi.input`` over gunicorn's body reader, read in the sizes the app asks for."""

    def __init__(self, reader: Any) -> None:
        super().__init__()
        self._reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data: bytes = self._reader.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class GunicornBodyInput:
    """Hands the app gunicorn's request body without gunicorn's 1 KiB read loop.

    gunicorn 23's ``wsgi.input`` (``gunicorn.http.body.Body``) answers ``read(65536)`` by calling
    its reader 64 times for 1 KiB each, through several Python layers: for a 1 GiB upload that
    is about a million calls and, on the bench machine, more CPU than the multipart parser and
    the pipe into gpg together (``bench/bench_source.py``). Its reader (length, chunked or
    until-EOF) takes any size, so the body is read through it directly. Same bytes, same end of
    body, and gunicorn still drains whatever the app leaves unread before the next keep-alive
    request. Anything that is not an untouched gunicorn ``Body`` passes through unchanged.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body = environ.get("wsgi.input")
        reader = getattr(body, "reader", None)
        pending = getattr(body, "buf", None)
        if (
            type(body).__module__ == "gunicorn.http.body"
            and callable(getattr(reader, "read", None))
            and isinstance(pending, io.BytesIO)
            and pending.tell() == 0
        ):
            environ["wsgi.input"] = io.BufferedReader(_BodyReader(reader), 64 * 1024)
        return self.app(environ, start_response)
