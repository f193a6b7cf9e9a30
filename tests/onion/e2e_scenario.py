"""The onion end-to-end scenario, run INSIDE a private network namespace by test_e2e_testnet.py.

``python -m tests.onion.e2e_scenario WORKDIR`` (under :data:`tests.onion.testnet.NAMESPACE_PREFIX`)
starts a private Tor network on loopback, a real demo instance whose source interface and
investigator interface (journalist_iface) listen on 127.0.0.1, publishes the onions with
wbs.onion, and then acts as a reporter and as investigators through the client tor's SOCKS
port with curl.
It prints one JSON object on stdout: what each step saw, and how long it took. Progress goes
to stderr. Every tor process is stopped by its PID in ``finally``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import stem.control
from stem.control import EventType
from werkzeug.serving import BaseWSGIServer, make_server

from tests.onion.testnet import scenario_main
from tests.onion.tornet import TestNetwork, free_port, in_private_namespace, loopback_up
from tests.support import CHEAP_KDF, short_tempdir

# The investigators' login page (journalist_iface), recognised by its form.
INVESTIGATOR_PAGE = 'name="totp"'
_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Fetch:
    rc: int
    status: int
    body: str
    error: str

    @property
    def ok(self) -> bool:
        return self.rc == 0 and 200 <= self.status < 400


class Curl:
    """A browser of sorts: curl through the client tor's SOCKS port, with a cookie jar."""

    def __init__(self, socks_port: int, workdir: Path) -> None:
        self.socks = f"127.0.0.1:{socks_port}"
        self.jar = workdir / "cookies.txt"
        self.body = workdir / "body.html"

    def __call__(self, url: str, *args: str, timeout: int = 30) -> Fetch:
        self.body.unlink(missing_ok=True)
        done = subprocess.run(
            [
                "curl", "-sS", "--socks5-hostname", self.socks, "--max-time", str(timeout),
                "-o", str(self.body), "-w", "%{http_code}",
                "-c", str(self.jar), "-b", str(self.jar), *args, url,
            ],
            capture_output=True, text=True, check=False,
        )
        body = self.body.read_text(errors="replace") if self.body.exists() else ""
        status = int(done.stdout.strip() or 0) if done.stdout.strip().isdigit() else 0
        return Fetch(done.returncode, status, body, done.stderr.strip())


def poll(fetch: Callable[[], Fetch], until: Callable[[Fetch], bool], timeout: float) -> Fetch:
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if until(result) or time.monotonic() > deadline:
            return result
        time.sleep(1)


def serve(app: Any, port: int) -> BaseWSGIServer:
    from peluit.devserver import QuietHandler

    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def field(name: str, html: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    if not found:
        raise AssertionError(f"no {name} in the page: {html[:300]!r}")
    return found.group(1)


def run(workdir: Path, out: dict[str, Any]) -> None:
    from crypto.keyring import kill_agent
    from peluit.demo import ensure_demo
    from source_iface import create_app
    from wbs import onion
    from wbs.accounts import AuthSettings, create_investigator
    from wbs.config import load_config
    from wbs.domain import Role
    from wbs.instance import Instance, init_instance
    from wbs.models import Submission, Tenant
    from wbs.tenants import get_tenant

    timings: dict[str, float] = out.setdefault("timings", {})
    checks: dict[str, Any] = out.setdefault("checks", {})

    def mark(name: str) -> None:
        timings[name] = round(time.monotonic() - _STARTED, 1)
        log(name)

    loopback_up()
    if not in_private_namespace():
        raise RuntimeError("not in a private network namespace")
    net = TestNetwork(workdir / "net")
    auth_dir = workdir / "client-auth"
    gnupg = short_tempdir("e2e-g-")
    station = short_tempdir("e2e-w-")
    servers: list[BaseWSGIServer] = []
    try:
        net.configure(client_auth_dir=auth_dir)
        net.start()
        mark("tor_started")
        out["pids"] = [p.pid for p in net.everything]

        # While tor bootstraps: a real instance with the demo tenants and two investigators.
        env = {
            "PELUIT_GNUPG_HOME": str(gnupg),
            "PELUIT_KDF_TIME_COST": str(CHEAP_KDF.time_cost),
            "PELUIT_KDF_MEMORY_KIB": str(CHEAP_KDF.memory_kib),
        }
        config = load_config(env, instance_dir=workdir / "instance")
        init_instance(config)
        inst = Instance.open(config)
        settings = AuthSettings.from_kdf(CHEAP_KDF)
        with inst.sessions() as session:
            ensure_demo(session, inst.keyring, station, settings=inst.auth_settings())
            siti, _ = create_investigator(
                session, get_tenant(session, "kpk"), "siti", "Siti", Role.PEMANTAU_KPK,
                settings=settings,
            )
            budi, _ = create_investigator(
                session, get_tenant(session, "pemprov-sumsel"), "budi", "Budi",
                Role.VERIFIKATOR, settings=settings,
            )
            session.commit()
            names = {t.slug: t.name for t in session.query(Tenant)}

        def count_submissions() -> int:
            with inst.sessions() as session:
                return int(session.scalar(sa.select(sa.func.count(Submission.id))) or 0)

        source_port, journalist_port = free_port(), free_port()
        servers.append(serve(create_app(inst, dev_tenant_paths=False), source_port))
        from journalist_iface import create_app as create_investigator_app

        servers.append(serve(create_investigator_app(inst), journalist_port))
        siti_key = onion.generate_client_key(inst, siti)
        budi_key = onion.generate_client_key(inst, budi)
        mark("instance_ready")

        service = net.service
        client = net.client
        assert service is not None and client is not None
        service.wait_control()
        control = f"127.0.0.1:{service.control_port}"
        with onion.connect(control) as ctl:
            # HS_DESC events: subscribed before publishing, as `peluit run` does.
            watch = onion.UploadWatch(ctl)
            published = onion.publish_all(ctl, inst, source_port, journalist_port)
            out["published"] = [
                [p.name, p.address, p.action, p.pow_defenses] for p in published
            ]
            addresses = {p.name: p.address for p in published}
            mark("published")
            checks["accepted_is_not_published"] = [
                onion.bootstrap_progress(ctl), sorted(watch.confirmed())
            ]
            net.wait_bootstrapped(180)
            mark("bootstrapped")
            uploaded = watch.wait(addresses.values(), 120)
            watch.close()
        checks["uploaded"] = sorted(
            name for name, address in addresses.items()
            if address.removesuffix(".onion") in uploaded
        )
        mark("uploaded")
        # A one-shot command (peluit onion status, doctor) on a fresh connection: HSFETCH.
        with onion.connect(control) as ctl:
            states = onion.status(ctl, inst, confirm_seconds=60)
        checks["status_published"] = sorted(s.name for s in states if s.published)
        # peluit doctor's tor checks on a healthy network: bootstrapped, published, a clock
        # within the consensus.
        from peluit.doctor import check_tor

        now = dt.datetime.now(tz=dt.UTC)
        checks["doctor"] = {c.name: [c.level, c.detail] for c in check_tor(control, inst, 60, now)}
        assert client.socks_port is not None and client.control_port is not None
        curl = Curl(client.socks_port, workdir)

        # --- a reporter, at two tenants ---------------------------------------------------
        kpk = f"http://{addresses['tenant:kpk']}"
        sumsel = f"http://{addresses['tenant:pemprov-sumsel']}"
        first = poll(lambda: curl(kpk + "/"), lambda f: f.ok, 120)
        checks["kpk_landing"] = [
            first.status, names["kpk"] in first.body, names["pemprov-sumsel"] in first.body,
            first.error,
        ]
        mark("kpk_landing")
        page = poll(lambda: curl(sumsel + "/"), lambda f: f.ok, 120)
        checks["sumsel_landing"] = [page.status, names["pemprov-sumsel"] in page.body]
        mark("sumsel_landing")

        # The whole report: codename, confirmation, the form with a file, the receipt.
        before = count_submissions()
        codename_page = curl(sumsel + "/kode-baru").body
        registered = curl(
            sumsel + "/kode-baru",
            "--data-urlencode", f"csrf_token={field('csrf_token', codename_page)}",
            "--data-urlencode", f"codename={field('codename', codename_page)}",
            "--data-urlencode", f"tag={field('tag', codename_page)}",
            "--data-urlencode", "noted=1",
        )
        form = curl(sumsel + "/lapor").body
        evidence = workdir / "bukti.txt"
        evidence.write_text("Bukti transfer ke rekening pribadi, Maret 2025.\n")
        answers = {
            "category": "suap_menyuap", "mcp_area": "perizinan",
            "apa": "Kepala seksi meminta uang pelicin untuk menerbitkan izin usaha.",
            "siapa": "Kepala Seksi Perizinan, Dinas Penanaman Modal",
            "kapan": "Maret 2025, masih berlangsung", "dimana": "Kantor Dinas Penanaman Modal",
            "bagaimana": "Pemohon diminta transfer ke rekening pribadi sebelum izin terbit.",
            "berapa": "Rp5.000.000 per izin", "kronologi": "",
        }
        fields = ["-F", f"csrf_token={field('csrf_token', form)}", "-F", "website="]
        for name, value in answers.items():
            fields += ["-F", f"{name}={value}"]
        fields += ["-F", f"file=@{evidence};filename=bukti.txt"]
        sent = curl(sumsel + "/lapor", *fields, "-L")
        receipt = re.search(r'class="regno">([A-Z0-9-]+)<', sent.body)
        checks["report"] = [registered.status, sent.status, receipt.group(1) if receipt else None]
        out["receipt_excerpt"] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", sent.body))[:600]
        checks["report_stored"] = count_submissions() - before
        mark("report_sent")

        # --- investigators: client authorization -------------------------------------------
        staff = f"http://{addresses['investigator']}/masuk"

        def restart_client_with(key: onion.ClientKey) -> None:
            # Tor Browser's way 1: the .auth_private file in ClientOnionAuthDir, read at start.
            for old in auth_dir.glob("*.auth_private"):
                old.unlink()
            path = auth_dir / f"{key.username}.auth_private"
            path.write_text(key.auth_private + "\n")
            path.chmod(0o600)
            client.stop()
            client.start()
            client.wait_bootstrapped(90)

        def add_client_auth(key: onion.ClientKey) -> None:
            # Tor Browser's way 2 (its "Onion Services Authentication" prompt): the control
            # command ONION_CLIENT_AUTH_ADD with the same address and key, re-encoded in base64.
            address, _, _, secret = key.auth_private.split(":")
            raw = base64.b32decode(secret + "=" * (-len(secret) % 8))
            with stem.control.Controller.from_port(port=client.control_port) as c:
                c.authenticate()
                reply = c.msg(
                    f"ONION_CLIENT_AUTH_ADD {address} x25519:{base64.b64encode(raw).decode()}"
                )
                # 250 OK, 251 replaced an existing key, 252 registered and decrypted.
                assert reply.content()[0][0] in ("250", "251", "252"), str(reply)

        refused = curl(staff)
        checks["staff_without_key"] = [refused.rc, refused.status, refused.error]
        mark("staff_without_key")
        restart_client_with(siti_key)
        mark("client_restarted")
        allowed = poll(lambda: curl(staff), lambda f: f.ok, 90)
        checks["staff_with_key"] = [
            allowed.status, INVESTIGATOR_PAGE in allowed.body, allowed.error,
        ]
        mark("staff_with_key")

        onion.revoke_client_key(inst, "siti")
        with onion.connect(control) as ctl:
            again = onion.publish_investigator(ctl, inst, journalist_port, replace=True)
        checks["republished"] = [again.action, again.clients, again.address == addresses[
            "investigator"]]
        revoked_at = time.monotonic()
        first_refusal = poll(lambda: curl(staff, timeout=15), lambda f: not f.ok, 60)
        timings["revoked_key_first_refused_after"] = round(time.monotonic() - revoked_at, 1)
        revoked = poll(
            lambda: curl(staff, timeout=15), lambda f: f.error.endswith("(245)"), 60
        )
        timings["revoked_key_245_after"] = round(time.monotonic() - revoked_at, 1)
        checks["staff_revoked_key"] = [revoked.rc, revoked.status, revoked.error]
        checks["staff_revoked_first"] = [first_refusal.rc, first_refusal.error]
        mark("staff_revoked")
        add_client_auth(budi_key)
        other = poll(lambda: curl(staff), lambda f: f.ok, 90)
        checks["staff_other_key"] = [other.status, INVESTIGATOR_PAGE in other.body]
        mark("staff_other_key")

        # --- the service's tor restarts: same addresses ------------------------------------
        service.stop()
        service.start()
        service.wait_control()
        uploaded: queue.Queue[str] = queue.Queue()
        with onion.connect(control) as ctl:
            ctl.add_event_listener(
                lambda e: uploaded.put(e.address) if e.action == "UPLOADED" else None,
                EventType.HS_DESC,
            )
            after = onion.publish_all(ctl, inst, source_port, journalist_port)
            service.wait_bootstrapped(120)
            # Fetch once the new descriptor is on an HSDir, not before.
            kpk_id = addresses["tenant:kpk"].removesuffix(".onion")
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                with contextlib.suppress(queue.Empty):
                    if uploaded.get(timeout=1) == kpk_id:
                        break
        mark("descriptor_uploaded_after_restart")
        out["republished_after_restart"] = [[p.name, p.address, p.action] for p in after]
        checks["same_addresses"] = {p.name: p.address for p in after} == addresses
        # A fresh client: the old one's cached descriptors name the introduction points of the
        # tor that was stopped (tor keeps no descriptor cache on disk, nor does Tor Browser).
        client.stop()
        client.start()
        client.wait_bootstrapped(90)
        back = poll(lambda: curl(kpk + "/"), lambda f: f.ok, 120)
        checks["kpk_after_restart"] = [back.status, names["kpk"] in back.body, back.error]
        if not back.ok:
            out["service_log"] = service.log_text()[-3000:]
            out["client_log"] = client.log_text()[-3000:]
        mark("after_restart")
        inst.close()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        net.stop_all()
        out["still_running"] = [
            p.pid for p in net.everything if p.process is not None and p.process.poll() is None
        ]
        kill_agent(gnupg)
        kill_agent(station / "gnupg")
        mark("stopped")


if __name__ == "__main__":
    sys.exit(scenario_main(run, sys.argv))
