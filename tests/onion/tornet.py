"""Real tor processes for the tests: an offline tor, and a private Tor network on loopback.

Standard library only: besides the tests, it runs inside the booted Debian server of
tests/deploy/test_booted.py (copied there by itself, with Debian's python3), where the testnet
gives the installed tor a Tor network to publish its onions on.

:func:`offline_tor` starts one tor with ``DisableNetwork 1``: it answers ADD_ONION at once and
never touches the network, so it needs no namespace (unit tests).

:class:`TestNetwork` is a whole Tor network on 127.0.0.1 (see /work/shared/TOR_TESTNET.md): three
directory authorities, three relays, a client with a SOCKS port, and an onion-service node.
It must run inside a network namespace that has only loopback (:data:`NAMESPACE_PREFIX`), so
that no packet can leave; :func:`in_private_namespace` refuses to start it elsewhere.

Every tor is started here and stopped here by its PID (``stop``/``stop_all`` in ``finally``);
each also gets ``PR_SET_PDEATHSIG``, so it dies with the process that started it even when that
process is killed before its ``finally`` runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import re
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TOR = os.environ.get("TOR_BIN", "tor")
TOR_GENCERT = os.environ.get("TOR_GENCERT_BIN", "tor-gencert")

# Run a command in a new user + network + PID namespace: its only interface is loopback (down
# until :func:`loopback_up`). The command is PID 1 of its PID namespace: when it exits, the
# kernel kills every process left in it, and --kill-child kills it when unshare is killed.
NAMESPACE_PREFIX = [
    "unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child",
]

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# struct ifreq (40 bytes): the interface's name, its flags.
_IFREQ = "16sh22x"
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP, _IFF_RUNNING = 0x8913, 0x8914, 0x1, 0x40


def _interface_flags(name: str) -> int:
    """The flags of interface ``name`` in this process's own network namespace (SIOCGIFFLAGS;
    sysfs would show the namespace of whoever mounted it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, name.encode(), 0)
        return int(struct.unpack(_IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1])


def loopback_up() -> None:
    """``ip link set lo up`` without iproute2: SIOCSIFFLAGS with IFF_UP on ``lo``."""
    flags = _interface_flags("lo")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def in_private_namespace() -> bool:
    """True when the only network interface is loopback (a fresh network namespace)."""
    # Not /sys/class/net: sysfs shows the namespace of whoever mounted it.
    return [name for _index, name in socket.if_nameindex()] == ["lo"]


def unplugged() -> bool:
    """True on a machine whose every network interface but loopback is down or without a
    carrier (IFF_RUNNING clear: a virtual machine whose cable the test pulled out): nothing
    sent can leave it."""
    for _index, name in socket.if_nameindex():
        if name == "lo":
            continue
        flags = _interface_flags(name)
        if flags & _IFF_UP and flags & _IFF_RUNNING:
            return False
    return True


@dataclass
class TorProcess:
    name: str
    data_dir: Path
    torrc: Path
    process: subprocess.Popen[bytes] | None = None
    control_port: int | None = None
    socks_port: int | None = None

    @property
    def log(self) -> Path:
        return self.data_dir / "notice.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        self.log.unlink(missing_ok=True)
        empty = self.data_dir.parent / "empty-defaults"
        empty.touch()
        self.process = subprocess.Popen(
            [TOR, "--defaults-torrc", str(empty), "-f", str(self.torrc)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # only a prctl call
        )

    def stop(self) -> None:
        """Stop this tor by its PID (SIGTERM, then SIGKILL), and reap it."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            if regex.search(self.log_text()):
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"tor {self.name} exited with {self.process.returncode}:\n"
                    + self.log_text()[-3000:]
                )
            time.sleep(0.2)
        raise TimeoutError(
            f"tor {self.name}: no {pattern!r} after {timeout:.0f}s:\n" + self.log_text()[-3000:]
        )

    def wait_bootstrapped(self, timeout: float) -> None:
        self.wait_for_log(r"Bootstrapped 100%", timeout)

    def wait_control(self, timeout: float = 30) -> None:
        assert self.control_port is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"tor {self.name} exited:\n" + self.log_text()[-3000:])
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.control_port), timeout=1
            ):
                return
            time.sleep(0.1)
        raise TimeoutError(f"tor {self.name}: control port not open after {timeout}s")


def _write_torrc(proc: TorProcess, lines: list[str]) -> None:
    proc.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(proc.data_dir, 0o700)
    base = [
        f"DataDirectory {proc.data_dir}",
        f"PidFile {proc.data_dir / 'pid'}",
        f"Log notice file {proc.log}",
        "CookieAuthentication 1",
        "ShutdownWaitLength 0",
        "SafeLogging 1",
    ]
    proc.torrc.write_text("\n".join([*base, *lines]) + "\n")


@contextlib.contextmanager
def offline_tor(root: Path) -> Iterator[TorProcess]:
    """A tor with ``DisableNetwork 1`` and a control port on loopback (cookie auth)."""
    proc = TorProcess("offline", root / "tor-offline", root / "torrc-offline")
    proc.control_port = free_port()
    _write_torrc(
        proc,
        ["DisableNetwork 1", "SocksPort 0", f"ControlPort 127.0.0.1:{proc.control_port}"],
    )
    proc.start()
    try:
        proc.wait_control()
        yield proc
    finally:
        proc.stop()


# --- the private network ------------------------------------------------------------------------

COMMON = [
    "TestingTorNetwork 1",
    "AssumeReachable 1",
    "PathsNeededToBuildCircuits 0.67",
    "TestingDirAuthVoteExit *",
    "TestingDirAuthVoteHSDir *",
    "TestingDirAuthVoteGuard *",
    "TestingMinExitFlagThreshold 0",
    "V3AuthNIntervalsValid 2",
    "ClientUseIPv6 0",
    "UseDefaultFallbackDirs 0",
]

_AUTHORITY = [
    "AuthoritativeDirectory 1",
    "V3AuthoritativeDirectory 1",
    "TestingV3AuthInitialVotingInterval 10",
    "TestingV3AuthInitialVoteDelay 2",
    "TestingV3AuthInitialDistDelay 2",
    "V3AuthVotingInterval 10",
    "V3AuthVoteDelay 2",
    "V3AuthDistDelay 2",
]


@dataclass
class TestNetwork:
    """3 authorities + 3 relays + a client + an onion-service node, all on 127.0.0.1."""

    __test__ = False  # not a pytest test class

    root: Path
    authorities: list[TorProcess] = field(default_factory=list)
    relays: list[TorProcess] = field(default_factory=list)
    client: TorProcess | None = None
    service: TorProcess | None = None

    @property
    def everything(self) -> list[TorProcess]:
        extra = [p for p in (self.client, self.service) if p is not None]
        return [*self.authorities, *self.relays, *extra]

    dir_lines: list[str] = field(default_factory=list)

    def configure(
        self, *, client_auth_dir: Path, service: bool = True, intervals_valid: int = 2
    ) -> None:
        """The torrc and keys of every node. ``service=False``: no onion-service node (a tor of
        the machine's own, given :attr:`dir_lines` and :data:`COMMON`, is the service).
        ``intervals_valid``: how many voting intervals (10 s) a consensus stays valid; more
        on a slow machine, where a late vote must not leave the clients without one."""
        if not (in_private_namespace() or unplugged()):
            raise RuntimeError(
                "refusing to start a test Tor network outside a network namespace "
                "or on a machine with a network"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        empty = self.root / "empty-defaults"
        empty.touch()
        dir_lines = self.dir_lines
        auth_ports: list[tuple[int, int]] = []
        for index in range(3):
            nick = f"auth{index}"
            proc = TorProcess(nick, self.root / nick, self.root / f"torrc-{nick}")
            proc.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            keys = proc.data_dir / "keys"
            keys.mkdir(mode=0o700, exist_ok=True)
            orport, dirport = free_port(), free_port()
            subprocess.run(
                [
                    TOR_GENCERT, "--create-identity-key", "-m", "12",
                    "-a", f"127.0.0.1:{dirport}",
                    "-i", str(keys / "authority_identity_key"),
                    "-s", str(keys / "authority_signing_key"),
                    "-c", str(keys / "authority_certificate"),
                    "--passphrase-fd", "0",
                ],
                input=b"\n", check=True, capture_output=True,
            )
            subprocess.run(
                [
                    TOR, "--list-fingerprint", "--DataDirectory", str(proc.data_dir),
                    "--ORPort", f"127.0.0.1:{orport}", "--Nickname", nick,
                    "--Address", "127.0.0.1", "--defaults-torrc", str(empty), "-f", str(empty),
                    "--DirAuthority", "x 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff",
                    "--quiet",
                ],
                check=True, capture_output=True,
            )
            cert = (keys / "authority_certificate").read_text()
            v3ident = re.search(r"^fingerprint (\S+)", cert, re.M)
            assert v3ident, "no fingerprint in the authority certificate"
            fingerprint = (proc.data_dir / "fingerprint").read_text().split()[1]
            dir_lines.append(
                f"DirAuthority {nick} orport={orport} no-v2 v3ident={v3ident.group(1)} "
                f"127.0.0.1:{dirport} {fingerprint}"
            )
            auth_ports.append((orport, dirport))
            self.authorities.append(proc)

        def relay_lines(nick: str, orport: int, dirport: int) -> list[str]:
            return [
                f"Nickname {nick}", "SocksPort 0", f"ORPort 127.0.0.1:{orport}",
                f"DirPort 127.0.0.1:{dirport}", "Address 127.0.0.1", "ExitRelay 0",
                "ExitPolicy reject *:*",
            ]

        for proc, (orport, dirport) in zip(self.authorities, auth_ports, strict=True):
            _write_torrc(
                proc,
                [
                    *(f"V3AuthNIntervalsValid {intervals_valid}"
                      if line.startswith("V3AuthNIntervalsValid ") else line for line in COMMON),
                    *dir_lines, *_AUTHORITY, *relay_lines(proc.name, orport, dirport),
                ],
            )
        for index in range(3):
            nick = f"relay{index}"
            proc = TorProcess(nick, self.root / nick, self.root / f"torrc-{nick}")
            _write_torrc(
                proc, [*COMMON, *dir_lines, *relay_lines(nick, free_port(), free_port())]
            )
            self.relays.append(proc)

        client = TorProcess("client", self.root / "client", self.root / "torrc-client")
        client.socks_port, client.control_port = free_port(), free_port()
        client_auth_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_torrc(
            client,
            [
                *COMMON, *dir_lines, "Nickname client",
                f"SocksPort 127.0.0.1:{client.socks_port} ExtendedErrors",
                f"ControlPort 127.0.0.1:{client.control_port}",
                f"ClientOnionAuthDir {client_auth_dir}",
            ],
        )
        self.client = client

        if not service:
            return
        service_node = TorProcess("service", self.root / "service", self.root / "torrc-service")
        service_node.control_port = free_port()
        _write_torrc(
            service_node,
            [
                *COMMON, *dir_lines, "Nickname service", "SocksPort 0",
                f"ControlPort 127.0.0.1:{service_node.control_port}",
            ],
        )
        self.service = service_node

    def start(self) -> None:
        for proc in self.everything:
            proc.start()

    def wait_bootstrapped(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        assert self.client is not None
        for proc in (self.client, self.service):
            if proc is not None:
                proc.wait_bootstrapped(max(1.0, deadline - time.monotonic()))

    def stop_all(self) -> None:
        """Stop every tor of the network by its PID; never raises."""
        for proc in reversed(self.everything):
            with contextlib.suppress(Exception):
                proc.stop()
