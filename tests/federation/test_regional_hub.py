"""A regional hub: a province's installation, a member of KPK's hub, with a kabupaten's
installation as its own member. The kabupaten's handling metadata and the cases it shares with
KPK reach KPK through the province; KPK's keys reach the kabupaten the same way. Real gpg;
each installation its own database, store and keys."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine

from crypto.codenames import generate_codename
from crypto.keyring import kill_agent
from peluit.demo import make_workstation_key
from tests.conftest import DemoInstance, open_demo
from tests.federation.conftest import (
    add_cases,
    client_post,
    federate,
    installation_config,
    kpk_context,
    member_installation,
    mirrored_cases,
)
from tests.support import midday_wib, short_tempdir
from wbs import takeover
from wbs.casework import Refusal
from wbs.context import Context
from wbs.federation.exchange import sync
from wbs.federation.peers import FederationError, add_member, allow_instansi, join_request
from wbs.forwarding import forward_destinations, signed_key_list
from wbs.instance import Instance
from wbs.intake import Intake, ReportAnswers
from wbs.models import Case, FederationRefusal, Submission
from wbs.monitoring import dashboard
from wbs.sources import register_source
from wbs.tenants import add_recipient_key, current_keys, get_tenant, hub_tenant, kpk_recipients

ANSWERS = ReportAnswers(
    category="pengadaan", mcp_area="pengadaan_barang_jasa", apa="Proyek jalan desa fiktif",
    siapa="Kepala Dinas PU", kapan="2026", dimana="Bogor", bagaimana="SPJ palsu",
    berapa="Rp 800 juta", kronologi="",
)


@dataclass
class Regional:
    kpk: DemoInstance
    province: Instance
    kabupaten: Instance


@pytest.fixture
def regional() -> Iterator[Regional]:
    root = short_tempdir("fed-reg-")
    home = short_tempdir("fed-reg-ws-")
    try:
        with ExitStack() as stack:
            kpk = stack.enter_context(open_demo(installation_config(root, "kpk")))
            province = stack.enter_context(
                member_installation(installation_config(root, "prov"), "pemprov-jabar")
            )
            kabupaten = stack.enter_context(
                member_installation(installation_config(root, "kab"), "pemkab-bogor")
            )
            armored = make_workstation_key(home, "Pemkab Bogor <bogor@demo.peluit.invalid>")
            with kabupaten.sessions() as session:
                add_recipient_key(session, kabupaten.keyring,
                                  get_tenant(session, "pemkab-bogor"), armored)
                session.commit()
            federate(kpk.instance, province, "prov-jabar")
            federate(province, kabupaten, "kab-bogor")
            yield Regional(kpk, province, kabupaten)
    finally:
        kill_agent(home)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def _tomorrow() -> Any:
    return time_machine.travel(midday_wib() + dt.timedelta(days=1), tick=False)


def test_a_kabupaten_reaches_kpk_through_its_province(regional: Regional) -> None:
    kpk, province, kabupaten = regional.kpk.instance, regional.province, regional.kabupaten
    to_kpk, to_province = client_post(kpk), client_post(province)
    # KPK's operator lets the province pass its kabupaten's instansi on.
    allow_instansi(kpk, "prov-jabar", "pemkab-bogor")
    sync(province, to_kpk)
    sync(kabupaten, to_province)
    with kpk.sessions() as session:
        kpk_keys = kpk_recipients(session)
    with kabupaten.sessions() as session:
        # KPK's keys, passed on by the province: a report to KPK is encrypted to them.
        assert kpk_recipients(session) == kpk_keys and kpk_keys
        ctx = Context(kabupaten, session, get_tenant(session, "pemkab-bogor"))
        source = register_source(ctx, generate_codename())
        shared = Intake(ctx, source.source_id, to_kpk=True).new_case(ANSWERS).registration_number
    plain = add_cases(kabupaten, "pemkab-bogor", 2)
    own = add_cases(province, "pemprov-jabar", 1)
    with _tomorrow():
        sync(kabupaten, to_province)
        assert set(mirrored_cases(province, "kab-bogor")) == {shared, *plain}
        sync(province, to_kpk)
    on_kpk = mirrored_cases(kpk, "prov-jabar")
    assert set(on_kpk) == {shared, *plain, *own}
    with kpk.sessions() as session:
        hub = hub_tenant(session)
        assert hub is not None
        bogor = get_tenant(session, "pemkab-bogor")
        figures = dashboard(session, hub, today=dt.date(2026, 12, 8), tenant_id=bogor.id)
        assert figures.total == 3
        # KPK reads the shared report on its workstation: the ciphertext crossed two links.
        form = session.scalar(sa.select(Submission).where(
            Submission.case_id == on_kpk[shared].id, Submission.kind == "form"
        ))
        assert form is not None
        text = regional.kpk.decrypt(kpk.store.resolve(form.store_path).read_bytes())
        assert json.loads(text)["apa"] == "Proyek jalan desa fiktif"
        # Handling across installations is not relayed by a regional hub: the kabupaten's
        # instansi is no forwarding destination for KPK (it came without keys, marked as
        # relayed), and its shared case is not taken over.
        assert bogor.federation_relayed and current_keys(session, bogor) == []
        kpk_ctx = kpk_context(kpk, session)
        with pytest.raises(Refusal) as refused:
            signed_key_list(kpk_ctx, "pemkab-bogor")
        assert refused.value.code == "forward_no_tenant"
        mirror = kpk_ctx.shared().get(Case, on_kpk[shared].id)
        assert mirror is not None
        assert not takeover.may_take_over(kpk_ctx, mirror)
        with pytest.raises(Refusal) as refused:
            takeover.take_over(kpk_ctx, mirror, "kewenangan_kpk")
        assert refused.value.params["why"] == "relayed"
        assert list(session.scalars(sa.select(FederationRefusal.reason))) == []
    with kabupaten.sessions() as session:
        # Nor does the kabupaten forward to KPK through its province: it would stop there.
        ctx = Context(kabupaten, session, get_tenant(session, "pemkab-bogor"))
        assert forward_destinations(ctx) == []
    with province.sessions() as session:
        assert list(session.scalars(sa.select(FederationRefusal.reason))) == []


def test_a_regional_hub_gives_no_member_its_hubs_institutions(regional: Regional) -> None:
    kpk, province = regional.kpk.instance, regional.province
    sync(province, client_post(kpk))  # the province now mirrors KPK's tenant ("kpk")
    with province.sessions() as session:
        assert session.scalar(sa.select(Case.id)) is None
    root = short_tempdir("fed-reg-x-")
    try:
        with (
            member_installation(installation_config(root, "x"), "kpk") as impostor,
            pytest.raises(FederationError, match="hub"),
        ):
            add_member(province, join_request(impostor, "kab-x"), impostor.signing.fingerprint)
    finally:
        shutil.rmtree(root, ignore_errors=True)
