"""Codename word lists, generation and the checks a login form relies on."""

from __future__ import annotations

import importlib.util
import math
import re
import secrets
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from itertools import combinations
from pathlib import Path
from types import ModuleType

import pytest

from crypto import codenames
from crypto.codenames import (
    MAX_CODENAME_CHARS,
    MIN_ENTROPY_BITS,
    WORDS_PER_CODENAME,
    entropy_bits,
    generate_codename,
    load_wordlist,
    looks_like_codename,
    min_wordlist_size,
    normalize_codename,
    unrecognised_words,
    words_needed,
)

ROOT = Path(__file__).resolve().parents[2]
WORDLISTS = ROOT / "crypto" / "wordlists"
BUILD_SCRIPT = ROOT / "scripts" / "build_wordlist_id.py"
HUNSPELL_ID = Path("/usr/share/hunspell/id_ID.dic")


def _load_build_script() -> ModuleType:
    # scripts/ is not a package; load the script by path so the tests read the data files with
    # the very parsers that build the list.
    spec = importlib.util.spec_from_file_location("build_wordlist_id", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_script = _load_build_script()
DENY_CATEGORIES: dict[str, set[str]] = build_script.read_deny_list(WORDLISTS / "id-deny.txt")
VARIANT_GROUPS: list[tuple[str, ...]] = build_script.read_variants(WORDLISTS / "id-variants.txt")


def deny_words() -> set[str]:
    return set().union(*DENY_CATEGORIES.values())


def damerau_levenshtein(a: str, b: str) -> int:
    """The true (unrestricted) Damerau-Levenshtein distance, written independently of the script.

    Lowrance and Wagner's algorithm: unlike the "optimal string alignment" shortcut it is a
    metric (ca -> abc is 2, not 3), which is what makes "three edits apart" imply that a
    one-edit typo has a single nearest word.
    """
    big = len(a) + len(b)
    last_row: dict[str, int] = {}
    d = [[big] * (len(b) + 2) for _ in range(len(a) + 2)]
    for i in range(len(a) + 1):
        d[i + 1][1] = i
    for j in range(len(b) + 1):
        d[1][j + 1] = j
    for i in range(1, len(a) + 1):
        last_col = 0
        for j in range(1, len(b) + 1):
            k, same = last_row.get(b[j - 1], 0), a[i - 1] == b[j - 1]
            d[i + 1][j + 1] = min(
                d[i][j] + (0 if same else 1),
                d[i + 1][j] + 1,
                d[i][j + 1] + 1,
                d[k][last_col] + (i - k - 1) + 1 + (j - last_col - 1),
            )
            if same:
                last_col = j
        last_row[a[i - 1]] = i
    return d[len(a) + 1][len(b) + 1]


def _deletions(word: str, n: int) -> set[str]:
    out = {word}
    for _ in range(n):
        out |= {w[:i] + w[i + 1 :] for w in out for i in range(len(w))}
    return out


def close_pairs(words: tuple[str, ...], limit: int) -> list[tuple[str, str, int]]:
    """Every pair of ``words`` at most ``limit`` edits apart.

    Two words that close share a string made by deleting at most ``limit`` letters from each
    (a substitution or a swap is one deletion on each side, an insertion one on the other), so
    only pairs sharing such a string need the exact distance.
    """
    by_key: defaultdict[str, set[str]] = defaultdict(set)
    for word in words:
        for key in _deletions(word, limit):
            by_key[key].add(word)
    candidates = {pair for group in by_key.values() for pair in combinations(sorted(group), 2)}
    found = [(a, b, damerau_levenshtein(a, b)) for a, b in sorted(candidates)]
    return [(a, b, d) for a, b, d in found if d <= limit]


def word_from_other_list(language: str) -> str:
    """A word that is in the other language's list but not in this one."""
    other = "en" if language == "id" else "id"
    mine = set(load_wordlist(language))
    return next(w for w in load_wordlist(other) if w not in mine)


# --- the lists -----------------------------------------------------------------------------


def test_indonesian_list_is_large_plain_and_sorted() -> None:
    words = load_wordlist("id")
    assert min_wordlist_size("id") == 1024 <= len(words)
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


# One telling word per deny category: the category exists, holds it, and the list lacks it.
DENY_EXAMPLES = {
    "Corruption, money, procurement, law and investigation": {"suap", "korupsi", "forensik"},
    "Police, military, weapons, violence, crime, death and disaster": {"polisi", "tsunami"},
    "Politics, government and the state": {"presiden", "istana"},
    "Religion, belief and the supernatural": {"tuhan", "firasat"},
    "Sexual words, body parts and functions, illness and disability": {"kontol", "pandemi"},
    "Insults, slurs and vulgar slang": {"bangsat", "monyet", "anjir"},
    "Ethnic groups, regions, countries, places and personal names or titles": {"jawa", "komodo"},
    "Brands, clubs, abbreviations and English words": {"gojek", "were", "toserba"},
    "Corruption code words and euphemisms": {"apel", "semangka", "kardus", "kopi", "paket"},
    "Words that are not Indonesian": {"mochi", "yoghurt", "tahniah"},
    "Slang and colloquial words": {"gede", "cewek", "ngebut", "ketemu"},
    "Non-standard spellings, derived forms and words used only inside set phrases": {
        "enggak",
        "istiadat",
    },
}


def test_deny_list_has_exactly_the_expected_categories() -> None:
    assert set(DENY_CATEGORIES) == set(DENY_EXAMPLES)


@pytest.mark.parametrize("category", sorted(DENY_EXAMPLES))
def test_no_word_of_a_deny_category_is_in_the_indonesian_list(category: str) -> None:
    denied = DENY_CATEGORIES[category]
    assert DENY_EXAMPLES[category] <= denied
    assert denied & set(load_wordlist("id")) == set()


def test_deny_list_entries_are_plain_lower_case_words_listed_once() -> None:
    # A capitalised or punctuated entry would never match a candidate and silently deny nothing.
    bad = [w for w in deny_words() if not re.fullmatch(r"[a-z]+", w)]
    assert bad == []
    assert sum(len(words) for words in DENY_CATEGORIES.values()) == len(deny_words())


def test_no_word_is_more_frequent_in_english() -> None:
    # wordfreq's English frequencies catch the English words hunspell-id also accepts.
    assert [w for w in load_wordlist("id") if build_script.is_english(w)] == []
    assert all(build_script.is_english(w) for w in ("total", "level", "album", "problem"))
    assert not build_script.is_english("binatang")


@pytest.mark.skipif(not HUNSPELL_ID.exists(), reason="hunspell-id is not installed")
def test_every_word_is_a_lower_case_word_of_hunspell_id() -> None:
    plain, proper = build_script.read_hunspell(HUNSPELL_ID)
    words = set(load_wordlist("id"))
    assert words <= plain
    assert words & proper == set()


def test_distance_function_counts_single_edits() -> None:
    assert damerau_levenshtein("bisa", "biasa") == 1  # insertion
    assert damerau_levenshtein("bintang", "binatang") == 1
    assert damerau_levenshtein("sandal", "sendal") == 1  # substitution
    assert damerau_levenshtein("kita", "kiat") == 1  # adjacent swap
    assert damerau_levenshtein("bintang", "tentang") == 2
    assert damerau_levenshtein("ca", "abc") == 2  # a swap, then an insertion
    assert damerau_levenshtein("meja", "meja") == 0
    pairs = close_pairs(("bisa", "biasa", "bintang", "tentang", "kursi"), 2)
    assert pairs == [("biasa", "bisa", 1), ("bintang", "tentang", 2)]


def test_every_two_words_are_at_least_three_edits_apart() -> None:
    # So a word with one wrong, missing, extra or swapped letter is one edit from exactly one
    # list word, and no two words differ by a single letter.
    assert close_pairs(load_wordlist("id"), 2) == []


@pytest.mark.parametrize("group", VARIANT_GROUPS, ids=" ".join)
def test_at_most_one_spelling_of_a_known_variant_group(group: tuple[str, ...]) -> None:
    assert len(set(group) & set(load_wordlist("id"))) <= 1


# Systematic spelling alternations in Indonesian: swapping one of these anywhere in a list
# word never gives another list word.
SPELLING_PATTERNS = [
    ("e", "a"), ("e", "i"), ("o", "u"), ("kh", "k"), ("kh", "h"), ("f", "p"), ("v", "f"),
    ("z", "j"), ("z", "s"), ("ny", "ni"), ("sy", "s"), ("au", "o"), ("ai", "e"),
]  # fmt: skip


def _respellings(word: str) -> set[str]:
    out = {word[1:] if word.startswith("h") else "h" + word}  # andal / handal
    for a, b in SPELLING_PATTERNS:
        for x, y in ((a, b), (b, a)):
            start = word.find(x)
            while start != -1:
                out.add(word[:start] + y + word[start + len(x) :])
                start = word.find(x, start + 1)
    return out - {word}


def test_no_word_is_a_systematic_respelling_of_another() -> None:
    words = set(load_wordlist("id"))
    assert {(w, r) for w in words for r in _respellings(w) if r in words} == set()
    # The patterns do produce the respellings they stand for.
    assert {"sendal", "andal", "kawatir", "ijin", "nyanyi"} <= {
        r for w in ("sandal", "handal", "khawatir", "izin", "nianyi") for r in _respellings(w)
    }


# Close pairs and how the build resolved them: the more frequent word of a pair is kept unless
# it was itself too close to a yet more frequent word.
@pytest.mark.parametrize(
    ("kept", "dropped"),
    [
        ("bisa", "biasa"),  # one letter apart; bisa is the more frequent
        ("binatang", "bintang"),  # bintang went first: two edits from the commoner tentang
        ("tentang", "bintang"),
        ("praktik", "praktek"),  # standard and non-standard spellings
        ("risiko", "resiko"),
        ("telepon", "telefon"),
        ("khawatir", "kuatir"),
        ("kualitas", "kwalitas"),
    ],
)
def test_named_close_pairs_are_resolved(kept: str, dropped: str) -> None:
    words = set(load_wordlist("id"))
    assert kept in words
    assert dropped not in words


@pytest.mark.parametrize(
    "pair",
    [("sandal", "sendal"), ("andal", "handal"), ("skala", "sekala"), ("nasihat", "nasehat")],
)
def test_named_variant_pairs_are_not_both_in_the_list(pair: tuple[str, str]) -> None:
    assert not set(pair) <= set(load_wordlist("id"))


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
    # Each filtering stage reports how many words it left and removed.
    for category in DENY_CATEGORIES:
        assert f"deny list: {category}" in proc.stdout
    assert "not more frequent in English" in proc.stdout
    assert "at least 3 edits from every more frequent word" in proc.stdout
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
    assert "need at least 1024" in proc.stderr
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


@pytest.mark.parametrize(("language", "expected_words"), [("id", 9), ("en", 7)])
def test_codenames_carry_at_least_90_bits_with_no_word_to_spare(
    language: str, expected_words: int
) -> None:
    size = len(load_wordlist(language))
    assert words_needed(language) == WORDS_PER_CODENAME[language] == expected_words
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
    # 180,000 draws over ~1,200 words is ~150 per word: missing any word by chance is
    # vanishingly unlikely, so a generator that favours part of the list fails here.
    assert set(counts) == set(words)

    # Pearson's chi-square against the uniform distribution; df ~ 1,200, sd ~ 49. Six standard
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
    # A word two edits from every list word is not silently accepted.
    assert not looks_like_codename(" ".join([*parts[:-1], parts[-1] + "qx"]))


@pytest.mark.parametrize(
    "typo",
    [
        lambda w: w[1:],  # first letter missing
        lambda w: w[:2] + "q" + w[2:],  # a letter too many
        lambda w: w[:-1] + ("x" if w[-1] != "x" else "z"),  # last letter wrong
        lambda w: w[0] + w[2] + w[1] + w[3:],  # two letters swapped
    ],
)
def test_one_mistyped_letter_per_word_is_corrected_in_an_indonesian_codename(
    typo: Callable[[str], str],
) -> None:
    codename = generate_codename("id")
    words = codename.split(" ")
    typed = " ".join(typo(w) if i % 2 == 0 else w for i, w in enumerate(words))
    if typed == codename:  # a swap of two equal letters changes nothing
        return
    assert normalize_codename(typed) == codename
    assert looks_like_codename(typed)


def test_named_typos_are_corrected_and_ambiguous_ones_are_not() -> None:
    base = generate_codename("id").split(" ")[1:]
    assert normalize_codename(" ".join(["biasa", *base])) == " ".join(["bisa", *base])
    assert normalize_codename(" ".join(["bintang", *base])) == " ".join(["binatang", *base])
    # Two edits from any word: left as typed, so the login says it is not a codename.
    assert normalize_codename(" ".join(["bixxa", *base])) == " ".join(["bixxa", *base])
    # Outside a codename's word count nothing is corrected.
    assert normalize_codename("biasa kursi") == "biasa kursi"


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


def test_overlong_input_is_cut_before_any_work() -> None:
    # The login form is open to anyone before any throttle: correcting 9 "words" of 5,000
    # letters would cost seconds of CPU each time. Such input is cut and never corrected.
    huge = " ".join(["A" * 5000] * 9)
    assert len(normalize_codename(huge)) <= MAX_CODENAME_CHARS
    assert not looks_like_codename(huge)


@pytest.mark.parametrize("language", ["id", "en"])
def test_unrecognised_words_are_named_by_position_for_the_login_page(language: str) -> None:
    words = generate_codename(language).split()
    assert unrecognised_words(" ".join(words)) == (len(words), ())
    # Capitals and a word far from every list word: that position, and only it, is named.
    typed = [w.upper() for w in words]
    typed[1] = "qqqqqqqqqqqqqqqqqqqq"
    assert unrecognised_words("  ".join(typed)) == (len(words), (2,))
    # A word too few matches no codename length: the count, and no position.
    assert unrecognised_words(" ".join(words[:-1])) == (len(words) - 1, ())
    # A mistyped list word is corrected, so it is not named.
    typed = list(words)
    typed[0] = typed[0][:-1]
    count, positions = unrecognised_words(" ".join(typed))
    assert count == len(words) and positions in ((), (1,))
    assert (positions == ()) == looks_like_codename(" ".join(typed))
