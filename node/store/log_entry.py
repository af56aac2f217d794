"""An exchange-log entry's columns, its text form and its hash: defined here once (SPEC.md §7.8).

An entry's hash is SHA-256 over the UTF-8 of its text form: the canonical JSON (keys sorted, no
spaces, ``ensure_ascii=False``) of every column but ``hash``, with ``at`` as RFC 3339 UTC with
microseconds (``format_at``). The log writer (``exchange_log``) hashes each new entry through
``entry_hash`` and the verifier (``chain_verify``) each stored one through ``values_hash``; both
are ``entry_text``.

``entry_text`` builds the usual entry (strings or None, integer ``seq`` and ``released``) with
one ``%`` format over the columns in sorted-key order and the ``json`` module's own string
encoder: the same bytes as ``json.dumps`` without a dict or an encoder per entry, which matters to
a verifier walking millions of entries. Any other value (only a hand-edited row holds one) takes
``json.dumps`` itself; a property test holds the two equal byte for byte.

Pure: standard library only, no store, so the verifier's child processes import it in
milliseconds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

GENESIS = "0" * 64  # the prev_hash of entry 1
# the exchange_log table's columns in the order rows are read and unpacked (a test holds them to
# the table)
COLUMNS = (
    "seq",
    "at",
    "direction",
    "peer",
    "message_type",
    "message_id",
    "plan_id",
    "consent_id",
    "purpose",
    "professional",
    "categories",
    "released",
    "withheld",
    "outcome",
    "reason",
    "prev_hash",
    "hash",
)
# the canonical JSON with the keys in sorted order: at categories consent_id direction message_id
# message_type outcome peer plan_id prev_hash professional purpose reason released seq withheld.
# ``at`` is always digits and punctuation, so it is quoted here; every other string goes through
# ``encode_basestring``.
_CANONICAL = (
    '{"at":"%sZ","categories":%s,"consent_id":%s,"direction":%s,"message_id":%s,'
    '"message_type":%s,"outcome":%s,"peer":%s,"plan_id":%s,"prev_hash":%s,"professional":%s,'
    '"purpose":%s,"reason":%s,"released":%d,"seq":%d,"withheld":%s}'
)


def format_at(when: datetime) -> str:
    """An entry's time as its text form and exports show it: RFC 3339 UTC, microseconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_text(
    at_iso: str,
    categories: Any,
    consent_id: Any,
    direction: Any,
    message_id: Any,
    message_type: Any,
    outcome: Any,
    peer: Any,
    plan_id: Any,
    prev_hash: Any,
    professional: Any,
    purpose: Any,
    reason: Any,
    released: Any,
    seq: Any,
    withheld: Any,
) -> str:
    """An entry's text form: ``at_iso`` is ``format_at`` without its ``Z``, the other fields
    come in sorted-key order. ``TypeError``/``ValueError`` for a value JSON cannot hold."""
    if type(released) is int and type(seq) is int:
        enc = encode_basestring
        try:
            return _CANONICAL % (
                at_iso,
                enc(categories),
                "null" if consent_id is None else enc(consent_id),
                enc(direction),
                enc(message_id),
                enc(message_type),
                enc(outcome),
                enc(peer),
                "null" if plan_id is None else enc(plan_id),
                enc(prev_hash),
                "null" if professional is None else enc(professional),
                "null" if purpose is None else enc(purpose),
                "null" if reason is None else enc(reason),
                released,
                seq,
                enc(withheld),
            )
        except TypeError:  # an unusual value: encode_basestring takes only a str
            pass
    material = {
        "at": at_iso + "Z",
        "categories": categories,
        "consent_id": consent_id,
        "direction": direction,
        "message_id": message_id,
        "message_type": message_type,
        "outcome": outcome,
        "peer": peer,
        "plan_id": plan_id,
        "prev_hash": prev_hash,
        "professional": professional,
        "purpose": purpose,
        "reason": reason,
        "released": released,
        "seq": seq,
        "withheld": withheld,
    }
    return json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_hash(row: Mapping[str, Any]) -> str:
    """The hash of an entry given as a mapping of its columns (``at`` a datetime)."""
    return text_hash(
        entry_text(
            format_at(row["at"])[:-1],
            row["categories"],
            row["consent_id"],
            row["direction"],
            row["message_id"],
            row["message_type"],
            row["outcome"],
            row["peer"],
            row["plan_id"],
            row["prev_hash"],
            row["professional"],
            row["purpose"],
            row["reason"],
            row["released"],
            row["seq"],
            row["withheld"],
        )
    )


def values_hash(values: Sequence[Any], at_iso: str) -> str:
    """The hash of an entry given as its stored values in ``COLUMNS`` order, its time already
    as ``format_at`` text without the ``Z`` (the verifier's hot loop: no dict per row)."""
    (
        seq,
        _at,
        direction,
        peer,
        message_type,
        message_id,
        plan_id,
        consent_id,
        purpose,
        professional,
        categories,
        released,
        withheld,
        outcome,
        reason,
        prev_hash,
        _hash,
    ) = values
    return text_hash(
        entry_text(
            at_iso,
            categories,
            consent_id,
            direction,
            message_id,
            message_type,
            outcome,
            peer,
            plan_id,
            prev_hash,
            professional,
            purpose,
            reason,
            released,
            seq,
            withheld,
        )
    )


def stored_at(value: Any) -> datetime:
    """``at`` as the store reads it: SQLite's naive text (UTC re-attached) or PostgreSQL's
    aware datetime. Anything else raises (the walker names that entry as edited)."""
    if type(value) is datetime and value.tzinfo is not None:
        return value.astimezone(UTC)
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def stored_at_text(value: Any) -> str | None:
    """``format_at`` of the stored ``at`` without its ``Z``, or None when the value is not what
    the store writes (then ``stored_at`` parses it and ``format_at`` formats it).

    ``format_at`` is strftime ``%Y-%m-%dT%H:%M:%S.%f`` of the UTC time, which is what
    ``isoformat`` prints for a naive time of a four-digit year, at a fraction of the cost.
    SQLite stores the naive UTC text; PostgreSQL's driver returns an aware datetime.
    """
    if type(value) is str:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            return None
    elif type(value) is datetime and value.tzinfo is not None:
        parsed = value.astimezone(UTC).replace(tzinfo=None)
    else:
        return None
    if parsed.year < 1000:
        return None
    return parsed.isoformat("T", "microseconds")
