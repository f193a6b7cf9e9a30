"""Codenames: random phrases of common words that a pelapor uses to come back to a report.

A codename is the only credential a source has, so it must resist guessing on its own: it is
drawn with :mod:`secrets` from a fixed word list with enough words for at least
:data:`MIN_ENTROPY_BITS` of entropy. The argon2id cost in :mod:`crypto.kdf` comes on top of that.

A codename is a secret. Nothing here logs, prints or stores one; callers must not either.

Word lists live in ``crypto/wordlists/``: ``id.txt`` is built by ``scripts/build_wordlist_id.py``
and ``en.txt`` is the EFF long list. ``crypto/wordlists/SOURCES.md`` records their origin.
"""

from __future__ import annotations

import functools
import math
import re
import secrets
import string
import unicodedata
from collections.abc import Iterator
from importlib import resources

MIN_ENTROPY_BITS = 90
LANGUAGES: tuple[str, ...] = ("id", "en")

# Words per codename. The Indonesian list keeps every two words at least three edits apart (so
# one mistyped letter can be corrected), which leaves about 1,200 words of ~10.2 bits: nine
# words. The English list is the EFF long list (7,772 words, ~12.9 bits): seven words.
WORDS_PER_CODENAME: dict[str, int] = {"id": 9, "en": 7}

_WORD = re.compile(r"[a-z]+")


def _check_language(language: str) -> None:
    # The language names a file, so only the known names may reach the path.
    if language not in LANGUAGES:
        raise ValueError(f"unknown codename language {language!r}; expected one of {LANGUAGES}")


def _read_wordlist(language: str) -> str:
    # Package data rather than a path relative to this file, so an installed wheel works too.
    path = resources.files("crypto") / "wordlists" / f"{language}.txt"
    return path.read_text(encoding="utf-8")


@functools.cache
def load_wordlist(language: str) -> tuple[str, ...]:
    """The word list for ``language`` ("id" or "en"), in file order.

    Raises ValueError for an unknown language or a list that is too short, has duplicates or
    has anything but a-z words: codenames from a damaged list would be weaker than promised,
    so we fail closed instead of generating them.
    """
    _check_language(language)
    words = tuple(_read_wordlist(language).split())
    bad = [w for w in words if not _WORD.fullmatch(w)]
    if bad:
        raise ValueError(f"{language} word list has {len(bad)} entries that are not a-z words")
    if len(set(words)) != len(words):
        raise ValueError(f"{language} word list has duplicate words")
    needed = min_wordlist_size(language)
    if len(words) < needed:
        raise ValueError(f"{language} word list has {len(words)} words, fewer than {needed}")
    return words


def min_wordlist_size(language: str) -> int:
    """The fewest words that give a codename in ``language`` MIN_ENTROPY_BITS.

    The codename length is fixed per language (what the pages tell reporters), so a shorter
    list, truncated or wrongly built, would mean weaker codenames: the loader refuses it.
    """
    _check_language(language)
    return math.ceil(2 ** (MIN_ENTROPY_BITS / WORDS_PER_CODENAME[language]))


@functools.cache
def _word_set(language: str) -> frozenset[str]:
    return frozenset(load_wordlist(language))


def words_needed(language: str) -> int:
    """How many words a codename in ``language`` has (at least MIN_ENTROPY_BITS of entropy)."""
    _check_language(language)
    return WORDS_PER_CODENAME[language]


def entropy_bits(language: str) -> float:
    """Entropy of a generated codename in ``language``: each word is an independent choice."""
    return words_needed(language) * math.log2(len(load_wordlist(language)))


def generate_codename(language: str = "id") -> str:
    """A new random codename: ``words_needed(language)`` words joined by single spaces."""
    words = load_wordlist(language)
    return " ".join(secrets.choice(words) for _ in range(words_needed(language)))


# Far more than the longest codename (9 words of at most 8 letters, or 7 of the EFF list's at
# most 9), with room for stray spaces; anything longer is not a codename.
MAX_CODENAME_CHARS = 256


def _one_edit_away(word: str) -> Iterator[str]:
    # Deletion, swap of adjacent letters, substitution, insertion: the typos a keyboard makes.
    for i in range(len(word)):
        yield word[:i] + word[i + 1 :]
        if i + 1 < len(word):
            yield word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        for c in string.ascii_lowercase:
            yield word[:i] + c + word[i + 1 :]
    for i in range(len(word) + 1):
        for c in string.ascii_lowercase:
            yield word[:i] + c + word[i:]


# Correction is tried only on what could be a mistyped list word: plain letters, not much
# longer than the longest list word (9 letters). Candidates grow with the square of a word's
# length, and the form is open to anyone, before any throttle: a long "word" must cost nothing.
_MAX_CORRECTED_LENGTH = 16


def _correct_word(word: str, language: str) -> str | None:
    """``word`` itself if listed, else the one list word a single edit away, else None."""
    words = _word_set(language)
    if word in words:
        return word
    if len(word) > _MAX_CORRECTED_LENGTH or not (word.isascii() and word.isalpha()):
        return None
    near = {candidate for candidate in _one_edit_away(word) if candidate in words}
    # Only an unambiguous correction: choosing between two words would be a guess. The
    # Indonesian list keeps words three edits apart, so there a single typo has one answer;
    # in the English list some typos are two words' neighbours and stay uncorrected.
    return near.pop() if len(near) == 1 else None


def _fold(text: str) -> str:
    """NFKC, case-folded, without invisible format characters, and stable under a second fold.

    One pass is not enough: case folding can undo a composition (``ß`` + an accent folds to
    ``s`` + ``ś`` spelt with a combining mark) and dropping a format character can bring a letter
    and its mark together, so the steps repeat until nothing changes (twice for any real text).
    """
    for _ in range(4):
        folded = unicodedata.normalize("NFKC", text).casefold()
        folded = unicodedata.normalize(
            "NFKC", "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
        )
        if folded == text:
            break
        text = folded
    return text


def _typed_words(text: str) -> list[str]:
    return _fold(text[:MAX_CODENAME_CHARS]).split()


def unrecognised_words(text: str) -> tuple[int, tuple[int, ...]]:
    """(words typed, 1-based positions of the words no list word explains) for a failed login.

    The login page says what to check instead of echoing the typed codename back into the
    page: "you typed 8 words, a codename has 9" or "words 3 and 7 are not codename words".
    Positions are counted against the language whose codename length the typed words match;
    when none matches, no position is named. The word lists are public, so this tells a
    guesser nothing about anyone's codename.
    """
    typed = _typed_words(text)
    for language in LANGUAGES:
        if len(typed) == WORDS_PER_CODENAME[language]:
            return len(typed), tuple(
                i for i, word in enumerate(typed, 1) if _correct_word(word, language) is None
            )
    return len(typed), ()


def normalize_codename(text: str) -> str:
    """The canonical form of a typed codename, so capitals, stray spaces and typos still log in.

    NFKC folds full-width letters and odd spaces from phone keyboards, case-folding ignores
    capitals, invisible format characters (zero-width spaces from copy and paste) are dropped,
    and any run of whitespace becomes one space. If the words then number a codename of one
    language, a word with one wrong, missing, extra or swapped letter becomes the single list
    word one edit away. Correcting gives a guesser nothing: the result is still a list word.

    The result is its own normal form (normalising it again changes nothing) and never longer
    than MAX_CODENAME_CHARS: no codename is that long, so only the first characters of a longer
    text are looked at, and the work stays bounded whatever is pasted into the form.
    """
    typed = _typed_words(text)
    for language in LANGUAGES:
        if len(typed) == WORDS_PER_CODENAME[language]:
            corrected = [_correct_word(word, language) for word in typed]
            if all(corrected):
                return " ".join(w for w in corrected if w)
    joined = " ".join(typed)
    for _ in range(4):
        if len(joined) <= MAX_CODENAME_CHARS:
            break
        # Folding can lengthen text (one ligature becomes several letters): cut it back, and
        # fold again in case the cut fell inside a letter and its accents.
        joined = " ".join(_fold(joined[:MAX_CODENAME_CHARS]).split())
    return joined[:MAX_CODENAME_CHARS].rstrip()


def looks_like_codename(text: str) -> bool:
    """Whether ``text``, once normalised, has the shape of a codename in one of the languages.

    This lets an interface say "that is not a codename" without deriving keys or touching the
    database; it says nothing about whether the codename belongs to anyone.
    """
    words = normalize_codename(text).split(" ")
    for language in LANGUAGES:
        if len(words) == words_needed(language) and all(
            word in _word_set(language) for word in words
        ):
            return True
    return False
