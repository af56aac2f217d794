"""Prometheus metrics, one registry per node (no module-level state; tests get their own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The node's counters and histograms. Labels carry types, outcomes and reasons only."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "barnplan_federation_requests_total",
            "Inbound federation messages",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.release_decisions = Counter(
            "barnplan_release_decisions_total",
            "Per-category release decisions",
            ["category", "decision", "reason"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "barnplan_outbox_backlog", "Undelivered outbox notices", registry=self.registry
        )
        self.delivery_latency = Histogram(
            "barnplan_outbox_delivery_seconds",
            "Time from queuing a notice to its ack",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.assembly_latency = Histogram(
            "barnplan_assembly_seconds",
            "Time to assemble a shared plan",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.outbound = Counter(
            "barnplan_outbound_requests_total",
            "Requests to peers",
            ["type", "outcome"],
            registry=self.registry,
        )

        self.document_fetches = Counter(
            "barnplan_peer_document_fetches_total",
            "Fetches of a peer's node document after its key was unknown or ended (SPEC §4.6)",
            ["outcome"],  # applied, unchanged, refused (§4.6), failed (unreachable, not §4.4)
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
