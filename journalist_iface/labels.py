"""The domain's words in the investigator's language: statuses, categories, MCP areas, log
entries and roles.

:mod:`wbs.domain` holds the Indonesian labels, the ones the pelapor's side, the bundle and the
workstation use. The investigator interface is also in English, so each code has an English
message here whose Indonesian translation is exactly the domain's label (a test holds the two
together): the Indonesian interface reads as before, the English one reads English throughout.
A code unknown here (a category added later) falls back to the domain's label, then the code.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import LazyString, lazy_gettext

from wbs.domain import (
    CATEGORY_LABELS,
    MCP_AREA_LABELS,
    CaseStatus,
    DeclineReason,
    EventKind,
    RequestReason,
    Role,
    TakeoverReason,
    TenantKind,
)

STATUS: Mapping[CaseStatus, LazyString] = {
    CaseStatus.BARU: lazy_gettext("New"),
    CaseStatus.VERIFIKASI: lazy_gettext("Verification"),
    CaseStatus.KLARIFIKASI: lazy_gettext("Clarification"),
    CaseStatus.TELAAH: lazy_gettext("Review"),
    CaseStatus.DITERUSKAN: lazy_gettext("Forwarded"),
    CaseStatus.DIARSIPKAN: lazy_gettext("Archived"),
    CaseStatus.SELESAI: lazy_gettext("Completed"),
}

CATEGORY: Mapping[str, LazyString] = {
    "kerugian_keuangan_negara": lazy_gettext("Loss to state finances"),
    "suap_menyuap": lazy_gettext("Bribery"),
    "penggelapan_dalam_jabatan": lazy_gettext("Embezzlement in office"),
    "pemerasan": lazy_gettext("Extortion"),
    "perbuatan_curang": lazy_gettext("Fraudulent acts"),
    "benturan_kepentingan_pengadaan": lazy_gettext("Conflict of interest in procurement"),
    "gratifikasi": lazy_gettext("Gratification (illicit gifts)"),
    "pelanggaran_disiplin": lazy_gettext("Breach of discipline"),
    "pelanggaran_kode_etik": lazy_gettext("Breach of the code of ethics"),
    "penyalahgunaan_wewenang": lazy_gettext("Abuse of authority"),
    "maladministrasi": lazy_gettext("Maladministration"),
    "pungutan_liar": lazy_gettext("Illegal levies (pungli)"),
}

MCP_AREA: Mapping[str, LazyString] = {
    "perencanaan_penganggaran_apbd": lazy_gettext("Regional budget (APBD) planning and budgeting"),
    "pengadaan_barang_jasa": lazy_gettext("Procurement of goods and services"),
    "perizinan": lazy_gettext("Licensing"),
    "pengawasan_apip": lazy_gettext("Internal oversight (APIP)"),
    "manajemen_asn": lazy_gettext("Civil service (ASN) management"),
    "optimalisasi_pajak_daerah": lazy_gettext("Regional tax optimisation"),
    "manajemen_aset_daerah": lazy_gettext("Regional asset management (BMD)"),
    "tata_kelola_dana_desa": lazy_gettext("Village fund governance"),
    "perencanaan_apbd": lazy_gettext("Regional budget (APBD) planning"),
    "penganggaran_apbd": lazy_gettext("Regional budget (APBD) budgeting"),
    "pelayanan_publik": lazy_gettext("Public services"),
}

EVENT: Mapping[EventKind, LazyString] = {
    EventKind.CASE_CREATED: lazy_gettext("Report received"),
    EventKind.STATUS_CHANGED: lazy_gettext("Status changed"),
    EventKind.ASSIGNED: lazy_gettext("Assigned"),
    EventKind.UNASSIGNED: lazy_gettext("Assignment removed"),
    EventKind.SUBMISSION_ADDED: lazy_gettext("New submission from the reporter"),
    EventKind.REPLY_ADDED: lazy_gettext("Reply sent"),
    EventKind.REPLY_DELETED: lazy_gettext("Reply deleted"),
    EventKind.ITEM_DELETED: lazy_gettext("Item deleted"),
    EventKind.CASE_DELETED: lazy_gettext("Report deleted"),
    EventKind.SENT_TO_KPK: lazy_gettext("Sent to KPK"),
    EventKind.EXPORTED: lazy_gettext("Exported to the workstation"),
    EventKind.ITEM_DOWNLOADED: lazy_gettext("File downloaded"),
    EventKind.MARKED_SEEN: lazy_gettext("Marked as read"),
    EventKind.KEY_ADDED: lazy_gettext("Recipient key added"),
    EventKind.KEY_REVOKED: lazy_gettext("Recipient key revoked"),
    EventKind.INVESTIGATOR_ADDED: lazy_gettext("Investigator account added"),
    EventKind.INVESTIGATOR_DEACTIVATED: lazy_gettext("Investigator account deactivated"),
    EventKind.PASSWORD_RESET: lazy_gettext("Account password reset"),
    EventKind.TOTP_RESET: lazy_gettext("Account two-step login reset"),
    EventKind.SETTINGS_CHANGED: lazy_gettext("Institution settings changed"),
    EventKind.STARRED: lazy_gettext("Starred"),
    EventKind.UNSTARRED: lazy_gettext("Star removed"),
    EventKind.NEEDS_REPLY_SET: lazy_gettext("Marked as needing a reply"),
    EventKind.NEEDS_REPLY_CLEARED: lazy_gettext("Needs-reply mark removed"),
    EventKind.RECLASSIFIED: lazy_gettext("Classification corrected"),
    EventKind.OPERATOR_INTAKE: lazy_gettext("Recorded by an operator from another channel"),
    EventKind.FORWARDED: lazy_gettext("Forwarded to another institution"),
    EventKind.FORWARD_RECEIVED: lazy_gettext("Received as a forwarded case"),
    EventKind.FORWARDED_EXTERNAL: lazy_gettext("Forwarded to a body outside the system"),
    EventKind.TAKEN_OVER: lazy_gettext("Taken over by KPK"),
    EventKind.TAKEOVER_RECEIVED: lazy_gettext("Received as a takeover"),
    EventKind.FORWARD_REQUESTED: lazy_gettext("KPK asked for the case to be forwarded"),
    EventKind.FORWARD_REQUEST_DECLINED: lazy_gettext("Request to forward declined"),
    EventKind.FORWARD_REQUEST_ANSWERED: lazy_gettext("Request to forward answered"),

    EventKind.MATTER_LINKED: lazy_gettext("Linked in one matter"),
    EventKind.MATTER_UNLINKED: lazy_gettext("Removed from the matter"),
    EventKind.LEAD_NAMED: lazy_gettext("Lead handler of the matter named"),
    EventKind.MERGED: lazy_gettext("Merged into the lead handler's case"),
}

ROLE: Mapping[Role, LazyString] = {
    Role.VERIFIKATOR: lazy_gettext("Verifier / Investigator"),
    Role.ADMIN_INSTANSI: lazy_gettext("Institution admin"),
    Role.PEMANTAU_KPK: lazy_gettext("KPK monitor"),
}


KIND: Mapping[TenantKind, LazyString] = {
    TenantKind.KEMENTERIAN: lazy_gettext("Ministry"),
    TenantKind.LEMBAGA: lazy_gettext("Agency"),
    TenantKind.PEMERINTAH_PROVINSI: lazy_gettext("Provincial government"),
    TenantKind.PEMERINTAH_KABUPATEN: lazy_gettext("Regency government"),
    TenantKind.PEMERINTAH_KOTA: lazy_gettext("City government"),
    TenantKind.BUMN: lazy_gettext("State-owned enterprise (BUMN)"),
    TenantKind.BUMD: lazy_gettext("Regionally owned enterprise (BUMD)"),
    TenantKind.HUB: lazy_gettext("KPK (monitoring hub)"),
}


# The reason codes of the coordination between KPK and an institution (wbs.coordination).
TAKEOVER_REASON: Mapping[TakeoverReason, LazyString] = {
    TakeoverReason.TIDAK_DITINDAKLANJUTI: lazy_gettext(
        "The public's report was not followed up (Article 10A(2)(a))"
    ),
    TakeoverReason.BERLARUT: lazy_gettext(
        "The handling has no resolution or is delayed without accountable reason "
        "(Article 10A(2)(b))"
    ),
    TakeoverReason.MELINDUNGI_PELAKU: lazy_gettext(
        "The handling is meant to protect the real perpetrators (Article 10A(2)(c))"
    ),
    TakeoverReason.UNSUR_KORUPSI: lazy_gettext(
        "The handling itself involves corruption (Article 10A(2)(d))"
    ),
    TakeoverReason.CAMPUR_TANGAN: lazy_gettext(
        "The handling is obstructed by interference of the executive, judiciary or "
        "legislature (Article 10A(2)(e))"
    ),
    TakeoverReason.KEWENANGAN_KPK: lazy_gettext(
        "KPK's jurisdiction: law enforcers or state officials involved, or a state loss of at "
        "least Rp1 billion (Article 11(1))"
    ),
    TakeoverReason.KEADAAN_LAIN: lazy_gettext(
        "Other circumstances make proper, accountable handling difficult (Article 10A(2)(f))"
    ),
}

REQUEST_REASON: Mapping[RequestReason, LazyString] = {
    RequestReason.PENYELENGGARA_NEGARA: lazy_gettext(
        "Law enforcers or state officials involved (Article 11(1)(a))"
    ),
    RequestReason.KERUGIAN_NEGARA: lazy_gettext(
        "A state loss of at least Rp1 billion (Article 11(1)(b))"
    ),
    RequestReason.PERKARA_TERKAIT: lazy_gettext("Related to a matter KPK is handling"),
    RequestReason.KOORDINASI: lazy_gettext(
        "Coordination and supervision of the handling (Article 6)"
    ),
}

DECLINE_REASON: Mapping[DeclineReason, LazyString] = {
    DeclineReason.DITANGANI_SENDIRI: lazy_gettext("This institution is handling it"),
    DeclineReason.BUKAN_KEWENANGAN_KPK: lazy_gettext("Not within KPK's jurisdiction"),
    DeclineReason.SUDAH_DITERUSKAN_APH: lazy_gettext(
        "Already forwarded to law enforcement (APH)"
    ),
    DeclineReason.SUDAH_SELESAI: lazy_gettext("The handling is finished"),
    DeclineReason.LAINNYA: lazy_gettext("Another reason"),
}


def takeover_reasons() -> list[tuple[str, str]]:
    """Every takeover reason as (code, label), in the law's order."""
    return [(code.value, str(label)) for code, label in TAKEOVER_REASON.items()]


def request_reasons() -> list[tuple[str, str]]:
    return [(code.value, str(label)) for code, label in REQUEST_REASON.items()]


def decline_reasons() -> list[tuple[str, str]]:
    return [(code.value, str(label)) for code, label in DECLINE_REASON.items()]


def kind_label(kind: TenantKind) -> str:
    return str(KIND[kind])


def status_label(status: CaseStatus) -> str:
    return str(STATUS[status])


def category_label(code: str) -> str:
    found = CATEGORY.get(code)
    return str(found) if found is not None else CATEGORY_LABELS.get(code, code)


def mcp_label(code: str | None) -> str | None:
    if not code:
        return None
    found = MCP_AREA.get(code)
    return str(found) if found is not None else MCP_AREA_LABELS.get(code, code)


def event_label(kind: EventKind | str) -> str:
    found = EVENT.get(kind) if isinstance(kind, EventKind) else None
    return str(found) if found is not None else str(kind)


def role_label(role: Role) -> str:
    return str(ROLE[role])


def categories() -> list[tuple[str, str]]:
    """Every category as (code, label), sorted by the label in the reader's language."""
    return sorted(((code, category_label(code)) for code in CATEGORY_LABELS),
                  key=lambda item: item[1])


def mcp_areas() -> list[tuple[str, str]]:
    """Every MCP area as (code, label), in the domain's order (the classic list, then 2024's)."""
    return [(code, mcp_label(code) or code) for code in MCP_AREA_LABELS]
