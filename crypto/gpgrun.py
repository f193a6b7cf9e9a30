"""The one place that starts gpg (and gpgconf) itself, for what python-gnupg cannot do.

python-gnupg is how Peluit drives gpg for key management: listing, importing, exporting,
deleting and generating keys (:meth:`GpgHome.library` hands out its ``gnupg.GPG`` for a home).
It cannot do the rest as the security rules need, so this module does, and nothing else in
the project starts gpg:

- Streaming: an upload is encrypted while it arrives, gpg writing straight into the store's
  open file, and the original filename reaches gpg through an options pipe, never argv
  (``/proc/PID/cmdline`` is readable by every local user). python-gnupg's ``encrypt`` is not
  a chunk writer and has no way to hand gpg an extra file descriptor.
- Verdicts from exact status lines: a signature, a decryption or an encryption is accepted only
  on specific ``[GNUPG:]`` lines and fields (VALIDSIG's class, hash and primary fingerprint,
  SIG_CREATED's class, END_ENCRYPTION, the error code of ``pkdecrypt_failed``, PLAINTEXT's
  name) that python-gnupg's result objects fold away. :func:`parse_status` is the one parser.
- Passphrases as exact bytes on a pipe of their own, apart from the data: python-gnupg writes
  them to stdin ahead of the data, through its text codec (Latin-1 by default), so a UTF-8
  passphrase would not open a key it locked elsewhere.
- Looking at keys and packets without importing anything and without an agent
  (``--show-keys --no-autostart``, ``--list-packets``), which python-gnupg does not offer.
- A time limit on every run on the request path: python-gnupg waits for gpg forever, and a
  stuck gpg must fail the request (closed), not hold a worker.

The agent of a home is stopped with the ``gpgconf`` that sits beside the configured gpg binary,
so an instance configured with its own GnuPG build never talks to the system's agent.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import gnupg

from crypto.errors import CryptoError

STATUS_PREFIX = "[GNUPG:] "
# A request must not wait on a stuck gpg forever; one small operation takes well under a second.
DEFAULT_TIMEOUT_S = 60.0
_STATUS_MAX_LINES = 10_000
# For popen's stdout_fd: gpg writes its output to a file it is named, so stdout is thrown away.
DISCARD = subprocess.DEVNULL
_STDERR_TAIL_LINES = 20
# How many of gpg's last prose lines an error message quotes (the last one is usually the why).
_REASON_LINES = 3
# Status keywords that say what went wrong, with a location and a libgpg-error code that do not
# depend on gpg's language.
_REASON_KEYWORDS = ("ERROR", "FAILURE")


class GpgRunError(CryptoError):
    """gpg could not be started, or did not finish in time."""


class GpgTimeout(GpgRunError):
    """gpg did not finish in time; it has been killed."""


@dataclass(frozen=True)
class Status:
    """One ``[GNUPG:] KEYWORD field field ...`` line of gpg's status channel."""

    keyword: str
    fields: tuple[str, ...]

    @property
    def rest(self) -> str:
        """Everything after the keyword, as gpg wrote it."""
        return " ".join(self.fields)

    @property
    def error_code(self) -> int | None:
        """The libgpg-error code (low 16 bits) of an ERROR or FAILURE line, else None."""
        # "ERROR <location> <code>": the code's high bits name the error's source, not the error.
        if (
            self.keyword in ("ERROR", "FAILURE")
            and len(self.fields) >= 2
            # isascii: isdigit() alone admits "²", which int() refuses.
            and self.fields[1].isascii()
            and self.fields[1].isdigit()
        ):
            return int(self.fields[1]) & 0xFFFF
        return None


def parse_status(lines: Iterable[str]) -> list[Status]:
    """The status lines among ``lines`` (anything else, e.g. gpg's prose on stderr, is skipped)."""
    found: list[Status] = []
    for line in lines:
        if line.startswith(STATUS_PREFIX):
            keyword, *fields = line[len(STATUS_PREFIX) :].rstrip("\r\n").split(" ")
            found.append(Status(keyword, tuple(fields)))
    return found


@dataclass(frozen=True)
class GpgResult:
    returncode: int
    # What gpg wrote may be a decrypted reply or a locked key: never in a repr (a log line, a
    # traceback's locals).
    stdout: bytes = field(repr=False)
    status: tuple[Status, ...]
    # gpg's last prose lines on stderr (the status lines apart), for diagnostics.
    stderr_tail: str = field(default="", repr=False)

    @property
    def keywords(self) -> list[str]:
        """Every status keyword, in order and with repeats (some checks count them)."""
        return [line.keyword for line in self.status]

    def fields(self, keyword: str) -> list[tuple[str, ...]]:
        """The fields of every status line with this keyword."""
        return [line.fields for line in self.status if line.keyword == keyword]

    @property
    def reason(self) -> str:
        """Why gpg failed, on one line for an error message: its exit code, its ERROR and
        FAILURE status lines and the last of its prose.

        gpg writes no passphrase and no plaintext to stderr, but it does name keys and files:
        a caller whose key ids must not reach a log removes them (crypto.replykeys does).
        """
        parts = [f"exit code {self.returncode}"]
        parts += [f"{line.keyword} {line.rest}" for line in self.status
                  if line.keyword in _REASON_KEYWORDS]
        parts += self.stderr_tail.splitlines()[-_REASON_LINES:]
        return "; ".join(parts)


def gpgconf_for(gpg_binary: str) -> str:
    """The gpgconf that belongs to ``gpg_binary`` (same folder when a path is given)."""
    if os.sep in gpg_binary:
        return str(Path(gpg_binary).with_name("gpgconf"))
    return "gpgconf"


# A Unix socket's address holds 108 bytes, and gpg-agent makes its sockets in the home
# ("/S.gpg-agent.browser" is the longest name, 20 bytes). In a longer home the agent cannot
# start ("socket name ... is too long") and every secret-key operation fails; whether a home
# is too long depends on where an operator put the instance, or on a test's temporary folder.
# Such a home is reached through a short alias instead: a symbolic link in a private folder of
# this process. Every process's alias leads to the same home, hence the same agent socket.
_MAX_HOME_BYTES = 80
_aliases: dict[Path, Path] = {}
_aliases_lock = threading.Lock()


def socket_safe(home: Path) -> Path:
    """``home``, or a short alias to it where its own path is too long for the agent's sockets."""
    if len(os.fsencode(home)) <= _MAX_HOME_BYTES:
        return home
    with _aliases_lock:
        alias = _aliases.get(home)
        if alias is None or not alias.is_symlink():
            # mkdtemp: a fresh folder of mode 0700, so no one else can plant or swap the link.
            folder = Path(tempfile.mkdtemp(prefix="gh-", dir="/tmp"))
            alias = folder / "h"
            alias.symlink_to(Path(home).absolute(), target_is_directory=True)
            _aliases[home] = alias
            atexit.register(shutil.rmtree, folder, True)
        return alias


# gpgconf --kill returns once the agent has been told to stop, not once it has stopped: the
# agent shuts down and removes its sockets afterwards, at its own pace. With gpg 2.2.40 on a
# shared 2-core machine, up to 4 kills in 100 right after a key generation returned with the
# sockets still there; a gpg started in that window still finds the old agent's socket. A
# caller that needs the agent gone (to start afresh, or because it promised so) waits for the
# sockets to go, within a bound: an agent that crashed leaves sockets that never go, and must
# not hold the caller for long.
_AGENT_STOP_WAIT_S = 10.0
_AGENT_STOP_POLL_S = 0.01
_AGENT_SOCKETS = "S.gpg-agent*"


def _agent_socket_dir(gpgconf: str, homedir: str) -> Path | None:
    """Where the agent of ``homedir`` keeps its sockets: the home itself, or a folder under
    /run/user/UID where the system has one. None if gpgconf cannot say."""
    try:
        listed = subprocess.run(
            [gpgconf, "--homedir", homedir, "--list-dirs", "socketdir"],
            check=False, capture_output=True, timeout=DEFAULT_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # gpgconf percent-escapes the value (":" and "%" at least).
    line = urllib.parse.unquote(listed.stdout.decode("utf-8", errors="replace").strip())
    return Path(line) if listed.returncode == 0 and line.startswith("/") else None


def kill_agent(home: Path, gpg_binary: str = "gpg", *, wait: bool = False) -> None:
    """Stop the gpg-agent of ``home`` if one runs; harmless when none does.

    With ``wait``, return only once the agent's sockets are gone (at most
    ``_AGENT_STOP_WAIT_S``), so that the next gpg on this home starts a new agent. Without
    it, the agent may still be stopping on return: enough for a home about to be removed.
    """
    gpgconf = gpgconf_for(gpg_binary)
    homedir = str(socket_safe(home))
    socket_dir = _agent_socket_dir(gpgconf, homedir) if wait else None
    try:
        subprocess.run(
            [gpgconf, "--homedir", homedir, "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
            timeout=DEFAULT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise GpgTimeout("gpgconf could not stop the gpg-agent in time") from exc
    if socket_dir is None:
        return
    deadline = time.monotonic() + _AGENT_STOP_WAIT_S
    while any(socket_dir.glob(_AGENT_SOCKETS)) and time.monotonic() < deadline:
        time.sleep(_AGENT_STOP_POLL_S)


@contextlib.contextmanager
def _secret_pipe(secret: bytes | None) -> Iterator[int | None]:
    """A pipe already holding ``secret`` (and closed for writing); yields its read end."""
    if secret is None:
        yield None
        return
    read_end, write_end = os.pipe()
    try:
        try:
            # A passphrase or a few option lines: far below the pipe's capacity, cannot block.
            os.write(write_end, secret)
        finally:
            os.close(write_end)
        yield read_end
    finally:
        os.close(read_end)


class _LineCollector(threading.Thread):
    """Drain a pipe from gpg so it never blocks on a full pipe; keep a bounded record."""

    def __init__(self, stream: IO[bytes], max_lines: int) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self.lines: deque[str] = deque(maxlen=max_lines)

    def run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in self._stream:
                self.lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
        with contextlib.suppress(OSError):
            self._stream.close()


class GpgProcess:
    """A running gpg whose status channel and stderr are drained by threads."""

    def __init__(self, proc: subprocess.Popen[bytes], status_stream: IO[bytes]) -> None:
        self.proc = proc
        self._status = _LineCollector(status_stream, _STATUS_MAX_LINES)
        self._stderr = _LineCollector(_pipe(proc.stderr), _STDERR_TAIL_LINES)
        self._status.start()
        self._stderr.start()

    @property
    def stdin(self) -> IO[bytes]:
        return _pipe(self.proc.stdin)

    @property
    def stdout(self) -> IO[bytes]:
        return _pipe(self.proc.stdout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for gpg and its readers; GpgTimeout (gpg killed) if it takes longer."""
        try:
            returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise GpgTimeout("gpg did not finish in time") from exc
        self._join_readers(timeout)
        return returncode

    def kill(self) -> None:
        """Stop gpg now (whatever it was doing is to be thrown away)."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.kill()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=DEFAULT_TIMEOUT_S)
        self._join_readers(DEFAULT_TIMEOUT_S)

    def _join_readers(self, timeout: float | None) -> None:
        self._status.join(timeout=timeout)
        self._stderr.join(timeout=timeout)

    @property
    def status(self) -> list[Status]:
        """The status lines so far (all of them once :meth:`wait` returned)."""
        return parse_status(list(self._status.lines))

    @property
    def stderr_tail(self) -> str:
        """gpg's last stderr lines, for diagnostics (gpg never prints plaintext there)."""
        return "\n".join(self._stderr.lines)


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    # Not an assert: asserts vanish under python -O, and this is the crypto path.
    if stream is None:
        raise GpgRunError("gpg pipe missing")
    return stream


class GpgHome:
    """One GnuPG home and the gpg binary that works on it."""

    def __init__(self, home: Path, gpg_binary: str = "gpg") -> None:
        self.home = Path(home)
        self.gpg_binary = gpg_binary
        self._library: gnupg.GPG | None = None

    def library(self) -> gnupg.GPG:
        """python-gnupg on this home, for key management (made once: it runs gpg to start)."""
        if self._library is None:
            self._library = gnupg.GPG(
                gpgbinary=self.gpg_binary, gnupghome=str(socket_safe(self.home))
            )
        return self._library

    def kill_agent(self, *, wait: bool = False) -> None:
        kill_agent(self.home, self.gpg_binary, wait=wait)

    def _command(
        self,
        args: Sequence[str],
        status_fd: int,
        passphrase_fd: int | None,
        options_fd: int | None,
    ) -> list[str]:
        cmd = [self.gpg_binary, "--homedir", str(socket_safe(self.home))]
        if options_fd is not None:
            cmd += ["--options", f"/dev/fd/{options_fd}"]
        cmd += ["--batch", "--no-tty", "--status-fd", str(status_fd)]
        if passphrase_fd is not None:
            # Loopback: the agent asks us (the pipe), never a pinentry on some terminal.
            cmd += ["--pinentry-mode", "loopback", "--passphrase-fd", str(passphrase_fd)]
        return [*cmd, *args]

    def run(
        self,
        args: Sequence[str],
        data: bytes = b"",
        *,
        passphrase: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> GpgResult:
        """Run gpg to completion with ``data`` on stdin; stdout and status lines are returned.

        The passphrase goes through a pipe of its own: never argv (visible in /proc), never a
        file, and stdin stays free for the data. Raises GpgRunError if gpg cannot be started or
        does not finish within ``timeout``; gpg's own failures are in the result.
        """
        with _secret_pipe(passphrase) as passphrase_fd:
            # Status on stderr: one pipe fewer, and the prose around it is skipped by the parser.
            cmd = self._command(args, 2, passphrase_fd, None)
            fds = () if passphrase_fd is None else (passphrase_fd,)
            try:
                proc = subprocess.run(
                    cmd,
                    input=data,
                    capture_output=True,
                    pass_fds=fds,
                    check=False,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired as exc:
                raise GpgTimeout("gpg did not finish in time") from exc
            except OSError as exc:
                raise GpgRunError(f"gpg could not run: {type(exc).__name__}") from exc
        lines = proc.stderr.decode("utf-8", errors="replace").splitlines()
        prose = [line for line in lines if not line.startswith(STATUS_PREFIX)]
        return GpgResult(
            proc.returncode,
            proc.stdout,
            tuple(parse_status(lines)),
            "\n".join(prose[-_STDERR_TAIL_LINES:]),
        )

    def popen(
        self,
        args: Sequence[str],
        *,
        stdout_fd: int | None = None,
        stdin_pipe: bool = True,
        passphrase: bytes | None = None,
        options: bytes | None = None,
    ) -> GpgProcess:
        """Start gpg and return at once, for data streamed in or out while it runs.

        ``stdout_fd``: gpg writes there (e.g. the store's open file, or :data:`DISCARD`)
        instead of to a pipe.
        ``stdin_pipe``: False gives gpg /dev/null, for a gpg that reads a file it is named.
        ``options``: text of an options "file" handed over as a pipe; even an empty one keeps
        gpg from reading a gpg.conf someone may have planted in the home.
        Unbuffered pipes: each write() goes straight to gpg, so Python never holds more
        plaintext than the chunk it was given.
        """
        status_r, status_w = os.pipe()
        try:
            with _secret_pipe(passphrase) as passphrase_fd, _secret_pipe(options) as options_fd:
                fds = [status_w, *(fd for fd in (passphrase_fd, options_fd) if fd is not None)]
                try:
                    proc = subprocess.Popen(
                        self._command(args, status_w, passphrase_fd, options_fd),
                        stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                        stdout=subprocess.PIPE if stdout_fd is None else stdout_fd,
                        stderr=subprocess.PIPE,
                        pass_fds=fds,
                        close_fds=True,
                        bufsize=0,
                    )
                except OSError as exc:
                    os.close(status_r)
                    raise GpgRunError(f"gpg could not run: {type(exc).__name__}") from exc
        finally:
            # The child holds its own copy; ours must go or the reader never sees EOF.
            os.close(status_w)
        return GpgProcess(proc, os.fdopen(status_r, "rb"))


@contextlib.contextmanager
def throwaway_home(
    gpg_binary: str = "gpg",
    prefix: str = "pg-",
    agent_conf: str | None = None,
    agent: bool = True,
) -> Iterator[GpgHome]:
    """A fresh private GnuPG home for one operation, gone (with its agent) afterwards.

    It lives under /tmp because gpg-agent's socket path must fit in a Unix socket address.
    ``agent=False`` is for a home where gpg only ever runs with ``--no-autostart``: there is
    no agent to stop, and starting gpgconf for nothing costs a process per call.
    """
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        os.chmod(home, 0o700)
        if agent_conf is not None:
            (home / "gpg-agent.conf").write_text(agent_conf, encoding="ascii")
        yield GpgHome(home, gpg_binary)
    finally:
        try:
            if agent:
                kill_agent(home, gpg_binary)
        finally:
            # Whatever key the operation loaded must not outlive it, even when gpgconf fails.
            shutil.rmtree(home, ignore_errors=True)
