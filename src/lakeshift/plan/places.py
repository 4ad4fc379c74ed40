"""Where a URL points, whatever its spelling: the store it names and the path in it.

One Azure container is ``az://lake/raw`` (its account from the credentials),
``abfss://lake@acct.dfs.core.windows.net/raw`` and
``https://acct.blob.core.windows.net/lake/raw`` (and, with an emulator's endpoint set,
``https://127.0.0.1:10000/acct/lake/raw``, the account first in the path); one S3 bucket
is the same name at the same endpoint (``--s3-endpoint``, else the environment's
``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, else AWS's); one local folder is a relative
path, an absolute one, its ``file://`` URL or a symlink to it.  ``copy``, ``plan`` and
``sync`` refuse a destination inside its source by these places (plan/source.py), and ``tune
--config`` checks that its pair is the config's.  Nothing here asks a server.
"""

from __future__ import annotations

import os

from lakeshift.errors import LakeshiftError, UsageError
from lakeshift.stores.base import StoreOptions
from lakeshift.urls import StoreURL, parse_url


def store_place(u: StoreURL, options: StoreOptions) -> tuple[str, ...]:
    """The store ``u`` names, as one value for every spelling: local disk; a bucket at its
    S3 endpoint; an Azure container at its account's endpoint (the account and endpoint
    the store would use, as it resolves them from the URL and the credentials)."""
    if u.scheme == "file":
        return ("file",)
    if u.scheme == "azure":
        from lakeshift.stores.azure.auth import resolve

        try:
            settings = resolve(u, options)
            account = (settings.account, settings.blob_endpoint)
        except LakeshiftError:
            # Say, a URL's account that is not the connection string's, or no credentials:
            # the store will refuse it; here it is only the account the URL names, at the
            # endpoint the URL names (spelled as a resolved one is, for store_difference).
            account = (u.account or "", _named_endpoint(u))
        return ("azure", *account, u.bucket)
    if u.scheme == "s3":
        # A bucket's name is unique only at its endpoint (MinIO, another S3 service): the
        # endpoint the store would use (--s3-endpoint, else the environment's), or AWS's.
        endpoint = (options.s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3")
                    or os.environ.get("AWS_ENDPOINT_URL") or "")
        return ("s3", endpoint.strip().rstrip("/").lower(), u.bucket)
    return (u.scheme, u.account or "", u.bucket)


def _named_endpoint(u: StoreURL) -> str:
    """The Blob endpoint an Azure URL names itself ('' for ``az://``)."""
    if not u.account:
        return ""
    if u.host:
        return f"{u.form or 'https'}://{u.host}/{u.account}"
    return f"https://{u.account}.blob.{u.endpoint_suffix or 'core.windows.net'}"


def place(url: str, options: StoreOptions) -> tuple[tuple[str, ...], str]:
    """Where ``url`` points: :func:`store_place` and the path in it, without a trailing
    slash (a local path absolute, its symlinks resolved)."""
    u = parse_url(url)
    if u.scheme == "file":
        return store_place(u, options), os.path.realpath(u.bucket).rstrip("/")
    return store_place(u, options), u.path.rstrip("/")


def absolute_local(url: str) -> str:
    """A local path given relative (or from ``~``) made absolute, from the current folder:
    what ``plan`` and ``sync`` save for a job (a ``run`` from another folder would resolve
    a relative one elsewhere) and what ``status`` shows for one saved so before.  Its
    trailing slash kept; any URL (``file://`` ones are absolute), or text that is no URL,
    as given."""
    try:
        local = parse_url(url).scheme == "file"
    except UsageError:
        return url  # (refused where it is used, as typed)
    if not local or "://" in url or os.path.isabs(url):
        return url
    absolute = os.path.abspath(os.path.expanduser(url))
    return absolute + "/" if url.endswith("/") and absolute != "/" else absolute


def _path_within(path_a: str, path_b: str) -> bool:
    return path_a == path_b or path_b == "" or path_a.startswith(path_b + "/")


def url_within(a: str, a_options: StoreOptions, b: str, b_options: StoreOptions) -> bool:
    """Whether URL ``a`` names ``b`` or a folder inside it, however each is spelled: the
    same store and a path at or below ``b``'s.  A URL that does not parse is not within."""
    try:
        (place_a, path_a), (place_b, path_b) = place(a, a_options), place(b, b_options)
    except UsageError:
        return False
    return place_a == place_b and _path_within(path_a, path_b)


def _server(p: tuple[str, ...]) -> str:
    """The server part of an S3 or Azure :func:`store_place`, in words."""
    if p[0] == "s3":
        return f"the S3 endpoint {p[1]}" if p[1] else "AWS's S3 endpoint"
    account, endpoint = p[1] or "(none)", p[2]
    return f"the Azure account {account} at {endpoint}" if endpoint else \
        f"the Azure account {account}"


def store_difference(a: str, a_options: StoreOptions, b: str,
                     b_options: StoreOptions) -> tuple[str, str] | None:
    """When ``a`` would be :func:`url_within` ``b`` but for the server each reaches (one
    bucket or container name, at another S3 endpoint or Azure account): that server of
    ``a`` and of ``b``, in words; else None.  A message that names the two URLs alone
    would name the same thing twice."""
    try:
        (place_a, path_a), (place_b, path_b) = place(a, a_options), place(b, b_options)
    except UsageError:
        return None
    if place_a == place_b or place_a[0] not in ("s3", "azure") or \
            (place_a[0], place_a[-1]) != (place_b[0], place_b[-1]) or \
            not _path_within(path_a, path_b):
        return None
    return _server(place_a), _server(place_b)
