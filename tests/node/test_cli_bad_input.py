"""Bad input to the CLI a tester found: each gets one line saying what to fix, a non-zero exit
and no traceback, and leaves nothing behind. Real CLI processes; SQLite and PostgreSQL where the
store is involved."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.config import load_config
from node.store.engine import create_engine
from node.store.records import insert_user
from node.store.tables import User
from tests.support.nodes import NodeProcess, barnplan, init_node

pytestmark = pytest.mark.slow  # barnplan CLI subprocesses, seconds each

PNR = "201503152389"  # synthetic test identity (valid Luhn)


def node_on(tmp_path: Path, store_target: tuple[str, str]) -> NodeProcess:
    url, schema = store_target
    return init_node(tmp_path, "skola.test.se", "school", "Testskolan", url, schema)


def children(node: NodeProcess) -> list[dict[str, str]]:
    out = barnplan("children", "list", "--json", "--dir", str(node.directory)).stdout
    return list(json.loads(out))


def test_a_child_already_recorded_is_refused_not_duplicated(
    tmp_path: Path, store_target: tuple[str, str]
) -> None:
    node = node_on(tmp_path, store_target)
    add = ("children", "add", "--personnummer", "20150315-2389", "--dir", str(node.directory))
    first = barnplan(*add, "--name", "Alva Test", "--json")
    child_id = json.loads(first.stdout)["child_id"]
    again = barnplan(*add, "--name", "Alva Testsson", check=False)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.startswith("error: ") and child_id in again.stderr
    assert [c["child_id"] for c in children(node)] == [child_id]


def test_a_display_name_longer_than_the_store_keeps_is_refused_at_add(
    tmp_path: Path, store_target: tuple[str, str]
) -> None:
    node = node_on(tmp_path, store_target)
    users = ("users", "add", "anna", "--role", "lead", "--dir", str(node.directory))
    long = barnplan(*users, "--name", "A" * 201, check=False)
    assert long.returncode == 1 and "at most 200" in long.stderr
    assert "Traceback" not in long.stderr
    listed = barnplan("users", "list", "--json", "--dir", str(node.directory))
    assert json.loads(listed.stdout) == []  # nothing saved, and listing still works
    barnplan(*users, "--name", "A" * 200)
    assert [
        u["user_id"]
        for u in json.loads(
            barnplan("users", "list", "--json", "--dir", str(node.directory)).stdout
        )
    ] == ["anna"]


def test_an_argument_that_is_not_utf8_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    """A Latin-1 terminal's "ö" arrives as a lone surrogate; init used to fail half-way and
    leave an empty barnplan.toml behind."""
    target = tmp_path / "n"
    ran = barnplan(
        "init", str(target), "--id", "skola.test.se", "--kind", "school",
        "--agency-name", "Sk\udcf6la", check=False,
    )  # fmt: skip
    assert ran.returncode == 2 and "not UTF-8 text" in ran.stderr
    assert "Traceback" not in ran.stderr and not target.exists()


def test_serve_port_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    ran = barnplan("serve", "--port", "70000", "--dir", str(node.directory), check=False)
    assert ran.returncode == 2 and "70000 is not in the range" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_a_config_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    config = node.directory / "barnplan.toml"
    config.write_bytes(
        config.read_bytes().replace(
            b'agency_name = "Testskolan"', 'agency_name = "Västerås"'.encode("latin-1")
        )
    )
    ran = barnplan("children", "list", "--dir", str(node.directory), check=False)
    assert ran.returncode == 1 and "not UTF-8 text" in ran.stderr and "barnplan.toml" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_log_dir_before_the_subcommand_is_the_node_it_checks(tmp_path: Path) -> None:
    """``log --dir D verify`` used to ignore D and check the current directory's node."""
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    ok = barnplan("log", "--dir", str(node.directory), "verify")
    assert "log verified: OK" in ok.stdout
    missing = barnplan("log", "--dir", str(tmp_path / "nowhere"), "verify", check=False)
    assert missing.returncode == 2 and "no barnplan.toml" in missing.stderr  # could not run
    mixed = barnplan("log", "--since", "2026-01-01", "--dir", str(node.directory), "verify",
                     check=False)  # fmt: skip
    assert mixed.returncode == 2 and "does not apply to 'log verify'" in mixed.stderr
    both = barnplan("log", "--json", "--csv", "--dir", str(node.directory), check=False)
    assert both.returncode == 2 and "one of --json and --csv" in both.stderr


def test_federation_key_files_in_places_that_cannot_be_written_or_read(tmp_path: Path) -> None:
    nowhere = barnplan(
        "federation", "create-key", "--out", str(tmp_path / "nodir" / "k"), check=False
    )
    assert nowhere.returncode == 1 and "No such file or directory" in nowhere.stderr
    empty = barnplan("federation", "create-key", "--out", "", check=False)
    assert empty.returncode == 1 and "--out must name the key file" in empty.stderr
    (tmp_path / "m.json").write_text('{"federation": "halland.barnplan.se", "version": 1}')
    (tmp_path / "keydir").mkdir()
    as_dir = barnplan(
        "federation", "sign-members", str(tmp_path / "m.json"),
        "--key", str(tmp_path / "keydir"), "--out", str(tmp_path / "s.json"), check=False,
    )  # fmt: skip
    assert as_dir.returncode == 1 and "Is a directory" in as_dir.stderr
    for ran in (nowhere, empty, as_dir):
        assert "Traceback" not in ran.stderr
    assert not (tmp_path / "s.json").exists()


def test_a_question_with_nobody_to_answer_says_what_to_pass_instead(tmp_path: Path) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    barnplan("users", "add", "anna", "--name", "Anna", "--role", "lead",
             "--dir", str(node.directory))  # fmt: skip
    ran = barnplan("users", "passwd", "anna", "--dir", str(node.directory), check=False, input="")
    assert ran.returncode == 1 and "--password-stdin" in ran.stderr
    assert "Aborted!" not in ran.stderr and "Traceback" not in ran.stderr


def test_setting_a_password_is_refused_when_passwords_are_off(tmp_path: Path) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    barnplan("users", "add", "anna", "--name", "Anna", "--role", "lead",
             "--dir", str(node.directory))  # fmt: skip
    config = node.directory / "barnplan.toml"
    config.write_text(config.read_text().replace("passwords = true", "passwords = false"))
    ran = barnplan("users", "passwd", "anna", "--password-stdin", "--dir", str(node.directory),
                   check=False, input="a long enough password\n")  # fmt: skip
    assert ran.returncode == 1 and "passwords = false" in ran.stderr
    assert "Traceback" not in ran.stderr and "password set" not in ran.stdout


def test_the_log_listing_reports_a_missing_store_in_one_line(tmp_path: Path) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    (node.directory / "node.db").unlink()
    ran = barnplan("log", "--dir", str(node.directory), check=False)
    assert ran.returncode == 1 and ran.stderr.startswith("error: ") and "node.db" in ran.stderr
    assert "Traceback" not in ran.stderr and not (node.directory / "node.db").exists()


def test_init_refuses_what_the_node_document_could_not_carry(tmp_path: Path) -> None:
    """A base URL or agency name the node document refuses used to be written to the config,
    and the node then answered its own document with HTTP 500: no peer could ever add it."""
    for n, (option, value) in enumerate(
        [
            ("--base-url", "http://"),
            ("--base-url", "https://my node.se"),
            ("--agency-name", "A" * 201),
        ]
    ):
        target = tmp_path / f"n{n}"
        args = ["--agency-name", "Testskolan", "--base-url", "https://skola.test.se"]
        args[args.index(option) + 1] = value
        ran = barnplan(
            "init", str(target), "--id", "skola.test.se", "--kind", "school", *args, check=False
        )
        assert ran.returncode == 1, (option, value)
        assert ran.stderr.startswith(f"error: {option}: ")  # the option given, not the file
        assert "Traceback" not in ran.stderr and not target.exists()


def test_users_list_shows_the_staff_and_the_residents_only_when_asked(
    tmp_path: Path, store_target: tuple[str, str]
) -> None:
    """A resident (the family's sign-in, no name) is a user row too, but not one of the staff
    an operator manages: ``users list`` leaves it out unless ``--residents``."""
    node = node_on(tmp_path, store_target)
    barnplan(
        "users", "add", "anna", "--role", "lead", "--name", "Anna", "--dir", str(node.directory)
    )
    insert_resident(node, "res-0123456789abcdef")
    staff = json.loads(barnplan("users", "list", "--json", "--dir", str(node.directory)).stdout)
    assert [u["user_id"] for u in staff] == ["anna"]
    every = barnplan("users", "list", "--residents", "--json", "--dir", str(node.directory))
    assert [(u["user_id"], u["role"]) for u in json.loads(every.stdout)] == [
        ("anna", "lead"),
        ("res-0123456789abcdef", "resident"),
    ]


def insert_resident(node: NodeProcess, user_id: str) -> None:
    """A resident's row as a sign-in at /familj records it (no name, no usable token)."""

    async def insert() -> None:
        config = load_config(node.directory)
        engine = create_engine(config.database_url, config.store.schema_name)
        try:
            resident = User(
                user_id=user_id, display_name="", role="resident", token_hash="x" * 64,
                created_at=datetime.now(UTC), oidc_issuer="http://127.0.0.1/residents",
                oidc_subject="f" * 64,
            )  # fmt: skip
            await insert_user(engine, resident)
        finally:
            await engine.dispose()

    asyncio.run(insert())
