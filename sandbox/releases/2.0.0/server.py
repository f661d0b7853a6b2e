#!/usr/bin/env python3
"""App release 2.0.0: records gain a URL slug (database schema 2, migrated from schema 1).

From this release on the site name is a required setting: it no longer defaults.
"""

from __future__ import annotations

import re
import sqlite3
import sys

from appcore import Release, Settings, now, run


def slugify(title: str) -> str:
    """Turn a title into a lowercase, hyphen-separated URL slug."""
    return re.sub(r"[\W_]+", "-", title.lower()).strip("-") or "record"


def create(db: sqlite3.Connection) -> None:
    """Create the schema-2 tables in an empty database."""
    db.execute(
        "CREATE TABLE records (id INTEGER PRIMARY KEY, title TEXT NOT NULL, "
        "body TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, "
        "slug TEXT NOT NULL DEFAULT '')"
    )
    db.execute("CREATE INDEX records_slug ON records (slug)")


def migrate_1_to_2(db: sqlite3.Connection, settings: Settings) -> str:
    """Add the slug column and backfill it for existing records."""
    db.execute("ALTER TABLE records ADD COLUMN slug TEXT NOT NULL DEFAULT ''")
    rows = db.execute("SELECT id, title FROM records").fetchall()
    db.executemany(
        "UPDATE records SET slug = ? WHERE id = ?", [(slugify(title), rid) for rid, title in rows]
    )
    db.execute("CREATE INDEX records_slug ON records (slug)")
    return f"added records.slug and backfilled it for {len(rows)} records"


def insert(db: sqlite3.Connection, title: str, body: str) -> int:
    """Insert one record and return its id."""
    cursor = db.execute(
        "INSERT INTO records (title, body, created_at, slug) VALUES (?, ?, ?, ?)",
        (title, body, now(), slugify(title)),
    )
    return int(cursor.lastrowid or 0)


RELEASE = Release(
    version="2.0.0",
    schema=2,
    create=create,
    insert=insert,
    columns=("id", "title", "body", "created_at", "slug"),
    migrations={1: migrate_1_to_2},
    required=(("site", "name"),),
)

if __name__ == "__main__":
    sys.exit(run(RELEASE))
