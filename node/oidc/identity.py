"""Who a verified sign-in is on this node: the pure rules, no store and no network.

A provider names a person by a stable subject (a claim the operator picks: ``sub``, an HSA-id
claim, ...). The node keeps that subject to find the person again, except when it is a personal
identity number: then only a keyed hash (HMAC-SHA256 with the node's ``subject-hash.key``) is
kept, so the store never holds the number. The person's role comes from a pre-registered user
(``barnplan users add --subject``), which wins, or from a claim value the operator maps to a role
in ``[oidc.roles]``; no match is no role, never a default one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import Forbidden

# a Swedish personnummer or samordningsnummer in any of its usual forms (Luhn not checked: a
# subject that merely looks like one is hashed too, which costs nothing)
IDENTITY_NUMBER = re.compile(r"^(\d{2})?\d{6}[-+]?\d{4}$", re.ASCII)
HASHED_PREFIX = "hmac:"


@dataclass(frozen=True)
class ClaimRules:
    """``[oidc]`` settings that decide who a sign-in is (deploy/CONFIG.md)."""

    subject_claim: str = "sub"
    name_claim: str = "name"
    role_claim: str = ""
    # role -> the claim value that grants it, in the order they are tried
    roles: Mapping[str, str] = field(default_factory=dict)
    hash_subjects: bool = False


@dataclass(frozen=True)
class Person:
    """A verified sign-in as this node sees it (no role decided yet)."""

    issuer: str
    subject: str  # as stored: the claim's value, or ``hmac:...`` for an identity number
    display_name: str
    claim_role: str | None  # the role the claims grant, if ``[oidc.roles]`` maps one


class IdentityRefused(Forbidden):
    """The sign-in was genuine but names no one who may use this node. ``code``: no_subject
    (the subject claim is missing), unknown_user (no pre-registered user and no role mapping),
    no_role (the claims grant no role), disabled (the user is disabled)."""

    def __init__(self, code: str) -> None:
        super().__init__(f"sign-in refused: {code}", code=code)


def stored_subject(subject: str, key: bytes, always_hash: bool = False) -> str:
    """The form of ``subject`` the store keeps: as given, or a keyed hash of an identity
    number (or of every subject with ``hash_subjects``)."""
    if not always_hash and not IDENTITY_NUMBER.match(subject.strip()):
        return subject
    normal = subject.strip().replace("-", "").replace("+", "")
    digest = hmac.new(key, normal.encode("utf-8"), hashlib.sha256).hexdigest()
    return HASHED_PREFIX + digest


def user_id_for(issuer: str, subject: str) -> str:
    """The node-local user id of a person first seen through a provider: derived from the
    issuer and stored subject, so it is stable and says nothing about the person."""
    digest = hashlib.sha256(f"{issuer}\x00{subject}".encode()).hexdigest()
    return "sso-" + digest[:20]


def _values(claim: Any) -> Sequence[str]:
    if isinstance(claim, str):
        return claim.split()  # a space-separated list, as some providers send roles
    if isinstance(claim, list):
        return [item for item in claim if isinstance(item, str)]
    return ()


def role_from_claims(claims: Mapping[str, Any], rules: ClaimRules) -> str | None:
    """The first role in ``rules.roles`` whose value the role claim carries, or None."""
    if not rules.role_claim:
        return None
    held = set(_values(claims.get(rules.role_claim)))
    for role, value in rules.roles.items():
        if value in held:
            return role
    return None


def person_from(issuer: str, claims: Mapping[str, Any], rules: ClaimRules, key: bytes) -> Person:
    """The person a verified ID token's claims name; ``IdentityRefused('no_subject')`` if the
    configured subject claim is missing or not a non-empty string."""
    subject = claims.get(rules.subject_claim)
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 255:
        raise IdentityRefused("no_subject")
    stored = stored_subject(subject, key, rules.hash_subjects)
    name = claims.get(rules.name_claim)
    shown = name.strip()[:200] if isinstance(name, str) and name.strip() else ""
    return Person(issuer, stored, shown, role_from_claims(claims, rules))


def role_for(person: Person, registered_role: str | None, disabled: bool, rules: ClaimRules) -> str:
    """The role the person has on this node: a pre-registered user's own role, else the one
    their claims grant. Refused when disabled, and when neither gives one: ``no_role`` if
    roles come from claims and theirs grant none, ``unknown_user`` if only pre-registered
    users may sign in and this person is not one."""
    if disabled:
        raise IdentityRefused("disabled")
    if registered_role is not None:
        return registered_role
    if person.claim_role is not None:
        return person.claim_role
    raise IdentityRefused("no_role" if rules.role_claim else "unknown_user")
