"""Codename word lists, generation and the checks a login form relies on."""

from __future__ import annotations

import math
import re
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto import codenames
from crypto.codenames import (
    MIN_ENTROPY_BITS,
    entropy_bits,
    generate_codename,
    load_wordlist,
    looks_like_codename,
    normalize_codename,
    words_needed,
)

ROOT = Path(__file__).resolve().parents[2]
WORDLISTS = ROOT / "crypto" / "wordlists"
BUILD_SCRIPT = ROOT / "scripts" / "build_wordlist_id.py"


def deny_words() -> set[str]:
    words: set[str] = set()
    for line in (WORDLISTS / "id-deny.txt").read_text(encoding="utf-8").splitlines():
        words.update(line.split("#", 1)[0].split())
    return words


def word_from_other_list(language: str) -> str:
    """A word that is in the other language's list but not in this one."""
    other = "en" if language == "id" else "id"
    mine = set(load_wordlist(language))
    return next(w for w in load_wordlist(other) if w not in mine)


# --- the lists -----------------------------------------------------------------------------


def test_indonesian_list_is_large_plain_and_sorted() -> None:
    words = load_wordlist("id")
    assert 4096 <= len(words) <= 8192
    assert all(re.fullmatch(r"[a-z]{4,8}", w) for w in words)
    assert len(set(words)) == len(words)
    assert list(words) == sorted(words)


def test_english_list_is_the_eff_long_list_without_hyphenated_words() -> None:
    words = load_wordlist("en")
    # The EFF long list has 7,776 words; its four hyphenated ones are left out (SOURCES.md).
    assert len(words) == 7776 - 4
    assert all(re.fullmatch(r"[a-z]+", w) for w in words)
    assert len(set(words)) == len(words)
    assert words[0] == "abacus" and words[-1] == "zoom"
    assert not {"drop-down", "felt-tip", "t-shirt", "yo-yo", "tshirt"} & set(words)


def test_no_denied_word_is_in_the_indonesian_list() -> None:
    denied = deny_words()
    assert denied & set(load_wordlist("id")) == set()
    # The words that would be most alarming on this channel are really on the deny list.
    assert {"suap", "korupsi", "polisi"} <= denied


def test_deny_list_entries_are_plain_lower_case_words() -> None:
    # A capitalised or punctuated entry would never match a candidate and silently deny nothing.
    bad = [w for w in deny_words() if not re.fullmatch(r"[a-z]+", w)]
    assert bad == []


def test_build_script_reproduces_the_committed_list(tmp_path: Path) -> None:
    out = tmp_path / "id.txt"
    proc = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == (WORDLISTS / "id.txt").read_bytes()
    # Each filtering stage reports how many words it left.
    assert "not on the deny list" in proc.stdout
    assert f"wrote {len(load_wordlist('id'))} words" in proc.stdout


def test_build_script_refuses_to_write_a_list_that_is_too_small(tmp_path: Path) -> None:
    out = tmp_path / "id.txt"
    proc = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--out", str(out), "--min-zipf", "4.5"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "need at least 4096" in proc.stderr
    assert not out.exists()


# --- loading -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["fr", "ID", "", "../id", "id.txt", "wordlists/id"])
def test_unknown_language_is_refused(language: str) -> None:
    with pytest.raises(ValueError, match="unknown codename language"):
        load_wordlist(language)
    with pytest.raises(ValueError):
        generate_codename(language)


def test_word_lists_are_loaded_once() -> None:
    assert load_wordlist("id") is load_wordlist("id")


def _clear_caches() -> None:
    load_wordlist.cache_clear()
    codenames._word_set.cache_clear()


@pytest.fixture
def fake_wordlists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make the loader read ``<tmp>/<language>.txt`` instead of the shipped lists."""
    monkeypatch.setattr(
        codenames,
        "_read_wordlist",
        lambda language: (tmp_path / f"{language}.txt").read_text(encoding="utf-8"),
    )
    _clear_caches()
    try:
        yield tmp_path
    finally:
        # Later tests must see the real lists again, not a cached fake one.
        _clear_caches()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("".join(f"w{'a' * (i % 7)}{chr(97 + i % 26)}{i:x}\n" for i in range(5000)), "a-z"),
        ("".join(f"{i:05d}\n" for i in range(5000)), "a-z"),
        ("Meja\n" + "".join(f"{_w}\n" for _w in ("kursi", "lampu")) * 3000, "a-z"),
        ("".join(f"{_w}\n" for _w in ("kursi", "lampu")) * 3000, "duplicate"),
        ("".join(f"{chr(97 + i // 26)}{chr(97 + i % 26)}\n" for i in range(600)), "fewer than"),
    ],
)
def test_a_damaged_word_list_is_refused(fake_wordlists: Path, content: str, problem: str) -> None:
    (fake_wordlists / "id.txt").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=problem):
        load_wordlist("id")
    with pytest.raises(ValueError):
        generate_codename("id")


def test_a_clean_word_list_in_any_order_loads(fake_wordlists: Path) -> None:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = [a + b + c for a in letters for b in letters for c in letters[:7]]  # 4,732 words
    words.reverse()
    (fake_wordlists / "id.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    assert load_wordlist("id") == tuple(words)


# --- entropy and generation ----------------------------------------------------------------


@pytest.mark.parametrize(("language", "expected_words"), [("id", 8), ("en", 7)])
def test_codenames_carry_at_least_90_bits_with_no_word_to_spare(
    language: str, expected_words: int
) -> None:
    size = len(load_wordlist(language))
    assert words_needed(language) == expected_words
    assert entropy_bits(language) == pytest.approx(expected_words * math.log2(size))
    assert entropy_bits(language) >= MIN_ENTROPY_BITS == 90
    # One word fewer would fall short: the codename is no longer than it has to be.
    assert (expected_words - 1) * math.log2(size) < MIN_ENTROPY_BITS


@pytest.mark.parametrize("language", ["id", "en"])
def test_generated_codename_is_words_from_the_list_joined_by_single_spaces(language: str) -> None:
    words = set(load_wordlist(language))
    for _ in range(200):
        codename = generate_codename(language)
        parts = codename.split(" ")
        assert len(parts) == words_needed(language)
        assert all(part in words for part in parts)
        assert normalize_codename(codename) == codename
        assert looks_like_codename(codename)


def test_default_language_is_indonesian() -> None:
    indonesian = set(load_wordlist("id"))
    parts = generate_codename().split(" ")
    assert len(parts) == words_needed("id")
    assert set(parts) <= indonesian


def test_words_are_drawn_with_the_secrets_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # The random module is predictable from its output; codenames must come from the OS CSPRNG.
    calls: list[int] = []

    def fake_choice(seq: tuple[str, ...]) -> str:
        calls.append(len(seq))
        return seq[-1]

    monkeypatch.setattr(secrets, "choice", fake_choice)
    words = load_wordlist("id")
    assert generate_codename("id") == " ".join([words[-1]] * words_needed("id"))
    assert calls == [len(words)] * words_needed("id")


def test_twenty_thousand_codenames_are_all_different() -> None:
    codenames_seen = {generate_codename("id") for _ in range(20_000)}
    assert len(codenames_seen) == 20_000


def test_choices_are_spread_over_the_whole_list() -> None:
    words = load_wordlist("id")
    n = words_needed("id")
    draws = [generate_codename("id").split(" ") for _ in range(20_000)]

    counts = Counter(word for codename in draws for word in codename)
    # 160,000 draws over ~4,300 words is ~37 per word: missing any word by chance is
    # vanishingly unlikely, so a generator that favours part of the list fails here.
    assert set(counts) == set(words)

    # Pearson's chi-square against the uniform distribution; df ~ 4,300, sd ~ 93. Six standard
    # deviations above the mean is a false alarm about once in a billion runs.
    expected = len(draws) * n / len(words)
    chi2 = sum((counts[w] - expected) ** 2 / expected for w in words)
    df = len(words) - 1
    assert chi2 < df + 6 * math.sqrt(2 * df)

    # Every position is random, not only some: each covers nearly all of the list.
    for position in range(n):
        seen = {codename[position] for codename in draws}
        assert len(seen) > 0.95 * len(words)


# --- normalising and recognising typed codenames -------------------------------------------


def test_normalize_folds_case_whitespace_and_unicode_forms() -> None:
    assert normalize_codename("  Meja\tKURSI \n lampu  ") == "meja kursi lampu"
    assert normalize_codename("meja\u00a0kursi\u3000lampu") == "meja kursi lampu"
    # Full-width letters from some phone keyboards, and invisible characters from copy and paste.
    assert normalize_codename("\uff2d\uff45\uff4a\uff41 kursi") == "meja kursi"
    assert normalize_codename("\ufeffmeja\u200b kur\u200dsi") == "meja kursi"
    assert normalize_codename("") == ""
    assert normalize_codename(" \t\n ") == ""


@pytest.mark.parametrize("language", ["id", "en"])
def test_a_messily_typed_codename_is_recognised_and_normalises_to_the_original(
    language: str,
) -> None:
    codename = generate_codename(language)
    words = codename.split(" ")
    messy = "  " + "   \t".join(w.upper() if i % 2 else w.title() for i, w in enumerate(words))
    messy += "\n"
    assert messy != codename
    assert looks_like_codename(messy)
    assert normalize_codename(messy) == codename


@pytest.mark.parametrize("language", ["id", "en"])
def test_wrong_word_count_is_not_a_codename(language: str) -> None:
    parts = generate_codename(language).split(" ")
    assert not looks_like_codename(" ".join(parts[:-1]))
    assert not looks_like_codename(" ".join([*parts, parts[0]]))


@pytest.mark.parametrize("language", ["id", "en"])
def test_a_word_outside_the_list_is_not_a_codename(language: str) -> None:
    parts = generate_codename(language).split(" ")
    assert not looks_like_codename(" ".join([*parts[:-1], "xyzzyq"]))
    # Words of the two languages are not mixed within one codename.
    assert not looks_like_codename(" ".join([*parts[:-1], word_from_other_list(language)]))
    # A misspelt word is not silently accepted.
    assert not looks_like_codename(" ".join([*parts[:-1], parts[-1] + "x"]))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "halo",
        "12345678",
        "meja-kursi-lampu-pintu-jalan-rumah-kopi-teh",
        "meja,kursi,lampu,pintu,jalan,rumah,kopi,teh",
        "korupsi " * 8,
        "password123",
    ],
)
def test_obvious_non_codenames(text: str) -> None:
    assert not looks_like_codename(text)
