"""Numbered schema migrations.  Version 1 is the schema in ``schema.py`` as first released;
each later change adds ``_to_N(conn)`` here and bumps LATEST.  An old DB is upgraded in
place inside one transaction; a newer one is refused (``db.open_engine``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LATEST = 2


def _to_2(conn: Any) -> None:
    """Failures can be skipped on purpose; renamed objects and deleted sources are
    recorded."""
    from lakeshift.control.schema import deletions, renames

    add = "ADD" if conn.dialect.name == "mssql" else "ADD COLUMN"
    conn.exec_driver_sql(f"ALTER TABLE lakeshift_failures {add} skipped INTEGER NOT NULL "
                         "DEFAULT 0")
    renames.create(conn)
    deletions.create(conn)


STEPS: dict[int, Callable[[Any], None]] = {2: _to_2}


def upgrade(conn: Any, version: int) -> None:
    for target in range(version + 1, LATEST + 1):
        STEPS[target](conn)
