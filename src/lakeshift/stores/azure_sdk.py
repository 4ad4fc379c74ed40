"""Blob operations through the official async SDK, for Entra ID (token) credentials.

The same operations as ``azure_rest.LeanBlobClient`` (which serves account keys and SAS
without the SDK's per-request cost and import time), with the same signatures and errors, so
``azure.AzureBlobStore`` uses either.  A streamed, service-checked put is not offered here:
the SDK hashes a body itself before it sends ``Content-MD5``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from lakeshift.errors import AuthError, LakeshiftError, NotFoundError, TransientError
from lakeshift.model import ObjectInfo, ObjectProps
from lakeshift.redact import redact
from lakeshift.stores.azure_rest import AUTH_CODES, ListPage, status_error
from lakeshift.stores.props import FOLDER_KEY, unquote_etag


class SdkBlobClient:
    def __init__(self, endpoint: str, container: str, credential: Any) -> None:
        from azure.storage.blob.aio import BlobServiceClient

        # lakeshift retries on its own (engine.retry), so the SDK must not.
        self._service = BlobServiceClient(endpoint, credential=credential, retry_total=0,
                                          connection_timeout=10, read_timeout=300,
                                          max_single_put_size=5000 * 1024 * 1024)
        self._container = self._service.get_container_client(container)
        self.last_date: datetime | None = None

    async def account_is_hns(self, what: str) -> bool:
        try:
            info = await self._service.get_account_information()
        except Exception as e:
            raise sdk_error(e, what) from None
        date = info.get("date")
        if isinstance(date, datetime):
            self.last_date = date
        return bool(info.get("is_hns_enabled"))

    async def create_container(self, what: str) -> bool:
        from azure.core.exceptions import ResourceExistsError

        try:
            await self._container.create_container()
        except ResourceExistsError:
            return False
        except Exception as e:
            raise sdk_error(e, what) from None
        return True

    async def list_page(self, prefix: str, delimiter: str | None, marker: str | None,
                        what: str, size: int = 5000) -> ListPage:
        from email.utils import parsedate_to_datetime

        from azure.storage.blob.aio import BlobPrefix

        def keep_date(response: Any) -> None:  # the service's clock, for server_time
            date = response.http_response.headers.get("Date")
            if date:
                self.last_date = parsedate_to_datetime(date)

        pager: Any
        try:
            if delimiter:
                pager = self._container.walk_blobs(name_starts_with=prefix or None,
                                                   include=["metadata"], delimiter=delimiter,
                                                   results_per_page=size,
                                                   raw_response_hook=keep_date)
            else:
                pager = self._container.list_blobs(name_starts_with=prefix or None,
                                                   include=["metadata"], results_per_page=size,
                                                   raw_response_hook=keep_date)
            pages: Any = pager.by_page(continuation_token=marker)
            objects: list[ObjectInfo] = []
            prefixes: list[str] = []
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                return ListPage([], [], None)
            async for item in page:
                if isinstance(item, BlobPrefix):
                    prefixes.append(item.name)
                else:
                    objects.append(_info(item))
        except Exception as e:
            raise sdk_error(e, what) from None
        return ListPage(objects, prefixes, pages.continuation_token or None)

    async def head(self, key: str, what: str) -> ObjectInfo | None:
        try:
            p = await self._container.get_blob_client(key).get_blob_properties()
        except Exception as e:
            err = sdk_error(e, what)
            if isinstance(err, NotFoundError):
                return None
            raise err from None
        return _info(p)

    async def delete(self, key: str, what: str) -> None:
        try:
            await self._container.delete_blob(key)
        except Exception as e:
            err = sdk_error(e, what)
            if not isinstance(err, NotFoundError):
                raise err from None

    async def put(self, key: str, data: bytes, props: ObjectProps, md5: bytes,
                  metadata: dict[str, str], what: str) -> None:
        try:
            await self._container.get_blob_client(key).upload_blob(
                data, overwrite=True, length=len(data), content_settings=_settings(props, md5),
                metadata=metadata, validate_content=True)
        except Exception as e:
            raise sdk_error(e, what) from None

    async def put_stream(self, key: str, size: int, chunks: AsyncIterator[bytes],
                         props: ObjectProps, md5: bytes, metadata: dict[str, str],
                         what: str) -> None:
        raise LakeshiftError(f"{what}: streamed, service-checked puts need an account key or "
                             "SAS (capabilities.stream_put is false)")

    async def put_block(self, key: str, block_id: str, data: bytes, md5: bytes,
                        what: str) -> None:
        try:
            await self._container.get_blob_client(key).stage_block(
                block_id, data, length=len(data), validate_content=True)
        except Exception as e:
            raise sdk_error(e, what) from None

    async def put_block_list(self, key: str, block_ids: Sequence[str], props: ObjectProps,
                             md5: bytes | None, metadata: dict[str, str], what: str) -> None:
        from azure.storage.blob import BlobBlock

        try:
            await self._container.get_blob_client(key).commit_block_list(
                [BlobBlock(i) for i in block_ids], content_settings=_settings(props, md5),
                metadata=metadata)
        except Exception as e:
            raise sdk_error(e, what) from None

    async def close(self) -> None:
        await self._service.close()


def _settings(props: ObjectProps, md5: bytes | None) -> Any:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type=props.content_type or "application/octet-stream",
                           content_encoding=props.content_encoding,
                           cache_control=props.cache_control,
                           content_disposition=props.content_disposition,
                           content_language=props.content_language,
                           content_md5=bytearray(md5) if md5 else None)


def _info(b: Any) -> ObjectInfo:
    md5 = b.content_settings.content_md5 if b.content_settings else None
    meta = dict(b.metadata or {})
    return ObjectInfo(b.name, int(b.size or 0), b.last_modified, unquote_etag(b.etag),
                      bytes(md5) if md5 else None,
                      meta.get(FOLDER_KEY, "").lower() == "true", meta)


def sdk_error(exc: BaseException, what: str) -> LakeshiftError:
    """Translate an azure-core / azure-storage exception into the lakeshift tree."""
    from azure.core import exceptions as ax

    if isinstance(exc, LakeshiftError):
        return exc
    raw_code = getattr(exc, "error_code", "") or ""
    code = str(getattr(raw_code, "value", raw_code))
    response = getattr(exc, "response", None)
    status = int(getattr(response, "status_code", 0) or getattr(exc, "status_code", 0) or 0)
    if isinstance(exc, ax.ClientAuthenticationError) and code not in AUTH_CODES:
        code = code or "AuthenticationFailed"
        return AuthError(f"{what}: Azure credentials rejected ({code}): check the Entra ID "
                         "credential (--azure-auth)")
    if isinstance(exc, ax.ResourceNotFoundError) and not status:
        status = 404
    if not status and isinstance(exc, ax.ServiceRequestError | ax.ServiceResponseError):
        return TransientError(redact(f"{what}: {type(exc).__name__} "
                                     f"{str(exc).splitlines()[0][:200] if str(exc) else ''}"))
    headers = getattr(response, "headers", None) or {}
    msg = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return status_error(status, code, what, headers.get("Retry-After"), msg)
