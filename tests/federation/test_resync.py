"""A side of the link restored from a backup: its sequence numbers went back with its
database. The link starts over in a new epoch (by itself after `peluit restore`, or by
`peluit federation resync`): both sides number from one again, everything is sent again by
difference, nothing is stored twice, and what the restored side lost comes back from the
other where it can. Real gpg; the databases restored with SQLite's backup API."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine

from crypto.codenames import generate_codename
from crypto.keyring import kill_agent
from peluit.demo import make_workstation_key
from tests.federation.conftest import Federation, client_post, mirrored_cases
from tests.support import midday_wib, short_tempdir
from wbs.backup import sqlite_path
from wbs.context import Context
from wbs.federation.exchange import SyncError, resync, sync
from wbs.instance import Instance
from wbs.intake import Intake, ReportAnswers
from wbs.models import FederationPeer, FederationRefusal, Submission
from wbs.sources import register_source
from wbs.tenants import add_recipient_key, get_tenant

ANSWERS = ReportAnswers(
    category="gratifikasi", mcp_area="perizinan", apa="Hadiah untuk izin", siapa="Kasi",
    kapan="2026", dimana="Kemendes", bagaimana="Tunai", berapa="Rp 10 juta", kronologi="",
)
SQLITE = pytest.mark.parametrize("federation", ["sqlite"], indirect=True)


def _day(days: int) -> Any:
    return time_machine.travel(midday_wib() + dt.timedelta(days=days), tick=False)


def _file(inst: Instance, evidence: bytes) -> str:
    with inst.sessions() as session:
        ctx = Context(inst, session, get_tenant(session, "kemendes"))
        source = register_source(ctx, generate_codename())
        intake = Intake(ctx, source.source_id, to_kpk=True)
        sink = intake.open_file("file", "bukti.bin")
        sink.write(evidence)
        sink.close()
        return intake.new_case(ANSWERS).registration_number


def _snapshot(inst: Instance, target: Path) -> Path:
    with sqlite3.connect(sqlite_path(inst.config)) as live, sqlite3.connect(target) as copy:
        live.backup(copy)
    return target


def _restore(inst: Instance, snapshot: Path) -> None:
    inst.engine.dispose()
    with sqlite3.connect(snapshot) as saved, sqlite3.connect(sqlite_path(inst.config)) as live:
        saved.backup(live)


def _items(hub: Instance) -> dict[str, int]:
    """How many items each of member A's cases has on the hub."""
    found: dict[str, int] = {}
    with hub.sessions() as session:
        for number, case in mirrored_cases(hub, "member-a").items():
            found[number] = session.scalar(
                sa.select(sa.func.count()).where(Submission.case_id == case.id)
            ) or 0
    return found


def _sound(inst: Instance) -> list[tuple[int, int]]:
    with inst.sessions() as session:
        return [(p.applied_count, p.received_seq) for p in session.scalars(
            sa.select(FederationPeer).where(FederationPeer.status == "active")
        )]


def _backed_up_between_two_cases(
    federation: Federation, side: Instance, tmp_path: Path
) -> tuple[Any, str, str, Path]:
    """A files a case that reaches the hub; ``side`` is backed up; A files another, which
    reaches the hub too. The poster, both numbers, and the backup."""
    hub, a = federation.hub, federation.a
    post = client_post(hub)
    sync(a, post)
    first = _file(a, b"bukti pertama")
    with _day(1):
        sync(a, post)
        saved = _snapshot(side, tmp_path / "backup.sqlite")
        later = _file(a, b"bukti sesudah cadangan")
    with _day(2):
        sync(a, post)
    assert _items(hub) == {first: 2, later: 2}
    return post, first, later, saved


@SQLITE
@pytest.mark.usefixtures("a_workstation")
def test_a_member_restored_from_a_backup_starts_the_link_over(
    federation: Federation, tmp_path: Path
) -> None:
    hub, a = federation.hub, federation.a
    post, first, lost, saved = _backed_up_between_two_cases(federation, a, tmp_path)

    # A is restored from the backup, as `peluit restore` leaves it (its marker included).
    _restore(a, saved)
    (a.config.instance_dir / "federation" / "restored").touch()
    with _day(2):
        after = _file(a, b"bukti baru setelah pemulihan")  # its rows reuse the lost ones' ids
    with _day(3):
        result = sync(a, post)
    assert result.pending == 0
    # The first case's items were not stored twice; the new one's reached the hub although
    # they carry the lost items' row ids; the lost case stays on the hub (KPK keeps it).
    assert _items(hub) == {first: 2, lost: 2, after: 2}
    with hub.sessions() as session:
        assert list(session.scalars(sa.select(FederationRefusal.reason))) == []
        epochs = {p.epoch for p in session.scalars(sa.select(FederationPeer).where(
            FederationPeer.name == "member-a"
        ))}
    with a.sessions() as session:
        assert {p.epoch for p in session.scalars(sa.select(FederationPeer))} == epochs
    assert epochs != {0}
    assert not (a.config.instance_dir / "federation" / "restored").exists()
    for inst in (hub, a):
        assert all(applied == received for applied, received in _sound(inst))
    with _day(3):
        assert sync(a, post).sent == 0


@SQLITE
@pytest.mark.usefixtures("a_workstation")
def test_a_hub_restored_by_hand_is_found_out_and_the_link_starts_over(
    federation: Federation, tmp_path: Path
) -> None:
    hub, a = federation.hub, federation.a
    post, first, later, saved = _backed_up_between_two_cases(federation, hub, tmp_path)

    # The hub's database is put back by hand (not `peluit restore`, no marker): A's next
    # request says the hub had confirmed more than it now holds. The hub applies nothing of
    # it, starts over and says so; A starts over too and sends again what the hub lost.
    _restore(hub, saved)
    assert set(_items(hub)) == {first}
    with _day(2):
        result = sync(a, post)
    assert result.pending == 0
    assert _items(hub) == {first: 2, later: 2}
    with hub.sessions() as session:
        assert list(session.scalars(sa.select(FederationRefusal.reason))) == ["started_over"]
    for inst in (hub, a):
        assert all(applied == received for applied, received in _sound(inst))

    # An operator may start a link over by hand too (`peluit federation resync`): nothing is
    # stored twice.
    assert resync(hub, "member-a") == ["member-a"]
    with _day(2):
        assert sync(a, post).pending == 0
    assert _items(hub) == {first: 2, later: 2}
    with pytest.raises(SyncError, match="no active link"):
        resync(hub, "member-x")


@SQLITE
@pytest.mark.usefixtures("a_workstation")
def test_a_member_restored_by_hand_is_found_out_before_its_messages_are_applied(
    federation: Federation, tmp_path: Path
) -> None:
    hub, a = federation.hub, federation.a
    post = client_post(hub)
    sync(a, post)
    with _day(1):
        saved = _snapshot(a, tmp_path / "a.sqlite")
        first = _file(a, b"bukti pertama")
    # KPK gets a new key meanwhile: the hub sends it to A, and A confirms it.
    home = short_tempdir("fed-rs-kpk-")
    try:
        armored = make_workstation_key(home, "KPK baru <kpk2@demo.peluit.invalid>")
        with hub.sessions() as session:
            add_recipient_key(session, hub.keyring, get_tenant(session, "kpk"), armored)
            session.commit()
    finally:
        kill_agent(home)
    with _day(2):
        sync(a, post)
    # A's database is put back by hand: its cursors went back, and the numbers of what it
    # sends next name other messages than the hub applied under them. The hub sees that A
    # applied fewer of its messages than A had confirmed, before applying anything. (Had no
    # message of the hub's reached A since the backup, nothing would show it: `peluit
    # restore` marks a restore for that reason, and `peluit federation resync` is for a
    # database put back by other means.)
    _restore(a, saved)
    with _day(2):
        again = _file(a, b"bukti lain dengan nomor yang sama")
    with _day(3):
        assert sync(a, post).pending == 0
    assert _items(hub) == {first: 2, again: 2}
    with hub.sessions() as session:
        assert list(session.scalars(sa.select(FederationRefusal.reason))) == ["started_over"]
    for inst in (hub, a):
        assert all(applied == received for applied, received in _sound(inst))
