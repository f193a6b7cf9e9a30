"""What the pelapor sees and types (issue 15, part 1), and the tenant's own texts on the pages.

A forgiving codename entry that never echoes the codename; the receipt and case page listing
what arrived; one file input with the limits said first; optional fields marked; the unit named
for each kind of institution; WIB dates everywhere; texts an admin wrote, sanitised.
"""

from __future__ import annotations

import re
import secrets

import pytest
import sqlalchemy as sa
import time_machine
from babel.dates import format_date

from crypto.codenames import load_wordlist
from tests.source_iface.conftest import (
    MAX_UPLOAD,
    OTHER_TENANT,
    TENANT,
    Reporter,
)
from tests.source_iface.test_pages import check_page
from tests.support import CLOCKS, wib_today
from wbs.casework import change_status, post_reply
from wbs.context import Context
from wbs.domain import CaseStatus, TenantKind
from wbs.models import Case, Event, Tenant, TenantText
from wbs.tenants import create_tenant
from wbs.texts import save_text


def text_of(html: str) -> str:
    """The page's visible text, spaces folded, for assertions on wording."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _mistype(word: str, words: frozenset[str]) -> str:
    """``word`` with one letter changed, such that exactly one list word is one edit away."""
    from crypto.codenames import _one_edit_away

    for i in range(len(word)):
        for c in "qxzjvkw":
            typo = word[:i] + c + word[i + 1 :]
            if typo in words:
                continue
            near = {w for w in _one_edit_away(typo) if w in words}
            if near == {word}:
                return typo
    raise AssertionError(f"no unambiguous typo for {word!r}")


# --- the codename entry ---------------------------------------------------------------------


def test_login_field_is_visible_and_left_alone_by_the_browser(reporter: Reporter) -> None:
    html = check_page(reporter.get("/masuk"))
    field = re.search(r"<textarea[^>]*name=\"codename\"[^>]*>", html)
    assert field, "the codename is typed into a visible text area"
    for attribute in ('autocomplete="off"', 'autocapitalize="none"', 'autocorrect="off"',
                      'spellcheck="false"'):
        assert attribute in field.group(0), attribute
    assert 'type="password"' not in html


def test_a_mistyped_word_logs_in_and_a_wrong_word_does_not(demo, client) -> None:  # type: ignore[no-untyped-def]
    reporter = Reporter(client)
    codename = reporter.new_codename()
    reporter.send_report()
    reporter.logout()
    words = codename.split()
    listed = frozenset(load_wordlist("id"))
    # One letter wrong in the third word, capitals and stray spaces: still the codename.
    typed = list(words)
    typed[2] = _mistype(words[2], listed).upper()
    response = reporter.login("  " + "   ".join(typed) + " ")
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].endswith("/pengaduan")
    reporter.logout()

    # Another list word in its place is another codename: no report found, nothing echoed.
    wrong = list(words)
    wrong[2] = next(w for w in load_wordlist("id") if w not in words)
    page = reporter.login(" ".join(wrong))
    html = check_page(page)
    assert "Tidak ditemukan pengaduan" in html or "tidak ditemukan" in html.lower()
    assert codename not in html and wrong[2] not in html
    assert re.search(r'<textarea[^>]*name="codename"[^>]*></textarea>', html), "field emptied"


def test_a_word_outside_the_list_is_named_by_its_position(demo, client) -> None:  # type: ignore[no-untyped-def]
    reporter = Reporter(client)
    codename = reporter.new_codename()
    reporter.logout()
    words = codename.split()
    typed = [*words[:4], "qqqqqqqq", *words[5:]]
    html = check_page(reporter.login(" ".join(typed)))
    assert "kata nomor 5 tidak termasuk kata-kata kode" in html
    assert codename not in html and words[0] not in text_of(html).split()
    short = check_page(reporter.login(" ".join(words[:8])))
    assert "Anda mengetik 8 kata" in short and "9 kata" in short


def test_the_codename_is_never_stored_or_logged_on_login(demo, client, caplog) -> None:  # type: ignore[no-untyped-def]
    reporter = Reporter(client)
    codename = reporter.new_codename()
    reporter.logout()
    words = codename.split()
    typed = list(words)
    typed[1] = _mistype(words[1], frozenset(load_wordlist("id")))
    with caplog.at_level("DEBUG"):
        reporter.login(" ".join(typed))
    assert codename not in caplog.text and " ".join(typed) not in caplog.text
    db = demo.inst.config.instance_dir
    for path in db.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert codename.encode() not in data, path
            assert " ".join(typed).encode() not in data, path


# --- the form -------------------------------------------------------------------------------


def test_one_file_input_takes_several_files_and_says_the_limits_first(reporter: Reporter) -> None:
    reporter.new_codename()
    html = check_page(reporter.get("/lapor"))
    inputs = re.findall(r"<input[^>]*type=\"file\"[^>]*>", html)
    assert len(inputs) == 1 and " multiple" in inputs[0]
    text = text_of(html)
    # The test instance allows 4 MiB; the server takes 20 files.
    assert "Paling banyak 20 berkas dan total 4 MB per pengiriman" in text
    assert MAX_UPLOAD == 4 * 1024 * 1024
    for label in ("Berapa?", "Kronologi", "Bidang pemerintahan yang terkait", "Berkas bukti",
                  "Kirim juga pengaduan ini ke KPK"):
        assert re.search(re.escape(label) + r"[^<]*<span class=\"opt\">\(opsional\)</span>",
                         html) or f"{label} (opsional)" in text, label
    for label in ("Apa yang terjadi?", "Siapa pelakunya?"):
        assert f"{label} (wajib)" in text, label
    reporter.send_report()
    cases = check_page(reporter.get("/pengaduan"))
    inputs = re.findall(r"<input[^>]*type=\"file\"[^>]*>", cases)
    assert len(inputs) == 1 and " multiple" in inputs[0]
    assert "Paling banyak 20 berkas dan total 4 MB per pengiriman" in text_of(cases)


def test_more_files_than_the_limit_are_refused_with_the_limit(demo, reporter: Reporter) -> None:  # type: ignore[no-untyped-def]
    reporter.new_codename()
    before = demo.inst.config.store_dir
    files = [(f"f{i}.txt", b"x") for i in range(21)]
    page = reporter.send_report(files=files)
    html = check_page(page, 413)
    assert "20 berkas" in html
    assert not any(p.is_file() for p in before.rglob("*.part"))


# --- what arrived -----------------------------------------------------------------------------


def test_receipt_lists_files_by_name_once_and_never_stores_names(demo, reporter: Reporter) -> None:  # type: ignore[no-untyped-def]
    reporter.new_codename()
    name_a, name_b = "notulen rapat RAHASIA-A1.pdf", "Users/x/bukti-B2.jpg"
    sent = reporter.send_report(
        files=[(name_a, b"a" * 3000), (name_b, b"b" * (1024 * 1024 + 300_000))],
        extra=[("kpk", "1")],
    )
    assert sent.status_code == 302
    receipt = check_page(reporter.client.get(sent.headers["Location"]))
    text = text_of(receipt)
    assert "notulen rapat RAHASIA-A1.pdf (2,9 KB)" in text
    assert "bukti-B2.jpg (1,3 MB)" in text and "Users" not in text
    assert "Juga dikirim ke KPK Ya: KPK juga dapat membaca pengaduan ini." in text
    # Shown once: the receipt again, and the case page, count what is stored instead.
    again = text_of(check_page(reporter.client.get(sent.headers["Location"])))
    assert "RAHASIA-A1" not in again and "2 berkas" in again
    cases = text_of(check_page(reporter.get("/pengaduan")))
    assert "RAHASIA-A1" not in cases and "2 berkas (total sekitar 1,3 MB)" in cases
    # The server kept no name: not in the database, not in the store (ciphertext), not anywhere.
    for path in demo.inst.config.instance_dir.rglob("*"):
        if path.is_file():
            assert b"RAHASIA-A1" not in path.read_bytes(), path
            assert b"bukti-B2" not in path.read_bytes(), path


def test_kpk_choice_not_taken_is_confirmed_too(reporter: Reporter) -> None:
    reporter.new_codename()
    sent = reporter.send_report()
    text = text_of(check_page(reporter.client.get(sent.headers["Location"])))
    assert "Juga dikirim ke KPK Tidak" in text
    assert "Pengaduan Anda, terenkripsi. Tanpa berkas." in text


def test_a_follow_up_is_listed_and_enters_the_history(demo, reporter: Reporter) -> None:  # type: ignore[no-untyped-def]
    reporter.new_codename()
    sent = reporter.send_report()
    number = sent.headers["Location"].rsplit("/", 1)[1]
    follow = reporter.send_follow_up(
        number, "Tambahan keterangan.", [("kontrak-X9.pdf", b"k" * 10)]
    )
    assert follow.status_code == 302
    page = check_page(reporter.client.get(follow.headers["Location"]))
    text = text_of(page)
    assert "Pesan Anda dan berkas berikut, masing-masing terenkripsi: kontrak-X9.pdf (1 KB)" in text
    assert "Anda mengirim keterangan tambahan" in text
    assert "1 pesan susulan, 1 berkas" in text
    later = text_of(check_page(reporter.get("/pengaduan")))
    assert "kontrak-X9" not in later and "Anda mengirim keterangan tambahan" in later


# --- the texts for each kind of institution ----------------------------------------------------


def test_kpk_landing_names_its_own_unit(client) -> None:  # type: ignore[no-untyped-def]
    kpk = text_of(check_page(Reporter(client, OTHER_TENANT).get("/")))
    assert "Direktorat Pelayanan Laporan dan Pengaduan Masyarakat (PLPM)" in kpk
    assert "inspektorat" not in kpk.lower() and "APIP" not in kpk
    province = text_of(check_page(Reporter(client).get("/")))
    assert "Inspektorat Daerah, aparat pengawas intern pemerintah (APIP)" in province


@pytest.mark.parametrize(
    ("kind", "unit"),
    [
        (TenantKind.KEMENTERIAN, "Inspektorat Jenderal"),
        (TenantKind.LEMBAGA, "inspektorat, aparat pengawas intern lembaga"),
        (TenantKind.BUMN, "Satuan Pengawasan Intern (SPI)"),
        (TenantKind.PEMERINTAH_KOTA, "Inspektorat Daerah"),
    ],
)
def test_landing_names_the_unit_for_each_kind(demo, client, kind: TenantKind, unit: str) -> None:  # type: ignore[no-untyped-def]
    slug = f"uji-{kind.value.replace('_', '-')}"
    with demo.inst.sessions() as session:
        if session.scalar(sa.select(Tenant).where(Tenant.slug == slug)) is None:
            create_tenant(session, slug=slug, name=f"Instansi {kind.value}", kind=kind)
            session.commit()
    text = text_of(check_page(Reporter(client, slug).get("/")))
    assert unit in text
    if kind in (TenantKind.BUMN, TenantKind.KEMENTERIAN):
        assert "APIP" not in text


def test_guidance_is_all_indonesian(client) -> None:  # type: ignore[no-untyped-def]
    html = check_page(Reporter(client).get("/panduan"))
    assert "Settings" not in html and "Pengaturan" in html


# --- WIB dates --------------------------------------------------------------------------------


@pytest.mark.parametrize("clock", list(CLOCKS.values()), ids=list(CLOCKS))
def test_every_date_the_reporter_sees_is_the_wib_date(demo, client, clock) -> None:  # type: ignore[no-untyped-def]
    reporter = Reporter(client)
    with time_machine.travel(clock):
        today = format_date(wib_today(), "long", locale="id")
        reporter.new_codename()
        sent = reporter.send_report()
        number = sent.headers["Location"].rsplit("/", 1)[1]
        receipt = text_of(check_page(reporter.client.get(sent.headers["Location"])))
        with demo.inst.sessions() as session:
            case = session.scalar(sa.select(Case).where(Case.registration_number == number))
            assert case is not None
            tenant = session.get(Tenant, case.tenant_id)
            assert tenant is not None
            ctx = Context(demo.inst, session, tenant)
            change_status(ctx, case, CaseStatus.VERIFIKASI)
            post_reply(ctx, case, "Terima kasih, sedang kami periksa.")
        reporter.send_follow_up(number, "Tambahan.")
        page = check_page(reporter.get("/pengaduan"))
    assert f"Diterima {today}" in receipt
    article = page[page.index(f'id="case-{number}"'):]
    article = article[: article.index("</article>")]
    history = re.findall(r'<span class="date">([^<]+)</span>', article)
    replies = re.findall(r'<p class="date">([^<]+)</p>', article)
    assert len(history) == 3 and len(replies) == 1, (history, replies)
    assert set(history) | set(replies) == {today}
    assert f"Diterima {today}" in text_of(article)


# --- the tenant's own texts ---------------------------------------------------------------------

ONION = "a" * 56 + ".onion"
HOSTILE = (
    "## Saluran lain\n\n"
    "Hubungi kami *kapan saja*.\n"
    "<script>alert('x')</script>\n"
    "<img src=http://pelacak.example/p.png>\n"
    '<p style="color:red">gaya</p>\n'
    "[situs luar](http://luar.example/lapor) dan [kotak onion](http://" + ONION + "/kontak)\n"
    "![gambar](http://pelacak.example/g.png)\n"
    '<iframe src="http://luar.example"></iframe>\n\n'
    "- satu\n- dua\n"
)


def _save(demo, slug: str, key: str, language: str, markup: str) -> None:  # type: ignore[no-untyped-def]
    with demo.inst.sessions() as session:
        tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        assert tenant is not None
        save_text(Context(demo.inst, session, tenant), key, language, markup)


def _assert_clean(html: str) -> None:
    lowered = html.lower()
    for bad in ("<script", "<img", "<iframe", "style=", "luar.example", "pelacak.example",
                "alert("):
        assert bad not in lowered, bad


def test_a_hostile_tenant_text_is_stored_and_shown_clean(demo, client) -> None:  # type: ignore[no-untyped-def]
    try:
        _save(demo, TENANT, "contact", "id", HOSTILE)
        with demo.inst.sessions() as session:
            stored = session.scalars(sa.select(TenantText.markup)).all()
            event = session.scalars(
                sa.select(Event).where(Event.kind == "settings_changed").order_by(Event.id.desc())
            ).first()
        assert len(stored) == 1
        for bad in ("<script", "<img", "<iframe", "style="):
            assert bad not in stored[0].lower()
        assert event is not None and event.note == "teks contact (id)"  # which text, no content
        html = check_page(Reporter(client).get("/"))
        _assert_clean(html)
        assert f'<a href="http://{ONION}/kontak">kotak onion</a>' in html
        assert "situs luar" in html and "<em>kapan saja</em>" in html
        assert "<h3>Saluran lain</h3>" in html and "<li>satu</li>" in html
        # English pages fall back to the Indonesian text, marked as Indonesian.
        client.set_cookie("peluit_l", "en")
        english = check_page(Reporter(client).get("/"), lang="en")
        assert '<div class="tenant-text" lang="id">' in english and "situs luar" in english
        # Another tenant shows nothing of it.
        assert "Saluran lain" not in check_page(Reporter(client, OTHER_TENANT).get("/"),
                                                lang="en")
    finally:
        _save(demo, TENANT, "contact", "id", "")


def test_default_texts_show_when_unset_and_own_texts_replace_them(demo, client) -> None:  # type: ignore[no-untyped-def]
    landing = text_of(check_page(Reporter(client).get("/")))
    default_steps = "Anda menerima kode. Catat dan rahasiakan"
    assert default_steps in landing
    assert "Cara lain menghubungi unit pengaduan" not in landing
    try:
        _save(demo, TENANT, "intro", "id", "Selamat datang di **WBS** provinsi.")
        _save(demo, TENANT, "next_steps", "id", "1. Kami baca.\n2. Kami jawab.")
        _save(demo, TENANT, "guidance", "id", "Gunakan *jaringan seluler*.")
        _save(demo, TENANT, "intro", "en", "Welcome to the province's WBS.")
        html = check_page(Reporter(client).get("/"))
        assert "Selamat datang di <strong>WBS</strong> provinsi." in html
        assert "<li>Kami baca.</li>" in html and default_steps not in text_of(html)
        guidance = check_page(Reporter(client).get("/panduan"))
        assert "<em>jaringan seluler</em>" in guidance
        assert "Tor Browser" in guidance  # the safety steps always stay
        client.set_cookie("peluit_l", "en")
        english = check_page(Reporter(client).get("/"), lang="en")
        assert "Welcome to the province's WBS." in english.replace("&#39;", "'")
        assert "Kami baca." in english  # no English text: the Indonesian one
    finally:
        for key, lang in (("intro", "id"), ("next_steps", "id"), ("guidance", "id"),
                          ("intro", "en")):
            _save(demo, TENANT, key, lang, "")
    client.set_cookie("peluit_l", "id")
    assert default_steps in text_of(check_page(Reporter(client).get("/")))


def test_the_largest_texts_keep_every_page_within_its_byte_budget(demo, client) -> None:  # type: ignore[no-untyped-def]
    from wbs.texts import MAX_HTML_BYTES, MAX_MARKUP_CHARS, TextError, check_markup

    # Characters that grow most when escaped, up to the limits the admin form enforces.
    heavy = ("&<>\"' " * MAX_MARKUP_CHARS)[:MAX_MARKUP_CHARS]
    with pytest.raises(TextError):
        check_markup(heavy)
    fitting = ("**a** " * MAX_MARKUP_CHARS)[:MAX_MARKUP_CHARS]
    with pytest.raises(TextError):
        check_markup(fitting)  # rendered, more than MAX_HTML_BYTES
    biggest = "x" * MAX_MARKUP_CHARS
    assert len(check_markup(biggest)[1]) <= MAX_HTML_BYTES
    try:
        for key in ("intro", "contact", "next_steps", "guidance"):
            _save(demo, TENANT, key, "id", biggest)
        check_page(Reporter(client).get("/"))  # asserts the 50 KB budget and the CSP
        check_page(Reporter(client).get("/panduan"))
    finally:
        for key in ("intro", "contact", "next_steps", "guidance"):
            _save(demo, TENANT, key, "id", "")



def test_many_long_names_keep_the_session_cookie_small(reporter: Reporter) -> None:
    reporter.new_codename()
    # Random CJK characters: nothing for the cookie's compression to fold away.
    files = [
        ("".join(chr(0x4E00 + secrets.randbelow(20_000)) for _ in range(74)) + f"-{i}.pdf", b"x")
        for i in range(20)
    ]
    sent = reporter.send_report(files=files)
    assert sent.status_code == 302
    cookies = [c for c in sent.headers.getlist("Set-Cookie") if c.startswith("peluit_csrf=")]
    assert cookies and all(len(c) < 4000 for c in cookies), [len(c) for c in cookies]
    receipt = check_page(reporter.client.get(sent.headers["Location"]))
    listed = re.findall(r'<span class="name">', receipt)
    assert 0 < len(listed) < 20
    assert f"dan {20 - len(listed)} berkas lainnya" in text_of(receipt)
    # The form still works: its CSRF secret was not lost with an oversized cookie.
    follow = reporter.send_follow_up(sent.headers["Location"].rsplit("/", 1)[1], "Tambahan.")
    assert follow.status_code == 302
