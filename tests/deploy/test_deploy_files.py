"""deploy/: the compose file, the image, the systemd unit and the nginx (m)TLS proxy config.

Tools that may be missing (docker compose, systemd-analyze, nginx) make their tests skip with a
reason; the structural checks always run. Where nginx exists, it is run for real in front of a
real node to show that /federation/ needs a client certificate from the federation CA and the
rest does not.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.nodes import NodeProcess, free_port, init_node
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
UNIT = DEPLOY / "barnplan.service"
PROXY_CONF = DEPLOY / "proxy" / "barnplan.conf"


# --- compose ------------------------------------------------------------------------------------


def compose_data() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_file_structure() -> None:
    data = compose_data()
    services = data["services"]
    assert set(services) == {"db", "node", "proxy"}
    db, node, proxy = services["db"], services["node"], services["proxy"]
    assert db["image"] == "postgres:15"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert node["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert node["depends_on"]["db"]["condition"] == "service_healthy"
    assert "serve" in node["command"] and "healthcheck" in node
    assert any(v.endswith(":/var/lib/barnplan") for v in node["volumes"])
    # the node's client certificate for its outgoing requests, read-only; not the proxy's keys
    assert "./node-tls:/etc/barnplan/tls:ro" in node["volumes"]
    assert not any(v.startswith("./certs") for v in node["volumes"])
    assert proxy["depends_on"]["node"]["condition"] == "service_healthy"
    mounts = " ".join(proxy["volumes"])
    assert "./proxy/barnplan.conf:" in mounts and "./certs:/etc/nginx/certs:ro" in mounts
    assert set(data["volumes"]) == {"db-data", "node-data"}
    # every path the file mounts or builds from exists (certs/ and node-tls/ are the
    # operator's, not committed)
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./") and source not in ("./certs", "./node-tls"):
                assert (DEPLOY / source).exists(), source
    assert (DEPLOY / node["build"]["context"] / node["build"]["dockerfile"]).is_file()


def compose_command() -> list[str]:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither the docker compose plugin nor docker-compose is installed")


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    command = compose_command()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BARNPLAN_")}
    ok = subprocess.run(
        [*command, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env={**env, "BARNPLAN_DB_PASSWORD": "test-password"},
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "test-password" in ok.stdout
    missing = subprocess.run(
        [*command, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    if (DEPLOY / ".env").exists():
        pytest.skip("deploy/.env exists here, so the missing-password check cannot run")
    assert missing.returncode != 0 and "BARNPLAN_DB_PASSWORD" in missing.stderr


def test_dockerfile() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert "RUN pip install . \\" in lines
    user = next(x for x in lines if x.startswith("USER "))
    assert "root" not in user and user != "USER 0"
    assert lines[-2:] == ['ENTRYPOINT ["barnplan"]', 'CMD ["serve", "--dir", "/var/lib/barnplan"]']
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    for needed in ("!pyproject.toml", "!README.md", "!protocol/", "!node/", "**/*.key"):
        assert needed in ignore


# --- systemd ------------------------------------------------------------------------------------


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_systemd_unit_runs_hardened_as_its_own_user() -> None:
    service = unit()["Service"]
    assert service["User"] == "barnplan" and service["Group"] == "barnplan"
    assert service["ExecStart"].endswith("barnplan serve --dir /var/lib/barnplan")
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert service["ReadWritePaths"] == "/var/lib/barnplan"
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart exists: point it at this environment's barnplan
    executable = shutil.which("barnplan") or str(Path(sys.executable).with_name("barnplan"))
    if not Path(executable).exists():
        pytest.skip("no barnplan executable to stand in for /opt/barnplan/bin/barnplan")
    copy = tmp_path / "barnplan.service"
    copy.write_text(UNIT.read_text().replace("/opt/barnplan/bin/barnplan", executable))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for word in ("Unknown", "ignoring", "Invalid", "Failed"):
        assert word not in output, output


# --- nginx --------------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject), x509.DNSName("localhost")]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_certs(certs: Path) -> None:
    """The layout of deploy/proxy/README.md: server cert, federation CA, a client cert from it,
    and a client cert from another CA (a stranger)."""
    certs.mkdir()
    server_ca_key, fed_ca_key, other_ca_key = (
        ec.generate_private_key(ec.SECP256R1()) for _ in "abc"
    )
    server_ca = _cert("Test server CA", server_ca_key, None, ca=True)
    _write(certs / "server-ca", server_ca, server_ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    _write(
        certs / "server",
        _cert("localhost", server_key, ("Test server CA", server_ca_key), False),
        server_key,
    )
    fed_ca = _cert("Test federation CA", fed_ca_key, None, ca=True)
    _write(certs / "federation-ca", fed_ca, fed_ca_key)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _cert("ifo.test.se", client_key, ("Test federation CA", fed_ca_key), False)
    _write(certs / "federation-client", client, client_key)
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    stranger = _cert("okand.example.se", stranger_key, ("Other CA", other_ca_key), False)
    _write(certs / "stranger", stranger, stranger_key)


def nginx_config(tmp: Path, upstream_port: int, https_port: int, http_port: int) -> Path:
    """deploy/proxy/barnplan.conf made runnable here: local ports, test certs, a test prefix."""
    site = PROXY_CONF.read_text(encoding="utf-8")
    site = site.replace("server node:8400;", f"server 127.0.0.1:{upstream_port};")
    site = site.replace("/etc/nginx/certs/", f"{tmp / 'certs'}/")
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = "\n".join(x for x in site.splitlines() if "listen [::]" not in x)
    (tmp / "site.conf").write_text(site)
    main = f"""
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""
    (tmp / "nginx.conf").write_text(main)
    return tmp / "nginx.conf"


def nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        pytest.skip("nginx is not installed (apt-get install nginx-core to run this check)")
    return found


def test_nginx_accepts_the_proxy_config(tmp_path: Path) -> None:
    binary = nginx()
    make_certs(tmp_path / "certs")
    conf = nginx_config(tmp_path, free_port(), free_port(), free_port())
    result = subprocess.run(
        [binary, "-t", "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def proxied_node(tmp_path: Path) -> Iterator[tuple[NodeProcess, int, Path]]:
    binary = nginx()
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    make_certs(tmp_path / "certs")
    https_port = free_port()
    conf = nginx_config(tmp_path, node.port, https_port, free_port())
    node.start()
    proc = subprocess.Popen(
        [
            binary,
            "-c",
            str(conf),
            "-p",
            str(tmp_path),
            "-e",
            str(tmp_path / "error.log"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def started() -> bool:
            assert proc.poll() is None, (tmp_path / "error.log").read_text()
            return (tmp_path / "nginx.pid").exists()

        wait_until(started, timeout=10, what="nginx starts (writes its pid file)")
        yield node, https_port, tmp_path / "certs"
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        node.stop()


def _context(certs: Path, client: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs / "server-ca.crt"))
    if client:
        context.load_cert_chain(str(certs / f"{client}.crt"), str(certs / f"{client}.key"))
    return context


def _request(url: str, context: ssl.SSLContext, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"} if body else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_proxy_requires_federation_client_certs_only_on_federation(
    proxied_node: tuple[NodeProcess, int, Path],
) -> None:
    node, port, certs = proxied_node
    base = f"https://localhost:{port}"
    anonymous = _context(certs, None)
    # the node document and health check: server certificate only
    status, body = _request(base + "/.well-known/barnplan/node", anonymous)
    assert status == 200 and json.loads(body)["id"] == node.node_id
    assert _request(base + "/healthz", anonymous)[0] == 200
    assert _request(base + "/metrics", anonymous)[0] == 404
    # /federation/ without a client certificate: 403 at the proxy; with one from another CA
    # nginx refuses the certificate itself (400, its own page); the node never sees either
    junk = b'{"v": 1}'
    status, body = _request(base + "/federation/v1/messages", anonymous, junk)
    assert status == 403 and b"nginx" in body
    stranger = _context(certs, "stranger")
    status, body = _request(base + "/federation/v1/messages", stranger, junk)
    assert status == 400 and b"SSL certificate error" in body
    # with a federation client certificate the node itself answers (a signed refusal)
    member = _context(certs, "federation-client")
    status, body = _request(base + "/federation/v1/messages", member, junk)
    assert status == 400, body
    assert json.loads(body)["type"] == "error"
