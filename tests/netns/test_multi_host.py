"""Nodes on separate hosts: network namespaces with their own addresses, a link cut mid-way.

The test builds its own small network and removes it afterwards: a "switch" namespace with a
bridge, one namespace per node with a veth into the switch, and one veth from the test's own
namespace so it can reach the nodes' APIs. Addresses are in 10.213.7.0/24, on these test hosts
only. Skips with the reason when namespaces cannot be created (not root, no iproute2).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_revocation_processes import CATEGORY, new_consent, plan_everyone_shares
from tests.support.federation import BUP, SCHOOL, SOCIAL
from tests.support.nodes import barnplan
from tests.support.procfed import ProcNode, ask_signed, run, trust_all
from tests.support.waiting import wait_until

SUBNET = "10.213.7"
TAG = uuid.uuid4().hex[:4]
SWITCH = f"bpsw{TAG}"


def sh(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=30)


def can_make_namespaces() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    probe = f"bpprobe{TAG}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if result.returncode != 0:
        return f"ip netns add failed: {result.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


REASON = can_make_namespaces()
pytestmark = [
    pytest.mark.slow,  # three node processes in network namespaces, up to minutes of backoff
    pytest.mark.skipif(REASON is not None, reason=REASON or ""),
]


class Network:
    """A bridge in its own namespace; hosts join it with a veth each."""

    def __init__(self) -> None:
        self.namespaces = [SWITCH]
        self.root_links: list[str] = []
        sh("ip", "netns", "add", SWITCH)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=SWITCH)
        sh("ip", "link", "set", "br0", "up", ns=SWITCH)

    def add_host(self, name: str, number: int) -> str:
        ns = f"bp{name}{TAG}"
        outer, inner = f"s{name}{TAG}", f"h{name}{TAG}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", outer, "netns", SWITCH)
        sh("ip", "link", "set", inner, "netns", ns)
        sh("ip", "link", "set", outer, "master", "br0", ns=SWITCH)
        sh("ip", "link", "set", outer, "up", ns=SWITCH)
        sh("ip", "addr", "add", f"{SUBNET}.{number}/24", "dev", inner, ns=ns)
        sh("ip", "link", "set", inner, "up", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
        return ns

    def join_test_process(self) -> None:
        outer, inner = f"stest{TAG}", f"htest{TAG}"
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        self.root_links.append(inner)
        sh("ip", "link", "set", outer, "netns", SWITCH)
        sh("ip", "link", "set", outer, "master", "br0", ns=SWITCH)
        sh("ip", "link", "set", outer, "up", ns=SWITCH)
        sh("ip", "addr", "add", f"{SUBNET}.250/24", "dev", inner)
        sh("ip", "link", "set", inner, "up")

    def cut(self, name: str) -> None:
        sh("ip", "link", "set", f"s{name}{TAG}", "down", ns=SWITCH)

    def restore(self, name: str) -> None:
        sh("ip", "link", "set", f"s{name}{TAG}", "up", ns=SWITCH)

    def remove(self) -> None:
        for link in self.root_links:
            sh("ip", "link", "del", link, check=False)
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)


class HostNode(ProcNode):
    namespace: str
    address: str

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def start(self, env: dict[str, str] | None = None, wait: float = 30.0) -> None:
        log = open(self.directory / "serve.log", "a")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.namespace,
                sys.executable,
                "-m",
                "node",
                "serve",
                "--dir",
                str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return True
            except OSError:
                return False

        wait_until(
            healthy,
            timeout=wait,
            what=lambda: f"{self.node_id} starts: {(self.directory / 'serve.log').read_text()}",
            interval=0.1,
        )


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[Network, list[HostNode]]]:
    net = Network()
    nodes: list[HostNode] = []
    try:
        net.join_test_process()
        for number, (spec, name) in enumerate(((SCHOOL, "a"), (SOCIAL, "b"), (BUP, "c")), 1):
            ns = net.add_host(name, number)
            address = f"{SUBNET}.{number}"
            directory = tmp_path / spec[0]
            barnplan(
                "init",
                str(directory),
                "--id",
                spec[0],
                "--agency-name",
                spec[1],
                "--kind",
                spec[2],
                "--host",
                address,
                "--port",
                "8400",
            )
            node = HostNode(directory, spec[0], 8400)
            node.namespace = ns
            node.address = address
            node.tokens = {}
            for user, role in (("lead", "lead"), ("prof", "professional")):
                out = barnplan(
                    "users", "add", user, "--name", role, "--role", role, "--dir", str(directory)
                ).stdout
                node.tokens[user] = out.split("token: ")[1].strip()
            nodes.append(node)
        for node in nodes:
            node.start()
        run(trust_all(list(nodes)))
        yield net, nodes
    finally:
        for node in nodes:
            node.stop()
        net.remove()


def test_a_host_cut_off_during_a_revocation_catches_up_when_its_link_returns(
    hosts: tuple[Network, list[HostNode]],
) -> None:
    net, nodes = hosts
    school, social, bup = nodes
    assert school.url == f"http://{SUBNET}.1:8400"
    plan_id = plan_everyone_shares(list(nodes))
    consent_id = new_consent(list(nodes), plan_id)
    net.cut("c")  # BUP's host loses its network; its process keeps running
    status, _ = social.api("POST", f"/consents/{consent_id}/revoke", "prof")
    assert status == 201

    def attempts() -> int:
        listed = json.loads(barnplan("outbox", "--json", "--dir", str(social.directory)).stdout)
        return max((int(item["attempts"]) for item in listed), default=0)

    # until notices to BUP have failed and backed off twice
    wait_until(lambda: attempts() >= 2, timeout=30, what="two tries of the notice to BUP")
    net.restore("c")
    # BUP has not heard yet: it still releases, until a retry or traffic from social arrives

    def refused() -> bool:
        released, reasons = ask_signed(school, bup, plan_id, consent_id, CATEGORY[bup.node_id])
        return released == 0 and reasons == ["consent_revoked"]

    wait_until(refused, timeout=90, what="BUP catches up after its link came back", interval=0.5)
    backlog = barnplan("outbox", "--json", "--dir", str(social.directory)).stdout
    assert backlog.strip() == "[]"
