"""A private tor process for ``make run``: onion services on a development machine.

Production uses the system tor and its control socket (``deploy/torrc.template``); for a demo,
``peluit run`` starts its own tor with a data folder and control socket inside the instance
folder, publishes the onions through it, and stops it by its PID on the way out.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

STARTUP_SECONDS = 30.0


class DevTorError(RuntimeError):
    pass


def start_private_tor(folder: Path, tor_binary: str = "tor") -> tuple[subprocess.Popen[bytes], str]:
    """Start tor with its data in ``folder``; return the process and its control spec."""
    if shutil.which(tor_binary) is None:
        raise DevTorError("tor is not installed (apt-get install tor)")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    control = folder / "control"
    control.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            tor_binary,
            "--DataDirectory",
            str(folder),
            "--ControlSocket",
            str(control),
            "--CookieAuthentication",
            "1",
            # Only onion services: no SOCKS port for anything on this machine to use.
            "--SocksPort",
            "0",
            "--Log",
            f"notice file {folder / 'tor.log'}",
            "--SafeLogging",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while not control.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise DevTorError(f"tor did not start; see {folder / 'tor.log'}")
            time.sleep(0.1)
    except BaseException:
        # Also Ctrl-C or SIGTERM while tor starts: the caller has no process to stop yet.
        stop(process)
        raise
    return process, f"unix:{control}"


# Not __OwningControllerProcess: stem then takes ownership on connect, and tor would exit as
# soon as the publishing connection closes. ``peluit run`` stops tor on every way out (an error,
# SIGTERM, Ctrl-C); only a SIGKILL of ``peluit run`` leaves it running.
def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
