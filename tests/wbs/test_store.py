import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from wbs.store import PathRefused, Store, StoreError


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def test_create_is_atomic_and_private(store: Store) -> None:
    name = store.new_name("pemprov-sumsel")
    with store.create(name) as out:
        out.write(b"ciphertext")
        # While the write is open only the .part file exists, and it is not an item.
        assert not store.exists(name)
        assert list(store.items()) == []
    assert store.exists(name)
    assert store.open(name).read() == b"ciphertext"
    assert list(store.items()) == [name]
    assert (store.root / name).stat().st_mode & 0o777 == 0o600
    assert (store.root / name).parent.stat().st_mode & 0o777 == 0o700


def test_failed_write_leaves_nothing(store: Store) -> None:
    name = store.new_name("kpk")
    with pytest.raises(RuntimeError), store.create(name) as out:
        out.write(b"half")
        raise RuntimeError("encryption failed")
    assert not store.exists(name)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_create_never_overwrites(store: Store) -> None:
    name = store.new_name("kpk")
    with store.create(name) as out:
        out.write(b"first")
    with pytest.raises((StoreError, FileExistsError)), store.create(name) as out:
        out.write(b"second")
    assert store.open(name).read() == b"first"


@pytest.mark.parametrize(
    "relative",
    [
        "../escape/x/a.gpg",
        "kpk/../../a.gpg",
        "/etc/passwd",
        "kpk/src/../../../etc.gpg",
        "kpk/src/a.txt",
        "kpk/a.txt",
        "a.gpg",
        "kpk/src/sub/a.gpg",
        "KPK/src/a.gpg",
        "kpk/src/.hidden.gpg",
        "kpk/src/a.gpg\0",
        "",
    ],
)
def test_paths_outside_the_store_are_refused(store: Store, relative: str) -> None:
    with pytest.raises(PathRefused):
        store.resolve(relative)


def test_symlink_leading_out_is_refused(store: Store, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "kpk").mkdir()
    os.symlink(outside, store.root / "kpk" / "evil")
    with pytest.raises(PathRefused):
        store.resolve("kpk/evil/a.gpg")
    with pytest.raises(PathRefused), store.create("kpk/evil/a.gpg") as out:
        out.write(b"x")
    assert list(outside.iterdir()) == []


def test_sweep_removes_parts_and_settles_interrupted_deletions(store: Store) -> None:
    kept, gone = store.new_name("kpk"), store.new_name("kpk")
    for name in (kept, gone):
        with store.create(name) as out:
            out.write(b"c")
        path = store.resolve(name)
        path.rename(path.with_name(path.name + ".deleting"))
    stale = store.resolve(store.new_name("kpk"))
    stale.with_name(stale.name + ".part").write_bytes(b"half")

    removed = store.sweep(is_referenced=lambda rel: rel == kept)

    assert sorted(removed) == sorted([gone, f"{stale.relative_to(store.root)}.part"])
    assert list(store.items()) == [kept]
    assert [p.name for p in store.root.rglob("*.part")] == []


class _Base(DeclarativeBase):
    pass


class _Item(_Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    store_path: Mapped[str]


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    _Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def _stored_row(store: Store, session: Session) -> _Item:
    name = store.new_name("kpk")
    with store.create(name) as out:
        out.write(b"c")
    row = _Item(store_path=name)
    session.add(row)
    session.commit()
    return row


def test_remove_with_rows_deletes_file_and_row(store: Store, session: Session) -> None:
    row = _stored_row(store, session)
    name = row.store_path
    store.remove_with_rows(session, [name], [row])
    assert not store.exists(name)
    assert session.scalar(sa.select(sa.func.count()).select_from(_Item)) == 0
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_remove_with_rows_keeps_both_when_commit_fails(store: Store, session: Session) -> None:
    row = _stored_row(store, session)
    name = row.store_path

    def refuse(*_: object) -> None:
        raise RuntimeError("database went away")

    sa.event.listen(session, "before_commit", refuse)
    with pytest.raises(RuntimeError):
        store.remove_with_rows(session, [name], [row])
    sa.event.remove(session, "before_commit", refuse)
    assert store.exists(name)
    assert session.scalar(sa.select(sa.func.count()).select_from(_Item)) == 1
