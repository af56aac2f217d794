"""What the envelope layer costs on top of the Ed25519 signature it carries.

Every message between nodes is signed once and verified once, and Ed25519 verification is the
main cost of a message (DESIGN.md §9). The goal is that everything else the envelope does —
body validation, RFC 8785 canonicalization on both sides, parsing with duplicate-key and depth
checks, timestamp and key checks, replay memory — costs no more than the cryptography itself:
`envelope_vs_raw` = (raw Ed25519 sign + verify of the same canonical bytes) / (`sign_envelope` +
`verify_envelope`) should be at least 0.5. The raw figures use the primitive the product signs
with, libsodium through PyNaCl (``protocol.keys``); OpenSSL's verify through ``cryptography`` is
timed beside it (`raw_verify_openssl_us`) to show what that choice saves.

The message is a realistic ~2 KB `consent.statement`: a lead node forwarding a signed consent
statement with eight grants. Each timed pair signs a fresh envelope (new message id) and verifies
an equally fresh one from bytes, the way a node receives it, with a replay store, so nothing is a
replay. The verified messages are signed and encoded before the clock starts, because encoding to
bytes is the sending node's transport work, not the envelope's; it is reported on its own as
`envelope_encode_us`. Raw figures use pre-loaded key objects: the floor no envelope code can beat.
All contenders are timed interleaved in the same run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import nacl.signing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.clock import ManualClock
from protocol.documents import sign_consent
from protocol.envelope import MemorySeenIds, StaticKeyRing, sign_envelope, verify_envelope
from protocol.keys import SigningKey
from protocol.signing import signing_input

from .harness import BenchmarkError, Figure, RunConfig, paired_ratio, time_interleaved

LEAD = "socialtjansten.goteborg.se"
PEER = "bup.vgregion.se"
# Fixed seeds: the benchmark signs the same bytes on every machine, so runs compare.
SEED_LEAD = bytes(range(32))
MESSAGE_TYPE = "consent.statement"
GOAL = 0.5
NOW = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


def consent_statement(key: SigningKey) -> dict[str, Any]:
    """A signed consent statement shaped like a real one: two guardians, eight agencies' grants."""
    agencies = [
        "skola.goteborg.se",
        "elevhalsan.goteborg.se",
        "bup.vgregion.se",
        "vardcentral-angered.vgregion.se",
        "polisen.se",
        "fritid.goteborg.se",
        "habilitering.vgregion.se",
        LEAD,
    ]
    categories = [
        ["education"],
        ["education", "health"],
        ["health", "mental_health"],
        ["health"],
        ["police"],
        ["leisure"],
        ["health", "family"],
        ["social", "family"],
    ]
    return sign_consent(
        {
            "consent_id": str(uuid.UUID(int=1)),
            "plan_id": str(uuid.UUID(int=2)),
            "lead": key.node_id,
            "purpose": "sip",
            "required": [{"ref": "vh1", "role": "guardian"}, {"ref": "vh2", "role": "guardian"}],
            "given_by": [{"ref": "vh1", "role": "guardian"}, {"ref": "vh2", "role": "guardian"}],
            "grants": [
                {"from": source, "to": [a for a in agencies if a != source][:3], "categories": cats}
                for source, cats in zip(agencies, categories, strict=True)
            ],
            "valid_from": "2026-11-01T00:00:00Z",
            "valid_until": "2027-11-01T00:00:00Z",
            "evidence_ref": "journal/2026/IFO-4711/samtycke-1",
            "recorded_by": f"{key.node_id}/u/handlaggare_anna",
            "issued_at": "2026-11-01T10:15:00Z",
        },
        key,
    )


def encode(envelope: dict[str, Any]) -> bytes:
    """Wire bytes of an envelope: compact UTF-8 JSON, as a node puts it in a request body."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def run(config: RunConfig) -> list[Figure]:
    """Time envelope sign+verify against raw Ed25519 sign+verify of the same canonical bytes."""
    # A fixed clock, not the wall clock: messages signed up front must not expire however long
    # a run takes, and reading either clock costs about a microsecond.
    clock = ManualClock(NOW)
    key = SigningKey.from_seed(LEAD, SEED_LEAD, NOW - timedelta(days=30))
    ring = StaticKeyRing({LEAD: [key.public()]})
    body = {"statement": consent_statement(key)}

    def sign() -> dict[str, Any]:
        return sign_envelope(
            type=MESSAGE_TYPE, body=body, sender=LEAD, to=PEER, key=key, clock=clock
        )

    sample = sign()
    message = signing_input(sample)
    wire_size = len(encode(sample))
    checked = verify_envelope(
        encode(sample), keyring=ring, audience=PEER, clock=clock, seen=MemorySeenIds()
    )
    if checked.type != MESSAGE_TYPE:  # a guard that we time what we think we time, not a test
        raise BenchmarkError(f"verified a {checked.type!r}, expected {MESSAGE_TYPE!r}")

    raw_private = nacl.signing.SigningKey(SEED_LEAD)
    raw_public = nacl.signing.VerifyKey(key.public_raw)
    raw_signature = raw_private.sign(message).signature
    openssl_public = Ed25519PublicKey.from_public_bytes(key.public_raw)

    # Many short repeats rather than a few long ones: the ratio is taken per repeat, and short
    # back-to-back blocks are less likely to straddle a burst of load on a shared machine.
    iterations = config.pick(full=150, quick=10)
    repeats = config.pick(full=21, quick=3)
    warmup = config.pick(full=100, quick=5)

    # verify_envelope runs from bytes, as a node receives them, and each call needs a fresh
    # message (a repeat would be a replay). Encoding to bytes is the node's transport work, not
    # the envelope's, so messages are signed and encoded up front, outside the clock; the pair
    # then times a fresh sign_envelope plus verify_envelope of an equally fresh prepared message.
    per_contender = warmup + iterations * repeats
    prepared_pair: Iterator[bytes] = iter([encode(sign()) for _ in range(per_contender)])
    prepared_verify: Iterator[bytes] = iter([encode(sign()) for _ in range(per_contender)])
    seen_pair = MemorySeenIds()
    seen_verify = MemorySeenIds()

    def envelope_pair() -> None:
        sign()
        verify_envelope(
            next(prepared_pair), keyring=ring, audience=PEER, clock=clock, seen=seen_pair
        )

    def envelope_verify() -> None:
        verify_envelope(
            next(prepared_verify), keyring=ring, audience=PEER, clock=clock, seen=seen_verify
        )

    def envelope_encode() -> None:
        encode(sample)

    def raw_pair() -> None:
        raw_public.verify(message, raw_private.sign(message).signature)

    def raw_verify() -> None:
        raw_public.verify(message, raw_signature)

    def openssl_verify() -> None:
        openssl_public.verify(raw_signature, message)

    contenders: dict[str, Callable[[], object]] = {
        "envelope_pair": envelope_pair,
        "raw_pair": raw_pair,
        "envelope_verify": envelope_verify,
        "raw_verify": raw_verify,
        "openssl_verify": openssl_verify,
        "envelope_encode": envelope_encode,
    }
    timings = time_interleaved(contenders, iterations=iterations, repeats=repeats, warmup=warmup)
    us = {name: timing.median * 1e6 for name, timing in timings.items()}
    how = f"median of {repeats} repeats × {iterations} calls"
    return [
        Figure(
            name="envelope_vs_raw",
            value=paired_ratio(timings["raw_pair"], timings["envelope_pair"]),
            unit="ratio",
            description=(
                "raw Ed25519 sign + verify time divided by sign_envelope + verify_envelope time "
                "(envelope_sign_verify_us) for the same message: the median over repeats of the "
                "ratio of back-to-back blocks; 1.0 would mean the envelope adds nothing"
            ),
            goal="the envelope adds at most the cost of the cryptography itself",
            threshold=GOAL,
            higher_is_better=True,
        ),
        Figure(
            name="envelope_sign_verify_us",
            value=us["envelope_pair"],
            unit="µs",
            description=(
                f"sign_envelope of a fresh {wire_size}-byte {MESSAGE_TYPE} (dict body, validated) "
                "+ verify_envelope of an equally fresh one from bytes with a replay store; "
                f"wire encoding excluded, see envelope_encode_us ({how})"
            ),
        ),
        Figure(
            name="raw_sign_verify_us",
            value=us["raw_pair"],
            unit="µs",
            description=(
                f"Ed25519 sign + verify (libsodium) of the envelope's {len(message)} canonical "
                f"bytes with pre-loaded key objects ({how})"
            ),
        ),
        Figure(
            name="envelope_verify_us",
            value=us["envelope_verify"],
            unit="µs",
            description=(
                f"verify_envelope alone, from bytes, of a fresh pre-signed envelope ({how})"
            ),
        ),
        Figure(
            name="raw_verify_us",
            value=us["raw_verify"],
            unit="µs",
            description=f"Ed25519 verify alone of the same canonical bytes, libsodium ({how})",
        ),
        Figure(
            name="raw_verify_openssl_us",
            value=us["openssl_verify"],
            unit="µs",
            description=(
                "the same verify through cryptography (OpenSSL), which the product does not use "
                f"for signatures: what libsodium saves per message ({how})"
            ),
        ),
        Figure(
            name="envelope_encode_us",
            value=us["envelope_encode"],
            unit="µs",
            description=(
                "encoding the signed envelope to compact UTF-8 JSON bytes, the sending node's "
                f"transport work on top of envelope_sign_verify_us ({how})"
            ),
        ),
        Figure(
            name="envelope_bytes",
            value=float(wire_size),
            unit="bytes",
            description="size on the wire of the benchmarked envelope (compact UTF-8 JSON)",
        ),
    ]
