"""An encrypted private key at rest: ``init --encrypt-key FILE`` makes one, ``keys encrypt``
encrypts an existing node's key with ``keys.passphrase_file``; ``serve`` starts with the
passphrase and, without it or with a wrong one, stops with a line naming the setting (never a
traceback). Real ``barnplan`` processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import CONFIG_NAME, load_config
from node.identity import ENCRYPTED_PEM
from tests.support.nodes import NodeProcess, barnplan, free_port

PASSPHRASE = "en lång lösenfras för nyckeln"


pytestmark = pytest.mark.slow  # real barnplan processes


def passphrase_file(base: Path, text: str = PASSPHRASE) -> Path:
    path = base / "key.passphrase"
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def init_args(base: Path, port: int, *extra: str) -> list[str]:
    directory = base / "skola.test.se"
    return [
        "init", str(directory), "--id", "skola.test.se", "--agency-name", "Testskolan",
        "--kind", "school", "--port", str(port), *extra,
    ]  # fmt: skip


def init(base: Path, *extra: str) -> NodeProcess:
    port = free_port()
    barnplan(*init_args(base, port, *extra))
    return NodeProcess(base / "skola.test.se", "skola.test.se", port)


def set_setting(directory: Path, old: str, new: str) -> None:
    path = directory / CONFIG_NAME
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def serve_refused(node: NodeProcess) -> str:
    """``serve`` exits at once (non-zero) and its stderr, checked for no traceback."""
    done = barnplan("serve", "--dir", str(node.directory), check=False)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    return done.stderr


def test_init_encrypts_the_key_and_serve_needs_the_passphrase(tmp_path: Path) -> None:
    secret = passphrase_file(tmp_path)
    node = init(tmp_path, "--encrypt-key", str(secret))
    key = node.directory / "node.key"
    assert key.read_bytes().startswith(ENCRYPTED_PEM)
    assert load_config(node.directory).keys.passphrase_file == str(secret.resolve())
    node.start()
    try:
        with_key = barnplan("keys", "list", "--json", "--dir", str(node.directory))
        assert '"current": true' in with_key.stdout
    finally:
        node.stop()

    secret.write_text("en annan lösenfras\n", encoding="utf-8")
    assert "cannot decrypt key file" in serve_refused(node)
    assert "keys.passphrase_file" in serve_refused(node)
    set_setting(node.directory, f'passphrase_file = "{secret.resolve()}"', 'passphrase_file = ""')
    refused = serve_refused(node)
    assert "is encrypted: set keys.passphrase_file" in refused
    secret.unlink()
    set_setting(node.directory, 'passphrase_file = ""', f'passphrase_file = "{secret}"')
    assert "keys.passphrase_file: cannot read" in serve_refused(node)


def test_keys_encrypt_an_existing_nodes_key_then_rotate_keeps_it_encrypted(
    tmp_path: Path,
) -> None:
    node = init(tmp_path)
    key = node.directory / "node.key"
    assert not key.read_bytes().startswith(ENCRYPTED_PEM)
    unset = barnplan("keys", "encrypt", "--dir", str(node.directory), check=False)
    assert unset.returncode != 0 and "set keys.passphrase_file" in unset.stderr
    assert not key.read_bytes().startswith(ENCRYPTED_PEM)  # nothing changed

    secret = passphrase_file(tmp_path)
    set_setting(node.directory, 'passphrase_file = ""', f'passphrase_file = "{secret}"')
    assert "is not encrypted, but keys.passphrase_file is set" in serve_refused(node)
    done = barnplan("keys", "encrypt", "--dir", str(node.directory))
    assert "encrypted" in done.stdout and key.read_bytes().startswith(ENCRYPTED_PEM)
    assert key.stat().st_mode & 0o777 == 0o600
    again = barnplan("keys", "encrypt", "--dir", str(node.directory))
    assert "already encrypted" in again.stdout
    node.start()
    node.stop()

    barnplan("keys", "rotate", "--dir", str(node.directory))
    rotated = load_config(node.directory).key_path
    assert rotated != key and rotated.read_bytes().startswith(ENCRYPTED_PEM)
    node.start()
    node.stop()


def test_one_passphrase_source_only(tmp_path: Path) -> None:
    secret = passphrase_file(tmp_path)
    node = init(tmp_path, "--encrypt-key", str(secret))
    set_setting(node.directory, 'passphrase_env = ""', 'passphrase_env = "BARNPLAN_TEST_PASS"')
    assert "keys.passphrase_file and keys.passphrase_env are both set" in serve_refused(node)


def test_init_with_an_empty_passphrase_file_makes_nothing(tmp_path: Path) -> None:
    secret = passphrase_file(tmp_path, "")
    args = init_args(tmp_path, free_port(), "--encrypt-key", str(secret))
    done = barnplan(*args, check=False)
    assert done.returncode != 0 and "is empty" in done.stderr and "Traceback" not in done.stderr
    directory = tmp_path / "skola.test.se"
    assert not directory.exists() or not any(directory.iterdir())
