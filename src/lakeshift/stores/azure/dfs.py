"""The DFS endpoint of an ADLS Gen2 account: directories and access control.

Through azure-storage-file-datalake, the maintained SDK (DESIGN.md §3): Path - Create
(``resource=directory``), Path - Update (``action=setAccessControl``), Path - Get Properties
(``action=getAccessControl``).  These are one request per directory or per preserved path,
not the data path (which stays on the blob endpoint's lean client), so the SDK's per-request
CPU does not decide throughput; its import (~0.1 s) is paid only when a run needs the DFS
endpoint.  Errors are translated into the error tree at this boundary.
"""

from __future__ import annotations

from typing import Any

from lakeshift.errors import LakeshiftError, TransientError
from lakeshift.redact import redact
from lakeshift.stores.azure.rest import status_error
from lakeshift.stores.base import PathAccess


class DfsClient:
    """The DFS operations of one filesystem; builds the SDK client lazily (close it)."""

    def __init__(self, endpoint: str, account: str, filesystem: str, key: str | None,
                 sas: str | None, credential: Any = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.account = account
        self.filesystem = filesystem
        self._key = key
        self._sas = sas
        self._credential = credential
        self._service: Any = None

    def _fs(self) -> Any:
        if self._service is None:
            from azure.storage.filedatalake.aio import DataLakeServiceClient

            credential: Any = self._credential
            if self._key is not None:
                credential = {"account_name": self.account, "account_key": self._key}
            elif self._sas is not None:
                credential = self._sas
            # One attempt per call: retries are lakeshift's own (engine/retry.py).
            self._service = DataLakeServiceClient(self.endpoint, credential=credential,
                                                  retry_total=0)
        return self._service.get_file_system_client(self.filesystem)

    async def make_directory(self, path: str, what: str) -> None:
        """Path - Create a directory (and its missing parents); one that exists is fine."""
        await self._call(self._fs().get_directory_client(path).create_directory(), what)

    async def remove_directory(self, path: str, what: str) -> None:
        """Path - Delete a directory lakeshift made and emptied; one that is gone is fine.
        (The SDK always sends ``recursive=true`` for a directory: callers pass only their
        own, emptied ones.)"""
        from azure.core.exceptions import ResourceNotFoundError

        async def delete() -> None:
            try:
                await self._fs().get_directory_client(path).delete_directory()
            except ResourceNotFoundError:
                pass

        await self._call(delete(), what)

    async def set_access(self, path: str, access: PathAccess, what: str) -> None:
        """Path - Update ``setAccessControl`` on a file or a directory.  ACL and permissions
        exclude each other in one request: with both (a sticky bit kept beside an ACL), the
        permissions follow in a second one."""
        kw = {k: v for k, v in (("owner", access.owner), ("group", access.group),
                                ("acl", access.acl)) if v}
        if access.permissions and not access.acl:
            kw["permissions"] = access.permissions
        if kw:
            await self._call(self._fs().get_file_client(path).set_access_control(**kw), what)
        if access.permissions and access.acl:
            await self._call(self._fs().get_file_client(path).set_access_control(
                permissions=access.permissions), what)

    async def get_access(self, path: str, what: str) -> PathAccess:
        """Path - Get Properties ``getAccessControl``: object IDs as stored (no UPNs)."""
        got = await self._call(self._fs().get_file_client(path).get_access_control(), what)
        return PathAccess(str(got.get("owner") or ""), str(got.get("group") or ""),
                          str(got.get("acl") or ""), str(got.get("permissions") or ""))

    async def _call(self, request: Any, what: str) -> Any:
        from azure.core.exceptions import AzureError, HttpResponseError

        try:
            return await request
        except HttpResponseError as e:
            status = int(getattr(e, "status_code", 0) or 0)
            code = str(getattr(e, "error_code", "") or "")
            message = redact(str(getattr(e, "message", "") or "").splitlines()[0][:200]
                             if getattr(e, "message", "") else "")
            error: LakeshiftError = status_error(status, code, what, None, message,
                                                 credentials_worked=True)
            raise error from None
        except AzureError as e:
            raise TransientError(redact(f"{what}: {type(e).__name__}: {str(e)[:200]}")) \
                from None

    async def close(self) -> None:
        if self._service is not None:
            await self._service.close()
            self._service = None
