"""`lakeshift.toml`: what `lakeshift init` writes and `lakeshift run --config` (and
``lakeshift.run(config=...)``) runs.

It names where credentials come from (a profile, an auth mode), never a secret; every key
has an equivalent flag of `plan` / `run`.

    [job]
    name = "raw"
    db = "sqlite:////srv/lake/lakeshift.db"  # init writes an absolute path (see below)

    [source]
    urls = ["s3://lake/raw/"]
    s3_endpoint = "https://s3.example.com"  # --s3-endpoint; left out (or empty) =
                              # AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL when run, else AWS
    aws_profile = "lake"      # --aws-profile; left out (or empty) = AWS_* variables
    aws_imds = false          # --aws-imds
    s3_anonymous = false      # --s3-anonymous

    [destination]
    url = "abfss://lake@acct.dfs.core.windows.net/raw/"
    azure_auth = "auto"       # --azure-auth

    [partitioning]
    mode = "prefixes"         # none | prefixes | auto | adf
    prefixes = ["2023/", "2024/"]
    target_objects = 100000   # --target-objects (mode = "auto")
    adf_control_table = ""    # --adf-control-table (mode = "adf")

    [run]
    batch_count = 4           # --batch-count
    concurrency = 32          # --concurrency
    block_size = "8MiB"       # --block-size (optional; `lakeshift tune` writes it)
    single_put_max = "64MiB"  # --single-put-max (optional; `lakeshift tune` writes it)
    schedule = "once"         # once | "every 30m" (run again after each run ends)

A relative SQLite path in ``db`` is relative to the folder ``run`` starts in (as ``--db``
is), and so is a relative local path in ``urls`` or ``url``: ``init`` writes them absolute,
so a config runs against one control DB, one source and one destination from any folder.
A key whose value comes from the environment when unset (``s3_endpoint``,
``aws_profile``) is left out by ``init`` rather than written empty.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeshift.errors import UsageError
from lakeshift.sizes import parse_size
from lakeshift.stores.base import StoreOptions


@dataclass
class JobConfig:
    name: str
    db: str
    sources: list[str]
    destination: str
    store: StoreOptions
    mode: str = "none"
    prefixes: list[str] = field(default_factory=list)
    target_objects: int = 100_000
    adf_control_table: str | None = None
    batch_count: int = 4
    concurrency: int = 32
    every_s: float | None = None
    #: None: the flag's (or the API's) value.
    block_size: int | None = None
    single_put_max: int | None = None
    #: The keys the file itself sets among ``name``, ``db``, ``batch_count``,
    #: ``concurrency``, ``block_size`` and ``single_put_max`` (the others hold defaults):
    #: ``run --config`` lets these beat the environment (LAKESHIFT_DB, LAKESHIFT_JOB, …).
    given: frozenset[str] = frozenset()


def parse_every(text: str) -> float | None:
    text = text.strip().lower()
    if text in ("", "once"):
        return None
    m = re.fullmatch(r"every\s+(\d+)\s*([smhd])", text)
    if not m:
        raise UsageError(f"schedule {text!r}: use \"once\" or \"every N[s|m|h|d]\"")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def load(path: Path) -> JobConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"cannot read config {path}: no such file: `lakeshift init` "
                         "writes one") from None
    except OSError as e:
        raise UsageError(f"cannot read config {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML: {e}") from None

    def section(name: str) -> dict[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise UsageError(f"{path}: [{name}] must be a table")
        return value

    def need(sec: dict[str, Any], key: str, where: str) -> Any:
        if key not in sec or sec[key] in ("", None, []):
            raise UsageError(f"{path}: {where}.{key} is missing")
        return sec[key]

    job, src, dst = section("job"), section("source"), section("destination")
    part, run = section("partitioning"), section("run")
    sources = need(src, "urls", "source")
    if isinstance(sources, str):
        sources = [sources]
    store = StoreOptions(
        s3_endpoint=src.get("s3_endpoint") or None, s3_region=src.get("s3_region") or None,
        aws_profile=src.get("aws_profile") or None, aws_imds=bool(src.get("aws_imds", False)),
        s3_anonymous=bool(src.get("s3_anonymous", False)),
        azure_auth=str(dst.get("azure_auth", "auto")),
        allow_http=bool(dst.get("allow_http", False) or src.get("allow_http", False)))
    mode = str(part.get("mode", "none"))
    if mode not in ("none", "prefixes", "auto", "adf"):
        raise UsageError(f"{path}: partitioning.mode {mode!r}: use none, prefixes, auto or adf")
    cfg = JobConfig(
        name=str(need(job, "name", "job")), db=str(job.get("db", "sqlite:///lakeshift.db")),
        sources=[str(s) for s in sources], destination=str(need(dst, "url", "destination")),
        store=store, mode=mode, prefixes=[str(p) for p in part.get("prefixes", [])],
        target_objects=int(part.get("target_objects", 100_000)),
        adf_control_table=str(part.get("adf_control_table") or "") or None,
        batch_count=int(run.get("batch_count", 4)), concurrency=int(run.get("concurrency", 32)),
        every_s=parse_every(str(run.get("schedule", "once"))),
        block_size=_size(run, "block_size", path), single_put_max=_size(run, "single_put_max",
                                                                         path),
        given=frozenset(
            [*(k for k, sec in (("name", job), ("db", job)) if sec.get(k) not in (None, "")),
             *(k for k in ("batch_count", "concurrency", "block_size", "single_put_max")
               if run.get(k) not in (None, ""))]))
    if mode == "prefixes" and not cfg.prefixes:
        raise UsageError(f"{path}: partitioning.mode = \"prefixes\" needs prefixes = [...]")
    if mode == "adf" and not cfg.adf_control_table:
        raise UsageError(f"{path}: partitioning.mode = \"adf\" needs adf_control_table")
    return cfg


_SIZE_UNITS = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))
#: The [run] keys that hold sizes.
_SIZE_KEYS = frozenset({"block_size", "single_put_max"})


def size_text(n: int) -> str:
    """A size as a user writes it, read back identically by ``parse_size``: ``8MiB``,
    ``512KiB``, ``1GiB``; bytes (``1000``) when no binary unit divides it."""
    for unit, factor in _SIZE_UNITS:
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


def _size(sec: dict[str, Any], key: str, path: Path) -> int | None:
    value = sec.get(key)
    if value in (None, ""):
        return None
    if isinstance(value, int):
        return value
    return parse_size(str(value), f"{path}: run.{key}")


def write_run_settings(path: Path, values: dict[str, int | str]) -> None:
    """Set ``values`` in the [run] table of the config at ``path`` (adding the table or
    keys that are missing), keeping every other line and comment as it is."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise UsageError(f"cannot read config {path}: {e.strerror}") from None
    load(path)  # a config that does not load is not edited
    # Sizes as a user writes them ("8MiB", not 8388608); load reads them back the same.
    text = {k: _q(size_text(v)) if k in _SIZE_KEYS and isinstance(v, int) else
            str(v) if isinstance(v, int) else _q(v) for k, v in values.items()}
    start = next((i for i, line in enumerate(lines) if line.strip() == "[run]"), None)
    if start is None:
        lines += ["", "[run]"]
        start = len(lines) - 1
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
               len(lines))
    for i in range(start + 1, end):
        key = lines[i].split("=", 1)[0].strip()
        if key in text and "=" in lines[i]:
            lines[i] = f"{key} = {text.pop(key)}"
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # new keys go after the table's last key, not after blank lines
    lines[end:end] = [f"{k} = {v}" for k, v in text.items()]
    try:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write config {path}: {e.strerror}") from None


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dump(cfg: JobConfig, schedule: str, path: str = "lakeshift.toml") -> str:
    """The config file's text; its comment says how to run it, as ``path`` (where it is
    written, as the user named it)."""
    import shlex

    s = cfg.store
    # (A name with a line break would end the comment: such a file is named in words.)
    shown = shlex.quote(path) if path.isprintable() else "THIS-FILE"
    lines = [
        "# Written by `lakeshift init`. Credentials are read from where these keys say,",
        f"# never stored here. Run it with: lakeshift run --config {shown}",
        "", "[job]", f"name = {_q(cfg.name)}", f"db = {_q(cfg.db)}",
        "", "[source]", "urls = [" + ", ".join(_q(u) for u in cfg.sources) + "]",
        # Unset: left out, not written empty: the environment decides when the config is run
        # (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_PROFILE), as load() reads a missing key.
        *([f"s3_endpoint = {_q(s.s3_endpoint)}"] if s.s3_endpoint else []),
        *([f"aws_profile = {_q(s.aws_profile)}"] if s.aws_profile else []),
        f"aws_imds = {'true' if s.aws_imds else 'false'}",
        f"s3_anonymous = {'true' if s.s3_anonymous else 'false'}",
        "", "[destination]", f"url = {_q(cfg.destination)}", f"azure_auth = {_q(s.azure_auth)}",
        f"allow_http = {'true' if s.allow_http else 'false'}",
        "", "[partitioning]", f"mode = {_q(cfg.mode)}",
        "prefixes = [" + ", ".join(_q(p) for p in cfg.prefixes) + "]",
        f"target_objects = {cfg.target_objects}",
        f"adf_control_table = {_q(cfg.adf_control_table or '')}",
        "", "[run]", f"batch_count = {cfg.batch_count}", f"concurrency = {cfg.concurrency}",
        *(f"{key} = {_q(size_text(value))}" for key, value in (
            ("block_size", cfg.block_size), ("single_put_max", cfg.single_put_max))
          if value is not None),
        f"schedule = {_q(schedule)}", ""]
    return "\n".join(lines)
