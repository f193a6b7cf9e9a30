"""Near-duplicate reports: the same affair reported twice, to one instansi or to several.

Pure functions over plain mappings (report id -> form answers), so they are testable without
gpg and reusable on any corpus.

* Text: word 3-shingles of ``apa + bagaimana + kronologi`` (lower-cased, punctuation dropped),
  MinHash signatures and an LSH index (datasketch) to find candidate pairs without comparing
  every pair; each candidate's score is the exact Jaccard similarity of the shingle sets.
* Parties: ``siapa`` (the terlapor) and ``dimana`` (the place), normalised: lower case, no
  punctuation, honorifics and titles dropped ("Bapak H. Ahmad, S.E." == "ahmad").

A pair's score is its text similarity plus ``party_bonus`` for the same terlapor and again for
the same place, capped at 1; it is reported when the score reaches the threshold. The reasons
say which of the three matched, so an investigator sees why two reports were paired.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# datasketch ships no type information (see the mypy override in pyproject.toml).
from datasketch import MinHash, MinHashLSH

TEXT_FIELDS = ("apa", "bagaimana", "kronologi")
SHINGLE_WORDS = 3
NUM_PERM = 128
PARTY_BONUS = 0.1
# Reports naming the same terlapor and place are compared even when their texts share little;
# a bucket bigger than this (a very common name) is left to the text index alone.
_MAX_BUCKET = 200
_WORD_RE = re.compile(r"\w+", re.UNICODE)
# Forms of address, religious and academic titles: they vary between two reports of the same
# person and say nothing about who it is.
_HONORIFICS = frozenset(
    [
        "bapak",
        "pak",
        "bpk",
        "ibu",
        "bu",
        "sdr",
        "sdri",
        "saudara",
        "saudari",
        "tuan",
        "nyonya",
        "h",
        "hj",
        "haji",
        "hajjah",
        "kh",
        "dr",
        "drs",
        "dra",
        "ir",
        "prof",
        "st",
        "se",
        "sh",
        "mh",
        "mm",
        "mt",
        "msi",
        "mpd",
        "spd",
        "skm",
        "sked",
        "amd",
        "ak",
        "s",
        "m",
    ]
)
_PLACE_FILLER = frozenset(["di", "ke", "pada", "dalam", "kantor"])


@dataclass(frozen=True)
class DuplicatePair:
    first: str
    second: str
    score: float
    text_similarity: float
    reasons: tuple[str, ...]


def words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _WORD_RE.findall(folded)


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[str]:
    tokens = words(text)
    if len(tokens) < size:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


def normalize_party(value: str | None) -> str:
    """The terlapor's name without titles or punctuation; "" when nothing is left."""
    # Single letters are initials or pieces of "S.E." and the like: kept inconsistently.
    return " ".join(w for w in words(value or "") if len(w) > 1 and w not in _HONORIFICS)


def normalize_place(value: str | None) -> str:
    return " ".join(w for w in words(value or "") if w not in _PLACE_FILLER)


def report_text(answers: Mapping[str, object]) -> str:
    return " ".join(str(answers.get(key) or "") for key in TEXT_FIELDS)


def jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _signatures(shingle_sets: list[set[str]], num_perm: int) -> list[MinHash]:
    # bulk() hashes every report with one set of permutations, vectorised per report.
    signatures: list[MinHash] = MinHash.bulk(
        ([s.encode("utf-8") for s in sorted(sets)] for sets in shingle_sets), num_perm=num_perm
    )
    return signatures


def candidate_pairs(
    ids: list[str], shingle_sets: list[set[str]], lsh_threshold: float, num_perm: int
) -> set[tuple[int, int]]:
    lsh = MinHashLSH(threshold=lsh_threshold, num_perm=num_perm)
    signatures = _signatures(shingle_sets, num_perm)
    pairs: set[tuple[int, int]] = set()
    for index, signature in enumerate(signatures):
        if not shingle_sets[index]:
            continue
        for other in lsh.query(signature):
            pairs.add((int(other), index))
        lsh.insert(str(index), signature)
    return pairs


def find_duplicates(
    reports: Mapping[str, Mapping[str, object]],
    threshold: float = 0.5,
    num_perm: int = NUM_PERM,
    party_bonus: float = PARTY_BONUS,
) -> list[DuplicatePair]:
    """Pairs of reports that look like the same affair, best first."""
    if not 0 < threshold <= 1:
        raise ValueError("the threshold must be in (0, 1]")
    ids = sorted(reports)
    shingle_sets = [shingles(report_text(reports[rid])) for rid in ids]
    parties = [normalize_party(_text(reports[rid], "siapa")) for rid in ids]
    places = [normalize_place(_text(reports[rid], "dimana")) for rid in ids]

    # The text must reach what the party bonuses leave to reach; the LSH finds those pairs
    # with high probability (its banding is tuned to this threshold).
    lsh_threshold = min(0.99, max(0.05, threshold - 2 * party_bonus))
    pairs = candidate_pairs(ids, shingle_sets, lsh_threshold, num_perm)
    buckets: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, key in enumerate(zip(parties, places, strict=True)):
        if key[0] and key[1]:
            buckets[key].append(index)
    for members in buckets.values():
        if 1 < len(members) <= _MAX_BUCKET:
            pairs.update(itertools.combinations(members, 2))

    found = []
    for i, j in pairs:
        similarity = jaccard(shingle_sets[i], shingle_sets[j])
        reasons = [f"similar text (Jaccard {similarity:.2f})"] if similarity > 0 else []
        score = similarity
        if parties[i] and parties[i] == parties[j]:
            score += party_bonus
            reasons.append(f"same terlapor ({parties[i]})")
        if places[i] and places[i] == places[j]:
            score += party_bonus
            reasons.append(f"same place ({places[i]})")
        score = min(1.0, score)
        if score >= threshold:
            first, second = sorted((ids[i], ids[j]))
            found.append(DuplicatePair(first, second, round(score, 4), similarity, tuple(reasons)))
    found.sort(key=lambda pair: (-pair.score, pair.first, pair.second))
    return found


def _text(answers: Mapping[str, object], key: str) -> str:
    value = answers.get(key)
    return "" if value is None else str(value)


def precision_recall(
    found: Iterable[tuple[str, str]], truth: Iterable[tuple[str, str]]
) -> tuple[float, float]:
    """Of pairs (order-insensitive): the share of found that are true, of true that are found."""
    found_set = {tuple(sorted(pair)) for pair in found}
    truth_set = {tuple(sorted(pair)) for pair in truth}
    hits = len(found_set & truth_set)
    precision = hits / len(found_set) if found_set else 1.0
    recall = hits / len(truth_set) if truth_set else 1.0
    return precision, recall
