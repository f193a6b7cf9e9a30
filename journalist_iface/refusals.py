"""The investigator's words for what :mod:`wbs.casework` refuses, in their language.

The domain refuses with a stable code (and, for a refused encrypted reply, a reason code); the
HTML interface says it in a whole sentence here, naming the case by its registration number,
and the JSON API sends the code itself. The domain's English message never reaches a page: a
sentence half in Indonesian and half in a lower layer's English helps no one. Some refusals are
not sentences on a page but HTTP answers: a case that is not the investigator's is "not found",
an action their role may not take "forbidden".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask_babel import LazyString, gettext, lazy_gettext

from journalist_iface.labels import status_label
from wbs.casework import Refusal
from wbs.domain import CaseStatus

HTTP_ONLY: Mapping[str, int] = {
    "not_found": 404, "forbidden": 403, "bad_assignee": 400, "bad_flag": 400,
}

Sentence = Callable[[Refusal, str], str]


def _too_long(refusal: Refusal, case: str) -> str:
    return str(gettext(
        "The text for %(case)s is too long (at most %(limit)d characters).",
        case=case, limit=refusal.params["limit"],
    ))


def _note_required(refusal: Refusal, case: str) -> str:
    if refusal.params.get("status") == CaseStatus.KLARIFIKASI:
        return str(gettext("Write the question for the reporter of %(case)s.", case=case))
    return str(gettext("Write the reason for archiving %(case)s.", case=case))


def _no_key(refusal: Refusal, case: str) -> str:
    if refusal.params.get("what") == "report":
        return str(gettext("The report cannot be recorded: the institution has no key."))
    if refusal.params.get("what") == "question":
        return str(gettext(
            "The question for %(case)s could not be encrypted: the institution has no key.",
            case=case,
        ))
    return str(gettext(
        "The reply for %(case)s could not be encrypted: the institution has no key.", case=case
    ))


def _no_kpk_key(refusal: Refusal, case: str) -> str:
    if refusal.params.get("what") == "question":
        return str(gettext(
            "The question for %(case)s could not be encrypted: the report is shared with KPK "
            "and KPK has no current key. Nothing was sent.",
            case=case,
        ))
    return str(gettext(
        "The reply for %(case)s could not be encrypted: the report is shared with KPK and KPK "
        "has no current key. Nothing was sent.",
        case=case,
    ))


def _transition(refusal: Refusal, case: str) -> str:
    return str(gettext(
        "%(case)s cannot go from %(current)s to %(new)s.",
        case=case,
        current=status_label(refusal.params["current"]),
        new=status_label(refusal.params["new"]),
    ))


# Why an encrypted reply was refused, by the reason code of wbs.casework.accept_encrypted_reply.
_REPLY_REASONS: Mapping[str, LazyString] = {
    "size": lazy_gettext(
        "The encrypted reply for %(case)s was refused: the file must be between 1 byte and 1 MiB."
    ),
    "not_encrypted": lazy_gettext(
        "The encrypted reply for %(case)s was refused: the file is not an OpenPGP encrypted "
        "message. Upload the .gpg file that peluit-workstation reply wrote."
    ),
    "not_to_reply_key": lazy_gettext(
        "The encrypted reply for %(case)s was refused: it is not encrypted to the reply key of "
        "this case's reporter. Was it written for another case?"
    ),
    "not_to_every_key": lazy_gettext(
        "The encrypted reply for %(case)s was refused: it is not encrypted to every current key "
        "of the institution (missing: %(fingerprints)s)."
    ),
    "no_current_key": lazy_gettext(
        "The encrypted reply for %(case)s was refused: the institution has no current key."
    ),
    "not_to_every_kpk_key": lazy_gettext(
        "The encrypted reply for %(case)s was refused: the report is shared with KPK, and the "
        "reply is not encrypted to every current key of KPK (missing: %(fingerprints)s)."
    ),
    "no_kpk_key": lazy_gettext(
        "The encrypted reply for %(case)s was refused: the report is shared with KPK, and KPK "
        "has no current key."
    ),
    "duplicate": lazy_gettext(
        "The encrypted reply for %(case)s was refused: this file is already a reply of this case."
    ),
}
_REPLY_REFUSED = lazy_gettext("The encrypted reply for %(case)s was refused.")


def _reply_refused(refusal: Refusal, case: str) -> str:
    sentence = _REPLY_REASONS.get(refusal.params.get("reason", ""), _REPLY_REFUSED)
    fingerprints = ", ".join(refusal.params.get("fingerprints", ()))
    # LazyString formats with %, as gettext's keyword arguments would.
    return str(sentence) % {"case": case, "fingerprints": fingerprints}


def _not_final(_: Refusal, case: str) -> str:
    return str(gettext(
        "%(case)s cannot be deleted: only a case that is %(archived)s or %(completed)s can be.",
        case=case,
        archived=status_label(CaseStatus.DIARSIPKAN),
        completed=status_label(CaseStatus.SELESAI),
    ))


def _replayed(refusal: Refusal, _case: str) -> str:
    if refusal.params.get("number"):
        return str(gettext(
            "This package was already uploaded: it is case %(number)s. A package opens one "
            "case only.", number=refusal.params["number"],
        ))
    return str(gettext("This package was already uploaded. A package opens one case only."))


def _handled_elsewhere(refusal: Refusal, case: str) -> str:
    if refusal.params.get("taken_over"):
        return str(gettext(
            "KPK took %(case)s over and handles it now: the case is read-only here (no status "
            "change, reply, classification or forwarding).",
            case=case,
        ))
    return str(gettext(
        "%(case)s was forwarded and is handled by another institution now: the case is "
        "read-only here (no status change, reply, classification or forwarding).",
        case=case,
    ))


def _reason_required(refusal: Refusal, case: str) -> str:
    what = refusal.params.get("what")
    if what == "takeover":
        return str(gettext("Choose the reason for taking over %(case)s.", case=case))
    if what == "request":
        return str(gettext("Choose the reason for asking that %(case)s be forwarded.", case=case))
    return str(gettext("Choose the reason for declining KPK's request about %(case)s.", case=case))


def _unknown_reason(refusal: Refusal, case: str) -> str:
    # Whatever was sent instead of a code is not repeated: it may name someone.
    return str(gettext(
        "That is not one of the reasons offered for %(case)s: choose one from the list. A "
        "reason is a code, never free text; nothing was stored.",
        case=case,
    ))


def _not_open(refusal: Refusal, _case: str, start: str) -> str:
    why = refusal.params.get("why")
    if why == "closed":
        return str(gettext("%(start)s: the case is closed.", start=start))
    if why == "relayed":
        return str(gettext(
            "%(start)s: its institution is connected through a regional hub, which does not "
            "pass such a step on yet. Nothing was stored.",
            start=start,
        ))
    if why == "federated":
        return str(gettext(
            "%(start)s: its institution runs its own installation, where a request does not "
            "arrive. Take the case over instead. Nothing was stored.",
            start=start,
        ))
    return str(gettext(
        "%(start)s: the case was forwarded or taken over already and is handled elsewhere.",
        start=start,
    ))

# What wbs.matters refuses; %(number)s is the case the refusal is about (the one typed, or
# the page's), %(case)s the page's case.
_MATTER: Mapping[str, LazyString] = {
    "matter_number_required": lazy_gettext("Type the registration number of the other case."),
    "matter_same_case": lazy_gettext("%(number)s cannot be linked with itself."),
    "matter_not_handler": lazy_gettext(
        "%(number)s was forwarded and is handled by another case now: link that case instead."
    ),
    "matter_closed_case": lazy_gettext(
        "%(number)s is closed: only open cases are linked or named lead handler."
    ),
    "matter_already_linked": lazy_gettext("%(number)s is in this matter already."),
    "matter_two_leads": lazy_gettext(
        "%(number)s is in a matter that has its own lead handler: two matters with a lead "
        "each cannot be joined."
    ),
    "matter_not_member": lazy_gettext("%(number)s is not in this matter."),
    "matter_join_kpk": lazy_gettext(
        "%(number)s is in a matter with cases of other institutions: only KPK joins two "
        "such matters."
    ),
    "matter_lead_named": lazy_gettext(
        "The matter has its lead handler already: its cases stay together and the lead is not "
        "changed."
    ),
    "matter_none": lazy_gettext("%(case)s is not linked in a matter."),
    "matter_no_lead": lazy_gettext(
        "KPK has not named the lead handler of the matter of %(case)s yet."
    ),
    "matter_is_lead": lazy_gettext(
        "%(case)s is the lead handler of its matter: it is not closed into another case."
    ),
}


def _matter_sentence(message: LazyString) -> Sentence:
    def sentence(refusal: Refusal, case: str) -> str:
        return str(message) % {"case": case, "number": refusal.params.get("number", case)}

    return sentence


_MESSAGES: Mapping[str, Sentence] = {
    "bad_status": lambda _, case: gettext("Choose the new status of %(case)s.", case=case),
    "bad_category": lambda _, case: gettext(
        "Choose one of the categories for %(case)s.", case=case
    ),
    "bad_mcp_area": lambda _, case: gettext(
        "Choose one of the MCP areas for %(case)s, or none.", case=case
    ),
    "transition_refused": _transition,
    "note_required": _note_required,
    "note_too_long": _too_long,
    "reply_too_long": _too_long,
    "reply_required": lambda _, case: gettext(
        "Write the reply to the reporter of %(case)s.", case=case
    ),
    "no_key": _no_key,
    "no_kpk_key": _no_kpk_key,
    "no_source": lambda _, case: gettext("%(case)s has no reporter to answer.", case=case),
    # The reasons name keys and shapes, never content: the server cannot read the file.
    "reply_refused": _reply_refused,
    "sent_to_kpk": lambda _, case: gettext(
        "%(case)s was sent to KPK and cannot be deleted here.", case=case
    ),
    "not_final": _not_final,
    "in_matter": lambda _, case: gettext(
        "%(case)s is linked in a matter: it stays on record for the matter's other cases and "
        "cannot be deleted.", case=case
    ),
    # One handler per matter (wbs.matters): numbers and institutions, never content.
    **{code: _matter_sentence(message) for code, message in _MATTER.items()},
    # Operator intake (wbs.operator_intake): shapes, keys and fields, never content.
    "intake_refused": lambda refusal, _case: gettext(
        "The intake package was refused: it is damaged, incomplete or not made by "
        "peluit-workstation. Nothing was stored. (Technical detail: %(reason)s)",
        reason=refusal.params["reason"],
    ),
    "intake_other_tenant": lambda refusal, _case: gettext(
        "This package was made for another institution (%(tenant)s). Nothing was stored.",
        tenant=refusal.params.get("tenant", ""),
    ),
    "intake_replayed": _replayed,
    "intake_wrong_keys": lambda refusal, _case: gettext(
        "The package is not encrypted to every current key of the institution (missing: "
        "%(keys)s). Nothing was stored; make it again with the keys listed on this page.",
        keys=refusal.params.get("keys", ""),
    ),
    "intake_extra_keys": lambda refusal, _case: gettext(
        "The package is also encrypted to keys that are not the institution's (%(keys)s), so "
        "someone else could read it. Nothing was stored; make it again with only the keys "
        "listed on this page.",
        keys=refusal.params.get("keys", ""),
    ),
    "intake_closed": lambda _refusal, _case: gettext(
        "Intake is closed for now: the server's disk is full. Nothing was stored; try again "
        "later."
    ),
    # Pelimpahan (wbs.forwarding): shapes, keys and names, never content.
    "forward_refused": lambda refusal, case: gettext(
        "The forwarding package for %(case)s was refused: it is damaged, incomplete or not "
        "made by peluit-workstation. Nothing was stored and the case is unchanged. "
        "(Technical detail: %(reason)s)",
        case=case, reason=refusal.params["reason"],
    ),
    "forward_other_case": lambda refusal, case: gettext(
        "This forwarding package was made for another case (%(number)s), not %(case)s. "
        "Nothing was stored.",
        case=case, number=refusal.params.get("number", ""),
    ),
    "forward_no_tenant": lambda refusal, _case: gettext(
        "There is no institution %(tenant)s in the system. Nothing was stored.",
        tenant=refusal.params.get("tenant", ""),
    ),
    "forward_not_handler": lambda _refusal, case: gettext(
        "%(case)s was forwarded already and is handled by another institution. Nothing was "
        "stored.",
        case=case,
    ),
    "forward_replayed": lambda _refusal, case: gettext(
        "This forwarding package for %(case)s was uploaded before. Nothing was stored.",
        case=case,
    ),
    "forward_wrong_keys": lambda refusal, _case: gettext(
        "The forwarding package is not encrypted to every current key of the receiving "
        "institution (missing: %(keys)s). Nothing was stored; make it again with the "
        "institution's current key list.",
        keys=refusal.params.get("keys", ""),
    ),
    "forward_extra_keys": lambda refusal, _case: gettext(
        "The forwarding package is also encrypted to keys that are not the receiving "
        "institution's (%(keys)s), so someone else could read it. Nothing was stored.",
        keys=refusal.params.get("keys", ""),
    ),
    "forward_shared": lambda _refusal, case: gettext(
        "%(case)s is shared with KPK already: KPK holds it and takes it over "
        "(pengambilalihan) or asks for it to be forwarded. Nothing was stored and the case "
        "is unchanged.",
        case=case,
    ),
    "forward_unsigned": lambda _refusal, case: gettext(
        "The forwarding package for %(case)s is not signed, so the server cannot tell that "
        "your institution made it. Nothing was stored and the case is unchanged; make it "
        "again with the current peluit-workstation (forward), which signs it with your "
        "institution's key.",
        case=case,
    ),
    "forward_bad_signature": lambda refusal, case: gettext(
        "The signature of the forwarding package for %(case)s is not valid, or not made by a "
        "current key of your institution: the package was changed after it was signed, or "
        "signed with another key. Nothing was stored and the case is unchanged. (Technical "
        "detail: %(reason)s)",
        case=case, reason=refusal.params.get("reason", ""),
    ),
    "forward_bad_body": lambda _refusal, case: gettext(
        "Choose where %(case)s was forwarded to.", case=case
    ),
    "forward_bad_letter": lambda _refusal, case: gettext(
        "Write the number of the letter %(case)s was forwarded with (one line).", case=case
    ),
    # An origin that no longer handles the case (wbs.casework.check_handles).
    "handled_elsewhere": _handled_elsewhere,
    "taken_over": lambda _refusal, case: gettext(
        "KPK took %(case)s over: its items are KPK's to read now. This institution keeps the "
        "case's metadata only; nothing can be downloaded or exported here.",
        case=case,
    ),
    # Pengambilalihan and permintaan pelimpahan (wbs.takeover, wbs.coordination).
    "reason_required": _reason_required,
    "unknown_reason": _unknown_reason,
    "takeover_items_changed": lambda _refusal, case: gettext(
        "%(case)s received new items while KPK was taking it over. Nothing was stored: take "
        "it over again to copy them too.",
        case=case,
    ),
    "kpk_own_case": lambda _refusal, case: gettext(
        "%(case)s is KPK's own case: KPK handles it already.", case=case
    ),
    "takeover_refused": lambda refusal, case: _not_open(refusal, case, gettext(
        "KPK cannot take over %(case)s", case=case)),
    "request_refused": lambda refusal, case: _not_open(refusal, case, gettext(
        "KPK cannot ask for %(case)s to be forwarded", case=case)),
    "takeover_no_key": lambda _refusal, case: gettext(
        "KPK cannot take over %(case)s: KPK has no current key. Nothing was stored.", case=case
    ),
    "takeover_not_for_kpk": lambda refusal, case: gettext(
        "KPK cannot take over %(case)s: not every item is encrypted to a current key of KPK "
        "(%(items)s), so KPK could not read its copy. Nothing was stored. Ask the institution "
        "to forward the case to KPK instead (pelimpahan): its workstation encrypts every item "
        "to KPK's current keys.",
        case=case, items=refusal.params.get("items", ""),
    ),
    "request_open": lambda _refusal, case: gettext(
        "KPK already asked for %(case)s to be forwarded; the request is still open.", case=case
    ),
    "no_request": lambda _refusal, case: gettext(
        "Nobody asked for %(case)s to be forwarded: there is nothing to decline.", case=case
    ),
}


def message(refusal: Refusal, case: str = "") -> str:
    """The sentence for a refusal of an action on the case numbered ``case``; an unknown code
    falls back to the English message, which a test of every code keeps from happening."""
    found = _MESSAGES.get(refusal.code)
    return str(found(refusal, case)) if found is not None else str(refusal)


CODES = frozenset(_MESSAGES) | frozenset(HTTP_ONLY)
