"""The guided report (4W+1H+berapa) and follow-up messages: field rules and their messages.

KPK could not follow up half of its reports in 2022 for lack of a factual account, so the form
asks for each element and refuses answers too thin to act on. The rules are checked on the text
fields only, which the form sends before its files: a report that fails them is refused before
any file is encrypted and stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import LazyString, format_decimal, lazy_gettext

from wbs.domain import (
    CATEGORY_LABELS,
    MCP_AREA_LABELS,
    CaseStatus,
    KpkSharing,
    OfficialAnswer,
    TenantKind,
    ValueBracket,
)
from wbs.intake import ReportAnswers
from wbs.models import Tenant

# The honeypot: hidden by CSS, labelled "leave empty" for anyone who sees it. People leave it
# empty; form-filling robots fill every text field they find.
HONEYPOT_FIELD = "website"
TEXT_FIELDS = ("apa", "siapa", "kapan", "dimana", "bagaimana", "berapa", "kronologi")
MAX_TEXT_CHARS = 20_000
MAX_MESSAGE_CHARS = 20_000

# (minimum characters, message when shorter). Berapa and kronologi are optional.
_MINIMUM: Mapping[str, tuple[int, LazyString]] = {
    "apa": (30, lazy_gettext("Describe what happened in at least 30 characters.")),
    "siapa": (3, lazy_gettext("Say who did it (a name, a position or a unit).")),
    "kapan": (4, lazy_gettext("Say when it happened, even roughly (a month and year).")),
    "dimana": (3, lazy_gettext("Say where it happened (office, place or project).")),
    "bagaimana": (20, lazy_gettext("Describe how it was done in at least 20 characters.")),
}

# What the pelapor reads for each status; the Indonesian translations are the domain's own
# wording (CaseStatus.source_wording). Details (the question, to whom) come as replies.
STATUS_WORDING: Mapping[CaseStatus, LazyString] = {
    CaseStatus.BARU: lazy_gettext("Report received"),
    CaseStatus.VERIFIKASI: lazy_gettext("Your report is being verified"),
    CaseStatus.KLARIFIKASI: lazy_gettext("We need more information from you"),
    CaseStatus.TELAAH: lazy_gettext("Your report is under review"),
    CaseStatus.DITERUSKAN: lazy_gettext(
        "Your report has been forwarded to the competent authority"
    ),
    CaseStatus.DIARSIPKAN: lazy_gettext("Your report has been archived"),
    CaseStatus.SELESAI: lazy_gettext("Handling of your report is finished"),
}

CATEGORY_NAMES: Mapping[str, LazyString] = {
    "kerugian_keuangan_negara": lazy_gettext("Loss to state finances"),
    "suap_menyuap": lazy_gettext("Bribery"),
    "penggelapan_dalam_jabatan": lazy_gettext("Embezzlement in office"),
    "pemerasan": lazy_gettext("Extortion"),
    "perbuatan_curang": lazy_gettext("Fraud"),
    "benturan_kepentingan_pengadaan": lazy_gettext("Conflict of interest in procurement"),
    "gratifikasi": lazy_gettext("Gratification (improper gifts)"),
    "pelanggaran_disiplin": lazy_gettext("Breach of discipline"),
    "pelanggaran_kode_etik": lazy_gettext("Breach of the code of ethics"),
    "penyalahgunaan_wewenang": lazy_gettext("Abuse of authority"),
    "maladministrasi": lazy_gettext("Maladministration"),
    "pungutan_liar": lazy_gettext("Illegal levies (pungli)"),
}

MCP_AREA_NAMES: Mapping[str, LazyString] = {
    "perencanaan_penganggaran_apbd": lazy_gettext("Regional budget planning and budgeting"),
    "pengadaan_barang_jasa": lazy_gettext("Procurement of goods and services"),
    "perizinan": lazy_gettext("Licensing and permits"),
    "pengawasan_apip": lazy_gettext("Internal audit (APIP) oversight"),
    "manajemen_asn": lazy_gettext("Civil service (ASN) management"),
    "optimalisasi_pajak_daerah": lazy_gettext("Regional tax collection"),
    "manajemen_aset_daerah": lazy_gettext("Regional asset management (BMD)"),
    "tata_kelola_dana_desa": lazy_gettext("Village fund governance"),
    "perencanaan_apbd": lazy_gettext("Regional budget planning"),
    "penganggaran_apbd": lazy_gettext("Regional budgeting"),
    "pelayanan_publik": lazy_gettext("Public services"),
}


# Who reads a report at each kind of instansi: the landing page names the unit. Regional
# governments have an Inspektorat Daerah (their APIP), ministries an Inspektorat Jenderal,
# state-owned companies a Satuan Pengawasan Intern; KPK reads its own reports in its
# directorate for public reports (PLPM), which is no inspectorate at all.
READING_UNIT: Mapping[TenantKind, LazyString] = {
    TenantKind.KEMENTERIAN: lazy_gettext(
        "its Inspectorate General (Inspektorat Jenderal), the ministry's internal auditors"
    ),
    TenantKind.LEMBAGA: lazy_gettext("its inspectorate, the institution's internal auditors"),
    TenantKind.PEMERINTAH_PROVINSI: lazy_gettext(
        "its regional inspectorate (Inspektorat Daerah), the internal auditors (APIP)"
    ),
    TenantKind.PEMERINTAH_KABUPATEN: lazy_gettext(
        "its regional inspectorate (Inspektorat Daerah), the internal auditors (APIP)"
    ),
    TenantKind.PEMERINTAH_KOTA: lazy_gettext(
        "its regional inspectorate (Inspektorat Daerah), the internal auditors (APIP)"
    ),
    TenantKind.BUMN: lazy_gettext("its internal audit unit (Satuan Pengawasan Intern, SPI)"),
    TenantKind.BUMD: lazy_gettext("its internal audit unit (Satuan Pengawasan Intern, SPI)"),
    TenantKind.HUB: lazy_gettext(
        "its Directorate of Public Reports and Complaints (Pelayanan Laporan dan Pengaduan "
        "Masyarakat, PLPM)"
    ),
}


# The two coarse questions behind the jurisdiction hint (wbs.domain.kpk_hint): the first answer
# of each is the default, and "don't know" never points anywhere.
OFFICIAL_CHOICES: tuple[tuple[str, LazyString], ...] = (
    (OfficialAnswer.TIDAK_TAHU.value, lazy_gettext("I don't know")),
    (OfficialAnswer.YA.value, lazy_gettext("Yes")),
    (OfficialAnswer.TIDAK.value, lazy_gettext("No")),
)
VALUE_CHOICES: tuple[tuple[str, LazyString], ...] = (
    (ValueBracket.TIDAK_TAHU.value, lazy_gettext("I don't know")),
    (ValueBracket.UNDER_1M.value, lazy_gettext("Less than Rp1 billion")),
    (ValueBracket.AT_LEAST_1M.value, lazy_gettext("Rp1 billion or more")),
)


def reading_unit(kind: TenantKind) -> str:
    return str(READING_UNIT[kind])


_SIZE_UNITS = ("KB", "MB", "GB")


def human_size(size: int) -> str:
    """A byte count as people read it, in the page's language: "500 MB", "1,5 MB", "12 KB".

    Binary multiples, as the upload limit is counted; at least "1 KB" for any non-empty file.
    """
    value = max(size, 1) / 1024
    unit = _SIZE_UNITS[0]
    for unit in _SIZE_UNITS:
        if value < 1024 or unit == _SIZE_UNITS[-1]:
            break
        value /= 1024
    number = format_decimal(max(value, 1) if unit == "KB" else value, format="#,##0.#")
    return f"{number} {unit}"


def category_name(code: str) -> str:
    """The category in the reporter's language; the domain's label for a code we lack."""
    name = CATEGORY_NAMES.get(code)
    return str(name) if name is not None else CATEGORY_LABELS.get(code, code)


def mcp_area_name(code: str) -> str:
    name = MCP_AREA_NAMES.get(code)
    return str(name) if name is not None else MCP_AREA_LABELS.get(code, code)


def field_value(fields: Mapping[str, list[str]], name: str) -> str:
    """The first value of a field, stripped; "" when absent."""
    values = fields.get(name) or []
    return values[0].strip() if values else ""


def honeypot_filled(fields: Mapping[str, list[str]]) -> bool:
    return bool(field_value(fields, HONEYPOT_FIELD))


def wants_kpk(tenant: Tenant, fields: Mapping[str, list[str]]) -> bool:
    """Whether this report also goes to KPK, by the tenant's policy and the reporter's choice."""
    if tenant.is_hub or tenant.kpk_sharing == KpkSharing.NEVER:
        return False
    if tenant.kpk_sharing == KpkSharing.ALWAYS:
        return True
    return field_value(fields, "kpk") == "1"


@dataclass(frozen=True)
class ReportCheck:
    answers: ReportAnswers | None
    errors: dict[str, str]
    # What the reporter typed, to fill the form again when it is refused.
    values: dict[str, str]


def check_report(tenant: Tenant, fields: Mapping[str, list[str]]) -> ReportCheck:
    values = {name: field_value(fields, name) for name in (*TEXT_FIELDS, "category", "mcp_area")}
    values["kpk"] = field_value(fields, "kpk")
    values["pejabat"] = field_value(fields, "pejabat") or OfficialAnswer.TIDAK_TAHU.value
    values["nilai"] = field_value(fields, "nilai") or ValueBracket.TIDAK_TAHU.value
    errors: dict[str, str] = {}
    if values["pejabat"] not in {answer.value for answer in OfficialAnswer}:
        errors["pejabat"] = str(lazy_gettext("Choose one of the answers."))
    if values["nilai"] not in {bracket.value for bracket in ValueBracket}:
        errors["nilai"] = str(lazy_gettext("Choose one of the answers."))
    if values["category"] not in tenant.categories:
        errors["category"] = str(lazy_gettext("Choose the kind of wrongdoing."))
    if values["mcp_area"] and values["mcp_area"] not in MCP_AREA_LABELS:
        errors["mcp_area"] = str(lazy_gettext("Choose an area from the list, or none."))
    for name, (minimum, message) in _MINIMUM.items():
        if len(values[name]) < minimum:
            errors[name] = str(message)
    for name in TEXT_FIELDS:
        if len(values[name]) > MAX_TEXT_CHARS and name not in errors:
            errors[name] = str(
                lazy_gettext("At most %(n)d characters; attach longer texts as a file.",
                             n=MAX_TEXT_CHARS)
            )
    if errors:
        return ReportCheck(None, errors, values)
    answers = ReportAnswers(
        category=values["category"],
        mcp_area=values["mcp_area"] or None,
        apa=values["apa"],
        siapa=values["siapa"],
        kapan=values["kapan"],
        dimana=values["dimana"],
        bagaimana=values["bagaimana"],
        berapa=values["berapa"],
        kronologi=values["kronologi"],
        pejabat=OfficialAnswer(values["pejabat"]),
        nilai=ValueBracket(values["nilai"]),
    )
    return ReportCheck(answers, {}, values)


def check_message(fields: Mapping[str, list[str]]) -> tuple[str | None, str | None]:
    """(message or None, error or None) for a follow-up's text."""
    message = field_value(fields, "message")
    if len(message) > MAX_MESSAGE_CHARS:
        return None, str(
            lazy_gettext("At most %(n)d characters; attach longer texts as a file.",
                         n=MAX_MESSAGE_CHARS)
        )
    return message or None, None
