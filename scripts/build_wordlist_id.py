"""Build the Indonesian codename word list, crypto/wordlists/id.txt.

Candidates are the words wordfreq knows in Indonesian, kept only if Debian's hunspell-id
dictionary lists them as ordinary (lower-case) words. Proper names, rare words, words on the
curated deny list (crypto/wordlists/id-deny.txt) and near-duplicate spellings are dropped, and
the most frequent survivors are written one per line in alphabetical order.

The output depends only on the inputs (wordfreq's data, the .dic file, the deny list and the
options), so running the script again must reproduce the committed file byte for byte; a test
checks that.

    python scripts/build_wordlist_id.py [--dic PATH] [--deny PATH] [--out PATH]
                                        [--min-zipf Z] [--max-words N]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import wordfreq

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIC = Path("/usr/share/hunspell/id_ID.dic")
DEFAULT_DENY = REPO_ROOT / "crypto" / "wordlists" / "id-deny.txt"
DEFAULT_OUT = REPO_ROOT / "crypto" / "wordlists" / "id.txt"

# Zipf 3.2 is about 1.6 occurrences per million words. Below it wordfreq's Indonesian data is
# mostly regional words, name fragments and technical terms a reporter would have to spell out.
DEFAULT_MIN_ZIPF = 3.2
# 8,192 words would give 13 bits a word; more than that adds little and reaches rarer words.
DEFAULT_MAX_WORDS = 8192
# crypto/codenames.py refuses a list of fewer words (12 bits each; 8 words give 96 bits).
MIN_WORDS = 4096

WORD_SHAPE = re.compile(r"[a-z]{4,8}")
PLAIN_SHAPE = re.compile(r"[a-z]+")
PROPER_NAME_SHAPE = re.compile(r"[A-Z][a-z]+")

# Spelling variants Indonesians use interchangeably (izin/ijin, paham/faham, nasihat/nasehat,
# khawatir/kuatir, syukur/sukur). Two codename words that differ only in these would be typed
# one for the other from memory, so only the more frequent of the pair is kept.
_DIGRAPHS = (("kh", "h"), ("sy", "s"), ("dh", "d"), ("th", "t"), ("ph", "p"), ("ts", "s"))
_LETTERS = str.maketrans({"f": "p", "v": "p", "z": "j", "q": "k", "x": "s"})
_DOUBLED = re.compile(r"(.)\1+")


def skeleton(word: str) -> str:
    """A key equal for two words a reporter could easily confuse when typing from memory."""
    for digraph, replacement in _DIGRAPHS:
        word = word.replace(digraph, replacement)
    return _DOUBLED.sub(r"\1", word.translate(_LETTERS))


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


def read_deny_list(path: Path) -> set[str]:
    """Words from the deny list: whitespace-separated, '#' starts a comment."""
    words: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        words.update(line.split("#", 1)[0].split())
    return words


def _report(stage: str, words: Sequence[str]) -> None:
    print(f"{stage:<58} {len(words):>7}")


def build(
    dic: Path,
    deny: Path,
    min_zipf: float = DEFAULT_MIN_ZIPF,
    max_words: int = DEFAULT_MAX_WORDS,
) -> list[str]:
    """The word list, alphabetically sorted."""
    plain, proper = read_hunspell(dic)
    denied = read_deny_list(deny)

    # wordfreq's Indonesian data has ~31,000 words; asking for more returns them all.
    ranked: Iterable[str] = wordfreq.top_n_list("id", 10**6)
    # Order by frequency, then spelling, so ties never depend on wordfreq's internal order.
    words = sorted(set(ranked), key=lambda w: (-wordfreq.word_frequency(w, "id"), w))
    _report("wordfreq Indonesian words", words)

    words = [w for w in words if WORD_SHAPE.fullmatch(w)]
    _report("plain a-z, 4-8 letters", words)

    words = [w for w in words if w in plain]
    _report("in hunspell-id as a lower-case word", words)

    # Words the dictionary also lists capitalised are names as well (Bali, Roh, Esa).
    words = [w for w in words if w not in proper]
    _report("not also a proper name in hunspell-id", words)

    words = [w for w in words if wordfreq.zipf_frequency(w, "id") >= min_zipf]
    _report(f"zipf frequency >= {min_zipf}", words)

    words = [w for w in words if w not in denied]
    _report("not on the deny list", words)

    seen: set[str] = set()
    distinct: list[str] = []
    for word in words:  # most frequent first, so the common spelling wins
        key = skeleton(word)
        if key not in seen:
            seen.add(key)
            distinct.append(word)
    words = distinct
    _report("not a spelling variant of a more frequent word", words)

    words = words[:max_words]
    _report(f"most frequent, at most {max_words}", words)
    return sorted(words)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--dic", type=Path, default=DEFAULT_DIC, help="hunspell-id .dic file")
    parser.add_argument("--deny", type=Path, default=DEFAULT_DENY, help="deny list")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output word list")
    parser.add_argument("--min-zipf", type=float, default=DEFAULT_MIN_ZIPF)
    parser.add_argument("--max-words", type=int, default=DEFAULT_MAX_WORDS)
    args = parser.parse_args(argv)

    words = build(args.dic, args.deny, args.min_zipf, args.max_words)
    if len(words) < MIN_WORDS:
        print(f"error: only {len(words)} words, need at least {MIN_WORDS}", file=sys.stderr)
        return 1
    args.out.write_text("".join(f"{w}\n" for w in words), encoding="utf-8")
    print(f"wrote {len(words)} words to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
