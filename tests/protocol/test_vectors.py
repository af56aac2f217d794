"""The published test vectors (protocol/vectors, SPEC.md §12) hold against the code.

Every vector is run through the same function a node uses (``verify_envelope``,
``verify_node_document``, ``verify_fragment``, ``verify_consent``, and for a changed node document
``check_document_update``): valid ones verify (a changed document replaces the held one), tampered
ones fail with exactly the reason code the vector names. Regenerating the vectors must give the
committed files byte for byte, so they cannot drift from the code.
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
from protocol.documents import verify_consent, verify_fragment, verify_node_document
from protocol.encoding import b64url_decode, b64url_encode
from protocol.envelope import MemorySeenIds, SeenIds, StaticKeyRing, verify_envelope
from protocol.errors import ProtocolError, Reason
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
    doc, keys = verify_node_document(json.loads(load(name)["input_text"]))
    return doc.id, keys


def check(vector: dict[str, Any], seen: SeenIds | None = None) -> None:
    """Run one vector through the verifier its kind names; raise what the verifier raises."""
    verify = vector["verify"]
    text: str = vector["input_text"]
    kind = vector["kind"]
    if kind == "node_document":
        verify_node_document(json.loads(text), verify["expected_id"])
        return
    if kind == "key_update":
        held, held_keys = verify_node_document(json.loads(load(verify["held"])["input_text"]))
        update = check_document_update(
            json.loads(text),
            held,
            held_keys,
            now=parse_time(verify["now"]),
            skew_s=verify["skew_s"],
        )
        assert update.status is UpdateStatus.APPLIED, update.status
        return
    node_id, keys = trusted_keys(verify["trust"])
    if kind == "fragment":
        verify_fragment(json.loads(text), keys)
    elif kind == "consent":
        verify_consent(json.loads(text), keys)
    elif kind == "envelope":
        seen = seen if seen is not None else MemorySeenIds()
        for earlier in verify["seen_first"]:
            check(load(earlier), seen)
        verify_envelope(
            text.encode("utf-8"),
            keyring=StaticKeyRing({node_id: keys}),
            audience=verify["audience"],
            clock=ManualClock(parse_time(verify["now"])),
            seen=seen,
            skew_s=verify["skew_s"],
            max_lifetime_s=verify["max_lifetime_s"],
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
    obj = json.loads(vector["input_text"])
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
    assert outcomes >= REQUIRED_ENVELOPE_OUTCOMES
    for kind in ("node_document", "fragment", "consent"):
        kinds = {e["expect"] for e in ENTRIES if e["kind"] == kind}
        assert {"valid", "bad_signature"} <= kinds


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
