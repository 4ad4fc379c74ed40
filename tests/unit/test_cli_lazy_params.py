"""cli/lazy_params.py stands in for part of typer's own coercion: differential test against
typer (the same parameter, the same value, the same result or the same error) for every
parameter of every command, and the start-up it saves."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import typer.main
from typer import core

from lakeshift.cli.app import app
from lakeshift.cli.lazy_params import _Deferred, install

SAMPLES: list[Any] = [None, "", "x", "12", "-3", "1.5", "a b", "true", "8MiB", 12, 0, -1,
                      1.5, True, (), ("a",), ["1", "2"]]


def _params() -> list[tuple[Any, Any]]:
    out = []

    def walk(cmd: Any) -> None:
        for p in cmd.params:
            if isinstance(p, core._TyperParameter):
                out.append((cmd, p))
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    return out


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except Exception as e:  # the error typer would show
        return type(e).__name__, str(e)


def test_deferred_coercion_matches_typers_own_for_every_parameter() -> None:
    assert install()  # typer is the version this was written for
    params = _params()
    assert len(params) > 100
    checked = 0
    for cmd, p in params:
        ctx = core._click.Context(cmd)
        samples = list(SAMPLES)
        if not callable(p.default):
            samples.append(p.default)
        for value in samples:
            def real(v: Any = value, p: Any = p, ctx: Any = ctx) -> Any:
                return core.build_runtime_param(p.type_descriptor).coerce(v, param=p, ctx=ctx)

            def lazy(v: Any = value, p: Any = p, ctx: Any = ctx) -> Any:
                deferred = _Deferred(lambda q: core.build_runtime_param(q.type_descriptor))
                return deferred.coerce(v, param=p, ctx=ctx)

            want, got = _outcome(real), _outcome(lazy)
            assert got == want, (cmd.name, p.name, value)
            if want[0] == "ok":
                assert type(got[1]) is type(want[1]), (cmd.name, p.name, value)
            checked += 1
    assert checked > 1000


def test_a_copy_with_default_options_imports_no_pydantic_click_or_wcmatch(
        tmp_path: Any) -> None:
    """Start-up: Pydantic (typer's adapters), click (its exception classes, wanted only when
    a command fails) and wcmatch (--include/--exclude) stay unimported.  (A value typer has
    to convert, ``--concurrency 8``, still goes through Pydantic.)"""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "f").write_bytes(b"x")
    code = ("import sys; from lakeshift.cli.app import run; "
            f"rc = run(['copy', {str(tmp_path / 's')!r}, {str(tmp_path / 'd')!r}, "
            "'--progress', 'none']); "
            "print(rc, any(m in sys.modules for m in ('pydantic', 'click', 'wcmatch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split()[-2:] == ["0", "False"], out.stderr[-2000:]
    assert (tmp_path / "d" / "f").read_bytes() == b"x"
