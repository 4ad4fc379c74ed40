"""The price table ``scan`` estimates a migration's cost with (``lakeshift/data/prices.toml``),
and the estimate itself.

A ``--prices FILE`` has the same layout; what it sets replaces the shipped value, key by key
(a file may set only ``[source.s3] egress_tiers_gb``).  A file that does not parse, a value
of the wrong type, or an unknown key (at the top, in a section, in a storage class entry) is
a UsageError naming the file and the key.

Each ``[source.KIND]`` and ``[destination.KIND]`` section states the ``region`` its figures
are for; the estimate names the two it used (``CostEstimate.region``: "us-east-1 (source) →
East US (destination)"; "no prices for adl" for a side the table has no section for), or the
table's own ``region`` where neither section states one.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lakeshift.errors import UsageError
from lakeshift.model import CostEstimate, CostLine

GB = 1024**3
_CLASS_KEYS: dict[str, type[Any]] = {"archived": bool, "retrieval_per_gb": float}
_SOURCE_KEYS: dict[str, type[Any]] = {"region": str, "egress_tiers_gb": list,
                                      "list_per_1000": float, "read_per_1000": float}
_DEST_KEYS: dict[str, type[Any]] = {"region": str, "write_per_1000": float,
                                    "write_unit_bytes": int}
_TOP_KEYS = ("region", "currency", "date", "sources", "source", "destination",
             "storage_classes")


@dataclass(frozen=True)
class StorageClassPrice:
    archived: bool = False
    retrieval_per_gb: float = 0.0


@dataclass(frozen=True)
class PriceTable:
    region: str
    currency: str
    date: str
    sources: tuple[str, ...]
    source: dict[str, dict[str, Any]]
    destination: dict[str, dict[str, Any]]
    classes: dict[str, StorageClassPrice]
    path: str

    def storage_class(self, name: str) -> StorageClassPrice | None:
        return self.classes.get(name)


def _shipped() -> dict[str, Any]:
    text = resources.files("lakeshift").joinpath("data/prices.toml").read_text("utf-8")
    return tomllib.loads(text)


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The shipped table, with ``path``'s values over it."""
    data = _shipped()
    where = "the shipped price table"
    if path is not None:
        where = str(path)
        try:
            override = tomllib.loads(Path(path).read_text("utf-8"))
        except OSError as e:
            raise UsageError(f"--prices {path}: cannot read it ({e.strerror})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"--prices {path}: not a TOML price table ({e}); see "
                             "lakeshift/data/prices.toml for the layout") from None
        data = _merge(data, override)
    return _table(data, where)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else v
    return out


def _table(data: dict[str, Any], where: str) -> PriceTable:
    def fail(key: str, why: str) -> UsageError:
        return UsageError(f"--prices {where}: {key}: {why}")

    def checked(section: str, table: Any,
                keys: dict[str, type[Any]]) -> dict[str, dict[str, Any]]:
        if not isinstance(table, dict):
            raise fail(section, "must be a table")
        out: dict[str, dict[str, Any]] = {}
        for kind, values in table.items():
            if not isinstance(values, dict):
                raise fail(f"{section}.{kind}", "must be a table")
            v: Any
            for k, v in values.items():
                want = keys.get(k)
                if want is None:
                    raise fail(f"{section}.{kind}.{k}", f"unknown key (known: "
                                                        f"{', '.join(sorted(keys))})")
                if want is float and isinstance(v, int) and not isinstance(v, bool):
                    v = float(v)
                if not isinstance(v, want) or isinstance(v, bool) != (want is bool):
                    raise fail(f"{section}.{kind}.{k}", f"must be a {want.__name__}")
                if want is float and not v >= 0:  # also refuses nan
                    raise fail(f"{section}.{kind}.{k}", "must not be negative (a price)")
                if k == "egress_tiers_gb":
                    _check_tiers(v, f"{section}.{kind}.{k}", fail)
                values[k] = v
            out[kind] = values
        return out

    for key in data:
        if key not in _TOP_KEYS:
            raise fail(key, f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    classes: dict[str, StorageClassPrice] = {}
    for name, entry in checked("storage_classes", data.get("storage_classes", {}),
                               _CLASS_KEYS).items():
        classes[name] = StorageClassPrice(bool(entry.get("archived", False)),
                                          float(entry.get("retrieval_per_gb", 0.0)))
    for key in ("region", "currency", "date"):
        if not isinstance(data.get(key), str):
            raise fail(key, "must be a string")
    sources = data.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise fail("sources", "must be a list of URLs")
    return PriceTable(data["region"], data["currency"], data["date"], tuple(sources),
                      checked("source", data.get("source", {}), _SOURCE_KEYS),
                      checked("destination", data.get("destination", {}), _DEST_KEYS),
                      classes, where)


def _check_tiers(tiers: list[Any], key: str, fail: Any) -> None:
    ok = bool(tiers) and all(
        isinstance(t, list) and len(t) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) and x >= 0 for x in t)
        for t in tiers)
    if not ok:
        raise fail(key, "must be a list of [GB in the tier (0: the rest), price per GB], "
                        "neither negative")


def egress(tiers: list[list[float]], gb: float) -> float:
    """Cost of ``gb`` GB through volume tiers ([size of the tier in GB, price per GB]; a
    size of 0 takes the rest)."""
    left, cost = gb, 0.0
    for size, price in tiers:
        take = left if size <= 0 else min(left, size)
        cost += take * price
        left -= take
        if left <= 0:
            break
    return cost


@dataclass
class Traffic:
    """What a copy of the scanned objects would ask of each side (counted by the scan)."""

    objects: int = 0
    bytes: int = 0
    list_requests: int = 0
    read_requests: int = 0
    write_ops: int = 0
    write_ops_per_request: int = 0
    #: GB read from classes with a retrieval fee, and that fee, summed.
    retrieval_gb: float = 0.0
    retrieval_cost: float = 0.0


def write_operations(size: int, block_size: int, unit: int) -> int:
    """Billed write operations for one object: one per request (a put, or its blocks and
    the commit), or one per ``unit`` bytes where the service bills that way (ADLS Gen2)."""
    if unit > 0:
        return max(1, math.ceil(size / unit)) + (1 if size > block_size else 0)
    return 1 if size <= block_size else math.ceil(size / block_size) + 1


def estimate(prices: PriceTable, source_kind: str, dest_kind: str, t: Traffic) -> CostEstimate:
    src = prices.source.get(source_kind, {})
    dst = prices.destination.get(dest_kind, {})
    gb = t.bytes / GB
    lines = [
        CostLine("source egress", round(gb, 3), "GB",
                 egress(src.get("egress_tiers_gb", [[0, 0.0]]), gb)),
        CostLine("source LIST requests", t.list_requests, "requests",
                 t.list_requests / 1000 * float(src.get("list_per_1000", 0.0))),
        CostLine("source GET requests", t.read_requests, "requests",
                 t.read_requests / 1000 * float(src.get("read_per_1000", 0.0))),
        CostLine("destination write operations", t.write_ops, "operations",
                 t.write_ops / 1000 * float(dst.get("write_per_1000", 0.0))),
    ]
    if t.retrieval_cost:
        lines.append(CostLine("retrieval fees (infrequent-access classes)",
                              round(t.retrieval_gb, 3),
                              "GB", t.retrieval_cost))
    lines = [CostLine(ln.what, ln.quantity, ln.unit, round(ln.amount, 4)) for ln in lines]
    region = prices.region
    if src.get("region") or dst.get("region"):
        region = (f"{src.get('region') or f'no prices for {source_kind}'} (source) → "
                  f"{dst.get('region') or f'no prices for {dest_kind}'} (destination)")
    # As precise as the lines (a small lake's total is not 0.0 beside lines that are not).
    return CostEstimate(prices.currency, round(sum(ln.amount for ln in lines), 4),
                        tuple(lines), region, prices.date, prices.sources, prices.path)
