"""The whole loop: the reporter sends, the server exports, the workstation decrypts and
answers offline, the server stores the answer as it is, and the reporter reads it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import DemoInstance
from tests.workstation.helpers import (
    TENANT,
    export,
    kill_agent,
    make_case,
    run,
    workstation_home,
)
from wbs.casework import Refusal, accept_encrypted_reply
from wbs.context import Context
from wbs.models import Case, Reply
from wbs.sources import source_replies
from wbs.tenants import current_recipients, get_tenant

ANSWER = "Terima kasih. Kami sudah memanggil pihak pengadaan untuk klarifikasi."


def test_reply_from_the_workstation_reaches_the_reporter(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    loop = make_case(demo, big_size=1_200_000)
    home = workstation_home(demo, ws_home)
    assert run(home, "import", str(export(demo, [loop.case_id], tmp_path / "b.zip"))).exit_code == 0
    decrypted = run(home, "decrypt", loop.registration_number)
    assert decrypted.exit_code == 0, decrypted.output
    folder = home / "cases" / TENANT / loop.registration_number / "decrypted"
    assert (folder / "passwd").read_bytes() == loop.files["big"]

    replied = run(home, "reply", loop.registration_number, "--message", ANSWER)
    assert replied.exit_code == 0, replied.output
    ciphertext = next((home / "outbox").iterdir()).read_bytes()
    kill_agent(home)

    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        case = session.get(Case, loop.case_id)
        assert case is not None
        reply = accept_encrypted_reply(Context(inst, session, tenant), case, ciphertext)
        # Stored as it came: the server never saw the plaintext.
        assert inst.store.open(reply.store_path).read() == ciphertext
        ctx = Context(inst, session, tenant)
        texts = [text for _, text in source_replies(ctx, loop.secrets, case)]
    assert texts[-1] == ANSWER


def _encrypt_to(home: Path, recipients: list[str], data: bytes) -> bytes:
    args = ["gpg", "--homedir", str(home), "--batch", "--trust-model", "always", "--encrypt"]
    for recipient in recipients:
        args += ["--recipient", recipient]
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout


def test_a_reply_the_reporter_or_the_instansi_could_not_read_is_refused(
    demo: DemoInstance, tmp_path: Path
) -> None:
    inst = demo.instance
    loop = make_case(demo, big_size=10)
    with inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        case = session.get(Case, loop.case_id)
        assert case is not None
        tenant_keys = current_recipients(session, tenant)
        reply_key = tmp_path / "reply.asc"
        reply_key.write_text(case.source.reply_public_key)
        home = demo.workstation
        only_tenant = _encrypt_to(home, tenant_keys, b"x")
        only_source = subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--trust-model", "always", "--encrypt",
             "--recipient-file", str(reply_key)],
            input=b"x", capture_output=True, check=True,
        ).stdout
        signed_only = subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--store"],
            input=b"plaintext", capture_output=True, check=True,
        ).stdout
        hidden = subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--trust-model", "always", "--encrypt",
             "--throw-keyids", "--recipient-file", str(reply_key),
             *[arg for fpr in tenant_keys for arg in ("--recipient", fpr)]],
            input=b"x", capture_output=True, check=True,
        ).stdout
        before = len(case.replies)
        refusals = {
            b"": "between",
            b"not openpgp at all": "not an encrypted reply",
            signed_only: "not an encrypted reply",
            only_tenant: "reply key",
            only_source: "every current key",
            hidden: "hidden recipients",
        }
        for data, reason in refusals.items():
            with pytest.raises(Refusal, match=reason) as refused:
                accept_encrypted_reply(Context(inst, session, tenant), case, data)
            assert refused.value.code == "reply_refused"
        session.refresh(case)
        assert len(case.replies) == before


def test_the_same_encrypted_reply_uploaded_twice_is_refused_the_second_time(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    loop = make_case(demo, big_size=10)
    home = workstation_home(demo, ws_home)
    assert run(home, "import", str(export(demo, [loop.case_id], tmp_path / "b.zip"))).exit_code == 0
    assert run(home, "reply", loop.registration_number, "--message", ANSWER).exit_code == 0
    ciphertext = next((home / "outbox").iterdir()).read_bytes()
    kill_agent(home)

    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        case = session.get(Case, loop.case_id)
        assert case is not None
        accept_encrypted_reply(Context(inst, session, tenant), case, ciphertext)
        session.refresh(case)
        before = len(case.replies)
        with pytest.raises(Refusal, match="already a reply of this case") as refused:
            accept_encrypted_reply(Context(inst, session, tenant), case, ciphertext)
        assert refused.value.code == "reply_refused"
        # The reason names the file's shape, never its content.
        assert ANSWER not in str(refused.value)
        session.refresh(case)
        assert len(case.replies) == before


def test_a_bundle_with_two_items_of_one_hash_imports(
    demo: DemoInstance, ws_home: Path, tmp_path: Path
) -> None:
    # Servers before the refusal above stored a reply uploaded twice as two replies; their
    # bundles hold two items with one hash, and the workstation must still import them.
    loop = make_case(demo, big_size=10)
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        case = session.get(Case, loop.case_id)
        assert case is not None
        first = case.replies[0]
        data = inst.store.open(first.store_path).read()
        copy_path = inst.store.new_name(tenant.slug)
        with inst.store.create(copy_path) as out:
            out.write(data)
        session.add(
            Reply(case=case, tenant_id=tenant.id, investigator_id=first.investigator_id,
                  store_path=copy_path, size=len(data))
        )
        session.commit()
    home = workstation_home(demo, ws_home)
    bundle = export(demo, [loop.case_id], tmp_path / "twice.zip")

    imported = run(home, "import", str(bundle))
    assert imported.exit_code == 0, imported.output
    assert not any(home.glob(".import-*"))
    decrypted = run(home, "decrypt", loop.registration_number)
    assert decrypted.exit_code == 0, decrypted.output
    again = run(home, "import", str(bundle))
    assert again.exit_code == 0, again.output
