"""``barnplan keys rotate`` and ``keys withdraw``: a new current key, the old one ended but listed.

The process tests drive real ``barnplan`` processes: rotate a stopped node, restart it, check its
published document, check old-key signatures before and after the rotation time, and that the
peer took the new key from the announcement the command delivered (no ``peers add``); withdraw
the key of a running node and check the peer refuses it at once and the node signs with its new
key. The in-process tests cover both stores, an encrypted key file and the all-or-nothing
behaviour.
"""

from __future__ import annotations

import json
import stat
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from node.config import CONFIG_NAME, load_config
from node.identity import load_identity
from node.runtime import open_node
from node.services import keys as key_service
from node.services.keys import KeyRotationError, rotate_key, set_keys_file
from node.services.setup import init_node as setup_node
from node.store import peers as peer_store
from node.store.engine import create_engine
from protocol.clock import ManualClock, SystemClock, format_time
from protocol.documents import verify_node_document
from protocol.envelope import StaticKeyRing, sign_envelope, verify_envelope
from protocol.errors import KeyFileError, Reason, VerificationError
from protocol.keys import PublicKey, SigningKey, fingerprint, load_private_key
from tests.support.nodes import NodeProcess, barnplan, init_node

pytestmark = pytest.mark.slow  # barnplan serve processes and CLI subprocesses

A = ("skola.test.se", "school", "Testskolan")
B = ("ifo.test.se", "social_services", "Testkommun IFO")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def post_json(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def hello(sender: str, to: str, key: SigningKey, clock: Any) -> dict[str, Any]:
    return sign_envelope(
        type="hello",
        body={"started_at": format_time(clock.now())},
        sender=sender,
        to=to,
        key=key,
        clock=clock,
    )


def document_keys(node: NodeProcess) -> list[PublicKey]:
    doc = get_json(node.url + "/.well-known/barnplan/node")
    _, keys = verify_node_document(doc, node.node_id)
    return keys


def test_rotate_a_real_node_and_peers_follow(tmp_path: Path) -> None:
    a = init_node(tmp_path, A[0], A[1], A[2])
    b = init_node(tmp_path, B[0], B[1], B[2])
    config_before = (a.directory / CONFIG_NAME).read_text()
    a.start()
    b.start()
    try:
        barnplan("peers", "add", a.url, "--yes", "--dir", str(b.directory))
        barnplan("peers", "add", b.url, "--yes", "--dir", str(a.directory))
        [old_public] = document_keys(a)
        old_key = load_private_key(a.directory / "node.key", a.node_id, old_public.valid_from)
        assert old_key.key_id == old_public.key_id

        a.stop()
        out = barnplan("keys", "rotate", "--dir", str(a.directory)).stdout
        a.start()

        keys = document_keys(a)
        assert len(keys) == 2
        new_public, retired = keys
        assert retired.key_id == old_key.key_id and retired.raw == old_key.public_raw
        assert new_public.valid_until is None
        rotated_at = retired.valid_until
        assert rotated_at is not None and new_public.valid_from == rotated_at
        assert fingerprint(old_key.public_raw) in out
        assert fingerprint(new_public.raw) in out
        assert "announced to 1 peers (keys.update): 1 acknowledged now" in out

        # the config changed in exactly one line: keys.file, pointing at a new 0600 key file
        config_after = (a.directory / CONFIG_NAME).read_text()
        changed = [
            (x, y)
            for x, y in zip(config_before.splitlines(), config_after.splitlines(), strict=True)
            if x != y
        ]
        assert len(changed) == 1 and changed[0][0] == 'file = "node.key"'
        config = load_config(a.directory)
        assert config.keys.file.startswith("node-") and config.key_path.is_file()
        assert stat.S_IMODE(config.key_path.stat().st_mode) == 0o600
        new_key = load_private_key(config.key_path, a.node_id, rotated_at)
        assert new_key.key_id == new_public.key_id
        listed = barnplan("keys", "list", "--json", "--dir", str(a.directory)).stdout
        assert [k["current"] for k in json.loads(listed)] == [True, False]

        # signed with the old key before the rotation: still verifies against the new document
        ring = StaticKeyRing({a.node_id: keys})
        # (one second before the rotation, but never before the old key's own valid_from: the
        # whole set-up can take less than a second on a fast machine)
        before = max(old_public.valid_from, rotated_at - timedelta(seconds=1))
        signed_before = hello(a.node_id, b.node_id, old_key, ManualClock(before))
        verified = verify_envelope(
            signed_before,
            keyring=ring,
            audience=b.node_id,
            clock=ManualClock(rotated_at + timedelta(seconds=5)),
            seen=None,
        )
        assert verified.key_id == old_key.key_id
        # signed with the old key after the rotation: refused
        signed_after = hello(
            a.node_id, b.node_id, old_key, ManualClock(rotated_at + timedelta(seconds=1))
        )
        with pytest.raises(VerificationError) as refused:
            verify_envelope(
                signed_after,
                keyring=ring,
                audience=b.node_id,
                clock=ManualClock(rotated_at + timedelta(seconds=5)),
                seen=None,
            )
        assert refused.value.reason is Reason.KEY_NOT_VALID

        # over the wire: B took the announcement the command delivered, without re-adding A:
        # it accepts the new key and refuses the old one for anything signed after the rotation
        [peer_a] = json.loads(barnplan("peers", "list", "--json", "--dir", str(b.directory)).stdout)
        assert peer_a["fingerprint"] == fingerprint(new_public.raw)
        endpoint = b.url + "/federation/v1/messages"
        message = hello(a.node_id, b.node_id, new_key, SystemClock())
        status, reply = post_json(endpoint, message)
        assert status == 200, reply
        status, refusal = post_json(endpoint, hello(a.node_id, b.node_id, old_key, SystemClock()))
        assert status == 401 and refusal["body"]["reason"] == "key_not_valid", refusal
        b_keys = document_keys(b)
        ack = verify_envelope(
            reply,
            keyring=StaticKeyRing({b.node_id: b_keys}),
            audience=a.node_id,
            clock=SystemClock(),
            seen=None,
        )
        assert ack.type == "hello.ack" and ack.re == message["id"]
        outbox = json.loads(barnplan("outbox", "--all", "--json", "--dir", str(a.directory)).stdout)
        assert [(o["peer"], o["type"]) for o in outbox if o["delivered_at"]] == [
            (b.node_id, "keys.update")
        ]
    finally:
        a.stop()
        b.stop()


def test_withdraw_the_key_of_a_running_node(tmp_path: Path) -> None:
    a = init_node(tmp_path, A[0], A[1], A[2])
    b = init_node(tmp_path, B[0], B[1], B[2])
    a.start()
    b.start()
    try:
        barnplan("peers", "add", a.url, "--yes", "--dir", str(b.directory))
        barnplan("peers", "add", b.url, "--yes", "--dir", str(a.directory))
        [old_public] = document_keys(a)
        leaked = load_private_key(a.directory / "node.key", a.node_id, old_public.valid_from)
        b_key = load_private_key(
            b.directory / "node.key", b.node_id, document_keys(b)[0].valid_from
        )
        time.sleep(1.1)  # a key change needs the current key valid for a whole second first

        out = barnplan("keys", "withdraw", leaked.key_id, "--dir", str(a.directory)).stdout
        assert f"withdrew {leaked.key_id}" in out
        assert fingerprint(leaked.public_raw) in out
        assert "announced to 1 peers (keys.update): 1 acknowledged now" in out

        # the peer refuses the withdrawn key at once
        endpoint = b.url + "/federation/v1/messages"
        status, refusal = post_json(endpoint, hello(a.node_id, b.node_id, leaked, SystemClock()))
        assert status == 401 and refusal["body"]["reason"] == "key_not_valid", refusal
        # the running node publishes the new document (vouched for by the withdrawn key's last
        # valid second) and signs with its new key, without a restart
        doc = get_json(a.url + "/.well-known/barnplan/node")
        new_public, withdrawn = verify_node_document(doc, a.node_id)[1]
        assert doc["sig"]["key"] == leaked.key_id and withdrawn.key_id == leaked.key_id
        assert withdrawn.valid_until is not None and f"SHA-256 {fingerprint(new_public.raw)}" in out
        status, reply = post_json(
            a.url + "/federation/v1/messages", hello(b.node_id, a.node_id, b_key, SystemClock())
        )
        assert status == 200 and reply["sig"]["key"] == new_public.key_id, reply

        # only the current key can be withdrawn: one line, nothing changed
        for key_id in (leaked.key_id, f"{a.node_id}#{'0' * 16}"):
            result = barnplan("keys", "withdraw", key_id, "--dir", str(a.directory), check=False)
            assert result.returncode == 1 and result.stderr.startswith("error: "), result
            assert "Traceback" not in result.stderr
        assert len(verify_node_document(get_json(a.url + "/.well-known/barnplan/node"))[1]) == 2
    finally:
        a.stop()
        b.stop()


async def make_node(tmp_path: Path, store: tuple[str, str], clock: ManualClock) -> Path:
    directory = tmp_path / "skola"
    await setup_node(
        directory,
        node_id=A[0],
        agency_name=A[2],
        agency_kind=A[1],
        base_url="http://127.0.0.1:9",
        host="127.0.0.1",
        port=9,
        store_url=store[0],
        store_schema=store[1],
        clock=clock,
    )
    return directory


async def test_rotate_in_process_on_both_stores(
    tmp_path: Path, store_target: tuple[str, str], clock: ManualClock
) -> None:
    directory = await make_node(tmp_path, store_target, clock)
    first_from = clock.now()
    clock.advance(3600)
    rotation = await rotate_key(load_config(directory), clock)
    assert rotation.at == clock.now()
    clock.advance(3600)
    second = await rotate_key(load_config(directory), clock)
    assert second.old_key_id == rotation.new_key_id

    node = await open_node(load_config(directory), clock)
    try:
        doc = node.identity.node_document(clock.now())
        _, keys = verify_node_document(doc, A[0])
        assert keys[0].key_id == second.new_key_id
        windows = {k.key_id: (k.valid_from, k.valid_until) for k in keys}
        assert windows[second.new_key_id] == (second.at, None)
        assert windows[rotation.new_key_id] == (rotation.at, second.at)
        assert windows[rotation.old_key_id] == (first_from, rotation.at)
    finally:
        await node.close()


async def test_rotate_keeps_the_passphrase(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = await make_node(tmp_path, (f"sqlite:///{tmp_path / 'n.db'}", ""), clock)
    config = load_config(directory)
    plain = load_private_key(config.key_path, A[0], clock.now())
    config.key_path.unlink()
    monkeypatch.setenv("TEST_KEY_PASS", "hemligt lösenord")
    config.key_path.write_bytes(plain.to_pem(b"hemligt l\xc3\xb6senord"))
    text = (
        (directory / CONFIG_NAME)
        .read_text()
        .replace('passphrase_env = ""', 'passphrase_env = "TEST_KEY_PASS"')
    )
    (directory / CONFIG_NAME).write_text(text)

    clock.advance(60)
    rotation = await rotate_key(load_config(directory), clock)
    pem = rotation.new_file.read_bytes()
    assert b"ENCRYPTED" in pem
    with pytest.raises(KeyFileError):
        SigningKey.from_pem(pem, A[0], clock.now())
    assert SigningKey.from_pem(pem, A[0], clock.now(), "hemligt lösenord".encode()).key_id == (
        rotation.new_key_id
    )


async def test_a_failed_rotation_changes_nothing(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = await make_node(tmp_path, (f"sqlite:///{tmp_path / 'n.db'}", ""), clock)
    before = (directory / CONFIG_NAME).read_bytes()
    files_before = sorted(p.name for p in directory.iterdir())

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyRotationError("store unavailable")

    monkeypatch.setattr(key_service, "_swap_rows", broken)
    clock.advance(60)
    with pytest.raises(KeyRotationError):
        await rotate_key(load_config(directory), clock)
    assert (directory / CONFIG_NAME).read_bytes() == before
    assert sorted(p.name for p in directory.iterdir()) == files_before
    config = load_config(directory)
    engine = create_engine(config.database_url)
    try:
        rows = await peer_store.own_keys(engine)
    finally:
        await engine.dispose()
    assert len(rows) == 1 and rows[0].valid_until is None
    load_identity(config, rows)  # the node still starts with its old key


def test_cli_reports_a_refused_rotation_in_one_line(tmp_path: Path) -> None:
    a = init_node(tmp_path, A[0], A[1], A[2])
    (a.directory / "node.key").unlink()
    result = barnplan("keys", "rotate", "--dir", str(a.directory), check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[node]\nid = "x"\n\n[keys]\n# the key\nfile = "node.key"\npassphrase_env = ""\n',
            '[node]\nid = "x"\n\n[keys]\n# the key\nfile = "k2.key"\npassphrase_env = ""\n',
        ),
        ('[keys]\n  file   = "a.key" # old\n', '[keys]\n  file = "k2.key"\n'),
        ('[keys]\npassphrase_env = "P"\n', '[keys]\nfile = "k2.key"\npassphrase_env = "P"\n'),
        ('[node]\nid = "x"', '[node]\nid = "x"\n\n[keys]\nfile = "k2.key"\n'),
        (
            '[other]\nfile = "keep"\n[keys]\nfile = "a"\n',
            '[other]\nfile = "keep"\n[keys]\nfile = "k2.key"\n',
        ),
    ],
)
def test_set_keys_file_changes_only_that_line(text: str, expected: str) -> None:
    assert set_keys_file(text, "k2.key") == expected
