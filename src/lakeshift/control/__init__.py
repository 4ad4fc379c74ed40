"""The control DB.  This package's own module imports nothing heavy: the CLI reads
DEFAULT_DB without loading SQLAlchemy (``copy`` never needs it)."""

DEFAULT_DB = "sqlite:///lakeshift.db"


def fold_state_totals(by_state: dict[str, dict[str, int]]) -> dict[str, int]:
    """``partition_totals_by_state`` folded: partitions per state, and the sums over all
    states of ``partitions``, ``copied``, ``bytes`` and ``failed_objects``."""
    out = {"partitions": 0, "copied": 0, "bytes": 0, "failed_objects": 0}
    for state, t in by_state.items():
        out[state] = t["partitions"]
        for k in ("partitions", "copied", "bytes", "failed_objects"):
            out[k] += t[k]
    return out
