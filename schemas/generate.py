"""Generate the JSON Schemas (2020-12) and code lists in ``schemas/`` from protocol's models.

The files are committed so that a third party can re-implement the protocol from SPEC.md and
``schemas/`` alone; ``--check`` (run by tests/schemas) fails when they drift from the models.

    python schemas/generate.py                 # (re)write schemas/
    python schemas/generate.py --check         # exit 1 naming the files that differ
    python schemas/generate.py --out DIR ...   # the same against another directory
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

ROOT = Path(__file__).resolve().parents[1]
DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://barnplan.se/schemas/v1/"
# file name (without .json) -> model in protocol.models; message bodies come from MESSAGE_TYPES
RECORDS = {
    "envelope": "Envelope",
    "node_document": "NodeDocument",
    "fragment": "Fragment",
    "consent_statement": "ConsentStatement",
    "checkpoint": "Checkpoint",
    "witness": "Witness",
    "restore": "RestoreDeclaration",
}
Labels = dict[str, dict[str, dict[str, str]]]


def load(module: str) -> ModuleType:
    """Import ``module`` from this checkout, not from whatever ``protocol`` is installed."""
    if sys.path[:1] != [str(ROOT)]:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(module)


# Every pattern matches the whole string. ``$`` alone does not say so in every dialect: in
# Python's ``re`` (what the ``jsonschema`` package uses), .NET and Java it also matches before a
# final line feed, so "<uuid>\n" would pass. "Nothing follows" says it in all of them, and means
# the same as ``$`` in ECMA-262, JSON Schema's own dialect (``\Z`` is not valid there).
END_OF_TEXT = r"(?![\s\S])"


class WireSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, with the protocol's two rules spelled out for other validators:
    patterns anchored at the true end of the string, and no ``"default": null`` for an optional
    member (it is absent or has a value; ``null`` is never valid, SPEC.md §5.2)."""

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        pattern = json_schema.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("$"):
            json_schema["pattern"] = pattern + END_OF_TEXT
        return json_schema

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        if schema.get("default", ...) is None:
            json_schema.pop("default", None)
        return json_schema


def model_schema(model: Any, name: str, comment: str) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(
        by_alias=True, mode="validation", schema_generator=WireSchema
    )
    return {
        "$schema": DIALECT,
        "$id": f"{BASE_ID}{name}.json",
        "$comment": f"{comment}; {GENERATED_MARK}, do not edit by hand",
        **schema,
    }


def enum_for(codes: ModuleType, list_name: str) -> type[Enum] | None:
    """The enum behind a code list by naming rule: ``agency_kind`` -> ``AgencyKind``."""
    found = getattr(codes, "".join(part.title() for part in list_name.split("_")), None)
    return found if isinstance(found, type) and issubclass(found, Enum) else None


def code_lists() -> Labels:
    """Every code list of protocol/codes.py and every Reason, each code with its sv/en labels."""
    codes, errors = load("protocol.codes"), load("protocol.errors")
    lists: dict[str, tuple[type[Enum] | None, dict[str, tuple[str, str]]]] = {
        name: (enum_for(codes, name), labels) for name, labels in codes.LABELS.items()
    }
    lists["reason"] = (errors.Reason, codes.REASON_LABELS)
    result: Labels = {}
    problems: list[str] = []
    for name, (enum, labels) in lists.items():
        values = [str(member.value) for member in enum] if enum is not None else list(labels)
        problems += [f"{name}.{v} has no labels" for v in values if v not in labels]
        problems += [f"{name}.{v} is labelled but not a code" for v in labels if v not in values]
        result[name] = {v: {"sv": labels[v][0], "en": labels[v][1]} for v in values if v in labels}
    if problems:
        raise SystemExit("protocol/codes.py: " + "; ".join(problems))
    return result


def render(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """Every generated file as {path relative to the schemas directory: exact text}."""
    models, messages = load("protocol.models"), load("protocol.messages")
    files: dict[str, str] = {}
    for name, class_name in RECORDS.items():
        comment = f"protocol.models.{class_name}"
        files[f"{name}.json"] = render(model_schema(getattr(models, class_name), name, comment))
    for type_name, model in sorted(messages.MESSAGE_TYPES.items()):
        name = f"messages/{type_name}"
        comment = f"body of a {type_name!r} message, protocol.messages.{model.__name__}"
        files[f"{name}.json"] = render(model_schema(model, name, comment))
    files["codes.json"] = render(code_lists())
    return files


GENERATED_MARK = "generated by schemas/generate.py"


def existing(out: Path) -> set[str]:
    """Generated files already under ``out``; hand-written schemas (no mark) are left alone."""
    if not out.is_dir():
        return set()
    return {
        p.relative_to(out).as_posix()
        for p in out.rglob("*.json")
        if GENERATED_MARK in p.read_text(encoding="utf-8")
    }


def differing(files: dict[str, str], out: Path) -> list[str]:
    """Files that are missing, changed, or stale (no longer generated) under ``out``."""
    changed = {
        name
        for name, text in files.items()
        if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text
    }
    return sorted(changed | (existing(out) - set(files)))


def write(files: dict[str, str], out: Path) -> list[str]:
    """Bring ``out`` up to date: write changed files, delete stale ones; return what changed."""
    changes = differing(files, out)
    for name in changes:
        path = out / name
        if name in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[name], encoding="utf-8", newline="\n")
        else:
            path.unlink()
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any file would change")
    parser.add_argument("--out", type=Path, default=ROOT / "schemas", help="default: schemas/")
    args = parser.parse_args(argv)
    files = generate()
    if args.check:
        stale = differing(files, args.out)
        for name in stale:
            print(f"differs: {args.out / name}", file=sys.stderr)
        if stale:
            print("schemas are out of date; run: python schemas/generate.py", file=sys.stderr)
            return 1
        print(f"{len(files)} schema files up to date in {args.out}")
        return 0
    changes = write(files, args.out)
    for name in changes:
        print(f"{'wrote' if name in files else 'removed'} {args.out / name}")
    print(f"{len(files)} schema files, {len(changes)} changed, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
