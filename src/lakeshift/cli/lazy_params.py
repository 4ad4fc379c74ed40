"""Typer (0.29) coerces every parameter of the command at hand through a Pydantic
TypeAdapter that it builds on each invocation, whether the option was given or not:
importing Pydantic and building ~25 adapters was most of a one-object ``lakeshift copy``'s
start-up (measured: 0.36 s of 0.43 s under load).

``install()`` defers that work to the parameters that need it.  An option left unset
(None) coerces to what typer's own ``RuntimeParam.coerce`` returns for None without an
adapter; a plain ``str`` parameter given a ``str`` keeps it (typer's ``_parse_cli_str``
returns ``str(value)`` and Pydantic's ``str`` validator returns it unchanged), and so does
an ``int`` one without min/max/clamp given an ``int`` (its default: ``TypeAdapter(int)``);
any other value goes through the adapter typer builds, as before.  Tested against typer's own
coercion for every parameter of every command (tests/unit/test_cli_lazy_params.py).  If
typer's internals differ from what this expects, nothing is changed.
"""

from __future__ import annotations

from typing import Any


class _Deferred:
    """Stands in for a typer RuntimeParam until a value needs the real one."""

    __slots__ = ("build",)

    def __init__(self, build: Any) -> None:
        self.build = build

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multi = param.multiple or param.nargs == -1
        if value is None:
            return () if multi else None
        kind = type(value)
        if (kind is str or kind is int) and not multi:
            desc = param.type_descriptor
            info = desc.parameter_info
            if desc.annotation is kind and info.parser is None and desc.file_annotation is None \
                    and (kind is str or (info.min is None and info.max is None
                                         and not info.clamp)):
                return value
        return self.build(param).coerce(value, param=param, ctx=ctx)


def install() -> bool:
    """Make typer's parameters build their adapters only when a value needs one; False
    when typer is not the version this was written against (nothing changed)."""
    try:
        from typer import core
    except ImportError:  # pragma: no cover
        return False
    cls = getattr(core, "_TyperParameter", None)
    original = getattr(cls, "get_runtime_param", None)
    if cls is None or original is None or getattr(original, "_lakeshift_lazy", False):
        return original is not None
    if not hasattr(core, "build_runtime_param"):
        return False

    def build(param: Any) -> Any:
        return original(param)  # builds and caches typer's own RuntimeParam

    deferred = _Deferred(build)

    def get_runtime_param(self: Any) -> Any:
        if getattr(self, "_runtime_param", None) is not None:
            return self._runtime_param
        if not hasattr(self, "type_descriptor"):
            return original(self)
        return deferred

    get_runtime_param._lakeshift_lazy = True  # type: ignore[attr-defined]
    get_runtime_param.__doc__ = original.__doc__
    cls.get_runtime_param = get_runtime_param
    return True
