"""The whole loop with real gpg: server export -> import -> decrypt -> read -> reply."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from crypto.replykeys import decrypt_reply
from tests.conftest import DemoInstance
from tests.workstation.helpers import (
    MESSAGE,
    REPLY,
    export,
    kill_agent,
    make_case,
    run,
    workstation_home,
)
from wbs.context import Context
from wbs.models import Source


def _state(home: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((home / "state.json").read_text(encoding="utf-8"))
    return state


def test_import_decrypt_read_reply(demo: DemoInstance, ws_home: Path, tmp_path: Path) -> None:
    loop = make_case(demo)
    bundle = export(demo, [loop.case_id], tmp_path / "bundle.zip")
    home = workstation_home(demo, ws_home)
    reg = loop.registration_number

    imported = run(home, "import", str(bundle))
    assert imported.exit_code == 0, imported.output
    assert demo.instance.signing.fingerprint in imported.output  # shown for the TOFU check
    assert _state(home)["signer"] == demo.instance.signing.fingerprint

    read = run(home, "read", reg)
    assert read.exit_code == 0, read.output
    # The form answers and the message are shown; the terminal gets text, not markup.
    assert "Bapak Ahmad Fauzi, S.E." in read.output
    assert MESSAGE in read.output
    assert REPLY in read.output

    decrypted = home / "cases" / "pemprov-sumsel" / reg / "decrypted"
    names = sorted(p.name for p in decrypted.iterdir())
    # Original names, made safe: no path part, no bidi override, nothing hidden.
    assert "passwd" in names
    assert "laporanfdp.exe" in names
    assert not any(name.startswith(".") for name in names)
    assert (decrypted / "passwd").read_bytes() == loop.files["big"]
    assert (decrypted / "laporanfdp.exe").read_bytes() == loop.files["small"]
    assert not (home / "etc").exists()

    page = (home / "cases" / "pemprov-sumsel" / reg / "case.html").read_text(encoding="utf-8")
    assert "default-src 'none'" in page
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the message, escaped
    assert "&lt;b&gt;RSUD&lt;/b&gt;" in page  # an answer, escaped
    assert 'href="decrypted/passwd"' in page
    assert "http:" not in page and "https:" not in page
    # Indonesian labels and WIB days, never the raw codes, booleans or ISO times.
    assert "<th>Status</th><td>Baru</td>" in page
    assert "<th>Kategori</th><td>Suap-menyuap</td>" in page
    assert "<th>Area MCP</th><td>Pengadaan Barang dan Jasa</td>" in page
    assert "<th>Diteruskan ke KPK</th><td>tidak</td>" in page
    assert "Pengaduan masuk" in page and "Formulir pengaduan" in page
    assert ">suap_menyuap<" not in page and ">baru<" not in page and "False" not in page
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", page), "an ISO time is shown"
    assert re.search(r"<th>Diterima</th><td>\d{1,2} [A-Z][a-z]+ \d{4}</td>", page)

    # Decrypting again does nothing new and overwrites nothing.
    again = run(home, "decrypt", reg)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in decrypted.iterdir()) == names

    replied = run(home, "reply", reg, "--message", "Terima kasih, kami tindak lanjuti.")
    assert replied.exit_code == 0, replied.output
    outbox = list((home / "outbox").iterdir())
    assert len(outbox) == 1
    ciphertext = outbox[0].read_bytes()
    assert b"Terima kasih" not in ciphertext
    # The pelapor reads it with their codename-derived passphrase...
    with demo.instance.sessions() as session:
        source = session.get(Source, loop.secrets.source_id)
        assert source is not None
        secret_key = source.reply_secret_key
    plain = decrypt_reply(secret_key, loop.secrets.reply_passphrase, ciphertext)
    assert plain == b"Terima kasih, kami tindak lanjuti."
    # ...and the instansi's key reads it too, so the case history stays readable.
    assert demo.decrypt(ciphertext) == plain


def test_reimport_adds_only_new_items(demo: DemoInstance, ws_home: Path, tmp_path: Path) -> None:
    from wbs.intake import Intake
    from wbs.models import Case
    from wbs.tenants import get_tenant

    loop = make_case(demo, big_size=2000)
    home = workstation_home(demo, ws_home)
    first = export(demo, [loop.case_id], tmp_path / "first.zip")
    assert run(home, "import", str(first)).exit_code == 0
    same = run(home, "import", str(first))
    assert same.exit_code == 0, same.output
    assert "0 new item(s), 5 already here" in same.output

    with demo.instance.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        case = session.get(Case, loop.case_id)
        assert case is not None
        ctx = Context(demo.instance, session, tenant)
        Intake(ctx, loop.secrets.source_id, to_kpk=False).follow_up(
            case, "Satu pesan lagi."
        )
    newer = export(demo, [loop.case_id], tmp_path / "newer.zip")
    result = run(home, "import", str(newer))
    assert result.exit_code == 0, result.output
    assert "1 new item(s), 5 already here" in result.output
    items = next(iter(_state(home)["cases"].values()))["items"]
    assert len(items) == 6
    assert run(home, "decrypt", loop.registration_number).exit_code == 0


def test_reply_key_and_recipient_choice(demo: DemoInstance, ws_home: Path, tmp_path: Path) -> None:
    loop = make_case(demo, big_size=10)
    home = workstation_home(demo, ws_home)
    assert run(home, "import", str(export(demo, [loop.case_id], tmp_path / "b.zip"))).exit_code == 0
    bad = run(home, "reply", loop.registration_number, "--message", "x", "--recipient", "ABC")
    assert bad.exit_code == 1
    assert "fingerprint" in bad.output
    empty = run(home, "reply", loop.registration_number, input="   \n")
    assert empty.exit_code == 1
    assert "empty" in empty.output
    from_stdin = run(home, "reply", loop.registration_number, input="Dari stdin.\n")
    assert from_stdin.exit_code == 0, from_stdin.output
    packets = subprocess.run(
        ["gpg", "--homedir", str(home / "gnupg"), "--batch", "--list-packets",
         str(next((home / "outbox").iterdir()))],
        capture_output=True, check=False, text=True,
    ).stdout
    assert packets.count(":pubkey enc packet:") == 2  # the pelapor's key and the instansi's
    kill_agent(home)
