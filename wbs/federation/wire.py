"""The federation's one message on the wire: a signed envelope.

An exchange is one HTTP request and its response, each carrying an envelope::

    {"envelope": "<canonical JSON>", "signature": "<armored detached OpenPGP signature>"}

The envelope names its sender and its receiver by their instance signing keys' fingerprints, a
fresh nonce and the time, and carries the sender's queued messages, each with its sequence
number. The signature (by the sender's instance key, :class:`crypto.signing.Signer`, through
gpg) covers the envelope's exact bytes, so it covers every message in it; it is checked against
the key pinned at joining and nothing else (:func:`crypto.signing.verify_detached` with the
pinned fingerprint). The receiver's fingerprint in the envelope makes a message for another
installation useless here (foreign); the nonce and the time window make a captured request
useless later (replayed, stale); the sequence numbers (wbs.federation.exchange) make each
message count exactly once, in order.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from crypto.signing import MAX_SIGNATURE_BYTES, SignatureError, Signer, verify_detached

PROTOCOL = "peluit-federation/1"
# A request older or newer than this (clock skew included) is refused as stale. tor itself
# needs clocks within hours; this is the replay window, kept short, with the nonces inside it
# remembered (wbs.federation.exchange).
FRESHNESS_SECONDS = 600
# What one exchange may carry: a batch of messages, never a case's content (that travels as
# forwarding packages, each in its own message, in a later protocol step).
MAX_ENVELOPE_BYTES = 32 * 1024 * 1024
MAX_MESSAGES = 2000


class WireError(ValueError):
    """An envelope refused; ``reason`` is a short code for the refusal log."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def canonical(value: Any) -> bytes:
    """The one byte form of a JSON value: what is signed, and what a digest is taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Message:
    seq: int
    kind: str
    body: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "body": self.body}


@dataclass(frozen=True)
class Envelope:
    sender: str  # fingerprint
    receiver: str  # fingerprint
    at: int  # unix seconds
    nonce: str
    ack: int  # the last of the receiver's messages the sender applied
    messages: tuple[Message, ...]
    in_reply_to: str | None = None  # a response names the request's nonce
    applied_through: int | None = None  # a response: the last request message applied
    # When the link's numbering last started over (wbs.federation.exchange.resync).
    epoch: int = 0
    # The last of the sender's own messages the receiver confirmed: a receiver that applied
    # fewer was restored from a backup (wbs.federation.exchange).
    acked: int = 0

    def as_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "protocol": PROTOCOL,
            "from": self.sender,
            "to": self.receiver,
            "at": self.at,
            "nonce": self.nonce,
            "ack": self.ack,
            "epoch": self.epoch,
            "acked": self.acked,
            "messages": [message.as_json() for message in self.messages],
        }
        if self.in_reply_to is not None:
            value["in_reply_to"] = self.in_reply_to
            value["applied_through"] = self.applied_through
        return value


def new_envelope(
    sender: str,
    receiver: str,
    *,
    ack: int,
    messages: tuple[Message, ...] = (),
    in_reply_to: str | None = None,
    applied_through: int | None = None,
    epoch: int = 0,
    acked: int = 0,
) -> Envelope:
    return Envelope(
        sender=sender,
        receiver=receiver,
        at=int(time.time()),
        nonce=secrets.token_hex(16),
        ack=ack,
        messages=messages,
        in_reply_to=in_reply_to,
        applied_through=applied_through,
        epoch=epoch,
        acked=acked,
    )


def seal(signer: Signer, envelope: Envelope) -> bytes:
    """The envelope as it goes on the wire, signed by this installation's instance key."""
    data = canonical(envelope.as_json())
    signature = signer.sign_detached(data)
    return json.dumps(
        {"envelope": data.decode(), "signature": signature.decode("ascii")}
    ).encode()


@dataclass(frozen=True)
class Unverified:
    """An envelope parsed but not yet checked: only its claimed sender may be read, to find
    the key to check it with."""

    data: bytes
    signature: bytes
    claimed: dict[str, Any]

    @property
    def sender(self) -> str:
        return str(self.claimed.get("from", ""))


def parse(raw: bytes) -> Unverified:
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise WireError("too_large", "the envelope is larger than the federation allows")
    try:
        outer = json.loads(raw)
        data = outer["envelope"].encode()
        signature = outer["signature"].encode("ascii")
        claimed = json.loads(data)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeError, RecursionError):
        raise WireError("malformed", "not a federation envelope") from None
    if not isinstance(claimed, dict) or claimed.get("protocol") != PROTOCOL:
        raise WireError("malformed", f"not a {PROTOCOL} envelope")
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise WireError("malformed", "the signature is too large")
    return Unverified(data=data, signature=signature, claimed=claimed)


def verify(
    unverified: Unverified,
    *,
    public_key: str,
    fingerprint: str,
    own_fingerprint: str,
    gpg_binary: str = "gpg",
    now: float | None = None,
) -> Envelope:
    """Check the signature against the pinned key, the receiver, the time; then read it."""
    try:
        verify_detached(
            unverified.data, unverified.signature, public_key, fingerprint, gpg_binary
        )
    except SignatureError as exc:
        raise WireError("bad_signature", f"the signature does not check: {exc}") from None
    value = unverified.claimed
    if value.get("to") != own_fingerprint:
        raise WireError("foreign", "the envelope is addressed to another installation")
    try:
        at = int(value["at"])
        nonce = str(value["nonce"])
        ack = int(value["ack"])
        epoch = int(value["epoch"])
        acked = int(value["acked"])
        messages = tuple(
            Message(seq=int(item["seq"]), kind=str(item["kind"]), body=dict(item["body"]))
            for item in value["messages"]
        )
        in_reply_to = value.get("in_reply_to")
        applied = value.get("applied_through")
    except (KeyError, TypeError, ValueError, OverflowError):
        raise WireError("malformed", "the envelope lacks a field or has a wrong one") from None
    if (
        not (8 <= len(nonce) <= 64) or len(messages) > MAX_MESSAGES or ack < 0
        or not 0 <= epoch < 2**62 or acked < 0
    ):
        raise WireError("malformed", "the envelope's nonce, ack or size is out of range")
    current = time.time() if now is None else now
    if abs(current - at) > FRESHNESS_SECONDS:
        raise WireError("stale", "the envelope is older (or newer) than the freshness window")
    return Envelope(
        sender=str(value["from"]),
        receiver=own_fingerprint,
        at=at,
        nonce=nonce,
        ack=ack,
        messages=messages,
        in_reply_to=None if in_reply_to is None else str(in_reply_to),
        applied_through=None if applied is None else int(applied),
        epoch=epoch,
        acked=acked,
    )
