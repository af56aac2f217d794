"""Children as this agency knows them. Identity stays on this node."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.personnummer import PersonnummerError, normalize_personnummer
from ..errors import Conflict, FieldProblem, InvalidInput
from ..store import records
from ..store.tables import Child


async def add_child(engine: AsyncEngine, name: str, personnummer: str, now: datetime) -> Child:
    errors: dict[str, FieldProblem] = {}
    if not name.strip() or len(name) > 200:
        errors["name"] = FieldProblem(
            "required_max_length", "required, at most 200 characters", {"max_length": 200}
        )
    try:
        pnr = normalize_personnummer(personnummer, now.date())
    except PersonnummerError as exc:
        errors["personnummer"] = FieldProblem(exc.code, exc.message)
        pnr = ""
    if errors:
        raise InvalidInput("the child could not be saved", code="child_invalid", fields=errors)
    child = Child(child_id=str(uuid.uuid4()), name=name.strip(), personnummer=pnr, created_at=now)
    existing = await records.insert_new_child(engine, child)
    if existing is not None:
        # one record per child: an invitation links automatically only to a single match
        raise Conflict(
            f"this personnummer is already recorded, as child {existing}",
            code="child_exists",
            params={"child_id": existing},
            fields={
                "personnummer": FieldProblem(
                    "child_exists",
                    f"already recorded, as child {existing}",
                    {"child_id": existing},
                )
            },
        )
    return child
