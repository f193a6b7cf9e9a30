"""Keyed similarity sketches: the format the workstation writes and the server compares.

A sketch is a few MinHash signatures of one report, one per part: the narrative (``text``) and
the structured fields of the guided form (``siapa``, ``dimana``, ``berapa``, ``kapan``). The
workstation computes them (:mod:`workstation.sketches`) over tokens it first passes through
HMAC-SHA256 with a secret sketch key that KPK hands to workstations offline; the server
(:mod:`wbs.sketches`) only stores and compares them. Both halves share this module, so the
score has one definition.

What the numbers are: for each part, the minimum over the part's keyed tokens of ``num_perm``
public permutations of a 32-bit hash. Two reports share a value at a position with probability
equal to the Jaccard similarity of their token sets; that is all a holder of sketches can learn
(an estimate of how similar two reports are, part by part). Without the key a guessed name,
place or amount cannot be turned into a signature to test against the stored ones.

A part that was empty on the workstation is an empty list: it neither adds to nor takes from
the score. Sketches made with different keys are not comparable; ``key_id`` (a keyed hash of a
constant, which says nothing of the key) tells them apart.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FORMAT = "peluit-sketches/1"
# Signature lengths: the narrative needs more permutations than the short fields.
PARTS: Mapping[str, int] = {"text": 128, "siapa": 32, "dimana": 32, "berapa": 32, "kapan": 32}
# How much each part weighs in the score. Two accounts of one affair agree on its fields (the
# same official, place, amount and period) more reliably than on their words, so the fields
# weigh more than the narrative. All four together reach the threshold; any three need
# the stories to be alike as well; two (one official at one office, or one modus and amount)
# stay below it however stock the phrasing. Tuned on bench/bench_duplicates.py.
WEIGHTS: Mapping[str, float] = {
    "text": 0.4, "siapa": 0.2, "dimana": 0.15, "berapa": 0.12, "kapan": 0.13,
}
THRESHOLD = 0.6
MAX_HASH = (1 << 32) - 1
KEY_ID_RE = re.compile(r"^[0-9a-f]{16}$")
# Registration numbers as the server writes them (also folder names on the workstation).
REGISTRATION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
# LSH banding of the narrative's signature: 32 bands of 4 rows catch a pair whose text
# similarity is s with probability 1 - (1 - s^4)^32: 0.99 at s = 0.5, 0.73 at s = 0.35. The
# pairs whose stories are told more differently are found by their fields (below).
TEXT_BANDS = 32
# Reports that agree exactly on two of the fields (the same terlapor at the same place, the
# same place and amount, ...) are compared too, however differently their stories are told.
_FIELD_BUCKETS = (
    ("siapa", "dimana"), ("siapa", "berapa"), ("dimana", "berapa"), ("dimana", "kapan"),
    ("siapa", "kapan"),
)
# A bucket this full is a field value too common to say anything (or a band of stock
# phrases): left to the other buckets rather than compared all against all.
_MAX_BUCKET = 500
# Pairs scored at once: bounds the memory of the comparison (pairs x 128 values).
_CHUNK = 50_000


class SketchFormatError(ValueError):
    """A sketch document that is not what the format says. The message names the problem."""


@dataclass(frozen=True)
class Sketch:
    registration_number: str
    signatures: Mapping[str, tuple[int, ...]]

    def to_json(self) -> dict[str, Any]:
        return {
            "registration_number": self.registration_number,
            "signatures": {part: list(self.signatures[part]) for part in PARTS},
        }


@dataclass(frozen=True)
class SketchDocument:
    key_id: str
    sketches: tuple[Sketch, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "key_id": self.key_id,
            "sketches": [sketch.to_json() for sketch in self.sketches],
        }


def parse_signatures(value: object) -> dict[str, tuple[int, ...]]:
    """One sketch's signatures, checked: exactly the parts, each empty or of its length."""
    if not isinstance(value, dict) or set(value) != set(PARTS):
        raise SketchFormatError(f"signatures must have exactly the parts {', '.join(PARTS)}")
    out: dict[str, tuple[int, ...]] = {}
    for part, length in PARTS.items():
        values = value[part]
        if not isinstance(values, list) or len(values) not in (0, length):
            raise SketchFormatError(f"the {part} signature must have 0 or {length} values")
        # bool is an int in Python: refused, like anything not a 32-bit hash value.
        if not all(type(v) is int and 0 <= v <= MAX_HASH for v in values):
            raise SketchFormatError(f"the {part} signature holds a value that is not a hash")
        out[part] = tuple(values)
    if not out["text"]:
        raise SketchFormatError("a sketch without a text signature compares with nothing")
    return out


def parse_document(data: object, *, max_sketches: int = 100_000) -> SketchDocument:
    """A sketch document, checked to hold nothing but what the format names: no text can
    ride along in an extra field."""
    if not isinstance(data, dict) or set(data) != {"format", "key_id", "sketches"}:
        raise SketchFormatError("a sketch document has exactly format, key_id and sketches")
    if data["format"] != FORMAT:
        raise SketchFormatError(f"unknown sketch format; expected {FORMAT}")
    key_id = data["key_id"]
    if not isinstance(key_id, str) or not KEY_ID_RE.match(key_id):
        raise SketchFormatError("key_id must be 16 lower-case hex digits")
    items = data["sketches"]
    if not isinstance(items, list) or not items:
        raise SketchFormatError("sketches must be a non-empty list")
    if len(items) > max_sketches:
        raise SketchFormatError(f"at most {max_sketches} sketches in one document")
    sketches: list[Sketch] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or set(item) != {"registration_number", "signatures"}:
            raise SketchFormatError("each sketch has exactly registration_number and signatures")
        number = item["registration_number"]
        if not isinstance(number, str) or not REGISTRATION_RE.match(number):
            raise SketchFormatError("a registration number is malformed")
        if number in seen:
            raise SketchFormatError(f"{number} appears twice")
        seen.add(number)
        sketches.append(Sketch(number, parse_signatures(item["signatures"])))
    return SketchDocument(key_id, tuple(sketches))


def agreement(a: Sequence[int], b: Sequence[int]) -> float | None:
    """The share of positions where two signatures agree (their estimated Jaccard
    similarity); None when either part was empty."""
    if not a or not b or len(a) != len(b):
        return None
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def part_similarities(
    a: Mapping[str, Sequence[int]], b: Mapping[str, Sequence[int]]
) -> dict[str, float | None]:
    return {part: agreement(a.get(part, ()), b.get(part, ())) for part in PARTS}


def score(a: Mapping[str, Sequence[int]], b: Mapping[str, Sequence[int]]) -> float:
    """How likely two sketches are of one affair: 0..1, weighted over the parts both have."""
    return scores([a, b], [(0, 1)])[0]


def scores(
    sketches: Sequence[Mapping[str, Sequence[int]]], pairs: Sequence[tuple[int, int]]
) -> list[float]:
    """The score of each pair of indices, computed a chunk of pairs at a time with numpy (a
    server compares hundreds of thousands of candidate pairs)."""
    total = np.zeros(len(pairs))
    if not pairs:
        return []
    index = np.asarray(pairs, dtype=np.int64)
    for part, length in PARTS.items():
        values = np.zeros((len(sketches), length), dtype=np.uint32)
        present = np.zeros(len(sketches), dtype=bool)
        for row, sketch in enumerate(sketches):
            signature = sketch.get(part, ())
            if len(signature) == length:
                values[row] = signature
                present[row] = True
        for start in range(0, len(index), _CHUNK):
            first, second = index[start : start + _CHUNK, 0], index[start : start + _CHUNK, 1]
            agree = (values[first] == values[second]).mean(axis=1)
            both = present[first] & present[second]
            total[start : start + _CHUNK] += np.where(both, WEIGHTS[part] * agree, 0.0)
    return [round(min(1.0, float(value)), 4) for value in total]


def _band_keys(sketch: Mapping[str, Sequence[int]]) -> list[bytes]:
    text = sketch["text"]
    rows = len(text) // TEXT_BANDS
    keys = [
        hashlib.blake2b(
            b"t%d:" % band + b",".join(b"%d" % v for v in text[band * rows : (band + 1) * rows]),
            digest_size=12,
        ).digest()
        for band in range(TEXT_BANDS)
    ]
    for number, parts in enumerate(_FIELD_BUCKETS):
        if all(sketch.get(part) for part in parts):
            fields = b"|".join(b",".join(b"%d" % v for v in sketch[part]) for part in parts)
            keys.append(hashlib.blake2b(b"f%d:" % number + fields, digest_size=12).digest())
    return keys


def candidate_pairs(
    sketches: Sequence[Mapping[str, Sequence[int]]],
    groups: Sequence[object] | None = None,
) -> set[tuple[int, int]]:
    """Index pairs worth scoring, found by banding (never every pair against every other).

    With ``groups`` (e.g. each sketch's tenant), pairs within one group are left out.
    """
    buckets: dict[bytes, list[int]] = defaultdict(list)
    for index, sketch in enumerate(sketches):
        for key in _band_keys(sketch):
            buckets[key].append(index)
    pairs: set[tuple[int, int]] = set()
    for members in buckets.values():
        if len(members) < 2 or len(members) > _MAX_BUCKET:
            continue
        for position, i in enumerate(members):
            for j in members[position + 1 :]:
                if groups is not None and groups[i] == groups[j]:
                    continue
                pairs.add((i, j) if i < j else (j, i))
    return pairs


def similar_pairs(
    sketches: Sequence[Mapping[str, Sequence[int]]],
    threshold: float = THRESHOLD,
    groups: Sequence[object] | None = None,
) -> list[tuple[int, int, float]]:
    """``(i, j, score)`` of the candidate pairs that reach the threshold, best first."""
    candidates = sorted(candidate_pairs(sketches, groups))
    found = [
        (i, j, value)
        for (i, j), value in zip(candidates, scores(sketches, candidates), strict=True)
        if value >= threshold
    ]
    found.sort(key=lambda row: (-row[2], row[0], row[1]))
    return found
