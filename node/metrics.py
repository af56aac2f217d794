"""Prometheus metrics, one registry per node (no module-level state; tests get their own).

Every label a peer's message can influence takes its values from a closed list: message types
from the protocol's registry, categories and reasons from its code lists; anything else counts as
``other``. A label value is a time series kept for the life of the process, so an open label
would let anyone who can reach the federation endpoint grow the node's memory and every scrape
with made-up types (two series per value: ``_total`` and ``_created``).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from protocol.codes import Category
from protocol.errors import Reason
from protocol.messages import MESSAGE_TYPES, OTHER_TYPE

from .domain.witness_rule import Problem
from .store.log_counts import LogCounts
from .version import Build

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OTHER = OTHER_TYPE
TYPES = frozenset(MESSAGE_TYPES)
CATEGORIES = frozenset(c.value for c in Category)
# a released category is counted with the reason "" (nothing withheld it)
REASONS = frozenset(r.value for r in Reason) | {""}
WITNESS_PROBLEMS = frozenset(p.value for p in Problem) | {"bad_declaration"}


class BoundedCounter:
    """A labelled ``Counter`` whose label values are kept to closed lists: a value not in its
    label's list is counted as ``other``. ``None`` for a label leaves it open (for values only
    this node's own code chooses, such as outcomes)."""

    def __init__(self, counter: Counter, *allowed: Collection[str] | None) -> None:
        self._counter = counter
        self._allowed = allowed

    def labels(self, *values: str) -> Counter:
        bounded = (
            value if allowed is None or value in allowed else OTHER
            for value, allowed in zip(values, self._allowed, strict=True)
        )
        return self._counter.labels(*bounded)


class Metrics:
    """The node's counters and histograms. Labels carry types, outcomes and reasons only."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, build: Build) -> None:
        self.registry = CollectorRegistry()
        Info(
            "barnplan_build",
            "The release this node runs and its store schema revision",
            registry=self.registry,
        ).info({"version": build.version, "schema": build.schema})
        self.requests = BoundedCounter(
            Counter(
                "barnplan_federation_requests_total",
                "Inbound federation messages",
                ["type", "outcome"],
                registry=self.registry,
            ),
            TYPES,
            None,
        )
        self.release_decisions = BoundedCounter(
            Counter(
                "barnplan_release_decisions_total",
                "Per-category release decisions",
                ["category", "decision", "reason"],
                registry=self.registry,
            ),
            CATEGORIES,
            None,
            REASONS,
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
        self.outbound = BoundedCounter(
            Counter(
                "barnplan_outbound_requests_total",
                "Requests to peers",
                ["type", "outcome"],
                registry=self.registry,
            ),
            TYPES,
            None,
        )
        self.catchup_skipped = Counter(
            "barnplan_catchup_revocations_skipped_total",
            "Revocations a peer listed in catch-up that this node did not apply",
            ["reason"],
            registry=self.registry,
        )

        self.document_fetches = Counter(
            "barnplan_peer_document_fetches_total",
            "Fetches of a peer's node document after its key was unknown or ended (SPEC §4.6)",
            ["outcome"],  # applied, unchanged, refused (§4.6), failed (unreachable, not §4.4)
            registry=self.registry,
        )

        self.witness_refusals = BoundedCounter(
            Counter(
                "barnplan_witness_refusals_total",
                "Peers' checkpoints this node refused to witness: not a consistent extension "
                "of what it witnessed of their logs (a rewound or rewritten log), or a bad "
                "restore declaration (SPEC §7.8)",
                ["reason"],
                registry=self.registry,
            ),
            WITNESS_PROBLEMS,
        )
        self.witness_restores = Counter(
            "barnplan_witness_restores_accepted_total",
            "Peers' restore declarations this node accepted as a witness (SPEC §7.8)",
            registry=self.registry,
        )

        self.log_verified_ok = Gauge(
            "barnplan_log_verification_ok",
            "1 if the last 'barnplan log verify' found the exchange log intact, 0 if it failed",
            registry=self.registry,
        )
        self.log_verified_at = Gauge(
            "barnplan_log_verification_timestamp_seconds",
            "When the exchange log was last verified (Unix time; absent: never)",
            registry=self.registry,
        )

        self.logged = BoundedCounter(
            Counter(
                "barnplan_exchange_log_messages_total",
                "Messages in the exchange log by direction, type and outcome, whichever process "
                "of this node sent or received them (CLI commands included)",
                ["direction", "type", "outcome"],
                registry=self.registry,
            ),
            ("in", "out"),
            TYPES,
            None,
        )
        self.log_entries = Gauge(
            "barnplan_exchange_log_entries",
            "Entries in the exchange log (its head's sequence number)",
            registry=self.registry,
        )
        self.log_counted_to = 0  # the last log entry counted into ``logged``

    def count_log(self, counts: LogCounts) -> None:
        """Add the log entries after the last counted ones (``store.log_counts``); counts
        read from an older cursor (a concurrent scrape got there first) are dropped."""
        if counts.after != self.log_counted_to:
            return
        for direction, message_type, outcome, n in counts.groups:
            self.logged.labels(direction, message_type, outcome).inc(n)
        self.log_counted_to = counts.head
        self.log_entries.set(counts.head)

    def set_last_verification(self, ok: bool, at: datetime) -> None:
        """From the store's record of the last ``log verify`` (any process ran it)."""
        self.log_verified_ok.set(1 if ok else 0)
        self.log_verified_at.set(at.timestamp())

    def render(self) -> bytes:
        return generate_latest(self.registry)
