"""The one error tree of the protocol library, each error carrying a stable reason code.

Reason codes are part of the wire contract (they appear in signed error replies, withheld lists
and exchange logs), so they live in one enum and never change meaning.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Stable reason codes (SPEC.md §9). Values are wire strings; never rename one."""

    # envelope verification
    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    WRONG_AUDIENCE = "wrong_audience"
    UNKNOWN_SENDER = "unknown_sender"
    UNKNOWN_KEY = "unknown_key"
    KEY_NOT_VALID = "key_not_valid"
    BAD_SIGNATURE = "bad_signature"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    OUTSIDE_SKEW = "outside_skew"
    REPLAYED = "replayed"
    # transport / input limits
    TOO_LARGE = "too_large"
    TOO_DEEP = "too_deep"
    UNKNOWN_TYPE = "unknown_type"
    # release decisions
    NO_CONSENT = "no_consent"
    CONSENT_UNKNOWN = "consent_unknown"
    CONSENT_NOT_YET_VALID = "consent_not_yet_valid"
    CONSENT_EXPIRED = "consent_expired"
    CONSENT_REVOKED = "consent_revoked"
    CONSENT_OTHER_PLAN = "consent_other_plan"
    CONSENTER_MISSING = "consenter_missing"
    CONSENT_REPLACED = "consent_replaced"
    CATEGORY_NOT_GRANTED = "category_not_granted"
    PURPOSE_NOT_GRANTED = "purpose_not_granted"
    REQUESTER_NOT_GRANTED = "requester_not_granted"
    PLAN_UNKNOWN = "plan_unknown"
    NOT_PARTICIPANT = "not_participant"
    NO_FRAGMENTS = "no_fragments"
    # log witnessing (§7.8)
    CHECKPOINT_INCONSISTENT = "checkpoint_inconsistent"
    # plan linking: retired (a plan.invite.reply no longer says how the invitation went, §7.1);
    # reserved, never reused
    NO_MATCH = "no_match"
    DECLINED = "declined"
    # catch-all for a peer's unexpected failure (never used for a decision)
    INTERNAL = "internal"


class ProtocolError(Exception):
    """Base of every protocol error; ``reason`` is the stable code, ``detail`` says what to fix."""

    reason: Reason = Reason.MALFORMED
    # set by ``verify_envelope`` for a failure after the signature verified (SPEC.md §5.3 steps
    # 15–19): the sender it verified as. None when the failure came earlier: then nothing the
    # message says about itself is known to be true (it is logged as unverified).
    signer: str | None = None

    def __init__(self, detail: str, reason: Reason | None = None) -> None:
        super().__init__(detail)
        if reason is not None:
            self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


class MalformedError(ProtocolError):
    """The bytes are not a well-formed object of the expected shape."""

    reason = Reason.MALFORMED


class VerificationError(ProtocolError):
    """A well-formed object failed authentication, audience, time or replay checks."""


class KeyFileError(ProtocolError):
    """A private key file could not be read or written (wrong passphrase, wrong format)."""
