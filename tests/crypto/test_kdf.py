import pytest

from crypto.kdf import KdfParams, derive_source_secrets

CHEAP = KdfParams(time_cost=1, memory_kib=8)
ID_PEPPER, REPLY_PEPPER = b"i" * 32, b"r" * 32


def derive(codename: str, params: KdfParams = CHEAP, **peppers: bytes):  # type: ignore[no-untyped-def]
    peppers.setdefault("source_id_pepper", ID_PEPPER)
    peppers.setdefault("reply_key_pepper", REPLY_PEPPER)
    return derive_source_secrets(codename, params=params, **peppers)


def test_same_codename_same_secrets_and_the_two_differ() -> None:
    a, b = derive("meja kursi lampu"), derive("meja kursi lampu")
    assert a == b
    assert len(a.source_id) == 64 and int(a.source_id, 16) >= 0
    assert a.source_id != a.reply_passphrase


def test_other_codename_or_pepper_changes_everything() -> None:
    base = derive("meja kursi lampu")
    assert derive("meja kursi lampa").source_id != base.source_id
    other = derive("meja kursi lampu", source_id_pepper=b"x" * 32)
    assert other.source_id != base.source_id
    # The reply passphrase depends only on its own pepper: leaking the id pepper with the
    # database tells nothing about the passphrase.
    assert other.reply_passphrase == base.reply_passphrase


def test_cost_parameters_matter() -> None:
    costlier = derive("meja", KdfParams(time_cost=2, memory_kib=8))
    assert costlier.source_id != derive("meja").source_id


def test_production_cost_runs() -> None:
    # One derivation at the production default, so the default is known to be accepted.
    assert len(derive("meja kursi", KdfParams()).source_id) == 64


def test_refuses_empty_codename_and_shared_pepper() -> None:
    with pytest.raises(ValueError):
        derive("")
    with pytest.raises(ValueError):
        derive("meja", source_id_pepper=b"p" * 32, reply_key_pepper=b"p" * 32)


def test_repr_hides_the_passphrase() -> None:
    secrets = derive("meja kursi lampu")
    assert secrets.reply_passphrase not in repr(secrets)
