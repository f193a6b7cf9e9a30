"""What a seized store tells about when pelapor wrote: after a publication, nothing finer than
the day. Real files, real kernel times (ctime cannot be frozen: the kernel sets it), real gpg.

The kernel stamps files with its own coarse clock, so every "when" here is read back from the
kernel (a probe file's ctime), never from Python's clock, which time-machine moves.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy.orm import Session

from crypto.codenames import generate_codename
from peluit.devrun import next_boundary
from tests.conftest import DemoInstance
from tests.support import CLOCKS, short_tempdir
from wbs.bundle import write_bundle
from wbs.casework import post_reply
from wbs.context import Context
from wbs.intake import Intake, ReportAnswers
from wbs.models import Case, Reply, Submission, Tenant
from wbs.sources import delete_reply, register_source, reply_token, source_replies
from wbs.store import FRESH, POOL, POOL_MINIMUM, Store, day_label_ns
from wbs.tenants import get_tenant
from wbs.workdays import local_date

REPO = Path(__file__).resolve().parents[2]
NS = 1_000_000_000


def btime_ns(path: Path) -> int | None:
    """The birth time (statx) of ``path``, or None where the file system records none.

    Python 3.11's os.stat has no birth time on Linux; coreutils' stat asks statx for it.
    """
    out = subprocess.run(
        ["stat", "-c", "%.9W", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        value = Decimal(out)
    except ArithmeticError:
        return None
    return int(value * NS) if value else None


def kernel_now(probe_dir: Path) -> int:
    """The kernel's file clock now: the ctime of a file just changed (outside the store)."""
    probe = probe_dir / "probe"
    probe.write_bytes(b"x")
    return probe.stat().st_ctime_ns


def after(probe_dir: Path, moment: int) -> int:
    """Wait until the kernel's file clock is past ``moment``; return the new time."""
    while (now := kernel_now(probe_dir)) <= moment:
        time.sleep(0.005)
    return now


def is_day_label(ns: int) -> bool:
    return ns == day_label_ns(local_date(dt.datetime.fromtimestamp(ns / NS, dt.UTC)))


def everything_under(root: Path) -> list[Path]:
    """Every file and folder under ``root``, listed with O_NOATIME: the audit's own reading
    must not leave its time on the folders it audits (the store reads the same way)."""
    found, folders = [root], [root]
    while folders:
        folder = folders.pop()
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOATIME)
        try:
            names = os.listdir(fd)
        finally:
            os.close(fd)
        for name in names:
            path = folder / name
            found.append(path)
            if path.is_dir() and not path.is_symlink():
                folders.append(path)
    return found


@pytest.fixture
def probe_dir() -> Path:
    return short_tempdir("probe-")


@pytest.fixture
def btime_supported(tmp_path: Path) -> bool:
    (tmp_path / "b").write_bytes(b"")
    supported = btime_ns(tmp_path / "b") is not None
    if not supported:
        warnings.warn(
            "this file system records no birth time: checked by inode numbers only",
            stacklevel=1,
        )
    return supported


def _answers() -> ReportAnswers:
    return ReportAnswers(
        category="suap_menyuap", mcp_area=None, apa="Suap", siapa="Kepala X", kapan="Maret",
        dimana="Dinas", bagaimana="Fee", berapa="Rp 5 juta", kronologi="...",
    )


def test_a_seized_store_shows_boundaries_and_days_never_a_pelapor_time(
    demo: DemoInstance, probe_dir: Path, btime_supported: bool
) -> None:
    inst = demo.instance
    root = inst.store.root
    # The boundary before the pelapor come: folders and the pool of empty files are made.
    first = inst.publish_store()
    assert first.pool >= POOL_MINIMUM and first.made == first.pool
    pool_inodes = {p.stat().st_ino for p in (root / POOL).iterdir()}
    pool_made = kernel_now(probe_dir)

    # Two pelapor and an investigator, each at a frozen, distinct instant of the app's clock.
    writes_start = after(probe_dir, pool_made)
    moments = iter(CLOCKS.values())
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        with time_machine.travel(next(moments), tick=False):
            alice = register_source(Context(inst, session, tenant), generate_codename())
            intake = Intake(Context(inst, session, tenant), alice.source_id, to_kpk=False)
            sink = intake.open_file("file", "kontrak.pdf", {})
            sink.write(os.urandom(200_000))
            sink.close()
            case_a = intake.new_case(_answers())
        with time_machine.travel(next(moments), tick=False):
            bob = register_source(Context(inst, session, tenant), generate_codename())
            case_b = Intake(Context(inst, session, tenant), bob.source_id, to_kpk=False).new_case(
                _answers()
            )
        with time_machine.travel(next(moments), tick=False):
            Intake(Context(inst, session, tenant), alice.source_id, to_kpk=False).follow_up(
                case_a, "Tambahan bukti"
            )
        with time_machine.travel(next(moments), tick=False):
            post_reply(Context(inst, session, tenant), case_b, "Terima kasih, mohon rinciannya.")
            read_and_gone = post_reply(Context(inst, session, tenant), case_b, "Sudah dibaca?")
        with time_machine.travel(next(moments), tick=False):
            # Bob reads his replies and deletes one: a read and a deletion, at his moment.
            ctx = Context(inst, session, tenant)
            assert len(source_replies(ctx, bob, case_b)) == 2
            assert delete_reply(ctx, bob.source_id, reply_token(ctx, read_and_gone))
        paths = list(session.scalars(sa.select(Submission.store_path)))
        paths += list(session.scalars(sa.select(Reply.store_path)))
        sources = {alice.source_id, bob.source_id}
    writes_end = kernel_now(probe_dir)
    assert len(paths) == 5  # two forms, a file, a follow-up message, a reply (one deleted)

    # Before publication the leak is there: each item carries its exact time of writing, and
    # the database file the time of its last write.
    for relative in paths:
        assert writes_start <= inst.store.resolve(relative).stat().st_mtime_ns <= writes_end
    database = Path(str(inst.engine.url.database))
    database_files = [p for p in (database, Path(f"{database}-wal")) if p.exists()]
    assert database in database_files
    assert any(writes_start <= p.stat().st_mtime_ns <= writes_end for p in database_files)

    publish_start = after(probe_dir, writes_end)
    second = inst.publish_store()
    publish_end = kernel_now(probe_dir)
    assert second.replaced == 0 and second.files >= len(paths)

    # The audit: every file and every folder of the store, items and pool alike.
    everything = everything_under(root)
    for path in everything:
        info = path.lstat()
        assert is_day_label(info.st_mtime_ns), path
        assert info.st_atime_ns == info.st_mtime_ns, path
        # ctime: the publication's moment, after every write; never a pelapor's.
        assert publish_start <= info.st_ctime_ns <= publish_end, path
        if btime_supported:
            born = btime_ns(path)
            assert born is not None and not writes_start <= born <= writes_end, path
    # The database's files and their folder too: a day label, the publication's ctime.
    for path in [*database_files, database.parent]:
        info = path.lstat()
        assert is_day_label(info.st_mtime_ns) and info.st_atime_ns == info.st_mtime_ns, path
        assert publish_start <= info.st_ctime_ns <= publish_end, path
    # Every item lives in a pool inode: none was made at a pelapor's moment.
    items = sorted(inst.store.items())
    assert items == sorted(paths)
    assert {inst.store.resolve(p).stat().st_ino for p in items} <= pool_inodes
    # No folder per pelapor: the folders are the store's own and the tenants'.
    folders = {p.relative_to(root).as_posix() for p in everything if p.is_dir()}
    with inst.sessions() as session:
        slugs = set(session.scalars(sa.select(Tenant.slug)))
    assert folders == {".", POOL, FRESH} | slugs
    assert all(len(p.split("/")) == 2 for p in paths)
    assert not any(source in str(path) for path in everything for source in sources)

    # An export reads every item (with O_NOATIME) and counts the items, never a pool file.
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        cases = list(session.scalars(sa.select(Case).order_by(Case.id)))
        summary = write_bundle(inst, session, tenant, cases, io.BytesIO())
    assert (summary.cases, summary.items) == (2, 5)
    assert all(p.lstat().st_atime_ns == p.lstat().st_mtime_ns for p in everything_under(root))

    # A second run at another moment changes no day, and is counted the same.
    third = inst.publish_store()
    assert (third.files, third.pool, third.made) == (second.files, second.pool, 0)
    assert all(is_day_label(p.lstat().st_mtime_ns) for p in everything_under(root))


def test_a_write_with_the_pool_empty_is_moved_into_a_pool_inode_at_the_next_boundary(
    tmp_path: Path, probe_dir: Path, btime_supported: bool
) -> None:
    store = Store(tmp_path / "store")
    name = store.new_name("kpk")
    with store.create(name) as out:
        out.write(b"ciphertext")
    written = store.resolve(name).stat()
    marker = store.root / FRESH / (name.replace("/", "+") + ".fresh")
    # The fallback: a fresh inode, marked for the publisher (the marker is the same inode).
    assert written.st_nlink == 2 and marker.stat().st_ino == written.st_ino
    assert list(store.items()) == [name]

    start = after(probe_dir, written.st_ctime_ns)
    done = store.publish(["kpk"])
    end = kernel_now(probe_dir)

    assert done.replaced == 1
    now = store.resolve(name).stat()
    assert now.st_ino != written.st_ino and now.st_nlink == 1 and not marker.exists()
    assert store.open(name).read() == b"ciphertext"
    assert is_day_label(now.st_mtime_ns)
    # Its day is the day it was written, not the day of the publication.
    assert now.st_mtime_ns == day_label_ns(
        local_date(dt.datetime.fromtimestamp(written.st_mtime_ns / NS, dt.UTC))
    )
    if btime_supported:
        born = btime_ns(store.resolve(name))
        assert born is not None and start <= born <= end
    assert store.pool_size() == done.pool == POOL_MINIMUM - 1


def test_a_publication_during_a_fresh_write_leaves_it_to_the_next(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    name = store.new_name("kpk")
    with store.create(name) as out:
        out.write(b"first half ")
        # A publication while the write runs (with the pool empty: a fresh inode): the part
        # and its marker stay, and the pool it fills is not used for this write.
        during = store.publish(["kpk"])
        assert during.replaced == 0
        assert len(list((store.root / FRESH).iterdir())) == 1
        out.write(b"second half")
    assert store.open(name).read() == b"first half second half"
    after_write = store.publish(["kpk"])
    assert after_write.replaced == 1
    assert list((store.root / FRESH).iterdir()) == []
    assert store.resolve(name).stat().st_nlink == 1
    assert store.open(name).read() == b"first half second half"


def test_two_writers_racing_for_the_pool_each_get_their_own_inode(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.publish(["kpk"])
    pool = {p.stat().st_ino for p in (store.root / POOL).iterdir()}
    writers, each = 8, 8  # 64 writes for a pool of 32: the race, then the fallback
    barrier = threading.Barrier(writers)
    written: dict[str, bytes] = {}
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(each):
                name = store.new_name("kpk")
                data = f"{worker}-{i}".encode()
                with store.create(name) as out:
                    out.write(data)
                written[name] = data
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    inodes = {name: store.resolve(name).stat().st_ino for name in written}
    assert len(set(inodes.values())) == writers * each  # no two items share an inode
    assert sum(ino in pool for ino in inodes.values()) == len(pool)  # every pool file used once
    assert store.pool_size() == 0
    assert {name: store.open(name).read() for name in written} == written

    done = store.publish(["kpk"])
    assert done.replaced == writers * each - len(pool)
    fresh = {ino for ino in inodes.values() if ino not in pool}
    stats = [store.resolve(name).stat() for name in written]
    # The fresh inodes are gone: each such item now sits in a pool inode of this publication.
    assert not {s.st_ino for s in stats} & fresh
    assert len({s.st_ino for s in stats}) == writers * each
    assert all(s.st_nlink == 1 for s in stats)
    assert list((store.root / FRESH).iterdir()) == []
    assert {name: store.open(name).read() for name in written} == written


def test_publications_running_beside_writers_and_each_other_lose_nothing(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    written: dict[str, bytes] = {}
    errors: list[BaseException] = []
    done = threading.Event()

    def writer(worker: int) -> None:
        try:
            for i in range(25):
                name = store.new_name("kpk")
                with store.create(name) as out:
                    out.write(f"{worker}-{i}".encode() * 1000)
                written[name] = f"{worker}-{i}".encode() * 1000
        except BaseException as exc:
            errors.append(exc)

    def publisher() -> None:
        try:
            while not done.is_set():
                store.publish(["kpk"])
        except BaseException as exc:
            errors.append(exc)

    publishers = [threading.Thread(target=publisher) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in publishers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in publishers:
        thread.join()
    assert errors == []
    store.publish(["kpk"])
    assert sorted(store.items()) == sorted(written)
    assert {name: store.open(name).read() for name in written} == written
    assert list((store.root / FRESH).iterdir()) == []
    assert all(store.resolve(name).stat().st_nlink == 1 for name in written)
    assert all(is_day_label(p.lstat().st_mtime_ns) for p in everything_under(store.root))


_CRASH = """
import os, signal, sys
from pathlib import Path
from wbs.store import Store
store = Store(Path(sys.argv[1]))
with store.create(store.new_name("kpk")) as out:
    out.write(b"half a ciphertext")
    out.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _crash_in_a_write(root: Path) -> None:
    crashed = subprocess.run([sys.executable, "-c", _CRASH, str(root)], cwd=REPO, check=False)
    assert crashed.returncode == -signal.SIGKILL


def test_a_write_killed_halfway_leaves_nothing_the_sweep_does_not_settle(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.publish(["kpk"])
    _crash_in_a_write(store.root)  # in a pool inode
    for pool_file in (store.root / POOL).iterdir():
        pool_file.unlink()
    _crash_in_a_write(store.root)  # in a fresh inode, with its marker
    assert len(list(store.root.glob("kpk/*.part"))) == 2
    assert len(list((store.root / FRESH).iterdir())) == 1

    removed = store.sweep(is_referenced=lambda _: False)

    assert len(removed) == 2 and all(r.endswith(".gpg.part") for r in removed)
    assert list(store.items()) == []
    # No ciphertext is left anywhere in the store, pool and markers included.
    assert [p for p in store.root.rglob("*") if p.is_file()] == []
    # The next publication refills the pool (its day's fill was used up).
    assert store.publish(["kpk"]).pool == POOL_MINIMUM


def test_the_pool_is_filled_once_a_day_from_demand_and_refilled_when_low(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    today = dt.datetime.now(dt.UTC)
    assert store.publish(["kpk"], now=today).made == POOL_MINIMUM

    def write(count: int) -> None:
        for _ in range(count):
            with store.create(store.new_name("kpk")) as out:
                out.write(b"c")

    write(10)
    # Same day, pool still above a quarter of its target: no new inodes (they would date).
    assert store.publish(["kpk"], now=today).made == 0
    assert store.pool_size() == POOL_MINIMUM - 10
    # The next day: topped up to the target again.
    tomorrow = today + dt.timedelta(days=1)
    assert store.publish(["kpk"], now=tomorrow).made == 10
    # A busy day: the pool runs low and is refilled at once, to twice the busiest day's items.
    write(POOL_MINIMUM - 2)
    refill = store.publish(["kpk"], now=tomorrow)
    assert store.pool_size() == refill.pool == 2 * (10 + POOL_MINIMUM - 2)
    # Pool files are never items, and never swept.
    assert len(list(store.items())) == 10 + POOL_MINIMUM - 2
    assert store.sweep(is_referenced=lambda _: True) == []
    assert store.pool_size() == refill.pool


def test_old_layout_items_are_still_read_published_and_removed(
    tmp_path: Path, session_db: Session
) -> None:
    store = Store(tmp_path / "store")
    old = f"kpk/{'ab' * 32}/{'cd' * 16}.gpg"
    with store.create(old) as out:
        out.write(b"old item")
    store.publish(["kpk"])
    assert list(store.items()) == [old]
    assert store.open(old).read() == b"old item"
    assert is_day_label(store.resolve(old).parent.stat().st_mtime_ns)
    store.remove_with_rows(session_db, [old], [])
    # The old source folder goes with its last item; the tenant's stays.
    assert not (store.root / "kpk" / ("ab" * 32)).exists()
    assert (store.root / "kpk").is_dir()


def test_publication_moves_old_layout_items_out_of_per_source_folders(
    demo: DemoInstance, probe_dir: Path
) -> None:
    inst = demo.instance
    root = inst.store.root
    with inst.sessions() as session:
        tenant = get_tenant(session, "pemprov-sumsel")
        source = register_source(Context(inst, session, tenant), generate_codename())
        case = Intake(Context(inst, session, tenant), source.source_id, to_kpk=False).new_case(
            _answers()
        )
        # As an instance before this change stored it: in a folder named by the source.
        form = case.submissions[0]
        old = f"{tenant.slug}/{source.source_id}/{form.store_path.split('/')[1]}"
        (root / tenant.slug / source.source_id).mkdir()
        os.rename(inst.store.resolve(form.store_path), root / old)
        form.store_path = old
        session.commit()
        ciphertext = inst.store.open(old).read()
    stray = f"{tenant.slug}/{'ab' * 32}/{'cd' * 16}.gpg"
    (root / stray).parent.mkdir()
    (root / stray).write_bytes(b"no row has this")

    done = inst.publish_store()

    assert done.moved == 1
    with inst.sessions() as session:
        moved = session.scalars(sa.select(Submission.store_path)).one()
    assert moved == f"{tenant.slug}/{old.split('/')[2]}"
    assert inst.store.open(moved).read() == ciphertext
    assert demo.decrypt(ciphertext)  # still the workstation's to read
    assert not (root / tenant.slug / source.source_id).exists()
    assert inst.store.resolve(moved).stat().st_nlink == 1
    assert list((root / FRESH).iterdir()) == []
    assert is_day_label(inst.store.resolve(moved).stat().st_mtime_ns)
    # A file no row knows is not this database's item: left where it is.
    assert (root / stray).read_bytes() == b"no row has this"
    assert inst.publish_store().moved == 0


def test_a_failed_move_of_an_old_item_keeps_it_where_it_was(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.publish(["kpk"])
    old = f"kpk/{'ab' * 32}/{'cd' * 16}.gpg"
    with store.create(old) as out:
        out.write(b"old item")

    def refuse(new: str) -> None:
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        store.move_old_item(old, refuse)
    assert list(store.items()) == [old]
    assert store.open(old).read() == b"old item"
    assert list((store.root / FRESH).iterdir()) == []
    assert not list(store.root.glob("kpk/*.*"))  # no copy, no .deleting


@pytest.fixture
def session_db(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_removing_a_new_layout_item_keeps_the_tenant_folder(
    tmp_path: Path, session_db: Session
) -> None:
    store = Store(tmp_path / "store")
    store.ensure_tenant("kpk")
    name = store.new_name("kpk")
    with store.create(name) as out:
        out.write(b"c")
    store.remove_with_rows(session_db, [name], [])
    assert (store.root / "kpk").is_dir() and list((store.root / "kpk").iterdir()) == []
    # Its fresh-inode marker went with it: no copy of the ciphertext stays.
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("now", "minutes", "expected"),
    [
        # 10:20 WIB -> 11:00 WIB
        (dt.datetime(2026, 12, 2, 3, 20, tzinfo=dt.UTC), 60, dt.datetime(2026, 12, 2, 4, 0)),
        # exactly on a boundary: the next one
        (dt.datetime(2026, 12, 2, 4, 0, tzinfo=dt.UTC), 60, dt.datetime(2026, 12, 2, 5, 0)),
        # 23:59 WIB -> midnight WIB (17:00 UTC)
        (dt.datetime(2026, 12, 2, 16, 59, tzinfo=dt.UTC), 60, dt.datetime(2026, 12, 2, 17, 0)),
        (dt.datetime(2026, 12, 2, 3, 20, tzinfo=dt.UTC), 15, dt.datetime(2026, 12, 2, 3, 30)),
        (dt.datetime(2026, 12, 2, 3, 20, tzinfo=dt.UTC), 1440, dt.datetime(2026, 12, 2, 17, 0)),
    ],
)
def test_the_development_run_publishes_at_boundaries_from_midnight_wib(
    now: dt.datetime, minutes: int, expected: dt.datetime
) -> None:
    assert next_boundary(now, minutes) == expected.replace(tzinfo=dt.UTC)
