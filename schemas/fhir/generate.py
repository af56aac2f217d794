"""Write the FHIR conformance resources the export refers to, from ``node.services.fhir``.

The FHIR export (``node/services/fhir.py``) writes extensions, code systems and identifier
systems of its own under ``https://barnplan.se/fhir``. A receiving system (or a validator) needs
their definitions, so each is published here as an R4 JSON resource whose canonical URL is the
one the export writes: a StructureDefinition per extension, a CodeSystem per code list and a
NamingSystem per identifier system. ``--check`` (run by tests/node/test_fhir.py) fails when the
files drift from the code.

    python schemas/fhir/generate.py           # (re)write schemas/fhir/*.json
    python schemas/fhir/generate.py --check   # exit 1 naming the files that differ
"""

from __future__ import annotations

import argparse
import html
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
FHIR_VERSION = "4.0.1"
VERSION = "1.0.0"
DATE = "2026-12-04"  # when these definitions were published; change with their content
PUBLISHER = "barnplan"
XHTML = "http://www.w3.org/1999/xhtml"


def load(module: str) -> ModuleType:
    """Import ``module`` from this checkout, not from whatever is installed."""
    if sys.path[:1] != [str(ROOT)]:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(module)


def narrative(title: str, description: str) -> dict[str, str]:
    body = "".join(f"<p>{html.escape(t)}</p>" for t in (title, description))
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{body}</div>'}


def common(kind: str, url: str, name: str, title: str, description: str) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "id": url.rsplit("/", 1)[1],
        "text": narrative(title, description),
        "url": url,
        "version": VERSION,
        "name": name,
        "title": title,
        "status": "active",
        "experimental": False,
        "date": DATE,
        "publisher": PUBLISHER,
        "description": description,
    }


def code_system(
    url: str, name: str, title: str, description: str, labels: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    """A complete code system: display in Swedish (the export's language), English as a
    designation."""
    return {
        **common("CodeSystem", url, name, title, description),
        "caseSensitive": True,
        "content": "complete",
        "count": len(labels),
        "concept": [
            {
                "code": code,
                "display": sv,
                "designation": [{"language": "en", "value": en}],
            }
            for code, (sv, en) in labels.items()
        ],
    }


def naming_system(url: str, name: str, description: str) -> dict[str, Any]:
    return {
        "resourceType": "NamingSystem",
        "id": url.rsplit("/", 1)[1],
        "text": narrative(name, description),
        "name": name,
        "status": "active",
        "kind": "identifier",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": description,
        "uniqueId": [{"type": "uri", "value": url, "preferred": True}],
    }


def extension(
    url: str, name: str, title: str, description: str, context: str, elements: list[Any]
) -> dict[str, Any]:
    return {
        **common("StructureDefinition", url, name, title, description),
        "fhirVersion": FHIR_VERSION,
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": context}],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {"element": elements},
    }


def element(element_id: str, **rules: Any) -> dict[str, Any]:
    """A differential element; its path is its id without slice names
    (``Extension.extension:keyId.url`` -> ``Extension.extension.url``)."""
    path = ".".join(part.split(":")[0] for part in element_id.split("."))
    return {"id": element_id, "path": path, **rules}


def simple_extension(
    url: str, name: str, title: str, description: str, context: str, value_type: str
) -> dict[str, Any]:
    return extension(
        url,
        name,
        title,
        description,
        context,
        [
            element("Extension", short=title, definition=description, min=0, max="1"),
            element("Extension.extension", max="0"),
            element("Extension.url", fixedUri=url),
            element("Extension.value[x]", min=1, type=[{"code": value_type}]),
        ],
    )


def complex_extension(
    url: str,
    name: str,
    title: str,
    description: str,
    context: str,
    parts: list[tuple[str, str, str]],
) -> dict[str, Any]:
    """An extension of required sub-extensions, each (name, value type, definition)."""
    elements = [
        element("Extension", short=title, definition=description, min=0, max="1"),
        element(
            "Extension.extension",
            slicing={"discriminator": [{"type": "value", "path": "url"}], "rules": "closed"},
            min=len(parts),
        ),
    ]
    for part, value_type, definition in parts:
        base = f"Extension.extension:{part}"
        elements += [
            element(base, sliceName=part, short=definition, definition=definition, min=1, max="1"),
            element(f"{base}.extension", max="0"),
            element(f"{base}.url", fixedUri=part),
            element(f"{base}.value[x]", min=1, type=[{"code": value_type}]),
        ]
    elements += [element("Extension.url", fixedUri=url), element("Extension.value[x]", max="0")]
    return extension(url, name, title, description, context, elements)


def resources() -> list[dict[str, Any]]:
    fhir, codes = load("node.services.fhir"), load("protocol.codes")
    labels = codes.LABELS
    return [
        complex_extension(
            fhir.SIGNATURE_EXTENSION,
            "FragmentSignature",
            "Fragment signature as verified by the lead node",
            "What the lead node verified about the Ed25519 signature of the plan fragment this "
            "Provenance describes. The signature bytes themselves are not part of the shared "
            "plan and are not exported.",
            "Provenance",
            [
                ("algorithm", "code", "Signature algorithm (Ed25519)."),
                ("keyId", "string", "Id of the origin node's key that made the signature."),
                ("verified", "boolean", "Whether the lead node verified the signature."),
                ("verifiedBy", "string", "Node id of the node that verified it (the lead)."),
            ],
        ),
        simple_extension(
            fhir.REVOKED_EXTENSION,
            "ConsentRevoked",
            "When the consent was revoked",
            "The time the family's withdrawal of this consent was recorded. A revocation is "
            "final: the consent stays inactive.",
            "Consent",
            "dateTime",
        ),
        code_system(
            fhir.INDICATOR_SYSTEM,
            "WellbeingIndicator",
            "SHANARRI wellbeing indicators",
            "The eight GIRFEC wellbeing indicators a child's plan is arranged by.",
            labels["indicator"],
        ),
        code_system(
            fhir.PURPOSE_SYSTEM,
            "PlanPurpose",
            "Purpose of a shared plan",
            "Why the plan exists and why its information is shared.",
            labels["purpose"],
        ),
        code_system(
            fhir.CATEGORY_SYSTEM,
            "InformationCategory",
            "Information categories",
            "The categories of information a family's consent lets an agency release.",
            labels["category"],
        ),
        code_system(
            fhir.AGENCY_KIND_SYSTEM,
            "AgencyKind",
            "Kinds of agency",
            "The kind of agency that runs a barnplan node.",
            labels["agency_kind"],
        ),
        code_system(
            fhir.PARTICIPANT_STATUS_SYSTEM,
            "ParticipantStatus",
            "How a participating agency answered an assembly",
            "The status of one participant when the lead node assembled the shared plan: "
            "whether its content is included, withheld, or missing because it did not answer.",
            fhir.PARTICIPANT_STATUS,
        ),
        code_system(
            fhir.LIST_SYSTEM,
            "ListKind",
            "Lists in the export",
            "What a List in the export holds.",
            fhir.LIST_KINDS,
        ),
        naming_system(
            fhir.NODE_SYSTEM, "BarnplanNodeId", "A barnplan node's id (a DNS-style name)."
        ),
        naming_system(
            fhir.CAREPLAN_SYSTEM,
            "BarnplanPlanConsent",
            "A shared plan under one consent: <plan id>/<consent id>. Each consent of a plan "
            "has a CarePlan of its own, so a revoked one never becomes active again.",
        ),
        naming_system(
            fhir.CONSENT_SYSTEM, "BarnplanConsentId", "The id of a signed consent statement."
        ),
        naming_system(
            fhir.FRAGMENT_SYSTEM, "BarnplanFragmentId", "The id of a signed plan fragment."
        ),
        naming_system(
            fhir.PROFESSIONAL_SYSTEM,
            "BarnplanProfessional",
            "A professional as <node id>/u/<user id>: an id local to the node, never a "
            "personal identity number.",
        ),
        naming_system(
            fhir.CONSENTER_SYSTEM,
            "BarnplanConsenter",
            "A person who gave consent, by a reference local to the plan's consent statement.",
        ),
    ]


def file_name(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


def generate() -> dict[str, str]:
    return {file_name(r): json.dumps(r, indent=2, ensure_ascii=False) + "\n" for r in resources()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any file would change")
    args = parser.parse_args(argv)
    files = generate()
    present = {p.name for p in OUT.glob("*.json")}
    stale = sorted(present - set(files))
    changed = sorted(
        n for n, text in files.items() if not (OUT / n).is_file() or (OUT / n).read_text() != text
    )
    if args.check:
        for name in changed + stale:
            print(f"differs: {OUT / name}", file=sys.stderr)
        if changed or stale:
            print("run: python schemas/fhir/generate.py", file=sys.stderr)
            return 1
        print(f"{len(files)} FHIR definitions up to date in {OUT}")
        return 0
    for name in changed:
        (OUT / name).write_text(files[name], encoding="utf-8", newline="\n")
    for name in stale:
        (OUT / name).unlink()
    print(f"{len(files)} FHIR definitions, {len(changed) + len(stale)} changed, in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
