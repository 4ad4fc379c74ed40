"""The DFS endpoint of an ADLS Gen2 account: directories and access control.

Through azure-storage-file-datalake, the maintained SDK (DESIGN.md §3): Path - Create
(``resource=directory``), Path - Update (``action=setAccessControl``), Path - Get Properties
(``action=getAccessControl``).  These are one request per directory or per preserved path,
not the data path (which stays on the blob endpoint's lean client), so the SDK's per-request
CPU does not decide throughput; its import (~0.1 s) is paid only when a run needs the DFS
endpoint.  Errors are translated into the error tree at this boundary.

Entra ID: the SDK gets no credential of its own.  Each call carries the store's bearer
token (``BearerTokens``, the same one the blob endpoint's client uses) in its
``Authorization`` header; a call the service refuses as unauthenticated (401, or 403
``AuthenticationFailed``) renews the token — once for all calls it refused — and is sent
again, once.  A token refused after that is the credentials' error (AuthError, exit 3).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from lakeshift.errors import LakeshiftError, TransientError
from lakeshift.redact import redact
from lakeshift.stores.azure.status import status_error
from lakeshift.stores.azure.tokens import BearerTokens
from lakeshift.stores.base import PathAccess

#: One SDK call, given the headers to send with it (the bearer token's).
_Op = Callable[[dict[str, str]], Awaitable[Any]]


class DfsClient:
    """The DFS operations of one filesystem; builds the SDK client lazily (close it)."""

    def __init__(self, endpoint: str, account: str, filesystem: str, key: str | None,
                 sas: str | None, tokens: BearerTokens | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.account = account
        self.filesystem = filesystem
        self._key = key
        self._sas = sas
        self._tokens = tokens
        self._service: Any = None

    def _fs(self) -> Any:
        if self._service is None:
            from azure.storage.filedatalake.aio import DataLakeServiceClient

            credential: Any = None  # Entra ID: the bearer header of each call (_call)
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
        await self._call(lambda h: self._fs().get_directory_client(path).create_directory(
            headers=h), what)

    async def remove_directory(self, path: str, what: str, recursive: bool = False) -> None:
        """Path - Delete a directory; one that is gone is fine.  Not ``recursive`` (the
        default): ``recursive=false``, so the service removes it only while it is empty; one
        that holds anything (409 ``DirectoryNotEmpty``: a run may have written into it since
        it was seen empty) is left, silently, for it is not lakeshift's to remove.
        ``recursive``: with everything below it (a folder whose every path is lakeshift's)."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        async def delete(headers: dict[str, str]) -> None:
            directory = self._fs().get_directory_client(path)
            try:
                if recursive:
                    await directory.delete_directory(headers=headers)
                else:
                    # The SDK's delete_directory always sends recursive=true: its generated
                    # client sends the REST reference's Path - Delete as asked.
                    await directory._client.path.delete(recursive=False, headers=headers)
            except ResourceNotFoundError:
                pass
            except HttpResponseError as e:
                if e.status_code != 409 or _error_code(e) != "DirectoryNotEmpty":
                    raise

        await self._call(delete, what)

    async def set_access(self, path: str, access: PathAccess, what: str) -> None:
        """Path - Update ``setAccessControl`` on a file or a directory.  ACL and permissions
        exclude each other in one request: with both (a sticky bit kept beside an ACL), the
        permissions follow in a second one."""
        kw = {k: v for k, v in (("owner", access.owner), ("group", access.group),
                                ("acl", access.acl)) if v}
        if access.permissions and not access.acl:
            kw["permissions"] = access.permissions
        if kw:
            await self._call(lambda h: self._fs().get_file_client(path).set_access_control(
                headers=h, **kw), what)
        if access.permissions and access.acl:
            await self._call(lambda h: self._fs().get_file_client(path).set_access_control(
                headers=h, permissions=access.permissions), what)

    async def get_access(self, path: str, what: str) -> PathAccess:
        """Path - Get Properties ``getAccessControl``: object IDs as stored (no UPNs)."""
        got = await self._call(
            lambda h: self._fs().get_file_client(path).get_access_control(headers=h), what)
        return PathAccess(str(got.get("owner") or ""), str(got.get("group") or ""),
                          str(got.get("acl") or ""), str(got.get("permissions") or ""))

    async def _call(self, op: _Op, what: str) -> Any:
        from azure.core.exceptions import AzureError, HttpResponseError

        renewed = False
        while True:
            headers: dict[str, str] = {}
            token = None
            if self._tokens is not None:
                token = await self._tokens.get()
                headers["Authorization"] = f"Bearer {token}"
            try:
                return await op(headers)
            except HttpResponseError as e:
                status = int(getattr(e, "status_code", 0) or 0)
                code = _error_code(e)
                refused = status == 401 or (status == 403 and code == "AuthenticationFailed")
                if token is not None and not renewed and refused:
                    # A token the service refuses (expired, revoked): renewed once, and the
                    # call sent again, once.
                    self._tokens.expire(token)  # type: ignore[union-attr]
                    renewed = True
                    continue
                message = redact(str(getattr(e, "message", "") or "").splitlines()[0][:200]
                                 if getattr(e, "message", "") else "")
                # A refusal after the renewal is the credentials' own error, not the path's.
                error: LakeshiftError = status_error(status, code, what, None, message,
                                                     credentials_worked=not (renewed and
                                                                             refused))
                raise error from None
            except AzureError as e:
                raise TransientError(redact(f"{what}: {type(e).__name__}: {str(e)[:200]}")) \
                    from None

    async def close(self) -> None:
        if self._service is not None:
            await self._service.close()
            self._service = None


def _error_code(e: Any) -> str:
    """The service's error code: the SDK's clients set ``error_code`` (a ``StorageErrorCode``
    enum, whose ``str()`` is ``StorageErrorCode.AUTHENTICATION_FAILED``, hence its value);
    an error raised by its generated client has only the response's ``x-ms-error-code``."""
    code = getattr(e, "error_code", None)
    code = getattr(code, "value", code)
    if not code and getattr(e, "response", None) is not None:
        code = e.response.headers.get("x-ms-error-code")
    return str(code or "")
