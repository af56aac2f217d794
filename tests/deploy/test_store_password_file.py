"""``store.password_file``: the PostgreSQL password comes from a file every command reads, and
never shows in what a command prints; the unit's documentation path is one the install makes."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from node.config import ConfigError, load_config
from tests.conftest import POSTGRES_URL, run_psql
from tests.support.nodes import barnplan, init_node

pytestmark = pytest.mark.slow  # barnplan CLI subprocesses on PostgreSQL

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-Ä-for-tests"


def with_password_file(directory: Path, url: str, password_file: str) -> None:
    config = directory / "barnplan.toml"
    text = re.sub(r'(?m)^url = ".*"$', f'url = "{url}"', config.read_text(), count=1)
    text = text.replace('password_file = ""', f'password_file = "{password_file}"', 1)
    config.write_text(text)


def test_the_password_file_is_read_relative_to_the_node_and_named_when_missing(
    tmp_path: Path,
) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    with_password_file(node.directory, "postgresql://barnplan@db.example/barnplan", "db-password")
    with pytest.raises(ConfigError) as missing:
        _ = load_config(node.directory).database_url
    assert str(missing.value).startswith("store.password_file: cannot read ")
    checked = barnplan("config", "check", "--json", "--dir", str(node.directory), check=False)
    assert checked.returncode == 1
    assert any(p.startswith("store.password_file:") for p in json.loads(checked.stdout)["problems"])

    (node.directory / "db-password").write_text(SECRET + "\n")
    url = load_config(node.directory).database_url
    assert url.startswith("postgresql://barnplan:") and url.endswith("@db.example/barnplan")


@pytest.mark.skipif(not POSTGRES_URL, reason="BARNPLAN_TEST_POSTGRES_URL is not set")
def test_a_command_reaches_postgresql_with_the_file_and_never_prints_the_password(
    tmp_path: Path,
) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    run_psql(f'CREATE SCHEMA "{schema}"')
    try:
        node = init_node(tmp_path, "skola.test.se", "school", "Testskolan", POSTGRES_URL, schema)
        (node.directory / "db-password").write_text(SECRET)
        with_password_file(node.directory, POSTGRES_URL, "db-password")
        ran = barnplan("status", "--no-peers", "--json", "--dir", str(node.directory), check=False)
        assert json.loads(ran.stdout)["store"] == "ok", ran.stdout
        assert SECRET not in ran.stdout + ran.stderr
    finally:
        run_psql(f'DROP SCHEMA "{schema}" CASCADE')


def test_the_units_documentation_path_is_one_the_install_steps_create() -> None:
    unit = (ROOT / "deploy" / "barnplan.service").read_text()
    [documentation] = re.findall(r"(?m)^Documentation=file://(\S+)$", unit)
    operations = (ROOT / "deploy" / "OPERATIONS.md").read_text()
    directory, name = documentation.rsplit("/", 1)
    assert f"install -m 0644 deploy/*.md {directory}/" in operations
    assert (ROOT / "deploy" / name).is_file()
