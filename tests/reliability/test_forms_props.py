"""The reporter's forms with any input: the guided report, the codename confirmation, the login.

No input gets a 500; a refused form stores nothing; an accepted report stores exactly one case
with its form; the login lets in exactly the codenames that normalise to a registered one, and
creates nothing.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.codenames import normalize_codename
from source_iface import create_app
from source_iface.flood import FloodLimits
from tests.reliability.checks import snapshot
from tests.source_iface.conftest import GOOD_ANSWERS, Reporter, csrf_token, multipart
from wbs.models import Source

ANSWER_NAMES = ["category", "mcp_area", "apa", "siapa", "kapan", "dimana", "bagaimana",
                "berapa", "kronologi", "kpk", "website"]
# Text a browser can send: any character but lone surrogates (not encodable in UTF-8).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
LONG_TEXT = st.integers(19_990, 20_010).map(lambda n: "a" * n)

# High enough that no example meets a flood limit, low enough for exact windows (each key
# keeps this many times in shared memory; see source_iface/flood.py).
_NO_LIMIT = 1000


@pytest.fixture(scope="module")
def app(demo) -> Flask:  # type: ignore[no-untyped-def]
    limits = FloodLimits(tenant_new_cases_per_hour=_NO_LIMIT, source_new_cases_per_hour=_NO_LIMIT,
                         tenant_logins_per_minute=_NO_LIMIT)
    # Served as in production: an exception becomes the error page (and a 500 the test sees).
    return create_app(demo.inst, flood_limits=limits)


@pytest.fixture(scope="module")
def codename(app: Flask) -> str:
    return Reporter(app.test_client()).new_codename()


def _sources(demo) -> int:  # type: ignore[no-untyped-def]
    with demo.inst.sessions() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(Source)) or 0)


@settings(max_examples=40)
@given(
    changes=st.dictionaries(st.sampled_from(ANSWER_NAMES), st.one_of(TEXT, LONG_TEXT),
                            max_size=4),
    dropped=st.sets(st.sampled_from(ANSWER_NAMES), max_size=2),
    repeated=st.lists(st.tuples(st.sampled_from(ANSWER_NAMES), TEXT), max_size=2),
)
def test_any_report_form_is_stored_whole_or_refused_with_nothing_kept(  # type: ignore[no-untyped-def]
    demo, app: Flask, codename: str, changes: dict[str, str], dropped: set[str],
    repeated: list[tuple[str, str]],
) -> None:
    reporter = Reporter(app.test_client())
    assert reporter.login(codename).status_code == 302
    answers = {**GOOD_ANSWERS, "website": "", **changes}
    fields = [("csrf_token", reporter.token())]
    fields += [(name, value) for name, value in answers.items() if name not in dropped]
    fields += repeated
    body, content_type = multipart(fields, [("file", "bukti.txt", b"isi bukti")])
    before = snapshot(demo.inst)
    response = reporter.post("/lapor", data=body, content_type=content_type)
    after = snapshot(demo.inst)
    if response.status_code == 302:
        assert "/tanda-terima/" in response.headers["Location"]
        assert (after.cases, after.submissions) == (before.cases + 1, before.submissions + 2)
    else:
        assert response.status_code == 400, response.get_data(as_text=True)[:300]
        assert after == before


@settings(max_examples=40)
@given(codename_text=TEXT, tag=st.one_of(st.just(None), TEXT), noted=st.sampled_from(
    [None, "1", "0", ""]))
def test_any_codename_confirmation_creates_nothing_it_should_not(  # type: ignore[no-untyped-def]
    demo, app: Flask, codename_text: str, tag: str | None, noted: str | None
) -> None:
    reporter = Reporter(app.test_client())
    page = reporter.get("/kode-baru").get_data(as_text=True)
    form = {"csrf_token": csrf_token(page), "codename": codename_text}
    if tag is not None:
        form["tag"] = tag
    if noted is not None:
        form["noted"] = noted
    before = _sources(demo)
    response = reporter.post("/kode-baru", data=form)
    # Only the page's own codename and its tag register anyone; made-up ones are refused.
    assert response.status_code in (200, 400), response.status_code
    assert _sources(demo) == before


def _typed(codename: str, draw: st.DrawFn) -> str:
    """The codename as a person might type it: capitals, odd spaces, one wrong letter."""
    words = codename.split(" ")
    if draw(st.booleans()):
        index = draw(st.integers(0, len(words) - 1))
        word = words[index]
        at = draw(st.integers(0, len(word) - 1))
        letter = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz"))
        words[index] = word[:at] + letter + word[at + 1 :]
    separator = draw(st.sampled_from([" ", "  ", "\u3000", "\t"]))
    text = separator.join(words)
    return text.upper() if draw(st.booleans()) else text


@settings(max_examples=40)
@given(data=st.data(), kind=st.sampled_from(["typed", "any"]))
def test_the_login_lets_in_exactly_the_codenames_that_normalise_to_one(  # type: ignore[no-untyped-def]
    demo, app: Flask, codename: str, data: st.DataObject, kind: str
) -> None:
    text = _typed(codename, data.draw) if kind == "typed" else data.draw(TEXT, label="text")
    reporter = Reporter(app.test_client())
    before = snapshot(demo.inst), _sources(demo)
    response = reporter.login(text)
    if normalize_codename(text) == codename:
        assert response.status_code == 302
    else:
        assert response.status_code == 200, response.status_code
    assert (snapshot(demo.inst), _sources(demo)) == before
