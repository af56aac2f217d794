"""SQLModel tables of a node. Only this agency's own records live here (DESIGN.md invariant 1).

Times are stored as aware UTC datetimes; JSON documents as text exactly as received or signed,
so signatures over them can be re-checked later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive; we re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(nullable: bool = False, index: bool = False) -> Column:  # type: ignore[type-arg,unused-ignore]
    return Column(UTCDateTime(), nullable=nullable, index=index)


class OwnKey(SQLModel, table=True):
    """This node's signing keys: the current one and retired ones kept for old signatures."""

    __tablename__ = "own_key"

    key_id: str = Field(primary_key=True, max_length=300)
    public: str = Field(max_length=64)
    valid_from: datetime = Field(sa_column=utc_column())
    valid_until: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    file: str = Field(max_length=500)


class Peer(SQLModel, table=True):
    """A trusted peer node, recorded after an operator checked its key fingerprint."""

    __tablename__ = "peer"

    node_id: str = Field(primary_key=True, max_length=253)
    base_url: str = Field(max_length=500)
    agency_name: str = Field(max_length=200)
    agency_kind: str = Field(max_length=40)
    document: str = Field(sa_column=Column(Text, nullable=False))
    fingerprint: str = Field(max_length=64)
    added_at: datetime = Field(sa_column=utc_column())
    last_contact_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class SeenMessage(SQLModel, table=True):
    """Replay memory: ids of verified inbound envelopes, kept until they expire."""

    __tablename__ = "seen_message"

    sender: str = Field(primary_key=True, max_length=253)
    message_id: str = Field(primary_key=True, max_length=36)
    expires_at: datetime = Field(sa_column=utc_column(index=True))
