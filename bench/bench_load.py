"""Load benchmark: many reporters at once against the production server, registration-bound.

A throwaway instance (``peluit init --demo``, production argon2id cost) is served by gunicorn
with deploy/gunicorn.conf.py on a free loopback port. N reporters, each a thread with its own
HTTP client and cookie jar (no browser, no JS), all register at once (codename page, then its
confirmation) and then each sends five submissions: a report with a file, and four follow-ups
with a message and a file.

Printed:

1. Registrations per second, as a ratio to argon2id alone measured in the same run with the same
   parameters on as many threads as the machine has cores. A registration derives two secrets
   from the codename (two argon2id runs) and generates a reply key; argon2id is the limit, so
   the bound is (argon2id runs per second) / 2. Goal: ratio >= 0.5 of that bound.
2. p50/p95 latency of the registration (the confirmation request) and of the submissions.
3. Errors: any request that failed or answered otherwise than expected. Goal: 0.
4. That every submission was acknowledged and stored (rows and files counted), and that a
   sample of stored items decrypts, with the demo workstation's key through the real gpg, to
   exactly what a reporter sent.

The server's error log is scanned for "could not generate a reply key" (crypto/replykeys.py), a
rare failure once seen under load; its count is printed with the number of registrations run.

Run: ``.venv/bin/python bench/bench_load.py [--reporters 16] [--sample 12]``.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from bench_source import (
    _CSRF,
    Browser,
    _onion_host,
    _receipt_path,
    gunicorn,
)
from sqlalchemy.orm import Session

from crypto.kdf import derive_source_secrets
from crypto.keyring import kill_agent
from crypto.padding import FRAMING_NONE, unframe
from source_iface.forms import HONEYPOT_FIELD
from wbs.config import load_config
from wbs.models import Case, Submission

SUBMISSIONS_PER_REPORTER = 5  # a report and four follow-ups
FILE_BYTES = 16 * 1024
REPLY_KEY_FAILURE = "could not generate a reply key"


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def argon2id_rate(config_path: Path, env: dict[str, str], calls: int = 6) -> float:
    """argon2id runs per second with the instance's parameters, on every core at once.

    Each thread makes the same number of whole calls and the clock stops when the last one
    ends: no run is cut off at a deadline and left uncounted.
    """
    config = load_config(env, instance_dir=config_path)
    threads = os.cpu_count() or 1

    def work(_slot: int) -> None:
        pepper_a, pepper_b = secrets.token_bytes(32), secrets.token_bytes(32)
        for _ in range(calls):
            # Two runs per call, as in a registration.
            derive_source_secrets(secrets.token_hex(16), source_id_pepper=pepper_a,
                                  reply_key_pepper=pepper_b, params=config.kdf)

    start = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return threads * calls * 2 / (time.monotonic() - start)


@dataclass
class Reporter:
    browser: Browser
    files: list[bytes] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    number: str = ""


@dataclass
class Tally:
    registration: list[float] = field(default_factory=list)
    submission: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, kind: list[float], call: Callable[[], object]) -> object:
        start = time.perf_counter()
        result = call()
        with self.lock:
            kind.append(time.perf_counter() - start)
        return result

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def _register(reporter: Reporter, tally: Tally) -> None:
    try:
        page = reporter.browser.get("/kode-baru")
        if page.status != 200:
            raise RuntimeError(f"codename page answered {page.status}")
        from bench_source import _CODENAME, _TAG

        codename, tag, token = (_CODENAME.search(page.text), _TAG.search(page.text),
                                _CSRF.search(page.text))
        if not (codename and tag and token):
            raise RuntimeError("the codename page lacks its form fields")
        fields = {"csrf_token": token.group(1), "codename": codename.group(1),
                  "tag": tag.group(1), "noted": "1"}
        response = tally.timed(tally.registration,
                               lambda: reporter.browser.post_form("/kode-baru", fields))
        if response.status != 302:  # type: ignore[attr-defined]
            raise RuntimeError(f"registration answered {response.status}")  # type: ignore[attr-defined]
    except Exception as exc:  # every failure is counted, none stops the run
        tally.error(f"registration: {exc}")


def _submit(reporter: Reporter, tally: Tally, work: Path) -> None:
    from bench_source import ANSWERS

    browser = reporter.browser
    try:
        for index in range(SUBMISSIONS_PER_REPORTER):
            data = os.urandom(FILE_BYTES)
            path = work / f"f-{secrets.token_hex(8)}.bin"
            path.write_bytes(data)
            reporter.files.append(data)
            if index == 0:
                token = _CSRF.search(browser.get("/lapor").text)
                if token is None:
                    raise RuntimeError("the report form has no token")
                fields = [("csrf_token", token.group(1)), (HONEYPOT_FIELD, ""), *ANSWERS.items()]
                target = "/lapor"
            else:
                token = _CSRF.search(browser.get("/pengaduan").text)
                if token is None:
                    raise RuntimeError("the cases page has no token")
                message = f"Tambahan keterangan {secrets.token_hex(12)}"
                reporter.messages.append(message)
                fields = [("csrf_token", token.group(1)), (HONEYPOT_FIELD, ""),
                          ("message", message)]
                target = f"/pengaduan/{reporter.number}/kirim"
            response = tally.timed(tally.submission, lambda t=target, f=fields, p=path:
                                   browser.post_multipart(t, f, "file", p, "bukti.bin"))
            path.unlink()
            if index == 0:
                reporter.number = _receipt_path(response).rsplit("/", 1)[-1]  # type: ignore[arg-type]
            elif response.status != 302:  # type: ignore[attr-defined]
                raise RuntimeError(f"follow-up answered {response.status}")  # type: ignore[attr-defined]
    except Exception as exc:
        tally.error(f"submission: {exc}")


def _check_stored(
    env: dict[str, str], instance: Path, workstation: Path, reporters: list[Reporter],
    sample: int,
) -> list[str]:
    """Rows and files for everything acknowledged; a sample decrypts to what was sent."""
    problems = []
    config = load_config(env, instance_dir=instance)
    engine = sa.create_engine(config.database_url)
    try:
        with Session(engine) as session:
            cases = session.scalar(sa.select(sa.func.count()).select_from(Case))
            framings = {path: framing for path, framing in session.execute(
                sa.select(Submission.store_path, Submission.framing))}
            paths = list(framings)
    finally:
        engine.dispose()
    # Per reporter: the form and its file, then a message and a file per follow-up.
    expected = len(reporters) * (2 * SUBMISSIONS_PER_REPORTER)
    if cases != len(reporters) or len(paths) != expected:
        problems.append(f"stored {cases} cases and {len(paths)} submissions, "
                        f"expected {len(reporters)} and {expected}")
    missing = [p for p in paths if not (config.store_dir / p).is_file()]
    if missing:
        problems.append(f"{len(missing)} submissions without their file")
    files = {data for r in reporters for data in r.files}
    messages = [m for r in reporters for m in r.messages]
    for path in random.Random(7).sample(paths, min(sample, len(paths))):
        plain = subprocess.run(
            ["gpg", "--homedir", str(workstation), "--batch", "--no-tty", "--decrypt",
             str(config.store_dir / path)],
            capture_output=True, check=False,
        )
        data = plain.stdout
        if plain.returncode == 0 and framings[path] != FRAMING_NONE:
            data, _trailer = unframe(data)  # padded at rest: the size says little
        text = data.decode("utf-8", "replace")
        known = data in files or any(m in text for m in messages) or (
            "uang pelicin" in text)
        if plain.returncode != 0 or not known:
            problems.append(f"{path} does not decrypt to anything a reporter sent")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reporters", type=int, default=16, help="concurrent reporters")
    parser.add_argument("--sample", type=int, default=12, help="stored items decrypted")
    parser.add_argument(
        "--hunt", type=int, default=0,
        help="more registrations after the run (as many at once as --reporters), only to "
        "look for rare failures such as the reply key's",
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bl-", dir="/tmp"))
    os.chmod(work, 0o700)
    instance, workstation = work / "instance", work / "ws"
    env = dict(os.environ)
    env.update({"PELUIT_INSTANCE": str(instance), "PELUIT_DISK_FLOOR_BYTES": "64M"})
    # Production argon2id cost: what is measured is the key derivation's limit.
    for name in ("PELUIT_KDF_TIME_COST", "PELUIT_KDF_MEMORY_KIB", "PELUIT_KDF_PARALLELISM"):
        env.pop(name, None)
    peluit = Path(sys.executable).parent / "peluit"
    ok = True
    try:
        subprocess.run(
            [str(peluit), "--instance", str(instance), "init", "--demo",
             "--demo-workstation", str(workstation)],
            env=env, check=True, capture_output=True,
        )
        kdf = load_config(env, instance_dir=instance).kdf
        before = argon2id_rate(instance, env)
        tally = Tally()
        with gunicorn(env, work, _onion_host(env, instance)) as server:
            reporters = [Reporter(Browser(server.port, server.host))
                         for _ in range(args.reporters)]
            with ThreadPoolExecutor(len(reporters)) as pool:
                start = time.monotonic()
                list(pool.map(lambda r: _register(r, tally), reporters))
                registering = time.monotonic() - start
                list(pool.map(lambda r: _submit(r, tally, work), reporters))
            hunters = [Reporter(Browser(server.port, server.host)) for _ in range(args.hunt)]
            if hunters:
                hunt = Tally()
                with ThreadPoolExecutor(len(reporters)) as pool:
                    list(pool.map(lambda r: _register(r, hunt), hunters))
                # A 429 here is the KDF queue asking to come back (the designed back-pressure
                # when more registrations wait than the cores can derive in time), not a fault.
                turned_away = sum("429" in text for text in hunt.errors)
                print(f"hunt: {len(hunt.registration)} more registrations, "
                      f"{turned_away} asked to come back (429), "
                      f"{len(hunt.errors) - turned_away} failed")
                for text in [t for t in hunt.errors if "429" not in t][:5]:
                    print(f"  {text}")
            for reporter in [*reporters, *hunters]:
                if reporter.browser.conn is not None:
                    reporter.browser.conn.close()
            log = server.stderr.read_text(errors="replace") if server.stderr.exists() else ""
        # Measured before and after the load, so a busy machine weighs on both sides alike.
        alone = (before + argon2id_rate(instance, env)) / 2
        bound = alone / 2
        rate = len(tally.registration) / registering
        ratio = rate / bound
        print(f"argon2id alone ({kdf.memory_kib // 1024} MiB, t={kdf.time_cost}, "
              f"{os.cpu_count()} threads): {alone:.1f} runs/s -> at most {bound:.1f} "
              f"registrations/s (two runs each)")
        ratio_ok = ratio >= 0.5
        print(f"{args.reporters} reporters registering at once: {rate:.2f} registrations/s, "
              f"ratio {ratio:.2f} to argon2id alone (goal >= 0.5) "
              f"{'OK' if ratio_ok else 'MISSED'}")
        for name, values in (("registration", tally.registration),
                             ("submission", tally.submission)):
            if values:
                print(f"  {name} latency: p50 {statistics.median(values) * 1000:.0f} ms, "
                      f"p95 {_percentile(values, 0.95) * 1000:.0f} ms ({len(values)} requests)")
        problems = _check_stored(env, instance, workstation / "gnupg", reporters, args.sample)
        key_failures = log.count(REPLY_KEY_FAILURE)
        errors = len(tally.errors) + len(problems)
        print(f"errors: {errors} (goal 0) {'OK' if errors == 0 else 'MISSED'}")
        for text in [*tally.errors, *problems][:10]:
            print(f"  {text}")
        print(f"all {args.reporters * SUBMISSIONS_PER_REPORTER} submissions acknowledged, "
              f"stored and a sample of {args.sample} decrypted: "
              f"{'OK' if not problems and not tally.errors else 'MISSED'}")
        print(f"'{REPLY_KEY_FAILURE}' in the server log: {key_failures} in "
              f"{args.reporters + args.hunt} registrations")
        ok = ratio_ok and errors == 0 and key_failures == 0
    finally:
        kill_agent(workstation / "gnupg")
        kill_agent(instance / "gnupg")
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 3


if __name__ == "__main__":
    raise SystemExit(main())
