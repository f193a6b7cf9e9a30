"""What must hold on the server after any request: the store and the database agree."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from wbs.instance import Instance
from wbs.models import Case, Reply, Submission
from wbs.store import FRESH, POOL


@dataclass(frozen=True)
class Snapshot:
    cases: int
    submissions: int
    files: frozenset[str]


def snapshot(inst: Instance) -> Snapshot:
    """Counts and stored files, after checking that no half submission exists.

    Every file in the store is a complete item (no ``.part``, no ``.deleting``, nothing else)
    that a row references, every row's file exists, and every case has its form. The store's
    own bookkeeping is checked too: the pool holds only empty files, and each fresh-inode
    marker is a link to a complete item (a marker left by a failed write would keep a second
    name for ciphertext that no row references).
    """
    root = inst.config.store_dir
    own = (root / POOL, root / FRESH)
    on_disk = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not any(p.is_relative_to(folder) for folder in own)
    }
    items = set(inst.store.items())
    assert on_disk == items, f"not a complete item: {sorted(on_disk - items)}"
    for spare in (root / POOL).glob("*"):
        assert spare.is_file() and spare.stat().st_size == 0, f"not an empty pool file: {spare}"
    item_inodes = {(root / item).stat().st_ino for item in items}
    for marker in (root / FRESH).glob("*"):
        assert marker.stat().st_ino in item_inodes, f"a marker without its item: {marker.name}"
    with inst.sessions() as session:
        paths = set(session.scalars(sa.select(Submission.store_path)))
        paths |= set(session.scalars(sa.select(Reply.store_path)))
        cases = int(session.scalar(sa.select(sa.func.count()).select_from(Case)) or 0)
        submissions = int(session.scalar(sa.select(sa.func.count()).select_from(Submission)) or 0)
        formless = session.scalar(
            sa.select(sa.func.count()).select_from(Case).where(
                ~sa.exists().where(Submission.case_id == Case.id, Submission.kind == "form")
            )
        )
    assert items - paths == set(), f"files no row references: {sorted(items - paths)}"
    assert paths - items == set(), f"rows whose file is missing: {sorted(paths - items)}"
    assert formless == 0, "a case without its form"
    return Snapshot(cases, submissions, frozenset(items))
