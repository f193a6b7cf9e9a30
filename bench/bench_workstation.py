"""Benchmark of the workstation against its physical limit, in the same run.

1. Decryption: ``gpg --decrypt --output FILE`` alone on a 1 GiB item (the limit) versus the
   workstation's path (``WorkstationGpg.decrypt_to_temp`` with the progress channel read, then
   the safe, never-overwriting rename). Goal: ours >= 80 % of gpg alone.
2. Duplicate search over 10,000 generated reports with known duplicates: time, precision and
   recall. Goals: under 60 s, precision >= 0.95, recall >= 0.90.

Run: ``.venv/bin/python bench/bench_workstation.py [--size-mib 1024] [--reports 10000]``.
Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from workstation.corpus import generate_corpus
from workstation.duplicates import find_duplicates, precision_recall
from workstation.gpg import WorkstationGpg
from workstation.names import place_without_overwrite

MIB = 1024 * 1024
ROUNDS = 4


def _status(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def _make_key(home: Path) -> str:
    params = (
        "Key-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
        "Subkey-Type: ecdh\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n"
        "Name-Real: Bench workstation\n%no-protection\n%commit\n"
    )
    made = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--status-fd", "1", "--gen-key"],
        input=params.encode(), capture_output=True, check=True,
    ).stdout.decode()
    return next(line.split()[3] for line in made.splitlines() if "KEY_CREATED" in line)


def _write_random(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left:
            chunk = min(left, 4 * MIB)
            out.write(os.urandom(chunk))
            left -= chunk


def _progress(done: int, total: int) -> None:
    """Stands for the CLI's progress bar."""


def _time_alone(gpg: WorkstationGpg, home: Path, cipher: Path, out_dir: Path) -> float:
    target = out_dir / "alone.bin"
    started = time.perf_counter()
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", "--output", str(target),
         "--decrypt", str(cipher)],
        check=True, capture_output=True,
    )
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def _time_ours(gpg: WorkstationGpg, home: Path, cipher: Path, out_dir: Path) -> float:
    started = time.perf_counter()
    # The CLI's progress bar watches the output: measured with it on.
    temp, name = gpg.decrypt_to_temp(cipher, out_dir, None, _progress)
    placed = place_without_overwrite(temp, out_dir, name or "item.bin")
    elapsed = time.perf_counter() - started
    placed.unlink()
    return elapsed


def bench_decrypt(size_mib: int) -> bool:
    folder = Path(tempfile.mkdtemp(prefix="bw-", dir="/tmp"))
    home = folder / "g"
    home.mkdir(mode=0o700)
    try:
        fingerprint = _make_key(home)
        plain, cipher = folder / "plain.bin", folder / "item.gpg"
        _write_random(plain, size_mib * MIB)
        subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--trust-model", "always",
             "--recipient", fingerprint, "--set-filename", "bukti.bin",
             "--output", str(cipher), "--encrypt", str(plain)],
            check=True, capture_output=True,
        )
        plain.unlink()  # keep the disk for the outputs
        out_dir = folder / "out"
        out_dir.mkdir()
        gpg = WorkstationGpg(home)
        alone, ours = [], []
        for round_number in range(ROUNDS):
            # Alternate which goes first: the second run pays for the first one's dirty pages.
            order = [_time_alone, _time_ours]
            if round_number % 2:
                order.reverse()
            for timer in order:
                elapsed = timer(gpg, home, cipher, out_dir)
                (alone if timer is _time_alone else ours).append(elapsed)
        gpg.close()
        best_alone, best_ours = min(alone), min(ours)
        ratio = best_alone / best_ours
        ok = ratio >= 0.8
        print(
            f"decrypt {size_mib} MiB: gpg alone {size_mib / best_alone:.0f} MiB/s, "
            f"workstation {size_mib / best_ours:.0f} MiB/s, ratio {ratio:.2f} "
            f"(goal >= 0.80) {_status(ok)}"
        )
        return ok
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                       check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def bench_duplicates(count: int) -> bool:
    corpus = generate_corpus(count, seed=2026)
    started = time.perf_counter()
    found = find_duplicates(corpus.reports, threshold=0.5)
    elapsed = time.perf_counter() - started
    precision, recall = precision_recall(
        [(pair.first, pair.second) for pair in found], corpus.duplicate_pairs
    )
    ok = elapsed < 60 and precision >= 0.95 and recall >= 0.90
    print(
        f"duplicates over {count} reports ({len(corpus.duplicate_pairs)} true pairs): "
        f"{elapsed:.1f} s (goal < 60 s), precision {precision:.3f} (goal >= 0.95), "
        f"recall {recall:.3f} (goal >= 0.90) {_status(ok)}"
    )
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--reports", type=int, default=10_000)
    args = parser.parse_args(argv)
    results = [bench_decrypt(args.size_mib), bench_duplicates(args.reports)]
    # 3: a goal was missed (bench/run.py tells it from a crash)
    return 0 if all(results) else 3


if __name__ == "__main__":
    raise SystemExit(main())
