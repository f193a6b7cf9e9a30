"""Keyed similarity sketches of decrypted reports, to find one affair reported to several
instansi without any of them sending the report (format and score: :mod:`crypto.sketches`).

Normalisation first, so that two pelapor telling the same story in their own words meet:

* case, punctuation and Unicode forms folded; common Indonesian function words dropped;
* amounts written any way ("Rp 1,5 miliar", "Rp1.500.000.000", "satu setengah miliar rupiah",
  "1.500 juta") become one canonical token, rounded to two significant digits;
* the terlapor without titles or forms of address, the place without fillers, the period as
  years and year-months.

The narrative (apa, bagaimana, kronologi) becomes word unigrams and bigrams, so reordered
sentences and a few swapped words keep most of the set. Every token is passed through
HMAC-SHA256 with the sketch key before it is hashed into the MinHash: whoever holds sketches
but not the key cannot compute the sketch of a guessed name or amount to test it.

The sketch key is 32 random bytes that KPK generates once and hands to every workstation
offline (``peluit-workstation sketch-key generate`` / ``import``). It never goes to the server.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

# datasketch ships no type information (see the mypy override in pyproject.toml).
from datasketch import MinHash

from crypto.sketches import PARTS, Sketch, SketchDocument
from workstation.duplicates import normalize_party

KEY_FILE_HEADER = "peluit-sketch-key/1"
KEY_BYTES = 32
TEXT_FIELDS = ("apa", "bagaimana", "kronologi")

# Function words that carry nothing of an affair (a short list: content words like "dana" or
# "proyek" must stay, they are what two accounts of one affair share).
_STOPWORD_TEXT = """
    yang dan di ke dari untuk dengan pada dalam ini itu adalah ialah oleh tidak tak akan sudah
    telah juga atau serta karena sebagai bahwa para tersebut saya kami kita ia dia beliau
    mereka ada secara agar supaya namun tetapi tapi lalu kemudian hal bisa dapat lebih sangat
    setiap saat ketika maka pun nya sang si se bagi hingga sampai sejak antara tentang terhadap
    kepada atas bawah jika kalau bila apabila masih belum pernah sedang lagi saja hanya yaitu
    yakni begitu demikian sebuah seorang sekitar kurang lebih sekali banyak sering selalu the
    of a an sehingga bersama diduga dugaan
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_PLACE_FILLER = frozenset(
    ["di", "ke", "pada", "dalam", "kantor", "lokasi", "tempat", "jl", "jalan"]
)

# --- amounts ---------------------------------------------------------------------------------

_UNITS = {
    "nol": 0, "satu": 1, "dua": 2, "tiga": 3, "empat": 4, "lima": 5, "enam": 6, "tujuh": 7,
    "delapan": 8, "sembilan": 9, "sepuluh": 10, "sebelas": 11, "seratus": 100,
}
_SCALES = {
    "ribu": 10**3, "rb": 10**3, "seribu": 10**3, "juta": 10**6, "jt": 10**6, "miliar": 10**9,
    "milyar": 10**9, "m": 10**9, "triliun": 10**12, "t": 10**12,
}
_NUMBER_WORDS = frozenset([*_UNITS, *_SCALES, "belas", "puluh", "ratus", "setengah"]) - {"m", "t"}
_DIGITS_RE = re.compile(
    r"(?:\brp\.?\s*)?(\d+(?:[.,]\d+)*)\s*(ribu|rb|juta|jt|miliar|milyar|triliun|m|t)?\b"
)
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("januari", "jan"), ("februari", "feb", "pebruari"), ("maret", "mar"),
            ("april", "apr"), ("mei",), ("juni", "jun"), ("juli", "jul"),
            ("agustus", "agu", "agt", "ags"), ("september", "sep", "sept"),
            ("oktober", "okt"), ("november", "nov", "nopember"), ("desember", "des"),
        ],
        start=1,
    )
    for name in names
}


def _canonical(value: Decimal) -> str:
    """An amount rounded to two significant digits: "148,5 juta" and "150 juta" meet."""
    if value <= 0:
        return "rp0"
    exponent = value.adjusted() - 1
    rounded = (value.scaleb(-exponent)).quantize(Decimal(1)).scaleb(exponent)
    return f"rp{int(rounded)}"


def _digits_value(number: str, scale: str | None) -> Decimal | None:
    """'1.500.000' (Indonesian thousands), '1,5' (Indonesian decimal), '1.5' (English)."""
    groups = re.split(r"[.,]", number)
    separators = re.findall(r"[.,]", number)
    try:
        if not separators:
            value = Decimal(number)
        elif len(set(separators)) == 1 and all(len(g) == 3 for g in groups[1:]) and (
            len(separators) > 1 or separators[0] == "." or scale is None
        ):
            value = Decimal("".join(groups))  # thousands separators
        else:
            # The last separator is the decimal point, the others group thousands.
            value = Decimal("".join(groups[:-1]) + "." + groups[-1])
    except InvalidOperation:
        return None
    return value * _SCALES[scale] if scale else value


def _words_value(words: list[str]) -> Decimal:
    total, small, last = Decimal(0), Decimal(0), Decimal(0)
    for word in words:
        if word in _UNITS:
            last = Decimal(_UNITS[word])
            small += last
        elif word == "belas":
            small += 10
            last = Decimal(0)
        elif word in ("puluh", "ratus"):
            factor = 10 if word == "puluh" else 100
            small += last * (factor - 1)
            last = Decimal(0)
        elif word == "setengah":
            small += Decimal("0.5")
        elif word == "seribu":
            total += 1000
        else:
            total += (small or 1) * _SCALES[word]
            small = last = Decimal(0)
    return total + small


def normalize_text(text: str) -> list[str]:
    """The words of a text, folded, with amounts made canonical and function words dropped."""
    folded = unicodedata.normalize("NFKC", text).casefold()

    def digits(match: re.Match[str]) -> str:
        value = _digits_value(match.group(1), match.group(2))
        # A bare number (a year, a count) stays a number; with "Rp" or a scale it is money.
        if value is None or (match.group(2) is None and not match.group(0).startswith("rp")):
            return match.group(0)
        return f" {_canonical(value)} "

    folded = _DIGITS_RE.sub(digits, folded)
    tokens: list[str] = []
    run: list[str] = []

    def flush() -> None:
        # A run of number words with a scale ("seratus lima puluh juta") is an amount.
        if run and any(word in _SCALES for word in run):
            tokens.append(_canonical(_words_value(run)))
        else:
            tokens.extend(word for word in run if word not in STOPWORDS)
        run.clear()

    for word in _WORD_RE.findall(folded):
        if word in _NUMBER_WORDS:
            run.append(word)
            continue
        flush()
        if word in ("rp", "rupiah", "sebesar", "senilai", "sejumlah", "kurang"):
            continue
        if word not in STOPWORDS:
            tokens.append(word)
    flush()
    return tokens


def text_tokens(text: str) -> set[str]:
    """Unigrams and bigrams of the normalised narrative."""
    words = normalize_text(text)
    grams = {f"w:{word}" for word in words}
    grams.update(f"b:{a} {b}" for a, b in itertools.pairwise(words))
    return grams


def amount_tokens(text: str) -> set[str]:
    return {f"a:{token}" for token in normalize_text(text) if re.fullmatch(r"rp\d+", token)}


# Positions and units: one pelapor names the terlapor with the post ("Hendra Siregar, Kepala
# Dinas PU"), another without; the name is what identifies. Kept when nothing else is left
# (a terlapor described by the post alone).
_POSITION_TEXT = """
    kepala kadis kabid kasi kasubag kasubbag kabag sekretaris sekda dinas bidang bagian seksi
    sub subbagian camat lurah desa kades bendahara staf pegawai pejabat pembuat komitmen ppk
    pptk direktur dirut wakil ketua anggota panitia pengadaan pokja pu umum kantor badan kota
    kabupaten provinsi wali walikota bupati gubernur kepolisian polisi kapolsek kapolres
    jaksa kajari kajati hakim inspektur inspektorat plt plh kasatker satker
"""
_POSITION_WORDS = frozenset(_POSITION_TEXT.split())


def party_tokens(text: str) -> set[str]:
    words = [word for word in normalize_party(text).split() if word not in STOPWORDS]
    names = [word for word in words if word not in _POSITION_WORDS] or words
    return {f"p:{word}" for word in names}


def place_tokens(text: str) -> set[str]:
    return {
        f"l:{word}" for word in normalize_text(text) if word not in _PLACE_FILLER
    }


def period_tokens(text: str) -> set[str]:
    """Years, and year-months when a month is named: "Maret 2025" -> y2025, 2025-03."""
    words = _WORD_RE.findall(unicodedata.normalize("NFKC", text).casefold())
    years = [w for w in words if re.fullmatch(r"(19|20)\d\d", w)]
    months = [_MONTHS[w] for w in words if w in _MONTHS]
    months += [int(m) for m in re.findall(r"\b(\d{1,2})[/-](?:19|20)\d\d\b", text)]
    tokens = {f"y:{year}" for year in years}
    tokens.update(f"m:{year}-{month:02d}" for year in years for month in months if 0 < month < 13)
    return tokens


def report_tokens(answers: Mapping[str, object]) -> dict[str, set[str]]:
    """Each part's token set of one report's answers."""

    def get(key: str) -> str:
        value = answers.get(key)
        return "" if value is None else str(value)

    narrative = " ".join(get(key) for key in TEXT_FIELDS)
    amounts = amount_tokens(get("berapa")) or amount_tokens(narrative)
    return {
        "text": text_tokens(narrative),
        "siapa": party_tokens(get("siapa")),
        "dimana": place_tokens(get("dimana")),
        "berapa": amounts,
        "kapan": period_tokens(get("kapan")),
    }


# --- the key and the sketch ------------------------------------------------------------------


def key_id(key: bytes) -> str:
    """Names the key (to tell sketches of different keys apart) without saying anything of it."""
    return hmac.new(key, b"peluit-sketch-key-id", hashlib.sha256).hexdigest()[:16]


def signatures(key: bytes, answers: Mapping[str, object]) -> dict[str, tuple[int, ...]]:
    """The keyed MinHash signatures of one report; an empty part gives an empty signature."""
    out: dict[str, tuple[int, ...]] = {}
    for part, tokens in report_tokens(answers).items():
        if not tokens:
            out[part] = ()
            continue
        minhash = MinHash(num_perm=PARTS[part], seed=1)
        # The permutations are public (seed 1); the key makes the tokens unguessable.
        minhash.update_batch(
            [
                hmac.new(key, f"{part}\x00{token}".encode(), hashlib.sha256).digest()
                for token in sorted(tokens)
            ]
        )
        out[part] = tuple(int(value) for value in minhash.hashvalues)
    return out


def sketch_document(key: bytes, reports: Mapping[str, Mapping[str, object]]) -> SketchDocument:
    """Sketches of reports keyed by registration number: numbers and signatures, no text."""
    return SketchDocument(
        key_id(key),
        tuple(Sketch(number, signatures(key, reports[number])) for number in sorted(reports)),
    )


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_file_text(key: bytes) -> str:
    return f"{KEY_FILE_HEADER}\n{key.hex()}\n"


def parse_key_file(text: str) -> bytes:
    lines = text.strip().splitlines()
    if len(lines) != 2 or lines[0].strip() != KEY_FILE_HEADER:
        raise ValueError(f"not a sketch key file (its first line must be {KEY_FILE_HEADER})")
    try:
        key = bytes.fromhex(lines[1].strip())
    except ValueError as exc:
        raise ValueError("the sketch key file's key is not hex") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"a sketch key is {KEY_BYTES} bytes")
    return key


def write_key_file(path: Path, key: bytes) -> None:
    """Readable by its owner only: whoever holds the key can test guesses against sketches."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key_file_text(key))
    os.chmod(path, 0o600)


def read_key_file(path: Path) -> bytes:
    return parse_key_file(path.read_text(encoding="ascii"))


def reasons(parts: Mapping[str, float | None]) -> Iterable[str]:
    """Which parts matched, for the investigator reading a pair on the workstation."""
    for part, value in parts.items():
        if value is not None and value > 0:
            yield f"{part} {value:.2f}"
