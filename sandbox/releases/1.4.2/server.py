#!/usr/bin/env python3
"""App release 1.4.2: records with a title and a body (database schema 1)."""

from __future__ import annotations

import sqlite3
import sys

from appcore import Release, now, run


def create(db: sqlite3.Connection) -> None:
    """Create the schema-1 tables in an empty database."""
    db.execute(
        "CREATE TABLE records (id INTEGER PRIMARY KEY, title TEXT NOT NULL, "
        "body TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL)"
    )


def insert(db: sqlite3.Connection, title: str, body: str) -> int:
    """Insert one record and return its id."""
    cursor = db.execute(
        "INSERT INTO records (title, body, created_at) VALUES (?, ?, ?)", (title, body, now())
    )
    return int(cursor.lastrowid or 0)


RELEASE = Release(
    version="1.4.2",
    schema=1,
    create=create,
    insert=insert,
    columns=("id", "title", "body", "created_at"),
    migrations={},
)

if __name__ == "__main__":
    sys.exit(run(RELEASE))
