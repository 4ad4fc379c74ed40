"""A WebHDFS server for tests: ADLS Gen1 and Hadoop HDFS cannot run here.

Follows the published references: Apache Hadoop's "WebHDFS REST API" (LISTSTATUS,
LISTSTATUS_BATCH with startAfter → DirectoryListing {partialListing, remainingEntries},
GETFILESTATUS, OPEN with offset/length answered by a 307 redirect from the NameNode to a
DataNode, GETFILECHECKSUM, GETACLSTATUS, RemoteException JSON errors, user.name and
delegation parameters) and Microsoft's "Azure Data Lake Store REST API" / "WebHDFS
FileSystem APIs" for Gen1 (https://ACCOUNT.azuredatalakestore.net/webhdfs/v1/…, LISTSTATUS
paged with listSize/listAfter, a bearer token in Authorization, OPEN answered directly).

It serves a directory tree from a folder on disk (``root``).  Stdlib only
(ThreadingHTTPServer); the NameNode and the DataNode are two servers on two loopback ports.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.helpers import serve_in_thread

PREFIX = "/webhdfs/v1"
#: Owner and group of Gen1 paths not set otherwise (object IDs, as Gen1 keeps them).
GEN1_OWNER = "0e0e0e0e-0000-4000-8000-00000000000a"
GEN1_GROUP = "0e0e0e0e-0000-4000-8000-00000000000b"


@dataclass
class WebHdfsDouble:
    root: Path
    dialect: str  # "gen1" | "hadoop"
    #: Gen1: the bearer token every request must carry.
    token: str = "gen1-test-token"
    #: Hadoop's dfs.ls.limit: entries per LISTSTATUS_BATCH answer (small: paging is tested).
    batch_size: int = 3
    #: Paths (relative, no leading slash) whose subtree answers 403 AccessControlException.
    forbidden: set[str] = field(default_factory=set)
    #: ACL entries per path (GETACLSTATUS): the extended entries, as HDFS lists them (named
    #: and default entries, and "group::" when the ACL is extended).
    acls: dict[str, list[str]] = field(default_factory=dict)
    #: (owner, group, octal permission) per path; else GEN1_OWNER, GEN1_GROUP (Hadoop: hdfs,
    #: supergroup), 755 / 644.
    owners: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: Requests seen, as (op, path, query) (for asserting what the client asked).
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    #: The next N requests answer 403 StandbyException (a NameNode fail-over).
    standby: int = 0
    #: A NameNode older than Hadoop 2.8: LISTSTATUS_BATCH is an unknown op (400).
    old_namenode: bool = False
    #: Paths whose reads (OPEN) answer 400 with this RemoteException name.
    refused_reads: dict[str, str] = field(default_factory=dict)
    port: int = 0
    datanode_port: int = 0
    #: The environment a client needs to reach it (set by the fixtures).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write(self, rel: str, data: bytes) -> None:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def _status(path: Path, name: str, dialect: str) -> dict[str, Any]:
    st = path.stat()
    is_dir = path.is_dir()
    out: dict[str, Any] = {
        "accessTime": int(st.st_atime * 1000), "blockSize": 0 if is_dir else 268435456,
        "group": "supergroup", "length": 0 if is_dir else st.st_size,
        "modificationTime": int(st.st_mtime * 1000), "owner": "hdfs", "pathSuffix": name,
        "permission": "755" if is_dir else "644", "replication": 0 if is_dir else 3,
        "type": "DIRECTORY" if is_dir else "FILE"}
    if dialect == "hadoop":
        out["fileId"] = st.st_ino
        out["childrenNum"] = len(os.listdir(path)) if is_dir else 0
        out["storagePolicy"] = 0
    else:
        out["aclBit"] = False
    return out


def _remote(exception: str, java: str, message: str) -> dict[str, Any]:
    return {"RemoteException": {"exception": exception, "javaClassName": java,
                                "message": message}}


class _Handler(BaseHTTPRequestHandler):
    double: WebHdfsDouble
    datanode = False

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, status: int, body: bytes, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode())

    def do_GET(self) -> None:
        d = self.double
        parts = urlsplit(self.path)
        if not parts.path.startswith(PREFIX):
            self._json(404, _remote("FileNotFoundException", "java.io.FileNotFoundException",
                                    f"no such endpoint {parts.path}"))
            return
        rel = unquote(parts.path[len(PREFIX):]).strip("/")
        q = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        op = q.get("op", "").upper()
        d.requests.append((op, rel, q))
        if d.dialect == "gen1":
            if self.headers.get("Authorization") != f"Bearer {d.token}":
                self._json(401, _remote("SecurityException", "java.lang.SecurityException",
                                        "Token Expired or invalid"))
                return
        elif "user.name" not in q and "delegation" not in q:
            self._json(401, _remote("SecurityException", "java.lang.SecurityException",
                                    "Failed to obtain user group information"))
            return
        if d.standby > 0 and not self.datanode:
            d.standby -= 1
            self._json(403, _remote("StandbyException",
                                    "org.apache.hadoop.ipc.StandbyException",
                                    "Operation category READ is not supported in state standby"))
            return
        if any(rel == f or rel.startswith(f + "/") for f in d.forbidden):
            self._json(403, _remote("AccessControlException",
                                    "org.apache.hadoop.security.AccessControlException",
                                    f"Permission denied: user=migrator, access=READ_EXECUTE, "
                                    f"inode=\"/{rel}\""))
            return
        path = d.root / rel if rel else d.root
        if not path.exists():
            self._json(404, _remote("FileNotFoundException", "java.io.FileNotFoundException",
                                    f"File /{rel} does not exist."))
            return
        handler = getattr(self, f"_op_{op.lower()}", None)
        if op == "OPEN" and rel in d.refused_reads:
            name = d.refused_reads[rel]
            self._json(400, _remote(name, f"java.lang.{name}", f"cannot open /{rel}"))
            return
        if handler is None or (op == "LISTSTATUS_BATCH" and d.old_namenode):
            self._json(400, _remote("IllegalArgumentException",
                                    "java.lang.IllegalArgumentException",
                                    f"Invalid value for webhdfs parameter \"op\": {op}"))
            return
        handler(rel, path, q)

    def _entries(self, path: Path) -> list[dict[str, Any]]:
        if path.is_file():
            return [_status(path, "", self.double.dialect)]
        return [_status(path / n, n, self.double.dialect) for n in sorted(os.listdir(path))]

    def _op_liststatus(self, rel: str, path: Path, q: dict[str, str]) -> None:
        entries = self._entries(path)
        if self.double.dialect == "gen1":
            after = q.get("listAfter")
            if after:
                entries = [e for e in entries if e["pathSuffix"] > after]
            if "listSize" in q:
                entries = entries[:int(q["listSize"])]
        self._json(200, {"FileStatuses": {"FileStatus": entries}})

    def _op_liststatus_batch(self, rel: str, path: Path, q: dict[str, str]) -> None:
        if self.double.dialect != "hadoop":
            self._json(400, _remote("IllegalArgumentException",
                                    "java.lang.IllegalArgumentException",
                                    "Invalid value for webhdfs parameter \"op\""))
            return
        entries = self._entries(path)
        after = q.get("startAfter")
        if after:
            entries = [e for e in entries if e["pathSuffix"] > after]
        batch = entries[:self.double.batch_size]
        self._json(200, {"DirectoryListing": {
            "partialListing": {"FileStatuses": {"FileStatus": batch}},
            "remainingEntries": len(entries) - len(batch)}})

    def _op_getfilestatus(self, rel: str, path: Path, q: dict[str, str]) -> None:
        self._json(200, {"FileStatus": _status(path, "", self.double.dialect)})

    def _op_getaclstatus(self, rel: str, path: Path, q: dict[str, str]) -> None:
        # Gen1's principals are Entra object IDs; HDFS's are names.
        default = (GEN1_OWNER, GEN1_GROUP) if self.double.dialect == "gen1" \
            else ("hdfs", "supergroup")
        owner, group, permission = self.double.owners.get(
            rel, (*default, "755" if path.is_dir() else "644"))
        self._json(200, {"AclStatus": {
            "entries": self.double.acls.get(rel, []), "group": group, "owner": owner,
            "permission": permission, "stickyBit": False}})

    def _redirect(self) -> None:
        """Hadoop's NameNode answers OPEN and GETFILECHECKSUM with a DataNode's address."""
        location = (f"http://127.0.0.1:{self.double.datanode_port}{self.path}"
                    "&namenoderpcaddress=127.0.0.1:8020")
        self._send(307, b"", headers={"Location": location})

    def _op_open(self, rel: str, path: Path, q: dict[str, str]) -> None:
        if path.is_dir():
            self._json(404, _remote("FileNotFoundException", "java.io.FileNotFoundException",
                                    f"Path is not a file: /{rel}"))
            return
        if self.double.dialect == "hadoop" and not self.datanode:
            self._redirect()
            return
        data = path.read_bytes()
        offset = int(q.get("offset", 0))
        end = offset + int(q["length"]) if "length" in q else len(data)
        self._send(200, data[offset:end], "application/octet-stream")

    def _op_getfilechecksum(self, rel: str, path: Path, q: dict[str, str]) -> None:
        if self.double.dialect == "hadoop" and not self.datanode:
            self._redirect()
            return
        # Not HDFS's MD5-of-MD5-of-CRC32C, but as opaque and as stable for the same bytes.
        digest = hashlib.md5(path.read_bytes()).hexdigest() + "00000200" + "0" * 16
        self._json(200, {"FileChecksum": {"algorithm": "MD5-of-0MD5-of-512CRC32C",
                                          "bytes": digest, "length": 28}})


@contextmanager
def serve(root: Path, dialect: str, **kw: Any) -> Iterator[WebHdfsDouble]:
    """Start the double (a NameNode, and a DataNode for Hadoop) on free loopback ports."""
    double = WebHdfsDouble(root, dialect, **kw)
    servers = []
    for datanode in (False, True):
        handler = type("Handler", (_Handler,), {"double": double, "datanode": datanode})
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        servers.append(srv)
        serve_in_thread(srv)
    double.port = servers[0].server_address[1]
    double.datanode_port = servers[1].server_address[1]
    try:
        yield double
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


