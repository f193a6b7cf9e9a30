"""The admin pages' words: the settings form checked with its problems in the admin's language,
and the plain-language verdicts of a key check. What the settings change, and the log entry
that says so, is :func:`wbs.tenants.apply_settings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flask_babel import LazyString, gettext, lazy_gettext

from wbs.domain import DEFAULT_CATEGORY_CODES, KpkSharing
from wbs.models import Tenant
from wbs.numbers import whole_number
from wbs.tenants import MAX_FIRST_RESPONSE_DAYS, MAX_NAME, MIB, TenantSettings

# One sentence per KeyRefused.reason: the admin reads what to do, in their language.
KEY_VERDICTS: Mapping[str, LazyString] = {
    "secret_key": lazy_gettext(
        "This is a PRIVATE key and was not stored. Upload only the public key "
        "(peluit-workstation keys export FINGERPRINT --output key.asc). If this private key "
        "left the air-gapped workstation, treat it as compromised: make a new key pair."
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
    days = whole_number(raw_days, 3) or 0
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
        mib = whole_number(raw_limit, 6) or 0
        if not 1 <= mib <= top:
            problems.append(
                gettext("The upload limit is 1 to %(top)d MiB, or empty.", top=top)
            )
        limit = mib * MIB
    if problems:
        return None, problems
    return TenantSettings(name, chosen, days, sharing, limit), []
