"""Passwords for the web pages' login: argon2id hashes, set by an administrator with the CLI.

Why argon2id (``argon2-cffi``): it is the OWASP first choice for password storage, memory-hard,
and the library encodes algorithm, parameters and salt in one string and says when a hash
should be upgraded (``check_needs_rehash``), so nothing about it is hand-written here.
Hashing takes tens of milliseconds of CPU on purpose; it runs in a worker thread so the event
loop keeps serving peers meanwhile.

The bearer tokens of ``/api`` are separate and unchanged. An agency that puts the node behind
its own login (OIDC/SAML) maps that login to a ``User`` instead (``login`` is the seam).
"""

from __future__ import annotations

import asyncio
import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import FieldProblem, InvalidInput
from ..store.engine import begin_write
from ..store.records import T_USER, user_by_id
from ..store.tables import User
from .users import active, unknown_user

MIN_LENGTH = 10
MAX_LENGTH = 1024
# OWASP's argon2id baseline (m=19 MiB, t=2, p=1): about 0.1 s of one core per login here.
# The library's default (64 MiB, t=3, p=4) took about a second on this 2-core machine, which
# would let a handful of login attempts occupy the node. Old hashes are upgraded on login.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# Verified against when the user is unknown, so a wrong user id costs as long as a wrong
# password. A hash made once with _HASHER's parameters and written here, rather than hashed at
# import: that took 20-60 ms of every process start (``barnplan serve`` included), the wait
# of a returning node before it can refuse a revoked consent. It must be made with the same
# parameters as _HASHER (a test checks that _HASHER would not rehash it); regenerate it with
# ``_HASHER.hash("barnplan-no-such-user")`` when they change.
_DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$A/ytrNYDrOi4Uiu0HGVuLg"
    "$ItbMxEMA/TII4uuKkI5cvqCL+sZORbN7YH0om+pKWOo"
)


def check_policy(password: str) -> None:
    """At least MIN_LENGTH characters (a passphrase is fine); no other composition rules."""
    if len(password) < MIN_LENGTH:
        short = {"min_length": MIN_LENGTH}
        raise InvalidInput(
            f"the password must have at least {MIN_LENGTH} characters",
            code="min_length",
            params=short,
            fields={
                "password": FieldProblem("min_length", f"at least {MIN_LENGTH} characters", short)
            },
        )
    if len(password) > MAX_LENGTH:
        long = {"max_length": MAX_LENGTH}
        raise InvalidInput(
            f"the password must have at most {MAX_LENGTH} characters",
            code="max_length",
            params=long,
            fields={
                "password": FieldProblem("max_length", f"at most {MAX_LENGTH} characters", long)
            },
        )


async def set_password(engine: AsyncEngine, user_id: str, password: str) -> None:
    """Hash and store a user's password (replacing any earlier one: their sessions end)."""
    check_policy(password)
    hashed = await asyncio.to_thread(_HASHER.hash, password)
    async with begin_write(engine) as conn:
        result = await conn.execute(
            update(T_USER).where(T_USER.c.user_id == user_id).values(password_hash=hashed)
        )
    if not result.rowcount:
        raise unknown_user(user_id)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


async def login(engine: AsyncEngine, user_id: str, password: str) -> User | None:
    """The user if ``password`` is theirs and they are not disabled; None otherwise (same cost
    whether or not they exist, and a disabled user's password is checked all the same, so the
    answer's timing does not tell a disabled user from a wrong password)."""
    user = await user_by_id(engine, user_id) if len(user_id) <= 64 else None
    hashed = user.password_hash if user is not None else None
    ok = await asyncio.to_thread(_verify, hashed or _DUMMY_HASH, password[:MAX_LENGTH])
    user = active(user)
    if user is None or hashed is None or not ok:
        return None
    if _HASHER.check_needs_rehash(hashed):
        try:
            await set_password(engine, user.user_id, password)
        except InvalidInput:
            return user  # set before today's policy: keep the old hash
        user = active(await user_by_id(engine, user.user_id))  # disabled meanwhile: refused
    return user


def session_stamp(user: User) -> str:
    """A short digest kept in the session, of the password hash and of when the user was last
    disabled: a new password ends sessions, and so does disabling, for good (enabling the user
    again does not bring back a session left unused meanwhile)."""
    material = user.password_hash or ""
    if user.sessions_since is not None:
        material += "|" + user.sessions_since.isoformat()
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:24]
