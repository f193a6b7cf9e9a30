"""Duplicates across institutions without sharing content: keyed sketches, stored per case and
compared for KPK's monitor.

A tenant's investigator uploads the sketch document their workstation exported
(``peluit-workstation sketches export``; format :mod:`crypto.sketches`): registration numbers
and MinHash values of tokens keyed with a secret the server never holds. :func:`accept_sketches`
checks the document, refuses it whole if any number is not a case of the uploader's tenant (the
same answer for another tenant's case as for none, so numbers cannot be probed), and stores one
sketch per case through the tenant's scope.

:func:`duplicate_candidates` is for KPK's monitor only (through :class:`~wbs.tenancy.HubScope`):
it bands the sketches of one key, scores the candidate pairs of *different* tenants, and returns
their handling metadata (registration numbers, tenants, status, category) with the score and
which parts agreed. Never content, and no tenant sees another tenant's pairs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.sketches import (
    THRESHOLD,
    SketchFormatError,
    parse_document,
    parse_signatures,
    part_similarities,
    similar_pairs,
)
from wbs.casework import Refusal
from wbs.context import Context
from wbs.domain import CaseStatus
from wbs.models import Case, CaseSketch, Tenant, utcnow
from wbs.tenancy import HubScope

# One document holds a tenant's decrypted cases: about 3 KB of JSON per case.
MAX_SKETCH_BYTES = 32 * 1024 * 1024
MAX_SKETCHES = 10_000
# The registration numbers a refusal names, at most (the uploader's own list, nobody else's).
_NAMED = 5


@dataclass(frozen=True)
class CaseSide:
    registration_number: str
    tenant_slug: str
    tenant_name: str
    status: CaseStatus
    category: str


@dataclass(frozen=True)
class CandidatePair:
    first: CaseSide
    second: CaseSide
    score: float
    # Which parts of the sketches agreed, and how much (text, siapa, dimana, berapa, kapan).
    parts: Mapping[str, float | None]


def accept_sketches(ctx: Context, data: bytes) -> int:
    """Store the sketches of an uploaded document for the tenant's own cases; the number
    stored. All or nothing: a refused document stores nothing. Commits."""
    if len(data) > MAX_SKETCH_BYTES:
        raise Refusal(
            "sketches_too_large", "The sketch file is too large.", limit=MAX_SKETCH_BYTES
        )
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors; so is a number of more
        # digits than Python converts, and nesting deeper than the parser recurses.
        raise Refusal("bad_sketches", "The file is not a sketch document (JSON).") from exc
    try:
        document = parse_document(raw, max_sketches=MAX_SKETCHES)
    except SketchFormatError as exc:
        raise Refusal("bad_sketches", f"The sketch document is malformed: {exc}") from exc
    numbers = [sketch.registration_number for sketch in document.sketches]
    cases = {
        case.registration_number: case
        for case in ctx.session.scalars(
            ctx.scope.select(Case).where(Case.registration_number.in_(numbers))
        )
    }
    unknown = [number for number in numbers if number not in cases]
    if unknown:
        raise Refusal(
            "unknown_cases",
            f"{len(unknown)} registration number(s) are not cases of this institution: "
            + ", ".join(unknown[:_NAMED]),
            count=len(unknown), numbers=", ".join(unknown[:_NAMED]),
        )
    existing = {
        row.case_id: row
        for row in ctx.session.scalars(
            ctx.scope.select(CaseSketch).where(
                CaseSketch.case_id.in_([case.id for case in cases.values()])
            )
        )
    }
    now = utcnow()
    for sketch in document.sketches:
        case = cases[sketch.registration_number]
        encoded = json.dumps(sketch.to_json()["signatures"], separators=(",", ":"))
        row = existing.get(case.id)
        if row is None:
            ctx.scope.add(
                CaseSketch(
                    case_id=case.id, key_id=document.key_id, signatures=encoded,
                    uploaded_at=now,
                )
            )
        else:
            row.key_id, row.signatures, row.uploaded_at = document.key_id, encoded, now
    ctx.session.commit()
    return len(document.sketches)


def duplicate_candidates(
    session: Session, hub: Tenant, threshold: float = THRESHOLD
) -> list[CandidatePair]:
    """Pairs of cases of different tenants whose sketches (of one key) look like one affair,
    best first: for KPK's monitor, with handling metadata only."""
    scope = HubScope(session, hub)
    by_key: dict[str, list[CaseSketch]] = defaultdict(list)
    for row in session.scalars(scope.select(CaseSketch).order_by(CaseSketch.case_id)):
        by_key[row.key_id].append(row)
    found: list[tuple[int, int, float, Mapping[str, float | None]]] = []
    for rows in by_key.values():
        signatures = [parse_signatures(json.loads(row.signatures)) for row in rows]
        groups: Sequence[int] = [row.tenant_id for row in rows]
        for i, j, value in similar_pairs(signatures, threshold=threshold, groups=groups):
            parts = part_similarities(signatures[i], signatures[j])
            found.append((rows[i].case_id, rows[j].case_id, value, parts))
    if not found:
        return []
    ids = {case_id for first, second, _, _ in found for case_id in (first, second)}
    sides = _sides(session, scope, ids)
    pairs = [
        CandidatePair(sides[first], sides[second], value, parts)
        for first, second, value, parts in found
    ]
    pairs.sort(
        key=lambda p: (-p.score, p.first.registration_number, p.second.registration_number)
    )
    return pairs


def _sides(session: Session, scope: HubScope, ids: set[int]) -> dict[int, CaseSide]:
    tenants = {tenant.id: tenant for tenant in session.scalars(scope.select(Tenant))}
    out = {}
    for case in session.scalars(scope.select(Case).where(Case.id.in_(sorted(ids)))):
        tenant = tenants[case.tenant_id]
        out[case.id] = CaseSide(
            case.registration_number, tenant.slug, tenant.name, case.status, case.category
        )
    return out


def sketch_count(session: Session, hub: Tenant) -> int:
    """How many cases of all tenants have a sketch (for the monitor's page)."""
    counted = HubScope(session, hub).select(CaseSketch).subquery()
    return int(session.scalar(sa.select(sa.func.count()).select_from(counted)) or 0)
