"""Scenarios that run a private Tor network (tests/onion/tornet.py) in a network namespace of
their own, started and read back from a test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.onion.tornet import NAMESPACE_PREFIX

# --- a scenario in its namespace, run from a test -----------------------------------------------
# A scenario module runs in a new user, network and PID namespace (NAMESPACE_PREFIX), as PID 1:
# every process it starts dies with it. Its ``run(workdir, out)`` fills ``out`` with what it saw
# (``checks``, ``timings``, ...); :func:`scenario_main` prints that as one JSON line, and
# :func:`run_scenario` (in the test process) reads it back.


def scenario_main(run: Callable[[Path, dict[str, Any]], None], argv: list[str]) -> int:
    """The ``main`` of a scenario module: its result as JSON on stdout, whatever happens."""
    # As PID 1 of its PID namespace this process ignores SIGTERM unless it has a handler: with
    # one, a TERM runs the finally blocks that stop every process by its PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(argv[1])
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    try:
        run(workdir, out)
        out["ok"] = True
    except BaseException:
        out["ok"] = False
        out["error"] = traceback.format_exc()
        print(out["error"], file=sys.stderr, flush=True)
    print(json.dumps(out), flush=True)
    return 0


def run_scenario(module: str, name: str, workdir: Path, timeout: float) -> dict[str, Any]:
    """Run the scenario ``module`` in its namespace; its result, with ``elapsed`` and ``log``
    (its stderr), and ``workdir`` kept for reading when it did not run through. A scenario
    that overruns is killed with everything in its namespace; one that crashes fails the
    test that asked for it."""
    repo = Path(__file__).resolve().parents[2]
    started = time.monotonic()
    proc = subprocess.Popen(
        [*NAMESPACE_PREFIX, sys.executable, "-m", module, str(workdir)],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # The whole session (unshare and the namespace's PID 1 with everything in it).
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"the {name} scenario took over {timeout}s:\n{stderr[-4000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    elapsed = time.monotonic() - started
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(
            f"the {name} scenario failed to run (exit {proc.returncode}):\n{stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    result["elapsed"] = round(elapsed, 1)
    result["log"] = stderr
    if result.get("ok"):
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        # Kept for reading: the tor logs under <workdir>/net/*/notice.log.
        result["workdir"] = str(workdir)
    return result


def scenario_check(scenario: dict[str, Any], name: str) -> Any:
    """One check a scenario reported; fails the test, with the scenario's log, if it stopped
    before reaching it."""
    checks = scenario.get("checks", {})
    if name not in checks:
        pytest.fail(
            f"the scenario stopped before {name!r}:\n{scenario.get('error', '')}\n"
            f"{scenario['log'][-3000:]}\n(logs in {scenario.get('workdir')})"
        )
    return checks[name]
