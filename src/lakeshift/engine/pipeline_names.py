"""The destination name of each listed source name (:class:`DestinationNamer`), in
listing order: the rules of plan/names.py (names a destination cannot hold: refused, or
encoded with --invalid-names encode) and, on a hierarchical destination, file/directory
collisions.  Copy, run and sync's planners and verify's run every name through it."""

from __future__ import annotations

from lakeshift.plan.names import CollisionTracker, collision_name, encode, problem


class DestinationNamer:
    """The destination name of each source name, in listing order (plan/names.py)."""

    def __init__(self, mode: str, hierarchical: bool) -> None:
        self.mode = mode
        self.collisions = CollisionTracker() if hierarchical else None

    def __call__(self, rel: str) -> tuple[str | None, str | None]:
        """(name, rule) — name None when the object cannot be written; rule says why a name
        changed or was refused."""
        bad = problem(rel)
        name: str | None = rel
        why = None
        if bad is not None:
            why = f"{bad.rule}: {bad.detail}"
            name = encode(rel) if self.mode == "encode" else None
            if name is None:
                return None, why
        if self.collisions is not None and name is not None:
            hit = self.collisions.check(name)
            if hit is not None:
                why = f"file-directory-collision: {hit!r} is a file here"
                if self.mode != "encode":
                    return None, why
                name = collision_name(name, hit)
        return name, why
