"""Build the Indonesian codename word list, crypto/wordlists/id.txt.

Candidates are the words wordfreq knows in Indonesian, kept only if Debian's hunspell-id
dictionary lists them as ordinary (lower-case) words. Proper names, rare words, words on the
curated deny list (crypto/wordlists/id-deny.txt, by category), words more common in English
than in Indonesian, spelling variants (crypto/wordlists/id-variants.txt and systematic
spelling patterns) and words too close to a more frequent word are dropped; the survivors are
written one per line in alphabetical order.

"Too close" means within two edits (Damerau-Levenshtein: a substitution, insertion, deletion
or swap of adjacent letters). Keeping every pair of words at least three edits apart means
that a word with one mistyped letter is one edit from exactly one list word, so the typo can
be corrected without guessing (crypto/codenames.py does), and that no two words differ only
by a letter (bintang/binatang, bisa/biasa).

The output depends only on the inputs (wordfreq's data, the .dic file, the two data files and
the options), so running the script again must reproduce the committed file byte for byte; a
test checks that.

    python scripts/build_wordlist_id.py [--dic PATH] [--deny PATH] [--variants PATH]
                                        [--out PATH] [--min-zipf Z]
"""

from __future__ import annotations

import argparse
import re
import string
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import wordfreq

REPO_ROOT = Path(__file__).resolve().parent.parent
# The minimum list size comes from the configured codename length, so the two cannot drift.
sys.path.insert(0, str(REPO_ROOT))
from crypto.codenames import min_wordlist_size  # noqa: E402

DEFAULT_DIC = Path("/usr/share/hunspell/id_ID.dic")
DEFAULT_DENY = REPO_ROOT / "crypto" / "wordlists" / "id-deny.txt"
DEFAULT_VARIANTS = REPO_ROOT / "crypto" / "wordlists" / "id-variants.txt"
DEFAULT_OUT = REPO_ROOT / "crypto" / "wordlists" / "id.txt"

# Zipf 3.0 is one occurrence per million words, the floor of wordfreq's Indonesian data. The
# distance rule keeps only about one candidate in four, so the list needs the whole of it.
DEFAULT_MIN_ZIPF = 3.0
# Two words closer than this many edits may not both be in the list.
MIN_DISTANCE = 3

WORD_SHAPE = re.compile(r"[a-z]{4,8}")
PLAIN_SHAPE = re.compile(r"[a-z]+")
PROPER_NAME_SHAPE = re.compile(r"[A-Z][a-z]+")
DENY_SECTION = re.compile(r"#\s*---\s*(.+?)\s*---\s*")

# Spelling variants Indonesians use interchangeably (izin/ijin, paham/faham, khawatir/hawatir,
# syukur/sukur, nyanyi/nianyi). Two codename words that differ only in these would be typed one
# for the other from memory, so only the more frequent of the pair is kept. Vowel alternations
# (sandal/sendal, nasihat/nasehat, lobang/lubang) and an optional initial h (andal/handal) are
# not folded here: each is a single edit, which the distance rule already refuses, and folding
# them would also merge distinct words (anak/enak, merah/marah, arus/harus).
_DIGRAPHS = (
    ("kh", "h"),
    ("sy", "s"),
    ("dh", "d"),
    ("th", "t"),
    ("ph", "p"),
    ("ts", "s"),
    ("ny", "ni"),
)
_LETTERS = str.maketrans({"f": "p", "v": "p", "z": "j", "q": "k", "x": "s"})
_DOUBLED = re.compile(r"(.)\1+")


def skeleton(word: str) -> str:
    """A key equal for two words a reporter could easily confuse when typing from memory."""
    for digraph, replacement in _DIGRAPHS:
        word = word.replace(digraph, replacement)
    return _DOUBLED.sub(r"\1", word.translate(_LETTERS))


def one_edit_away(word: str) -> Iterator[str]:
    """Every a-z string one edit from ``word``: deletion, swap, substitution or insertion."""
    letters = string.ascii_lowercase
    for i in range(len(word)):
        yield word[:i] + word[i + 1 :]
        if i + 1 < len(word):
            yield word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        for c in letters:
            yield word[:i] + c + word[i + 1 :]
    for i in range(len(word) + 1):
        for c in letters:
            yield word[:i] + c + word[i:]


def far_apart(words: Iterable[str]) -> list[str]:
    """Keep each word, in order, unless it is within two edits of a word already kept.

    Two words are within two edits exactly when some string is within one edit of both, so
    a word is kept only if its one-edit neighbourhood is disjoint from every kept word's.
    Giving the words most frequent first keeps the more frequent word of every close pair.
    """
    claimed: set[str] = set()
    kept: list[str] = []
    for word in words:
        neighbourhood = {word, *one_edit_away(word)}
        if claimed.isdisjoint(neighbourhood):
            claimed |= neighbourhood
            kept.append(word)
    return kept


def read_hunspell(path: Path) -> tuple[set[str], set[str]]:
    """Return (plain words, lower-cased proper names) from a hunspell .dic file."""
    plain: set[str] = set()
    proper: set[str] = set()
    lines = path.read_text(encoding="utf-8").splitlines()
    # The first line of a .dic file is the approximate entry count, not an entry.
    for line in lines[1:]:
        entry = line.split("/", 1)[0].strip()
        if PLAIN_SHAPE.fullmatch(entry):
            plain.add(entry)
        elif PROPER_NAME_SHAPE.fullmatch(entry):
            proper.add(entry.lower())
    return plain, proper


def read_deny_list(path: Path) -> dict[str, set[str]]:
    """The deny list's words by category: a ``# --- Category ---`` line opens one.

    Words are separated by whitespace and '#' starts a comment. A word is listed once.
    """
    categories: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        header = DENY_SECTION.fullmatch(line)
        if header:
            current = categories.setdefault(header.group(1), set())
            continue
        words = line.split("#", 1)[0].split()
        if words:
            if current is None:
                raise ValueError(f"{path}: words before the first category: {words}")
            current.update(words)
    return categories


def read_variants(path: Path) -> list[tuple[str, ...]]:
    """Groups of spellings of one word, one group a line; '#' starts a comment."""
    groups: list[tuple[str, ...]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = tuple(line.split("#", 1)[0].split())
        if len(words) == 1:
            raise ValueError(f"{path}: a variant group needs two spellings: {words[0]}")
        if words:
            groups.append(words)
    return groups


def is_english(word: str) -> bool:
    """Whether ``word`` is used more in English than in Indonesian (film, data, level)."""
    return wordfreq.zipf_frequency(word, "en") >= wordfreq.zipf_frequency(word, "id")


def _report(stage: str, words: Sequence[str], before: Sequence[str] | None = None) -> None:
    # Words left, and how many this stage removed, so the effect of each filter is visible.
    removed = f"-{len(before) - len(words)}" if before is not None else ""
    print(f"{len(words):>7} {removed:>7}  {stage}")


def build(
    dic: Path,
    deny: Path,
    variants: Path,
    min_zipf: float = DEFAULT_MIN_ZIPF,
) -> list[str]:
    """The word list, alphabetically sorted."""
    plain, proper = read_hunspell(dic)

    # wordfreq's Indonesian data has ~31,000 words; asking for more returns them all.
    ranked: Iterable[str] = wordfreq.top_n_list("id", 10**6)
    # Order by frequency, then spelling, so ties never depend on wordfreq's internal order.
    words = sorted(set(ranked), key=lambda w: (-wordfreq.word_frequency(w, "id"), w))
    _report("wordfreq Indonesian words", words)

    before, words = words, [w for w in words if WORD_SHAPE.fullmatch(w)]
    _report("plain a-z, 4-8 letters", words, before)

    before, words = words, [w for w in words if w in plain]
    _report("in hunspell-id as a lower-case word", words, before)

    # Words the dictionary also lists capitalised are names as well (Bali, Roh, Esa).
    before, words = words, [w for w in words if w not in proper]
    _report("not also a proper name in hunspell-id", words, before)

    before, words = words, [w for w in words if wordfreq.zipf_frequency(w, "id") >= min_zipf]
    _report(f"zipf frequency >= {min_zipf}", words, before)

    for category, denied in read_deny_list(deny).items():
        before, words = words, [w for w in words if w not in denied]
        _report(f"deny list: {category}", words, before)

    before, words = words, [w for w in words if not is_english(w)]
    _report("not more frequent in English (wordfreq)", words, before)

    # Every spelling of a listed group but the most frequent one present.
    rank = {w: i for i, w in enumerate(words)}
    dropped: set[str] = set()
    for group in read_variants(variants):
        present = sorted((w for w in group if w in rank), key=rank.__getitem__)
        dropped.update(present[1:])
    before, words = words, [w for w in words if w not in dropped]
    _report("not a less frequent spelling in id-variants.txt", words, before)

    seen: set[str] = set()
    distinct: list[str] = []
    for word in words:  # most frequent first, so the common spelling wins
        key = skeleton(word)
        if key not in seen:
            seen.add(key)
            distinct.append(word)
    before, words = words, distinct
    _report("not a spelling variant of a more frequent word (skeleton)", words, before)

    before, words = words, far_apart(words)
    _report(f"at least {MIN_DISTANCE} edits from every more frequent word", words, before)
    return sorted(words)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--dic", type=Path, default=DEFAULT_DIC, help="hunspell-id .dic file")
    parser.add_argument("--deny", type=Path, default=DEFAULT_DENY, help="deny list")
    parser.add_argument("--variants", type=Path, default=DEFAULT_VARIANTS, help="variant groups")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output word list")
    parser.add_argument("--min-zipf", type=float, default=DEFAULT_MIN_ZIPF)
    args = parser.parse_args(argv)

    words = build(args.dic, args.deny, args.variants, args.min_zipf)
    needed = min_wordlist_size("id")
    if len(words) < needed:
        print(f"error: only {len(words)} words, need at least {needed}", file=sys.stderr)
        return 1
    args.out.write_text("".join(f"{w}\n" for w in words), encoding="utf-8")
    print(f"wrote {len(words)} words to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
