"""Benchmark of the source interface as deployed: gunicorn with deploy/gunicorn.conf.py, over HTTP.

A throwaway instance with demo tenants is served by gunicorn on a free loopback port; a source
registers over HTTP (no browser) and uploads a random file streamed from disk.

1. Upload throughput: the wall time of the upload request (multipart parse, ``gpg --encrypt``
   to the tenant's keys, fsync into the store, database commit) versus ``gpg --encrypt`` alone
   on the same file to the same recipients with the same flags, writing into the store's
   folder. Goal: ours >= 80 % of gpg alone.
2. Peak RSS growth of the gunicorn worker during the upload, sampled every 50 ms. Goal:
   < 100 MiB. gpg runs as its own process; its peak is printed for information.
3. Weight of each source page with its style sheet (HTML bytes + peluit.css bytes). Goal:
   < 50 KB each.

It also checks that the upload's receipt came back and that a small upload's stored ciphertext
decrypts with the demo workstation's key to the bytes sent.

Run: ``.venv/bin/python bench/bench_source.py [--size-mib 1024] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import psutil
import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.keyring import kill_agent
from crypto.padding import PaddingError, unframe
from source_iface.forms import HONEYPOT_FIELD
from wbs.config import load_config
from wbs.models import Tenant
from wbs.tenants import current_recipients

REPO = Path(__file__).resolve().parent.parent
GUNICORN_CONF = REPO / "deploy" / "gunicorn.conf.py"
TENANT = "pemprov-sumsel"
MIB = 1024 * 1024
SEND_PIECE = MIB
SAMPLE_S = 0.05
IDLE_RECONNECT_S = 2.0
PAGE_BUDGET = 50 * 1024
SMALL_FILE_BYTES = 256 * 1024
# The form's answers; long enough for every minimum in source_iface.forms.
ANSWERS = {
    "category": "suap_menyuap",
    "mcp_area": "perizinan",
    "apa": "Kepala seksi meminta uang pelicin untuk menerbitkan izin usaha.",
    "siapa": "Kepala Seksi Perizinan, Dinas Penanaman Modal",
    "kapan": "Maret 2025, masih berlangsung",
    "dimana": "Kantor Dinas Penanaman Modal",
    "bagaimana": "Pemohon diminta transfer ke rekening pribadi sebelum izin terbit.",
    "berapa": "Rp5.000.000 per izin",
    "kronologi": "",
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CODENAME = re.compile(r'name="codename" value="([^"]+)"')
_TAG = re.compile(r'name="tag" value="([^"]+)"')
_STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+)"')


def _status(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_random_file(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        left = size
        while left:
            block = os.urandom(min(MIB, left))
            handle.write(block)
            left -= len(block)


# --- the server ------------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    stderr: Path
    host: str  # the tenant's onion address: production serves a tenant only at its own Host

    def workers(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []

    def stderr_tail(self) -> str:
        try:
            return "\n".join(self.stderr.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""


@contextmanager
def gunicorn(env: dict[str, str], work: Path, host: str) -> Iterator[Server]:
    port = _free_port()
    stderr = work / "gunicorn.err"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn",
                "-c", str(GUNICORN_CONF),
                # The configuration's own bind is 127.0.0.1:8080; the bench takes a free port.
                "--bind", f"127.0.0.1:{port}",
                "source_iface.wsgi:make_app()",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    server = Server(proc, port, stderr, host)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_serving(server: Server) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited at start-up:\n{server.stderr_tail()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", "/", headers={"Host": server.host})
            answered = conn.getresponse().status == 200
            conn.close()
            if answered:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within 60 s:\n{server.stderr_tail()}")


# --- the reporter's side ---------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Browser:
    """A reporter's client: one keep-alive connection (so one worker) and a cookie jar."""

    port: int
    host: str
    prefix: str = ""
    cookies: dict[str, str] = field(default_factory=dict)
    conn: http.client.HTTPConnection | None = None
    last_used: float = 0.0

    def _connection(self) -> http.client.HTTPConnection:
        # gunicorn closes a keep-alive connection after a few idle seconds (its `keepalive`);
        # a browser would reconnect, and so does this client rather than send into a dead one.
        if self.conn is not None and time.monotonic() - self.last_used > IDLE_RECONNECT_S:
            self.conn.close()
            self.conn = None
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        return self.conn

    def _headers(self) -> dict[str, str]:
        headers = {"Host": self.host}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def _finish(self, conn: http.client.HTTPConnection) -> Response:
        raw = conn.getresponse()
        body = raw.read()
        self.last_used = time.monotonic()
        for header in raw.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if not morsel.value or morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        if raw.will_close:
            conn.close()
            self.conn = None
        return Response(raw.status, raw.headers, body)

    def get(self, path: str, *, absolute: bool = False) -> Response:
        conn = self._connection()
        conn.request("GET", path if absolute else self.prefix + path, headers=self._headers())
        return self._finish(conn)

    def post_form(self, path: str, fields: dict[str, str]) -> Response:
        headers = self._headers()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = self._connection()
        conn.request("POST", self.prefix + path, body=urlencode(fields), headers=headers)
        return self._finish(conn)

    def post_multipart(
        self, path: str, fields: Sequence[tuple[str, str]], file_field: str, file: Path,
        filename: str,
    ) -> Response:
        """Text fields first, then one file streamed from disk in 1 MiB pieces."""
        boundary = "----peluitbench" + secrets.token_hex(12)
        head = bytearray()
        for name, value in fields:
            head += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode(
            )
            head += value.encode() + b"\r\n"
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = file.stat().st_size
        conn = self._connection()
        conn.putrequest("POST", self.prefix + path, skip_host=True, skip_accept_encoding=True)
        for name, value in self._headers().items():
            conn.putheader(name, value)
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        conn.endheaders()
        conn.send(bytes(head))
        piece = bytearray(SEND_PIECE)
        view = memoryview(piece)
        with file.open("rb", buffering=0) as source:
            while n := source.readinto(piece):
                conn.send(view[:n])
        conn.send(tail)
        return self._finish(conn)

    def register(self) -> None:
        """A new codename, confirmed: the session cookie now belongs to a new source."""
        page = self.get("/kode-baru").text
        codename, tag, token = _CODENAME.search(page), _TAG.search(page), _CSRF.search(page)
        if not (codename and tag and token):
            raise RuntimeError("the codename page lacks its form fields")
        response = self.post_form(
            "/kode-baru",
            {"csrf_token": token.group(1), "codename": codename.group(1),
             "tag": tag.group(1), "noted": "1"},
        )
        if response.status != 302:
            raise RuntimeError(f"registration answered {response.status}")

    def send_report(self, file: Path, filename: str) -> Response:
        form = self.get("/lapor")
        token = _CSRF.search(form.text)
        if form.status != 200 or token is None:
            raise RuntimeError(f"the report form answered {form.status}")
        fields = [("csrf_token", token.group(1)), (HONEYPOT_FIELD, ""), *ANSWERS.items()]
        return self.post_multipart("/lapor", fields, "file", file, filename)


def _receipt_path(response: Response) -> str:
    location = response.headers.get("Location", "")
    if response.status != 302 or "/tanda-terima/" not in location:
        raise RuntimeError(f"the upload did not lead to a receipt: {response.status} {location}")
    return urlsplit(location).path


# --- memory ----------------------------------------------------------------------------------


class _RssSampler(threading.Thread):
    """Every 50 ms: each gunicorn worker's RSS, and the largest RSS of any of their children."""

    def __init__(self, workers: Sequence[psutil.Process]) -> None:
        super().__init__(daemon=True)
        self._workers = list(workers)
        self._halt = threading.Event()
        self.baseline = {w.pid: w.memory_info().rss for w in self._workers}
        self.peak = dict(self.baseline)
        self.child_peak = 0

    def _sample(self) -> None:
        for worker in self._workers:
            try:
                self.peak[worker.pid] = max(self.peak[worker.pid], worker.memory_info().rss)
                for child in worker.children(recursive=True):
                    self.child_peak = max(self.child_peak, child.memory_info().rss)
            except psutil.NoSuchProcess:
                continue

    def run(self) -> None:
        while not self._halt.wait(SAMPLE_S):
            self._sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self._sample()

    @property
    def growth(self) -> int:
        return max(self.peak[pid] - self.baseline[pid] for pid in self.peak)

    @property
    def top(self) -> int:
        return max(self.peak.values())


# --- gpg alone -------------------------------------------------------------------------------


def _gpg_alone(gnupg_home: Path, recipients: Sequence[str], src: Path, dst: Path) -> float:
    """Seconds for gpg alone with the flags crypto.encrypt uses, file to file."""
    cmd = [
        "gpg", "--homedir", str(gnupg_home), "--batch", "--no-tty", "--yes",
        "--trust-model", "always", "--no-auto-key-locate", "--no-encrypt-to",
        "--compress-algo", "none", "--personal-cipher-preferences", "AES256 AES192 AES",
        "--set-filename", src.name, "--output", str(dst),
    ]
    for fpr in recipients:
        cmd += ["--recipient", fpr]
    cmd += ["--encrypt", str(src)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def _fsync_seconds(path: Path) -> float:
    """What our store adds on top of gpg: making the ciphertext durable before the rename."""
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - start


# --- the benchmarks --------------------------------------------------------------------------


def _store_files(store: Path) -> set[Path]:
    return {p for p in store.rglob("*.gpg") if p.is_file()}


def check_small_upload(browser: Browser, work: Path, store: Path, workstation: Path) -> str:
    """A small report round trip: receipt, and the stored file decrypts to what was sent.

    Returns the receipt's path (its page is weighed later).
    """
    small = work / "bukti-kecil.pdf"
    _write_random_file(small, SMALL_FILE_BYTES)
    before = _store_files(store)
    response = browser.send_report(small, small.name)
    receipt = _receipt_path(response)
    new = _store_files(store) - before
    sent = small.read_bytes()
    matched = False
    for path in new:
        plain = subprocess.run(
            ["gpg", "--homedir", str(workstation), "--batch", "--no-tty", "--decrypt", str(path)],
            check=True,
            capture_output=True,
        ).stdout
        with suppress(PaddingError):
            plain, _trailer = unframe(plain)  # items are padded at rest
        matched = matched or plain == sent
    small.unlink()
    if not matched:
        raise RuntimeError("no stored item of the small upload decrypts to the bytes sent")
    print(
        f"small upload ({SMALL_FILE_BYTES // 1024} KiB): receipt {response.status} -> "
        f"tanda-terima, {len(new)} items stored, file decrypts with the workstation key: OK"
    )
    return receipt


def bench_upload(
    server: Server, work: Path, store_folder: Path, gnupg_home: Path, recipients: Sequence[str],
    size_mib: int, rounds: int,
) -> bool:
    src = work / "bukti.bin"
    _write_random_file(src, size_mib * MIB)
    upload_times: list[float] = []
    gpg_times: list[float] = []
    fsync_times: list[float] = []
    growth = top = gpg_peak = 0
    try:
        for round_no in range(rounds):
            # A fresh source each round: a source may open only a few new cases an hour.
            browser = Browser(server.port, server.host)
            browser.register()
            browser.get("/lapor")
            # Alternating which goes first, so page cache and CPU frequency hit both alike.
            for upload_now in (True, False) if round_no % 2 == 0 else (False, True):
                # The previous step's gigabyte of dirty pages must not be written back while
                # this one is timed.
                os.sync()
                if upload_now:
                    seconds, sampler = _timed_upload(server, browser, src)
                    upload_times.append(seconds)
                    growth, top = max(growth, sampler.growth), max(top, sampler.top)
                    gpg_peak = max(gpg_peak, sampler.child_peak)
                else:
                    out = store_folder / "gpg-alone.gpg"
                    gpg_times.append(_gpg_alone(gnupg_home, recipients, src, out))
                    fsync_times.append(_fsync_seconds(out))
                    out.unlink()
            if browser.conn is not None:
                browser.conn.close()
    finally:
        src.unlink()
    ours, gpg, sync = (statistics.median(t) for t in (upload_times, gpg_times, fsync_times))
    ratio = statistics.median(g / o for g, o in zip(gpg_times, upload_times, strict=True))
    ratio_ok = ratio >= 0.8
    print(
        f"upload {size_mib} MiB through gunicorn (median of {rounds}): ours {size_mib / ours:.0f}"
        f" MiB/s ({ours:.1f} s), gpg alone {size_mib / gpg:.0f} MiB/s ({gpg:.1f} s), ratio "
        f"{ratio:.2f} (goal >= 0.8) {_status(ratio_ok)}"
    )
    print(
        f"  for information: gpg alone + fsync of its output {size_mib / (gpg + sync):.0f} MiB/s"
        f" (fsync {sync:.1f} s; our store fsyncs every item before renaming it into place), "
        f"ratio {(gpg + sync) / ours:.2f}"
    )
    growth_mib, top_mib = growth / MIB, top / MIB
    memory_ok = growth_mib < 100
    print(
        f"gunicorn worker RSS during the {size_mib} MiB upload: peak growth {growth_mib:.1f} MiB"
        f", peak {top_mib:.1f} MiB (goal: growth < 100 MiB) {_status(memory_ok)}"
    )
    print(f"  for information: peak RSS of gpg (a separate process) {gpg_peak / MIB:.1f} MiB")
    return ratio_ok and memory_ok


def _timed_upload(server: Server, browser: Browser, src: Path) -> tuple[float, _RssSampler]:
    sampler = _RssSampler(server.workers())
    sampler.start()
    start = time.perf_counter()
    try:
        response = browser.send_report(src, src.name)
    finally:
        elapsed = time.perf_counter() - start
        sampler.stop()
    receipt = browser.get(_receipt_path(response), absolute=True)
    if receipt.status != 200:
        raise RuntimeError(f"the receipt page answered {receipt.status}")
    return elapsed, sampler


def bench_pages(browser: Browser, receipt: str) -> bool:
    """Each source page's HTML plus its style sheet, as a visitor's browser fetches them."""
    pages: list[tuple[str, Response]] = [
        ("landing", browser.get("/")),
        ("guidance", browser.get("/panduan")),
        ("codename", browser.get("/kode-baru")),
        ("login", browser.get("/masuk")),
        ("report form", browser.get("/lapor")),
        ("receipt", browser.get(receipt, absolute=True)),
        ("follow-up", browser.get("/pengaduan")),
    ]
    token = _CSRF.search(pages[-1][1].text)
    if token is not None:
        pages.append(("logged out", browser.post_form("/keluar", {"csrf_token": token.group(1)})))
    css_cache: dict[str, int] = {}
    ok = True
    print(f"{'page':<13} {'status':>6} {'HTML':>8} {'CSS':>7} {'total':>8}  (goal < 50 KB)")
    for name, response in pages:
        link = _STYLESHEET.search(response.text)
        css = 0
        if link is not None:
            href = link.group(1)
            if href not in css_cache:
                css_cache[href] = len(browser.get(href, absolute=True).body)
            css = css_cache[href]
        total = len(response.body) + css
        page_ok = response.status == 200 and total < PAGE_BUDGET
        ok = ok and page_ok
        print(
            f"{name:<13} {response.status:>6} {len(response.body):>8} {css:>7} {total:>8}  "
            f"{_status(page_ok)}"
        )
    heaviest = max(len(r.body) for _, r in pages) + max(css_cache.values(), default=0)
    print(f"heaviest source page with its CSS: {heaviest / 1024:.1f} KB (goal < 50 KB) "
          f"{_status(ok)}")
    return ok


def _onion_host(env: dict[str, str], instance: Path) -> str:
    """Give TENANT its onion address (no tor needed): production answers only to that Host."""
    from wbs.instance import Instance
    from wbs.onion import assign_tenant_address

    with Instance.open(load_config(env, instance_dir=instance)) as inst:
        return assign_tenant_address(inst, TENANT).hostname


def _recipients(env: dict[str, str], instance: Path) -> list[str]:
    """The fingerprints a report of TENANT not sent to KPK is encrypted to, as the app picks."""
    config = load_config(env, instance_dir=instance)
    engine = sa.create_engine(config.database_url)
    try:
        with Session(engine) as session:
            tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == TENANT))
            if tenant is None:
                raise RuntimeError(f"demo tenant {TENANT} missing")
            return current_recipients(session, tenant, to_kpk=False)
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the uploaded file")
    parser.add_argument("--rounds", type=int, default=3, help="uploads (and gpg runs) timed")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bs-", dir="/tmp"))
    os.chmod(work, 0o700)
    instance, workstation = work / "instance", work / "ws"
    env = dict(os.environ)
    env.update({
        "PELUIT_INSTANCE": str(instance),
        # Argon2 at its cheapest: registration is not what is measured here.
        "PELUIT_KDF_MEMORY_KIB": "8192",
        "PELUIT_KDF_TIME_COST": "1",
        "PELUIT_MAX_UPLOAD_BYTES": f"{args.size_mib + 16}M",
        "PELUIT_DISK_FLOOR_BYTES": "64M",
    })
    peluit = Path(sys.executable).parent / "peluit"
    try:
        subprocess.run(
            [str(peluit), "--instance", str(instance), "init", "--demo",
             "--demo-workstation", str(workstation)],
            env=env, check=True, capture_output=True,
        )
        config = load_config(env, instance_dir=instance)
        recipients = _recipients(env, instance)
        with gunicorn(env, work, _onion_host(env, instance)) as server:
            browser = Browser(server.port, server.host)
            browser.register()
            receipt = check_small_upload(browser, work, config.store_dir, workstation / "gnupg")
            ok = bench_upload(
                server, work, config.store_dir / TENANT, config.gnupg_home, recipients,
                args.size_mib, args.rounds,
            )
            ok = bench_pages(browser, receipt) and ok
            errors = server.stderr_tail()
        if errors:
            print(f"gunicorn's error log (stderr) was not empty:\n{errors}")
    finally:
        kill_agent(workstation / "gnupg")
        kill_agent(instance / "gnupg")
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 3  # 3: a goal was missed (bench/run.py tells it from a crash)


if __name__ == "__main__":
    raise SystemExit(main())
