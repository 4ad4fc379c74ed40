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
