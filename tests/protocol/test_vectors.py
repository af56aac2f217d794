"""The published test vectors (protocol/vectors, SPEC.md §12) hold against the code.

Every vector's ``input_text`` is run through the same function, with the same parameters, a
node uses (``verify_envelope`` as the federation endpoint and the requester call it,
``verify_node_document``, ``verify_fragment``, ``verify_consent`` on received text, and
``check_document_update`` for a changed node document, which replaces the held one if valid):
valid ones verify, tampered ones fail with exactly the reason code the vector names, and a
refused request is answered to the ``to`` and ``re`` the vector names (``read_claims``, SPEC.md §8).
``tests/integration/test_vectors_node.py`` sends the request vectors to a running node.
Regenerating the vectors must give the committed files byte for byte, so they cannot drift from
the code.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.canonical import canonicalize
from protocol.clock import ManualClock, parse_time
from protocol.documents import (
    verify_consent,
    verify_fragment,
    verify_node_document,
    verify_restore,
)
from protocol.encoding import b64url_decode, b64url_encode
from protocol.envelope import MemorySeenIds, SeenIds, StaticKeyRing, read_claims, verify_envelope
from protocol.errors import ProtocolError, Reason
from protocol.jsontext import parse_json_object
from protocol.key_updates import UpdateStatus, check_document_update
from protocol.keys import PublicKey, SigningKey, fingerprint, make_key_id
from protocol.signing import signing_input

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "protocol" / "vectors"
INDEX: dict[str, Any] = json.loads((VECTORS / "index.json").read_text("utf-8"))
ENTRIES: list[dict[str, str]] = INDEX["vectors"]
KEYS: list[dict[str, Any]] = json.loads((VECTORS / "keys.json").read_text("utf-8"))["keys"]


def load(name: str) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text("utf-8"))
    return vector


def trusted_keys(name: str) -> tuple[str, list[PublicKey]]:
    """The node id and keys of a trusted node document vector (which must itself verify)."""
    doc, keys = verify_node_document(load(name)["input_text"].encode("utf-8"))
    return doc.id, keys


def check(vector: dict[str, Any], seen: SeenIds | None = None) -> None:
    """Run one vector's exact text through the verifier its kind names; raise what it raises."""
    verify = vector["verify"]
    data = vector["input_text"].encode("utf-8")
    kind = vector["kind"]
    if kind == "node_document":
        verify_node_document(data, verify["expected_id"])
        return
    if kind == "key_update":
        held, held_keys = verify_node_document(load(verify["held"])["input_text"].encode("utf-8"))
        update = check_document_update(
            parse_json_object(data),
            held,
            held_keys,
            now=parse_time(verify["now"]),
            skew_s=verify["skew_s"],
        )
        assert update.status is UpdateStatus.APPLIED, update.status
        return
    node_id, keys = trusted_keys(verify["trust"])
    if kind == "fragment":
        verify_fragment(data, keys)
    elif kind == "consent":
        verify_consent(data, keys)
    elif kind == "restore":
        verify_restore(data, keys)
    elif kind == "envelope":
        seen = seen if seen is not None else MemorySeenIds()
        for earlier in verify["seen_first"]:
            check(load(earlier), seen)
        verify_envelope(
            data,
            keyring=StaticKeyRing({node_id: keys}),
            audience=verify["audience"],
            clock=ManualClock(parse_time(verify["now"])),
            seen=seen,
            skew_s=verify["skew_s"],
            max_lifetime_s=verify["max_lifetime_s"],
            expect_type=verify.get("reply_type"),
            request=verify.get("request", False),
            max_depth=verify["max_depth"],
            max_bytes=verify["max_body_bytes"],
        )
    else:
        raise AssertionError(f"unknown vector kind {kind!r}")


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_vector_gives_its_expected_outcome(entry: dict[str, str]) -> None:
    vector = load(entry["name"])
    assert vector["name"] == entry["name"] and vector["expect"] == entry["expect"]
    if vector["expect"] == "valid":
        check(vector)
        return
    with pytest.raises(ProtocolError) as info:
        check(vector)
    assert info.value.reason == Reason(vector["expect"]), str(info.value)


VALID = [e for e in ENTRIES if e["expect"] == "valid"]
REFUSED_REQUESTS = [
    e
    for e in ENTRIES
    if e["kind"] == "envelope"
    and e["expect"] != "valid"
    and load(e["name"])["verify"].get("request")
]


@pytest.mark.parametrize("entry", REFUSED_REQUESTS, ids=[e["name"] for e in REFUSED_REQUESTS])
def test_refused_request_vector_names_the_to_and_re_of_its_error_reply(
    entry: dict[str, str],
) -> None:
    """SPEC §8: the error goes to the request's own top-level ``from`` if it is a node id (else
    anonymous.invalid) and names its ``id`` in ``re`` if that is a lower-case UUID; nothing is
    read from a request that is too large or not a JSON object."""
    vector = load(entry["name"])
    verify = vector["verify"]
    claims = read_claims(
        vector["input_text"].encode("utf-8"), verify["max_depth"], verify["max_body_bytes"]
    )
    expected = vector["error_reply"]
    assert (claims.to, claims.id) == (expected["to"], expected.get("re"))


def test_every_envelope_vector_says_whether_it_is_a_request_or_a_reply() -> None:
    for entry in ENTRIES:
        if entry["kind"] == "envelope":
            verify = load(entry["name"])["verify"]
            assert verify.get("request", False) != ("reply_type" in verify), entry["name"]


def key_by_id() -> dict[str, SigningKey]:
    return {
        k["key_id"]: SigningKey.from_seed(
            k["node_id"], bytes.fromhex(k["seed_hex"]), parse_time(k["valid_from"])
        )
        for k in KEYS
    }


@pytest.mark.parametrize("entry", VALID, ids=[e["name"] for e in VALID])
def test_valid_vector_shows_its_signing_input_and_reproduces_its_signature(
    entry: dict[str, str],
) -> None:
    vector = load(entry["name"])
    obj = parse_json_object(vector["input_text"].encode("utf-8"))
    assert obj == vector["input"]
    expected = vector["signing_input"].encode("utf-8")
    assert signing_input(obj) == expected
    assert canonicalize({k: v for k, v in obj.items() if k != "sig"}) == expected
    assert hashlib.sha256(expected).hexdigest() == vector["signing_input_sha256"]
    # Ed25519 is deterministic: the key from keys.json signs the shown bytes to the shown value.
    key = key_by_id()[obj["sig"]["key"]]
    assert b64url_encode(key.sign(expected)) == obj["sig"]["value"]
    assert key.public().verify(b64url_decode(obj["sig"]["value"]), expected)


@pytest.mark.parametrize("key", KEYS, ids=[k["label"] for k in KEYS])
def test_key_file_entries_are_consistent(key: dict[str, Any]) -> None:
    signing = SigningKey.from_seed(
        key["node_id"], bytes.fromhex(key["seed_hex"]), parse_time(key["valid_from"])
    )
    assert signing.public_raw.hex() == key["public_hex"]
    assert b64url_encode(signing.public_raw) == key["public_b64url"]
    assert fingerprint(signing.public_raw) == key["fingerprint_sha256"]
    assert signing.key_id == key["key_id"] == make_key_id(key["node_id"], signing.public_raw)
    assert key["key_id"] == f"{key['node_id']}#{key['fingerprint_sha256'][:16]}"


def test_node_document_lists_exactly_the_listed_keys_with_their_validity() -> None:
    _, keys = trusted_keys("node-document/valid")
    listed = {k["key_id"]: k for k in KEYS if k["listed_in_node_document"]}
    assert {k.key_id for k in keys} == set(listed)
    for public in keys:
        entry = listed[public.key_id]
        assert public.valid_from == parse_time(entry["valid_from"])
        until = entry["valid_until"]
        assert public.valid_until == (parse_time(until) if until else None)


def test_canonical_cases_match_the_code() -> None:
    cases = json.loads((VECTORS / "canonical.json").read_text("utf-8"))["cases"]
    assert cases
    for case in cases:
        canonical = canonicalize(json.loads(case["input_text"]))
        assert canonical == case["canonical"].encode("utf-8")
        assert canonical.hex() == case["canonical_hex"]


REQUIRED_ENVELOPE_OUTCOMES = {
    "valid",
    "malformed",
    "too_deep",
    "unsupported_version",
    "unknown_type",
    "wrong_audience",
    "unknown_sender",
    "unknown_key",
    "key_not_valid",
    "bad_signature",
    "not_yet_valid",
    "expired",
    "outside_skew",
    "replayed",
}


def test_vectors_cover_every_envelope_check() -> None:
    outcomes = {e["expect"] for e in ENTRIES if e["kind"] == "envelope"}
    assert outcomes >= REQUIRED_ENVELOPE_OUTCOMES | {"too_large"}
    for kind in ("node_document", "fragment", "consent"):
        kinds = {e["expect"] for e in ENTRIES if e["kind"] == kind}
        assert {"valid", "bad_signature", "unknown_key", "key_not_valid", "malformed"} <= kinds


# SPEC §12 names these checks; each has a vector (by name), so none can silently go missing
NAMED_VECTORS = [
    "envelopes/too_large",  # step 0
    "envelopes/valid-at-size-limit",
    "envelopes/malformed-reply-of-another-type",  # step 6
    "envelopes/unknown_type-reply-sent-as-request",  # step 5, before the signature
    "envelopes/malformed-re-on-request",  # step 6 for a request
    "envelopes/malformed-key-owner-empty",  # step 11
    "envelopes/malformed-lone-surrogate",  # §2.2
    "envelopes/malformed-integer-without-canonical-form",  # §2.2
    "envelopes/malformed-number-with-fraction",  # §1
    "envelopes/malformed-number-with-exponent",
    "envelopes/valid-fractional-seconds",  # §1
    "envelopes/malformed-seven-fraction-digits",
    "envelopes/malformed-sig-unused-bits-set",  # §3.1
    "envelopes/malformed-re-null",  # §5.2
    "envelopes/malformed-id-with-trailing-newline",  # §1, §8
    "envelopes/malformed-from-and-id-only-nested",  # §8
    "envelopes/malformed-byte-order-mark",  # §1, §8
    "node-document/unknown_key-signed-by-another-node",  # §4.4 step 4
    "node-document/unknown_key-unlisted-key",  # §4.4 step 5
    "node-document/bad_signature-small-order-key",  # §3.1
    "node-document/malformed-public-key-unused-bits-set",
    "node-document/malformed-null-member",
    "node-document/malformed-no-v",
    "node-document/malformed-duplicate-member",
    "node-document/malformed-v-is-1.0",
    "fragments/malformed-null-member",
    "consent/key_not_valid-retired-key",
    "consent/malformed-no-type",
]


def test_the_named_checks_have_their_vectors() -> None:
    names = {e["name"] for e in ENTRIES}
    assert [n for n in NAMED_VECTORS if n not in names] == []


def test_index_lists_every_vector_file_once() -> None:
    listed = sorted(e["file"] for e in ENTRIES)
    assert len(listed) == len(set(listed))
    on_disk = sorted(
        str(p.relative_to(VECTORS))
        for p in VECTORS.rglob("*.json")
        if p.parent != VECTORS  # top-level files are index.json, keys.json, canonical.json
    )
    assert listed == on_disk


def generated_files(directory: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(directory.rglob("*.json")):
        yield str(path.relative_to(directory)), path.read_bytes()


def test_regenerating_gives_byte_identical_files(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "protocol/vectors/generate.py", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    fresh = dict(generated_files(tmp_path))
    committed = dict(generated_files(VECTORS))
    assert sorted(fresh) == sorted(committed), "vector files differ: run the generator"
    drifted = [name for name in fresh if fresh[name] != committed[name]]
    assert not drifted, f"regenerate with python protocol/vectors/generate.py: {drifted}"
