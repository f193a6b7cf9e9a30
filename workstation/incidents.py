"""Synthetic Indonesian reports of generated incidents, some told twice, for the benchmark and
tests of the keyed duplicate check (:mod:`workstation.sketches`).

No real report is ever used. Each incident has a terlapor, a place, an amount, a period and a
modus with its details; a report tells it in sentences built from templates with synonyms.
A *retelling* is another pelapor's report of the same incident: other synonyms, sentences in
another order, the amount written another way ("Rp 1,5 miliar", "Rp1.500.000.000",
"satu setengah miliar rupiah"), the name with other titles, the period in other words, and a
sentence or two of their own. The traps are distinct incidents that share fields: the same
official at the same office in another affair, or the same modus and amount elsewhere.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "meminta": ("meminta", "menuntut", "mewajibkan", "memaksa"),
    "uang": ("uang", "dana", "sejumlah uang", "duit"),
    "menerima": ("menerima", "mendapat", "mengantongi", "memperoleh"),
    "pejabat": ("pejabat", "oknum pejabat", "atasan", "pimpinan"),
    "proyek": ("proyek", "pekerjaan", "kegiatan", "paket pekerjaan"),
    "rekanan": ("rekanan", "kontraktor", "penyedia", "vendor"),
    "harga": ("harga", "nilai", "anggaran", "biaya"),
    "dinaikkan": ("dinaikkan", "digelembungkan", "di-mark up", "dilambungkan"),
    "diserahkan": ("diserahkan", "diberikan", "dititipkan", "disetor"),
    "tunai": ("tunai", "cash", "dalam amplop", "secara langsung"),
    "pegawai": ("pegawai", "staf", "karyawan", "ASN"),
    "laporan": ("laporan", "pertanggungjawaban", "SPJ", "dokumen laporan"),
    "fiktif": ("fiktif", "palsu", "rekayasa", "tidak nyata"),
}

# Each modus has a pool of sentences; an incident is told with its own few of them (the
# facts of that affair), so two affairs of one modus share some sentences, not all.
_MODUS: dict[str, tuple[str, ...]] = {
    "markup": (
        "{Harga} pengadaan {item} {dinaikkan} jauh di atas harga pasar",
        "{Rekanan} {vendor} ditunjuk tanpa lelang yang terbuka",
        "Selisih {harga} dibagi antara {pejabat} dan {rekanan}",
        "Spesifikasi {item} yang dikirim lebih rendah dari kontrak",
        "Jumlah {item} yang datang hanya {n} unit padahal kontrak menyebut {n2} unit",
        "Survei harga dibuat {fiktif} oleh panitia pengadaan",
        "{Pejabat} memerintahkan panitia memenangkan {vendor}",
        "Pemilik {vendor} ternyata kerabat {pejabat}",
        "Berita acara serah terima {item} ditandatangani sebelum barang datang",
        "{Item} yang diterima sebagian rusak dan tidak bisa dipakai",
    ),
    "fee": (
        "{Pejabat} {meminta} fee {persen} persen dari nilai {proyek} {item}",
        "Fee itu {diserahkan} {tunai} oleh {rekanan} {vendor}",
        "{Rekanan} yang tidak membayar fee tidak mendapat {proyek}",
        "Penyerahan {uang} terjadi di rumah makan dekat kantor {kota2}",
        "Ada {n} {rekanan} yang dipaksa menyetor fee sebelum kontrak ditandatangani",
        "{Uang} fee ditransfer ke rekening adik {pejabat}",
        "Sopir {pejabat} yang mengambil {uang} dari {vendor}",
        "Nilai {proyek} {item} dipecah agar bisa ditunjuk langsung",
        "Pembayaran termin ditahan sampai fee dilunasi",
        "{Pejabat} mengancam memutus kontrak {vendor} bila fee terlambat",
    ),
    "pungli": (
        "Setiap pemohon izin {item} {meminta} membayar di luar tarif resmi",
        "{Pegawai} loket {menerima} {uang} tanpa kuitansi",
        "Yang menolak membayar berkasnya ditahan berminggu-minggu",
        "{Uang} itu dikumpulkan lalu disetor kepada {pejabat}",
        "Calo di depan kantor menawarkan jalur cepat dengan bayaran tambahan",
        "Dalam sehari ada sekitar {n} pemohon yang membayar",
        "Tarif tidak resmi ditulis tangan di kertas yang ditempel di meja",
        "{Pegawai} bagian arsip ikut {menerima} bagian setiap minggu",
        "Pemohon dari {kota2} dimintai bayaran dua kali lipat",
        "Bukti pembayaran resmi tidak pernah diberikan kepada pemohon",
    ),
    "fiktif": (
        "Perjalanan dinas ke {kota2} dibuat {fiktif} dengan tiket palsu",
        "{Laporan} kegiatan {item} disusun seolah-olah kegiatan terlaksana",
        "{Pegawai} diminta menandatangani daftar hadir kegiatan yang tidak ada",
        "{Uang} kegiatan dicairkan ke rekening pribadi {pejabat}",
        "Kuitansi hotel di {kota2} dibuat sendiri oleh bendahara",
        "Sebanyak {n} {pegawai} tercatat berangkat padahal tetap di kantor",
        "Honor narasumber dibayarkan kepada nama yang tidak pernah hadir",
        "Stempel {vendor} dipakai tanpa sepengetahuan pemiliknya",
        "Foto kegiatan diambil dari acara lain tahun sebelumnya",
        "Sisa {uang} kegiatan tidak pernah dikembalikan ke kas daerah",
    ),
}
_ITEMS = (
    "alat kesehatan", "laptop sekolah", "jalan desa", "seragam dinas", "mobil ambulans",
    "bibit padi", "pupuk bersubsidi", "gedung puskesmas", "jembatan gantung", "komputer kantor",
    "bangunan pasar", "sumur bor", "irigasi sawah", "buku pelajaran", "obat-obatan",
)
_VENDORS = ("CV Maju Jaya", "PT Sinar Abadi", "CV Karya Mandiri", "PT Bumi Persada",
            "CV Tiga Saudara", "PT Cahaya Timur", "CV Berkah Utama", "PT Mitra Sejahtera")
_FIRST = ("Budi", "Ahmad", "Siti", "Agus", "Dewi", "Hendra", "Rina", "Joko", "Yusuf", "Lestari",
          "Bambang", "Sri", "Andi", "Nur", "Eko", "Wahyu", "Fitri", "Rudi", "Taufik", "Maya")
_LAST = ("Santoso", "Fauzi", "Rahmawati", "Saputra", "Lubis", "Siregar", "Nasution", "Hidayat",
         "Pratama", "Wijaya", "Harahap", "Kurniawan", "Simanjuntak", "Gunawan", "Setiawan")
_POSTS = ("Kepala Dinas", "Sekretaris Dinas", "Kepala Bidang", "Camat", "Kepala Desa",
          "Pejabat Pembuat Komitmen", "Kepala Bagian Umum", "Bendahara")
_OFFICES = ("Dinas Pekerjaan Umum", "Dinas Kesehatan", "Dinas Pendidikan", "Dinas Pertanian",
            "Kantor Kecamatan", "Dinas Perizinan", "RSUD", "Badan Keuangan Daerah",
            "Dinas Perhubungan", "Dinas Sosial")
_CITIES = ("Palembang", "Medan", "Jambi", "Pekanbaru", "Bandar Lampung", "Padang", "Bengkulu",
           "Lubuklinggau", "Prabumulih", "Binjai", "Dumai", "Metro")
_MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
           "September", "Oktober", "November", "Desember")
_TITLES = ("Bapak", "Pak", "Ibu", "H.", "Sdr.", "Ir.", "Dr.", "")
_SUFFIXES = ("", ", S.E.", ", S.H.", ", M.M.", ", S.T.")
_EXTRA = (
    "Saya takut melapor dengan nama sendiri karena khawatir dibalas.",
    "Hal ini sudah menjadi rahasia umum di kalangan pegawai.",
    "Mohon agar laporan ini segera ditindaklanjuti.",
    "Beberapa rekan kerja juga mengetahui kejadian ini.",
    "Saya memiliki foto dan salinan dokumen sebagai bukti.",
    "Kejadian serupa kabarnya juga terjadi tahun sebelumnya.",
)
# Amounts KPK's reports name: round figures, often shared by unrelated affairs.
_AMOUNTS = (
    25_000_000, 50_000_000, 75_000_000, 100_000_000, 150_000_000, 250_000_000, 300_000_000,
    500_000_000, 750_000_000, 1_000_000_000, 1_500_000_000, 2_000_000_000, 3_500_000_000,
)
_WORDS = {1: "satu", 2: "dua", 3: "tiga", 4: "empat", 5: "lima", 6: "enam", 7: "tujuh",
          8: "delapan", 9: "sembilan"}


@dataclass(frozen=True)
class Incident:
    modus: str
    first: str
    last: str
    post: str
    office: str
    city: str
    amount: int
    month: int
    year: int
    item: str
    vendor: str
    persen: int
    city2: str
    told: tuple[int, ...]  # which sentences of the modus's pool tell this affair
    n: int


@dataclass(frozen=True)
class IncidentCorpus:
    reports: dict[str, dict[str, str]]
    duplicate_pairs: set[tuple[str, str]]


def _below_thousand_words(n: int) -> str:
    parts = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        parts.append("seratus" if hundreds == 1 else f"{_WORDS[hundreds]} ratus")
    tens, ones = divmod(rest, 10)
    if tens == 1:
        parts.append({0: "sepuluh", 1: "sebelas"}.get(ones, f"{_WORDS.get(ones, '')} belas"))
        ones = 0
    elif tens:
        parts.append(f"{_WORDS[tens]} puluh")
    if ones:
        parts.append(_WORDS[ones])
    return " ".join(parts)


def amount_text(amount: int, style: int) -> str:
    """One amount in one of the ways people write it."""
    if style == 0:
        return "Rp" + f"{amount:,}".replace(",", ".")
    if style == 1:
        return "Rp " + f"{amount:,}".replace(",", ".") + ",-"
    scale, name = (10**9, "miliar") if amount >= 10**9 else (10**6, "juta")
    value = amount / scale
    number = f"{value:g}".replace(".", ",")
    if style == 2:
        return f"Rp {number} {name}"
    if style == 3:
        short = "M" if name == "miliar" else "jt"
        return f"Rp{number} {short}"
    whole, half = divmod(amount * 2 // scale, 2)
    if whole * scale + half * scale // 2 != amount or whole >= 1000:
        return f"Rp {number} {name}"
    words = _below_thousand_words(int(whole)) if whole else ""
    if half:
        words = f"{words} setengah".strip() if whole else "setengah"
    return f"{words} {name} rupiah"


def _period(month: int, year: int, style: int) -> str:
    if style == 0:
        return f"{_MONTHS[month - 1]} {year}"
    if style == 1:
        return f"{month:02d}/{year}"
    if style == 2:
        return f"sekitar bulan {_MONTHS[month - 1].lower()} tahun {year}"
    return f"awal {_MONTHS[month - 1]} {year}"


def _fill(template: str, incident: Incident, rng: random.Random) -> str:
    values: dict[str, str] = {}
    for key, options in _SYNONYMS.items():
        choice = rng.choice(options)
        values[key] = choice
        values[key.capitalize()] = choice[:1].upper() + choice[1:]
    values.update(
        item=incident.item, Item=incident.item.capitalize(), vendor=incident.vendor,
        persen=str(incident.persen), kota2=incident.city2, n=str(incident.n),
        n2=str(incident.n + 7),
    )
    return template.format(**values) + "."


def _report(incident: Incident, rng: random.Random, retold: bool) -> dict[str, str]:
    pool = _MODUS[incident.modus]
    sentences = [_fill(pool[index], incident, rng) for index in incident.told]
    if retold:
        rng.shuffle(sentences)
        if rng.random() < 0.3:
            sentences.pop(rng.randrange(len(sentences)))
    amount = amount_text(incident.amount, rng.randrange(5))
    period = _period(incident.month, incident.year, rng.randrange(4))
    place = f"{incident.office} Kota {incident.city}"
    sentences.insert(
        rng.randrange(len(sentences) + 1),
        f"Kerugian negara diperkirakan {amount}." if rng.random() < 0.5
        else f"Jumlah {rng.choice(_SYNONYMS['uang'])} yang terlibat sekitar {amount}.",
    )
    for _ in range(rng.randint(0, 2) if retold else rng.randint(0, 1)):
        sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(_EXTRA))
    third = max(1, len(sentences) // 3)
    person = f"{rng.choice(_TITLES)} {incident.first} {incident.last}{rng.choice(_SUFFIXES)}"
    if rng.random() < 0.5:
        person = f"{person.strip()}, {incident.post}"
    return {
        "category": "suap_menyuap",
        "apa": " ".join(sentences[:third]),
        "siapa": person.strip(),
        "kapan": period,
        "dimana": place if rng.random() < 0.6 else f"di kantor {place.lower()}",
        "bagaimana": " ".join(sentences[third : 2 * third]),
        "berapa": amount if rng.random() < 0.8 else "",
        "kronologi": " ".join(sentences[2 * third :]),
    }


def _incident(rng: random.Random, like: Incident | None = None) -> Incident:
    made = Incident(
        modus=rng.choice(list(_MODUS)), first=rng.choice(_FIRST), last=rng.choice(_LAST),
        post=rng.choice(_POSTS), office=rng.choice(_OFFICES), city=rng.choice(_CITIES),
        amount=rng.choice(_AMOUNTS), month=rng.randint(1, 12), year=rng.randint(2022, 2026),
        item=rng.choice(_ITEMS), vendor=rng.choice(_VENDORS), persen=rng.choice((5, 10, 15, 20)),
        city2=rng.choice(_CITIES), told=tuple(rng.sample(range(10), rng.randint(4, 6))),
        n=rng.randint(3, 60),
    )
    if like is None:
        return made
    # Another affair that shares fields with an earlier one: the same official at the same
    # office (a busy Kepala Dinas), or the same modus and amount in another place.
    if rng.random() < 0.5:
        return Incident(
            made.modus, like.first, like.last, like.post, like.office, like.city,
            made.amount, made.month, made.year, made.item, made.vendor, made.persen, made.city2,
            made.told, made.n,
        )
    return Incident(
        like.modus, made.first, made.last, made.post, made.office, made.city, like.amount,
        made.month, like.year, made.item, made.vendor, made.persen, made.city2, made.told,
        made.n,
    )


def generate_incidents(
    count: int, retold_share: float = 0.25, related_share: float = 0.3, seed: int = 7
) -> IncidentCorpus:
    """``count`` reports: about ``retold_share`` retell an earlier incident, about
    ``related_share`` of the rest are new incidents sharing fields with an earlier one."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not a secret
    incidents: list[tuple[str, Incident]] = []
    clusters: dict[str, list[str]] = {}
    reports: dict[str, dict[str, str]] = {}
    for number in range(count):
        rid = f"R{number:06d}"
        if incidents and rng.random() < retold_share:
            origin, incident = rng.choice(incidents)
            reports[rid] = _report(incident, rng, retold=True)
            clusters[origin].append(rid)
            continue
        like = rng.choice(incidents)[1] if incidents and rng.random() < related_share else None
        incident = _incident(rng, like)
        reports[rid] = _report(incident, rng, retold=False)
        incidents.append((rid, incident))
        clusters[rid] = [rid]
    pairs = {
        (a, b) if a < b else (b, a)
        for members in clusters.values()
        for a, b in itertools.combinations(members, 2)
    }
    return IncidentCorpus(reports, pairs)
