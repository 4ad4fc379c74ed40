"""The monitor's Starlette app: pages, ``/api/…`` JSON, ``/metrics``, and (with
``allow_actions``) two POST actions guarded by a token.

Handlers are plain functions: Starlette runs them in its thread pool, so the API's
blocking DB reads never stall the event loop.  Every read goes through the public API.
Paging and the numbers a request carries (``?page=``, ``offset``/``limit``): ``paging.py``.
"""

from __future__ import annotations

import csv
import dataclasses
import hmac
import io
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import lakeshift
from lakeshift.api import FAILURE_FIELDS, csv_cell, run_going_on
from lakeshift.web.chart import throughput_svg
from lakeshift.web.format import FILTERS
from lakeshift.web.metrics import exposition
from lakeshift.web.paging import MAX_PAGE, PAGE, int_param, page_number, pages

HERE = Path(__file__).parent
#: The ``code`` of each error the monitor answers (JSON ``error.code``; the error page's
#: ``data-code``): stable, for scripts to match on, unlike the message.
ERROR_CODES = {400: "bad-request", 403: "forbidden", 404: "not-found",
               405: "method-not-allowed"}
#: How often the pages ask the JSON API whether anything changed (milliseconds).
REFRESH_MS = 2000


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def reading(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run inside ``lakeshift.reading_only()``: the monitor's pages never write the
    control DB, never upgrade its schema, and take no SQLite write lock."""

    def read(*args: Any, **kwargs: Any) -> Any:
        with lakeshift.reading_only():
            return fn(*args, **kwargs)

    read.__name__ = getattr(fn, "__name__", "read")
    return read


#: Settings that are sizes in bytes (``max_bandwidth``: bytes per second), shown as the
#: CLI takes them (``--block-size 8MiB``), not as a count of bytes.
SIZE_SETTINGS = frozenset({"block_size", "single_put_max", "max_bandwidth"})


def setting_text(name: str, value: Any) -> str:
    """One setting's value as the settings table shows it: a size as the CLI takes it
    (8388608 → ``8MiB``; bytes when no binary unit divides it), anything else as it is."""
    if value is None:
        return "—"
    if (name.rsplit(".", 1)[-1] in SIZE_SETTINGS and isinstance(value, int | float)
            and not isinstance(value, bool) and float(value).is_integer()):
        from lakeshift.api import size_text

        return size_text(int(value))
    return str(value)


def flatten(settings: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as (dotted name, value) rows; sizes as the CLI takes them."""
    if isinstance(settings, dict) or hasattr(settings, "items"):
        rows: list[tuple[str, str]] = []
        for k, v in sorted(settings.items()):
            rows += flatten(v, f"{prefix}{k}.")
        return rows
    name = prefix.rstrip(".")
    if isinstance(settings, list | tuple):
        return [(name, ", ".join(str(v) for v in settings) or "—")]
    return [(name, setting_text(name, settings))]


class Monitor:
    """Routes over one control DB; ``token`` is None when the monitor is read-only."""

    def __init__(self, db: str, token: str | None = None) -> None:
        self.db = db
        self.token = token
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"),
                               autoescape=select_autoescape(default=True,
                                                            default_for_string=True))
        self.env.filters.update(FILTERS)
        self.env.filters["flatten"] = flatten
        self.env.globals.update(actions=token is not None, refresh_ms=REFRESH_MS,
                                quote=quote, now_utc=lambda: datetime.now(UTC))

    # -- helpers ---------------------------------------------------------------------

    def page(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status_code)

    def not_found(self, what: str) -> HTTPException:
        return HTTPException(404, what)

    def _job_names(self) -> list[str]:
        # Every job's totals: aggregate queries, no partition read.
        return [j.job for j in lakeshift.status(db=self.db).jobs]

    def job_status(self, name: str, offset: int = 0, limit: int | None = 0,
                   state: list[str] | None = None) -> lakeshift.JobStatus:
        """The job with ``limit`` of its partitions from ``offset`` (a page: a job may have
        tens of thousands), of every state or only those in ``state``."""
        if name not in self._job_names():
            raise self.not_found(f"no job {name!r} in this control DB")
        try:
            return lakeshift.status(db=self.db, job=name, offset=offset, limit=limit,
                                    state=state).jobs[0]
        except lakeshift.UsageError as e:  # a state that is none
            raise HTTPException(400, str(e).replace("--state", "state")) from None

    def run(self, run_id: int, offset: int = 0, limit: int | None = 0) -> lakeshift.RunDetail:
        detail = lakeshift.run_detail(run_id, db=self.db, offset=offset, limit=limit)
        if detail is None:
            raise self.not_found(f"no run {run_id} in this control DB")
        return detail

    def partition_run(self, pr_id: int) -> lakeshift.PartitionRunStatus:
        pr = lakeshift.partition_run(pr_id, db=self.db)
        if pr is None:
            raise self.not_found(f"no partition run {pr_id} in this control DB")
        return pr

    def check_token(self, request: Request, form: dict[str, str]) -> None:
        """Actions need the monitor started with --allow-actions and the same token, sent
        as the form field ``token``, an ``X-Lakeshift-Token`` header or a bearer token."""
        if self.token is None:
            raise HTTPException(403, "this monitor is read-only: start it with "
                                "--allow-actions and a token (LAKESHIFT_MONITOR_TOKEN or "
                                "--token-file FILE) to allow actions")
        auth = request.headers.get("authorization", "")
        given = (form.get("token") or request.headers.get("x-lakeshift-token")
                 or (auth[7:] if auth.lower().startswith("bearer ") else ""))
        if not hmac.compare_digest(str(given).encode(), self.token.encode()):
            raise HTTPException(403, "wrong or missing token: actions need the token the "
                                "monitor was started with")

    # -- pages -----------------------------------------------------------------------

    def jobs_page(self, request: Request) -> Response:
        st = lakeshift.status(db=self.db)
        return self.page("jobs.html", status=st, api="/api/jobs",
                         live=any(self._going_on(j) for j in st.jobs))

    def _going_on(self, job: lakeshift.JobStatus) -> bool:
        """``job_going_on`` for a job of the jobs list (which comes without runs, but with
        its last sync pass, and with ``interrupted``: those of its partitions stored running
        whose holder is gone; live while any other is held): a running run holds a partition but
        between claims, and a sync --delete pass while it deletes: its last sync pass says
        that one."""
        if sync_waiting(job):
            return True
        if job.last_sync_pass is not None and job.last_sync_pass.state == "running":
            # (Given with the list: a --delete pass deletes once its partitions are done,
            # when the job holds no partition.)
            return True
        return job.running > job.interrupted

    def job_page(self, request: Request) -> Response:
        name, page = request.path_params["job"], page_number(request)
        job = self.job_status(name, offset=(page - 1) * PAGE, limit=PAGE)
        return self.page("job.html", job=job, message=done_message(request),
                         live=job_going_on(job),
                         api=f"/api/jobs/{quote(name, safe='')}"
                             f"?offset={(page - 1) * PAGE}&limit={PAGE}",
                         pages=pages(page, job.partitions))

    def run_page(self, request: Request) -> Response:
        run_id, page = request.path_params["run_id"], page_number(request)
        detail = self.run(run_id, offset=(page - 1) * PAGE, limit=PAGE)
        return self.page("run.html", d=detail, chart=throughput_svg(
            detail.samples, detail.run.started_at),
            api=f"/api/runs/{detail.run.id}?offset={(page - 1) * PAGE}&limit={PAGE}",
            message=run_message(request, detail.run),
            pages=pages(page, detail.partition_runs_total),
            live=detail.run.state == "running")

    def partition_run_page(self, request: Request) -> Response:
        pr = self.partition_run(request.path_params["pr_id"])
        page = page_number(request)
        failures = lakeshift.run_failures_page(pr.run_id, db=self.db, partition_run_id=pr.id,
                                               offset=(page - 1) * PAGE, limit=PAGE)
        if failures is None:  # deleted since (delete-job)
            raise self.not_found(f"no partition run {pr.id} in this control DB")
        return self.page("partition_run.html", pr=pr, failures=failures,
                         pages=pages(page, failures.total),
                         api=f"/api/partition-runs/{pr.id}", live=pr.state == "running")

    def run_chart(self, request: Request) -> Response:
        detail = self.run(request.path_params["run_id"])
        return Response(str(throughput_svg(detail.samples, detail.run.started_at)),
                        media_type="image/svg+xml")

    def failures_csv(self, request: Request) -> Response:
        """The failure log as CSV, streamed a page of rows at a time (memory stays flat),
        every cell a spreadsheet could run as a formula neutralised (api.csv_cell)."""
        run_id = request.path_params["run_id"]
        raw = request.query_params.get("partition_run")
        pr_id = int(raw) if raw and raw.isdigit() else None
        if raw and pr_id is None:
            raise HTTPException(400, "partition_run must be a number")
        rows = lakeshift.iter_run_failures(run_id, db=self.db, partition_run_id=pr_id)
        if rows is None:
            raise self.not_found(f"no run {run_id} (or partition run {raw}) in this DB")
        name = f"failures-run{run_id}" + (f"-partition-run{pr_id}" if pr_id else "") + ".csv"
        return StreamingResponse(csv_lines(rows), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition":
                                          f'attachment; filename="{name}"'})

    # -- actions ---------------------------------------------------------------------

    async def cancel(self, request: Request) -> Response:
        form = await _form(request)
        self.check_token(request, form)
        run_id = request.path_params["run_id"]
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(reading(self.run), run_id)  # 404 for an unknown run
        asked = await run_in_threadpool(lakeshift.cancel_run, run_id, db=self.db)
        return self._done(request, f"/runs/{run_id}",
                          "cancel-requested" if asked else "not-running", asked)

    async def rerun_failed(self, request: Request) -> Response:
        form = await _form(request)
        self.check_token(request, form)
        name = request.path_params["job"]
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(reading(self.job_status), name)  # 404 for an unknown job
        n = await run_in_threadpool(lakeshift.rerun_failed, name, db=self.db)
        return self._done(request, f"/jobs/{quote(name, safe='')}", "rerun-failed", n)

    def _done(self, request: Request, back: str, code: str, value: Any) -> Response:
        """The action's answer: JSON with a stable ``code``, or back to the page with only
        that code in its URL (the page words it: a link cannot put text on a page)."""
        n = value if isinstance(value, int) and not isinstance(value, bool) else 0
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"ok": True, "code": code,
                                 "message": DONE_MESSAGES[code].format(n=n, s=_s(n)),
                                 "result": value})
        query = f"done={code}" + (f"&n={n}" if code == "rerun-failed" else "")
        return RedirectResponse(f"{back}?{query}", status_code=303)

    # -- JSON and metrics ------------------------------------------------------------

    def api_jobs(self, request: Request) -> Response:
        return JSONResponse(to_jsonable(lakeshift.status(db=self.db)))

    def api_job(self, request: Request) -> Response:
        offset = int_param(request, "offset", 0)
        limit = int_param(request, "limit", PAGE, MAX_PAGE)
        # ?state=failed&state=running (or failed,running; attention; all), as status --state.
        state = request.query_params.getlist("state") or None
        return JSONResponse(to_jsonable(self.job_status(request.path_params["job"], offset,
                                                        limit, state)))

    def api_run(self, request: Request) -> Response:
        offset = int_param(request, "offset", 0)
        limit = int_param(request, "limit", PAGE, MAX_PAGE)
        return JSONResponse(to_jsonable(self.run(request.path_params["run_id"], offset,
                                                 limit)))

    def api_partition_run(self, request: Request) -> Response:
        return JSONResponse(to_jsonable(self.partition_run(request.path_params["pr_id"])))

    def api_failures(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        page = lakeshift.run_failures_page(run_id, db=self.db,
                                           offset=int_param(request, "offset", 0),
                                           limit=int_param(request, "limit", PAGE, MAX_PAGE))
        if page is None:
            raise self.not_found(f"no run {run_id} in this control DB")
        return JSONResponse(to_jsonable(page))

    def metrics(self, request: Request) -> Response:
        return Response(exposition(self.db),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    # -- errors ----------------------------------------------------------------------

    def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: "Not found", 403: "Not allowed", 400: "Bad request",
                  405: "Method not allowed"}
        detail = exc.detail if exc.status_code != 404 or exc.detail != "Not Found" else \
            f"no page {request.url.path}"
        return self._error(request, exc.status_code, titles.get(exc.status_code, "Error"),
                           detail, ERROR_CODES.get(exc.status_code, "error"))

    def db_error(self, request: Request, exc: Exception) -> Response:
        # A LakeshiftError from the API: the control DB is missing, unreachable, damaged,
        # or of an older schema (which the monitor, only reading, does not upgrade).
        if isinstance(exc, lakeshift.SchemaOutdated):
            return self._error(request, 503, "Control DB schema outdated", str(exc),
                               "schema-outdated")
        return self._error(request, 503, "Control DB unavailable", str(exc),
                           "db-unavailable")

    def internal_error(self, request: Request, exc: Exception) -> Response:
        return self._error(request, 500, "Internal error",
                           f"internal error ({type(exc).__name__}); this is a bug",
                           "internal")

    def _error(self, request: Request, code: int, title: str, detail: str,
               reason: str) -> Response:
        if request.url.path.startswith("/api/") or "application/json" in request.headers.get(
                "accept", ""):
            return JSONResponse({"error": {"status": code, "code": reason,
                                           "message": detail}}, status_code=code)
        if request.url.path == "/metrics":
            return Response(f"{detail}\n", status_code=code, media_type="text/plain")
        return self.page("error.html", status_code=code, code=code, title=title,
                         detail=detail, reason=reason)


def job_going_on(job: lakeshift.JobStatus) -> bool:
    """Whether the job is still going on, so its page can change by itself: a run of it is
    running (``runs``: filled for a job asked for by name) or its sync scheduler waits for
    the next pass.  Partitions left ``running`` by a process that died are not: their run
    reads as interrupted.  The pages' "live" badge says this, and nothing else."""
    return run_going_on(job.runs) or sync_waiting(job)


def sync_waiting(job: lakeshift.JobStatus) -> bool:
    """A sync scheduler holds the job and its next pass is to come (a scheduler that died
    leaves a time that passes)."""
    return (job.sync_schedule is not None and job.next_sync_at is not None
            and job.next_sync_at > datetime.now(UTC))


def csv_lines(rows: Iterator[lakeshift.Failure]) -> Iterator[str]:
    """The failure log's CSV (write_failures_csv's columns), a chunk per 500 rows."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(FAILURE_FIELDS)
    try:
        for i, f in enumerate(rows, 1):
            w.writerow([csv_cell(getattr(f, name)) for name in FAILURE_FIELDS])
            if i % 500 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


#: What each action's code says on the page it returns to (``?done=CODE``).
DONE_MESSAGES = {
    "cancel-requested": "cancel requested: the run stops at its next heartbeat",
    "not-running": "the run is not running: nothing to cancel",
    "rerun-failed": "{n} failed partition{s} pending again: a running run with a free batch "
                    "slot takes them, else the next `lakeshift run`",
}


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def done_message(request: Request) -> str | None:
    """The message of a known ``?done=`` code; any other query shows nothing."""
    text = DONE_MESSAGES.get(request.query_params.get("done", ""))
    raw = request.query_params.get("n", "0")
    n = int(raw) if raw.isdigit() and len(raw) < 10 else 0
    return None if text is None else text.format(n=n, s=_s(n))


def run_message(request: Request, run: lakeshift.RunStatus) -> str | None:
    """``done_message`` on a run's page: ``?done=cancel-requested`` stays in the page's
    address (and each refresh renders it again), but once the run has ended the request is
    history, and the message says how the run ended instead."""
    message = done_message(request)
    if request.query_params.get("done") != "cancel-requested" or run.state == "running":
        return message
    at = run.finished_at.strftime("%Y-%m-%d %H:%M:%SZ") if run.finished_at else "—"
    if run.state == "cancelled":
        return f"the run was cancelled at {at}"
    return f"the run ended ({run.state}) at {at}, before the cancel took effect"


async def _form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form (the pages' only kind; no multipart parser)."""
    if request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        body = (await request.body())[:65536].decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(body).items()}
    return {}


#: Sent with every answer: no script, style or frame from anywhere else, so even an escaping
#: mistake could not run a script a key smuggled in; no sniffing of content types.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; "
                                 b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(db: str, token: str | None = None,
               allowed_hosts: Sequence[str] | None = None) -> Starlette:
    """The monitor over control DB ``db``; actions are offered only with a ``token``.
    ``allowed_hosts``: the Host headers answered (a page another site's script reaches
    through DNS rebinding names that site's host, and is refused); None answers any."""
    m = Monitor(db, token)

    def get(path: str, fn: Callable[[Request], Any]) -> Route:
        return Route(path, reading(fn), methods=["GET"])

    routes = [
        get("/", m.jobs_page),
        get("/jobs/{job:path}", m.job_page),
        get("/runs/{run_id:int}", m.run_page),
        get("/runs/{run_id:int}/chart.svg", m.run_chart),
        get("/runs/{run_id:int}/failures.csv", m.failures_csv),
        get("/partition-runs/{pr_id:int}", m.partition_run_page),
        Route("/runs/{run_id:int}/cancel", m.cancel, methods=["POST"]),
        Route("/jobs/{job:path}/rerun-failed", m.rerun_failed, methods=["POST"]),
        get("/api/jobs", m.api_jobs),
        get("/api/jobs/{job:path}", m.api_job),
        get("/api/runs/{run_id:int}", m.api_run),
        get("/api/runs/{run_id:int}/failures", m.api_failures),
        get("/api/partition-runs/{pr_id:int}", m.api_partition_run),
        get("/metrics", m.metrics),
        get("/favicon.ico", lambda request: Response(status_code=204)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    return Starlette(routes=routes, middleware=middleware, exception_handlers={
        HTTPException: m.http_error, lakeshift.LakeshiftError: m.db_error,
        Exception: m.internal_error})

