"""The codename normaliser on any text: never raises, bounded, and its own normal form."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from crypto.codenames import (
    MAX_CODENAME_CHARS,
    generate_codename,
    looks_like_codename,
    normalize_codename,
)

# Text a login form can receive: any code point, including lone surrogates (a broken paste),
# and long runs that go past the cap.
ANY_TEXT = st.text(st.characters(codec=None), max_size=MAX_CODENAME_CHARS + 64)


@settings(max_examples=400)
@given(ANY_TEXT)
# Found by this property: case folding undid NFKC's composition (ß and an accent), and a text
# over the cap came back unfolded.
@example("\u00df\u0301")
@example("\u1f82\u0301")
@example("0" * MAX_CODENAME_CHARS + "\u00b8")
@example("\ufdfa" * MAX_CODENAME_CHARS)  # one ligature folds into 18 characters
def test_normalising_is_idempotent_and_bounded(text: str) -> None:
    once = normalize_codename(text)
    assert normalize_codename(once) == once
    assert len(once) <= MAX_CODENAME_CHARS
    assert once == once.strip() and "  " not in once
    looks_like_codename(text)  # never raises either


@settings(max_examples=60)
@given(
    st.sampled_from(["id", "en"]),
    st.lists(st.sampled_from([" ", "\u3000", "\t", "\n", "\u00a0"]), min_size=1, max_size=3),
    st.booleans(),
    st.booleans(),
)
def test_a_codename_survives_capitals_and_odd_spaces(
    language: str, separators: list[str], upper: bool, zero_width: bool
) -> None:
    codename = generate_codename(language)
    words = codename.split(" ")
    if zero_width:
        # A zero-width space pasted inside a word (copied from a chat app) is dropped.
        words = [word[:1] + "\u200b" + word[1:] for word in words]
    typed = "".join(separators[i % len(separators)] + word for i, word in enumerate(words))
    typed = typed.upper() if upper else typed
    assert normalize_codename(typed) == codename
    assert looks_like_codename(typed)
