"""Numbered schema migrations.  Version 1 is the schema in ``schema.py`` as first released;
each later change adds ``_to_N(conn)`` here and bumps LATEST.  An old DB is upgraded in
place inside one transaction; a newer one is refused (``db.open_engine``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LATEST = 1

STEPS: dict[int, Callable[[Any], None]] = {}


def upgrade(conn: Any, version: int) -> None:
    for target in range(version + 1, LATEST + 1):
        STEPS[target](conn)
