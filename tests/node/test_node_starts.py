"""A node that starts: init + serve in subprocesses, the node document over real HTTP, peers."""

from __future__ import annotations

import json
import sqlite3
import stat
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.documents import verify_node_document
from tests.support.nodes import NodeProcess, barnplan, free_port, init_node

pytestmark = pytest.mark.slow  # barnplan serve processes and CLI subprocesses


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    school = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    social = init_node(tmp_path, "ifo.test.se", "social_services", "Testkommun IFO")
    school.start()
    social.start()
    try:
        yield school, social
    finally:
        school.stop()
        social.stop()


def fetch_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("application/json")
        data = json.loads(resp.read())
    assert isinstance(data, dict)
    return data


def test_init_creates_config_key_0600_and_migrated_database(tmp_path: Path) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    key = node.directory / "node.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    with sqlite3.connect(node.directory / "node.db") as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        (revision,) = db.execute("select version_num from alembic_version").fetchone()
    assert {"peer", "own_key", "seen_message"} <= tables
    assert revision


def test_init_refuses_to_overwrite_an_existing_node(tmp_path: Path) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    before = (node.directory / "node.key").read_bytes()
    result = barnplan(
        "init",
        str(node.directory),
        "--id",
        "x.test.se",
        "--agency-name",
        "X",
        "--kind",
        "school",
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error:") and "already exists" in result.stderr
    assert (node.directory / "node.key").read_bytes() == before


def test_served_node_document_verifies_with_the_protocol_library(
    two_nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    school, _ = two_nodes
    raw = fetch_json(school.url + "/.well-known/barnplan/node")
    doc, keys = verify_node_document(raw, "skola.test.se")
    assert doc.base_url == school.url
    assert len(keys) == 1 and keys[0].key_id.startswith("skola.test.se#")
    assert fetch_json(school.url + "/healthz")["status"] == "ok"


def test_peers_add_records_a_verified_peer(two_nodes: tuple[NodeProcess, NodeProcess]) -> None:
    school, social = two_nodes
    result = barnplan("peers", "add", social.url, "--dir", str(school.directory), "--yes")
    assert "SHA-256" in result.stdout and "trusted ifo.test.se" in result.stdout
    listed = json.loads(barnplan("peers", "list", "--json", "--dir", str(school.directory)).stdout)
    assert [p["node_id"] for p in listed] == ["ifo.test.se"]
    assert listed[0]["base_url"] == social.url


def test_peers_add_asks_and_records_nothing_when_declined(
    two_nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    school, social = two_nodes
    result = barnplan(
        "peers", "add", social.url, "--dir", str(school.directory), input="n\n", check=False
    )
    assert result.returncode == 1
    listed = json.loads(barnplan("peers", "list", "--json", "--dir", str(school.directory)).stdout)
    assert listed == []


def test_peers_add_wrong_url_is_one_line_error_and_records_nothing(
    two_nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    school, _ = two_nodes
    dead = f"http://127.0.0.1:{free_port()}"
    for url in (dead, school.url + "/healthz", "ftp://example.invalid"):
        result = barnplan("peers", "add", url, "--dir", str(school.directory), "--yes", check=False)
        assert result.returncode == 1, url
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error:"), result.stderr
        assert "Traceback" not in result.stderr
    listed = json.loads(barnplan("peers", "list", "--json", "--dir", str(school.directory)).stdout)
    assert listed == []


def test_peers_add_tampered_document_is_refused(tmp_path: Path) -> None:
    """A server that alters a genuine document's agency name after signing is not trusted."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    school = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    other = init_node(tmp_path, "ifo.test.se", "social_services", "IFO")
    other.start()
    try:
        genuine = fetch_json(other.url + "/.well-known/barnplan/node")
    finally:
        other.stop()
    tampered = json.dumps({**genuine, "agency_name": "Evil"}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(tampered)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = barnplan("peers", "add", url, "--dir", str(school.directory), "--yes", check=False)
    finally:
        server.shutdown()
    assert result.returncode == 1
    assert "bad_signature" in result.stderr and result.stderr.count("\n") == 1
    listed = json.loads(barnplan("peers", "list", "--json", "--dir", str(school.directory)).stdout)
    assert listed == []


def _document_variants() -> dict[str, bytes]:
    """A genuinely self-signed node document, spelled in ways the federation endpoint refuses
    in an envelope; each still verifies for a lenient reader (``json.loads`` keeps the last of
    a duplicated member, reads 1.0 as the integer 1 and skips a byte-order mark)."""
    from datetime import UTC, datetime

    from protocol.documents import build_node_document
    from protocol.keys import SigningKey
    from protocol.signing import sign_object

    now = datetime.now(UTC)
    key = SigningKey.generate("ifo.test.se", now)
    document = build_node_document(
        node_id="ifo.test.se",
        agency_name="IFO",
        agency_kind="social_services",
        base_url="http://127.0.0.1:9",
        key=key,
        issued_at=now,
    )
    text = json.dumps(document)
    unversioned = sign_object({k: v for k, v in document.items() if k not in ("v", "type")}, key)
    return {
        # a first-wins reader sees "Evil"; a last-wins reader verifies the genuine name
        "duplicated member": ('{"agency_name": "Evil", ' + text[1:]).encode(),
        "v is 1.0": text.replace('"v": 1,', '"v": 1.0,').encode(),
        "no v and no type, signed": json.dumps(unversioned).encode(),
        "byte-order mark": b"\xef\xbb\xbf" + text.encode(),
    }


@pytest.mark.parametrize("variant", sorted(_document_variants()))
def test_peers_add_refuses_a_document_the_federation_endpoint_would_refuse(
    tmp_path: Path, variant: str
) -> None:
    """SPEC §4.4 step 1: a node document is read with the same strict parser and schema as every
    message, whichever path reads it; peers add trusted all of these."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    served = _document_variants()[variant]
    school = init_node(tmp_path, "skola.test.se", "school", "Testskolan")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(served)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = barnplan("peers", "add", url, "--dir", str(school.directory), "--yes", check=False)
    finally:
        server.shutdown()
    assert result.returncode == 1, result.stdout
    assert "malformed" in result.stderr and result.stderr.count("\n") == 1, result.stderr
    listed = json.loads(barnplan("peers", "list", "--json", "--dir", str(school.directory)).stdout)
    assert listed == []
