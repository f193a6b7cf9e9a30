"""Run every benchmark under bench/ (files named bench_*.py) and print their reports.

Each benchmark measures the physical limit in the same run (``gpg`` alone on the same file, the
disk) and prints ratios against it, with the goal from ARCHITECTURE.md beside each. A benchmark
exits 3 when it missed a goal and anything else non-zero when it crashed (an uncaught
exception exits 1); this script lists both at the end and fails only for a crash. Timing
belongs here, never in the test suite.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

MISSED_GOAL = 3


def main() -> int:
    here = Path(__file__).resolve().parent
    wanted = set(sys.argv[1:])
    crashed, missed = [], []
    for script in sorted(here.glob("bench_*.py")):
        if wanted and script.stem.removeprefix("bench_") not in wanted:
            continue
        print(f"== {script.stem}", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(script)], check=False)
        print(f"   ({time.monotonic() - started:.0f} s)\n", flush=True)
        if result.returncode == MISSED_GOAL:
            missed.append(script.stem)
        elif result.returncode != 0:
            crashed.append(script.stem)
    if missed:
        print(f"benchmarks that missed a goal: {', '.join(missed)}")
    if crashed:
        print(f"benchmarks that crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
