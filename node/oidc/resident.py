"""Who a resident's verified sign-in is: the pure rules, no store and no network.

A resident (a guardian, or the child from the age the agency sets) signs in with
e-identification; the provider vouches for their personal identity number. The lead node keeps
that number only as a keyed hash (HMAC-SHA256 with ``subject-hash.key``, the same key and form
as a staff subject's), so the hash of the number a lead records for a person on a plan and the
hash of the number a provider vouches for match without the store holding either number. The
number never leaves the node and never enters a log.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..domain.personnummer import PersonnummerError, normalize_personnummer
from ..errors import Forbidden
from .identity import HASHED_PREFIX


class ResidentRefused(Forbidden):
    """The sign-in was genuine but lets no one in. ``code``: no_identity_number (the provider
    sent no valid personal identity number), no_plan (the person is on no plan this node
    leads), too_young (a child below ``residents.child_min_age``)."""

    def __init__(self, code: str) -> None:
        super().__init__(f"resident sign-in refused: {code}", code=code)


@dataclass(frozen=True)
class Resident:
    """A verified resident as this node keeps them: the keyed hash and the birth date (for
    the age rule), never the number."""

    identity_hash: str
    born: date


def identity_hash(personnummer: str, key: bytes, today: date) -> str:
    """The keyed hash of a personal identity number in its 12-digit form (so ``YYMMDD-NNNN``
    and ``YYYYMMDDNNNN`` of one person hash alike); ``PersonnummerError`` if it is not one."""
    normal = normalize_personnummer(personnummer, today)
    return HASHED_PREFIX + hmac.new(key, normal.encode("ascii"), hashlib.sha256).hexdigest()


def born_on(personnummer: str, today: date) -> date:
    """The birth date a valid personal identity number carries (samordningsnummer: day - 60)."""
    normal = normalize_personnummer(personnummer, today)
    day = int(normal[6:8])
    return date(int(normal[:4]), int(normal[4:6]), day - 60 if day > 60 else day)


def resident_from(
    claims: Mapping[str, Any], identity_claim: str, key: bytes, today: date
) -> Resident:
    """The resident a verified ID token names; ``ResidentRefused('no_identity_number')`` if
    the identity claim is missing or not a valid personal identity number."""
    number = claims.get(identity_claim)
    if not isinstance(number, str):
        raise ResidentRefused("no_identity_number")
    try:
        return Resident(identity_hash(number, key, today), born_on(number, today))
    except PersonnummerError:
        raise ResidentRefused("no_identity_number") from None


def age_on(born: date, today: date) -> int:
    """Whole years from ``born`` to ``today`` (a birthday on 29 February counts on 1 March
    in other years, as Swedish law counts it)."""
    years = today.year - born.year
    return years - 1 if (today.month, today.day) < (born.month, born.day) else years


def resident_user_id(identity: str) -> str:
    """The node-local user id of a resident: from the keyed hash, stable, saying nothing."""
    return "res-" + hashlib.sha256(identity.encode("ascii")).hexdigest()[:20]
