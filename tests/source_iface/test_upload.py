"""The streaming upload parser: data arrives intact, memory stays flat, nothing touches disk."""

from __future__ import annotations

import gc
import io
import itertools
import json
import os
import random
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import flask
import psutil
import pytest
from werkzeug.exceptions import ClientDisconnected
from werkzeug.test import EnvironBuilder, run_wsgi_app

from source_iface.upload import (
    CHUNK_SIZE,
    FileSink,
    ParsedUpload,
    UploadError,
    UploadLimits,
    parse_upload,
)

BOUNDARY = "----PeluitTestBoundary7MA4YWxkTrZu0gW"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
# A partial boundary may be held back from one read and handed on with the next (by the decoder,
# and by the parser's own hold-back); anything beyond that would mean data is piling up.
MAX_SINK_CHUNK = CHUNK_SIZE + 2 * len(BOUNDARY) + 64
LIMITS = UploadLimits(max_bytes=50 * 1024 * 1024)

MiB = 1024 * 1024


# --- a small multipart encoder ------------------------------------------------------------------

Part = tuple[str, str | None, bytes | Iterable[bytes]]  # (name, filename or None, data)


def iter_body(parts: list[Part], boundary: str = BOUNDARY) -> Iterator[bytes]:
    """Yield a browser-like multipart body; a part's data may be an iterable of pieces."""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
            headers = f"Content-Disposition: {disposition}\r\nContent-Type: application/pdf\r\n"
        else:
            headers = f"Content-Disposition: {disposition}\r\n"
        yield f"--{boundary}\r\n{headers}\r\n".encode()
        if isinstance(data, bytes):
            yield data
        else:
            yield from data
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def encode(parts: list[Part], boundary: str = BOUNDARY) -> bytes:
    return b"".join(iter_body(parts, boundary))


def field(name: str, value: str) -> Part:
    return (name, None, value.encode())


def payload(size: int, seed: int = 1) -> bytes:
    # Pseudo-random bytes contain CR, LF and dashes, so boundary look-alikes get exercised.
    return random.Random(seed).randbytes(size)


class GeneratedStream(io.RawIOBase):
    """A body produced piece by piece, so a 200 MB upload never exists as one bytes object."""

    def __init__(self, pieces: Iterable[bytes], max_read: int | None = None) -> None:
        self._pieces = iter(pieces)
        self._pending = b""
        self._max_read = max_read
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = len(buffer) if self._max_read is None else min(len(buffer), self._max_read)
        while not self._pending:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._pending = piece
        taken, self._pending = self._pending[:wanted], self._pending[wanted:]
        buffer[: len(taken)] = taken
        self.position += len(taken)
        return len(taken)


def stream_of(body: bytes, max_read: int | None = None) -> GeneratedStream:
    return GeneratedStream([body], max_read=max_read)


# --- sinks ----------------------------------------------------------------------------------------


class RecordingSink:
    def __init__(self, name: str, filename: str, fields: dict[str, str], log: list[str]) -> None:
        self.name = name
        self.filename = filename
        self.fields_at_open = fields
        self.data = bytearray()
        self.writes = 0
        self.max_chunk = 0
        self.closed = False
        self.aborted = False
        self._log = log
        log.append(f"open {name}")

    def write(self, chunk: bytes) -> None:
        assert not (self.closed or self.aborted)
        self.data += chunk
        self.writes += 1
        self.max_chunk = max(self.max_chunk, len(chunk))

    def close(self) -> None:
        self.closed = True
        self._log.append(f"close {self.name}")

    def abort(self) -> None:
        self.aborted = True
        self._log.append(f"abort {self.name}")


class Recorder:
    """An ``open_file`` that records every sink it hands out."""

    def __init__(self, sink_class: type[RecordingSink] = RecordingSink) -> None:
        self.sinks: list[RecordingSink] = []
        self.log: list[str] = []
        self._sink_class = sink_class

    def __call__(self, name: str, filename: str, fields: dict[str, str]) -> FileSink:
        sink = self._sink_class(name, filename, fields, self.log)
        self.sinks.append(sink)
        return sink


def parse(
    body: bytes | GeneratedStream,
    recorder: Callable[[str, str, dict[str, str]], FileSink | None],
    *,
    limits: UploadLimits = LIMITS,
    content_type: str = CONTENT_TYPE,
    content_length: int | str | None = "auto",
    on_first_file: Callable[[dict[str, list[str]]], None] | None = None,
) -> ParsedUpload:
    stream = stream_of(body) if isinstance(body, bytes) else body
    if content_length == "auto":
        content_length = len(body) if isinstance(body, bytes) else None
    assert not isinstance(content_length, str)
    return parse_upload(
        stream,  # type: ignore[arg-type]  # a RawIOBase is a binary stream
        content_type,
        content_length,
        limits,
        recorder,
        on_first_file=on_first_file,
    )


# --- data arrives intact -------------------------------------------------------------------------


def test_fields_and_files_arrive_intact_in_order() -> None:
    big, small = payload(3 * MiB), payload(10_000, seed=2)
    body = encode(
        [
            field("csrf_token", "tok-123"),
            field("kronologi", "Dana desa dipotong 30% — oleh kepala dinas."),
            ("lampiran", "rekening.pdf", big),
            ("lampiran", "foto.jpg", small),
        ]
    )
    recorder = Recorder()

    result = parse(body, recorder)

    assert result.fields == {
        "csrf_token": ["tok-123"],
        "kronologi": ["Dana desa dipotong 30% — oleh kepala dinas."],
    }
    assert result.get("csrf_token") == "tok-123"
    assert result.get("missing") is None
    assert [(s.name, s.filename) for s in recorder.sinks] == [
        ("lampiran", "rekening.pdf"),
        ("lampiran", "foto.jpg"),
    ]
    assert bytes(recorder.sinks[0].data) == big
    assert bytes(recorder.sinks[1].data) == small
    assert recorder.log == ["open lampiran", "close lampiran"] * 2
    assert not any(s.aborted for s in recorder.sinks)
    assert result.files == recorder.sinks
    assert result.file_count == 2
    assert recorder.sinks[0].fields_at_open == {
        "csrf_token": "tok-123",
        "kronologi": "Dana desa dipotong 30% — oleh kepala dinas.",
    }
    # Streamed in bounded pieces, never handed over whole.
    assert recorder.sinks[0].writes >= len(big) // MAX_SINK_CHUNK
    assert max(s.max_chunk for s in recorder.sinks) <= MAX_SINK_CHUNK


@pytest.mark.parametrize("max_read", [1, 2, 7, 64, 1000, CHUNK_SIZE])
def test_parse_is_the_same_whatever_the_stream_returns_per_read(max_read: int) -> None:
    # Data that ends in CRs, LFs and a near-boundary, so a read can split each of them.
    tricky = b"line\r\n\r\n--" + BOUNDARY[:-1].encode() + b"\r\n\r"
    body = encode(
        [
            field("judul", "Pengadaan\r\nfiktif"),
            ("bukti", "a.txt", tricky * 50),
            ("bukti", "b.txt", b"\n"),
            field("lokasi", "Kab. Bogor"),
        ]
    )
    recorder = Recorder()

    result = parse(stream_of(body, max_read=max_read), recorder, content_length=len(body))

    assert result.fields == {"judul": ["Pengadaan\r\nfiktif"], "lokasi": ["Kab. Bogor"]}
    assert [bytes(s.data) for s in recorder.sinks] == [tricky * 50, b"\n"]


def test_parse_is_the_same_wherever_the_network_splits_the_body() -> None:
    # Werkzeug's decoder alone appends a stray CR to the last part when a read ends inside
    # "\r\n--boundary--" (pallets/werkzeug#3285); evidence must come out byte for byte anyway.
    parts: list[Part] = [
        field("judul", "ends in CR\r"),
        field("kosong", ""),
        ("bukti", "a.bin", b"\r\n--" + BOUNDARY.encode() + b"-x\r\n\r"),
        ("bukti", "b.bin", b"last file-"),
    ]
    body = encode(parts)
    expected_fields = {"judul": ["ends in CR\r"], "kosong": [""]}
    expected_files = [parts[2][2], parts[3][2]]
    rng = random.Random(4)
    splits = [[cut] for cut in range(1, len(body))]
    splits += [sorted(rng.sample(range(1, len(body)), 3)) for _ in range(200)]

    for cuts in splits:
        edges = [0, *cuts, len(body)]
        stream = GeneratedStream([body[a:b] for a, b in itertools.pairwise(edges)])
        recorder = Recorder()

        result = parse(stream, recorder, content_length=len(body))

        assert result.fields == expected_fields, cuts
        assert [bytes(s.data) for s in recorder.sinks] == expected_files, cuts


def test_sink_receives_the_file_while_the_body_is_still_being_read() -> None:
    body = encode([("bukti", "big.bin", payload(8 * MiB))])
    stream = stream_of(body)
    read_when_first_written: list[int] = []

    class WatchingSink(RecordingSink):
        def write(self, chunk: bytes) -> None:
            if not read_when_first_written:
                read_when_first_written.append(stream.position)
            super().write(chunk)

    parse(stream, Recorder(WatchingSink), content_length=len(body))

    assert read_when_first_written[0] <= 2 * CHUNK_SIZE


def test_values_of_a_repeated_field_are_all_kept() -> None:
    body = encode([field("kategori", "suap"), field("kategori", "gratifikasi")])

    result = parse(body, Recorder())

    assert result.getlist("kategori") == ["suap", "gratifikasi"]
    assert result.get("kategori") == "gratifikasi"
    assert result.file_count == 0


def test_filenames_with_paths_or_unicode_are_passed_on_as_sent() -> None:
    names = ["../../etc/passwd", "laporan Dinas PU 数据 ñ.pdf", "/abs/olut.txt", ""]
    body = encode([("bukti", name, f"isi {i}".encode()) for i, name in enumerate(names)])
    recorder = Recorder()

    parse(body, recorder)

    assert [s.filename for s in recorder.sinks] == names
    assert [bytes(s.data) for s in recorder.sinks] == [b"isi 0", b"isi 1", b"isi 2", b"isi 3"]


@pytest.mark.slow
def test_a_200_mb_upload_streams_with_flat_memory() -> None:
    block = payload(CHUNK_SIZE, seed=3)
    blocks = 200 * MiB // CHUNK_SIZE
    expected_crc = 0
    for _ in range(blocks):
        expected_crc = zlib.crc32(block, expected_crc)
    stream = GeneratedStream(
        iter_body(
            [field("csrf_token", "t"), ("bukti", "rekaman.mp4", (block for _ in range(blocks)))]
        )
    )
    process = psutil.Process()
    gc.collect()
    baseline = process.memory_info().rss
    peak = baseline

    class CountingSink:
        def __init__(self) -> None:
            self.size = 0
            self.crc = 0
            self.writes = 0
            self.max_chunk = 0
            self.closed = False

        def write(self, chunk: bytes) -> None:
            nonlocal peak
            self.size += len(chunk)
            self.crc = zlib.crc32(chunk, self.crc)
            self.max_chunk = max(self.max_chunk, len(chunk))
            self.writes += 1
            if self.writes % 32 == 0:
                peak = max(peak, process.memory_info().rss)

        def close(self) -> None:
            self.closed = True

        def abort(self) -> None:
            raise AssertionError("nothing went wrong")

    sink = CountingSink()
    parse_upload(
        stream,  # type: ignore[arg-type]
        CONTENT_TYPE,
        None,
        UploadLimits(max_bytes=201 * MiB),
        lambda name, filename, fields: sink,
    )

    assert sink.closed
    assert sink.size == blocks * CHUNK_SIZE
    assert sink.crc == expected_crc
    assert sink.max_chunk <= MAX_SINK_CHUNK
    assert peak - baseline < 30 * MiB


# --- empty inputs and on_first_file --------------------------------------------------------------


def test_empty_file_inputs_are_skipped_without_opening_a_sink() -> None:
    first_file_calls: list[dict[str, list[str]]] = []
    body = encode(
        [
            field("csrf_token", "t"),
            ("lampiran", "", b""),  # a file input left empty, as browsers send it
            ("lampiran", "kosong.txt", b""),  # a chosen file of zero bytes
        ]
    )
    recorder = Recorder()

    result = parse(body, recorder, on_first_file=first_file_calls.append)

    assert recorder.sinks == []
    assert first_file_calls == []
    assert result.files == []
    assert result.file_count == 0
    assert result.fields == {"csrf_token": ["t"]}


def test_on_first_file_is_called_once_with_the_fields_before_the_first_file() -> None:
    calls: list[tuple[dict[str, list[str]], int]] = []
    recorder = Recorder()
    body = encode(
        [
            field("csrf_token", "t"),
            field("judul", "Mark-up"),
            ("lampiran", "", b""),
            ("lampiran", "a.pdf", b"A"),
            field("catatan", "setelah file"),
            ("lampiran", "b.pdf", b"B"),
        ]
    )

    def on_first_file(fields: dict[str, list[str]]) -> None:
        calls.append((fields, len(recorder.sinks)))

    result = parse(body, recorder, on_first_file=on_first_file)

    assert calls == [({"csrf_token": ["t"], "judul": ["Mark-up"]}, 0)]
    assert recorder.sinks[1].fields_at_open["catatan"] == "setelah file"
    assert result.file_count == 2


def test_on_first_file_raising_stops_before_any_sink_is_opened() -> None:
    class BadCsrf(Exception):
        pass

    def reject(fields: dict[str, list[str]]) -> None:
        raise BadCsrf

    body = encode([field("csrf_token", "forged"), ("bukti", "a.bin", payload(3 * MiB))])
    stream = stream_of(body)
    recorder = Recorder()

    with pytest.raises(BadCsrf):
        parse(stream, recorder, content_length=len(body), on_first_file=reject)

    assert recorder.sinks == []
    assert stream.position <= 2 * CHUNK_SIZE  # the rest of the file was never even read


def test_open_file_may_skip_a_part() -> None:
    recorder = Recorder()

    def only_bukti(name: str, filename: str, fields: dict[str, str]) -> FileSink | None:
        return recorder(name, filename, fields) if name == "bukti" else None

    body = encode([("lain", "x.bin", b"xx"), ("bukti", "y.bin", b"yy")])

    result = parse(body, only_bukti)

    assert [bytes(s.data) for s in recorder.sinks] == [b"yy"]
    assert result.files == recorder.sinks
    assert result.file_count == 2


# --- limits ------------------------------------------------------------------------------------


def test_too_large_by_header_is_refused_before_reading() -> None:
    body = encode([("bukti", "a.bin", payload(2000))])
    stream = stream_of(body)
    recorder = Recorder()

    with pytest.raises(UploadError) as caught:
        parse(stream, recorder, limits=UploadLimits(max_bytes=1000), content_length=len(body))

    assert caught.value.code == "too_large"
    assert stream.position == 0
    assert recorder.sinks == []


def test_too_large_without_a_header_aborts_the_open_sink() -> None:
    body = encode([field("csrf_token", "t"), ("bukti", "a.bin", payload(MiB))])
    stream = stream_of(body)
    recorder = Recorder()

    with pytest.raises(UploadError) as caught:
        parse(stream, recorder, limits=UploadLimits(max_bytes=500_000), content_length=None)

    assert caught.value.code == "too_large"
    assert stream.position <= 500_001  # at most one byte past the limit was read
    assert len(recorder.sinks) == 1
    assert recorder.sinks[0].aborted and not recorder.sinks[0].closed
    assert len(recorder.sinks[0].data) <= 500_000


def test_a_lying_content_length_never_lets_more_than_it_in() -> None:
    # The header promises a small body; the connection carries a big one. The parser must not read
    # past the header, and a body cut off by its own header is not a complete upload.
    body = encode([("bukti", "a.bin", payload(MiB))])
    stream = stream_of(body)
    recorder = Recorder()

    with pytest.raises(UploadError) as caught:
        parse(stream, recorder, limits=UploadLimits(max_bytes=200_000), content_length=100_000)

    assert caught.value.code == "disconnected"
    assert stream.position == 100_000
    assert recorder.sinks[0].aborted and not recorder.sinks[0].closed


def test_too_many_fields() -> None:
    body = encode([field(f"f{i}", "x") for i in range(5)])

    with pytest.raises(UploadError) as caught:
        parse(body, Recorder(), limits=UploadLimits(max_bytes=MiB, max_fields=4))

    assert caught.value.code == "too_many_fields"


def test_empty_file_parts_count_as_fields() -> None:
    body = encode([("lampiran", "", b"") for _ in range(5)])

    with pytest.raises(UploadError) as caught:
        parse(body, Recorder(), limits=UploadLimits(max_bytes=MiB, max_fields=4))

    assert caught.value.code == "too_many_fields"


def test_field_too_large() -> None:
    limits = UploadLimits(max_bytes=MiB, max_field_bytes=100)
    assert parse(encode([field("judul", "x" * 100)]), Recorder(), limits=limits).get("judul")

    with pytest.raises(UploadError) as caught:
        parse(encode([field("judul", "x" * 101)]), Recorder(), limits=limits)

    assert caught.value.code == "field_too_large"


def test_too_many_files_aborts_nothing_closed_and_reports_it() -> None:
    body = encode([("bukti", f"{i}.bin", b"data") for i in range(3)])
    recorder = Recorder()

    with pytest.raises(UploadError) as caught:
        parse(body, recorder, limits=UploadLimits(max_bytes=MiB, max_files=2))

    assert caught.value.code == "too_many_files"
    assert len(recorder.sinks) == 2  # the third was refused before open_file
    assert all(s.closed and not s.aborted for s in recorder.sinks)
    assert caught.value.closed_files == recorder.sinks


# --- broken bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [10, 200, 30_000])
def test_truncated_body_is_disconnected_and_aborts_the_open_sink(cut: int) -> None:
    body = encode([field("csrf_token", "t"), ("bukti", "a.bin", payload(60_000))])
    for content_length in (len(body), None):
        recorder = Recorder()

        with pytest.raises(UploadError) as caught:
            parse(stream_of(body[:-cut]), recorder, content_length=content_length)

        assert caught.value.code == "disconnected"
        assert len(recorder.sinks) == 1
        assert recorder.sinks[0].aborted and not recorder.sinks[0].closed


def test_body_cut_between_parts_is_disconnected() -> None:
    body = encode([("bukti", "a.bin", b"complete")])
    cut = body[: body.rindex(b"--" + BOUNDARY.encode())]
    recorder = Recorder()

    with pytest.raises(UploadError) as caught:
        parse(stream_of(cut), recorder, content_length=None)

    assert caught.value.code == "disconnected"
    assert recorder.sinks[0].aborted and not recorder.sinks[0].closed


@pytest.mark.parametrize("error", [ClientDisconnected(), ConnectionResetError("reset by peer")])
def test_stream_errors_are_disconnected(error: Exception) -> None:
    body = encode([("bukti", "a.bin", payload(200_000))])
    pieces = GeneratedStream([body[:100_000]])

    class DroppingStream(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            read = pieces.readinto(buffer)
            if not read:
                raise error
            return read

    recorder = Recorder()

    with pytest.raises(UploadError) as caught:
        parse(DroppingStream(), recorder, content_length=len(body))  # type: ignore[arg-type]

    assert caught.value.code == "disconnected"
    assert recorder.sinks[0].aborted and not recorder.sinks[0].closed


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/mixed; boundary=abc",
        "multipart/form-data; boundary=" + "a" * 71,
        'multipart/form-data; boundary="a\\nb"',
        "",
    ],
)
def test_bad_content_type_is_malformed(content_type: str) -> None:
    body = encode([field("a", "b")])

    with pytest.raises(UploadError) as caught:
        parse(body, Recorder(), content_type=content_type)

    assert caught.value.code == "malformed"


def test_a_long_but_legal_boundary_is_accepted() -> None:
    boundary = "-" * 20 + "WebKitFormBoundary" + "x" * 32  # 70 characters
    body = encode([field("a", "b"), ("f", "f.txt", b"isi")], boundary=boundary)
    recorder = Recorder()

    result = parse(body, recorder, content_type=f"multipart/form-data; boundary={boundary}")

    assert result.get("a") == "b"
    assert bytes(recorder.sinks[0].data) == b"isi"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"this is not a multipart body at all",
        b"--" + BOUNDARY.encode() + b"\r\nX-No-Disposition: 1\r\n\r\nvalue\r\n",
        b"--"
        + BOUNDARY.encode()
        + b"\r\nContent-Disposition: form-data\r\n\r\nno name\r\n"
        + b"--"
        + BOUNDARY.encode()
        + b"--\r\n",
        b"--"
        + BOUNDARY.encode()
        + b'\r\nContent-Disposition: form-data; name="x"\r\n'
        + b"X-Padding: "
        + b"a" * 200_000,  # headers that never end
        b"x" * 300_000,  # a preamble that never ends
    ],
)
def test_garbage_is_malformed(body: bytes) -> None:
    recorder = Recorder()

    with pytest.raises(UploadError) as caught:
        parse(body, recorder)

    assert caught.value.code == "malformed"
    assert recorder.sinks == []


def test_invalid_utf8_in_a_field_is_malformed() -> None:
    body = encode([("judul", None, b"caf\xe9")])

    with pytest.raises(UploadError) as caught:
        parse(body, Recorder())

    assert caught.value.code == "malformed"


# --- failures in the caller's code ----------------------------------------------------------------


def test_a_failing_sink_is_aborted_and_its_error_propagates() -> None:
    class DiskFull(Exception):
        pass

    class FailingSink(RecordingSink):
        def write(self, chunk: bytes) -> None:
            if self.filename == "big.bin" and self.writes == 3:
                raise DiskFull
            super().write(chunk)

    recorder = Recorder(FailingSink)
    body = encode([("bukti", "ok.bin", b"fine"), ("bukti", "big.bin", payload(MiB))])

    with pytest.raises(DiskFull):
        parse(body, recorder)

    first, second = recorder.sinks
    assert first.closed and not first.aborted  # complete: the caller's to remove
    assert second.aborted and not second.closed


def test_a_sink_whose_close_fails_is_aborted() -> None:
    class CloseFails(RecordingSink):
        def close(self) -> None:
            raise OSError("gpg exited 2")

    recorder = Recorder(CloseFails)

    with pytest.raises(OSError, match="gpg exited 2"):
        parse(encode([("bukti", "a.bin", b"data")]), recorder)

    assert recorder.sinks[0].aborted


def test_open_file_raising_propagates_and_earlier_sinks_stay_closed() -> None:
    recorder = Recorder()

    def second_fails(name: str, filename: str, fields: dict[str, str]) -> FileSink:
        if recorder.sinks:
            raise PermissionError("store refused")
        return recorder(name, filename, fields)

    body = encode([("bukti", "a.bin", b"A"), ("bukti", "b.bin", b"B")])

    with pytest.raises(PermissionError):
        parse(body, second_fails)

    assert recorder.sinks[0].closed and not recorder.sinks[0].aborted


# --- inside a real Flask request ------------------------------------------------------------------


class FormForbiddenRequest(flask.Request):
    """Fails the test if anything parses the form the Werkzeug way (spooling files to disk)."""

    def _load_form_data(self) -> None:
        raise AssertionError("the upload view must not touch request.form or request.files")


def make_app(
    sink_factory: Callable[[str, str], FileSink], *, limits: UploadLimits = LIMITS
) -> flask.Flask:
    app = flask.Flask(__name__)
    app.testing = True
    app.request_class = FormForbiddenRequest

    @app.post("/kirim")
    def kirim() -> Any:
        request = flask.request
        try:
            parsed = parse_upload(
                request.stream,
                request.content_type or "",
                request.content_length,
                limits,
                lambda name, filename, fields: sink_factory(name, filename),
            )
        except UploadError as exc:
            return {"error": exc.code}, 400
        assert "form" not in request.__dict__ and "files" not in request.__dict__
        return {"fields": parsed.fields, "files": parsed.file_count}

    return app


def test_flask_view_parses_a_real_request_without_request_form() -> None:
    recorder = Recorder()
    app = make_app(lambda name, filename: recorder(name, filename, {}))
    big = payload(3 * MiB)
    body = encode([field("csrf_token", "t"), ("bukti", "a.pdf", big), ("bukti", "b.txt", b"B")])

    response = app.test_client().post("/kirim", data=body, content_type=CONTENT_TYPE)

    assert response.status_code == 200, response.get_data()
    assert response.json == {"fields": {"csrf_token": ["t"]}, "files": 2}
    assert [bytes(s.data) for s in recorder.sinks] == [big, b"B"]
    assert all(s.closed for s in recorder.sinks)


def test_flask_view_accepts_werkzeugs_own_multipart_encoding() -> None:
    # Another encoder, another boundary style: the parser must not depend on ours.
    recorder = Recorder()
    app = make_app(lambda name, filename: recorder(name, filename, {}))
    data = {"judul": "Suap izin", "bukti": (io.BytesIO(b"%PDF-1.7 ..."), "izin.pdf")}

    response = app.test_client().post("/kirim", data=data)

    assert response.status_code == 200, response.get_data()
    assert response.json == {"fields": {"judul": ["Suap izin"]}, "files": 1}
    assert bytes(recorder.sinks[0].data) == b"%PDF-1.7 ..."


def test_flask_client_that_drops_mid_upload_is_disconnected() -> None:
    recorder = Recorder()
    app = make_app(lambda name, filename: recorder(name, filename, {}))
    body = encode([("bukti", "a.bin", payload(200_000))])

    response = app.test_client().post(
        "/kirim",
        input_stream=io.BytesIO(body[:150_000]),
        content_type=CONTENT_TYPE,
        environ_overrides={"CONTENT_LENGTH": str(len(body))},
    )

    assert response.status_code == 400
    assert response.json == {"error": "disconnected"}
    assert recorder.sinks[0].aborted and not recorder.sinks[0].closed


def test_flask_chunked_upload_over_the_limit_is_too_large() -> None:
    recorder = Recorder()
    app = make_app(
        lambda name, filename: recorder(name, filename, {}), limits=UploadLimits(max_bytes=MiB)
    )
    body = encode([("bukti", "a.bin", payload(2 * MiB))])
    environ = EnvironBuilder(
        path="/kirim", method="POST", input_stream=io.BytesIO(body), content_type=CONTENT_TYPE
    ).get_environ()
    # Chunked transfer encoding: no Content-Length, the server marks the input as terminated.
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True

    response, status, _ = run_wsgi_app(app, environ, buffered=True)

    assert status.startswith("400")
    assert json.loads(b"".join(response)) == {"error": "too_large"}
    assert recorder.sinks[0].aborted and not recorder.sinks[0].closed


def test_flask_max_content_length_tripping_first_is_too_large() -> None:
    recorder = Recorder()
    app = make_app(lambda name, filename: recorder(name, filename, {}))
    app.config["MAX_CONTENT_LENGTH"] = MiB  # the WSGI layer's cap, lower than the parser's
    body = encode([("bukti", "a.bin", payload(2 * MiB))])
    environ = EnvironBuilder(
        path="/kirim", method="POST", input_stream=io.BytesIO(body), content_type=CONTENT_TYPE
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True

    response, status, _ = run_wsgi_app(app, environ, buffered=True)

    assert status.startswith("400")
    assert json.loads(b"".join(response)) == {"error": "too_large"}
    assert recorder.sinks[0].aborted and not recorder.sinks[0].closed


# --- nothing touches disk ------------------------------------------------------------------------


def files_under(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def open_files_under(roots: list[Path]) -> set[str]:
    """Paths of regular files this process holds open under ``roots``, deleted ones included.

    A spooled temporary file is unlinked at once (or made with O_TMPFILE), so it never shows in a
    directory listing; /proc/self/fd still shows it as "<dir>/#123 (deleted)" or similar.
    """
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if any(target.startswith(f"{root}{os.sep}") for root in roots):
            found.add(target)
    return found


@pytest.fixture
def watched_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """A private temp dir and CWD, so other processes' files cannot blur the snapshots."""
    tmp, cwd = tmp_path / "tmp", tmp_path / "cwd"
    tmp.mkdir()
    cwd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.chdir(cwd)
    assert Path(tempfile.gettempdir()) == tmp
    return [tmp, cwd]


class DiskWatch:
    """Snapshots of the watched dirs and of this process's open files, taken on demand."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots
        self.listing = {root: files_under(root) for root in roots}
        self.open_before = open_files_under(roots)
        self.new_entries: set[Path] = set()
        self.new_open: set[str] = set()
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        for root in self.roots:
            self.new_entries |= files_under(root) - self.listing[root]
        self.new_open |= open_files_under(self.roots) - self.open_before


def five_mb_upload() -> tuple[bytes, bytes]:
    data = payload(5 * MiB, seed=5)
    return data, encode([field("csrf_token", "t"), ("bukti", "bukti.zip", data)])


def test_no_file_is_created_on_disk_during_a_5_mb_upload(watched_dirs: list[Path]) -> None:
    watch = DiskWatch(watched_dirs)

    class CheckingSink(RecordingSink):
        def write(self, chunk: bytes) -> None:
            if self.writes % 8 == 0:
                watch.check()
            super().write(chunk)

    recorder = Recorder(CheckingSink)
    app = make_app(lambda name, filename: recorder(name, filename, {}))
    data, body = five_mb_upload()

    response = app.test_client().post("/kirim", data=body, content_type=CONTENT_TYPE)
    watch.check()

    assert response.status_code == 200, response.get_data()
    assert bytes(recorder.sinks[0].data) == data
    assert watch.checks > 5
    assert watch.new_entries == set()
    assert watch.new_open == set()


def test_the_disk_watch_catches_werkzeugs_default_parser(watched_dirs: list[Path]) -> None:
    # Control: the same upload through request.files must trip the watch, or the test above
    # would prove nothing.
    watch = DiskWatch(watched_dirs)
    app = flask.Flask(__name__)
    app.testing = True

    @app.post("/kirim")
    def kirim() -> Any:
        upload = flask.request.files["bukti"]
        watch.check()
        return {"size": len(upload.read())}

    _, body = five_mb_upload()

    response = app.test_client().post("/kirim", data=body, content_type=CONTENT_TYPE)

    assert response.json == {"size": 5 * MiB}
    assert watch.new_open != set()
