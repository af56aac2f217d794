"""A person the agency's OpenID provider vouched for becomes a user of this node.

``node.oidc.identity`` decides, purely, who the person is and which role they have; this module
finds or records them in the store. A pre-registered user (``barnplan users add --subject``)
keeps the role the operator gave; a person the node first meets through the provider's role
claim is recorded with ``role_from_claims``, and their role follows the claims at every
sign-in (a claim no longer granting one refuses them). Nothing is written for a refused
sign-in.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..config import NodeConfig
from ..domain.json_object import JsonObject
from ..local_secret import load_or_create_secret
from ..oidc.identity import ClaimRules, person_from, role_for, stored_subject, user_id_for
from ..store import records
from ..store.tables import User
from .users import hash_token, new_token

SUBJECT_KEY_FILE = "subject-hash.key"


def claim_rules(config: NodeConfig) -> ClaimRules:
    oidc = config.oidc
    return ClaimRules(
        subject_claim=oidc.subject_claim,
        name_claim=oidc.name_claim,
        role_claim=oidc.role_claim,
        roles=dict(oidc.roles),
        hash_subjects=oidc.hash_subjects,
    )


def subject_key(directory: Path) -> bytes:
    """The node's key for hashing identity numbers (``subject-hash.key``, made once)."""
    return load_or_create_secret(directory / SUBJECT_KEY_FILE)


def subject_as_stored(config: NodeConfig, subject: str) -> str:
    """How the store keeps ``subject`` on this node (``users add --subject`` uses it too)."""
    return stored_subject(subject, subject_key(config.directory), config.oidc.hash_subjects)


async def user_for_subject(
    engine: AsyncEngine, issuer: str, subject: str, rules: ClaimRules, key: bytes
) -> User | None:
    """The user the provider's ``subject`` (as the provider sends it) is on this node."""
    return await records.user_by_subject(
        engine, issuer, stored_subject(subject, key, rules.hash_subjects)
    )


async def sign_in(
    engine: AsyncEngine,
    rules: ClaimRules,
    key: bytes,
    issuer: str,
    claims: JsonObject,
    now: datetime,
) -> User:
    """The user a verified ID token's claims name, recorded or brought up to date; raises
    ``IdentityRefused`` (no_subject, unknown_user, no_role, disabled) and writes nothing then."""
    person = person_from(issuer, claims, rules, key)
    user = await records.user_by_subject(engine, person.issuer, person.subject)
    registered = None if user is None or user.role_from_claims else user.role
    role = role_for(person, registered, user is not None and user.disabled_at is not None, rules)
    if user is None:
        return await _record(engine, person.issuer, person.subject, person.display_name, role, now)
    changes: JsonObject = {}
    if person.display_name and person.display_name != user.display_name:
        changes["display_name"] = person.display_name
    if user.role_from_claims and role != user.role:
        changes["role"] = role
    if not changes:
        return user
    return await records.update_user(engine, user.user_id, **changes) or user


async def _record(
    engine: AsyncEngine, issuer: str, subject: str, name: str, role: str, now: datetime
) -> User:
    user_id = user_id_for(issuer, subject)
    user = User(
        user_id=user_id,
        display_name=name or user_id,
        role=role,
        token_hash=hash_token(new_token()),  # never shown: API tokens are issued by the CLI
        created_at=now,
        oidc_issuer=issuer,
        oidc_subject=subject,
        role_from_claims=True,
    )
    try:
        await records.insert_user(engine, user)
    except IntegrityError:  # the same person's sign-in in another tab got there first
        found = await records.user_by_subject(engine, issuer, subject)
        if found is None:
            raise
        return found
    return user
