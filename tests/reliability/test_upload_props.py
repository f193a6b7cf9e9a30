"""Any body at the reporter's upload views: never a 500, never half a submission.

Bodies are browser-like forms (the token, the guided answers or a follow-up message, files whose
bytes imitate boundaries) that Hypothesis then damages: cut short, another or a broken boundary,
garbage part headers, bytes spliced in anywhere. After every example the store and the database
must agree (tests/reliability/checks.py), and a refusal must have stored nothing at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from source_iface import create_app
from source_iface.flood import FloodLimits
from tests.reliability.checks import snapshot
from tests.source_iface.conftest import GOOD_ANSWERS, MAX_UPLOAD, Reporter

BOUNDARY = "----peluitPropBoundary0123"
# What a refusal may answer; never 500.
REFUSED = {400, 404, 413, 429, 503}
_RECEIPT = re.compile(r"/tanda-terima/")

# High enough that no example meets a flood limit, low enough for exact windows (each key
# keeps this many times in shared memory; see source_iface/flood.py).
_NO_LIMIT = 1000


@dataclass
class Part:
    name: str | None
    filename: str | None
    data: bytes
    headers: bytes = b""  # extra header lines, CRLF-terminated

    def encode(self, boundary: bytes) -> bytes:
        disposition = b"Content-Disposition: form-data"
        if self.name is not None:
            disposition += b'; name="' + self.name.encode() + b'"'
        if self.filename is not None:
            disposition += b'; filename="' + self.filename.encode() + b'"'
        return (
            b"--" + boundary + b"\r\n" + disposition + b"\r\n" + self.headers + b"\r\n"
            + self.data + b"\r\n"
        )


def _boundary_like(boundary: bytes) -> st.SearchStrategy[bytes]:
    """File bytes that look like the end of a part without being one."""
    delimiter = b"\r\n--" + boundary
    return st.one_of(
        st.binary(max_size=2048),
        st.integers(1, len(delimiter) - 1).map(lambda n: delimiter[:n]),
        # No CRLF before it: data, not a delimiter. (At the very start of a part's data it would
        # be one, with the CRLF that ends the part's headers: RFC 2046 gives the CRLF to it.)
        st.just(b"x--" + boundary),
        st.just(delimiter + b"X"),  # one character more: still data
        st.just(b"\r\n" * 3 + b"--"),
    )


file_data = st.lists(_boundary_like(BOUNDARY.encode()), min_size=0, max_size=6).map(b"".join)
# Sizes across the parser's 64 KiB read: the delimiter may be split between two reads.
big_file = st.integers(60_000, 140_000).map(lambda n: bytes((i * 7 + 13) % 256 for i in range(n)))
filenames = st.one_of(
    st.just("bukti.pdf"),
    st.text(st.characters(exclude_characters='"\r\n'), max_size=40),
    st.just("../../etc/passwd"),
)
WELL_FORMED_HEADERS = (b"", b"Content-Type: application/pdf\r\n")
header_lines = st.one_of(
    st.sampled_from(WELL_FORMED_HEADERS),
    # A header line of odd bytes (never empty: an empty line ends the headers).
    st.binary(min_size=1, max_size=60).filter(lambda b: b"\r" not in b and b"\n" not in b)
    .map(lambda b: b + b"\r\n"),
    st.just(b"Content-Type: text/plain; charset=utf-16\r\n"),
)
files = st.lists(
    st.builds(
        Part,
        st.sampled_from(["file", "file", "lampiran", ""]),
        filenames,
        st.one_of(file_data, big_file),
        header_lines,
    ),
    max_size=3,
)


@st.composite
def damage(draw: st.DrawFn, body: bytes) -> tuple[bytes, str]:
    """The body, perhaps damaged, and the Content-Type it is sent with."""
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    kind = draw(st.sampled_from(
        ["none", "none", "truncate", "splice", "boundary", "no_close", "epilogue", "headers"]
    ))
    if kind == "truncate":
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    elif kind == "splice":
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.binary(min_size=1, max_size=64)) + body[at:]
    elif kind == "boundary":
        content_type = draw(st.sampled_from([
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=other",
            f"multipart/form-data; boundary={BOUNDARY}x",
            f"multipart/form-data; boundary=\"{BOUNDARY}\"",
            "multipart/form-data; boundary=" + "a" * 80,
            "application/x-www-form-urlencoded",
            "text/plain",
            "",
        ]))
    elif kind == "no_close":
        body = body.removesuffix(f"--{BOUNDARY}--\r\n".encode())
    elif kind == "epilogue":
        body += draw(st.binary(max_size=200))
    elif kind == "headers":
        # A part's header block replaced by garbage (no name, no blank line, odd bytes).
        starts = [m.end() for m in re.finditer(re.escape(f"--{BOUNDARY}\r\n".encode()), body)]
        if starts:
            at = draw(st.sampled_from(starts))
            end = body.find(b"\r\n\r\n", at)
            garbage = draw(st.binary(max_size=120))
            body = body[:at] + garbage + (body[end:] if end != -1 else b"")
    return body, content_type


def _body(fields: list[tuple[str, str]], parts: list[Part]) -> bytes:
    boundary = BOUNDARY.encode()
    out = b"".join(Part(name, None, value.encode()).encode(boundary) for name, value in fields)
    out += b"".join(part.encode(boundary) for part in parts)
    return out + b"--" + boundary + b"--\r\n"


@pytest.fixture(scope="module")
def app(demo) -> Flask:  # type: ignore[no-untyped-def]
    # No flood limit in the way: every example must reach the parser and the intake.
    limits = FloodLimits(tenant_new_cases_per_hour=_NO_LIMIT, source_new_cases_per_hour=_NO_LIMIT,
                         source_follow_ups_per_hour=_NO_LIMIT, tenant_logins_per_minute=_NO_LIMIT)
    return create_app(demo.inst, testing=True, flood_limits=limits)


@pytest.fixture(scope="module")
def codename(app: Flask) -> str:
    return Reporter(app.test_client()).new_codename()


def _logged_in(app: Flask, codename: str) -> Reporter:
    """A fresh session each example: the per-session hourly count never gets in the way."""
    reporter = Reporter(app.test_client())
    assert reporter.login(codename).status_code == 302
    return reporter


def _expected_files(parts: list[Part]) -> int:
    return sum(1 for part in parts if part.data and part.name is not None)


@settings(max_examples=50)
@given(data=st.data(), parts=files, answers_ok=st.booleans())
def test_a_report_body_is_stored_whole_or_not_at_all(  # type: ignore[no-untyped-def]
    demo, app: Flask, codename: str, data: st.DataObject, parts: list[Part], answers_ok: bool
) -> None:
    reporter = _logged_in(app, codename)
    answers = dict(GOOD_ANSWERS)
    if not answers_ok:
        answers["apa"] = data.draw(st.text(max_size=40), label="apa")
    fields = [("csrf_token", reporter.token()), ("website", ""), *answers.items()]
    clean = _body(fields, parts)
    body, content_type = data.draw(damage(clean), label="sent")
    before = snapshot(demo.inst)
    response = reporter.post("/lapor", data=body, content_type=content_type)
    after = snapshot(demo.inst)
    if response.status_code == 302 and _RECEIPT.search(response.headers["Location"]):
        assert after.cases == before.cases + 1
        if body == clean and content_type.endswith(BOUNDARY):
            # An intact form: every file that carried bytes is stored, with the form.
            assert after.submissions == before.submissions + 1 + _expected_files(parts)
    else:
        assert response.status_code in REFUSED, response.get_data(as_text=True)[:500]
        assert after == before
        browser_like = all(part.headers in WELL_FORMED_HEADERS for part in parts)
        if body == clean and content_type.endswith(BOUNDARY) and answers_ok and browser_like:
            pytest.fail(f"an intact, valid report was refused: {response.status_code}")


@settings(max_examples=30)
@given(data=st.data(), parts=files, message=st.text(max_size=200))
def test_a_follow_up_body_is_stored_whole_or_not_at_all(  # type: ignore[no-untyped-def]
    demo, app: Flask, codename: str, data: st.DataObject, parts: list[Part], message: str
) -> None:
    reporter = _logged_in(app, codename)
    number = _a_case_of(demo, reporter)
    fields = [("csrf_token", reporter.token("/pengaduan")), ("website", ""), ("message", message)]
    clean = _body(fields, parts)
    body, content_type = data.draw(damage(clean), label="sent")
    before = snapshot(demo.inst)
    response = reporter.post(f"/pengaduan/{number}/kirim", data=body, content_type=content_type)
    after = snapshot(demo.inst)
    if response.status_code == 302:
        assert after.cases == before.cases
        assert after.submissions > before.submissions
        if body == clean and content_type.endswith(BOUNDARY):
            sent = _expected_files(parts) + (1 if message.strip() else 0)
            assert after.submissions == before.submissions + sent
    else:
        assert response.status_code in REFUSED, response.get_data(as_text=True)[:500]
        assert after == before


_cases: dict[str, str] = {}


def _a_case_of(demo, reporter: Reporter) -> str:  # type: ignore[no-untyped-def]
    """The registration number of one case of this codename, sent once per module."""
    if "number" not in _cases:
        response = reporter.send_report()
        assert response.status_code == 302
        _cases["number"] = response.headers["Location"].rsplit("/", 1)[-1]
    return _cases["number"]


def test_the_limit_is_still_enforced_with_these_settings(demo, app: Flask, codename: str) -> None:  # type: ignore[no-untyped-def]
    # The properties above send small bodies; the upload limit still applies to this app.
    reporter = _logged_in(app, codename)
    before = snapshot(demo.inst)
    response = reporter.send_report(files=[("besar.bin", b"x" * (MAX_UPLOAD + 1))])
    assert response.status_code == 413
    assert snapshot(demo.inst) == before
