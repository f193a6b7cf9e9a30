"""Streaming OpenPGP encryption to several recipients at once, memory bounded whatever the size.

The report's bytes go from the upload parser straight into ``gpg --encrypt`` through a pipe,
and gpg writes the ciphertext straight into the caller's open file: no plaintext byte touches
disk and Python never holds more than the chunk it is given.

gpg is started through :mod:`crypto.gpgrun` rather than python-gnupg: python-gnupg's
``encrypt`` reads its whole input and collects its whole output in memory unless given a file
name, and it is not a chunk writer, so it cannot sit between a streaming upload and the store.

Every failure raises :class:`~crypto.errors.EncryptionError`; success is only declared when gpg
exited 0 AND reported END_ENCRYPTION on its status channel with no recipient or other failure.

With ``framing=FRAMING_PADME`` the plaintext is padded inside the encryption
(:mod:`crypto.padding`) so that the ciphertext's size is a bucket's, not the document's; the
file name then travels in the frame, and the literal packet carries none.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO

from crypto.errors import EncryptionError
from crypto.gpgrun import GpgProcess, GpgRunError, GpgTimeout, Status
from crypto.keyring import Keyring, normalize_fingerprint
from crypto.padding import FRAMING_NONE, FRAMING_PADME, frame, frame_tail, framed_size

# OpenPGP stores the literal packet's filename behind a one-octet length.
_MAX_FILENAME_BYTES = 255
# A bigger pipe means fewer round trips between Python and gpg; the kernel owns this memory.
_PIPE_SIZE = 1024 * 1024
# How long gpg may take to finish after the last byte; it only has to flush a few buffers.
_FINISH_TIMEOUT_S = 120.0
# Status keywords that mean gpg did not encrypt to exactly the keys we asked for.
_FATAL_STATUS = frozenset({"INV_RECP", "NO_RECP", "INV_SGNR", "FAILURE", "ERROR"})


def sanitize_filename(name: str | None) -> str | None:
    """The name to put in the literal packet: basename only, no control or format characters.

    The name comes from the uploading browser; it is only ever stored inside the ciphertext,
    but the investigator's workstation will show it and may save under it, so path parts,
    control characters and bidi overrides (which disguise ``exe.pdf`` as ``fdp.exe``) are
    removed here. Returns None when nothing meaningful is left.
    """
    if name is None:
        return None
    base = re.split(r"[/\\]", name)[-1]
    base = unicodedata.normalize("NFC", base)
    cleaned = "".join(
        ch for ch in base if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")
    ).strip()
    if cleaned in ("", ".", ".."):
        return None
    if len(cleaned.encode("utf-8")) <= _MAX_FILENAME_BYTES:
        return cleaned
    # Keep a short extension so the workstation still knows what kind of file it is.
    stem, dot, ext = cleaned.rpartition(".")
    suffix = f"{dot}{ext}" if stem and len(ext.encode("utf-8")) <= 16 else ""
    room = _MAX_FILENAME_BYTES - len(suffix.encode("utf-8"))
    head = cleaned[: len(cleaned) - len(suffix)] if suffix else cleaned
    cut = head.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return cut + suffix


def _recipient_args(
    keyring: Keyring, recipients: Sequence[str], extra_recipient_files: Sequence[Path]
) -> list[str]:
    if isinstance(recipients, str):
        # A bare string is a sequence of characters: refuse instead of iterating over it.
        raise EncryptionError("recipients must be a list of fingerprints, not one string")
    if not recipients:
        # Fail closed: gpg with no --recipient would fall back to asking or to defaults.
        raise EncryptionError("no recipient: refusing to encrypt to nobody")
    try:
        wanted = list(dict.fromkeys(normalize_fingerprint(r) for r in recipients))
    except ValueError as exc:
        raise EncryptionError(f"invalid recipient: {exc}") from exc
    present = set(keyring.fingerprints())
    missing = [fpr for fpr in wanted if fpr not in present]
    if missing:
        raise EncryptionError(f"recipient key(s) not in the keyring: {', '.join(missing)}")
    args: list[str] = []
    for fpr in wanted:
        # A full fingerprint without "!" lets gpg pick the key's valid encryption subkey while
        # still naming exactly one certificate.
        args += ["--recipient", fpr]
    for path in extra_recipient_files:
        if not Path(path).is_file():
            raise EncryptionError(f"recipient key file does not exist: {path}")
        # Per-source reply keys come as files so the server keyring does not grow with every
        # source and gpg never has to search through them.
        args += ["--recipient-file", str(path)]
    return args


def _gpg_args() -> list[str]:
    return [
        "--yes",
        # Keys are pinned by full fingerprint by the tenant admin after the checks in
        # crypto.keyring; the server has no web of trust to consult, and gpg's "unknown
        # validity" would otherwise stop batch encryption.
        "--trust-model",
        "always",
        # Never look keys up on the network or add recipients from a gpg.conf.
        "--no-auto-key-locate",
        "--no-encrypt-to",
        # No compression: compressed size leaks content (CRIME-style side channels), and most
        # evidence (PDF, JPEG, ZIP, video) is already compressed, so it only costs CPU.
        "--compress-algo",
        "none",
        "--personal-cipher-preferences",
        "AES256 AES192 AES",
        "--output",
        "-",
        "--encrypt",
    ]


def _filename_options(filename: str | None) -> bytes:
    """gpg options-file text that sets the literal packet's name (empty for no name).

    The name travels inside the encrypted literal packet, never on disk. In double quotes
    gpg's option parser keeps the value verbatim (spaces, quotes, '#'); sanitize_filename has
    removed the line breaks and control characters that could end or extend the line.
    """
    safe_name = sanitize_filename(filename)
    if safe_name is None:
        return b""
    return f'set-filename "{safe_name}"\n'.encode()


def _write_all(stream: IO[bytes], data: bytes | bytearray | memoryview) -> None:
    # A raw pipe write may be partial (a signal, a huge chunk); loop until all of it is in.
    view = memoryview(data)
    while view:
        written = stream.write(view)
        if not written:
            raise BrokenPipeError("gpg input pipe accepted nothing")
        view = view[written:]


def _verify(returncode: int | None, status: Sequence[Status]) -> None:
    """Raise EncryptionError unless gpg both exited 0 and reported a complete encryption."""
    keywords = {line.keyword for line in status}
    fatal = [f"{line.keyword} {line.rest}".strip() for line in status
             if line.keyword in _FATAL_STATUS]
    if fatal:
        raise EncryptionError(f"gpg refused to encrypt: {'; '.join(fatal[:5])}")
    if returncode != 0:
        raise EncryptionError(f"gpg failed with exit status {returncode}")
    if "BEGIN_ENCRYPTION" not in keywords or "END_ENCRYPTION" not in keywords:
        raise EncryptionError("gpg did not report a complete encryption")


def _start_gpg(
    keyring: Keyring, recipient_args: list[str], filename: str | None, stdout_fd: int | None
) -> GpgProcess:
    try:
        # The original filename goes to gpg through an options "file" that is a pipe, never
        # through argv: a process's command line is readable by every local user in
        # /proc/PID/cmdline, and ps, monitoring agents or audit rules may copy it to disk.
        return keyring.gpg_home.popen(
            [*_gpg_args(), *recipient_args],
            stdout_fd=stdout_fd,
            options=_filename_options(filename),
        )
    except GpgRunError as exc:
        raise EncryptionError(f"cannot run gpg: {exc}") from exc


def _finish(gpg: GpgProcess) -> int:
    try:
        return gpg.wait(timeout=_FINISH_TIMEOUT_S)
    except GpgTimeout as exc:
        raise EncryptionError("gpg did not finish in time") from exc


def _framing_name(framing: str, filename: str | None) -> tuple[str | None, str | None]:
    """(name for the literal packet, name for the padding frame) under ``framing``."""
    if framing == FRAMING_NONE:
        return filename, None
    if framing == FRAMING_PADME:
        # In the frame, where its length changes nothing of the ciphertext's size.
        return None, sanitize_filename(filename)
    raise EncryptionError(f"unknown framing {framing!r}")


class EncryptWriter:
    """Write plaintext chunks in; ciphertext goes to the sink file. See :func:`open_encryptor`.

    ``close()`` must be called (or the ``with`` block left normally) for the ciphertext to be
    complete; after any error the sink holds an unusable partial ciphertext the caller deletes.
    """

    def __init__(
        self,
        keyring: Keyring,
        recipients: Sequence[str],
        sink: BinaryIO,
        filename: str | None = None,
        extra_recipient_files: Sequence[Path] = (),
        framing: str = FRAMING_NONE,
    ) -> None:
        tail = _recipient_args(keyring, recipients, extra_recipient_files)
        self.framing = framing
        filename, self._frame_name = _framing_name(framing, filename)
        try:
            self._fd = sink.fileno()
        except (AttributeError, OSError, ValueError) as exc:
            raise EncryptionError("the sink must be a real open file") from exc
        # gpg writes through the same open file description; anything Python still buffers
        # must land first, and the shared offset tells how much gpg wrote.
        sink.flush()
        self._sink = sink
        self._start = os.lseek(self._fd, 0, os.SEEK_CUR)
        self._gpg = _start_gpg(keyring, tail, filename, stdout_fd=self._fd)
        self._stdin = self._gpg.stdin
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        self._done = False
        self.bytes_in = 0

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Feed plaintext to gpg. Blocks while gpg is busy, which bounds memory."""
        if self._done:
            raise EncryptionError("write to a closed encryptor")
        self._feed(chunk)
        self.bytes_in += memoryview(chunk).nbytes

    def _feed(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._gpg.poll() is not None:
            self.abort()
            raise EncryptionError("gpg stopped before the end of the data")
        try:
            _write_all(self._stdin, chunk)
        except (BrokenPipeError, OSError, ValueError) as exc:
            self.abort()
            raise EncryptionError("gpg stopped before the end of the data") from exc

    @property
    def tail_bytes(self) -> int:
        """How many bytes :meth:`close` will still feed gpg after the data (0 unframed)."""
        if self.framing == FRAMING_NONE:
            return 0
        return framed_size(self.bytes_in) - self.bytes_in

    def close(self) -> int:
        """Finish the encryption and verify it; return the number of bytes written to the sink.

        A padded stream gets its zeros and trailer here: only now is its length known.
        """
        if self._done:
            raise EncryptionError("encryptor already closed or aborted")
        if self.framing == FRAMING_PADME:
            # Zeros of a bounded piece at a time: the pipe to gpg sets the pace, as for data.
            for piece in frame_tail(self.bytes_in, self._frame_name):
                self._feed(piece)
        self._done = True
        try:
            self._stdin.close()
        except OSError as exc:
            self._gpg.kill()
            raise EncryptionError("gpg stopped before the end of the data") from exc
        returncode = _finish(self._gpg)
        _verify(returncode, self._gpg.status)
        end = os.lseek(self._fd, 0, os.SEEK_CUR)
        written = end - self._start
        if written <= 0:
            raise EncryptionError("gpg reported success but wrote no ciphertext")
        # Bring the Python file object's idea of the position in line with what gpg did.
        self._sink.seek(end)
        return written

    def abort(self) -> None:
        """Kill gpg; the sink is left with a partial ciphertext for the caller to delete."""
        self._done = True
        self._gpg.kill()

    @property
    def gpg_stderr(self) -> str:
        """The last lines gpg wrote to stderr, for diagnostics (no plaintext ever appears)."""
        return self._gpg.stderr_tail

    @property
    def pid(self) -> int:
        return self._gpg.pid

    def __enter__(self) -> EncryptWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._done:
            self.close()


def open_encryptor(
    keyring: Keyring,
    recipients: Sequence[str],
    sink: BinaryIO,
    filename: str | None = None,
    extra_recipient_files: Sequence[Path] = (),
    framing: str = FRAMING_NONE,
) -> EncryptWriter:
    """Start encrypting to every recipient (fingerprints in ``keyring``) into ``sink``.

    ``sink`` must be a real file (the store's open ``.part`` file); gpg writes into it
    directly. ``filename`` is the original name, kept only inside the ciphertext.
    ``framing`` is :data:`~crypto.padding.FRAMING_PADME` for everything the server stores;
    the caller records it with the item, so the reader never has to guess.
    """
    return EncryptWriter(keyring, recipients, sink, filename, extra_recipient_files, framing)


def encrypt_bytes(
    keyring: Keyring,
    recipients: Sequence[str],
    data: bytes,
    filename: str | None = None,
    extra_recipient_files: Sequence[Path] = (),
    framing: str = FRAMING_NONE,
) -> bytes:
    """Encrypt a small document (form answers, a reply) in memory; same checks as the stream.

    ``framing`` as for :func:`open_encryptor`.
    """
    tail = _recipient_args(keyring, recipients, extra_recipient_files)
    filename, frame_name = _framing_name(framing, filename)
    if framing == FRAMING_PADME:
        data = frame(data, frame_name)
    gpg = _start_gpg(keyring, tail, filename, stdout_fd=None)
    stdin, stdout = gpg.stdin, gpg.stdout
    output = bytearray()
    failure: BaseException | None = None

    # stdout is read on its own thread so gpg can never block on a full pipe while we write.
    def drain() -> None:
        while block := stdout.read(65536):
            output.extend(block)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        _write_all(stdin, data)
        stdin.close()
    except (BrokenPipeError, OSError) as exc:
        failure = exc
    returncode = _finish(gpg)
    reader.join(timeout=_FINISH_TIMEOUT_S)
    stdout.close()
    _verify(returncode, gpg.status)
    if failure is not None:
        raise EncryptionError("gpg stopped before the end of the data") from failure
    if not output:
        raise EncryptionError("gpg reported success but wrote no ciphertext")
    return bytes(output)
