"""A node that cannot start because of a setting says which setting, in one line, with no
traceback: a missing key file names keys.file, a taken port names server.host/server.port."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.nodes import barnplan, init_node

pytestmark = pytest.mark.slow  # real barnplan processes


def refused(*args: str) -> str:
    done = barnplan(*args, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


def test_a_missing_key_file_names_keys_file(tmp_path: Path) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    (node.directory / "node.key").rename(tmp_path / "elsewhere.key")
    stderr = refused("serve", "--dir", str(node.directory))
    assert "node.key is missing (keys.file in barnplan.toml)" in stderr
    stderr = refused("keys", "encrypt", "--dir", str(node.directory))
    assert "set keys.passphrase_file" in stderr


def test_a_port_in_use_names_server_port(tmp_path: Path) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", node.port))
        taken.listen()
        stderr = refused("serve", "--dir", str(node.directory))
    assert f"cannot listen on 127.0.0.1:{node.port}" in stderr
    assert "server.host and server.port in barnplan.toml" in stderr
