"""Option types shared by several commands (one definition, one help text).

Each option's parameter name is the name of the API function's argument
(tests/unit/test_api_parity.py checks it)."""

from __future__ import annotations

import functools
import inspect
import os
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast, get_args

import typer

from lakeshift.api import StoreOptions
from lakeshift.errors import UsageError
from lakeshift.sizes import size_per_second

_S3 = "S3 options"
_AZ = "Azure options"

DbOpt = Annotated[str, typer.Option(
    "--db", envvar="LAKESHIFT_DB", metavar="URL",
    help="Control DB: sqlite:///path.db (default ./lakeshift.db) or postgresql://user@host/db.")]
JobOpt = Annotated[str, typer.Option("--job", "-j", envvar="LAKESHIFT_JOB", metavar="NAME",
                                     help="Job name.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
#: A whole number, read by with_options (``whole_number``): one line naming the flag, or the
#: environment variable it came from, instead of the parser's wordier message.
ConcurrencyOpt = Annotated[str, typer.Option(
    "--concurrency", "-c", envvar="LAKESHIFT_CONCURRENCY", metavar="N",
    help="Objects (and blocks of large objects) in flight. Memory for data stays under "
         "concurrency × block size, which must fit in half of this machine's memory, or "
         "of this container's memory limit (cgroup) when that is smaller.")]
BlockSizeOpt = Annotated[str, typer.Option(
    "--block-size", envvar="LAKESHIFT_BLOCK_SIZE", metavar="SIZE",
    help="Block size for large objects; objects up to this size go in one request. Memory "
         "for data stays under concurrency × block size.")]
SinglePutMaxOpt = Annotated[str | None, typer.Option(
    "--single-put-max", envvar="LAKESHIFT_SINGLE_PUT_MAX", metavar="SIZE", show_default=False,
    help="Objects above one block and up to this size, whose source has an MD5, stream "
         "into one request the destination checks against that MD5 (Azure Put Blob with "
         "Content-MD5); larger ones go as blocks. 0 sends every large object as blocks; "
         "otherwise at least --block-size (below it, it could change nothing). Default "
         "64MiB, or the block size when that is larger.")]
ProgressOpt = Annotated[str, typer.Option(
    "--progress", help="auto (bar on a terminal, plain lines otherwise), bar, plain, none.",
    metavar="MODE")]
IncludeOpt = Annotated[list[str] | None, typer.Option(
    "--include", metavar="GLOB",
    help="Only names matching this glob (repeatable; * within a folder, ** across folders; "
         "no / = file name).")]
ExcludeOpt = Annotated[list[str] | None, typer.Option(
    "--exclude", metavar="GLOB", help="Skip names matching this glob (repeatable).")]
OverwriteOpt = Annotated[str, typer.Option(
    "--overwrite", envvar="LAKESHIFT_OVERWRITE",
    help="if-different: skip objects proven identical; always: copy everything; never: skip "
         "any name that exists.", metavar="MODE")]
FolderMarkersOpt = Annotated[str, typer.Option(
    "--folder-markers", help="Folder markers (S3 dir/ keys of size 0, Azure folder blobs): "
                             "skip, or keep as folders (hdi_isfolder marker blobs on a flat "
                             "account, directories on ADLS Gen2 and local disk, dir/ objects "
                             "on S3).", metavar="MODE")]
EmptyDirsOpt = Annotated[bool | None, typer.Option(
    "--empty-dirs/--no-empty-dirs",
    help="Create the source's empty directories at the destination (real directories on "
         "ADLS Gen2 and local disk, hdi_isfolder marker blobs on a flat account, zero-byte "
         "dir/ objects on S3). Default: "
         "on from adl://, webhdfs:// and local disk to a hierarchical destination (ADLS "
         "Gen2, local disk).",
    show_default=False)]
PreserveOpt = Annotated[str, typer.Option(
    "--preserve", help="Keep these of each file and directory on an ADLS Gen2 destination: "
                       "any of acl,owner,group,permissions (comma-separated; from adl:// "
                       "and webhdfs:// sources), and times: the source's modification time "
                       "(S3 LastModified, a file's mtime, Gen1/HDFS modificationTime), kept "
                       "on every copy anyway — on Azure as the lakeshift_src_mtime metadata "
                       "(Gen2 sets Last-Modified itself), on local disk as the file's "
                       "mtime; verify --check-times compares it.", metavar="LIST")]
MapIdentitiesOpt = Annotated[str | None, typer.Option(
    "--map-identities", help="CSV of source principal → Entra object ID or UPN, one "
                             "'source,destination' a line (user:NAME / group:NAME to map one "
                             "kind). A principal it lacks fails its path (recorded).",
    show_default=False, metavar="FILE")]
SkipErrorsOpt = Annotated[str, typer.Option(
    "--skip-errors", help="Record and skip objects that fail with these errors instead of "
                          "failing: any of missing,forbidden,invalid-name,archived,"
                          "dangling-link "
                          "(comma-separated).", metavar="KINDS")]
InvalidNamesOpt = Annotated[str, typer.Option(
    "--invalid-names", help="Names the destination cannot hold: fail, skip (recorded), or "
                            "encode (percent-encode the offending characters; recorded).",
    metavar="MODE")]


MaxRpsOpt = Annotated[float | None, typer.Option(
    "--max-requests-per-second", metavar="N",
    help="Cap on requests per second to each endpoint.")]
DaskOpt = Annotated[str | None, typer.Option(
    "--dask", help="Run on a Dask cluster: tcp://HOST:8786 (a running scheduler) or local:N "
                   "(N worker processes here). Needs a PostgreSQL --db; --batch-count and "
                   "--concurrency are per worker, the request and bandwidth caps for all "
                   "workers together (docs/dask.md).", metavar="URL|local:N")]


def _size_per_second(value: str | None) -> str | None:
    """--max-bandwidth as the API takes it: its optional ``/s`` dropped (``200MiB/s`` →
    ``200MiB``); a value that is no size per second is refused here, in one line."""
    return None if value is None else size_per_second(value, "--max-bandwidth")


MaxBandwidthOpt = Annotated[str | None, typer.Option(
    "--max-bandwidth", metavar="RATE", callback=_size_per_second,
    help="Cap on data moved per second (per run): a size, /s optional, e.g. 200MiB/s or "
         "200MiB.")]
AdaptiveOpt = Annotated[bool, typer.Option(
    "--adaptive/--no-adaptive", help="Halve requests in flight to an endpoint when it "
                                     "throttles, then creep back up (AIMD).")]


_COPY_MODE_HELP = (
    "server: the destination service reads each source object itself (Azure: Copy Blob "
    "From URL, Put Blob From URL, or Put Block From URL per block above 5000 MiB, through a "
    "blob SAS, a user-delegation SAS or an S3 presigned GET), no byte through this machine; "
    "objects without a source MD5 are streamed. auto: the same, but the first server-side "
    "failure (private endpoints, emulators) turns it off for the rest of the run and that "
    "object is streamed. stream: every byte through this machine.")
CopyModeOpt = Annotated[str, typer.Option(
    "--copy-mode", envvar="LAKESHIFT_COPY_MODE", help=_COPY_MODE_HELP + " copy: auto by "
    "default; plan: stream by default, kept with the job.", metavar="MODE")]
RunCopyModeOpt = Annotated[str | None, typer.Option(
    "--copy-mode", envvar="LAKESHIFT_COPY_MODE", show_default=False,
    help="This run's copy mode instead of the one the job was planned with (stream unless "
         "planned otherwise): auto, server or stream.", metavar="MODE")]
ProofLogOpt = Annotated[str | None, typer.Option(
    "--proof-log", show_default=False, metavar="FILE",
    help="Append one CSV row per object copied to this file, as each finishes: time, source "
         "key, destination key, size, proof, attempts (created with a header if new).")]
DeleteSourceOpt = Annotated[bool, typer.Option(
    "--delete-source-after-verify", help="Move: delete each source object once its copy is "
                                         "verified by MD5 (each deletion is recorded).")]


S3EndpointOpt = Annotated[str | None, typer.Option(
    "--s3-endpoint", metavar="URL", rich_help_panel=_S3,
    help="S3-compatible endpoint (MinIO, Ceph); default AWS_ENDPOINT_URL_S3, "
         "AWS_ENDPOINT_URL or AWS. (Given to plan or sync, it is kept with the job and its "
         "runs use it over those variables.)")]
RunS3EndpointOpt = Annotated[str | None, typer.Option(
    "--s3-endpoint", metavar="URL", rich_help_panel=_S3, show_default=False,
    help="This run's S3-compatible endpoint, instead of the job's (plan --s3-endpoint), "
         "which wins over AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL; \"\" drops the job's for "
         "this run. The summary names the endpoint used and where it came from.")]
S3RegionOpt = Annotated[str | None, typer.Option(
    "--s3-region", rich_help_panel=_S3, help="Default AWS_REGION or us-east-1.", metavar="REGION")]
AwsProfileOpt = Annotated[str | None, typer.Option(
    "--aws-profile", rich_help_panel=_S3, help="Profile in ~/.aws (or AWS_PROFILE).",
    metavar="PROFILE")]
AwsImdsOpt = Annotated[bool, typer.Option(
    "--aws-imds", rich_help_panel=_S3, help="Allow the EC2 instance role (metadata service).")]
S3AnonOpt = Annotated[bool, typer.Option(
    "--s3-anonymous", rich_help_panel=_S3, help="Unsigned requests (public buckets).")]
S3RequestPayerOpt = Annotated[str | None, typer.Option(
    "--s3-request-payer", envvar="LAKESHIFT_S3_REQUEST_PAYER", rich_help_panel=_S3,
    help="requester: read a requester-pays bucket (every S3 request says you pay).",
    metavar="PAYER")]
AzureAuthOpt = Annotated[str, typer.Option(
    "--azure-auth", envvar="LAKESHIFT_AZURE_AUTH", rich_help_panel=_AZ,
    help="auto, connection-string, key, sas, service-principal, cli, managed-identity.",
    metavar="MODE")]
AllowHttpOpt = Annotated[bool, typer.Option(
    "--allow-http", help="Allow plain HTTP to a host that is not loopback.")]


#: One option of a group: (parameter name, its Annotated type, its default).
Param = tuple[str, Any, Any]

#: How a copy paces itself: copy, run, sync.
PACING: tuple[Param, ...] = (
    ("concurrency", ConcurrencyOpt, "32"),
    ("block_size", BlockSizeOpt, "8MiB"),
    ("single_put_max", SinglePutMaxOpt, None),
    ("max_requests_per_second", MaxRpsOpt, None),
    ("max_bandwidth", MaxBandwidthOpt, None),
    ("adaptive", AdaptiveOpt, True),
)
#: Which objects are copied, and how names and errors are treated: copy, plan, sync.
FILTERS: tuple[Param, ...] = (
    ("include", IncludeOpt, None),
    ("exclude", ExcludeOpt, None),
    ("overwrite", OverwriteOpt, "if-different"),
    ("folder_markers", FolderMarkersOpt, "skip"),
    ("skip_errors", SkipErrorsOpt, ""),
    ("invalid_names", InvalidNamesOpt, "fail"),
)
#: What is kept of each object besides its bytes, and moving: copy, plan.
KEEPING: tuple[Param, ...] = (
    ("delete_source_after_verify", DeleteSourceOpt, False),
    ("empty_dirs", EmptyDirsOpt, None),
    ("preserve", PreserveOpt, ""),
    ("map_identities", MapIdentitiesOpt, None),
)
#: How a job's partitions are worked through: run, sync.
JOB_WORK: tuple[Param, ...] = (
    ("batch_count", Annotated[int, typer.Option(
        "--batch-count", "-b", help="Partitions worked on at the same time.", metavar="N")], 4),
    ("lease_seconds", Annotated[float, typer.Option(
        "--lease-seconds", help="A partition (or a sync schedule) whose holder stops "
                                "renewing its lease for this long can be taken over.",
        metavar="SECONDS")], 60.0),
    ("dask", DaskOpt, None),
)

#: The options that say how to reach the stores, shared by every command that opens one.
_STORE_PARAMS: tuple[Param, ...] = (
    ("s3_endpoint", S3EndpointOpt, None),
    ("s3_region", S3RegionOpt, None),
    ("aws_profile", AwsProfileOpt, None),
    ("aws_imds", AwsImdsOpt, False),
    ("s3_anonymous", S3AnonOpt, False),
    ("s3_request_payer", S3RequestPayerOpt, None),
    ("azure_auth", AzureAuthOpt, "auto"),
    ("allow_http", AllowHttpOpt, False),
)

#: Placeholder default of the ``store`` parameter that with_store_options fills in.
NO_STORE_OPTIONS = StoreOptions()
#: Placeholder default of a group's parameter that with_options fills in.
NO_OPTIONS: dict[str, Any] = {}

F = TypeVar("F", bound=Callable[..., Any])
V = TypeVar("V")


def given(ctx: typer.Context, name: str, value: V) -> V | None:
    """``value`` when the user gave the option (flag or environment), None when it is the
    default: the API then takes it from elsewhere (``run --config``)."""
    source = ctx.get_parameter_source(name)
    return None if source is None or source.name == "DEFAULT" else value


#: The hidden parameter through which a command built by ``_gathered`` gets its context
#: (where each value came from), when the command does not take one itself.
_CTX = "_lakeshift_ctx"
#: Options read as whole numbers by ``_gathered`` (their flags take text: see ConcurrencyOpt).
_WHOLE_NUMBERS = frozenset({"concurrency"})


def whole_number(value: str | int, flag: str, source: str | None = None) -> int:
    """``value`` as an int; else a UsageError naming the flag (and ``source``, the
    environment variable it came from)."""
    if isinstance(value, int):
        return value
    try:
        return int(value.strip())
    except ValueError:
        where = f"{source}={value!r} ({flag})" if source else f"{flag} {value!r}"
        raise UsageError(f"{where} is not a whole number: use e.g. {flag} 32") from None


def _from_environment(ctx: Any, names: list[str]) -> dict[str, tuple[str, str]]:
    """Which of ``names`` took their value from an environment variable: name → (flag,
    variable)."""
    if ctx is None:
        return {}
    out: dict[str, tuple[str, str]] = {}
    for param in getattr(ctx.command, "params", ()):
        if param.name not in names or not param.envvar:
            continue
        source = ctx.get_parameter_source(param.name)
        if source is not None and source.name == "ENVIRONMENT":
            variables = [param.envvar] if isinstance(param.envvar, str) else param.envvar
            variable = next((v for v in variables if v in os.environ), variables[0])
            flag = max(param.opts, key=len)
            out[param.name] = (flag, variable)
    return out


def _name_the_variables(e: UsageError, env: dict[str, tuple[str, str]]) -> None:
    """Add to a refusal of a flag whose value came from the environment the variable that
    set it (the user typed no such flag)."""
    message = str(e)
    said = [f"{var}={os.environ.get(var, '')!r} in the environment set {flag}"
            for flag, var in env.values()
            if re.search(re.escape(flag) + r"(?![\w-])", message) and var not in message]
    if said:
        e.args = (f"{message} ({'; '.join(said)})",)


def _gathered(fn: F, groups: dict[str, tuple[Param, ...]],
              gather: Callable[[str, dict[str, Any]], Any]) -> F:
    """``fn`` as a command whose parameter named after each group is replaced by that
    group's options (flags, in the group's order, where the parameter stood); ``fn`` is
    called with ``gather(group, {option: value})`` there.  A UsageError about one of these
    options whose value came from an environment variable names that variable."""
    sig = inspect.signature(fn, eval_str=True)
    params: list[inspect.Parameter] = []
    for p in sig.parameters.values():
        if p.name in groups:
            params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                         default=default, annotation=annotation)
                       for name, annotation, default in groups[p.name]]
        else:
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                          if p.kind != inspect.Parameter.KEYWORD_ONLY else p)
    ctx_name = next((p.name for p in params if p.annotation is typer.Context), None)
    hidden = ctx_name is None
    if hidden:
        params.append(inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY,
                                        annotation=typer.Context))
        ctx_name = _CTX
    names = [name for members in groups.values() for name, _, _ in members]

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.pop(_CTX) if hidden else kwargs.get(ctx_name or "")
        env = _from_environment(ctx, names)
        for name in _WHOLE_NUMBERS.intersection(names):
            flag, variable = env.get(name, (f"--{name.replace('_', '-')}", None))
            kwargs[name] = whole_number(kwargs[name], flag, variable)
        for group, members in groups.items():
            kwargs[group] = gather(group, {name: kwargs.pop(name) for name, _, _ in members})
        try:
            return fn(*args, **kwargs)
        except UsageError as e:
            _name_the_variables(e, env)
            raise

    command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {
        **{k: v for k, v in fn.__annotations__.items() if k not in groups},
        **{name: ann for members in groups.values() for name, ann, _ in members},
        **({_CTX: typer.Context} if hidden else {})}
    return cast(F, command)


def _as_api_arguments(group: str, values: dict[str, Any]) -> dict[str, Any]:
    """A group's values as the API's keyword arguments (repeatable flags: tuples)."""
    return {k: () if v is None and k in ("include", "exclude") else v
            for k, v in values.items()}


def with_options(**groups: tuple[Param, ...]) -> Callable[[F], F]:
    """Give a command the options of each named group (``pacing=PACING``…) as flags, and
    call it with each group's values as one dict argument of that name, ready to pass to
    the API function (``api.copy(..., **pacing)``)."""
    def decorate(fn: F) -> F:
        return _gathered(fn, groups, _as_api_arguments)

    return decorate


def with_store_options(fn: F) -> F:
    """Give a command the store options (--s3-endpoint … --allow-http) as flags, and call
    it with them gathered into one ``store: StoreOptions`` argument."""
    return _gathered(fn, {"store": _STORE_PARAMS}, lambda _, v: StoreOptions(**v))


def _variable(annotation: Any) -> str | None:
    """The environment variable of an option's ``Annotated[..., typer.Option(...)]``."""
    envvar = getattr(get_args(annotation)[1], "envvar", None)
    return envvar if isinstance(envvar, str) else None


#: The store options an environment variable can set → that variable.
STORE_VARIABLES: dict[str, str] = {
    name: variable for name, annotation, _ in _STORE_PARAMS
    if (variable := _variable(annotation)) is not None}


def store_sources(ctx: typer.Context, store: StoreOptions
                  ) -> tuple[StoreOptions, frozenset[str], StoreOptions]:
    """``store`` (with_store_options') split by where its values came from: the flags typed
    on the command line, with their names (one typed at its default value counts: it
    replaces a job's other value), and what the environment set (STORE_VARIABLES: a job's
    saved value wins over it)."""
    from dataclasses import fields

    typed: dict[str, Any] = {}
    environment: dict[str, Any] = {}
    for f in fields(StoreOptions):
        source = getattr(ctx.get_parameter_source(f.name), "name", None)
        if source == "COMMANDLINE":
            typed[f.name] = getattr(store, f.name)
        elif source == "ENVIRONMENT":
            environment[f.name] = getattr(store, f.name)
    return StoreOptions(**typed), frozenset(typed), StoreOptions(**environment)


def store_environment() -> StoreOptions:
    """The store options the environment sets (STORE_VARIABLES), for a command that has no
    flag for them (``run``): a job's saved value wins over them."""
    values: dict[str, Any] = {name: os.environ[variable]
                              for name, variable in STORE_VARIABLES.items()
                              if os.environ.get(variable)}
    return StoreOptions(**values)


def name_store_variables(e: Exception, also: dict[str, str] | None = None) -> None:
    """Add to a refusal (a UsageError, or an AuthError: missing credentials) of a store
    option's value that an environment variable set the variable, for a command that has
    no flag for it (``run``: the user typed no such flag).  Only a message that names the
    flag with the variable's value: a job's own value may have been used instead.  ``also``:
    more option → variable pairs to say so of (``run``'s LAKESHIFT_COPY_MODE, when no
    --copy-mode was typed)."""
    message = str(e)
    said = [f"{variable}={value!r} in the environment set {flag}"
            for name, variable in {**STORE_VARIABLES, **(also or {})}.items()
            if (value := os.environ.get(variable))
            and (flag := "--" + name.replace("_", "-"))
            and re.search(re.escape(flag) + r" '?" + re.escape(value) + r"(?![\w-])", message)
            and variable not in message]
    if said:
        e.args = (f"{message} ({'; '.join(said)})",)
