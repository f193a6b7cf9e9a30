"""Investigator passwords: argon2id hashing, generated passphrases and the policy for chosen ones.

argon2id (argon2-cffi's PasswordHasher) with costs from :class:`PasswordParams`; a hash made
with other costs is replaced at the next successful login. An account gets a generated diceware
passphrase unless the admin sets one; a chosen password must pass :func:`check_password_policy`:
at least 14 characters, not containing the username, not made only of common words, digits and
symbols, and not a run of the keyboard or alphabet. Length beats composition rules (NIST SP
800-63B), so there are none of those.
"""

from __future__ import annotations

import functools
import re
import secrets
import unicodedata

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from crypto.codenames import load_wordlist
from wbs.accounts.settings import (
    DEFAULT_SETTINGS,
    PasswordParams,
)

MIN_PASSWORD_LENGTH = 14
# Bounds the work of hashing a pasted novel; far above any passphrase.
MAX_PASSWORD_LENGTH = 1024
MIN_DISTINCT_CHARACTERS = 6
PASSPHRASE_WORDS = 7

# Words that make up the passwords people choose when told "at least 14 characters":
# the classics, Indonesian favourites, and this system's own vocabulary. A password made only
# of these (and digits and symbols) is refused: "Password2024!!!", "IndonesiaMerdeka45".
_COMMON_WORDS: frozenset[str] = frozenset(
    """
    password passwd passw pass word admin administrator root user login welcome letmein
    iloveyou love secret master monkey dragon sunshine princess football baseball qwerty
    katasandi sandi rahasia sayang cinta indonesia merdeka jakarta bismillah alhamdulillah
    allah garuda pancasila bangsa negara rakyat bersatu selamat datang masuk pengguna
    peluit wbs kpk korupsi lapor pengaduan inspektorat apip verifikator penyidik pemantau
    instansi kementerian pemerintah pemkot pemkab pemprov whistle whistleblowing blower
    abc xyz asd zxc qwe qaz wsx
    """.split()  # noqa: SIM905 -- a word list reads and diffs better as plain text
)
# Runs that keyboards and alphabets make easy to type: any part of these is refused as a whole.
_SEQUENCES: tuple[str, ...] = (
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm",
    "01234567890123456789",
    "09876543210987654321",
    "zyxwvutsrqponmlkjihgfedcbazyxwvutsrqponmlkjihgfedcba",
)


def normalize_password(password: str) -> str:
    # NFKC: the same password typed on another keyboard or OS (composed vs decomposed
    # accents, full-width digits) must hash the same.
    return unicodedata.normalize("NFKC", password)


@functools.cache
def _hasher(params: PasswordParams) -> PasswordHasher:
    return PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        type=Type.ID,
    )


@functools.cache
def dummy_hash(params: PasswordParams) -> str:
    # Verified against when there is no account to check, so that every checked attempt costs
    # the same time. Its password is random and discarded: nothing ever matches it.
    return _hasher(params).hash(secrets.token_urlsafe(32))


def hash_password(password: str, params: PasswordParams = DEFAULT_SETTINGS.passwords) -> str:
    return _hasher(params).hash(normalize_password(password))


def verify_password(
    password_hash: str, password: str, params: PasswordParams = DEFAULT_SETTINGS.passwords
) -> bool:
    """Whether ``password`` matches; a damaged hash is a mismatch, never an exception."""
    try:
        return _hasher(params).verify(password_hash, normalize_password(password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str, params: PasswordParams = DEFAULT_SETTINGS.passwords) -> bool:
    try:
        return _hasher(params).check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def generate_passphrase(words: int = PASSPHRASE_WORDS, language: str = "en") -> str:
    """Diceware: ``words`` words drawn with :mod:`secrets` from a codename word list.

    Seven words of the 7,772-word English list are 90 bits, the codenames' own floor.
    """
    if words < 5:
        raise ValueError("a passphrase needs at least five words")
    wordlist = load_wordlist(language)
    return " ".join(secrets.choice(wordlist) for _ in range(words))


def _made_of_common_words(letters: str) -> bool:
    # Word break over the common words: can ``letters`` be cut entirely into them?
    reachable = [True] + [False] * len(letters)
    for end in range(1, len(letters) + 1):
        reachable[end] = any(
            reachable[start] and letters[start:end] in _COMMON_WORDS
            for start in range(max(0, end - 20), end)
        )
    return reachable[-1]


def check_password_policy(password: str, username: str = "") -> list[str]:
    """What is wrong with a password an investigator or admin chose; empty when it is fine.

    The problems are sentences in Indonesian, to be shown as they are.
    """
    password = normalize_password(password)
    problems: list[str] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"Kata sandi minimal {MIN_PASSWORD_LENGTH} karakter.")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"Kata sandi maksimal {MAX_PASSWORD_LENGTH} karakter.")
    folded = password.casefold()
    if len(username) >= 3 and username.casefold() in folded:
        problems.append("Kata sandi tidak boleh memuat nama pengguna.")
    if len(set(folded)) < MIN_DISTINCT_CHARACTERS:
        problems.append("Kata sandi memakai terlalu sedikit karakter yang berbeda.")
    letters = re.sub(r"[^a-z]", "", folded)
    alnum = re.sub(r"[^a-z0-9]", "", folded)
    if (
        _made_of_common_words(letters)
        or any(alnum in run for run in _SEQUENCES)
        or any(letters in run for run in _SEQUENCES)
    ):
        problems.append("Kata sandi terlalu umum atau mudah ditebak.")
    return problems


def generated_password(username: str) -> str:
    # A generated passphrase could, once in a long while, contain a short username.
    while True:
        passphrase = generate_passphrase()
        if not check_password_policy(passphrase, username):
            return passphrase
