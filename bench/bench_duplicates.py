"""Benchmark of the keyed duplicate check: precision and recall on reworded reports.

A generated set of Indonesian reports (:mod:`workstation.incidents`): incidents told again by
another pelapor in other words (synonyms, order, the amount written another way, extra
sentences), and distinct incidents sharing fields (the same official and office, or the same
modus and amount). Every report is sketched with a key, as a workstation does before upload
(:mod:`workstation.sketches`), and the pairs are found as the server finds them, by banding
and scoring the sketches alone (:mod:`crypto.sketches`). For comparison, the older text-only
finder (:mod:`workstation.duplicates`) on the same set.

Goal: recall >= 0.90 at precision >= 0.95, at the threshold the server uses.

Run: ``.venv/bin/python bench/bench_duplicates.py [--reports 3000]``. Exits 3 when a goal is
missed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from crypto.sketches import THRESHOLD, similar_pairs
from workstation.duplicates import find_duplicates, precision_recall
from workstation.incidents import generate_incidents
from workstation.sketches import generate_key, signatures

MISSED_GOAL = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reports", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    corpus = generate_incidents(args.reports, seed=args.seed)
    ids = sorted(corpus.reports)
    key = generate_key()

    started = time.perf_counter()
    sketches = [signatures(key, corpus.reports[rid]) for rid in ids]
    sketched = time.perf_counter() - started
    started = time.perf_counter()
    found = [(ids[i], ids[j]) for i, j, _ in similar_pairs(sketches, threshold=THRESHOLD)]
    compared = time.perf_counter() - started
    precision, recall = precision_recall(found, corpus.duplicate_pairs)

    old = find_duplicates(corpus.reports, threshold=0.5)
    old_precision, old_recall = precision_recall(
        [(pair.first, pair.second) for pair in old], corpus.duplicate_pairs
    )

    ok = precision >= 0.95 and recall >= 0.90
    print(
        f"keyed sketches over {len(ids)} reports ({len(corpus.duplicate_pairs)} true pairs), "
        f"threshold {THRESHOLD}: sketched in {sketched:.1f} s, compared in {compared:.1f} s"
    )
    print(
        f"precision {precision:.3f} (goal >= 0.95), recall {recall:.3f} (goal >= 0.90) "
        f"{'OK' if ok else 'MISSED'}"
    )
    print(
        f"for comparison, the text-only finder at 0.5: precision {old_precision:.3f}, "
        f"recall {old_recall:.3f}"
    )
    return 0 if ok else MISSED_GOAL


if __name__ == "__main__":
    raise SystemExit(main())
