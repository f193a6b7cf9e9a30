"""What the admin pages do below HTTP: tenant settings, deleting case items and whole cases,
and the plain-language verdicts of a key check.

Settings and deletions write to the append-only log; the notes name what changed or what was
removed (field names, item kinds, a registration number), never report content.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flask_babel import LazyString, gettext, lazy_gettext
from sqlalchemy.orm import Session

from journalist_iface.cases import Item, case_items
from wbs.domain import DEFAULT_CATEGORY_CODES, FINAL_STATUSES, EventKind, KpkSharing
from wbs.models import Case, Event, Investigator, Reply, Submission, Tenant
from wbs.store import Store
from wbs.tenancy import TenantScope

MIB = 1024 * 1024
MAX_FIRST_RESPONSE_DAYS = 60
MAX_NAME = 200

# One sentence per KeyRefused.reason: the admin reads what to do, in their language.
KEY_VERDICTS: Mapping[str, LazyString] = {
    "secret_key": lazy_gettext(
        "This is a PRIVATE key and was not stored. Upload only the public key (gpg --armor "
        "--export FINGERPRINT). If this private key left the air-gapped workstation, treat it "
        "as compromised: make a new key pair."
    ),
    "expired": lazy_gettext(
        "This key, or its encryption subkey, has expired. Extend its expiry date on the "
        "workstation and export it again."
    ),
    "revoked": lazy_gettext("This key, or its encryption subkey, was revoked by its owner."),
    "no_encryption_subkey": lazy_gettext(
        "This key cannot encrypt: it has no usable encryption subkey."
    ),
    "weak_rsa": lazy_gettext(
        "This key is too weak (RSA, DSA or ElGamal under 3072 bits). Make an ed25519/cv25519 "
        "key, or RSA of at least 3072 bits."
    ),
    "not_a_key": lazy_gettext("This is not an OpenPGP public key."),
    "multiple_keys": lazy_gettext(
        "This holds more than one key. Upload one public key at a time."
    ),
}
KEY_CHECK_FAILED = lazy_gettext("The key could not be checked. Nothing was stored.")


def key_verdict(reason: str) -> str:
    return str(KEY_VERDICTS.get(reason, KEY_CHECK_FAILED))


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantSettings:
    name: str
    categories: tuple[str, ...]
    first_response_days: int
    kpk_sharing: KpkSharing
    max_upload_bytes: int | None

    @classmethod
    def of(cls, tenant: Tenant) -> TenantSettings:
        return cls(
            name=tenant.name,
            categories=tuple(tenant.categories),
            first_response_days=tenant.first_response_days,
            kpk_sharing=tenant.kpk_sharing,
            max_upload_bytes=tenant.max_upload_bytes,
        )


def parse_settings(
    form: Mapping[str, str], categories: Sequence[str], tenant: Tenant, instance_max: int
) -> tuple[TenantSettings | None, list[str]]:
    """The settings form, checked; ``categories`` are the boxes ticked. Problems translated."""
    problems: list[str] = []
    name = form.get("name", "").strip()
    if not 1 <= len(name) <= MAX_NAME:
        problems.append(gettext("Write the institution's name (at most 200 characters)."))
    chosen = tuple(code for code in DEFAULT_CATEGORY_CODES if code in set(categories))
    if not chosen:
        problems.append(gettext("Offer at least one category."))
    raw_days = form.get("first_response_days", "").strip()
    days = int(raw_days) if raw_days.isdigit() and len(raw_days) < 4 else 0
    if not 1 <= days <= MAX_FIRST_RESPONSE_DAYS:
        problems.append(
            gettext("The first-response deadline is 1 to 60 working days.")
        )
    try:
        sharing = KpkSharing(form.get("kpk_sharing", ""))
    except ValueError:
        sharing = tenant.kpk_sharing
        problems.append(gettext("Choose a KPK sharing policy."))
    if tenant.is_hub:
        # KPK receives reports itself: "also send to KPK" means nothing there.
        sharing = KpkSharing.NEVER
    raw_limit = form.get("max_upload_mib", "").strip()
    limit: int | None = None
    if raw_limit:
        # Capped at the deployment's limit: the disk floor and the proxies are sized for it.
        top = max(1, instance_max // MIB)
        mib = int(raw_limit) if raw_limit.isdigit() and len(raw_limit) < 7 else 0
        if not 1 <= mib <= top:
            problems.append(
                gettext("The upload limit is 1 to %(top)d MiB, or empty.", top=top)
            )
        limit = mib * MIB
    if problems:
        return None, problems
    return TenantSettings(name, chosen, days, sharing, limit), []


def _changes(old: TenantSettings, new: TenantSettings) -> list[str]:
    # Field names and short values: settings are not report content, and the log says what
    # an admin changed. The name itself is not repeated (it can be long).
    notes = []
    if old.name != new.name:
        notes.append("name")
    if old.categories != new.categories:
        notes.append("categories")
    if old.first_response_days != new.first_response_days:
        notes.append(f"first_response_days {old.first_response_days}→{new.first_response_days}")
    if old.kpk_sharing != new.kpk_sharing:
        notes.append(f"kpk_sharing {old.kpk_sharing.value}→{new.kpk_sharing.value}")
    if old.max_upload_bytes != new.max_upload_bytes:
        def mib(value: int | None) -> str:
            return "default" if value is None else f"{value // MIB}MiB"

        notes.append(f"max_upload {mib(old.max_upload_bytes)}→{mib(new.max_upload_bytes)}")
    return notes


def apply_settings(
    session: Session, tenant: Tenant, new: TenantSettings, actor: Investigator
) -> list[str]:
    """Store ``new`` and log one SETTINGS_CHANGED event; return what changed. Commits."""
    changed = _changes(TenantSettings.of(tenant), new)
    if not changed:
        return []
    tenant.name = new.name
    tenant.categories = list(new.categories)
    tenant.first_response_days = new.first_response_days
    tenant.kpk_sharing = new.kpk_sharing
    tenant.max_upload_bytes = new.max_upload_bytes
    TenantScope(session, tenant).add(
        Event(
            kind=EventKind.SETTINGS_CHANGED,
            actor_investigator_id=actor.id,
            note="; ".join(changed),
        )
    )
    session.commit()
    return changed


# --- deletion ---------------------------------------------------------------------------------


class DeletionRefused(ValueError):
    """A case that must not be deleted; the message is translated."""


def find_item(session: Session, scope: TenantScope, case: Case, number: int) -> Item | None:
    return next((item for item in case_items(session, case, scope) if item.number == number), None)


def item_key(item: Item) -> str:
    """What the confirmation form sends back, so the item deleted is the one confirmed even if
    the numbering shifted in between (a new submission sorts by day, before today's replies)."""
    return f"{'reply' if item.kind == 'reply' else 'submission'}-{item.row_id}"


def delete_item(
    session: Session, store: Store, scope: TenantScope, case: Case, item: Item,
    actor: Investigator,
) -> None:
    """Delete one submission or reply: its ciphertext and its row together. Commits."""
    row: Reply | Submission | None = (
        scope.get(Reply, item.row_id)
        if item.kind == "reply"
        else scope.get(Submission, item.row_id)
    )
    if row is None or row.case_id != case.id:
        raise LookupError("no such item in this case")
    # The kind and the number only: what was deleted, never what it said.
    scope.add(
        Event(
            case_id=case.id,
            kind=EventKind.ITEM_DELETED,
            actor_investigator_id=actor.id,
            note=f"{item.kind} #{item.number}",
        )
    )
    store.remove_with_rows(session, [row.store_path], [row])


def check_case_deletable(case: Case) -> None:
    """Only a closed case, and only one KPK does not hold too.

    Deleting is the one action that erases a report, so it needs a decision already in the
    log: the case was archived (with its reason) or finished first. A case sent to KPK is
    handled there as well; the instansi must not make it vanish from KPK's view, which would
    be a way for the reported office to bury a report.
    """
    if case.sent_to_kpk:
        raise DeletionRefused(
            gettext("This report was sent to KPK and cannot be deleted here.")
        )
    if case.status not in FINAL_STATUSES:
        raise DeletionRefused(
            gettext("Only a case that is Diarsipkan or Selesai can be deleted.")
        )


def delete_case(
    session: Session, store: Store, scope: TenantScope, case: Case, actor: Investigator
) -> None:
    """Delete a case with all its items, files and rows together. Commits.

    The event log keeps its entries (``Event.case_id`` has no foreign key) plus one
    CASE_DELETED naming the registration number, so the deletion itself stays on record.
    """
    check_case_deletable(case)
    submissions = list(
        session.scalars(scope.select(Submission).where(Submission.case_id == case.id))
    )
    replies = list(session.scalars(scope.select(Reply).where(Reply.case_id == case.id)))
    scope.add(
        Event(
            case_id=case.id,
            kind=EventKind.CASE_DELETED,
            actor_investigator_id=actor.id,
            note=case.registration_number,
        )
    )
    items: list[Submission | Reply] = [*submissions, *replies]
    rows: list[object] = [*items, case]
    store.remove_with_rows(session, [row.store_path for row in items], rows)
