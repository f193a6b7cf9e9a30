"""gunicorn settings for a hub's federation endpoint in production.

Run: ``gunicorn -c deploy/gunicorn-federation.conf.py 'federation_iface.wsgi:make_app()'`` with
``PELUIT_INSTANCE`` in the environment. The federation onion (client authorization for the
active members, :func:`wbs.onion.publish_federation`) forwards to the address below; nothing
else may reach it. The same guarantees as the other two servers: loopback only, no access log,
an error log without request details, no trusted forwarding header.
"""

from __future__ import annotations

from iface_common.gunicorn_quiet import QuietLogger

# Loopback only: the federation onion forwards to 127.0.0.1:8083 (peluit.clikit's
# FEDERATION_PORT, `peluit onion publish --federation-port`).
bind = ["127.0.0.1:8083"]
wsgi_app = "federation_iface.wsgi:make_app()"
proc_name = "peluit-federation"

# A member's sync is one request at a time; a few members at once. An envelope can carry
# 16 MiB of a shared item's parts, checked with gpg: allow a slow circuit.
worker_class = "gthread"
workers = 2
threads = 2
keepalive = 5
timeout = 300
graceful_timeout = 60
max_requests = 0
preload_app = False
umask = 0o077
worker_tmp_dir = "/dev/shm"  # noqa: S108  # a tmpfs of the system, not a shared file name

limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
proxy_protocol = False

# No access log: the times members sync would be kept for nothing.
accesslog = None
disable_redirect_access_to_syslog = True
errorlog = "-"
loglevel = "warning"
capture_output = False
logger_class = QuietLogger
