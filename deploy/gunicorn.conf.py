"""gunicorn settings for the source interface in production.

Run: ``gunicorn -c deploy/gunicorn.conf.py 'source_iface.wsgi:make_app()'`` with
``PELUIT_INSTANCE`` (and any other ``PELUIT_*`` setting) in the environment. tor's onion service
forwards to the address below; nothing else may reach it.

Written for gunicorn 23. What it must guarantee, whatever else changes:

* listen on loopback only: tor is the only way in;
* never write a request line, path, query, header, address or user agent anywhere: no access
  log, and an error log whose request-related messages are stripped (see ``QuietLogger``);
* never trust forwarding headers: every visitor arrives from 127.0.0.1 through tor, so "trusted
  proxy" would mean "anyone on the Tor network".
"""

from __future__ import annotations

from typing import Any

from iface_common.gunicorn_quiet import QuietLogger

# --- where --------------------------------------------------------------------------------------

# Loopback only. The bench (and a second instance on one host) overrides this with --bind.
bind = ["127.0.0.1:8080"]
# The default; named so a `gunicorn -c deploy/gunicorn.conf.py` without arguments serves Peluit.
wsgi_app = "source_iface.wsgi:make_app()"
proc_name = "peluit-source"

# --- workers ------------------------------------------------------------------------------------

# gthread, not sync. A reporter's upload over Tor runs at tens or hundreds of KB/s, so 1 GB of
# evidence can take an hour or more. A sync worker handles one request at a time, so one upload
# would take the whole worker (and with it every page view queued behind it) for that hour. A
# gthread worker hands each connection to a thread of its pool; the upload thread spends its
# time waiting on the socket and on gpg's pipe, both of which release the GIL, so the other
# threads keep serving pages. Memory stays flat per upload: the parser holds one 64 KiB chunk,
# gpg runs as its own process.
worker_class = "gthread"
# One worker per core (the bench machine and a small VPS have 2). The flood counters
# (source_iface.flood) are made by the master before it forks and shared by all workers, so
# the limits hold for the server as a whole, whatever this number (see on_starting).
workers = 2
# Concurrent requests per worker: up to workers * threads uploads can run at once, each with its
# own gpg process. tor's HiddenServiceMaxStreams (deploy torrc) bounds what arrives.
threads = 8
# Idle keep-alive connections wait in the worker's poller, not in a thread. Onion round trips
# take about a second, so the page and its style sheet should share one connection.
keepalive = 5

# With gthread, `timeout` does NOT bound how long a request may take: the worker's main loop
# reports to the arbiter every second while its threads run requests, so an hour-long upload
# is never killed for being slow (the sync worker, by contrast, reports only between requests,
# and there `timeout` would have to exceed the slowest upload, e.g. 3600 s). Here `timeout` only
# catches a worker whose main loop has hung; a large value would just leave a hung worker (and
# its share of capacity) dead for longer before the arbiter replaces it.
timeout = 120
# On restart or shutdown, uploads still running get this long to finish; after that they are
# cut off and their .part files are removed (Store.sweep settles the rest at the next start:
# see on_starting below).
# The systemd unit's TimeoutStopSec must be longer than this.
graceful_timeout = 120
# Workers never recycle themselves: a restart would cut the uploads in flight.
max_requests = 0

# Each worker builds its own app (database engine, keyring) after fork; an engine or a pipe
# inherited across fork would be shared by processes that do not know about each other.
preload_app = False
# Files a worker creates are the service user's alone (the store sets 0600 itself as well).
umask = 0o077
# The heartbeat file is touched every second; keep it in RAM, not on the disk holding the store.
worker_tmp_dir = "/dev/shm"  # noqa: S108  # a tmpfs of the system, not a shared file name

# --- requests -----------------------------------------------------------------------------------

# gunicorn's defaults, named here so a change is a visible decision: the request line, header
# count and header size limits. Bodies are limited by the app (PELUIT_MAX_UPLOAD_BYTES), which
# refuses an oversized Content-Length before reading a byte.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# Trust no forwarding header from anyone. Every connection comes from tor on 127.0.0.1, so
# gunicorn's default (trust 127.0.0.1) would let any visitor set the scheme or the remote
# address the app sees.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
proxy_protocol = False

# The Server header: gunicorn 23 sends "Server: gunicorn" with no version (gunicorn.SERVER;
# the version is only in the WSGI environ's SERVER_SOFTWARE, which is never sent). A product
# name without a version tells an onion visitor nothing that the response style does not.

# --- logging ------------------------------------------------------------------------------------

# No access log, ever: it would record each request line, and with it the timing of each pelapor
# and the case ids they look at. tor makes every address 127.0.0.1, but the rule is structural.
accesslog = None
disable_redirect_access_to_syslog = True
errorlog = "-"  # stderr: journald under systemd
loglevel = "warning"
capture_output = False

# gunicorn's own messages that quote a request become fixed lines: see QuietLogger, shared
# with deploy/gunicorn-journalist.conf.py.
logger_class = QuietLogger

# --- start --------------------------------------------------------------------------------------


def on_starting(server: Any) -> None:
    """Sweep the store, and make the flood counters, before the first worker starts.

    A worker killed in the middle of an upload (SIGKILL, the OOM killer, a power cut) leaves
    its ``.part`` file, and an interrupted deletion its ``.deleting`` file; nothing else ever
    removes them, so without this they pile up until the disk reaches its floor and intake
    closes. Here, in the master before any worker exists, no upload of this server is in
    flight. A bad setting or an uninitialised instance stops gunicorn here, with its message.

    The flood counters are made here, in the master, so that every worker forked from it
    counts in the same shared memory (and a worker the arbiter replaces joins them).
    """
    # Imported here: reading this file (gunicorn --check-config, the tests) must not load Flask.
    from source_iface.wsgi import prepare_workers, settle_store

    prepare_workers()

    removed = settle_store()
    if removed:
        server.log.warning("removed %d unfinished upload(s) from the store", len(removed))
