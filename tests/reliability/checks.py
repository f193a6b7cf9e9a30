"""What must hold on the server after any request: the store and the database agree."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from wbs.instance import Instance
from wbs.models import Case, Reply, Submission


@dataclass(frozen=True)
class Snapshot:
    cases: int
    submissions: int
    files: frozenset[str]


def snapshot(inst: Instance) -> Snapshot:
    """Counts and stored files, after checking that no half submission exists.

    Every file in the store is a complete item (no ``.part``, no ``.deleting``, nothing else)
    that a row references, every row's file exists, and every case has its form.
    """
    root = inst.config.store_dir
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    items = set(inst.store.items())
    assert on_disk == items, f"not a complete item: {sorted(on_disk - items)}"
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
