"""A synthetic corpus of reports with known duplicates, for tests and benchmarks.

No real report is ever used to tune the duplicate finder. The corpus has the traps real data
has: a shared stock of common words, common terlapor (the same "Kepala Dinas" in unrelated
affairs), and duplicates written again by another pelapor with changed words, titles and
order of sentences.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

_SYLLABLES = [consonant + vowel for consonant in "bdgklmnprstjw" for vowel in "aeiou"]
_COMMON = [
    "yang",
    "dan",
    "di",
    "ke",
    "dari",
    "untuk",
    "dengan",
    "pada",
    "dalam",
    "ini",
    "itu",
    "adalah",
    "oleh",
    "tidak",
    "akan",
    "sudah",
    "juga",
    "proyek",
    "dana",
    "anggaran",
    "kepala",
    "dinas",
    "pengadaan",
    "kontrak",
    "uang",
    "suap",
    "fee",
    "pejabat",
    "kantor",
    "tahun",
]
_TITLES = ("Bapak", "Pak", "Ibu", "H.", "Dr.", "Sdr.", "Ir.", "")
_TITLE_SUFFIXES = ("", ", S.E.", ", S.H.", ", M.M.")


@dataclass(frozen=True)
class Corpus:
    reports: dict[str, dict[str, str]]
    duplicate_pairs: set[tuple[str, str]]


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def _sentence(rng: random.Random, vocab: list[str]) -> list[str]:
    return [
        rng.choice(_COMMON) if rng.random() < 0.3 else rng.choice(vocab)
        for _ in range(rng.randint(8, 16))
    ]


def _rewrite(rng: random.Random, sentences: list[list[str]], vocab: list[str]) -> list[list[str]]:
    """Another pelapor's account of the same affair: some words changed, order shuffled."""
    out = []
    for sentence in sentences:
        changed = [rng.choice(vocab) if rng.random() < 0.08 else w for w in sentence]
        if rng.random() < 0.2 and len(changed) > 6:
            del changed[rng.randrange(len(changed))]
        out.append(changed)
    if len(out) > 2 and rng.random() < 0.5:
        i = rng.randrange(len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]
    if rng.random() < 0.3:
        out.append(_sentence(rng, vocab))
    return out


def _person(rng: random.Random, name: str) -> str:
    return f"{rng.choice(_TITLES)} {name}{rng.choice(_TITLE_SUFFIXES)}".strip()


def _report(sentences: list[list[str]], person: str, place: str) -> dict[str, str]:
    text = [" ".join(s) + "." for s in sentences]
    third = max(1, len(text) // 3)
    return {
        "category": "suap_menyuap",
        "mcp_area": "pengadaan_barang_jasa",
        "apa": " ".join(text[:third]),
        "siapa": person,
        "kapan": "2026",
        "dimana": place,
        "bagaimana": " ".join(text[third : 2 * third]),
        "berapa": "Rp 100 juta",
        "kronologi": " ".join(text[2 * third :]),
    }


def generate_corpus(count: int, duplicate_share: float = 0.1, seed: int = 7) -> Corpus:
    """``count`` reports; about ``duplicate_share`` of them re-tell an earlier one."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not a secret
    vocab = _vocabulary(rng, 5000)
    names = [
        " ".join(rng.choice(vocab).title() for _ in range(2)) for _ in range(max(10, count // 20))
    ]
    places = [
        f"Dinas {rng.choice(vocab).title()} Kota {rng.choice(vocab).title()}"
        for _ in range(max(10, count // 30))
    ]
    reports: dict[str, dict[str, str]] = {}
    originals: list[tuple[str, list[list[str]], str, str]] = []
    clusters: dict[str, list[str]] = {}
    for number in range(count):
        rid = f"t{number % 3}/R{number:06d}"
        if originals and rng.random() < duplicate_share:
            base_id, sentences, name, place = rng.choice(originals)
            rewritten = _rewrite(rng, sentences, vocab)
            spot = place if rng.random() < 0.7 else f"di {place.lower()}"
            reports[rid] = _report(rewritten, _person(rng, name), spot)
            clusters[base_id].append(rid)
        else:
            sentences = [_sentence(rng, vocab) for _ in range(rng.randint(4, 9))]
            # Common terlapor and places recur across unrelated affairs on purpose.
            name, place = rng.choice(names), rng.choice(places)
            reports[rid] = _report(sentences, _person(rng, name), place)
            originals.append((rid, sentences, name, place))
            clusters[rid] = [rid]
    pairs = {
        (a, b) if a < b else (b, a)
        for members in clusters.values()
        for a, b in itertools.combinations(members, 2)
    }
    return Corpus(reports, pairs)
