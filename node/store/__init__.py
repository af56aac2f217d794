"""Persistence: SQLModel tables, an async engine over SQLite or PostgreSQL, and migrations."""
