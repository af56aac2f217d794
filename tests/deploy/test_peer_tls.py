"""``barnplan peers add`` and ``federation apply`` fetch peers' documents with the node's own
``[tls]`` settings: the agency's CA for the peer's server certificate and the node's client
certificate for the peer's mutual-TLS proxy (deploy/proxy/README.md). Before, both commands used
the system's CAs and no client certificate, so they failed against exactly the peers a running
node could reach.

The peer is a real node process; a TLS front on loopback (standing in for its proxy) serves that
node's own document and requires a client certificate from the test CA.
"""

from __future__ import annotations

import http.server
import json
import re
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.test_federation_cli import barnplan, peer_ids
from tests.support.nodes import NodeProcess, free_port, init_node
from tests.support.tls import Pki, make_pki

pytestmark = pytest.mark.slow  # barnplan serve processes and CLI subprocesses

PEER = ("skola.test.se", "school", "Testskolan")
DOC_PATH = "/.well-known/barnplan/node"


class _Front(http.server.BaseHTTPRequestHandler):
    document = b""

    def do_GET(self) -> None:
        if self.path != DOC_PATH:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.document)))
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def https_peer(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[str]:
    """A real peer node whose base URL is its TLS front's; yields that URL."""
    base = tmp_path_factory.mktemp("peer")
    front_port = free_port()
    url = f"https://127.0.0.1:{front_port}"
    node_id, kind, name = PEER
    port = free_port()
    barnplan(
        "init", str(base / node_id), "--id", node_id, "--agency-name", name,
        "--kind", kind, "--port", str(port), "--base-url", url,
    )  # fmt: skip
    peer = NodeProcess(base / node_id, node_id, port)
    peer.start()
    try:
        with urllib.request.urlopen(peer.url + DOC_PATH, timeout=5) as resp:
            handler = type("Front", (_Front,), {"document": resp.read()})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", front_port), handler)
        server.socket = pki.server_context().wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield url
        finally:
            server.shutdown()
            server.server_close()
    finally:
        peer.stop()


@pytest.fixture
def node(tmp_path: Path, store_target: tuple[str, str]) -> NodeProcess:
    """The node that adds the peer (it need not run), on SQLite or PostgreSQL."""
    url, schema = store_target
    return init_node(tmp_path, "ifo.test.se", "social_services", "Testkommun IFO", url, schema)


def set_tls(node: NodeProcess, **values: str) -> None:
    config = node.directory / "barnplan.toml"
    text = config.read_text(encoding="utf-8")
    for key in ("client_cert_file", "client_key_file", "ca_file"):
        line = f"{key} = {json.dumps(values.get(key, ''))}"
        text, n = re.subn(rf"^{key} = .*$", line.replace("\\", "\\\\"), text, flags=re.M)
        assert n == 1, key
    config.write_text(text, encoding="utf-8")


def add(node: NodeProcess, url: str) -> tuple[int, str]:
    ran = barnplan("peers", "add", url, "--dir", str(node.directory), "--yes", check=False)
    assert "Traceback" not in ran.stderr
    return ran.returncode, ran.stdout + ran.stderr


def test_peers_add_uses_the_nodes_ca_and_client_certificate(
    node: NodeProcess, https_peer: str, pki: Pki
) -> None:
    # the system's CAs do not know the agency's CA
    code, out = add(node, https_peer)
    assert code == 1 and "cannot reach" in out and "Certificate" in out
    # the CA alone: the peer's proxy wants a client certificate
    set_tls(node, ca_file=str(pki.ca))
    code, out = add(node, https_peer)
    assert code == 1 and "cannot reach" in out
    assert peer_ids(node) == []
    # a CA file that is not there: the setting is named
    set_tls(node, ca_file="certs/missing-ca.pem")
    code, out = add(node, https_peer)
    assert code == 1 and "[tls] ca_file" in out and "missing-ca.pem" in out
    # both, the paths relative to the node directory
    (node.directory / "certs").mkdir()
    for source in (pki.ca, pki.client_cert, pki.client_key):
        (node.directory / "certs" / source.name).write_bytes(source.read_bytes())
    set_tls(
        node,
        ca_file="certs/ca.crt",
        client_cert_file="certs/client.crt",
        client_key_file="certs/client.key",
    )
    code, out = add(node, https_peer)
    assert code == 0, out
    assert f"trusted {PEER[0]}" in out and f"base URL:    {https_peer}" in out
    assert peer_ids(node) == [PEER[0]]


def test_federation_apply_uses_the_nodes_tls(
    node: NodeProcess, https_peer: str, pki: Pki, tmp_path: Path
) -> None:
    with urllib.request.urlopen(
        https_peer + DOC_PATH, timeout=5, context=_client_context(pki)
    ) as resp:
        keys = [k["public"] for k in json.loads(resp.read())["keys"]]
    from protocol.encoding import b64url_decode
    from protocol.keys import fingerprint

    own = json.loads(barnplan("keys", "list", "--json", "--dir", str(node.directory)).stdout)
    members = {
        "federation": "halland.barnplan.se",
        "version": 1,
        "members": [
            {
                "id": "ifo.test.se",
                "base_url": f"http://127.0.0.1:{node.port}",
                "agency_kind": "social_services",
                "keys": [k["fingerprint"] for k in own],
            },
            {
                "id": PEER[0],
                "base_url": https_peer,
                "agency_kind": PEER[1],
                "keys": [fingerprint(b64url_decode(k)) for k in keys],
            },
        ],
    }
    barnplan("federation", "create-key", "--out", str(tmp_path / "fed.key"))
    (tmp_path / "members.json").write_text(json.dumps(members))
    signed = tmp_path / "members.signed.json"
    barnplan(
        "federation", "sign-members", str(tmp_path / "members.json"),
        "--key", str(tmp_path / "fed.key"), "--out", str(signed),
    )  # fmt: skip
    apply = (
        "federation", "apply", str(signed), "--federation-key", str(tmp_path / "fed.key.pub"),
        "--dir", str(node.directory), "--yes",
    )  # fmt: skip
    refused = barnplan(*apply, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"error: {PEER[0]}: not trusted" in refused.stderr and peer_ids(node) == []
    set_tls(
        node,
        ca_file=str(pki.ca),
        client_cert_file=str(pki.client_cert),
        client_key_file=str(pki.client_key),
    )
    applied = barnplan(*apply, check=False)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"trusted {PEER[0]}" in applied.stdout and peer_ids(node) == [PEER[0]]


def _client_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


def test_serve_refuses_to_start_with_a_tls_file_it_cannot_use(node: NodeProcess) -> None:
    """A wrong ``[tls]`` path stops the node at start with the setting named, rather than
    failing every request to a peer later."""
    from tests.support.nodes import barnplan as barnplan_process

    set_tls(node, ca_file="certs/missing-ca.pem")
    ran = barnplan_process("serve", "--dir", str(node.directory), check=False)
    assert ran.returncode == 1
    assert "[tls] ca_file" in ran.stderr and "missing-ca.pem" in ran.stderr
    assert "Traceback" not in ran.stderr
