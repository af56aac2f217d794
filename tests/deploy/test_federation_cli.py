"""``barnplan federation``: create the key, sign a member list, verify it, apply it to a node.

Real node processes publish their documents; the CLI runs as a user would run it.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from node.cli.main import main
from protocol.documents import verify_node_document
from protocol.keys import fingerprint
from tests.support.nodes import NodeProcess, free_port, init_node

pytestmark = pytest.mark.slow  # barnplan serve processes and CLI subprocesses

FED = "halland.barnplan.se"
SKOLA = ("skola.test.se", "school", "Testskolan")
IFO = ("ifo.test.se", "social_services", "Testkommun IFO")
BUP = ("bup.test.se", "child_psychiatry", "Testregionen BUP")


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def barnplan(*args: str, check: bool = True, input: str | None = None) -> Ran:
    """Run the CLI in this process (faster than a subprocess per call; same code path)."""
    result = CliRunner().invoke(main, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    ran = Ran(result.exit_code, result.stdout, result.stderr)
    if check and ran.returncode != 0:
        raise AssertionError(f"barnplan {' '.join(args)} failed: {ran.stderr}")
    return ran


def fingerprints(node: NodeProcess) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(node.url + "/.well-known/barnplan/node", timeout=5) as resp:
        _, keys = verify_node_document(json.loads(resp.read()), node.node_id)
    return [fingerprint(k.raw) for k in keys]


def member(node: NodeProcess, kind: str, keys: list[Any]) -> dict[str, Any]:
    return {"id": node.node_id, "base_url": node.url, "agency_kind": kind, "keys": keys}


def peer_ids(node: NodeProcess) -> list[str]:
    out = barnplan("peers", "list", "--json", "--dir", str(node.directory)).stdout
    return [p["node_id"] for p in json.loads(out)]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NodeProcess]]:
    """Two member nodes serving their documents, shared by the tests of this module."""
    base = tmp_path_factory.mktemp("members")
    nodes = [init_node(base, *spec) for spec in (IFO, BUP)]
    try:
        for n in nodes:
            n.start()
        yield nodes
    finally:
        for n in nodes:
            n.stop()


@pytest.fixture
def world(tmp_path: Path, running: list[NodeProcess]) -> tuple[Path, list[NodeProcess]]:
    """A fresh applying node (it need not run) plus the running members."""
    node_id, kind, name = SKOLA
    port = free_port()
    barnplan(
        "init",
        str(tmp_path / node_id),
        "--id",
        node_id,
        "--agency-name",
        name,
        "--kind",
        kind,
        "--port",
        str(port),
    )
    return tmp_path, [NodeProcess(tmp_path / node_id, node_id, port), *running]


def sign(tmp: Path, name: str, draft: dict[str, Any]) -> Path:
    src, out = tmp / f"{name}.json", tmp / f"{name}.signed.json"
    src.write_text(json.dumps(draft))
    barnplan(
        "federation", "sign-members", str(src), "--key", str(tmp / "fed.key"), "--out", str(out)
    )
    return out


def test_create_sign_verify_apply(world: tuple[Path, list[NodeProcess]]) -> None:
    tmp, (skola, ifo, bup) = world
    created = barnplan("federation", "create-key", "--out", str(tmp / "fed.key")).stdout
    assert stat.S_IMODE((tmp / "fed.key").stat().st_mode) == 0o600
    pub = str(tmp / "fed.key.pub")
    public_line = next(x for x in created.splitlines() if x.startswith("public key:"))
    public_text = public_line.split()[-1]
    assert (
        barnplan("federation", "create-key", "--out", str(tmp / "fed.key"), check=False).returncode
        == 1
    )

    skola_fp = barnplan("keys", "list", "--json", "--dir", str(skola.directory)).stdout
    skola_keys = [k["fingerprint"] for k in json.loads(skola_fp)]
    wrong = "0" * 64
    draft: dict[str, Any] = {
        "federation": FED,
        "version": 1,
        "members": [
            member(skola, "school", skola_keys),
            member(ifo, "social_services", fingerprints(ifo)),
            member(bup, "child_psychiatry", [wrong]),
        ],
    }
    v1 = sign(tmp, "v1", draft)

    # verify: prints the members; the .pub file and the base64url form both work
    out = barnplan("federation", "verify", str(v1), "--federation-key", pub).stdout
    assert "version 1" in out and "signature OK" in out
    for n in (skola, ifo, bup):
        assert n.node_id in out
    assert (
        barnplan("federation", "verify", str(v1), "--federation-key", public_text).returncode == 0
    )

    # a changed list, or another federation key: exit 1 with one line
    tampered = json.loads(v1.read_text())
    tampered["members"][2]["keys"] = fingerprints(bup)
    (tmp / "tampered.json").write_text(json.dumps(tampered))
    bad = barnplan(
        "federation", "verify", str(tmp / "tampered.json"), "--federation-key", pub, check=False
    )
    assert bad.returncode == 1 and "bad_signature" in bad.stderr
    barnplan("federation", "create-key", "--out", str(tmp / "other.key"))
    other = barnplan(
        "federation", "verify", str(v1), "--federation-key", str(tmp / "other.key.pub"), check=False
    )
    assert other.returncode == 1 and "unknown_key" in other.stderr
    refused = barnplan(
        "federation",
        "apply",
        str(tmp / "tampered.json"),
        "--federation-key",
        pub,
        "--dir",
        str(skola.directory),
        "--yes",
        check=False,
    )
    assert refused.returncode == 1 and peer_ids(skola) == []

    # without --yes the operator is asked; "no" trusts nobody
    declined = barnplan(
        "federation",
        "apply",
        str(v1),
        "--federation-key",
        pub,
        "--dir",
        str(skola.directory),
        input="n\n",
        check=False,
    )
    assert declined.returncode == 1 and peer_ids(skola) == []

    # apply: IFO matches and is trusted; BUP's document does not match and is not
    applied = barnplan(
        "federation",
        "apply",
        str(v1),
        "--federation-key",
        pub,
        "--dir",
        str(skola.directory),
        "--yes",
        check=False,
    )
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert f"trusted {ifo.node_id}" in applied.stdout
    bup_lines = [x for x in applied.stderr.splitlines() if bup.node_id in x]
    assert len(bup_lines) == 1 and "not trusted" in bup_lines[0]
    assert "not in the member list" in bup_lines[0] and "Traceback" not in applied.stderr
    assert peer_ids(skola) == [ifo.node_id]

    # version 2 lists BUP's real key and a member that cannot be reached
    unreachable = NodeProcess(tmp / "none", "polis.test.se", free_port())
    draft["version"] = 2
    draft["members"][2] = member(bup, "child_psychiatry", fingerprints(bup))
    draft["members"].append(member(unreachable, "police", [wrong]))
    v2 = sign(tmp, "v2", draft)
    applied = barnplan(
        "federation",
        "apply",
        str(v2),
        "--federation-key",
        pub,
        "--dir",
        str(skola.directory),
        "--yes",
        check=False,
    )
    assert applied.returncode == 1
    assert f"trusted {bup.node_id}" in applied.stdout
    polis = [x for x in applied.stderr.splitlines() if "polis.test.se" in x]
    assert len(polis) == 1 and "cannot reach" in polis[0]
    assert peer_ids(skola) == [bup.node_id, ifo.node_id]

    # version 3 drops the unreachable member: everything matches, exit 0
    draft["version"] = 3
    draft["members"].pop()
    v3 = sign(tmp, "v3", draft)
    ok = barnplan(
        "federation",
        "apply",
        str(v3),
        "--federation-key",
        pub,
        "--dir",
        str(skola.directory),
        "--yes",
    )
    assert "2 trusted, 0 failed" in ok.stdout

    # an older list is refused (it could re-admit a removed member)
    old = barnplan(
        "federation",
        "apply",
        str(v1),
        "--federation-key",
        pub,
        "--dir",
        str(skola.directory),
        "--yes",
        check=False,
    )
    assert old.returncode == 1 and "older than version 3" in old.stderr


def test_apply_warns_when_this_node_is_not_vouched_for(
    world: tuple[Path, list[NodeProcess]],
) -> None:
    tmp, (skola, ifo, _bup) = world
    barnplan("federation", "create-key", "--out", str(tmp / "fed.key"))
    draft = {
        "federation": FED,
        "version": 1,
        "members": [member(ifo, "social_services", fingerprints(ifo))],
    }
    signed = sign(tmp, "only-ifo", draft)
    result = barnplan(
        "federation",
        "apply",
        str(signed),
        "--federation-key",
        str(tmp / "fed.key.pub"),
        "--dir",
        str(skola.directory),
        "--yes",
    )
    assert "warning: this node (skola.test.se) is not in the member list" in result.stderr
    assert peer_ids(skola) == [ifo.node_id]


def test_sign_members_reports_a_bad_draft(tmp_path: Path) -> None:
    barnplan("federation", "create-key", "--out", str(tmp_path / "fed.key"))
    draft = {"federation": FED, "version": 1, "members": [{"id": "x.test.se"}]}
    (tmp_path / "m.json").write_text(json.dumps(draft))
    result = barnplan(
        "federation",
        "sign-members",
        str(tmp_path / "m.json"),
        "--key",
        str(tmp_path / "fed.key"),
        "--out",
        str(tmp_path / "s.json"),
        check=False,
    )
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    assert "malformed" in result.stderr and not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("spelling", ["duplicated member", "v is 1.0"])
def test_verify_refuses_a_signed_list_spelled_as_no_envelope_may_be(
    tmp_path: Path, spelling: str
) -> None:
    """A member list is read with the protocol's one strict parser: a lenient reader keeps the
    last of a duplicated member (here the signed list, while a first-wins reader sees another
    member) and reads 1.0 as 1, so the signature verified over either."""
    barnplan("federation", "create-key", "--out", str(tmp_path / "fed.key"))
    draft = {
        "federation": FED,
        "version": 1,
        "members": [member_entry("ifo.test.se", "social_services")],
    }
    (tmp_path / "draft.json").write_text(json.dumps(draft))
    signed = tmp_path / "signed.json"
    barnplan(
        "federation",
        "sign-members",
        str(tmp_path / "draft.json"),
        "--key",
        str(tmp_path / "fed.key"),
        "--out",
        str(signed),
    )
    text = json.dumps(json.loads(signed.read_text()))
    if spelling == "duplicated member":
        other = json.dumps([member_entry("evil.test.se", "police")])
        text = '{"members": ' + other + ", " + text[1:]
    else:
        text = text.replace('"v": 1,', '"v": 1.0,')
    signed.write_text(text)
    result = barnplan(
        "federation",
        "verify",
        str(signed),
        "--federation-key",
        str(tmp_path / "fed.key.pub"),
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "malformed" in result.stderr


def member_entry(node_id: str, kind: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "base_url": f"https://{node_id}",
        "agency_kind": kind,
        "keys": ["0" * 64],
    }
