from __future__ import annotations

from types import ModuleType

import lakeshift
from lakeshift.cli.sizes import parse_size
from lakeshift.redact import redact, register_secret


def test_all_lists_exactly_the_public_names() -> None:
    # Submodules are not API names (lakeshift.plan is the function, not the package).
    public = {n for n in dir(lakeshift) if not n.startswith("_")
              and not isinstance(getattr(lakeshift, n), ModuleType)} - {"annotations"}
    assert set(lakeshift.__all__) - {"__version__"} == public
    for name in lakeshift.__all__:
        assert hasattr(lakeshift, name)


def test_sizes() -> None:
    assert parse_size("8MiB", "--x") == 8 * 1024 * 1024
    assert parse_size("100MB", "--x") == 100_000_000
    assert parse_size("65536", "--x") == 65536


def test_redact_patterns_and_registered_values() -> None:
    register_secret("s3cr3t-value-123")
    text = ("AccountKey=abc123==;x https://a.blob.core.windows.net/c?sv=1&sig=XYZ%3D "
            "postgresql://u:pw@host/db s3cr3t-value-123")
    out = redact(text)
    for secret in ("abc123", "XYZ", ":pw@", "s3cr3t-value-123"):
        assert secret not in out


def test_every_record_an_api_function_returns_is_public_and_in_model() -> None:
    """The records a program gets back, and those inside them, are plain data from
    lakeshift.model, each listed in __all__ (issue 10)."""
    import dataclasses
    import typing


    seen: set[type] = set()

    def walk(tp: object) -> None:
        for arg in typing.get_args(tp):
            walk(arg)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp) and tp not in seen:
            seen.add(tp)
            hints = typing.get_type_hints(tp)
            for f in dataclasses.fields(tp):
                walk(hints[f.name])

    for name in lakeshift.__all__:
        fn = getattr(lakeshift, name)
        if callable(fn) and not isinstance(fn, type) and name != "parse_url":
            walk(typing.get_type_hints(fn).get("return"))
    assert {t.__name__ for t in seen} >= {"TuneResult", "Trial", "Setting", "CostEstimate",
                                          "CostLine", "DurationEstimate", "ScanResult"}
    for t in seen:
        assert t.__module__ == "lakeshift.model", t
        assert t.__name__ in lakeshift.__all__, t
