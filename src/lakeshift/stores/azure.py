"""Azure Blob Storage and ADLS Gen2 (data written through the blob endpoint).

Reads go through obstore; listings, container creation, account information and every
write go through the official async SDK, because only it can send the checksum headers:
a single Put Blob carries ``Content-MD5`` (transit check) and ``x-ms-blob-content-md5``
(stored), a block upload carries each block's MD5 and the whole object's MD5 on Put Block
List.  Listings use include=metadata, so comparing needs no HEAD per object.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import datetime
from functools import cached_property
from typing import Any

from obstore.store import AzureStore as _ObAzure

from lakeshift.errors import (
    AuthError,
    ForbiddenError,
    IntegrityError,
    InvalidNameError,
    LakeshiftError,
    NotFoundError,
    ThrottledError,
    TransientError,
    UsageError,
)
from lakeshift.model import ObjectInfo, ObjectProps, ReadResult
from lakeshift.redact import redact
from lakeshift.stores import azure_auth
from lakeshift.stores.azure_rest import LeanBlobClient
from lakeshift.stores.base import BlockUpload, Capabilities, StoreConfig
from lakeshift.stores.obstore_common import RETRY_CONFIG, client_options
from lakeshift.stores.obstore_stream import ObstoreRange, open_range
from lakeshift.stores.obstore_stream import read as obstore_read
from lakeshift.stores.props import (
    FOLDER_KEY,
    decode_metadata_name,
    encode_metadata,
    unquote_etag,
)
from lakeshift.stores.s3 import check_http

CAPABILITIES = Capabilities(
    list_start_after=False, content_md5=True, hierarchical=False, acls=False,
    copy_from_url=True, block_upload=True, max_block_size=4000 * 1024 * 1024,
    etag_is_md5=False, metadata_in_listing=True,
)
_AUTH_CODES = {"AuthenticationFailed", "AuthorizationFailure", "InvalidAuthenticationInfo",
               "NoAuthenticationInformation"}


class AzureBlobStore:
    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.url = config.url
        self.container = config.url.bucket
        self.settings = azure_auth.resolve(config.url, config.options)
        self.http = check_http(self.settings.blob_endpoint, config.options.allow_http)
        # Streamed, service-checked puts go through the lean client (key or SAS).
        self.capabilities = replace(CAPABILITIES, stream_put=self.settings.kind != "token")
        self._credential: Any = None

    def _where(self, key: str = "") -> str:
        return f"az://{self.settings.account}/{self.container}/{key}"

    # -- clients (built lazily, inside the event loop that uses them) ---------------

    def _token_credential(self) -> Any:
        if self._credential is None:
            self._credential = azure_auth.token_credential(self.settings)
        return self._credential

    @cached_property
    def _ob(self) -> Any:
        kw: dict[str, Any] = {"account_name": self.settings.account,
                              "endpoint": self.settings.blob_endpoint}
        provider = None
        if self.settings.kind == "key":
            kw["account_key"] = self.settings.key
        elif self.settings.kind == "sas":
            kw["sas_key"] = self.settings.sas
        else:
            from obstore.auth.azure import AzureAsyncCredentialProvider

            provider = AzureAsyncCredentialProvider(self._token_credential())
        return _ObAzure(self.container, client_options=client_options(self.http),
                        retry_config=RETRY_CONFIG, credential_provider=provider, **kw)

    @cached_property
    def _service(self) -> Any:
        from azure.storage.blob.aio import BlobServiceClient

        cred: Any
        if self.settings.kind == "key":
            cred = {"account_name": self.settings.account, "account_key": self.settings.key}
        elif self.settings.kind == "sas":
            from azure.core.credentials import AzureSasCredential

            cred = AzureSasCredential(self.settings.sas or "")
        else:
            cred = self._token_credential()
        # lakeshift retries on its own (engine.retry), so the SDK must not.
        return BlobServiceClient(self.settings.blob_endpoint, credential=cred, retry_total=0,
                                 connection_timeout=10, read_timeout=300,
                                 max_single_put_size=5000 * 1024 * 1024)

    @cached_property
    def _container(self) -> Any:
        return self._service.get_container_client(self.container)

    # -- listing -------------------------------------------------------------------

    async def list_pages(self, prefix: str, start_after: str | None = None
                         ) -> AsyncIterator[Sequence[ObjectInfo]]:
        # List Blobs has no start-after: the pages are filtered here instead.
        pages = self._container.list_blobs(name_starts_with=prefix or None,
                                           include=["metadata"], results_per_page=5000).by_page()
        while True:
            try:
                page = await pages.__anext__()
                items = [_info(b) async for b in page]
            except StopAsyncIteration:
                return
            except Exception as e:
                raise sdk_error(e, self._where(prefix)) from None
            if start_after is not None:
                items = [i for i in items if i.key > start_after]
            if items:
                yield items

    async def list_folders(self, prefix: str, max_objects: int = 100_000
                           ) -> tuple[list[str], list[ObjectInfo] | None]:
        from azure.storage.blob.aio import BlobPrefix

        folders: list[str] = []
        objects: list[ObjectInfo] | None = []
        try:
            async for item in self._container.walk_blobs(name_starts_with=prefix or None,
                                                        include=["metadata"], delimiter="/"):
                if isinstance(item, BlobPrefix):
                    folders.append(item.name)
                elif objects is not None:
                    objects.append(_info(item))
                    if len(objects) > max_objects:
                        objects = None
        except Exception as e:
            raise sdk_error(e, self._where(prefix)) from None
        return folders, objects

    async def check_source(self) -> None:
        try:
            await self._container.get_container_properties()
        except Exception as e:
            raise sdk_error(e, self._where()) from None

    async def prepare_destination(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            info = await self._service.get_account_information()
            if info.get("is_hns_enabled"):
                self.capabilities = replace(self.capabilities, hierarchical=True, acls=True)
        except Exception as e:
            err = sdk_error(e, self._where())
            if isinstance(err, AuthError | TransientError):
                raise err from None
            # Account information needs account-level rights a container SAS may lack.
        try:
            await self._container.create_container()
        except ResourceExistsError:
            pass
        except Exception as e:
            err = sdk_error(e, self._where())
            if isinstance(err, ForbiddenError):
                return  # a SAS may write blobs without the right to create containers
            raise err from None

    async def server_time(self) -> datetime | None:
        try:
            info = await self._container.get_container_properties()
        except Exception as e:
            raise sdk_error(e, self._where()) from None
        last = getattr(info, "last_modified", None)
        # Container properties carry no Date; the account information response does.
        try:
            acct = await self._service.get_account_information()
            return acct.get("date") or last
        except Exception:
            return None

    async def is_folder(self, path: str) -> bool:
        async for _ in self.list_pages(path.rstrip("/") + "/"):
            return True
        return False

    async def exists(self, key: str) -> ObjectInfo | None:
        try:
            p = await self._container.get_blob_client(key).get_blob_properties()
        except Exception as e:
            err = sdk_error(e, self._where(key))
            if isinstance(err, NotFoundError):
                return None
            raise err from None
        return _info(p)

    # -- data ----------------------------------------------------------------------

    async def read(self, key: str, start: int | None = None, end: int | None = None,
                   if_match: str | None = None) -> ReadResult:
        r = await obstore_read(self._ob, key, start, end, if_match, self._where(key))
        return replace(r, props=_decoded(r.props))

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None = None) -> ObstoreRange:
        rng = await open_range(self._ob, key, start, end, if_match, self._where(key))
        rng.props = _decoded(rng.props)
        return rng

    @cached_property
    def _lean(self) -> LeanBlobClient | None:
        if self.settings.kind == "token":
            return None
        return LeanBlobClient(self.settings.blob_endpoint, self.settings.account, self.container,
                           self.settings.key, self.settings.sas)

    async def put(self, key: str, data: bytes, props: ObjectProps, md5: bytes) -> None:
        if self._lean is not None:
            await self._lean.put(key, data, props, md5, encode_metadata(props.metadata),
                                 self._where(key))
            return
        blob = self._container.get_blob_client(key)
        try:
            await blob.upload_blob(data, overwrite=True, length=len(data),
                                   content_settings=_settings(props, md5),
                                   metadata=encode_metadata(props.metadata),
                                   validate_content=True)
        except Exception as e:
            raise sdk_error(e, self._where(key)) from None

    async def put_stream(self, key: str, size: int, chunks: AsyncIterator[bytes],
                         props: ObjectProps, md5: bytes) -> None:
        if self._lean is None:
            raise LakeshiftError(f"{self._where(key)}: streamed puts need an account key or "
                                 "SAS (capabilities.stream_put is false)")
        await self._lean.put_stream(key, size, chunks, props, md5,
                                    encode_metadata(props.metadata), self._where(key))

    async def start_blocks(self, key: str, size: int, block_size: int,
                           props: ObjectProps) -> BlockUpload:
        return _AzureBlocks(self, key, props)

    async def delete(self, key: str) -> None:
        try:
            await self._container.delete_blob(key)
        except Exception as e:
            err = sdk_error(e, self._where(key))
            if not isinstance(err, NotFoundError):
                raise err from None

    async def close(self) -> None:
        lean = self.__dict__.get("_lean")
        if lean is not None:
            await lean.close()
        if "_service" in self.__dict__:
            await self._service.close()
        if self._credential is not None:
            await self._credential.close()


class _AzureBlocks:
    """Put Block for each block (any order, in parallel), then Put Block List with the
    whole object's MD5.  Nothing is visible under the name until the commit."""

    def __init__(self, store: AzureBlobStore, key: str, props: ObjectProps) -> None:
        self.store = store
        self.key = key
        self.props = props
        self.blob = store._container.get_blob_client(key)
        self.token = uuid.uuid4().hex[:12]

    def _id(self, index: int) -> str:
        """The block ID as the SDK takes it (it base64-encodes IDs on the wire itself)."""
        return f"lakeshift-{self.token}-{index:010d}"

    async def stage(self, index: int, offset: int, data: bytes, md5: bytes) -> None:
        lean = self.store._lean
        if lean is not None:
            wire_id = base64.b64encode(self._id(index).encode()).decode()
            await lean.put_block(self.key, wire_id, data, md5, self.store._where(self.key))
            return
        try:
            await self.blob.stage_block(self._id(index), data, length=len(data),
                                        validate_content=True)
        except Exception as e:
            raise sdk_error(e, self.store._where(self.key)) from None

    async def commit(self, order: list[int], md5: bytes | None) -> None:
        from azure.storage.blob import BlobBlock

        blocks = [BlobBlock(self._id(i)) for i in order]
        try:
            await self.blob.commit_block_list(
                blocks, content_settings=_settings(self.props, md5),
                metadata=encode_metadata(self.props.metadata))
        except Exception as e:
            raise sdk_error(e, self.store._where(self.key)) from None

    async def abort(self) -> None:
        # Uncommitted blocks are invisible and the service drops them after a week.
        return None


def _decoded(props: ObjectProps) -> ObjectProps:
    """Metadata names as they were before encode_metadata (see stores/props.py)."""
    return replace(props, metadata={decode_metadata_name(k): v
                                    for k, v in props.metadata.items()})


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
    if isinstance(exc, ax.ClientAuthenticationError) and code not in _AUTH_CODES:
        code = code or "AuthenticationFailed"
    if isinstance(exc, ax.ResourceNotFoundError) and not status:
        status = 404
    if not status and isinstance(exc, ax.ServiceRequestError | ax.ServiceResponseError):
        return TransientError(redact(f"{what}: {type(exc).__name__} "
                                     f"{str(exc).splitlines()[0][:200] if str(exc) else ''}"))
    headers = getattr(response, "headers", None) or {}
    msg = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return status_error(status, code, what, headers.get("Retry-After"), msg)


def status_error(status: int, code: str, what: str, retry_after: str | None = None,
                 message: str = "") -> LakeshiftError:
    """The lakeshift error for an Azure Storage HTTP status and x-ms-error-code."""
    if code in _AUTH_CODES:
        return AuthError(f"{what}: Azure credentials rejected ({code}): check "
                         "AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_ACCOUNT_KEY / the SAS")
    if code == "ContainerNotFound":
        return UsageError(f"{what}: container/filesystem does not exist: create it or fix the URL")
    if status == 404:
        return NotFoundError(f"{what}: not found")
    # Azure says Md5Mismatch; Azurite says InvalidOperation "Provided contentMD5 doesn't match."
    if code in ("Md5Mismatch", "InvalidMd5") or (
            status == 400 and "md5" in message.lower() and "match" in message.lower()):
        return IntegrityError(f"{what}: the service saw a different MD5 ({code})")
    if code in ("InvalidResourceName", "InvalidUri", "OutOfRangeInput"):
        return InvalidNameError(f"{what}: invalid name at the destination ({code})")
    if status == 403:
        return ForbiddenError(f"{what}: permission denied ({code or status})")
    if status in (429, 503) or code in ("ServerBusy", "OperationTimedOut"):
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        return ThrottledError(f"{what}: throttled ({code or status})", delay)
    if status >= 500 or status in (408, 0):
        return TransientError(redact(f"{what}: {code or status} {message}"))
    return LakeshiftError(redact(f"{what}: {code or status} {message}"))
