"""Deterministic generator of the barnplan protocol test vectors (SPEC.md §12).

Run from the repository root::

    python protocol/vectors/generate.py            # rewrite the vectors next to this script
    python protocol/vectors/generate.py --out DIR  # write them somewhere else

Nothing here is random: keys come from fixed seeds, time from a ``ManualClock``, ids are derived
from fixed labels and Ed25519 signatures are deterministic (RFC 8032), so regenerating gives
byte-identical files. ``tests/protocol/test_vectors.py`` regenerates into a temporary directory
and compares, so the committed vectors cannot drift from the code.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocol.canonical import canonicalize
from protocol.clock import ManualClock, format_time
from protocol.documents import (
    build_node_document,
    sign_checkpoint,
    sign_consent,
    sign_fragment,
    sign_restore,
)
from protocol.encoding import b64url_decode, b64url_encode
from protocol.envelope import (
    DEFAULT_SKEW_S,
    MAX_LIFETIME_S,
    read_claims,
    sign_envelope,
)
from protocol.jsontext import MAX_DEPTH
from protocol.key_updates import sign_key_change
from protocol.keys import PublicKey, SigningKey, fingerprint, make_key_id
from protocol.signing import sign_object, signing_input

HERE = Path(__file__).resolve().parent
SUBDIRS = ("node-document", "envelopes", "fragments", "consent", "key-update", "restore")

NODE = "vectors.barnplan.test"  # the node whose keys sign every vector
PEER = "peer.barnplan.test"  # the verifying node: the audience of every envelope
OTHER = "other.barnplan.test"  # a node the verifier does not trust

# 32-byte Ed25519 seeds (RFC 8032 "secret keys"); each is SHA-256("barnplan test vectors: <label>
# key"), written out so nobody has to recompute them.
SEEDS = {
    "current": "2b27cdf6a77a180d7deb9e098ecee63bf05fed229e36ed7a138e7dbd1ba04363",
    "retired": "82cce6a374c0f3531a954a78076da97eaed078ae0f4007e4dfa2553aedd8b2da",
    "unlisted": "d32a50eb83a3a4782b8a276038c35f3ec4d2da387d1485800fb17e76662e7e91",
    "other": "189ac9b3073a7e97141122a43bcaae6aeaac8ecb45ce7288174136fbd423c908",
    "next": "229bfe9fc957df1429a6db8de2df3acb4c2e7fedf4d526e42258dc1c83acbd3e",
}

KEY_FROM = datetime(2026, 6, 1, tzinfo=UTC)  # the current key's valid_from
RETIRED_FROM = datetime(2025, 6, 1, tzinfo=UTC)  # the retired key: valid until KEY_FROM
DOC_AT = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)  # the node document's issued_at
T = datetime(2026, 11, 23, 9, 15, 2, tzinfo=UTC)  # issued_at of most envelopes
VERIFY_AT = T + timedelta(seconds=5)  # the verifier's clock for most envelopes
CHANGE_AT = datetime(2026, 11, 23, 9, 15, 0, tzinfo=UTC)  # "next" replaces "current" (§4.6)
TTL_S = 60
TRUST = "node-document/valid"
MAX_BODY_BYTES = 262144  # the default size limit (SPEC.md §8)
SMALL_LIMIT = 1024  # the smallest a node may configure; the size vectors use it

VALID = "valid"


def fixed_uuid(label: str) -> str:
    """A version-4-shaped UUID derived from ``label``, so ids are fixed but look like real ones."""
    return str(uuid.UUID(bytes=hashlib.sha256(label.encode()).digest()[:16], version=4))


PLAN_ID = fixed_uuid("plan")
CONSENT_ID = fixed_uuid("consent")
REPLACING_CONSENT_ID = fixed_uuid("consent replacing")
OTHER_PLAN_CONSENT_ID = fixed_uuid("consent of another plan")
FRAGMENT_ID = fixed_uuid("fragment")
PROFESSIONAL = f"{NODE}/u/17"


def wire(obj: Any) -> str:
    """The text a vector feeds the verifier: deliberately NOT canonical (spaces, insertion
    order, \\u escapes for every non-ASCII character), because a signature covers the canonical
    form of the parsed object, never the bytes on the wire."""
    return json.dumps(obj, ensure_ascii=True)


def unsigned(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "sig"}


def resign(obj: Mapping[str, Any], key: SigningKey, **changes: Any) -> dict[str, Any]:
    """Change fields of a signed object and sign it again (a well-signed but wrong object)."""
    return sign_object({**unsigned(obj), **changes}, key)


def with_sig_value(obj: Mapping[str, Any], value: str) -> dict[str, Any]:
    return {**obj, "sig": {**obj["sig"], "value": value}}


class Builder:
    """Collects vectors (name → JSON object) and the index that lists them."""

    def __init__(self) -> None:
        self.files: dict[str, Any] = {}
        self.index: list[dict[str, str]] = []

    def add(
        self,
        name: str,
        kind: str,
        expect: str,
        description: str,
        verify: dict[str, Any],
        text: str,
    ) -> None:
        record: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "description": description,
            "expect": expect,
            "verify": verify,
            "input_text": text,
        }
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and _renders(parsed):
            record["input"] = parsed
            if expect == VALID:
                data = signing_input(parsed)
                record["signing_input"] = data.decode("utf-8")
                record["signing_input_sha256"] = hashlib.sha256(data).hexdigest()
        if kind == "envelope" and expect != VALID and verify.get("request"):
            record["error_reply"] = error_reply(text, verify)
        if name in self.files:
            raise ValueError(f"duplicate vector {name}")
        self.files[name] = record
        self.index.append({"name": name, "file": f"{name}.json", "kind": kind, "expect": expect})


def _renders(value: Any) -> bool:
    """Whether ``value`` can be written to a UTF-8 file (a lone surrogate cannot)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def envelope_check(
    now: datetime = VERIFY_AT,
    audience: str = PEER,
    seen_first: Sequence[str] = (),
    reply_type: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> dict[str, Any]:
    """How to verify an envelope vector: as a request received at the federation endpoint, or
    (``reply_type``) as the reply to a request whose reply type that is (SPEC.md §5.3 steps 5
    and 6)."""
    check: dict[str, Any] = {
        "audience": audience,
        "now": format_time(now),
        "skew_s": DEFAULT_SKEW_S,
        "max_lifetime_s": MAX_LIFETIME_S,
        "max_body_bytes": max_body_bytes,
        "max_depth": MAX_DEPTH,
        "trust": TRUST,
        "seen_first": list(seen_first),
    }
    if reply_type is None:
        check["request"] = True
    else:
        check["reply_type"] = reply_type
    return check


def error_reply(text: str, verify: Mapping[str, Any]) -> dict[str, str]:
    """The ``to`` and ``re`` of the signed ``error`` a node answers a refused request with
    (SPEC.md §8), as the reference code reads them off the request."""
    claims = read_claims(text.encode("utf-8"), verify["max_depth"], verify["max_body_bytes"])
    reply = {"to": claims.to}
    if claims.id is not None:
        reply["re"] = claims.id
    return reply


def last_char_with_unused_bits_set(text: str) -> str:
    """The same bytes spelled with a non-zero unused trailing bit: the last base64url digit
    carries bits beyond the data (4 of them for 64 bytes, 2 for 32), of which the lowest is
    flipped here. A strict decoder refuses it (SPEC.md §3.1)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]


def without(obj: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in names}


# the identity point of edwards25519 (y = 1): a public key of small order
SMALL_ORDER_KEY = bytes([1]) + bytes(31)
# R = the identity, S = 0: satisfies [S]B = R + [k]A for A of small order and every message
SMALL_ORDER_SIGNATURE = SMALL_ORDER_KEY + bytes(32)


def nested(depth: int) -> Any:
    """A JSON value of exactly ``depth`` levels of arrays (a scalar is depth 0)."""
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def build() -> dict[str, Any]:
    """Every vector file as a JSON value, keyed by its path relative to the vectors directory."""
    current = SigningKey.from_seed(NODE, bytes.fromhex(SEEDS["current"]), KEY_FROM)
    retired = SigningKey.from_seed(NODE, bytes.fromhex(SEEDS["retired"]), RETIRED_FROM)
    unlisted = SigningKey.from_seed(NODE, bytes.fromhex(SEEDS["unlisted"]), KEY_FROM)
    other = SigningKey.from_seed(OTHER, bytes.fromhex(SEEDS["other"]), KEY_FROM)
    retired_public = retired.public(valid_until=KEY_FROM)

    out = Builder()

    # --- node document ------------------------------------------------------------------------
    doc_fields: dict[str, Any] = {
        "node_id": NODE,
        "agency_name": "Vektorby kommun – elevhälsa",
        "agency_kind": "school",
        "base_url": "https://vectors.barnplan.test",
        "key": current,
        "old_keys": [retired_public],
    }
    document = build_node_document(**doc_fields, issued_at=DOC_AT)
    doc_check = {"expected_id": NODE}
    out.add(
        "node-document/valid",
        "node_document",
        VALID,
        "The test node's self-signed node document: the current key first, the retired key with "
        "its valid_until. Its keys are the trusted keys of every other vector.",
        doc_check,
        wire(document),
    )
    out.add(
        "node-document/bad_signature-agency-name-changed",
        "node_document",
        "bad_signature",
        "agency_name changed after signing.",
        doc_check,
        wire({**document, "agency_name": "Vektorby kommun – socialtjänst"}),
    )
    out.add(
        "node-document/unknown_sender-not-the-expected-node",
        "node_document",
        "unknown_sender",
        "A valid document, fetched for another node id than the one it describes.",
        {"expected_id": PEER},
        wire(document),
    )
    out.add(
        "node-document/malformed-extra-field",
        "node_document",
        "malformed",
        "An unknown member 'contact', signed: unknown fields are rejected before the signature.",
        doc_check,
        wire(resign(document, current, contact="it@vektorby.test")),
    )
    bad_kid = dict(document["keys"][0])
    bad_kid["kid"] = f"{NODE}#{'0' * 16}"
    out.add(
        "node-document/malformed-kid-does-not-match-key",
        "node_document",
        "malformed",
        "A key entry whose kid is not derived from its public key, signed.",
        doc_check,
        wire(resign(document, current, keys=[bad_kid, *document["keys"][1:]])),
    )
    early = build_node_document(**doc_fields, issued_at=KEY_FROM - timedelta(days=31))
    out.add(
        "node-document/key_not_valid-issued-before-key",
        "node_document",
        "key_not_valid",
        "Signed by the current key with an issued_at before that key's valid_from.",
        doc_check,
        wire(early),
    )

    out.add(
        "node-document/unknown_key-signed-by-another-node",
        "node_document",
        "unknown_key",
        f"The document of {NODE}, signed by a key of {OTHER} (§4.4 step 4).",
        doc_check,
        wire(resign(document, other)),
    )
    out.add(
        "node-document/unknown_key-unlisted-key",
        "node_document",
        "unknown_key",
        f"Signed by a key of {NODE} that the document does not list (§4.4 step 5).",
        doc_check,
        wire(resign(document, unlisted)),
    )
    small_kid = make_key_id(NODE, SMALL_ORDER_KEY)
    small_order_doc = {
        **without(document, "sig"),
        "keys": [
            {
                "kid": small_kid,
                "alg": "Ed25519",
                "public": b64url_encode(SMALL_ORDER_KEY),
                "valid_from": format_time(KEY_FROM),
            }
        ],
        "sig": {"alg": "Ed25519", "key": small_kid, "value": b64url_encode(SMALL_ORDER_SIGNATURE)},
    }
    out.add(
        "node-document/bad_signature-small-order-key",
        "node_document",
        "bad_signature",
        "Lists only a key of small order (the identity point) and is 'signed' with R = identity, "
        "S = 0, which satisfies the plain verification equation for every message (§3.1).",
        doc_check,
        wire(small_order_doc),
    )
    odd_public = dict(document["keys"][0])
    odd_public["public"] = last_char_with_unused_bits_set(odd_public["public"])
    out.add(
        "node-document/malformed-public-key-unused-bits-set",
        "node_document",
        "malformed",
        "The current key's public key with a non-zero unused trailing bit (the same 32 bytes "
        "spelled another way), signed (§4.4 step 3).",
        doc_check,
        wire(resign(document, current, keys=[odd_public, *document["keys"][1:]])),
    )
    null_until = {**document["keys"][0], "valid_until": None}
    out.add(
        "node-document/malformed-null-member",
        "node_document",
        "malformed",
        'The current key entry with "valid_until": null, signed: an absent member is '
        "omitted, never null (§5.2).",
        doc_check,
        wire(resign(document, current, keys=[null_until, *document["keys"][1:]])),
    )
    out.add(
        "node-document/malformed-no-v",
        "node_document",
        "malformed",
        "Without the required member 'v', signed (§4.2).",
        doc_check,
        wire(sign_object(without(document, "v", "sig"), current)),
    )
    out.add(
        "node-document/malformed-duplicate-member",
        "node_document",
        "malformed",
        "'agency_name' written twice (first another name, then the signed one): a parser "
        "keeping the last would verify it (§1).",
        doc_check,
        '{"agency_name": "Vektorby kommun – socialtjänst", ' + wire(document)[1:],
    )
    out.add(
        "node-document/malformed-v-is-1.0",
        "node_document",
        "malformed",
        "'v' written 1.0: its canonical form is 1, so the signature verifies, but every number "
        "in the protocol is an integer (§1).",
        doc_check,
        wire(document).replace('"v": 1,', '"v": 1.0,', 1),
    )

    # --- fragments ----------------------------------------------------------------------------
    fragment_fields: dict[str, Any] = {
        "fragment_id": FRAGMENT_ID,
        "plan_id": PLAN_ID,
        "consent_id": CONSENT_ID,
        "origin": NODE,
        "category": "mental_health",
        "indicators": ["healthy", "included"],
        "version": 3,
        "authored_at": "2026-11-20T14:30:00Z",
        "signed_at": format_time(T),
        "content": {
            "summary": 'Behöver stöd i "matte" 📐\noch struktur i vardagen.',
            "needs": [{"what": "Förutsägbar skoldag", "indicator": "achieving"}],
            "goals": [{"what": "Närvaro över 90 %", "by": "2027-02-01", "indicator": "achieving"}],
            "actions": [
                {
                    "what": "Veckovisa samtal med kurator",
                    "who": "Kurator",
                    "start": "2026-11-25",
                    "status": "ongoing",
                    "indicator": "healthy",
                }
            ],
            "child_view": "Jag vill veta vad som händer i förväg.",
            "next_review": "2027-01-15",
        },
    }
    fragment = sign_fragment(fragment_fields, current)
    out.add(
        "fragments/valid",
        "fragment",
        VALID,
        "A fragment signed by its origin's current key; the summary holds non-ASCII, a non-BMP "
        "character, quotes and a newline to exercise canonicalization.",
        {"trust": TRUST},
        wire(fragment),
    )
    old_times = {"authored_at": "2026-05-19T10:00:00Z", "signed_at": "2026-05-20T10:00:00Z"}
    old_fragment = sign_object(
        {"v": 1, "type": "fragment", **fragment_fields, **old_times}, retired
    )
    out.add(
        "fragments/valid-retired-key",
        "fragment",
        VALID,
        "Signed (released) with the retired key while it was valid: still verifies after "
        "rotation because the node document keeps the old key listed.",
        {"trust": TRUST},
        wire(old_fragment),
    )
    written_long_ago = sign_fragment(
        {**fragment_fields, "authored_at": "2025-01-10T08:00:00Z"}, current
    )
    out.add(
        "fragments/valid-authored-before-key",
        "fragment",
        VALID,
        "Authored before the current key existed but signed after: the key must be valid at "
        "signed_at, not at authored_at.",
        {"trust": TRUST},
        wire(written_long_ago),
    )
    changed_content = {**fragment["content"], "summary": "Inga behov."}
    out.add(
        "fragments/bad_signature-content-changed",
        "fragment",
        "bad_signature",
        "content.summary changed after signing.",
        {"trust": TRUST},
        wire({**fragment, "content": changed_content}),
    )
    out.add(
        "fragments/unknown_key-other-node",
        "fragment",
        "unknown_key",
        f"origin is {NODE} but the signature is by a key of {OTHER}.",
        {"trust": TRUST},
        wire(resign(fragment, other)),
    )
    out.add(
        "fragments/unknown_key-unlisted",
        "fragment",
        "unknown_key",
        "Signed by a key of the origin node that its node document does not list.",
        {"trust": TRUST},
        wire(resign(fragment, unlisted)),
    )
    out.add(
        "fragments/key_not_valid-retired-key",
        "fragment",
        "key_not_valid",
        "Signed by the retired key with a signed_at after the key's valid_until.",
        {"trust": TRUST},
        wire(resign(fragment, retired)),
    )
    out.add(
        "fragments/malformed-extra-field",
        "fragment",
        "malformed",
        "An unknown member 'comment', signed.",
        {"trust": TRUST},
        wire(resign(fragment, current, comment="x")),
    )
    out.add(
        "fragments/malformed-unknown-category",
        "fragment",
        "malformed",
        "category 'finance' is not in the code list, signed.",
        {"trust": TRUST},
        wire(resign(fragment, current, category="finance")),
    )

    null_end = {
        **fragment["content"],
        "actions": [{**fragment["content"]["actions"][0], "end": None}],
    }
    out.add(
        "fragments/malformed-null-member",
        "fragment",
        "malformed",
        "content.actions[0].end is null, signed: an action without an end omits it (§5.2, §6.1).",
        {"trust": TRUST},
        wire(resign(fragment, current, content=null_end)),
    )
    family_words = sign_fragment(
        {
            **fragment_fields,
            "fragment_id": fixed_uuid("family fragment"),
            "category": "family",
            "indicators": [],
            "version": 2,
            "content": {
                "child_view": "Jag vill ha lugn på rasten.",
                "written_by": {"ref": "p2", "role": "child"},
            },
        },
        current,
    )
    out.add(
        "fragments/valid-family-own-words",
        "fragment",
        VALID,
        "The child's own words, written by the child at the lead (§6.1): category family, "
        "written_by names the consenter by plan-local reference and role, never by name.",
        {"trust": TRUST},
        wire(family_words),
    )
    named = {**family_words["content"], "written_by": {"ref": "p2", "role": "child", "name": "L"}}
    out.add(
        "fragments/malformed-written-by-name",
        "fragment",
        "malformed",
        "content.written_by carries a member 'name', signed: a consenter is {ref, role} only.",
        {"trust": TRUST},
        wire(resign(family_words, current, content=named)),
    )

    # --- consent statements -------------------------------------------------------------------
    consent = sign_consent(
        {
            "consent_id": CONSENT_ID,
            "plan_id": PLAN_ID,
            "lead": NODE,
            "purpose": "sip",
            "required": [{"ref": "g1", "role": "guardian"}, {"ref": "g2", "role": "guardian"}],
            "given_by": [{"ref": "g1", "role": "guardian"}, {"ref": "g2", "role": "guardian"}],
            "grants": [
                {"from": NODE, "to": [PEER], "categories": ["mental_health"]},
                {"from": PEER, "to": [NODE], "categories": ["education"]},
            ],
            "valid_from": "2026-11-01T00:00:00Z",
            "valid_until": "2027-11-01T00:00:00Z",
            "evidence_ref": "Samtyckesblankett 2026-11-01",
            "recorded_by": PROFESSIONAL,
            "issued_at": "2026-11-01T10:00:00Z",
        },
        current,
    )
    out.add(
        "consent/valid",
        "consent",
        VALID,
        "A consent statement signed by its lead node.",
        {"trust": TRUST},
        wire(consent),
    )
    wider = [
        {**consent["grants"][0], "categories": ["mental_health", "health"]},
        consent["grants"][1],
    ]
    out.add(
        "consent/bad_signature-grant-widened",
        "consent",
        "bad_signature",
        "A category added to a grant after signing.",
        {"trust": TRUST},
        wire({**consent, "grants": wider}),
    )
    out.add(
        "consent/unknown_key-not-the-lead",
        "consent",
        "unknown_key",
        f"lead is {NODE} but the statement is signed by a key of {OTHER}.",
        {"trust": TRUST},
        wire(resign(consent, other)),
    )

    out.add(
        "consent/key_not_valid-retired-key",
        "consent",
        "key_not_valid",
        "Signed by the lead's retired key with an issued_at after that key's valid_until.",
        {"trust": TRUST},
        wire(resign(consent, retired)),
    )
    out.add(
        "consent/malformed-no-type",
        "consent",
        "malformed",
        "Without the required member 'type', signed (§6.2).",
        {"trust": TRUST},
        wire(sign_object(without(consent, "type", "sig"), current)),
    )

    replacing = sign_consent(
        {
            **{k: v for k, v in consent.items() if k not in ("v", "type", "sig")},
            "consent_id": REPLACING_CONSENT_ID,
            "grants": wider,
            "issued_at": "2026-11-20T10:00:00Z",
            "replaces": CONSENT_ID,
        },
        current,
    )
    out.add(
        "consent/valid-replacing",
        "consent",
        VALID,
        "A changed consent (a category added to a grant) that replaces consent/valid: "
        "'replaces' names the earlier statement of the same plan by the same lead (§6.2, §7.3).",
        {"trust": TRUST},
        wire(replacing),
    )
    out.add(
        "consent/malformed-replaces-null",
        "consent",
        "malformed",
        "'replaces' is null, signed: a statement that replaces nothing omits it (§5.2, §6.2).",
        {"trust": TRUST},
        wire(sign_object({**unsigned(replacing), "replaces": None}, current)),
    )

    # --- restore declarations (§7.8) ------------------------------------------------------------
    restore = sign_restore(
        node_id=NODE,
        seq=1041,
        head=hashlib.sha256(b"entry 1041").hexdigest(),
        at=T - timedelta(minutes=5),
        key=current,
        note="Återställd från säkerhetskopian 2026-11-22",
    )
    out.add(
        "restore/valid",
        "restore",
        VALID,
        "A restore declaration: the test node's log continues from entry 1041 (§7.8).",
        {"trust": TRUST},
        wire(restore),
    )
    out.add(
        "restore/bad_signature-seq-changed",
        "restore",
        "bad_signature",
        "The entry restored to changed after signing.",
        {"trust": TRUST},
        wire({**restore, "seq": 1040}),
    )
    out.add(
        "restore/unknown_key-signed-by-another-node",
        "restore",
        "unknown_key",
        f"node is {NODE} but the declaration is signed by a key of {OTHER}.",
        {"trust": TRUST},
        wire(resign(restore, other)),
    )
    out.add(
        "restore/key_not_valid-retired-key",
        "restore",
        "key_not_valid",
        "Signed by the retired key with an 'at' after that key's valid_until.",
        {"trust": TRUST},
        wire(resign(restore, retired)),
    )
    out.add(
        "restore/malformed-note-too-long",
        "restore",
        "malformed",
        "A note of 201 characters, signed: at most 200.",
        {"trust": TRUST},
        wire(resign(restore, current, note="x" * 201)),
    )

    # --- envelopes: valid ---------------------------------------------------------------------
    clock = ManualClock(T)

    def envelope(
        message_type: str,
        body: Mapping[str, Any],
        label: str,
        *,
        key: SigningKey = current,
        re: str | None = None,
        at: ManualClock = clock,
        ttl_s: int = TTL_S,
        to: str = PEER,
    ) -> dict[str, Any]:
        return sign_envelope(
            type=message_type,
            body=body,
            sender=key.node_id,
            to=to,
            key=key,
            clock=at,
            ttl_s=ttl_s,
            message_id=fixed_uuid(label),
            re=re,
        )

    hello = envelope("hello", {"started_at": "2026-11-23T09:14:00Z"}, "hello")
    out.add(
        "envelopes/valid-hello",
        "envelope",
        VALID,
        "A hello from the test node to the verifier.",
        envelope_check(),
        wire(hello),
    )
    out.add(
        "envelopes/valid-hello-ack",
        "envelope",
        VALID,
        "A reply: hello.ack carries the request's id in 're'.",
        envelope_check(reply_type="hello.ack"),
        wire(envelope("hello.ack", {"ok": True}, "hello.ack", re=fixed_uuid("peer hello"))),
    )
    request_body = {
        "plan_id": PLAN_ID,
        "consent_id": CONSENT_ID,
        "categories": ["mental_health", "health"],
        "purpose": "sip",
        "professional": PROFESSIONAL,
    }
    request = envelope("fragments.request", request_body, "fragments.request")
    out.add(
        "envelopes/valid-fragments-request",
        "envelope",
        VALID,
        "A fragments.request for two categories under one consent.",
        envelope_check(),
        wire(request),
    )
    response_body = {
        "plan_id": PLAN_ID,
        "consent_id": CONSENT_ID,
        "fragments": [fragment],
        "withheld": [{"category": "health", "reason": "category_not_granted"}],
    }
    out.add(
        "envelopes/valid-fragments-response",
        "envelope",
        VALID,
        "A fragments.response releasing one signed fragment (see fragments/valid) and listing "
        "one withheld category with its reason.",
        envelope_check(reply_type="fragments.response"),
        wire(
            envelope(
                "fragments.response",
                response_body,
                "fragments.response",
                re=fixed_uuid("peer fragments.request"),
            )
        ),
    )
    statement_message = envelope("consent.statement", {"statement": consent}, "consent.statement")
    out.add(
        "envelopes/valid-consent-statement",
        "envelope",
        VALID,
        "A consent.statement carrying the signed statement of consent/valid.",
        envelope_check(),
        wire(statement_message),
    )
    out.add(
        "envelopes/valid-consent-statement-replacing",
        "envelope",
        VALID,
        "A consent.statement carrying consent/valid-replacing: the participant stores it and, "
        "in the same transaction, marks consent/valid replaced (§7.3).",
        envelope_check(),
        wire(
            envelope("consent.statement", {"statement": replacing}, "consent.statement replacing")
        ),
    )
    other_plan_body = {
        "reason": "consent_other_plan",
        "detail": f"the consent it replaces ({OTHER_PLAN_CONSENT_ID}) is held here for "
        "another plan",
    }
    out.add(
        "envelopes/valid-error-consent-other-plan-replaces",
        "envelope",
        VALID,
        "A participant's signed refusal (HTTP 400) of a consent.statement whose 'replaces' "
        "names a consent it holds for another plan: nothing is stored or replaced (§7.3).",
        envelope_check(reply_type="consent.ack"),
        wire(
            envelope(
                "error",
                other_plan_body,
                "error consent_other_plan replaces",
                re=fixed_uuid("peer consent.statement replacing"),
            )
        ),
    )
    replaced_body = {
        "plan_id": PLAN_ID,
        "consent_id": CONSENT_ID,
        "fragments": [],
        "withheld": [
            {"category": "mental_health", "reason": "consent_replaced"},
            {"category": "health", "reason": "consent_replaced"},
        ],
    }
    out.add(
        "envelopes/valid-fragments-response-consent-replaced",
        "envelope",
        VALID,
        "The holder's answer to envelopes/valid-fragments-request once consent/valid-replacing "
        "replaced that request's consent: every category withheld consent_replaced (§11 step 6).",
        envelope_check(reply_type="fragments.response"),
        wire(
            envelope(
                "fragments.response",
                replaced_body,
                "fragments.response consent_replaced",
                re=fixed_uuid("peer fragments.request replaced"),
            )
        ),
    )
    close_body = {
        "notice_id": fixed_uuid("plan.close notice"),
        "plan_id": PLAN_ID,
        "closed_at": "2026-11-23T09:14:30Z",
        "closed_by": NODE,
        "professional": PROFESSIONAL,
    }
    plan_close = envelope("plan.close", close_body, "plan.close")
    out.add(
        "envelopes/valid-plan-close",
        "envelope",
        VALID,
        "A plan.close from the plan's lead (SPEC §7.11): closed_by is the sender.",
        envelope_check(),
        wire(plan_close),
    )
    out.add(
        "envelopes/valid-plan-close-ack",
        "envelope",
        VALID,
        "A reply: plan.close.ack echoes the notice's notice_id and plan_id.",
        envelope_check(reply_type="plan.close.ack"),
        wire(
            envelope(
                "plan.close.ack",
                {"notice_id": close_body["notice_id"], "plan_id": PLAN_ID},
                "plan.close.ack",
                re=fixed_uuid("peer plan.close"),
            )
        ),
    )
    invite_reply = envelope(
        "plan.invite.reply",
        {"plan_id": PLAN_ID, "status": "pending"},
        "plan.invite.reply",
        re=fixed_uuid("peer plan.invite"),
    )
    out.add(
        "envelopes/valid-plan-invite-reply",
        "envelope",
        VALID,
        "The one reply an invited node gives to a plan.invite (SPEC §7.1): status 'pending', "
        "whether or not it holds the child or knows the plan.",
        envelope_check(reply_type="plan.invite.reply"),
        wire(invite_reply),
    )
    error_body = {
        "reason": "replayed",
        "detail": f"message id {fixed_uuid('peer replayed')} already seen",
    }
    out.add(
        "envelopes/valid-error",
        "envelope",
        VALID,
        "A signed error reply (HTTP 409 for this reason) to one of the verifier's requests.",
        envelope_check(reply_type="fragments.response"),
        wire(envelope("error", error_body, "error", re=fixed_uuid("peer replayed"))),
    )
    checkpoint = sign_checkpoint(
        node_id=NODE,
        seq=1046,
        head=hashlib.sha256(b"entry 1046").hexdigest(),
        at=T - timedelta(minutes=1),
        key=current,
    )
    checkpoint_body = {
        "checkpoint": checkpoint,
        "prior": {"seq": restore["seq"], "head": restore["head"]},
        "restore": restore,
    }
    out.add(
        "envelopes/valid-log-checkpoint-after-restore",
        "envelope",
        VALID,
        "A log.checkpoint asking the verifier to witness entry 1046, following the restore "
        "declaration of restore/valid (its link, 'prior'), which it carries (§7.8).",
        envelope_check(),
        wire(envelope("log.checkpoint", checkpoint_body, "log.checkpoint")),
    )
    inconsistent_body = {
        "reason": "checkpoint_inconsistent",
        "detail": "does not follow the latest checkpoint witnessed (entry 1046)",
    }
    out.add(
        "envelopes/valid-error-checkpoint-inconsistent",
        "envelope",
        VALID,
        "A witness's signed refusal (HTTP 409) of a checkpoint that does not extend what it "
        "witnessed of the requester's log (§7.8 step 3).",
        envelope_check(reply_type="log.witness"),
        wire(
            envelope(
                "error",
                inconsistent_body,
                "error checkpoint_inconsistent",
                re=fixed_uuid("peer log.checkpoint"),
            )
        ),
    )
    # access report (SPEC §7.12): the lead asks, a holder answers from its exchange log
    report_request_body = {
        "plan_id": PLAN_ID,
        "cursor": 0,
        "purpose": "sip",
        "professional": PROFESSIONAL,
    }
    report_request = envelope("access.report.request", report_request_body, "access.report.req")
    out.add(
        "envelopes/valid-access-report-request",
        "envelope",
        VALID,
        "The plan's lead asks a holder for the releases it made under the plan's consents, "
        "first page (cursor 0), SPEC §7.12.",
        envelope_check(),
        wire(report_request),
    )
    report_body = {
        "plan_id": PLAN_ID,
        "releases": [
            {
                "seq": 1046,
                "at": "2026-11-23T09:15:03Z",
                "recipient": PEER,
                "consent_id": CONSENT_ID,
                "purpose": "sip",
                "released": ["mental_health"],
                "withheld": [{"category": "health", "reason": "category_not_granted"}],
                "role": "lead_professional",
            }
        ],
        "cursor": 1046,
        "more": False,
    }
    report = envelope(
        "access.report", report_body, "access.report", re=fixed_uuid("peer access.report.req")
    )
    out.add(
        "envelopes/valid-access-report",
        "envelope",
        VALID,
        "A holder's access report: one release decision (one category released, one withheld) "
        "from its exchange log, the acting professional by role only; no more pages.",
        envelope_check(reply_type="access.report"),
        wire(report),
    )
    archived_report = envelope(
        "access.report",
        {**report_body, "archived_before": "2026-07-01T00:00:04Z"},
        "access.report archived",
        re=fixed_uuid("peer access.report.req archived"),
    )
    out.add(
        "envelopes/valid-access-report-archived",
        "envelope",
        VALID,
        "An access report from a holder that archived the start of its exchange log while the "
        "plan ran: archived_before says from when the report is complete (§7.12).",
        envelope_check(reply_type="access.report"),
        wire(archived_report),
    )
    out.add(
        "envelopes/valid-error-access-report-not-lead",
        "envelope",
        VALID,
        "The signed refusal a node that is not the plan's lead (or names a plan the holder does "
        "not know) gets for an access.report.request: plan_unknown in both cases (§7.12).",
        envelope_check(reply_type="access.report"),
        wire(
            envelope(
                "error",
                {"reason": "plan_unknown", "detail": "no such plan with this lead"},
                "error access.report plan_unknown",
                re=fixed_uuid("peer access.report.req other"),
            )
        ),
    )
    bad_release = {**report_body["releases"][0], "role": "skolkurator"}  # type: ignore[index]
    out.add(
        "envelopes/malformed-access-report-role",
        "envelope",
        "malformed",
        "envelopes/valid-access-report re-signed with a role outside the code list "
        "(lead_professional, professional): a report names roles, not titles or staff.",
        envelope_check(reply_type="access.report"),
        wire(resign(report, current, body={**report_body, "releases": [bad_release]})),
    )
    out.add(
        "envelopes/malformed-access-report-page-too-long",
        "envelope",
        "malformed",
        "envelopes/valid-access-report re-signed with 201 releases: a page holds at most 200.",
        envelope_check(reply_type="access.report"),
        wire(
            resign(
                report,
                current,
                body={
                    **report_body,
                    "releases": [
                        {**report_body["releases"][0], "seq": n}  # type: ignore[index]
                        for n in range(1, 202)
                    ],
                },
            )
        ),
    )
    before_rotation = T.replace(month=5, day=31)
    out.add(
        "envelopes/valid-retired-key-before-rotation",
        "envelope",
        VALID,
        "Signed by the retired key while it was still valid, verified at that time.",
        envelope_check(now=before_rotation + timedelta(seconds=5)),
        wire(
            envelope(
                "hello",
                {"started_at": "2026-05-31T09:14:00Z"},
                "old hello",
                key=retired,
                at=ManualClock(before_rotation),
            )
        ),
    )
    out.add(
        "envelopes/valid-at-earliest-instant",
        "envelope",
        VALID,
        "envelopes/valid-hello verified at issued_at - skew exactly (inclusive bound).",
        envelope_check(now=T - timedelta(seconds=DEFAULT_SKEW_S)),
        wire(hello),
    )
    out.add(
        "envelopes/valid-at-latest-instant",
        "envelope",
        VALID,
        "envelopes/valid-hello verified at expires_at + skew exactly (inclusive bound).",
        envelope_check(now=T + timedelta(seconds=TTL_S + DEFAULT_SKEW_S)),
        wire(hello),
    )
    longest = envelope("hello", {"started_at": "2026-11-23T09:14:00Z"}, "longest", ttl_s=300)
    out.add(
        "envelopes/valid-lifetime-300s",
        "envelope",
        VALID,
        "expires_at - issued_at is exactly 300 s, the longest lifetime allowed.",
        envelope_check(),
        wire(longest),
    )

    # --- envelopes: malformed -----------------------------------------------------------------
    def bad(name: str, expect: str, description: str, text: str, **check: Any) -> None:
        out.add(f"envelopes/{name}", "envelope", expect, description, envelope_check(**check), text)

    bad("malformed-not-json", "malformed", "Truncated JSON.", wire(hello)[:40])
    bad(
        "malformed-not-an-object",
        "malformed",
        "A JSON array holding the envelope.",
        f"[{wire(hello)}]",
    )
    duplicated = wire(hello)[:-1] + ', "to": "peer.barnplan.test"}'
    bad("malformed-duplicate-member", "malformed", "The member 'to' appears twice.", duplicated)
    bad(
        "malformed-missing-field",
        "malformed",
        "No 'expires_at' (the structure check precedes the signature check).",
        wire({k: v for k, v in hello.items() if k != "expires_at"}),
    )
    bad(
        "malformed-extra-field",
        "malformed",
        "An unknown member 'priority', signed.",
        wire(resign(hello, current, priority="high")),
    )
    bad(
        "malformed-id-not-lowercase-uuid",
        "malformed",
        "'id' is an upper-case UUID, signed.",
        wire(resign(hello, current, id=hello["id"].upper())),
    )
    bad(
        "malformed-v-not-integer",
        "malformed",
        "'v' is the string \"1\", signed.",
        wire(resign(hello, current, v="1")),
    )
    padded = base64.b64encode(b64url_decode(hello["sig"]["value"])).decode("ascii")
    bad(
        "malformed-sig-not-base64url",
        "malformed",
        "sig.value is padded standard base64 of the right signature.",
        wire(with_sig_value(hello, padded)),
    )
    short = b64url_encode(b64url_decode(hello["sig"]["value"])[:63])
    bad(
        "malformed-sig-wrong-length",
        "malformed",
        "sig.value decodes to 63 bytes.",
        wire(with_sig_value(hello, short)),
    )
    bad(
        "malformed-sig-alg",
        "malformed",
        "sig.alg is 'EdDSA'.",
        wire({**hello, "sig": {**hello["sig"], "alg": "EdDSA"}}),
    )
    bad(
        "malformed-timestamp-without-offset",
        "malformed",
        "issued_at has no UTC offset, signed.",
        wire(resign(hello, current, issued_at="2026-11-23T09:15:02")),
    )
    bad_body = {k: v for k, v in request_body.items() if k != "purpose"}
    bad(
        "malformed-body",
        "malformed",
        "A signed, timely fragments.request whose body lacks 'purpose': the body is checked "
        "after the signature and the times.",
        wire(resign(request, current, body=bad_body)),
    )
    bad(
        "malformed-plan-invite-reply-linked",
        "malformed",
        "envelopes/valid-plan-invite-reply re-signed with status 'linked': a plan.invite.reply "
        "never says how the invitation went (SPEC §7.1), so the body fails validation.",
        wire(resign(invite_reply, current, body={"plan_id": PLAN_ID, "status": "linked"})),
        reply_type="plan.invite.reply",
    )
    bad(
        "malformed-plan-close-reason",
        "malformed",
        "envelopes/valid-plan-close re-signed with a body member SPEC §7.11 does not define "
        "('reason'): the body fails validation.",
        wire(resign(plan_close, current, body={**close_body, "reason": "done"})),
    )
    deepest_ok = {"started_at": "2026-11-23T09:14:00Z", "n": nested(MAX_DEPTH - 2)}
    bad(
        "malformed-depth-32",
        "malformed",
        "Nesting depth exactly 32 passes the depth check; the extra body member 'n' then fails "
        "body validation.",
        wire(resign(hello, current, body=deepest_ok)),
    )
    too_deep = {"started_at": "2026-11-23T09:14:00Z", "n": nested(MAX_DEPTH - 1)}
    bad(
        "too_deep",
        "too_deep",
        "Nesting depth 33 (the envelope object is depth 1, its body depth 2).",
        wire(resign(hello, current, body=too_deep)),
    )

    # --- envelopes: version, type, audience, keys -----------------------------------------------
    bad(
        "unsupported_version",
        "unsupported_version",
        "v is 2, signed.",
        wire(resign(hello, current, v=2)),
    )
    bad(
        "unknown_type",
        "unknown_type",
        "type 'plan.explode' is not a message type, signed.",
        wire(resign(hello, current, type="plan.explode")),
    )
    bad(
        "wrong_audience",
        "wrong_audience",
        f"Addressed to {OTHER}, signed; verified by {PEER}.",
        wire(resign(hello, current, to=OTHER)),
    )
    bad(
        "unknown_sender",
        "unknown_sender",
        f"From {OTHER}, signed by its own key; the verifier does not trust {OTHER}.",
        wire(envelope("hello", {"started_at": "2026-11-23T09:14:00Z"}, "stranger", key=other)),
    )
    bad(
        "unknown_key-other-node",
        "unknown_key",
        f"From {NODE} but signed with a key id of {OTHER}.",
        wire(resign(hello, other)),
    )
    bad(
        "unknown_key-unlisted",
        "unknown_key",
        f"From {NODE}, signed with a key of {NODE} that its node document does not list.",
        wire(resign(hello, unlisted)),
    )
    bad(
        "key_not_valid-retired-key",
        "key_not_valid",
        "Signed by the retired key after its valid_until.",
        wire(resign(hello, retired)),
    )
    early_clock = ManualClock(KEY_FROM - timedelta(days=1))
    early_hello = envelope("hello", {"started_at": "2026-05-31T00:00:00Z"}, "early", at=early_clock)
    bad(
        "key_not_valid-before-valid-from",
        "key_not_valid",
        "Signed by the current key with an issued_at before its valid_from; the verifier's clock "
        "is at issued_at.",
        wire(early_hello),
        now=KEY_FROM - timedelta(days=1),
    )

    # --- envelopes: signature -------------------------------------------------------------------
    changed_body = {"started_at": "2026-11-23T09:14:01Z"}
    bad(
        "bad_signature-body-changed",
        "bad_signature",
        "body.started_at changed after signing.",
        wire({**hello, "body": changed_body}),
    )
    flipped = bytearray(b64url_decode(hello["sig"]["value"]))
    flipped[0] ^= 0x01
    bad(
        "bad_signature-signature-bit-flipped",
        "bad_signature",
        "The lowest bit of the signature's first byte flipped.",
        wire(with_sig_value(hello, b64url_encode(bytes(flipped)))),
    )
    sloppy = current.sign(json.dumps(unsigned(hello)).encode("utf-8"))
    bad(
        "bad_signature-not-canonical-signing-input",
        "bad_signature",
        "Signed over json.dumps output (spaces, insertion order) instead of the RFC 8785 form.",
        wire(with_sig_value(hello, b64url_encode(sloppy))),
    )

    # --- envelopes: time and replay ---------------------------------------------------------------
    bad(
        "outside_skew-lifetime-too-long",
        "outside_skew",
        "expires_at - issued_at is 301 s.",
        wire(envelope("hello", {"started_at": "2026-11-23T09:14:00Z"}, "long", ttl_s=301)),
    )
    bad(
        "outside_skew-lifetime-zero",
        "outside_skew",
        "expires_at equals issued_at.",
        wire(envelope("hello", {"started_at": "2026-11-23T09:14:00Z"}, "zero", ttl_s=0)),
    )
    bad(
        "not_yet_valid",
        "not_yet_valid",
        "envelopes/valid-hello verified 1 s before issued_at - skew.",
        wire(hello),
        now=T - timedelta(seconds=DEFAULT_SKEW_S + 1),
    )
    bad(
        "expired",
        "expired",
        "envelopes/valid-hello verified 1 s after expires_at + skew.",
        wire(hello),
        now=T + timedelta(seconds=TTL_S + DEFAULT_SKEW_S + 1),
    )
    bad(
        "replayed",
        "replayed",
        "envelopes/valid-hello again: verify the vectors in verify.seen_first first, with the "
        "same replay memory, then this one.",
        wire(hello),
        seen_first=["envelopes/valid-hello"],
    )

    # --- envelopes: size, request and reply rules ------------------------------------------------
    def spaced(obj: Mapping[str, Any], size: int) -> str:
        """``wire(obj)`` with spaces before its closing brace, ``size`` bytes in all."""
        text = wire(obj)
        return text[:-1] + " " * (size - len(text)) + "}"

    out.add(
        "envelopes/valid-at-size-limit",
        "envelope",
        VALID,
        f"envelopes/valid-hello padded with spaces to exactly max_body_bytes ({SMALL_LIMIT}) "
        "bytes: whitespace is not signed, and the limit is inclusive.",
        envelope_check(max_body_bytes=SMALL_LIMIT),
        spaced(hello, SMALL_LIMIT),
    )
    bad(
        "too_large",
        "too_large",
        f"The same, one byte longer than max_body_bytes ({SMALL_LIMIT}): refused before it is "
        "parsed (step 0), so its error reply is anonymous.",
        spaced(hello, SMALL_LIMIT + 1),
        max_body_bytes=SMALL_LIMIT,
    )
    ack = envelope("hello.ack", {"ok": True}, "hello.ack", re=fixed_uuid("peer hello"))
    bad(
        "malformed-reply-of-another-type",
        "malformed",
        "envelopes/valid-hello-ack received as the reply to a fragments.request: neither "
        "fragments.response nor error (step 6).",
        wire(ack),
        reply_type="fragments.response",
    )
    bad(
        "unknown_type-reply-sent-as-request",
        "unknown_type",
        "A hello.ack (with a corrupted signature) sent to the endpoint as a request: a reply "
        "type is not a request, decided at step 5, before any signature work.",
        wire(with_sig_value(ack, b64url_encode(bytes(flipped)))),
    )
    bad(
        "malformed-re-on-request",
        "malformed",
        "A hello carrying 're', signed: a request carries none (§5.2, step 6).",
        wire(envelope("hello", hello["body"], "hello with re", re=fixed_uuid("peer hello"))),
    )
    bad(
        "malformed-re-null",
        "malformed",
        'envelopes/valid-hello-ack with "re": null, signed: a member without a value is '
        "omitted, never null (step 3).",
        wire(resign(ack, current, re=None)),
        reply_type="hello.ack",
    )

    # --- envelopes: values with no canonical form, numbers, times, spellings ----------------------
    odd_statement = {**consent, "evidence_ref": "Samtyckesblankett \ud800"}
    bad(
        "malformed-lone-surrogate",
        "malformed",
        "envelopes/valid-consent-statement with a lone surrogate (the escape \\ud800) in the "
        "statement's evidence_ref: no canonical form, so step 14 fails as malformed, not as "
        "bad_signature (§2.2).",
        wire({**statement_message, "body": {"statement": odd_statement}}),
    )
    catch_up = envelope("revocations.since", {"cursor": 1}, "catch-up")
    bad(
        "malformed-integer-without-canonical-form",
        "malformed",
        "A revocations.since whose cursor is 2^53 (9007199254740992), beyond ±(2^53 − 1): no "
        "canonical form, so step 14 fails as malformed (§2.2).",
        wire(catch_up).replace('"cursor": 1}', f'"cursor": {2**53}}}'),
    )
    bad(
        "malformed-number-with-fraction",
        "malformed",
        "envelopes/valid-hello with 'v' written 1.0. Its canonical form is 1, so the signature "
        "would verify; every number in the protocol is an integer (§1, step 1).",
        wire(hello).replace('"v": 1,', '"v": 1.0,', 1),
    )
    bad(
        "malformed-number-with-exponent",
        "malformed",
        "envelopes/valid-hello with 'v' written 1e0 (step 1).",
        wire(hello).replace('"v": 1,', '"v": 1e0,', 1),
    )
    fractional = resign(
        hello, current, issued_at="2026-11-23T09:15:02.5Z", expires_at="2026-11-23T09:16:02.5Z"
    )
    out.add(
        "envelopes/valid-fractional-seconds",
        "envelope",
        VALID,
        "issued_at and expires_at with a fraction of a second, signed: receivers accept 1–6 "
        "fraction digits (§1), though senders write whole seconds.",
        envelope_check(),
        wire(fractional),
    )
    bad(
        "malformed-seven-fraction-digits",
        "malformed",
        "issued_at with 7 fraction digits, signed (step 8).",
        wire(resign(hello, current, issued_at="2026-11-23T09:15:02.1234567Z")),
    )
    bad(
        "malformed-sig-unused-bits-set",
        "malformed",
        "sig.value spelled with a non-zero unused trailing bit: the same 64 bytes, but not the "
        "one canonical spelling (step 7).",
        wire(with_sig_value(hello, last_char_with_unused_bits_set(hello["sig"]["value"]))),
    )
    empty_owner = {**hello, "sig": {**hello["sig"], "key": "#" + current.key_id.split("#")[1]}}
    bad(
        "malformed-key-owner-empty",
        "malformed",
        "sig.key is '#<fingerprint>': the owner before the '#' is empty (step 11).",
        wire(empty_owner),
    )

    # --- envelopes: to whom the error goes (§8) -------------------------------------------------
    bad(
        "malformed-id-with-trailing-newline",
        "malformed",
        "'id' is the UUID followed by a line feed, signed: not a UUID (a pattern matches the "
        "whole string), so the error reply carries no 're' (§1, step 3, §8).",
        wire(resign(hello, current, id=hello["id"] + "\n")),
    )
    nested_claims = {"v": 1, "type": "hello", "body": {"from": NODE, "id": hello["id"]}}
    bad(
        "malformed-from-and-id-only-nested",
        "malformed",
        "No top-level 'from' or 'id'; both appear inside 'body'. The error reply is read off the "
        "top-level object only: anonymous, without 're' (§8).",
        wire(nested_claims),
    )
    bad(
        "malformed-byte-order-mark",
        "malformed",
        "envelopes/valid-hello preceded by a UTF-8 byte-order mark (step 1); the request is "
        "not read, so the error reply is anonymous (§8).",
        "\ufeff" + wire(hello),
    )

    # --- key changes (§4.6) ---------------------------------------------------------------------
    next_key = SigningKey.from_seed(NODE, bytes.fromhex(SEEDS["next"]), CHANGE_AT)
    key_updates(out, doc_fields, current, retired_public, unlisted, next_key, envelope)

    # --- keys, canonicalization, index ----------------------------------------------------------
    files: dict[str, Any] = {f"{name}.json": record for name, record in out.files.items()}
    files["keys.json"] = keys_file(current, retired, unlisted, other, next_key)
    files["canonical.json"] = canonical_file()
    files["index.json"] = {
        "description": "Every barnplan protocol test vector; see README.md and SPEC.md §12.",
        "node_id": NODE,
        "audience": PEER,
        "vectors": out.index,
    }
    return files


def update_check(held: str, now: datetime) -> dict[str, Any]:
    return {"held": held, "now": format_time(now), "skew_s": DEFAULT_SKEW_S}


def key_updates(
    out: Builder,
    doc_fields: Mapping[str, Any],
    current: SigningKey,
    retired_public: PublicKey,
    unlisted: SigningKey,
    next_key: SigningKey,
    envelope: Any,
) -> None:
    """Changed node documents judged against a held one (§4.6), and the message carrying one."""
    names = {k: doc_fields[k] for k in ("node_id", "agency_name", "agency_kind", "base_url")}
    rotation = sign_key_change(
        **names,
        new_key=next_key,
        outgoing=current,
        older_keys=[retired_public],
        at=CHANGE_AT,
    )
    after = CHANGE_AT + timedelta(seconds=5)
    out.add(
        "key-update/valid-rotation",
        "key_update",
        VALID,
        "The test node rotates from the current key to the 'next' key at "
        f"{format_time(CHANGE_AT)}: the current key, which the verifier holds as current, signs "
        "in its last valid second a document listing 'next' first and itself valid until the "
        "change. It replaces the held node-document/valid.",
        update_check("node-document/valid", after),
        wire(rotation),
    )
    gone = build_node_document(
        **names, key=unlisted, old_keys=[current.public(), retired_public], issued_at=CHANGE_AT
    )
    out.add(
        "key-update/unknown_key-signer-not-held",
        "key_update",
        "unknown_key",
        "Signed by the unlisted key, which the held document does not list, listing itself as "
        "the current key.",
        update_check("node-document/valid", after),
        wire(gone),
    )
    forever = PublicKey(retired_public.key_id, retired_public.raw, retired_public.valid_from)
    revived = build_node_document(**names, key=current, old_keys=[forever], issued_at=after)
    out.add(
        "key-update/malformed-revives-a-retired-key",
        "key_update",
        "malformed",
        "Signed by the current key, but listing the retired key with no valid_until: a key the "
        "held document ends can never become valid again.",
        update_check("node-document/valid", after),
        wire(revived),
    )
    late = ManualClock(after)
    signed_after_end = build_node_document(
        **names,
        key=current,
        old_keys=[unlisted.public(), retired_public],
        issued_at=late.now(),
    )
    out.add(
        "key-update/key_not_valid-signed-after-its-end",
        "key_update",
        "key_not_valid",
        "Held: key-update/valid-rotation. Signed by the old current key after the change (it "
        "lists itself as current and adds the unlisted key): the held document ends that key.",
        update_check("key-update/valid-rotation", after),
        wire(signed_after_end),
    )
    backdated = resign(
        signed_after_end, current, issued_at=format_time(CHANGE_AT - timedelta(seconds=1))
    )
    out.add(
        "key-update/key_not_valid-ended-key-adds-a-key",
        "key_update",
        "key_not_valid",
        "Held: key-update/valid-rotation. The same document backdated into the old key's last "
        "valid second, when the key was valid: a key the verifier holds as ended cannot change "
        "the document (a thief with a withdrawn key cannot add one).",
        update_check("key-update/valid-rotation", after),
        wire(backdated),
    )
    in_last_second = ManualClock(CHANGE_AT - timedelta(seconds=1))
    out.add(
        "envelopes/valid-keys-update",
        "envelope",
        VALID,
        "A keys.update carrying key-update/valid-rotation, signed by the outgoing key in its "
        "last valid second (as a node still running with it sends it).",
        envelope_check(now=after),
        wire(envelope("keys.update", {"document": rotation}, "keys.update", at=in_last_second)),
    )


def keys_file(
    current: SigningKey,
    retired: SigningKey,
    unlisted: SigningKey,
    other: SigningKey,
    next_key: SigningKey,
) -> dict[str, Any]:
    def entry(
        label: str, key: SigningKey, listed: bool, until: datetime | None, note: str
    ) -> dict[str, Any]:
        return {
            "label": label,
            "node_id": key.node_id,
            "seed_hex": SEEDS[label],
            "public_hex": key.public_raw.hex(),
            "public_b64url": b64url_encode(key.public_raw),
            "fingerprint_sha256": fingerprint(key.public_raw),
            "key_id": key.key_id,
            "valid_from": format_time(key.valid_from),
            "valid_until": format_time(until) if until else None,
            "listed_in_node_document": listed,
            "note": note,
        }

    return {
        "description": "Ed25519 test keys. NEVER use them for anything but tests.",
        "keys": [
            entry("current", current, True, None, "Signs the node document and most vectors."),
            entry("retired", retired, True, KEY_FROM, "An old key kept listed after rotation."),
            entry("unlisted", unlisted, False, None, "A key of the test node nobody was told of."),
            entry("other", other, False, None, "The key of a node the verifier does not trust."),
            entry("next", next_key, False, None, "The key the node rotates to (key-update/)."),
        ],
    }


def canonical_file() -> dict[str, Any]:
    cases = [
        (
            "rfc8785-3.2.3-sorting",
            "RFC 8785 §3.2.3: members sorted by UTF-16 code units, not code points.",
            '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With '
            'Dagesh","1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control",'
            '"\\u00f6":"Latin Small Letter O With Diaeresis"}',
        ),
        (
            "rfc8785-3.2.2-example",
            "RFC 8785 §3.2.2: numbers and string escapes (the protocol sends integers only).",
            '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], '
            '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", '
            '"literals": [null, true, false]}',
        ),
        (
            "bmp-private-use-after-emoji",
            "U+E000 sorts after U+1F600 (UTF-16 0xD83D < 0xE000), though its code point is lower.",
            '{"\\ue000": 2, "\\ud83d\\ude00": 1}',
        ),
        (
            "escapes",
            "Control characters as \\uXXXX lower-case hex except \\b \\t \\n \\f \\r; '\"' and "
            "'\\\\' escaped; '/', DEL, U+2028 and non-ASCII written as themselves.",
            '{"s": "\\u0000\\u0001\\u001f\\b\\t\\n\\f\\r\\"\\\\/\\u007f\\u2028åäö\\ud83d\\udcd0"}',
        ),
        (
            "integers-and-nesting",
            "Safe integers as plain decimals; empty containers; no whitespace.",
            '{"b": [9007199254740991, -9007199254740991, 0, -1], "a": {"z": {}, "y": []}}',
        ),
    ]
    return {
        "description": "RFC 8785 canonical forms: 'canonical' is the exact UTF-8 output.",
        "cases": [
            {
                "name": name,
                "description": description,
                "input_text": text,
                "canonical": canonicalize(json.loads(text)).decode("utf-8"),
                "canonical_hex": canonicalize(json.loads(text)).hex(),
            }
            for name, description, text in cases
        ],
    }


def render(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def write(out_dir: Path) -> list[Path]:
    """Write every vector file under ``out_dir``; drop stale generated files; return paths."""
    files = build()
    written: list[Path] = []
    for sub in SUBDIRS:
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
        for stale in (out_dir / sub).glob("*.json"):
            if f"{sub}/{stale.name}" not in files:
                stale.unlink()
    for relative, value in sorted(files.items()):
        path = out_dir / relative
        path.write_bytes(render(value))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write (default: here)")
    args = parser.parse_args(argv)
    written = write(args.out)
    print(f"wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
