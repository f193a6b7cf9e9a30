"""The investigator's words for what :mod:`wbs.casework` refuses, in their language.

The domain refuses with a stable code; the HTML interface says it in a sentence here, the JSON
API sends the code itself. Some refusals are not sentences on a page but HTTP answers: a case
that is not the investigator's is "not found", an action their role may not take "forbidden".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask_babel import gettext

from wbs.casework import Refusal
from wbs.domain import CaseStatus

HTTP_ONLY: Mapping[str, int] = {"not_found": 404, "forbidden": 403, "bad_assignee": 400}


def _too_long(refusal: Refusal) -> str:
    return str(
        gettext(
            "The text is too long (at most %(limit)d characters).", limit=refusal.params["limit"]
        )
    )


def _note_required(refusal: Refusal) -> str:
    if refusal.params.get("status") == CaseStatus.KLARIFIKASI:
        return str(gettext("Write the question for the reporter."))
    return str(gettext("Write the reason for archiving."))


def _no_key(refusal: Refusal) -> str:
    if refusal.params.get("what") == "report":
        return str(gettext("The report cannot be recorded: the institution has no key."))
    if refusal.params.get("what") == "question":
        return str(gettext("The question could not be encrypted: the institution has no key."))
    return str(gettext("The reply could not be encrypted: the institution has no key."))


def _transition(refusal: Refusal) -> str:
    return str(
        gettext(
            "A case cannot go from %(current)s to %(new)s.",
            current=refusal.params["current"].label,
            new=refusal.params["new"].label,
        )
    )


def _replayed(refusal: Refusal) -> str:
    if refusal.params.get("number"):
        return str(gettext(
            "This package was already uploaded: it is case %(number)s. A package opens one "
            "case only.", number=refusal.params["number"],
        ))
    return str(gettext("This package was already uploaded. A package opens one case only."))


_MESSAGES: Mapping[str, Callable[[Refusal], str]] = {
    "bad_status": lambda _: gettext("Choose the new status."),
    "bad_category": lambda _: gettext("Choose one of the categories."),
    "bad_mcp_area": lambda _: gettext("Choose one of the MCP areas, or none."),
    "transition_refused": _transition,
    "note_required": _note_required,
    "note_too_long": _too_long,
    "reply_too_long": _too_long,
    "reply_required": lambda _: gettext("Write the reply."),
    "no_key": _no_key,
    "no_source": lambda _: gettext("This case has no reporter to answer."),
    # The reason names keys and shapes, never content: the server cannot read the file.
    "reply_refused": lambda refusal: gettext(
        "The encrypted reply was refused: %(reason)s", reason=refusal.params["reason"]
    ),
    "sent_to_kpk": lambda _: gettext("This report was sent to KPK and cannot be deleted here."),
    "not_final": lambda _: gettext("Only a case that is Diarsipkan or Selesai can be deleted."),
    # Operator intake (wbs.operator_intake): shapes, keys and fields, never content.
    "intake_refused": lambda refusal: gettext(
        "The intake package was refused: it is damaged, incomplete or not made by "
        "peluit-workstation. Nothing was stored. (Technical detail: %(reason)s)",
        reason=refusal.params["reason"],
    ),
    "intake_other_tenant": lambda refusal: gettext(
        "This package was made for another institution (%(tenant)s). Nothing was stored.",
        tenant=refusal.params.get("tenant", ""),
    ),
    "intake_replayed": _replayed,
    "intake_wrong_keys": lambda refusal: gettext(
        "The package is not encrypted to every current key of the institution (missing: "
        "%(keys)s). Nothing was stored; make it again with the keys listed on this page.",
        keys=refusal.params.get("keys", ""),
    ),
    "intake_extra_keys": lambda refusal: gettext(
        "The package is also encrypted to keys that are not the institution's (%(keys)s), so "
        "someone else could read it. Nothing was stored; make it again with only the keys "
        "listed on this page.",
        keys=refusal.params.get("keys", ""),
    ),
    "intake_closed": lambda _: gettext(
        "Intake is closed for now: the server's disk is full. Nothing was stored; try again "
        "later."
    ),
}


def message(refusal: Refusal) -> str:
    """The sentence for a refusal; an unknown code falls back to the English message, which a
    test of every code keeps from happening."""
    found = _MESSAGES.get(refusal.code)
    return found(refusal) if found is not None else str(refusal)


CODES = frozenset(_MESSAGES) | frozenset(HTTP_ONLY)
