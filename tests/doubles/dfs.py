"""An ADLS Gen2 account for tests: Azurite's blob service plus the DFS endpoint it lacks.

Azurite answers every DFS call with 400, so this double serves **both endpoints of one
account on one loopback port**, as one store:

* Blob requests are passed to Azurite unchanged (same path, same headers, so a Shared Key
  signature made for the double's address checks out at Azurite: the host is not signed).
  The data fast path (Put Blob / Put Block / ranged GET) is therefore Azurite's own.  Get
  Account Information gets ``x-ms-is-hns-enabled: true`` added: "is the destination
  hierarchical" is still asked of the service, and this service answers as Gen2 does.
* DFS requests are answered here, following Microsoft's "Azure Data Lake Storage Gen2 REST
  API" reference (learn.microsoft.com/rest/api/storageservices/datalakestoragegen2):
  Path - Create (``PUT ?resource=directory``; missing parents are created too), Path -
  Update (``PATCH ?action=setAccessControl`` with ``x-ms-owner`` / ``x-ms-group`` /
  ``x-ms-permissions`` / ``x-ms-acl``, the last two mutually exclusive; default entries on
  a file are refused), Path - Get Properties (``HEAD ?action=getAccessControl``: the four
  headers back, ``x-ms-permissions`` ending in ``+`` when the ACL has more than the base
  entries; a plain HEAD of a directory says ``x-ms-resource-type: directory``).  Errors are
  the reference's JSON ``{"error": {"code", "message"}}`` with ``x-ms-error-code``.

Why one port rather than a DFS-only server beside Azurite: a Gen2 account is one namespace
seen through two endpoints, and the double must see the files the blob fast path wrote.
Directories are kept where Gen2 shows them on the blob endpoint — zero-length blobs with
``hdi_isfolder=true`` metadata, written to Azurite — so List Blobs, verify and the DFS calls
all see one tree.  Owner, group, permissions and ACLs are kept here, per path.  A path
exists for the DFS calls when Azurite holds a blob under that name or under ``name/``.
A blob written through the blob endpoint (Put Blob, Put Block List, Copy Blob) gets its
parent directories as Gen2 makes them: folder blobs, so List Blobs shows them (deleting the
blob leaves them).  Path - Delete (``DELETE ?recursive=``) removes a directory with what is
below it (``recursive=true``) or an empty one (409 ``DirectoryNotEmpty`` otherwise).
Not modelled: rename, leases, recursive ACL updates.

DFS requests must carry a Shared Key signature, checked with the account key (the service's
Shared Key scheme is the same on both endpoints), or an Entra ID bearer token
(``Authorization: Bearer …``, the reference's "Authorize with Microsoft Entra ID") that is
in ``bearer_tokens``; any other token is answered as the service answers an expired one:
401 ``InvalidAuthenticationInfo`` ("Lifetime validation failed. The token is expired.").
Identities in owner, group and ACL entries must be object IDs (GUIDs), ``$superuser``, or
UPNs (``name@domain``) as the service accepts; anything else is 400 ``InvalidInput`` naming it.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests import servers
from tests.helpers import serve_in_thread

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host"}


@dataclass
class PathAccess:
    owner: str
    group: str
    #: The ACL as the service returns it: access entries, then ``default:`` entries.
    acl: str
    #: The sticky bit (x-ms-permissions ``1777`` or ``rwxrwxrwt``): in no ACL entry.
    sticky: bool = False


@dataclass
class DfsDouble:
    azurite_port: int
    port: int = 0
    #: (filesystem, path) → owner, group, ACL.
    access: dict[tuple[str, str], PathAccess] = field(default_factory=dict)
    #: DFS requests seen: (method, filesystem, path, action or resource).
    requests: list[tuple[str, str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: (filesystem, path) of directories known to be in Azurite (a cache; a DELETE of the
    #: name drops it).
    dirs: set[tuple[str, str]] = field(default_factory=set)
    #: Entra ID access tokens the DFS endpoint accepts; each bearer token presented, in turn.
    bearer_tokens: set[str] = field(default_factory=set)
    bearers_seen: list[str] = field(default_factory=list)
    #: Blob requests passed to Azurite: (method, filesystem, query) — the query as sent.
    blob_requests: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """Blob and DFS endpoint of the account (path style, as Azurite's)."""
        return f"http://127.0.0.1:{self.port}/{servers.AZURITE_ACCOUNT}"

    def connection_string(self) -> str:
        return servers.azurite_connection_string(self.port)

    def env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string(),
                "AZURE_STORAGE_DFS_ENDPOINT": self.endpoint}


def _default_acl(is_dir: bool) -> str:
    return "user::rwx,group::r-x,other::---" if is_dir else "user::rw-,group::r--,other::---"


def _sticky(perm: str) -> bool:
    """x-ms-permissions with the sticky bit: 4-digit octal ``1xxx`` or symbolic ``t``/``T``."""
    if re.fullmatch(r"[0-7]{4}", perm):
        return bool(int(perm[0], 8) & 1)
    return perm[8:9] in ("t", "T")


def permissions_of(acl: str, sticky: bool = False) -> str:
    """``rwxr-x---`` (``+`` when named or default entries exist) from an ACL's base entries;
    the mask, when present, stands for the group bits (POSIX ACLs); the sticky bit shows as
    ``t`` (``T`` without other's x), as Gen2 reports it."""
    base: dict[str, str] = {}
    extended = False
    for entry in acl.split(","):
        parts = entry.split(":")
        if parts[0] == "default":
            extended = True
            continue
        kind, name, perm = parts[0], parts[1], parts[2]
        if name:
            extended = True
        else:
            base[kind] = perm
    group = base.get("mask", base.get("group", "---"))
    other = base.get("other", "---")
    if sticky:
        other = other[:2] + ("t" if other[2] == "x" else "T")
    return base.get("user", "---") + group + other + ("+" if extended else "")


def _acl_from_permissions(perm: str, old: str) -> str:
    """x-ms-permissions (``rwxr-x---`` or octal ``0750``) applied to the base entries."""
    if re.fullmatch(r"[0-7]{3,4}", perm):
        digits = perm[-3:]
        perm = "".join("rwx"[i] if int(d) & (4 >> i) else "-" for d in digits for i in range(3))
    user, group, other = perm[0:3], perm[3:6], perm[6:9].replace("t", "x").replace("T", "-")
    kept = [e for e in old.split(",") if e.split(":")[1] or e.startswith("default:")
            or e.startswith("mask:")]
    has_mask = any(e.startswith("mask:") for e in kept)
    entries = [f"user::{user}", f"group::{group}" if not has_mask else
               next(e for e in old.split(",") if e.startswith("group::")), f"other::{other}"]
    kept = [f"mask::{group}" if e.startswith("mask:") else e for e in kept]
    return ",".join(entries + kept)


def _valid_identity(name: str) -> bool:
    return not name or name == "$superuser" or bool(_GUID.match(name)) or (
        "@" in name and "." in name.split("@")[-1])


class _Handler(BaseHTTPRequestHandler):
    double: DfsDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    # -- routing -------------------------------------------------------------------

    def _query(self) -> dict[str, str]:
        return {k.lower(): v[0] for k, v in
                parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}

    def _is_dfs(self) -> bool:
        q = self._query()
        if self.command == "PATCH":
            return True
        if self.command == "DELETE" and "recursive" in q:
            return True
        if q.get("resource") in ("directory", "file"):
            return True
        return self.command == "HEAD" and q.get("action", "").lower() in (
            "getaccesscontrol", "getstatus")

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self._is_dfs():
            self._dfs(body)
        else:
            self._proxy(body)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = do_PATCH = _handle

    # -- blob endpoint: Azurite ----------------------------------------------------

    def _proxy(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        fs = unquote(parts.path).lstrip("/").split("/")[1:2]
        with self.double.lock:
            self.double.blob_requests.append((self.command, fs[0] if fs else "", parts.query))
        conn = http.client.HTTPConnection("127.0.0.1", self.double.azurite_port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        headers["Host"] = f"127.0.0.1:{self.double.azurite_port}"
        try:
            conn.request(self.command, self.path, body=body if body else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        q = self._query()
        self._after_blob_request(resp.status, q)  # before the answer, as Gen2 does
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            # send_response wrote Server and Date; this account is hierarchical.
            if k.lower() not in _HOP_HEADERS and k.lower() not in (
                    "content-length", "server", "date", "x-ms-is-hns-enabled"):
                self.send_header(k, v)
        if q.get("restype") == "account" and q.get("comp") == "properties" and \
                resp.status == 200:
            self.send_header("x-ms-is-hns-enabled", "true")
        self.send_header("Content-Length", str(len(data) if self.command != "HEAD" else
                                               resp.getheader("Content-Length") or 0))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _after_blob_request(self, status: int, q: dict[str, str]) -> None:
        """Gen2 keeps a directory for each parent of a blob written through the blob
        endpoint; the double writes it as Gen2 lists it (a folder blob), before the blob
        request is answered."""
        segments = unquote(urlsplit(self.path).path).lstrip("/").split("/", 2)
        if len(segments) < 3 or not segments[2] or "restype" in q:
            return
        _, fs, name = segments
        if self.command == "DELETE":
            with self.double.lock:
                self.double.dirs.discard((fs, name.rstrip("/")))
            return
        if self.command != "PUT" or not 200 <= status < 300 or \
                q.get("comp") not in (None, "blocklist"):
            return
        pieces = name.rstrip("/").split("/")[:-1]
        for i in range(1, len(pieces) + 1):
            self._ensure_directory(fs, "/".join(pieces[:i]))

    def _ensure_directory(self, fs: str, path: str) -> None:
        from urllib.parse import quote

        with self.double.lock:
            if (fs, path) in self.double.dirs:
                return
        status, _ = self._azurite("HEAD", f"/{servers.AZURITE_ACCOUNT}/{fs}/{quote(path)}")
        if status == 404:
            self._azurite("PUT", f"/{servers.AZURITE_ACCOUNT}/{fs}/{quote(path)}",
                          {"x-ms-blob-type": "BlockBlob", "x-ms-meta-hdi_isfolder": "true",
                           "Content-Type": "application/octet-stream"})
        with self.double.lock:
            self.double.dirs.add((fs, path))

    def _azurite(self, method: str, path: str, headers: dict[str, str] | None = None
                 ) -> tuple[int, bytes]:
        """The double's own request to Azurite (signed with the account key)."""
        import base64
        from datetime import UTC, datetime
        from email.utils import format_datetime

        from lakeshift.stores.azure.rest import API_VERSION, shared_key_signature

        h = {"x-ms-version": API_VERSION,
             "x-ms-date": format_datetime(datetime.now(UTC), usegmt=True), **(headers or {})}
        if method == "PUT":
            h["Content-Length"] = "0"
        url = f"http://127.0.0.1:{self.double.azurite_port}{path}"
        h["Authorization"] = shared_key_signature(servers.AZURITE_ACCOUNT,
                                                  base64.b64decode(servers.AZURITE_KEY),
                                                  method, url, h)
        conn = http.client.HTTPConnection("127.0.0.1", self.double.azurite_port, timeout=60)
        try:
            conn.request(method, path, body=b"" if method == "PUT" else None, headers=h)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    # -- DFS endpoint: here --------------------------------------------------------

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self.send_response(status)
        self.send_header("x-ms-error-code", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if self.command != "HEAD" else 0))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _ok(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _signed(self) -> bool:
        import base64

        from lakeshift.stores.azure.rest import shared_key_signature

        given = self.headers.get("Authorization", "")
        headers = {k: v for k, v in self.headers.items()}
        url = f"http://127.0.0.1:{self.double.port}{self.path}"
        want = shared_key_signature(servers.AZURITE_ACCOUNT,
                                    base64.b64decode(servers.AZURITE_KEY), self.command,
                                    url, headers)
        return given == want

    def _kind(self, fs: str, path: str) -> str | None:
        """'file', 'directory' or None, from what Azurite holds."""
        from urllib.parse import quote

        account = servers.AZURITE_ACCOUNT
        status, _ = self._azurite("HEAD", f"/{account}/{fs}/{quote(path)}")
        if status == 200:
            status, body = self._azurite(
                "GET", f"/{account}/{fs}?restype=container&comp=list&include=metadata"
                       f"&prefix={quote(path, safe='')}&maxresults=1")
            if b"<hdi_isfolder>true</hdi_isfolder>" in body:
                return "directory"
            return "file"
        status, body = self._azurite(
            "GET", f"/{account}/{fs}?restype=container&comp=list"
                   f"&prefix={quote(path + '/', safe='')}&maxresults=1")
        return "directory" if status == 200 and b"<Blob>" in body else None

    def _dfs(self, body: bytes) -> None:
        d = self.double
        parts = urlsplit(self.path)
        segments = unquote(parts.path).lstrip("/").split("/", 2)
        if len(segments) < 3 or not segments[2]:
            self._error(400, "InvalidUri", "the DFS double serves paths only")
            return
        _, fs, path = segments
        path = path.strip("/")
        q = self._query()
        what = q.get("action") or q.get("resource") or ""
        with d.lock:
            d.requests.append((self.command, fs, path, what))
        given = self.headers.get("Authorization", "")
        if given.startswith("Bearer "):
            token = given.removeprefix("Bearer ")
            with d.lock:
                d.bearers_seen.append(token)
            if token not in d.bearer_tokens:
                self._error(401, "InvalidAuthenticationInfo", "Server failed to authenticate "
                            "the request. Lifetime validation failed. The token is expired.")
                return
        elif not self._signed():
            self._error(403, "AuthenticationFailed", "Server failed to authenticate the "
                        "request. Make sure the value of Authorization header is formed "
                        "correctly including the signature.")
            return
        if self.command == "PUT":
            self._create(fs, path, q)
        elif self.command == "PATCH" and what.lower() == "setaccesscontrol":
            self._set_access(fs, path)
        elif self.command == "HEAD":
            self._get_access(fs, path, what.lower())
        elif self.command == "DELETE":
            self._delete(fs, path, q.get("recursive", "").lower() == "true")
        else:
            self._error(400, "InvalidQueryParameterValue",
                        f"the DFS double does not implement {self.command} {what}")

    def _create(self, fs: str, path: str, q: dict[str, str]) -> None:
        from urllib.parse import quote

        if q.get("resource") != "directory":
            self._error(400, "InvalidQueryParameterValue",
                        "the DFS double creates directories only (files go through Blob)")
            return
        kind = self._kind(fs, path)
        if kind == "file":
            self._error(409, "PathConflict", "The specified path already exists as a file.")
            return
        if self.headers.get("If-None-Match") == "*" and kind == "directory":
            self._error(409, "PathAlreadyExists", "The specified path already exists.")
            return
        pieces = path.split("/")
        for i in range(1, len(pieces) + 1):
            sub = "/".join(pieces[:i])
            if i < len(pieces) and self._kind(fs, sub) is not None:
                continue
            status, answer = self._azurite(
                "PUT", f"/{servers.AZURITE_ACCOUNT}/{fs}/{quote(sub)}",
                {"x-ms-blob-type": "BlockBlob", "x-ms-meta-hdi_isfolder": "true",
                 "Content-Type": "application/octet-stream"})
            if status == 404:
                self._error(404, "FilesystemNotFound", "The specified filesystem does not "
                            "exist.")
                return
            if status >= 300:
                self._error(500, "InternalError", answer.decode("utf-8", "replace")[:200])
                return
            with self.double.lock:
                self.double.access.setdefault((fs, sub), PathAccess(
                    "$superuser", "$superuser", _default_acl(True)))
        permissions = self.headers.get("x-ms-permissions")
        if permissions:
            with self.double.lock:
                entry = self.double.access[(fs, path)]
                entry.acl = _acl_from_permissions(permissions, entry.acl)
                entry.sticky = _sticky(permissions)
        self._ok(201)

    def _delete(self, fs: str, path: str, recursive: bool) -> None:
        from urllib.parse import quote

        account = servers.AZURITE_ACCOUNT
        kind = self._kind(fs, path)
        if kind is None:
            self._error(404, "PathNotFound", "The specified path does not exist.")
            return
        below: list[str] = []
        if kind == "directory":
            _, body = self._azurite("GET", f"/{account}/{fs}?restype=container&comp=list"
                                           f"&prefix={quote(path + '/', safe='')}")
            below = [html.unescape(n) for n in re.findall(r"<Name>([^<]*)</Name>", body.decode())]
            if below and not recursive:
                self._error(409, "DirectoryNotEmpty", "The recursive query parameter value "
                            "must be true to delete a non-empty directory.")
                return
        for name in [*sorted(below, reverse=True), path]:
            self._azurite("DELETE", f"/{account}/{fs}/{quote(name)}")
            with self.double.lock:
                self.double.dirs.discard((fs, name))
                self.double.access.pop((fs, name), None)
        self._ok(200)

    def _set_access(self, fs: str, path: str) -> None:
        kind = self._kind(fs, path)
        if kind is None:
            self._error(404, "PathNotFound", "The specified path does not exist.")
            return
        owner = self.headers.get("x-ms-owner")
        group = self.headers.get("x-ms-group")
        permissions = self.headers.get("x-ms-permissions")
        acl = self.headers.get("x-ms-acl")
        if permissions and acl:
            self._error(400, "InvalidInput", "x-ms-permissions and x-ms-acl are mutually "
                        "exclusive.")
            return
        names = [n for n in (owner, group) if n]
        if acl:
            entries = [e.strip() for e in acl.split(",") if e.strip()]
            for e in entries:
                parts = e.split(":")
                scope = parts[0] == "default"
                parts = parts[1:] if scope else parts
                if len(parts) != 3 or parts[0] not in ("user", "group", "mask", "other") or \
                        not re.fullmatch(r"[r-][w-][xtT-]", parts[2]):
                    self._error(400, "InvalidInput", f"invalid ACL entry {e!r}")
                    return
                if scope and kind != "directory":
                    self._error(400, "InvalidInput", "default ACL entries are allowed on "
                                "directories only")
                    return
                names.append(parts[1])
            acl = ",".join(entries)
        bad = [n for n in names if not _valid_identity(n)]
        if bad:
            self._error(400, "InvalidInput", f"identity {bad[0]!r} is not an object ID or "
                        "UPN")
            return
        with self.double.lock:
            entry = self.double.access.setdefault(
                (fs, path), PathAccess("$superuser", "$superuser",
                                       _default_acl(kind == "directory")))
            if owner:
                entry.owner = owner
            if group:
                entry.group = group
            if acl:
                entry.acl = acl
            elif permissions:
                entry.acl = _acl_from_permissions(permissions, entry.acl)
            if permissions:
                entry.sticky = _sticky(permissions)
        self._ok(200)

    def _get_access(self, fs: str, path: str, action: str) -> None:
        kind = self._kind(fs, path)
        if kind is None:
            self._error(404, "PathNotFound", "The specified path does not exist.")
            return
        with self.double.lock:
            entry = self.double.access.get((fs, path)) or PathAccess(
                "$superuser", "$superuser", _default_acl(kind == "directory"))
        headers = {"x-ms-owner": entry.owner, "x-ms-group": entry.group,
                   "x-ms-permissions": permissions_of(entry.acl, entry.sticky),
                   "x-ms-resource-type": kind}
        if action == "getaccesscontrol":
            headers["x-ms-acl"] = entry.acl
        self._ok(200, headers)


@contextmanager
def serve(azurite_port: int) -> Iterator[DfsDouble]:
    """Start the double in front of the Azurite on ``azurite_port``, on a free loopback port."""
    double = DfsDouble(azurite_port)
    handler = type("Handler", (_Handler,), {"double": double})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    serve_in_thread(srv)
    double.port = srv.server_address[1]
    try:
        yield double
    finally:
        srv.shutdown()
        srv.server_close()
