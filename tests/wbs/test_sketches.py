"""Keyed sketches on the server, below HTTP, on SQLite and PostgreSQL: uploads scoped to the
tenant and refused whole when anything is wrong; candidate pairs across tenants for KPK's
monitor, with metadata only; within-tenant pairs and pairs of different keys left out."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from crypto.codenames import generate_codename
from tests.conftest import DemoInstance
from wbs.casework import Refusal
from wbs.context import Context
from wbs.domain import CaseStatus, TenantKind
from wbs.models import Case, CaseSketch, Tenant, new_registration_number
from wbs.sketches import accept_sketches, duplicate_candidates
from wbs.sources import register_source
from wbs.tenancy import TenantIsolationError, TenantScope
from wbs.tenants import create_tenant, get_tenant
from workstation.sketches import sketch_document

KEY, OTHER_KEY = bytes(range(32)), bytes(range(1, 33))
AFFAIR = {
    "apa": "Kepala dinas meminta fee proyek jembatan gantung dari kontraktor CV Karya Mandiri.",
    "siapa": "Bapak Ir. Hendra Siregar, M.M., Kepala Dinas PU",
    "kapan": "Maret 2025",
    "dimana": "Dinas Pekerjaan Umum Kota Prabumulih",
    "bagaimana": "Fee diserahkan tunai di rumah makan dekat kantor.",
    "berapa": "Rp 1,5 miliar",
    "kronologi": "Kontraktor yang menolak membayar tidak mendapat pekerjaan.",
}
RETOLD = {
    "apa": "Pimpinan dinas menuntut setoran dari penyedia untuk paket jembatan gantung.",
    "siapa": "Hendra Siregar",
    "kapan": "03/2025",
    "dimana": "di kantor dinas pekerjaan umum kota prabumulih",
    "bagaimana": "CV Karya Mandiri harus menyetor sebelum kontrak ditandatangani.",
    "berapa": "satu setengah miliar rupiah",
    "kronologi": "Uang diberikan dalam amplop di rumah makan dekat kantor.",
}
UNRELATED = {
    "apa": "Pungutan liar pembuatan KTP oleh petugas loket kecamatan.",
    "siapa": "Sdr. Joko Nasution",
    "kapan": "Juli 2024",
    "dimana": "Kantor Kecamatan Binjai Utara",
    "bagaimana": "Setiap pemohon membayar di luar tarif resmi tanpa kuitansi.",
    "berapa": "Rp 50.000",
    "kronologi": "",
}


def _cases(demo: DemoInstance, slug: str, count: int) -> list[str]:
    """Bare case rows of a tenant (no items: sketches need none), their registration numbers."""
    inst = demo.instance
    with inst.sessions() as session:
        owner = get_tenant(session, slug)
        secrets = register_source(Context(inst, session, owner), generate_codename())
        scope, numbers = TenantScope(session, owner), []
        for _ in range(count):
            case = Case(
                source_id=secrets.source_id, category="suap_menyuap", status=CaseStatus.TELAAH,
                registration_number=new_registration_number(session, owner, 2026),
                first_response_due=dt.date(2026, 12, 31),
            )
            scope.add(case)
            numbers.append(case.registration_number)
        session.commit()
        return numbers


def _document(key: bytes, reports: dict[str, dict[str, str]]) -> bytes:
    return json.dumps(sketch_document(key, reports).to_json()).encode()


def _upload(demo: DemoInstance, slug: str, data: bytes) -> int:
    inst = demo.instance
    with inst.sessions() as session:
        return accept_sketches(Context(inst, session, get_tenant(session, slug)), data)


def _stored(demo: DemoInstance) -> list[tuple[str, str]]:
    with demo.instance.sessions() as session:
        rows = session.execute(
            sa.select(Tenant.slug, Case.registration_number)
            .select_from(CaseSketch)
            .join(Case, Case.id == CaseSketch.case_id)
            .join(Tenant, Tenant.id == CaseSketch.tenant_id)
            .order_by(Case.registration_number)
        )
        return [(slug, number) for slug, number in rows]


@pytest.fixture
def three(demo_any_db: DemoInstance) -> DemoInstance:
    with demo_any_db.instance.sessions() as session:
        create_tenant(
            session, slug="pemkot-medan", name="Pemkot Medan", kind=TenantKind.PEMERINTAH_KOTA
        )
        session.commit()
    return demo_any_db


def test_an_upload_stores_one_sketch_per_case_of_the_tenant(three: DemoInstance) -> None:
    first, second = _cases(three, "pemprov-sumsel", 2)
    data = _document(KEY, {first: AFFAIR, second: UNRELATED})
    assert _upload(three, "pemprov-sumsel", data) == 2
    assert _stored(three) == sorted([("pemprov-sumsel", first), ("pemprov-sumsel", second)],
                                    key=lambda row: row[1])
    # Again, with another key: replaced, not added.
    assert _upload(three, "pemprov-sumsel", _document(OTHER_KEY, {first: AFFAIR})) == 1
    with three.instance.sessions() as session:
        keys = sorted(session.scalars(sa.select(CaseSketch.key_id)))
    assert len(keys) == 2 and len(set(keys)) == 2


def _malformed(number: str) -> list[tuple[bytes, str]]:
    good: dict[str, Any] = sketch_document(KEY, {number: AFFAIR}).to_json()

    def variant(change: Any) -> bytes:
        data = json.loads(json.dumps(good))
        change(data)
        return json.dumps(data).encode()

    return [
        (b"not json at all", "bad_sketches"),
        (b"\xff\xfe", "bad_sketches"),
        # What json.loads raises beyond JSONDecodeError: too many digits, too deep.
        (b'{"n": ' + b"9" * 5000 + b"}", "bad_sketches"),
        (b"[" * 100_000, "bad_sketches"),
        (variant(lambda d: d.update(format="peluit-sketches/9")), "bad_sketches"),
        (variant(lambda d: d.update(key_id="XYZ")), "bad_sketches"),
        # Text riding along in an extra field is refused, wherever it is put.
        (variant(lambda d: d.update(note="Hendra Siregar")), "bad_sketches"),
        (variant(lambda d: d["sketches"][0].update(siapa="Hendra Siregar")), "bad_sketches"),
        (variant(lambda d: d["sketches"][0]["signatures"].update(nama=[1] * 32)), "bad_sketches"),
        (variant(lambda d: d["sketches"][0]["signatures"].update(text=[1, 2, 3])), "bad_sketches"),
        (variant(lambda d: d["sketches"][0]["signatures"]["siapa"].__setitem__(0, -1)),
         "bad_sketches"),
        (variant(lambda d: d["sketches"][0]["signatures"]["siapa"].__setitem__(0, "a")),
         "bad_sketches"),
        (variant(lambda d: d["sketches"].append(d["sketches"][0])), "bad_sketches"),
        (variant(lambda d: d.update(sketches=[])), "bad_sketches"),
        (variant(lambda d: d["sketches"][0].update(registration_number="../x")), "bad_sketches"),
    ]


def test_malformed_uploads_are_refused_and_store_nothing(three: DemoInstance) -> None:
    (number,) = _cases(three, "pemprov-sumsel", 1)
    for data, code in _malformed(number):
        with pytest.raises(Refusal) as refused:
            _upload(three, "pemprov-sumsel", data)
        assert refused.value.code == code, data[:80]
    assert _stored(three) == []


def test_cases_of_another_tenant_or_none_refuse_the_whole_upload(three: DemoInstance) -> None:
    (own,) = _cases(three, "pemprov-sumsel", 1)
    (theirs,) = _cases(three, "pemkot-medan", 1)
    for stranger in (theirs, "pemkot-medan-2026-999999", own + "0"):
        with pytest.raises(Refusal) as refused:
            _upload(three, "pemprov-sumsel", _document(KEY, {own: AFFAIR, stranger: RETOLD}))
        assert refused.value.code == "unknown_cases"
        assert refused.value.params["count"] == 1 and stranger in str(refused.value)
    assert _stored(three) == []


def test_kpk_monitor_sees_cross_tenant_pairs_with_metadata_only(three: DemoInstance) -> None:
    sumsel_affair, sumsel_retold, sumsel_other = _cases(three, "pemprov-sumsel", 3)
    (medan_retold,) = _cases(three, "pemkot-medan", 1)
    (kpk_affair,) = _cases(three, "kpk", 1)
    _upload(three, "pemprov-sumsel", _document(
        KEY, {sumsel_affair: AFFAIR, sumsel_retold: RETOLD, sumsel_other: UNRELATED}
    ))
    _upload(three, "pemkot-medan", _document(KEY, {medan_retold: RETOLD}))
    # The same affair at KPK, but sketched with another key: not comparable, not paired.
    _upload(three, "kpk", _document(OTHER_KEY, {kpk_affair: AFFAIR}))

    with three.instance.sessions() as session:
        pairs = duplicate_candidates(session, get_tenant(session, "kpk"))
    found = {
        frozenset((p.first.registration_number, p.second.registration_number)) for p in pairs
    }
    # Across tenants only: sumsel's own two accounts of the affair are its business.
    assert found == {
        frozenset((sumsel_affair, medan_retold)), frozenset((sumsel_retold, medan_retold))
    }
    pair = next(p for p in pairs if sumsel_affair in (p.first.registration_number,
                                                      p.second.registration_number))
    sides = {pair.first.tenant_slug, pair.second.tenant_slug}
    assert sides == {"pemprov-sumsel", "pemkot-medan"}
    assert pair.score >= 0.6 and pair.parts["siapa"] == 1.0
    assert {pair.first.status, pair.second.status} == {CaseStatus.TELAAH}
    assert pair.first.category == "suap_menyuap"
    # Metadata only: nothing of a report, no signature values.
    assert set(vars(pair.first)) == {
        "registration_number", "tenant_slug", "tenant_name", "status", "category"
    }


def test_no_tenant_but_the_hub_can_ask_for_pairs(three: DemoInstance) -> None:
    with three.instance.sessions() as session:
        for slug in ("pemprov-sumsel", "pemkot-medan"):
            with pytest.raises(TenantIsolationError):
                duplicate_candidates(session, get_tenant(session, slug))
