"""The vocabulary of the domain: enums, their Indonesian labels, categories, MCP areas.

Database values are stable lower-snake-case strings (what the enums' values are); they never
change once shipped, because rows, migrations and the KPK data exchange depend on them. What
users read is the Indonesian ``label`` (and, for statuses, the wording shown to the pelapor),
which may be reworded freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class TenantKind(StrEnum):
    """The kind of instansi; ``hub`` is KPK itself, which sees across the connected tenants."""

    KEMENTERIAN = "kementerian"
    LEMBAGA = "lembaga"
    PEMERINTAH_PROVINSI = "pemerintah_provinsi"
    PEMERINTAH_KABUPATEN = "pemerintah_kabupaten"
    PEMERINTAH_KOTA = "pemerintah_kota"
    BUMN = "bumn"
    BUMD = "bumd"
    HUB = "hub"

    @property
    def label(self) -> str:
        return TENANT_KIND_LABELS[self]


TENANT_KIND_LABELS: Mapping[TenantKind, str] = MappingProxyType(
    {
        TenantKind.KEMENTERIAN: "Kementerian",
        TenantKind.LEMBAGA: "Lembaga",
        TenantKind.PEMERINTAH_PROVINSI: "Pemerintah Provinsi",
        TenantKind.PEMERINTAH_KABUPATEN: "Pemerintah Kabupaten",
        TenantKind.PEMERINTAH_KOTA: "Pemerintah Kota",
        TenantKind.BUMN: "Badan Usaha Milik Negara (BUMN)",
        TenantKind.BUMD: "Badan Usaha Milik Daerah (BUMD)",
        TenantKind.HUB: "KPK (pusat pemantauan)",
    }
)


class Role(StrEnum):
    """Roles of investigator-side accounts. The pelapor has no account and no role."""

    VERIFIKATOR = "verifikator"
    ADMIN_INSTANSI = "admin_instansi"
    PEMANTAU_KPK = "pemantau_kpk"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS: Mapping[Role, str] = MappingProxyType(
    {
        Role.VERIFIKATOR: "Verifikator / Penyidik",
        Role.ADMIN_INSTANSI: "Admin Instansi",
        Role.PEMANTAU_KPK: "Pemantau KPK",
    }
)


class CaseStatus(StrEnum):
    """Where a report (pengaduan) stands; the outcomes KPK's complaint directorate reports."""

    BARU = "baru"
    VERIFIKASI = "verifikasi"
    KLARIFIKASI = "klarifikasi"
    TELAAH = "telaah"
    DITERUSKAN = "diteruskan"
    DIARSIPKAN = "diarsipkan"
    SELESAI = "selesai"

    @property
    def label(self) -> str:
        """The status name investigators and KPK see."""
        return CASE_STATUS_LABELS[self]

    @property
    def source_wording(self) -> str:
        """What the pelapor reads. Details (the question, to whom, the reason) come in a reply."""
        return CASE_STATUS_SOURCE_WORDING[self]

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


CASE_STATUS_LABELS: Mapping[CaseStatus, str] = MappingProxyType(
    {
        CaseStatus.BARU: "Baru",
        CaseStatus.VERIFIKASI: "Verifikasi",
        CaseStatus.KLARIFIKASI: "Klarifikasi",
        CaseStatus.TELAAH: "Telaah",
        CaseStatus.DITERUSKAN: "Diteruskan",
        CaseStatus.DIARSIPKAN: "Diarsipkan",
        CaseStatus.SELESAI: "Selesai",
    }
)

CASE_STATUS_SOURCE_WORDING: Mapping[CaseStatus, str] = MappingProxyType(
    {
        CaseStatus.BARU: "Pengaduan diterima",
        CaseStatus.VERIFIKASI: "Pengaduan sedang diverifikasi",
        CaseStatus.KLARIFIKASI: "Kami memerlukan keterangan tambahan dari Anda",
        CaseStatus.TELAAH: "Pengaduan sedang ditelaah",
        CaseStatus.DITERUSKAN: "Pengaduan telah diteruskan kepada pihak yang berwenang",
        CaseStatus.DIARSIPKAN: "Pengaduan diarsipkan",
        CaseStatus.SELESAI: "Penanganan pengaduan telah selesai",
    }
)

# Closed statuses: the deadline clock stops and the case leaves the working inbox.
FINAL_STATUSES: frozenset[CaseStatus] = frozenset({CaseStatus.DIARSIPKAN, CaseStatus.SELESAI})
OPEN_STATUSES: frozenset[CaseStatus] = frozenset(CaseStatus) - FINAL_STATUSES

# The workflow. Decisions:
# * Screening (verifikasi) may be skipped only to archive, forward, or ask the pelapor: a new
#   report is never "under review" or "finished" before someone has looked at it.
# * Klarifikasi returns to wherever the answer leads (verification or review), or ends the case
#   when the pelapor never answers (diarsipkan).
# * Diteruskan is not final: the receiving unit (APIP, APH, KPK) may send the case back for
#   review, and the forwarding unit closes it (selesai) once handling is reported.
# * Diarsipkan and selesai are final, but a closed case may be reopened, only to telaah: new
#   evidence from the pelapor or a KPK request restarts review, never screening, and the
#   reopening is itself a status change in the append-only event log.
ALLOWED_TRANSITIONS: Mapping[CaseStatus, frozenset[CaseStatus]] = MappingProxyType(
    {
        CaseStatus.BARU: frozenset(
            {
                CaseStatus.VERIFIKASI,
                CaseStatus.KLARIFIKASI,
                CaseStatus.DITERUSKAN,
                CaseStatus.DIARSIPKAN,
            }
        ),
        CaseStatus.VERIFIKASI: frozenset(
            {
                CaseStatus.KLARIFIKASI,
                CaseStatus.TELAAH,
                CaseStatus.DITERUSKAN,
                CaseStatus.DIARSIPKAN,
            }
        ),
        CaseStatus.KLARIFIKASI: frozenset(
            {
                CaseStatus.VERIFIKASI,
                CaseStatus.TELAAH,
                CaseStatus.DITERUSKAN,
                CaseStatus.DIARSIPKAN,
            }
        ),
        CaseStatus.TELAAH: frozenset(
            {
                CaseStatus.KLARIFIKASI,
                CaseStatus.DITERUSKAN,
                CaseStatus.DIARSIPKAN,
                CaseStatus.SELESAI,
            }
        ),
        CaseStatus.DITERUSKAN: frozenset({CaseStatus.TELAAH, CaseStatus.SELESAI}),
        CaseStatus.DIARSIPKAN: frozenset({CaseStatus.TELAAH}),
        CaseStatus.SELESAI: frozenset({CaseStatus.TELAAH}),
    }
)


def can_transition(current: CaseStatus, new: CaseStatus) -> bool:
    """Whether the workflow allows moving a case from ``current`` to ``new``."""
    return new in ALLOWED_TRANSITIONS[current]


class SubmissionKind(StrEnum):
    """What a pelapor sent: the guided form (4W+1H+berapa), a follow-up message, or a file."""

    FORM = "form"
    MESSAGE = "message"
    FILE = "file"

    @property
    def label(self) -> str:
        return SUBMISSION_KIND_LABELS[self]


SUBMISSION_KIND_LABELS: Mapping[SubmissionKind, str] = MappingProxyType(
    {
        SubmissionKind.FORM: "Formulir pengaduan",
        SubmissionKind.MESSAGE: "Pesan",
        SubmissionKind.FILE: "Berkas bukti",
    }
)


class KpkSharing(StrEnum):
    """A tenant's policy for sending reports to KPK as well (encrypting to KPK's key too).

    ``optional`` lets the pelapor choose on the form; the others decide for them.
    """

    NEVER = "never"
    OPTIONAL = "optional"
    ALWAYS = "always"

    @property
    def label(self) -> str:
        return KPK_SHARING_LABELS[self]


KPK_SHARING_LABELS: Mapping[KpkSharing, str] = MappingProxyType(
    {
        KpkSharing.NEVER: "Tidak dikirim ke KPK",
        KpkSharing.OPTIONAL: "Pelapor memilih",
        KpkSharing.ALWAYS: "Selalu dikirim ke KPK",
    }
)


class EventKind(StrEnum):
    """Kinds of entries in the append-only event log.

    New kinds need no migration (the column carries no check constraint, on purpose: changing
    one on SQLite means rebuilding the append-only table and its triggers).
    """

    CASE_CREATED = "case_created"
    STATUS_CHANGED = "status_changed"
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    SUBMISSION_ADDED = "submission_added"
    REPLY_ADDED = "reply_added"
    REPLY_DELETED = "reply_deleted"
    ITEM_DELETED = "item_deleted"
    CASE_DELETED = "case_deleted"
    SENT_TO_KPK = "sent_to_kpk"
    EXPORTED = "exported"
    ITEM_DOWNLOADED = "item_downloaded"
    MARKED_SEEN = "marked_seen"
    KEY_ADDED = "key_added"
    KEY_REVOKED = "key_revoked"
    INVESTIGATOR_ADDED = "investigator_added"
    INVESTIGATOR_DEACTIVATED = "investigator_deactivated"
    PASSWORD_RESET = "password_reset"  # noqa: S105 -- an event's name, not a password
    TOTP_RESET = "totp_reset"
    SETTINGS_CHANGED = "settings_changed"
    RECLASSIFIED = "reclassified"
    STARRED = "starred"
    UNSTARRED = "unstarred"
    NEEDS_REPLY_SET = "needs_reply_set"
    NEEDS_REPLY_CLEARED = "needs_reply_cleared"
    OPERATOR_INTAKE = "operator_intake"
    FORWARDED = "forwarded"
    FORWARD_RECEIVED = "forward_received"
    FORWARDED_EXTERNAL = "forwarded_external"
    # Pengambilalihan and permintaan pelimpahan (wbs.takeover, wbs.forward_requests).
    TAKEN_OVER = "taken_over"
    TAKEOVER_RECEIVED = "takeover_received"
    FORWARD_REQUESTED = "forward_requested"
    FORWARD_REQUEST_DECLINED = "forward_request_declined"
    FORWARD_REQUEST_ANSWERED = "forward_request_answered"
    # One handler per matter (wbs.matters): linked cases, the lead named by KPK, the others
    # closed as merged into it.
    MATTER_LINKED = "matter_linked"
    MATTER_UNLINKED = "matter_unlinked"
    LEAD_NAMED = "lead_named"
    MERGED = "merged"

    @property
    def label(self) -> str:
        return EVENT_KIND_LABELS[self]


EVENT_KIND_LABELS: Mapping[EventKind, str] = MappingProxyType(
    {
        EventKind.CASE_CREATED: "Pengaduan masuk",
        EventKind.STATUS_CHANGED: "Status diubah",
        EventKind.ASSIGNED: "Ditugaskan",
        EventKind.UNASSIGNED: "Penugasan dicabut",
        EventKind.SUBMISSION_ADDED: "Kiriman baru dari pelapor",
        EventKind.REPLY_ADDED: "Balasan dikirim",
        EventKind.REPLY_DELETED: "Balasan dihapus",
        EventKind.ITEM_DELETED: "Kiriman dihapus",
        EventKind.CASE_DELETED: "Pengaduan dihapus",
        EventKind.SENT_TO_KPK: "Dikirim ke KPK",
        EventKind.EXPORTED: "Diekspor ke workstation",
        EventKind.ITEM_DOWNLOADED: "Berkas diunduh",
        EventKind.KEY_ADDED: "Kunci penerima ditambahkan",
        EventKind.MARKED_SEEN: "Ditandai sudah dibaca",
        EventKind.KEY_REVOKED: "Kunci penerima dicabut",
        EventKind.INVESTIGATOR_ADDED: "Akun verifikator ditambahkan",
        EventKind.INVESTIGATOR_DEACTIVATED: "Akun verifikator dinonaktifkan",
        EventKind.PASSWORD_RESET: "Kata sandi akun diatur ulang",
        EventKind.TOTP_RESET: "Autentikasi dua langkah akun diatur ulang",
        EventKind.SETTINGS_CHANGED: "Pengaturan instansi diubah",
        EventKind.RECLASSIFIED: "Kategori dikoreksi",
        EventKind.STARRED: "Diberi bintang",
        EventKind.UNSTARRED: "Bintang dicabut",
        EventKind.NEEDS_REPLY_SET: "Ditandai perlu dibalas",
        EventKind.NEEDS_REPLY_CLEARED: "Tanda perlu dibalas dicabut",
        EventKind.OPERATOR_INTAKE: "Dicatat oleh petugas dari saluran lain",
        EventKind.FORWARDED: "Dilimpahkan ke instansi lain",
        EventKind.FORWARD_RECEIVED: "Diterima sebagai pelimpahan",
        EventKind.FORWARDED_EXTERNAL: "Diteruskan ke lembaga di luar sistem",
        EventKind.TAKEN_OVER: "Diambil alih oleh KPK",
        EventKind.TAKEOVER_RECEIVED: "Diterima sebagai pengambilalihan",
        EventKind.FORWARD_REQUESTED: "KPK meminta pelimpahan",
        EventKind.FORWARD_REQUEST_DECLINED: "Permintaan pelimpahan ditolak",
        EventKind.FORWARD_REQUEST_ANSWERED: "Permintaan pelimpahan dijawab",
        EventKind.MATTER_LINKED: "Ditautkan dalam satu perkara",
        EventKind.MATTER_UNLINKED: "Dilepas dari perkara",
        EventKind.LEAD_NAMED: "Penangan utama perkara ditetapkan",
        EventKind.MERGED: "Digabung ke pengaduan penangan utama",
    }
)

# What KPK and an instansi record about one case on both sides, each in its own log (the share,
# a takeover, a request to forward and its answer): a reader sees its own entry of such an act,
# with its note, and not the other side's (wbs.items.case_timeline).
BOTH_SIDES_KINDS: frozenset[EventKind] = frozenset(
    {
        EventKind.SENT_TO_KPK,
        EventKind.TAKEN_OVER,
        EventKind.FORWARD_REQUESTED,
        EventKind.FORWARD_REQUEST_DECLINED,
        EventKind.FORWARD_REQUEST_ANSWERED,
    }
)

class TakeoverReason(StrEnum):
    """Why KPK takes a case over: the grounds of UU 19/2019 Pasal 10A ayat (2) (huruf a-f),
    plus KPK's own jurisdiction (Pasal 11 ayat (1)).

    A code chosen from a list, never free text: the reason reaches the institution that may be
    the reported office, at once, in plaintext (docs/takeover.md). Names and details belong in
    the encrypted case notes or replies.
    """

    TIDAK_DITINDAKLANJUTI = "tidak_ditindaklanjuti"
    BERLARUT = "berlarut"
    MELINDUNGI_PELAKU = "melindungi_pelaku"
    UNSUR_KORUPSI = "unsur_korupsi"
    CAMPUR_TANGAN = "campur_tangan"
    KEWENANGAN_KPK = "kewenangan_kpk"
    KEADAAN_LAIN = "keadaan_lain"

    @property
    def label(self) -> str:
        return TAKEOVER_REASON_LABELS[self]


TAKEOVER_REASON_LABELS: Mapping[TakeoverReason, str] = MappingProxyType(
    {
        TakeoverReason.TIDAK_DITINDAKLANJUTI: (
            "Laporan masyarakat tidak ditindaklanjuti (Pasal 10A ayat (2) huruf a)"
        ),
        TakeoverReason.BERLARUT: (
            "Penanganan tanpa penyelesaian atau tertunda tanpa alasan yang dapat "
            "dipertanggungjawabkan (Pasal 10A ayat (2) huruf b)"
        ),
        TakeoverReason.MELINDUNGI_PELAKU: (
            "Penanganan ditujukan untuk melindungi pelaku yang sesungguhnya "
            "(Pasal 10A ayat (2) huruf c)"
        ),
        TakeoverReason.UNSUR_KORUPSI: (
            "Penanganan mengandung unsur tindak pidana korupsi (Pasal 10A ayat (2) huruf d)"
        ),
        TakeoverReason.CAMPUR_TANGAN: (
            "Hambatan penanganan karena campur tangan pemegang kekuasaan eksekutif, yudikatif, "
            "atau legislatif (Pasal 10A ayat (2) huruf e)"
        ),
        TakeoverReason.KEWENANGAN_KPK: (
            "Kewenangan KPK: melibatkan aparat penegak hukum atau penyelenggara negara, atau "
            "kerugian negara paling sedikit Rp1 miliar (Pasal 11 ayat (1))"
        ),
        TakeoverReason.KEADAAN_LAIN: (
            "Keadaan lain yang membuat penanganan sulit dilaksanakan secara baik dan dapat "
            "dipertanggungjawabkan (Pasal 10A ayat (2) huruf f)"
        ),
    }
)


class RequestReason(StrEnum):
    """Why KPK asks an institution to forward a case to it (permintaan pelimpahan): KPK's
    jurisdiction (UU 19/2019 Pasal 11 ayat (1)) or coordination with KPK's own work. A code,
    never free text, like :class:`TakeoverReason`."""

    PENYELENGGARA_NEGARA = "penyelenggara_negara"
    KERUGIAN_NEGARA = "kerugian_negara"
    PERKARA_TERKAIT = "perkara_terkait"
    KOORDINASI = "koordinasi"

    @property
    def label(self) -> str:
        return REQUEST_REASON_LABELS[self]


REQUEST_REASON_LABELS: Mapping[RequestReason, str] = MappingProxyType(
    {
        RequestReason.PENYELENGGARA_NEGARA: (
            "Melibatkan aparat penegak hukum atau penyelenggara negara "
            "(Pasal 11 ayat (1) huruf a)"
        ),
        RequestReason.KERUGIAN_NEGARA: (
            "Kerugian negara paling sedikit Rp1 miliar (Pasal 11 ayat (1) huruf b)"
        ),
        RequestReason.PERKARA_TERKAIT: "Berkaitan dengan perkara yang sedang ditangani KPK",
        RequestReason.KOORDINASI: "Koordinasi dan supervisi penanganan (Pasal 6)",
    }
)


class DeclineReason(StrEnum):
    """Why an institution declines KPK's request to forward a case. A code, never free text:
    KPK reads it on its copy of the case."""

    DITANGANI_SENDIRI = "ditangani_sendiri"
    BUKAN_KEWENANGAN_KPK = "bukan_kewenangan_kpk"
    SUDAH_DITERUSKAN_APH = "sudah_diteruskan_aph"
    SUDAH_SELESAI = "sudah_selesai"
    LAINNYA = "lainnya"

    @property
    def label(self) -> str:
        return DECLINE_REASON_LABELS[self]


DECLINE_REASON_LABELS: Mapping[DeclineReason, str] = MappingProxyType(
    {
        DeclineReason.DITANGANI_SENDIRI: "Sedang ditangani instansi ini",
        DeclineReason.BUKAN_KEWENANGAN_KPK: "Bukan kewenangan KPK",
        DeclineReason.SUDAH_DITERUSKAN_APH: "Sudah diteruskan ke aparat penegak hukum (APH)",
        DeclineReason.SUDAH_SELESAI: "Penanganan sudah selesai",
        DeclineReason.LAINNYA: "Alasan lain",
    }
)


class CaseFlag(StrEnum):
    """The marks a team puts on its cases to find them again: a star (cases to keep an eye on)
    and "perlu dibalas" (the pelapor is owed an answer). One per case for the whole tenant,
    not per investigator: a case is handled by a team, and a colleague who takes it over must
    see that a reply is owed, not find it hidden in someone else's view."""

    STAR = "star"
    NEEDS_REPLY = "needs_reply"

    def event_kind(self, on: bool) -> EventKind:
        """The log entry that records setting (``on``) or clearing this flag."""
        if self == CaseFlag.STAR:
            return EventKind.STARRED if on else EventKind.UNSTARRED
        return EventKind.NEEDS_REPLY_SET if on else EventKind.NEEDS_REPLY_CLEARED


class Channel(StrEnum):
    """Where a report arrived. ``situs`` is the drop box itself; the others are the channels
    complaint units also receive reports by, typed in by an operator on the workstation
    (:mod:`wbs.operator_intake`). Counted in the statistics."""

    SITUS = "situs"
    WHATSAPP = "whatsapp"
    SMS = "sms"
    TELEPON = "telepon"
    SURAT = "surat"
    LANGSUNG = "langsung"
    EMAIL = "email"

    @property
    def label(self) -> str:
        return CHANNEL_LABELS[self]


CHANNEL_LABELS: Mapping[Channel, str] = MappingProxyType(
    {
        Channel.SITUS: "Situs Peluit (Tor)",
        Channel.WHATSAPP: "WhatsApp",
        Channel.SMS: "SMS",
        Channel.TELEPON: "Telepon",
        Channel.SURAT: "Surat",
        Channel.LANGSUNG: "Datang langsung",
        Channel.EMAIL: "Surel (e-mail)",
    }
)

# The channels an operator may record a report from: every one but the drop box itself.
OPERATOR_CHANNELS: tuple[Channel, ...] = tuple(c for c in Channel if c != Channel.SITUS)


# Events the pelapor's own actions cause. Their time is stored rounded to the day, like every
# other source-side timestamp: a precise time could be matched against network logs.
SOURCE_EVENT_KINDS: frozenset[EventKind] = frozenset(
    {
        EventKind.CASE_CREATED,
        EventKind.SUBMISSION_ADDED,
        EventKind.REPLY_DELETED,
        # The share with KPK happens when the pelapor sends the report (their choice, or the
        # tenant's policy applied to their report).
        EventKind.SENT_TO_KPK,
    }
)

# The seven groups of corruption in UU 31/1999 jo. UU 20/2001, as (code, label).
CORRUPTION_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("kerugian_keuangan_negara", "Kerugian keuangan negara"),
    ("suap_menyuap", "Suap-menyuap"),
    ("penggelapan_dalam_jabatan", "Penggelapan dalam jabatan"),
    ("pemerasan", "Pemerasan"),
    ("perbuatan_curang", "Perbuatan curang"),
    ("benturan_kepentingan_pengadaan", "Benturan kepentingan dalam pengadaan"),
    ("gratifikasi", "Gratifikasi"),
)

# What regional WBS portals add to the seven groups.
REGIONAL_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("pelanggaran_disiplin", "Pelanggaran disiplin"),
    ("pelanggaran_kode_etik", "Pelanggaran kode etik"),
    ("penyalahgunaan_wewenang", "Penyalahgunaan wewenang"),
    ("maladministrasi", "Maladministrasi"),
    ("pungutan_liar", "Pungutan liar (pungli)"),
)

# Every category a tenant may offer; a tenant's ``categories`` is a list of these codes.
DEFAULT_CATEGORIES: tuple[tuple[str, str], ...] = CORRUPTION_CATEGORIES + REGIONAL_CATEGORIES
CATEGORY_LABELS: Mapping[str, str] = MappingProxyType(dict(DEFAULT_CATEGORIES))
DEFAULT_CATEGORY_CODES: tuple[str, ...] = tuple(code for code, _ in DEFAULT_CATEGORIES)

# KPK's MCP (Monitoring Center for Prevention) intervention areas, for mapping prone points.
MCP_AREAS_CLASSIC: tuple[tuple[str, str], ...] = (
    ("perencanaan_penganggaran_apbd", "Perencanaan dan Penganggaran APBD"),
    ("pengadaan_barang_jasa", "Pengadaan Barang dan Jasa"),
    ("perizinan", "Perizinan"),
    ("pengawasan_apip", "Pengawasan APIP"),
    ("manajemen_asn", "Manajemen ASN"),
    ("optimalisasi_pajak_daerah", "Optimalisasi Pajak Daerah"),
    ("manajemen_aset_daerah", "Manajemen Aset Daerah (BMD)"),
    ("tata_kelola_dana_desa", "Tata Kelola Dana Desa"),
)

# From 2024 the list names Pelayanan Publik and splits planning from budgeting. The combined
# code above stays valid so cases classified before 2024 keep their meaning.
MCP_AREAS_2024: tuple[tuple[str, str], ...] = (
    ("perencanaan_apbd", "Perencanaan APBD"),
    ("penganggaran_apbd", "Penganggaran APBD"),
    ("pelayanan_publik", "Pelayanan Publik"),
)

MCP_AREAS: tuple[tuple[str, str], ...] = MCP_AREAS_CLASSIC + MCP_AREAS_2024
MCP_AREA_LABELS: Mapping[str, str] = MappingProxyType(dict(MCP_AREAS))

# Registration numbers: "PLT-<TENANT>-<year>-<6 digits>". The digits are random, not a
# sequence, because a sequence would tell anyone holding one receipt how many reports the
# instansi received before it (and two receipts, how many in between).
REGISTRATION_PREFIX = "PLT"
REGISTRATION_DIGITS = 6


def format_registration_number(tenant_slug: str, year: int, number: int) -> str:
    """``PLT-PEMPROV-SUMSEL-2025-004817`` for tenant slug ``pemprov-sumsel``."""
    if not 0 <= number < 10**REGISTRATION_DIGITS:
        raise ValueError("registration number out of range")
    return f"{REGISTRATION_PREFIX}-{tenant_slug.upper()}-{year:04d}-{number:06d}"


def bundle_labels() -> dict[str, dict[str, str]]:
    """Every code's Indonesian label, by group, as an export bundle carries them.

    The workstation imports no server code (its import contract), so it cannot read the
    tables above; the manifest brings them along with the codes it uses (docs/export-bundle.md).
    """
    return {
        "status": {status.value: status.label for status in CaseStatus},
        "category": dict(CATEGORY_LABELS),
        "mcp_area": dict(MCP_AREA_LABELS),
        "event": {kind.value: kind.label for kind in EventKind},
        "item": {**{kind.value: kind.label for kind in SubmissionKind}, "reply": "Balasan"},
    }


class OfficialAnswer(StrEnum):
    """Is the terlapor a penyelenggara negara or a law-enforcement officer? (the report form)"""

    TIDAK_TAHU = "tidak_tahu"
    YA = "ya"
    TIDAK = "tidak"


class ValueBracket(StrEnum):
    """Roughly how much money is involved (the report form's coarse bracket)."""

    TIDAK_TAHU = "tidak_tahu"
    UNDER_1M = "kurang_1m"
    AT_LEAST_1M = "1m_atau_lebih"


def kpk_hint(official: OfficialAnswer, value: ValueBracket) -> bool:
    """*Mungkin kewenangan KPK*: UU 19/2019 Pasal 11 (1) gives KPK the cases that involve law
    enforcers or penyelenggara negara (a), and/or a state loss of at least Rp1 miliar (b).

    Only this conclusion is kept outside the encryption; the two answers travel inside the
    encrypted report form, so a server never holds them. A hint, not a decision: KPK and the
    institution decide jurisdiction after reading the report.
    """
    return official == OfficialAnswer.YA or value == ValueBracket.AT_LEAST_1M
