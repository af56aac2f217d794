"""Work a holder need not repeat on every fragment request: signing and parsing, never deciding.

A fragment object is signed over its plan, consent, version and content and has no freshness
(SPEC.md §6.3), so the object signed the first time a version is released under a consent can be
sent again for every later request under that consent, instead of one Ed25519 signature per
fragment per request. A stored consent statement never changes under its id (revocation is kept
apart), so its parsed model can be reused too.

What is released is still decided per request, from the store, before either cache is consulted
(DESIGN.md invariants 2 and 4): the caches save signing and parsing, never a decision. Both are
bounded (least recently used goes first) and live on the node object, one per process.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from protocol.documents import parse_document
from protocol.keys import SigningKey
from protocol.models import ConsentStatement

from ..domain.json_object import JsonObject
from ..domain.records import FragmentRecord
from ..domain.statement_json import StatementJson
from .fragments import signed_fragment

DEFAULT_SIZE = 4096


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A small least-recently-used map."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class ReleaseCache:
    """Signed fragment objects and parsed consent statements, reused across requests."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        # by (fragment id, version, consent id, key id)
        self._fragments: _Lru[tuple[str, int, str, str], JsonObject] = _Lru(size)
        # by the statement's stored text, or (parsed) by its consent id with the object it
        # was parsed from
        self._texts: _Lru[str, ConsentStatement] = _Lru(size)
        self._parsed: _Lru[str, tuple[StatementJson, ConsentStatement]] = _Lru(size)
        # parsed fragment versions by (fragment id, version): a version never changes
        self.records: _Lru[tuple[str, int], FragmentRecord] = _Lru(size)

    def signed(
        self, record: FragmentRecord, consent_id: str, key: SigningKey, signed_at: str
    ) -> JsonObject:
        """The signed object for ``record`` under ``consent_id``: the one signed earlier for
        this version, consent and key, or a new one signed at ``signed_at``. A new key (after
        a rotation) or a new version means a new signature. The object was checked against the
        protocol's fragment model when it was signed; it must not be mutated."""
        cache_key = (record.fragment_id, record.version, consent_id, key.key_id)
        found = self._fragments.get(cache_key)
        if found is None:
            found = signed_fragment(record, consent_id, key, signed_at)
            self._fragments.put(cache_key, found)
        return found

    def consent(self, raw: StatementJson | str) -> ConsentStatement:
        """A stored statement (as JSON text, or parsed) as a model; parsed once per content,
        the one strict way every signed object is read (``parse_document``)."""
        if isinstance(raw, str):
            found = self._texts.get(raw)
            if found is None:
                found = parse_document(ConsentStatement, raw)
                self._texts.put(raw, found)
            return found
        consent_id = raw["consent_id"]
        pair = self._parsed.get(consent_id)
        if pair is not None and pair[0] == raw:
            return pair[1]
        model = parse_document(ConsentStatement, raw)
        self._parsed.put(consent_id, (raw, model))
        return model
