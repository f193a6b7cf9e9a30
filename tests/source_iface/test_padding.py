"""Sizes at rest, through the real source interface: what a seized server learns of a file's
size is its PADMÉ bucket, and the pelapor still reads padded replies in the browser."""

from __future__ import annotations

import html
import os
import re

import sqlalchemy as sa

from crypto.encrypt import encrypt_bytes
from crypto.padding import FRAMING_NONE, FRAMING_PADME, TRAILER_SIZE, frame, framed_size
from crypto.replykeys import encrypt_reply
from tests.source_iface.conftest import Demo, Reporter
from tests.support import decrypt_item
from wbs.casework import post_reply
from wbs.context import Context
from wbs.models import Case, Reply, Submission, Tenant
from wbs.tenants import current_recipients

# Two exact sizes of one bucket (1,015,808 framed bytes), and the first size of the next.
SMALL = 1_000_001
LARGE = framed_size(SMALL) - TRAILER_SIZE
NEXT = LARGE + 1


def _send(
    demo: Demo, reporter: Reporter, files: list[tuple[str, bytes]]
) -> tuple[int, list[Submission]]:
    reporter.new_codename()
    sent = reporter.send_report(files=files)
    assert sent.status_code == 302, sent.get_data(as_text=True)[:500]
    with demo.inst.sessions() as session:
        case_id = int(session.scalar(sa.select(sa.func.max(Case.id))) or 0)
        rows = list(
            session.scalars(
                sa.select(Submission).where(Submission.case_id == case_id).order_by(Submission.id)
            )
        )
        session.expunge_all()
    return case_id, rows


def _bucket_ciphertext_size(demo: Demo, tenant_id: int, length: int) -> int:
    """The size gpg makes of a bucket of ``length`` framed bytes for this tenant's keys."""
    with demo.inst.sessions() as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        recipients = current_recipients(session, tenant)
    return len(encrypt_bytes(demo.inst.keyring, recipients, bytes(length)))


def test_stored_sizes_are_the_buckets_not_the_files(demo: Demo, reporter: Reporter) -> None:
    assert SMALL < LARGE and framed_size(SMALL) == framed_size(LARGE) < framed_size(NEXT)
    files = {
        "a.bin": os.urandom(SMALL),
        # A long name, which used to make the ciphertext longer by as many bytes.
        "laporan keuangan dinas kesehatan 2025 versi akhir.bin": os.urandom(LARGE),
        "c.bin": os.urandom(NEXT),
    }
    _case_id, rows = _send(demo, reporter, list(files.items()))
    by_path = {row.store_path: row for row in rows}
    sizes: dict[str, int] = {}
    for path, row in by_path.items():
        data, name = decrypt_item(demo.workstation, demo.inst.store.resolve(path))
        assert row.framing == FRAMING_PADME
        # The database and the file agree, and say the padded size only.
        assert row.size == demo.inst.store.size(path)
        if name in files:
            assert data == files[name]
            sizes[name] = row.size
    assert len(sizes) == 3
    small, large, after = sizes.values()
    # Two different exact sizes of one bucket: one stored size, the bucket's ciphertext.
    assert small == large == _bucket_ciphertext_size(demo, rows[0].tenant_id, framed_size(SMALL))
    assert after == _bucket_ciphertext_size(demo, rows[0].tenant_id, framed_size(NEXT)) > large
    # What the file would have been unpadded: exactly its size plus gpg's overhead.
    with demo.inst.sessions() as session:
        tenant = session.get(Tenant, rows[0].tenant_id)
        assert tenant is not None
        unpadded = len(
            encrypt_bytes(demo.inst.keyring, current_recipients(session, tenant), files["a.bin"])
        )
    assert small not in (unpadded, unpadded + len("a.bin"))
    assert (small - unpadded) / SMALL < 0.12


def test_form_and_short_follow_ups_share_one_size(demo: Demo, reporter: Reporter) -> None:
    case_id, rows = _send(demo, reporter, [])
    (form,) = rows
    number = _number(demo, case_id)
    assert reporter.send_follow_up(number, "Ya.").status_code == 302
    assert reporter.send_follow_up(number, "Saksi " * 500).status_code == 302
    with demo.inst.sessions() as session:
        sizes = session.scalars(
            sa.select(Submission.size).where(Submission.case_id == case_id)
        ).all()
    # The guided report, a one-word message and a page of text: one size on disk.
    assert len(sizes) == 3 and set(sizes) == {form.size}


def _number(demo: Demo, case_id: int) -> str:
    with demo.inst.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.registration_number


def _replies_page(reporter: Reporter) -> str:
    response = reporter.get("/pengaduan")
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def _store_reply(demo: Demo, case_id: int, ciphertext: bytes, framing: str) -> None:
    """A reply row as an older server (unpadded) or a broken uploader left it."""
    with demo.inst.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        tenant = session.get(Tenant, case.tenant_id)
        assert tenant is not None
        path = demo.inst.store.new_name(tenant.slug)
        with demo.inst.store.create(path) as out:
            out.write(ciphertext)
        session.add(Reply(case=case, tenant_id=case.tenant_id, store_path=path,
                          size=len(ciphertext), framing=framing))
        session.commit()


def test_the_pelapor_reads_padded_and_old_replies_and_a_bad_frame_breaks_nothing(
    demo: Demo, reporter: Reporter
) -> None:
    case_id, _rows = _send(demo, reporter, [])
    with demo.inst.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        tenant = session.get(Tenant, case.tenant_id)
        assert tenant is not None
        recipients = current_recipients(session, tenant)
        public = case.source.reply_public_key
        padded = post_reply(Context(demo.inst, session, tenant), case, "Jawaban berpadding.")
        assert padded.framing == FRAMING_PADME
    old = encrypt_reply(demo.inst.keyring, recipients, public, b"Jawaban lama.",
                        framing=FRAMING_NONE)
    _store_reply(demo, case_id, old, FRAMING_NONE)
    # Encrypted to the right keys, recorded as padded, but its frame has nonzero padding.
    broken = bytearray(frame(b"Jawaban rusak."))
    broken[20] = 1
    _store_reply(demo, case_id,
                 encrypt_reply(demo.inst.keyring, recipients, public, bytes(broken),
                               framing=FRAMING_NONE),
                 FRAMING_PADME)
    page = _replies_page(reporter)
    assert "Jawaban berpadding." in page and "Jawaban lama." in page
    # Refused, not shown half-stripped: no frame bytes, no trailer magic, no error page.
    assert "Jawaban rusak" not in page and "peluit-padme" not in page
    assert re.search(r"\x00", page) is None
