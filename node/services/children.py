"""Children as this agency knows them. Identity stays on this node."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.personnummer import PersonnummerError, normalize_personnummer
from ..store import records
from ..store.tables import Child
from .errors import Conflict, InvalidInput


async def add_child(engine: AsyncEngine, name: str, personnummer: str, now: datetime) -> Child:
    errors: dict[str, str] = {}
    if not name.strip() or len(name) > 200:
        errors["name"] = "required, at most 200 characters"
    try:
        pnr = normalize_personnummer(personnummer, now.date())
    except PersonnummerError as exc:
        errors["personnummer"] = str(exc)
        pnr = ""
    if errors:
        raise InvalidInput("the child could not be saved", errors)
    child = Child(child_id=str(uuid.uuid4()), name=name.strip(), personnummer=pnr, created_at=now)
    existing = await records.insert_new_child(engine, child)
    if existing is not None:
        # one record per child: an invitation links automatically only to a single match
        raise Conflict(
            f"this personnummer is already recorded, as child {existing}",
            {"personnummer": f"already recorded, as child {existing}"},
        )
    return child
