"""The federation link between separate installations: what travels, exactly once and in
order, and what is refused. The hub's real endpoint (federation_iface) answers through
Flask's test client; every envelope is signed and checked by the real gpg."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from tests.federation.conftest import (
    Federation,
    add_cases,
    client_post,
    federate,
    installation_config,
    member_installation,
    mirrored_cases,
)
from tests.support import short_tempdir
from wbs.domain import CaseStatus
from wbs.federation import metadata
from wbs.federation.exchange import SyncError, sync
from wbs.federation.peers import FederationError, add_member, join, join_request, own_fingerprint
from wbs.federation.wire import Envelope, Message, canonical, new_envelope, seal
from wbs.instance import Instance
from wbs.models import Case, FederationPeer, FederationRefusal, Tenant, utc_today_start
from wbs.monitoring import dashboard
from wbs.tenants import hub_tenant, kpk_recipients


def _peer(inst: Instance, name: str) -> FederationPeer:
    with inst.sessions() as session:
        peer = session.scalar(sa.select(FederationPeer).where(FederationPeer.name == name))
        assert peer is not None
        session.expunge(peer)
        return peer


def _refusals(inst: Instance) -> list[str]:
    """Every refusal logged, in order, a repeat counted on its row listed as often."""
    with inst.sessions() as session:
        rows = session.execute(
            sa.select(FederationRefusal.reason, FederationRefusal.repeated)
            .order_by(FederationRefusal.id)
        )
        return [reason for reason, repeated in rows for _ in range(repeated)]


def test_a_members_cases_reach_the_hubs_dashboard(federation: Federation) -> None:
    numbers = add_cases(federation.a, "kemendes", 3)
    result = sync(federation.a, client_post(federation.hub))
    # The instansi and its three cases, all confirmed.
    assert (result.sent, result.pending) == (4, 0)
    mirrored = mirrored_cases(federation.hub, "member-a")
    assert sorted(mirrored) == sorted(numbers)
    case = mirrored[numbers[0]]
    assert case.category == "gratifikasi"
    assert case.first_response_due == dt.date(2026, 12, 7)
    with federation.hub.sessions() as session:
        hub = hub_tenant(session)
        assert hub is not None
        figures = dashboard(session, hub, today=dt.date(2026, 12, 8))
        line = next(item for item in figures.tenants if item.slug == "kemendes")
        # Counted as the hub's own deployment's instansi: three open, all overdue on the 8th.
        assert (line.total, line.open, line.overdue_first_response) == (3, 3, 3)
        assert line.province == "Jawa Barat"
        mirror = session.scalar(sa.select(Tenant).where(Tenant.slug == "kemendes"))
        assert mirror is not None and mirror.onion_address is None


def test_changes_travel_and_a_repeat_sync_sends_nothing(federation: Federation) -> None:
    post = client_post(federation.hub)
    first, second = add_cases(federation.a, "kemendes", 2)
    sync(federation.a, post)
    with federation.a.sessions() as session:
        case = session.scalar(sa.select(Case).where(Case.registration_number == first))
        assert case is not None
        case.status = CaseStatus.DITERUSKAN
        gone = session.scalar(sa.select(Case).where(Case.registration_number == second))
        session.delete(gone)
        session.commit()
    result = sync(federation.a, post)
    assert result.sent == 2  # one change, one removal
    mirrored = mirrored_cases(federation.hub, "member-a")
    assert list(mirrored) == [first]
    assert mirrored[first].status == CaseStatus.DITERUSKAN
    assert sync(federation.a, post).sent == 0
    hub_side = _peer(federation.hub, "member-a")
    # Every message applied once: the count of applications equals the cursor.
    assert hub_side.applied_count == hub_side.received_seq == 5


def test_a_member_offline_for_a_week_catches_up(federation: Federation) -> None:
    post = client_post(federation.hub)
    sync(federation.a, post)
    # A week of reports while the hub could not be reached: each sync fails, nothing is lost.
    for _ in range(3):
        add_cases(federation.a, "kemendes", 400)

        def unreachable(_sealed: bytes) -> bytes:
            raise SyncError("the hub cannot be reached (ConnectTimeout)")

        with pytest.raises(SyncError):
            sync(federation.a, unreachable)
    assert _peer(federation.a, "kpk").last_error == "the hub cannot be reached (ConnectTimeout)"
    result = sync(federation.a, post)
    # 1,200 cases in batches of 500: three rounds, all confirmed.
    assert (result.sent, result.pending) == (1200, 0)
    assert len(mirrored_cases(federation.hub, "member-a")) == 1200
    assert _peer(federation.a, "kpk").last_error is None


def test_kpk_keys_reach_the_member_and_its_reports_to_kpk_use_them(
    federation: Federation,
) -> None:
    sync(federation.a, client_post(federation.hub))
    with federation.hub.sessions() as session:
        expected = kpk_recipients(session)
    with federation.a.sessions() as session:
        # The member has no KPK of its own: its intake encrypts to the hub's keys.
        assert kpk_recipients(session) == expected
        mirror = hub_tenant(session)
        assert mirror is not None and mirror.federation_peer_id is not None


def test_a_member_never_receives_another_members_data(federation: Federation) -> None:
    add_cases(federation.a, "kemendes", 2)
    sync(federation.a, client_post(federation.hub))
    sync(federation.b, client_post(federation.hub))
    with federation.b.sessions() as session:
        slugs = set(session.scalars(sa.select(Tenant.slug)))
        numbers = list(session.scalars(sa.select(Case.registration_number)))
    assert slugs == {"kemenkes", "kpk"}
    assert numbers == []


def _sealed_by(inst: Instance, envelope: Envelope) -> bytes:
    return seal(inst.signing, envelope)


def _request(sender: Instance, receiver: Instance, messages: tuple[Message, ...]) -> Envelope:
    return new_envelope(own_fingerprint(sender), own_fingerprint(receiver), ack=0,
                        messages=messages)


def _tenant_message(seq: int, slug: str = "kemendes") -> Message:
    with_body = {
        "slug": slug, "name": "Instansi", "kind": "kementerian", "province": None,
        "first_response_days": 5, "categories": ["gratifikasi"], "kpk_sharing": "optional",
    }
    return Message(seq=seq, kind=metadata.TENANT, body=with_body)


def _post_raw(federation: Federation, raw: bytes) -> tuple[int, dict[str, str]]:
    from federation_iface import create_app

    client = create_app(federation.hub, testing=True).test_client()
    response = client.post("/federation/v1/exchange", data=raw)
    return response.status_code, response.get_json(silent=True) or {}


def test_a_replayed_request_is_refused_and_logged(federation: Federation) -> None:
    raw = _sealed_by(federation.a, _request(federation.a, federation.hub, (_tenant_message(1),)))
    assert _post_raw(federation, raw)[0] == 200
    assert _post_raw(federation, raw) == (409, {"error": "replayed"})
    assert _refusals(federation.hub) == ["replayed"]
    assert _peer(federation.hub, "member-a").applied_count == 1


def test_a_forged_request_is_refused_and_logged(federation: Federation) -> None:
    # Member B signs an envelope claiming to be member A.
    envelope = _request(federation.a, federation.hub, (_tenant_message(1),))
    forged = seal(federation.b.signing, envelope)
    status, body = _post_raw(federation, forged)
    assert (status, body) == (400, {"error": "bad_signature"})
    assert _refusals(federation.hub) == ["bad_signature"]
    assert _peer(federation.hub, "member-a").received_seq == 0
    # A message altered after signing is refused the same way.
    genuine = json.loads(_sealed_by(federation.a, envelope))
    genuine["envelope"] = genuine["envelope"].replace("Instansi", "Instansi lain")
    assert _post_raw(federation, json.dumps(genuine).encode())[1] == {"error": "bad_signature"}


def test_a_request_for_another_installation_is_refused(federation: Federation) -> None:
    # Signed by A, but addressed to member B's key: not for this hub.
    envelope = new_envelope(own_fingerprint(federation.a), own_fingerprint(federation.b), ack=0,
                            messages=(_tenant_message(1),))
    assert _post_raw(federation, _sealed_by(federation.a, envelope))[1] == {"error": "foreign"}


def test_reordered_messages_are_refused_and_the_link_resumes(federation: Federation) -> None:
    out_of_order = (_tenant_message(2), _tenant_message(1))
    raw = _sealed_by(federation.a, _request(federation.a, federation.hub, out_of_order))
    assert _post_raw(federation, raw) == (400, {"error": "out_of_order"})
    assert _peer(federation.hub, "member-a").received_seq == 0
    # The member's own queue is in order: the next sync goes through.
    add_cases(federation.a, "kemendes", 1)
    assert sync(federation.a, client_post(federation.hub)).pending == 0


def test_a_stale_request_is_refused(federation: Federation) -> None:
    envelope = _request(federation.a, federation.hub, ())
    old = Envelope(**{**envelope.__dict__, "at": envelope.at - 3600})
    assert _post_raw(federation, _sealed_by(federation.a, old))[1] == {"error": "stale"}


def test_a_revoked_member_is_refused_at_once(federation: Federation) -> None:
    from wbs.federation.peers import revoke_member

    post = client_post(federation.hub)
    sync(federation.a, post)
    revoke_member(federation.hub, "member-a", control="127.0.0.1:1")
    add_cases(federation.a, "kemendes", 1)
    with pytest.raises(SyncError, match="revoked"):
        sync(federation.a, post)
    assert _refusals(federation.hub) == ["revoked"]
    assert len(mirrored_cases(federation.hub, "member-a")) == 0


def test_a_member_cannot_write_into_the_hubs_own_instansi(federation: Federation) -> None:
    # pemprov-sumsel is the hub's own tenant: a member claiming its slug is refused (logged),
    # and the link goes on.
    raw = _sealed_by(
        federation.a,
        _request(federation.a, federation.hub, (_tenant_message(1, "pemprov-sumsel"),)),
    )
    assert _post_raw(federation, raw)[0] == 200
    assert _refusals(federation.hub) == ["not_allowed"]
    with federation.hub.sessions() as session:
        own = session.scalar(sa.select(Tenant).where(Tenant.slug == "pemprov-sumsel"))
        assert own is not None and own.federation_peer_id is None
    assert _peer(federation.hub, "member-a").received_seq == 1


def test_joining_needs_the_fingerprint_read_out_by_the_other_side(
    federation: Federation,
) -> None:
    root = short_tempdir("fed-join-")
    with member_installation(installation_config(root, "c"), "kemenag") as c:
        request = join_request(c, "member-c")
        # The hub's operator typed the wrong fingerprint (member B's): refused.
        with pytest.raises(FederationError, match="not signed by the key"):
            add_member(federation.hub, request, own_fingerprint(federation.b))
        added = add_member(federation.hub, request, own_fingerprint(c))
        # The member's operator confirms a fingerprint that is not the hub's: refused.
        with pytest.raises(FederationError, match="not signed by the key"):
            join(c, added.ticket, own_fingerprint(federation.a))
        join(c, added.ticket, own_fingerprint(federation.hub))
        add_cases(c, "kemenag", 1)
        assert sync(c, client_post(federation.hub)).pending == 0
    with pytest.raises(FederationError, match="exists already"):
        federate(federation.hub, federation.a, "member-a")


def test_the_canonical_form_is_what_is_signed() -> None:
    assert canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_mirrors_take_no_reports_and_no_forwarding_here(federation: Federation) -> None:
    from source_iface import create_app as create_source_app
    from wbs.casework import Refusal
    from wbs.context import Context
    from wbs.forwarding import forward_destination

    sync(federation.a, client_post(federation.hub))
    # On the member, its copy of KPK; on the hub, member A's instansi: neither has a drop box
    # here, even where development paths name tenants by slug.
    for inst, slug in ((federation.a, "kpk"), (federation.hub, "kemendes")):
        app = create_source_app(inst, testing=True, dev_tenant_paths=True)
        assert app.test_client().get(f"/{slug}/").status_code == 404
    # Forwarding across installations goes between KPK and a member only: the hub's other
    # instansi cannot forward to a member's (its package would have no way there), while a
    # member's instansi forwards to KPK (wbs.federation.handling, test_handling.py).
    with federation.hub.sessions() as session:
        province = session.scalar(sa.select(Tenant).where(Tenant.slug == "pemprov-sumsel"))
        assert province is not None
        with pytest.raises(Refusal):
            forward_destination(Context(federation.hub, session, province), "kemendes")
    with federation.a.sessions() as session:
        own = session.scalar(sa.select(Tenant).where(Tenant.slug == "kemendes"))
        assert own is not None
        assert forward_destination(Context(federation.a, session, own), "kpk").is_hub


def test_sketches_travel_and_kpk_finds_duplicates_across_installations(
    federation: Federation,
) -> None:
    from tests.wbs.test_sketches import AFFAIR, KEY, RETOLD, UNRELATED
    from wbs.context import Context
    from wbs.sketches import accept_sketches, duplicate_candidates
    from wbs.tenants import get_tenant
    from workstation.sketches import sketch_document

    def upload(inst: Instance, slug: str, reports: dict[str, dict[str, str]]) -> None:
        data = json.dumps(sketch_document(KEY, reports).to_json()).encode()
        with inst.sessions() as session:
            accept_sketches(Context(inst, session, get_tenant(session, slug)), data)

    (here,) = add_cases(federation.hub, "pemprov-sumsel", 1)
    there, other = add_cases(federation.a, "kemendes", 2)
    upload(federation.hub, "pemprov-sumsel", {here: AFFAIR})
    upload(federation.a, "kemendes", {there: RETOLD, other: UNRELATED})
    sync(federation.a, client_post(federation.hub))
    with federation.hub.sessions() as session:
        hub = hub_tenant(session)
        assert hub is not None
        pairs = duplicate_candidates(session, hub)
    found = {(pair.first.registration_number, pair.second.registration_number) for pair in pairs}
    assert found == {(here, there)} or found == {(there, here)}
    assert not _refusals(federation.hub)


def test_a_member_cannot_take_another_members_instansi_or_numbers(
    federation: Federation,
) -> None:
    # Member A names B's instansi, and a case numbered as B's: both refused, logged.
    number = "PLT-KEMENKES-2026-000001"
    case = {
        "tenant": "kemendes", "number": number, "category": "gratifikasi", "mcp_area": None,
        "status": "baru", "channel": "situs", "kpk_hint": None, "received": "2026-11-30",
        "first_response_due": "2026-12-07", "closure_due": None, "first_response_at": None,
        "first_response_days": None, "first_response_workdays": None,
        "first_response_in_time": None, "closed_at": None, "shared": False,
    }
    messages = (
        _tenant_message(1, "kemenkes"),
        _tenant_message(2, "kemendes"),
        Message(seq=3, kind=metadata.CASE, body=case),
    )
    raw = _sealed_by(federation.a, _request(federation.a, federation.hub, messages))
    assert _post_raw(federation, raw)[0] == 200
    assert _refusals(federation.hub) == ["not_allowed", "not_allowed"]
    # B's own instansi and cases arrive as if nothing happened.
    (own,) = add_cases(federation.b, "kemenkes", 1)
    assert sync(federation.b, client_post(federation.hub)).pending == 0
    assert list(mirrored_cases(federation.hub, "member-b")) == [own]
    assert mirrored_cases(federation.hub, "member-a") == {}


def test_a_refused_message_leaves_nothing_behind_and_the_link_goes_on(
    federation: Federation,
) -> None:
    bad_setting = _tenant_message(1)
    bad_setting.body["kpk_sharing"] = "bogus"
    empty_name = _tenant_message(2)
    empty_name.body["name"] = ""
    raw = _sealed_by(
        federation.a, _request(federation.a, federation.hub, (bad_setting, empty_name))
    )
    assert _post_raw(federation, raw)[0] == 200
    assert _refusals(federation.hub) == ["malformed", "malformed"]
    with federation.hub.sessions() as session:
        assert session.scalar(sa.select(Tenant).where(Tenant.slug == "kemendes")) is None
    assert _peer(federation.hub, "member-a").received_seq == 2
    # A signed envelope whose time is no number (JSON's Infinity) is refused as malformed,
    # not a server error.
    envelope = _request(federation.a, federation.hub, ())
    endless = Envelope(**{**envelope.__dict__, "at": float("inf")})
    status, body = _post_raw(federation, _sealed_by(federation.a, endless))
    assert (status, body) == (400, {"error": "malformed"})


def test_a_case_travels_once_the_day_it_arrived_is_over(federation: Federation) -> None:
    import time_machine

    from tests.support import midday_wib

    post = client_post(federation.hub)
    with time_machine.travel(midday_wib(), tick=False):
        today = add_cases(federation.a, "kemendes", 1)
        with federation.a.sessions() as session:
            case = session.scalar(sa.select(Case).where(Case.registration_number == today[0]))
            assert case is not None
            case.received_at = utc_today_start()
            session.commit()
        sync(federation.a, post)
        assert mirrored_cases(federation.hub, "member-a") == {}
    with time_machine.travel(midday_wib() + dt.timedelta(days=1), tick=False):
        sync(federation.a, post)
        assert list(mirrored_cases(federation.hub, "member-a")) == today


def test_a_refused_ticket_changes_nothing_on_a_joined_member(federation: Federation) -> None:
    from wbs.onion import FEDERATION_CLIENT, onion_dir

    key_file = onion_dir(federation.a) / FEDERATION_CLIENT
    before = key_file.read_text()
    # A second hub issues member A a ticket: A is joined already, so it is refused, and the
    # client key for A's own hub stays as it was.
    root = short_tempdir("fed-hub2-")
    with member_installation(installation_config(root, "hub2"), "kemenpora") as other:
        added = add_member(other, join_request(federation.a, "member-a"),
                           own_fingerprint(federation.a))
        with pytest.raises(FederationError, match="joined to a hub already"):
            join(federation.a, added.ticket, own_fingerprint(other))
    assert key_file.read_text() == before
    assert sync(federation.a, client_post(federation.hub)).pending == 0


def test_the_doctor_tells_a_link_that_is_behind(federation: Federation) -> None:
    from peluit.doctor import check_federation

    sync(federation.a, client_post(federation.hub))
    now = dt.datetime.now(dt.UTC)
    synced = check_federation(federation.a, now)
    assert not isinstance(synced, list)
    assert (synced.level, synced.detail) == ("ok", "1 link(s) synced within a day")
    # Two days without a sync: a failure on both sides, naming the peer.
    later = now + dt.timedelta(days=2)
    member_side = check_federation(federation.a, later)
    hub_side = check_federation(federation.hub, later)
    assert not isinstance(member_side, list) and not isinstance(hub_side, list)
    assert (member_side.level, member_side.detail) == ("fail", "hub kpk: no sync for 2 d")
    assert hub_side.level == "fail" and "member member-a: no sync for 2 d" in hub_side.detail
    # B never synced.
    assert "member member-b: never synced" in hub_side.detail


def test_a_refusal_repeated_is_counted_not_written_again(federation: Federation) -> None:
    from wbs.federation.peers import revoke_member
    from wbs.federation.status import links

    post = client_post(federation.hub)
    revoke_member(federation.hub, "member-a", control="127.0.0.1:1")
    for _ in range(3):
        with pytest.raises(SyncError, match="revoked"):
            sync(federation.a, post)
    with federation.hub.sessions() as session:
        rows = session.execute(
            sa.select(FederationRefusal.reason, FederationRefusal.repeated)
        ).all()
    assert [tuple(row) for row in rows] == [("revoked", 3)]
    (member_a,) = [link for link in links(federation.hub) if link.name == "member-a"]
    assert member_a.refused == 3
