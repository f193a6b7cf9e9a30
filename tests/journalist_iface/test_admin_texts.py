"""The admin instansi writes the texts of the reporter's pages: preview, save, clean, isolated."""

from __future__ import annotations

import sqlalchemy as sa

from source_iface import create_app as create_source_app
from tests.journalist_iface.conftest import HUB, TENANT, Demo, logged_in
from wbs.domain import EventKind, Role
from wbs.models import Event, Tenant, TenantText

ONION = "b" * 56 + ".onion"
HOSTILE = (
    "Hubungi **Inspektorat** lewat kotak ini.\n"
    "<script>document.location='http://pencuri.example/'</script>\n"
    "<img src=http://pelacak.example/p.png>\n"
    '<span style="display:none">gaya</span>\n'
    "[situs luar](https://luar.example/) atau [kotak kami](http://" + ONION + "/)\n"
)
PAGE = "/admin/teks/contact"


def _stored(demo: Demo, slug: str) -> dict[tuple[str, str], str]:
    with demo.inst.sessions() as session:
        tenant_id = session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug))
        rows = session.scalars(sa.select(TenantText).where(TenantText.tenant_id == tenant_id))
        return {(row.key, row.language): row.markup for row in rows}


def _clean(html: str) -> None:
    lowered = html.lower()
    for bad in ("<script", "<img", "style=", "pencuri.example", "pelacak.example",
                "luar.example", "document.location"):
        assert bad not in lowered, bad


def test_preview_shows_the_sanitised_text_and_stores_nothing(demo: Demo) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    listing = admin.get("/admin/teks")
    assert listing.status_code == 200
    assert 'href="/admin/teks/contact"' in listing.get_data(as_text=True)
    before = _stored(demo, TENANT)
    response = admin.post(PAGE, {"text_id": HOSTILE, "text_en": "", "action": "preview"},
                          token_from=PAGE)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    preview = html[html.index('class="preview"'):]
    _clean(preview)
    assert "<strong>Inspektorat</strong>" in preview
    assert f'<a href="http://{ONION}/">kotak kami</a>' in preview
    assert "situs luar" in preview
    assert _stored(demo, TENANT) == before


def test_saved_text_is_stored_clean_logged_without_content_and_shown(demo: Demo) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    response = admin.post(PAGE, {"text_id": HOSTILE, "text_en": "Write to **us**.",
                                 "action": "save"}, token_from=PAGE)
    assert response.status_code == 302, response.get_data(as_text=True)
    stored = _stored(demo, TENANT)
    markup = stored[("contact", "id")]
    for bad in ("<script", "<img", "style=", "<span", "pencuri.example"):
        assert bad not in markup.lower(), bad
    assert f"[kotak kami](http://{ONION}/)" in markup
    assert stored[("contact", "en")] == "Write to **us**."
    with demo.inst.sessions() as session:
        notes = session.scalars(
            sa.select(Event.note).where(Event.kind == EventKind.SETTINGS_CHANGED)
        ).all()
    assert "teks contact (id)" in notes and "teks contact (en)" in notes
    assert not any("Inspektorat" in (note or "") for note in notes)
    # The reporter's landing page of that tenant shows it, clean; the other tenant's does not.
    source = create_source_app(demo.inst, testing=True).test_client()
    landing = source.get(f"/t/{TENANT}/").get_data(as_text=True)
    _clean(landing)
    assert "<strong>Inspektorat</strong>" in landing
    assert f'<a href="http://{ONION}/">kotak kami</a>' in landing
    assert "Inspektorat</strong>" not in source.get(f"/t/{HUB}/").get_data(as_text=True)
    # The form shows what is stored, for the next edit.
    assert "Write to **us**." in admin.get(PAGE).get_data(as_text=True)
    # Emptied, the default text is back.
    admin.post(PAGE, {"text_id": "", "text_en": "", "action": "save"}, token_from=PAGE)
    assert ("contact", "id") not in _stored(demo, TENANT)
    landing = source.get(f"/t/{TENANT}/").get_data(as_text=True)
    assert "Inspektorat</strong>" not in landing


def test_too_long_a_text_is_refused_with_a_message(demo: Demo) -> None:
    admin = logged_in(demo, TENANT, Role.ADMIN_INSTANSI)
    response = admin.post(PAGE, {"text_id": "x" * 3001, "text_en": "", "action": "save"},
                          token_from=PAGE)
    assert response.status_code == 400
    assert "Paling banyak 3000 karakter" in response.get_data(as_text=True)
    assert ("contact", "id") not in _stored(demo, TENANT)


def test_only_an_admin_edits_and_only_their_own_tenants_texts(demo: Demo) -> None:
    verifikator = logged_in(demo, TENANT, Role.VERIFIKATOR)
    assert verifikator.get("/admin/teks").status_code == 403
    assert verifikator.get(PAGE).status_code == 403
    refused = verifikator.post(PAGE, {"text_id": "Diubah", "action": "save"}, token_from="/")
    assert refused.status_code == 403
    monitor = logged_in(demo, HUB, Role.PEMANTAU_KPK)
    assert monitor.post(PAGE, {"text_id": "Diubah", "action": "save"},
                        token_from="/").status_code == 403
    assert ("contact", "id") not in _stored(demo, TENANT)
    # The hub's admin writes the hub's text, never the tenant's.
    hub_admin = logged_in(demo, HUB, Role.ADMIN_INSTANSI)
    assert hub_admin.post(PAGE, {"text_id": "Teks KPK", "text_en": "", "action": "save"},
                          token_from=PAGE).status_code == 302
    assert _stored(demo, HUB)[("contact", "id")] == "Teks KPK"
    assert ("contact", "id") not in _stored(demo, TENANT)
    assert "Teks KPK" not in logged_in(demo, TENANT, Role.ADMIN_INSTANSI).get(PAGE).get_data(
        as_text=True
    )
    hub_admin.post(PAGE, {"text_id": "", "text_en": "", "action": "save"}, token_from=PAGE)
    # An unknown text answers 404.
    assert hub_admin.get("/admin/teks/footer").status_code == 404
