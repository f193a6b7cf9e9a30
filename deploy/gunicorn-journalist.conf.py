"""gunicorn settings for the investigator interface in production.

Run: ``gunicorn -c deploy/gunicorn-journalist.conf.py 'journalist_iface.wsgi:make_app()'`` with
``PELUIT_INSTANCE`` (and any other ``PELUIT_*`` setting) in the environment. The investigator
onion (client authorization, :mod:`wbs.onion`) forwards to the address below; nothing else may
reach it.

Written for gunicorn 23, with the same guarantees as the source interface's
``deploy/gunicorn.conf.py`` (read its comments for the reasons): loopback only, no access log,
an error log without request details (the shared ``QuietLogger``), no trusted forwarding header.
The store sweep and the flood counters are the source interface's: its master does them at
start (on_starting there); this server has none of its own to do.
"""

from __future__ import annotations

from iface_common.gunicorn_quiet import QuietLogger

# --- where --------------------------------------------------------------------------------------

# Loopback only: the investigator onion forwards to 127.0.0.1:8081 (peluit.clikit's
# INVESTIGATOR_PORT, `peluit onion publish --journalist-port`). Tests override it with --bind.
bind = ["127.0.0.1:8081"]
wsgi_app = "journalist_iface.wsgi:make_app()"
proc_name = "peluit-journalist"

# --- workers ------------------------------------------------------------------------------------

# gthread: an investigator downloading a large item over Tor keeps a thread, not the worker.
# A handful of investigators per instance: two workers of four threads are plenty.
worker_class = "gthread"
workers = 2
threads = 4
keepalive = 5
timeout = 120
graceful_timeout = 30  # the unit's TimeoutStopSec is longer
max_requests = 0
preload_app = False
umask = 0o077
worker_tmp_dir = "/dev/shm"  # noqa: S108  # a tmpfs of the system, not a shared file name

# --- requests -----------------------------------------------------------------------------------

limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# Every connection comes from tor on 127.0.0.1: trust no forwarding header from anyone.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
proxy_protocol = False

# --- logging ------------------------------------------------------------------------------------

# No access log: it would record which investigator looked at which case, and when.
accesslog = None
disable_redirect_access_to_syslog = True
errorlog = "-"  # stderr: journald under systemd
loglevel = "warning"
capture_output = False
logger_class = QuietLogger
