"""How the monitor pages a long table and reads numbers from a request: ``?page=N`` for
the pages, ``offset``/``limit`` for the JSON API (at most ``MAX_PAGE`` rows), and what the
pager under a paged table shows.  A number that is not one is a 400 naming the parameter.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request

#: Rows per page (partition runs of a run, failures); the JSON API's default ``limit``.
PAGE = 100
#: The largest ``limit`` the JSON API takes.
MAX_PAGE = 1000


def int_param(request: Request, name: str, default: int, most: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if (not (raw.isascii() and raw.isdigit()) or len(raw) > 18
            or (most is not None and int(raw) > most)):
        limit = f" up to {most}" if most is not None else ""
        raise HTTPException(400, f"{name} must be a whole number{limit}")
    return int(raw)


def page_number(request: Request) -> int:
    """``?page=N`` (from 1); a page past the end is shown empty, with a link back."""
    page = int_param(request, "page", 1)
    if page < 1:
        raise HTTPException(400, "page must be 1 or more")
    return page


def pages(page: int, total: int) -> dict[str, int]:
    """What the pager under a paged table shows."""
    last = max(-(-total // PAGE), 1)
    return {"page": page, "last": last, "total": total, "first_row": (page - 1) * PAGE + 1,
            "size": PAGE}

