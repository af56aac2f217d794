"""``barnplan status`` and ``barnplan config check`` against working and broken setups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.federation import RunningNode
from tests.support.nodes import barnplan, barnplan_async, init_node

pytestmark = pytest.mark.slow  # barnplan CLI subprocesses, seconds each

cli = barnplan_async


async def status_json(directory: Path) -> tuple[int, dict[str, object]]:
    ran = await cli("status", "--json", "--dir", str(directory))
    return ran.returncode, json.loads(ran.stdout)


async def test_status_reports_a_node_and_its_problems_until_they_are_fixed(
    sqlite_pair: list[RunningNode],
) -> None:
    school, social = sqlite_pair
    directory = school.node.config.directory
    code, report = await status_json(directory)
    assert code == 1
    assert report["store"] == "ok"
    assert report["schema_store"] == report["schema_expected"]
    [key] = report["keys"]  # type: ignore[misc]
    assert key["state"] == "current" and len(key["fingerprint"]) == 64
    [peer] = report["peers"]  # type: ignore[misc]
    assert (peer["node_id"], peer["reachable"]) == (social.node_id, True)
    assert report["problems"] == [
        "log: never verified: run 'barnplan log verify' (daily, from cron)"
    ]

    verified = await cli("log", "verify", "--dir", str(directory))
    assert verified.returncode == 0, verified.stderr
    code, report = await status_json(directory)
    assert (code, report["ok"], report["last_verification_ok"]) == (0, True, True)
    text = await cli("status", "--dir", str(directory))
    assert text.returncode == 0 and text.stdout.rstrip().endswith("status: OK")

    await social.stop()
    code, report = await status_json(directory)
    assert code == 1
    [peer] = report["peers"]  # type: ignore[misc]
    assert peer["reachable"] is False
    [problem] = report["problems"]  # type: ignore[misc]
    assert problem.startswith(f"peer {social.node_id}: cannot reach")  # type: ignore[union-attr]
    offline = await cli("status", "--no-peers", "--json", "--dir", str(directory))
    assert offline.returncode == 0 and json.loads(offline.stdout)["peers"] == []


def test_status_names_an_unreachable_store_and_a_store_behind_the_release(
    tmp_path: Path,
) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    database = node.directory / "node.db"
    with sa.create_engine(f"sqlite:///{database}").begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0009'"))
        conn.execute(sa.text("DROP TABLE log_verification"))
    behind = barnplan("status", "--json", "--dir", str(node.directory), check=False)
    assert behind.returncode == 1
    [problem] = json.loads(behind.stdout)["problems"]
    assert problem.startswith(
        "schema: the store is at revision 0009 and lacks table log_verification"
    )
    assert "run 'barnplan migrate'" in problem

    config = node.directory / "barnplan.toml"
    config.write_text(
        config.read_text().replace('url = ""', 'url = "postgresql://x@127.0.0.1:9/none"', 1)
    )
    down = barnplan("status", "--json", "--dir", str(node.directory), check=False)
    assert down.returncode == 1
    report = json.loads(down.stdout)
    assert report["store"].startswith("cannot connect to the store postgresql://x@127.0.0.1:9/none")
    assert "store.url" in report["store"]


def test_config_check_passes_a_good_config_and_names_each_bad_setting(tmp_path: Path) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    good = barnplan("config", "check", "--dir", str(node.directory), check=False)
    assert good.returncode == 0 and good.stdout.strip().endswith("barnplan.toml: OK")

    config = node.directory / "barnplan.toml"
    text = config.read_text()
    config.write_text(
        text.replace('url = ""', 'url = "mysql://x@h/db"', 1)
        .replace('file = "node.key"', 'file = "missing.key"', 1)
        .replace('ca_file = ""', 'ca_file = "no-such-ca.pem"', 1)
    )
    bad = barnplan("config", "check", "--json", "--dir", str(node.directory), check=False)
    assert bad.returncode == 1
    problems = json.loads(bad.stdout)["problems"]
    assert any(p.startswith("unsupported store URL") or "store.url" in p for p in problems)
    assert any(p.startswith("[tls] ca_file: cannot use") for p in problems)
    assert any(p.startswith("keys.file:") and "missing.key" in p for p in problems)

    config.write_text(
        text.replace('passphrase_env = ""', 'passphrase_env = "BARNPLAN_TEST_UNSET"', 1)
    )
    unset = barnplan("config", "check", "--dir", str(node.directory), check=False)
    assert unset.returncode == 1
    assert "keys.passphrase_env names BARNPLAN_TEST_UNSET, which is not set" in unset.stderr

    config.write_text("[node\n")
    broken = barnplan("config", "check", "--dir", str(node.directory), check=False)
    assert broken.returncode == 1 and "not valid TOML" in broken.stderr
