"""Which message bodies can be validated strictly as JSON straight from the parsed value.

SPEC.md §5.3 step 18 validates a body strictly *as JSON* (``"5"`` is not an integer, ``5.0`` is not
an integer, ``true`` is not a number): pydantic's JSON mode with ``strict=True``. Given the parsed
body, that means encoding it and letting pydantic parse it again: on a 2 KB consent statement
about 10 µs, against under 2 µs for validating the parsed body directly.

For a schema built only from the types allowed below, pydantic's strict *Python* mode accepts and
refuses exactly the same parsed JSON values and builds the same model, so the parsed body can be
handed over as it is. The types where the two modes differ make a schema take the JSON route:
enums, dates, times, UUIDs, bytes, decimals, floats, tuples and sets (strict Python wants Python
objects or exact types where JSON has strings, numbers or arrays), unions (they choose by mode),
validator functions (they may look at the mode), aliases and custom model hooks (kept out to keep
the argument short). The one exception is a *no-info after*-validator named in
``MODE_BLIND_AFTER``: it is handed the value its inner schema produced (the same in both modes,
by the argument above) and cannot see the mode, so it decides alike in both (the timestamp's
"is this a real moment" check).
One difference is left, on purpose: strict Python mode takes integers beyond 64 bits, which JSON
mode never sees because they cannot be encoded — a verifier refuses them earlier, when the
signing input has no canonical form (step 14).

Two consequences for callers: the input must hold only JSON's own types (what a JSON parser
returns), and values under ``Any`` are the parsed objects themselves, not copies.
``tests/protocol/test_strict_json.py`` checks the two modes agree on every message type that
qualifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

# Every schema node may carry these; they do not change what is accepted.
_ANY_NODE = frozenset({"type", "ref", "metadata", "serialization"})

# Node type → the other keys it may have; a key not listed (a constraint or option this module
# has not been reasoned about) makes the schema take the JSON route.
_ALLOWED: Mapping[str, frozenset[str]] = {
    "any": frozenset(),
    "bool": frozenset({"strict"}),
    "int": frozenset({"ge", "gt", "le", "lt", "multiple_of", "strict"}),
    "str": frozenset({"pattern", "max_length", "min_length", "strict"}),
    "literal": frozenset({"expected"}),
    "list": frozenset({"items_schema", "min_length", "max_length", "strict"}),
    "dict": frozenset({"keys_schema", "values_schema", "min_length", "max_length", "strict"}),
    "nullable": frozenset({"schema", "strict"}),
    "default": frozenset(
        {"schema", "default", "default_factory", "default_factory_takes_data", "validate_default"}
    ),
    "model": frozenset({"cls", "schema", "config", "custom_init", "root_model", "post_init"}),
    "model-fields": frozenset({"fields", "model_name", "computed_fields", "extra_behavior"}),
    "model-field": frozenset({"schema", "frozen", "serialization_exclude"}),
    "definitions": frozenset({"schema", "definitions"}),
    "definition-ref": frozenset({"schema_ref"}),
    "function-after": frozenset({"function", "schema"}),
}
_MODEL_CONFIG = frozenset({"title", "extra_fields_behavior"})
# after-validators known to look at nothing but their value (by qualified name, so that this
# module needs no import of the models it judges)
MODE_BLIND_AFTER = frozenset({"protocol.models._check_time"})
_CHILDREN = ("schema", "items_schema", "keys_schema", "values_schema")


def python_mode_is_json_mode(model: type[BaseModel]) -> bool:
    """True when strict Python-mode validation of parsed JSON equals strict JSON-mode validation.

    Walks the model's core schema (with its definitions); any node type or option outside the
    allow-list above answers False.
    """
    return _check(model.__pydantic_core_schema__, {}, set())


def _check(node: Any, definitions: dict[str, Any], seen: set[str]) -> bool:
    if not isinstance(node, Mapping):
        return False
    kind = node.get("type")
    allowed = _ALLOWED.get(kind) if isinstance(kind, str) else None
    if allowed is None or not set(node) <= allowed | _ANY_NODE:
        return False
    if kind == "literal" and not all(type(v) in (str, bool) for v in node["expected"]):
        return False
    if kind == "function-after":
        function = node["function"]
        name = f"{function['function'].__module__}.{function['function'].__qualname__}"
        return (
            function.get("type") == "no-info"
            and name in MODE_BLIND_AFTER
            and _check(node["schema"], definitions, seen)
        )
    if kind == "model" and (
        node.get("custom_init")
        or node.get("root_model")
        or node.get("post_init") is not None
        or not set(node.get("config", {})) <= _MODEL_CONFIG
    ):
        return False
    if kind == "model-fields":
        if node.get("computed_fields"):
            return False
        return all(_check(field, definitions, seen) for field in node["fields"].values())
    if kind == "definitions":
        for entry in node["definitions"]:
            if not isinstance(entry, Mapping) or "ref" not in entry:
                return False
            definitions[entry["ref"]] = entry
    if kind == "definition-ref":
        ref = node["schema_ref"]
        if ref in seen:
            return True  # a recursive model: its nodes are being checked further up
        seen.add(ref)
        return ref in definitions and _check(definitions[ref], definitions, seen)
    return all(_check(node[child], definitions, seen) for child in _CHILDREN if child in node)
