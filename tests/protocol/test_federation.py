"""Signed federation member lists (protocol/federation.py) and their JSON Schema."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from protocol.documents import build_node_document, verify_node_document
from protocol.errors import MalformedError, Reason, VerificationError
from protocol.federation import (
    FederationMembers,
    document_mismatches,
    member_fingerprints,
    parse_public_key,
    public_key_pem,
    public_key_text,
    sign_members,
    verify_members,
)
from protocol.keys import SigningKey, fingerprint
from tests.conftest import T0

ROOT = Path(__file__).resolve().parents[2]
FED = "halland.barnplan.se"
FKEY = SigningKey.from_seed(FED, bytes(range(100, 132)), T0)
SKOLA = SigningKey.from_seed("skola.test.se", bytes(range(32)), T0)
IFO = SigningKey.from_seed("ifo.test.se", bytes(range(32, 64)), T0)


def draft() -> dict[str, Any]:
    return {
        "federation": FED,
        "version": 1,
        "members": [
            {
                "id": "skola.test.se",
                "base_url": "https://skola.test.se",
                "agency_kind": "school",
                "keys": [fingerprint(SKOLA.public_raw)],
            },
            {
                "id": "ifo.test.se",
                "base_url": "https://ifo.test.se",
                "agency_kind": "social_services",
                "keys": [IFO.public().to_json()],
            },
        ],
    }


def signed() -> dict[str, Any]:
    return sign_members(draft(), FKEY, T0)


def test_sign_and_verify_round_trip() -> None:
    obj = signed()
    assert obj["type"] == "federation.members" and obj["v"] == 1
    assert obj["issued_at"] == "2026-11-23T09:00:00Z"
    assert obj["sig"]["key"] == FKEY.key_id and FKEY.key_id.startswith(FED + "#")
    members = verify_members(obj, FKEY.public_raw)
    assert [m.id for m in members.members] == ["skola.test.se", "ifo.test.se"]
    assert member_fingerprints(members.members[1]) == {fingerprint(IFO.public_raw)}


def test_tampered_list_fails() -> None:
    obj = signed()
    obj["members"][0]["base_url"] = "https://evil.example.se"
    with pytest.raises(VerificationError) as exc:
        verify_members(obj, FKEY.public_raw)
    assert exc.value.reason is Reason.BAD_SIGNATURE


def test_other_federation_key_fails() -> None:
    other = SigningKey.from_seed(FED, bytes(range(200, 232)), T0)
    with pytest.raises(VerificationError) as exc:
        verify_members(signed(), other.public_raw)
    assert exc.value.reason is Reason.UNKNOWN_KEY
    # a list signed by the right key but for another federation name is refused too
    renamed = SigningKey.from_seed("other.barnplan.se", bytes(range(100, 132)), T0)
    obj = sign_members({**draft(), "federation": "other.barnplan.se"}, renamed, T0)
    obj["federation"] = FED
    with pytest.raises(VerificationError):
        verify_members(obj, FKEY.public_raw)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["members"].append(copy.deepcopy(d["members"][0])),
        lambda d: d["members"][1]["keys"].__setitem__(0, SKOLA.public().to_json()),
        lambda d: d["members"][0]["keys"].__setitem__(0, "ABC"),
        lambda d: d["members"][0].__setitem__("agency_kind", "bank"),
        lambda d: d.__setitem__("version", 0),
        lambda d: d.__setitem__("members", []),
        lambda d: d.__setitem__("extra", 1),
    ],
)
def test_bad_drafts_are_refused(mutate: Any) -> None:
    d = draft()
    mutate(d)
    with pytest.raises(MalformedError):
        sign_members(d, FKEY, T0)


def test_key_must_speak_for_the_federation() -> None:
    with pytest.raises(MalformedError):
        sign_members(draft(), SigningKey.from_seed("x.test.se", bytes(32), T0), T0)


def node_doc(key: SigningKey, old: list[SigningKey] | None = None, **kw: str) -> Any:
    fields = {
        "agency_name": "Testskolan",
        "agency_kind": "school",
        "base_url": "https://skola.test.se",
        **kw,
    }
    raw = build_node_document(
        node_id=key.node_id,
        key=key,
        old_keys=[k.public(T0) for k in old or []],
        issued_at=T0,
        **fields,
    )
    doc, keys = verify_node_document(raw)
    return doc, [fingerprint(k.raw) for k in keys]


def test_document_matching() -> None:
    members = verify_members(signed(), FKEY.public_raw)
    skola = members.members[0]
    assert document_mismatches(skola, *node_doc(SKOLA)) == []
    # another key than the listed one
    stranger = SigningKey.from_seed("skola.test.se", bytes(range(1, 33)), T0)
    [problem] = document_mismatches(skola, *node_doc(stranger))
    assert "current key" in problem and fingerprint(stranger.public_raw) in problem
    # a retired key that the list does not vouch for
    rotated = SigningKey.from_seed("skola.test.se", bytes(range(2, 34)), T0)
    problems = document_mismatches(skola, *node_doc(rotated, [SKOLA]))
    assert len(problems) == 1 and "current key" in problems[0]
    # listing old and new keys makes the rotated document match
    d = draft()
    d["members"][0]["keys"] = [fingerprint(SKOLA.public_raw), fingerprint(rotated.public_raw)]
    widened = verify_members(sign_members(d, FKEY, T0), FKEY.public_raw).members[0]
    assert document_mismatches(widened, *node_doc(rotated, [SKOLA])) == []
    # other URL, other kind, other id
    assert "base_url" in document_mismatches(skola, *node_doc(SKOLA, base_url="https://x.se"))[0]
    kind = document_mismatches(skola, *node_doc(SKOLA, agency_kind="police"))
    assert "agency_kind" in kind[0]
    assert "not 'skola.test.se'" in document_mismatches(skola, *node_doc(IFO))[0]


def test_public_key_forms() -> None:
    raw = FKEY.public_raw
    assert parse_public_key(public_key_pem(raw)) == raw
    assert parse_public_key(public_key_text(raw)) == raw
    for bad in ("nope", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "AAAA"):
        with pytest.raises(MalformedError):
            parse_public_key(bad)


# --- the committed schema ----------------------------------------------------------------------


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "schema_generate", ROOT / "schemas" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMMENT = (
    "protocol.federation.FederationMembers; rendered from the model like schemas/generate.py "
    "does, checked and rewritten by tests/protocol/test_federation.py (not by generate.py)"
)


def expected_schema_text() -> str:
    gen = load_generator()
    schema = gen.model_schema(FederationMembers, "federation_members", "")
    schema["$comment"] = COMMENT
    return str(gen.render(schema))


def test_committed_schema_matches_the_model() -> None:
    """schemas/federation_members.json is the model's schema, rendered as generate.py renders."""
    path = ROOT / "schemas" / "federation_members.json"
    assert path.read_text(encoding="utf-8") == expected_schema_text(), (
        "regenerate: python -c 'from tests.protocol.test_federation import write_schema; "
        "write_schema()'"
    )


def write_schema() -> None:
    (ROOT / "schemas" / "federation_members.json").write_text(
        expected_schema_text(), encoding="utf-8", newline="\n"
    )


def test_schema_accepts_signed_lists_and_rejects_bad_ones() -> None:
    schema = json.loads((ROOT / "schemas" / "federation_members.json").read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    obj = signed()
    assert list(validator.iter_errors(obj)) == []
    for mutate in (
        lambda o: o.pop("sig"),
        lambda o: o["members"][0].pop("keys"),
        lambda o: o["members"][0]["keys"].append("xyz"),
        lambda o: o.__setitem__("type", "node"),
    ):
        bad = copy.deepcopy(obj)
        mutate(bad)
        assert list(validator.iter_errors(bad)), bad
