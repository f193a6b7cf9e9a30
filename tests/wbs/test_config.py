import datetime as dt
import os
from pathlib import Path

import pytest

from wbs.config import ConfigError, generate_secrets, load_config, load_secrets


def test_defaults_live_under_the_instance_folder(tmp_path: Path) -> None:
    cfg = load_config({}, instance_dir=tmp_path)
    assert cfg.database_url == f"sqlite:///{tmp_path / 'peluit.db'}"
    assert cfg.store_dir == tmp_path / "store"
    assert cfg.first_response_days == 7
    assert cfg.max_upload_bytes == 500 * 1024 * 1024
    assert cfg.kdf.memory_kib == 64 * 1024 and cfg.kdf.time_cost == 3


def test_instance_folder_from_environment(tmp_path: Path) -> None:
    cfg = load_config({"PELUIT_INSTANCE": str(tmp_path / "x")})
    assert cfg.instance_dir == tmp_path / "x"


def test_toml_then_environment_take_precedence(tmp_path: Path) -> None:
    (tmp_path / "peluit.toml").write_text(
        'first_response_days = 3\nmax_upload_bytes = "2G"\n'
        'cuti_bersama = ["2026-12-24", "2026-03-20"]\nstore_dir = "ciphertext"\n'
        "[kdf]\ntime_cost = 4\n"
    )
    cfg = load_config({"PELUIT_FIRST_RESPONSE_DAYS": "5"}, instance_dir=tmp_path)
    assert cfg.first_response_days == 5
    assert cfg.max_upload_bytes == 2 * 1024**3
    assert cfg.cuti_bersama == (dt.date(2026, 3, 20), dt.date(2026, 12, 24))
    assert cfg.store_dir == tmp_path / "ciphertext"
    assert cfg.kdf.time_cost == 4


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PELUIT_FIRST_RESPONSE_DAYS": "seven"}, "PELUIT_FIRST_RESPONSE_DAYS"),
        ({"PELUIT_FIRST_RESPONSE_DAYS": "0"}, "PELUIT_FIRST_RESPONSE_DAYS"),
        ({"PELUIT_MAX_UPLOAD_BYTES": "lots"}, "PELUIT_MAX_UPLOAD_BYTES"),
        ({"PELUIT_DATABASE_URL": "mysql://x/y"}, "PELUIT_DATABASE_URL"),
        ({"PELUIT_CUTI_BERSAMA": "2026-13-01"}, "PELUIT_CUTI_BERSAMA"),
        ({"PELUIT_CODENAME_LANGUAGE": "jv"}, "PELUIT_CODENAME_LANGUAGE"),
        ({"PELUIT_KDF_MEMORY_KIB": "1"}, "PELUIT_KDF_MEMORY_KIB"),
        ({"PELUIT_NO_SUCH_THING": "1"}, "PELUIT_NO_SUCH_THING"),
    ],
)
def test_bad_value_names_the_setting(tmp_path: Path, env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_config(env, instance_dir=tmp_path)


@pytest.mark.parametrize("raw", ["²", "٣", "9" * 5000, "--5"])
def test_a_number_int_would_refuse_is_refused_in_words(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match=r"PELUIT_FIRST_RESPONSE_DAYS.*expected a whole number"):
        load_config({"PELUIT_FIRST_RESPONSE_DAYS": raw}, instance_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"PELUIT_MAX_UPLOAD_BYTES.*expected a positive size"):
        load_config({"PELUIT_MAX_UPLOAD_BYTES": raw}, instance_dir=tmp_path)


def test_bad_toml_names_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "peluit.toml").write_text("[kdf]\ntime_cost = 0\n")
    with pytest.raises(ConfigError, match=r"kdf_time_cost in .*peluit.toml"):
        load_config({}, instance_dir=tmp_path)
    (tmp_path / "peluit.toml").write_text("first_response_days = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config({}, instance_dir=tmp_path)


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load_config({}, instance_dir=tmp_path)
    with pytest.raises(AttributeError):
        cfg.first_response_days = 1  # type: ignore[misc]


def test_secrets_are_generated_private_and_kept(tmp_path: Path) -> None:
    first = generate_secrets(tmp_path)
    for path in (tmp_path / "secrets").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
    assert len({first.source_id_pepper, first.reply_key_pepper, first.session_key}) == 3
    again = generate_secrets(tmp_path)
    assert again == first
    assert "hidden" in repr(first) and first.session_key.hex() not in repr(first)


def test_missing_or_exposed_secret_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="peluit init"):
        load_secrets(tmp_path)
    generate_secrets(tmp_path)
    os.chmod(tmp_path / "secrets" / "session_key", 0o644)
    with pytest.raises(ConfigError, match=r"session_key.*0600"):
        load_secrets(tmp_path)


def test_store_publication_interval_divides_the_day(tmp_path: Path) -> None:
    assert load_config({}, instance_dir=tmp_path).store_publish_minutes == 60
    for good in ("15", "30", "120", "1440"):
        cfg = load_config({"PELUIT_STORE_PUBLISH_MINUTES": good}, instance_dir=tmp_path)
        assert cfg.store_publish_minutes == int(good)
    for bad, why in (("50", "divide a day"), ("2", "at least 5"), ("2880", "divide a day"),
                     ("0", "at least 1"), ("hourly", "whole number")):
        with pytest.raises(ConfigError, match=f"PELUIT_STORE_PUBLISH_MINUTES.*{why}"):
            load_config({"PELUIT_STORE_PUBLISH_MINUTES": bad}, instance_dir=tmp_path)


def test_the_smtp_relay_from_toml_and_its_password_never_in_repr(tmp_path: Path) -> None:
    (tmp_path / "peluit.toml").write_text(
        '[smtp]\nhost = "mail.example.go.id"\nport = 465\nsecurity = "tls"\n'
        'user = "peluit"\npassword = " rahasia relay "\nfrom = "peluit@example.go.id"\n'
    )
    cfg = load_config({"PELUIT_SMTP_TIMEOUT": "10"}, instance_dir=tmp_path)
    assert (cfg.smtp_host, cfg.smtp_port, cfg.smtp_security) == ("mail.example.go.id", 465, "tls")
    assert (cfg.smtp_user, cfg.smtp_from, cfg.smtp_timeout) == (
        "peluit", "peluit@example.go.id", 10,
    )
    assert cfg.smtp_password == " rahasia relay "  # as written
    assert "rahasia" not in repr(cfg)
    assert load_config({}, instance_dir=tmp_path / "none").smtp_host is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PELUIT_SMTP_PORT", "70000"),
        ("PELUIT_SMTP_PORT", "0"),
        ("PELUIT_SMTP_SECURITY", "ssl"),
        ("PELUIT_SMTP_FROM", "peluit@example.go.id\nBcc: x@example.com"),
        ("PELUIT_SMTP_FROM", "Peluit <peluit@example.go.id>"),
        ("PELUIT_SMTP_HOST", " "),
    ],
)
def test_a_bad_smtp_setting_names_the_setting(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({name: value}, instance_dir=tmp_path)
