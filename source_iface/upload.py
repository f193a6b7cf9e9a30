"""Streaming multipart/form-data parser for the reporter's upload.

Why not ``request.form`` / ``request.files``: Werkzeug's form parser spools every file part
larger than 500 KB to a temporary file, so a reporter's evidence would sit in plaintext on the
server's disk (and in its journal, backups and free blocks) before we could encrypt it. The upload
view must never touch those attributes; it hands ``request.stream`` to :func:`parse_upload`,
which pushes each file's bytes, chunk by chunk, into a sink the caller provides (the gpg
encryptor). Nothing here writes to disk and memory stays flat whatever the file size: the parser
holds at most one read chunk plus a partial boundary, and the bounded text fields.

Cleanup contract: on any error, :func:`parse_upload` calls ``abort()`` on the sink that is open
at that moment (if any) and then re-raises. Sinks that were already closed belong to the caller:
they are complete stored items that the caller must delete when the request as a whole fails.
For :class:`UploadError`, they are listed in ``UploadError.closed_files``; exceptions raised by
the caller's own callbacks or sinks propagate unchanged, so the robust pattern is for the caller
to remember every sink its ``open_file`` returned and undo the closed ones itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    NeedData,
)

#: Bytes asked of the stream per read; also the largest piece of file data (plus the few bytes of
#: a possible partial boundary held back from the previous read) that a sink receives at once.
CHUNK_SIZE = 64 * 1024

# Room for what the decoder must buffer whole before it can emit an event: a part's headers, the
# preamble and the epilogue. Browsers send a few hundred bytes; anything near this is hostile,
# and capping it is what keeps a body with no blank line or no boundary from growing the buffer.
_MAX_BUFFERED_BYTES = 16 * 1024

# Whitespace (or a lone dash) that may follow a delimiter before its line break, as far as we hold
# it back (see _partial_delimiter_length). Browsers send none; a client sending more than this is
# only corrupting its own upload.
_MAX_DELIMITER_PADDING = 32

# RFC 2046 section 5.1.1: 1 to 70 characters from this set, not ending in a space. A short,
# plain boundary keeps the decoder's regular expressions cheap and its held-back tail tiny.
_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


class UploadError(Exception):
    """The upload was refused; ``code`` is stable and safe to map to a user-facing message.

    Codes: ``too_large``, ``malformed``, ``disconnected``, ``too_many_fields``,
    ``field_too_large``, ``too_many_files``.
    """

    def __init__(self, code: str, closed_files: list[Any] | None = None) -> None:
        super().__init__(code)
        self.code = code
        #: What ``open_file`` returned for every file closed before the error, in order. These
        #: are complete stored items: the caller must delete them, the parser does not.
        self.closed_files: list[Any] = closed_files if closed_files is not None else []


class FileSink(Protocol):
    """Where one file's plaintext goes, typically straight into ``gpg --encrypt``."""

    def write(self, chunk: bytes) -> None: ...

    def close(self) -> None:
        """The file is complete."""

    def abort(self) -> None:
        """Discard everything written. Called at most once: instead of ``close``, or after a
        ``close`` that raised (a file whose completion failed is not complete)."""


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int  # the whole request body
    max_fields: int = 64  # text parts, and file parts that carry no byte
    max_field_bytes: int = 64 * 1024  # one text field's value, in bytes
    max_files: int = 20  # file parts that carry at least one byte


@dataclass
class ParsedUpload:
    #: Text fields by name, every value in arrival order.
    fields: dict[str, list[str]] = field(default_factory=dict)
    #: What ``open_file`` returned, for each file that was closed, in arrival order.
    files: list[Any] = field(default_factory=list)
    #: Non-empty file parts received, including those ``open_file`` chose to skip.
    file_count: int = 0

    def get(self, name: str) -> str | None:
        """The last value sent for ``name`` (as in ``open_file``'s view), or None."""
        values = self.fields.get(name)
        return values[-1] if values else None

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, ()))


OpenFile = Callable[[str, str, dict[str, str]], FileSink | None]
OnFirstFile = Callable[[dict[str, list[str]]], None]


def parse_upload(
    stream: BinaryIO,
    content_type: str,
    content_length: int | None,
    limits: UploadLimits,
    open_file: OpenFile,
    *,
    on_first_file: OnFirstFile | None = None,
) -> ParsedUpload:
    """Parse a multipart/form-data body from ``stream`` without ever buffering a whole file.

    ``open_file(field_name, filename, fields_so_far)`` is called when a file part's first byte
    arrives (``fields_so_far`` maps each text field to its last value). It returns a sink or
    None to drop that part. The filename is passed on as the header parser decoded it, paths and
    all: sanitising it is the encryptor's job. File parts with no byte at all (an empty file
    input, which browsers still send) are skipped without calling ``open_file``.

    ``on_first_file(fields)`` is called once, just before the first ``open_file``, with the text
    fields so far; browsers send parts in form order, so a form that puts its CSRF token and text
    inputs before its file inputs can be checked here, and raising stops the parse before any
    file byte is handed over. It is not called when no file carries data, so the caller must
    still check the fields in the returned :class:`ParsedUpload`.

    Errors raise :class:`UploadError`; see the module docstring for who cleans up what.
    """
    boundary = _boundary(content_type)
    if content_length is not None and content_length > limits.max_bytes:
        # Refuse before reading a single byte: nothing of the report enters memory.
        raise UploadError("too_large")
    parser = _Parser(boundary, limits, open_file, on_first_file)
    try:
        for chunk in _read_chunks(stream, content_length, limits.max_bytes):
            parser.feed(chunk)
        parser.finish()
    except BaseException as exc:
        # Any failure, ours or the caller's (a sink, open_file, on_first_file) or even a worker
        # being killed: the half-written file must not survive as if it were complete.
        parser.abort_open_sink()
        if isinstance(exc, UploadError):
            exc.closed_files = list(parser.result.files)
        raise
    return parser.result


def _boundary(content_type: str) -> bytes:
    mimetype, options = parse_options_header(content_type)
    if mimetype.lower() != "multipart/form-data":
        raise UploadError("malformed")
    boundary = options.get("boundary", "")
    if not _BOUNDARY_RE.fullmatch(boundary):
        raise UploadError("malformed")
    return boundary.encode("ascii")


def _read_chunks(stream: BinaryIO, content_length: int | None, max_bytes: int) -> Iterator[bytes]:
    """Yield the body in chunks of at most CHUNK_SIZE, enforcing the size limits while reading.

    With a Content-Length, never read past it (the rest of the connection is not ours). Without
    one (chunked encoding), read at most one byte beyond ``max_bytes``: enough to know the client
    sent too much, never enough to let it fill memory or the encryptor.
    """
    remaining = content_length if content_length is not None else max_bytes + 1
    total = 0
    while remaining > 0:
        try:
            chunk = stream.read(min(CHUNK_SIZE, remaining))
        except ClientDisconnected as exc:
            raise UploadError("disconnected") from exc
        except RequestEntityTooLarge as exc:
            # The WSGI layer's own maximum (Flask's MAX_CONTENT_LENGTH) tripped first.
            raise UploadError("too_large") from exc
        except OSError as exc:
            raise UploadError("disconnected") from exc
        if not chunk:
            if content_length is not None:
                # Fewer bytes than announced: the reporter's connection (or Tor circuit) died.
                raise UploadError("disconnected")
            return
        total += len(chunk)
        if total > max_bytes:
            raise UploadError("too_large")
        remaining -= len(chunk)
        # A stream that returns more than asked must not defeat the chunk bound.
        for start in range(0, len(chunk), CHUNK_SIZE):
            yield chunk[start : start + CHUNK_SIZE]


def _partial_delimiter_length(data: bytes, delimiter: bytes) -> int:
    """How many bytes at the end of ``data`` to hold back from the decoder until more arrive.

    Werkzeug's decoder (3.1.x, pallets/werkzeug#3285) sizes its held-back window for
    ``CRLF--boundary`` only. When its buffer ends just past the delimiter (``CRLF--boundary-``,
    half of the closing ``--``, or transport padding), it emits the CR as data and then still
    finds the boundary, so the part gains a stray CR: a reporter's evidence file would no longer
    match its hash, depending only on where the network split the body. So the decoder is never
    given a delimiter, or the start of one, that is not yet followed by what ends it (a line
    break or the closing ``--``); those few bytes wait for the next read.
    """
    # A whole delimiter near the end, followed by nothing yet or only by padding or a lone dash.
    start = data.rfind(delimiter, max(0, len(data) - len(delimiter) - _MAX_DELIMITER_PADDING))
    if start != -1:
        tail = data[start + len(delimiter) :]
        if not tail.startswith(b"--") and not tail.strip(b"- \t"):
            return len(data) - start
    # The first bytes of a delimiter at the very end.
    for position in range(max(0, len(data) - len(delimiter)), len(data)):
        if delimiter.startswith(data[position:]):
            return len(data) - position
    return 0


class _Parser:
    """The state between decoder events; one instance per request."""

    def __init__(
        self,
        boundary: bytes,
        limits: UploadLimits,
        open_file: OpenFile,
        on_first_file: OnFirstFile | None,
    ) -> None:
        self.decoder = MultipartDecoder(
            boundary,
            # Caps what the decoder buffers while it looks for a boundary or a blank line. File
            # and field data are emitted as they arrive, so only headers, preamble and epilogue
            # can come near it: a file of any size passes while a header without end fails.
            max_form_memory_size=CHUNK_SIZE + _MAX_BUFFERED_BYTES,
        )
        self.delimiter = b"--" + boundary
        self.held_back = b""
        self.limits = limits
        self.open_file = open_file
        self.on_first_file = on_first_file
        self.result = ParsedUpload()
        self.field_count = 0
        self.parts_started = 0
        self.complete = False
        # The current part: a text field being collected, or a file part.
        self.field_name: str | None = None
        self.field_value = bytearray()
        self.file_part: tuple[str, str] | None = None  # (field name, filename)
        self.file_has_data = False
        self.sink: FileSink | None = None

    def feed(self, chunk: bytes) -> None:
        data = self.held_back + chunk if self.held_back else chunk
        keep = _partial_delimiter_length(data, self.delimiter)
        self.held_back = data[len(data) - keep :] if keep else b""
        self._receive(data[: len(data) - keep])

    def finish(self) -> None:
        self._receive(self.held_back)
        self.held_back = b""
        self.decoder.receive_data(None)
        try:
            self._drain()
        except UploadError as exc:
            if exc.code != "malformed" or self.parts_started == 0:
                raise
            # The body ended inside a part or before the closing boundary. A client that was
            # cut off and one that sent a truncated body look the same; report the likely one.
            raise UploadError("disconnected") from exc
        if not self.complete:
            raise UploadError("disconnected" if self.parts_started else "malformed")

    def _receive(self, data: bytes) -> None:
        if not data:
            return
        try:
            self.decoder.receive_data(data)
        except RequestEntityTooLarge as exc:  # decoder's buffer cap: endless headers/preamble
            raise UploadError("malformed") from exc
        self._drain()

    def abort_open_sink(self) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            # If abort itself fails, that failure propagates (with the original error as its
            # context): a sink that could not discard its data must not fail quietly.
            sink.abort()

    def _drain(self) -> None:
        while True:
            try:
                event = self.decoder.next_event()
            except (ValueError, RequestEntityTooLarge) as exc:
                # Missing Content-Disposition, undecodable headers, a body that ends where no
                # event can: all "not a form we understand".
                raise UploadError("malformed") from exc
            if isinstance(event, NeedData):
                return
            if isinstance(event, Field | File):
                self._start_part(event)
            elif isinstance(event, Data):
                self._data(event.data)
                if not event.more_data:
                    self._end_part()
            elif isinstance(event, Epilogue):
                self.complete = True
                return
            # Preamble: browsers send none, and its content means nothing to us.

    def _start_part(self, event: Field | File) -> None:
        self.parts_started += 1
        # The decoder casts a missing name to str without checking it.
        name: object = event.name
        if not isinstance(name, str):
            raise UploadError("malformed")
        if isinstance(event, File):
            self.file_part = (name, event.filename)
            self.file_has_data = False
        else:
            self._count_field()
            self.field_name = name
            self.field_value = bytearray()

    def _count_field(self) -> None:
        self.field_count += 1
        if self.field_count > self.limits.max_fields:
            raise UploadError("too_many_fields")

    def _data(self, data: bytes) -> None:
        if not data:
            return
        if self.file_part is None:
            if len(self.field_value) + len(data) > self.limits.max_field_bytes:
                raise UploadError("field_too_large")
            self.field_value += data
            return
        if not self.file_has_data:
            self._open_file(*self.file_part)
        if self.sink is not None:
            self.sink.write(data)

    def _open_file(self, name: str, filename: str) -> None:
        # Deferred to the first byte so that an empty file input costs no sink, no gpg process
        # and no stored item.
        self.file_has_data = True
        self.result.file_count += 1
        if self.result.file_count > self.limits.max_files:
            raise UploadError("too_many_files")
        if self.result.file_count == 1 and self.on_first_file is not None:
            self.on_first_file({key: list(values) for key, values in self.result.fields.items()})
        last_values = {key: values[-1] for key, values in self.result.fields.items()}
        sink = self.open_file(name, filename, last_values)
        self.sink = sink

    def _end_part(self) -> None:
        if self.file_part is not None:
            if not self.file_has_data:
                # An empty file input: bounded like a field, since it stores nothing.
                self._count_field()
            elif self.sink is not None:
                # The sink stays "open" (and so aborted on error) until close() returns.
                self.sink.close()
                self.result.files.append(self.sink)
                self.sink = None
            self.file_part = None
            return
        if self.field_name is None:
            return
        try:
            value = self.field_value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UploadError("malformed") from exc
        self.result.fields.setdefault(self.field_name, []).append(value)
        self.field_name = None
        self.field_value = bytearray()
