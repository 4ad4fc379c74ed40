"""Azure Blob Storage and ADLS Gen2 (data written through the blob endpoint).

Reads go through obstore.  Everything else — listings, container creation, account
information and every write — goes through the lean REST client (azure/rest.py; Shared
Key, SAS or an Entra ID token), which sends the checksum headers obstore cannot: a single
Put Blob carries ``Content-MD5`` (transit check) and ``x-ms-blob-content-md5`` (stored), a
block upload carries each block's MD5 or CRC64 (over plain HTTP) and the whole object's MD5
on Put Block List.
Listings include metadata, so comparing needs no HEAD per object.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from obstore.store import AzureStore as _ObAzure

from lakeshift.errors import (
    AuthError,
    EndpointUnreachable,
    ForbiddenError,
    LakeshiftError,
    ServerCopyUnavailable,
    TransientError,
    UsageError,
)
from lakeshift.model import Data, ObjectInfo, ObjectProps, ReadResult
from lakeshift.stores.azure import auth as azure_auth
from lakeshift.stores.azure.blob_format import PUT_FROM_URL_MAX, SYNC_COPY_MAX, DelegationKey
from lakeshift.stores.azure.dfs import DfsClient
from lakeshift.stores.azure.folders import from_token, held_token, named_folders
from lakeshift.stores.azure.rest import LeanBlobClient
from lakeshift.stores.azure.sas import blob_sas, user_delegation_sas
from lakeshift.stores.azure.tokens import BearerTokens
from lakeshift.stores.base import (
    BlockUpload,
    Capabilities,
    Page,
    PathAccess,
    Pieces,
    StoreConfig,
)
from lakeshift.stores.http import check_http
from lakeshift.stores.obstore_common import RETRY_CONFIG, client_options
from lakeshift.stores.obstore_stream import ObstoreRange, open_range
from lakeshift.stores.obstore_stream import read as obstore_read
from lakeshift.stores.props import SRC_ETAG_KEY, decode_metadata, encode_metadata
from lakeshift.stores.reach import Endpoint, first_contact

CAPABILITIES = Capabilities(
    list_start_after=False, content_md5=True, hierarchical=False, acls=False,
    copy_from_url=True, block_upload=True, max_block_size=4000 * 1024 * 1024,
    etag_is_md5=False, metadata_in_listing=True, max_blocks=50_000, read_url=True,
    from_url_max=PUT_FROM_URL_MAX, lists_folders=True,
)

#: How long a user delegation key lakeshift asks for lives (the service allows 7 days).
_DELEGATION_KEY_LIFETIME = timedelta(hours=1)


class AzureBlobStore:
    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.url = config.url
        self.container = config.url.bucket
        self.page_size = 5000
        self._named = replace(config.url, path="").display()  # as StoreURL.display spells it
        self.settings = azure_auth.resolve(config.url, config.options)
        self.http = check_http(self.settings.blob_endpoint, config.options.allow_http)
        # Over TLS a block cannot change in transit unnoticed; over plain HTTP (emulators,
        # --allow-http) each block carries its MD5 or its CRC64 for the service to check
        # (x-ms-content-crc64 on Put Block: CRC-64/NVME, Blob REST reference; Azurite in
        # --loose mode takes the header without checking it, strict mode refuses it).
        self.capabilities = replace(CAPABILITIES, stream_put=True, put_checks_md5=True,
                                    block_md5=not self.settings.blob_endpoint.startswith("https:"),
                                    block_crc64=True)
        self._credential: Any = None
        self._udk: DelegationKey | None = None
        self._udk_expiry = datetime.min.replace(tzinfo=UTC)
        self._udk_lock: asyncio.Lock | None = None

    def _where(self, key: str = "") -> str:
        """An object (or, for ``key`` "", the container) as messages, failure records and
        reports name it: in the URL's own terms (``StoreURL.display``), a name that is the
        same place when pasted back: ``az://lake/…`` when the user wrote ``az://lake/``
        (the account from the credentials); ``abfss://lake@ACCOUNT.dfs…/…`` or
        ``https://ACCOUNT.blob…/lake/…`` when the URL named the account so -- never
        ``az://ACCOUNT/lake/…``, which reads back as a container named after the account."""
        return self._named + key

    # -- clients (built lazily, inside the event loop that uses them) ---------------

    def _token_credential(self) -> Any:
        if self._credential is None:
            self._credential = azure_auth.token_credential(self.settings.token_source)
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
    def _tokens(self) -> BearerTokens | None:
        """The store's Entra ID tokens, one for both endpoints (blob and DFS): a token the
        service refuses is renewed from a fresh credential (azure-identity's caches it)."""
        if self.settings.kind != "token":
            return None
        source = self.settings.token_source
        return BearerTokens(self._token_credential(),
                            renew=lambda: azure_auth.token_credential(source),
                            authority=azure_auth.token_authority(source),
                            connect_seconds=azure_auth.token_connect_seconds(source))

    @cached_property
    def _blobs(self) -> LeanBlobClient:
        return LeanBlobClient(self.settings.blob_endpoint, self.settings.account, self.container,
                              self.settings.key, self.settings.sas, self._tokens)

    @cached_property
    def _dfs(self) -> DfsClient:
        # The blob endpoint's transport rule: no plain HTTP to another host unless allowed.
        check_http(self.settings.dfs_endpoint, self.config.options.allow_http)
        return DfsClient(self.settings.dfs_endpoint, self.settings.account, self.container,
                         self.settings.key, self.settings.sas, self._tokens)

    # -- directories and access control (hierarchical accounts: the DFS endpoint) -----

    async def make_directory(self, key: str) -> None:
        await self._dfs.make_directory(key.rstrip("/"), self._where(key))

    async def remove_directory(self, key: str, recursive: bool = False) -> None:
        await self._dfs.remove_directory(key.rstrip("/"), self._where(key), recursive)

    async def set_access(self, key: str, access: PathAccess) -> None:
        await self._dfs.set_access(key.rstrip("/"), access, self._where(key))

    async def get_access(self, key: str) -> PathAccess:
        return await self._dfs.get_access(key.rstrip("/"), self._where(key))

    # -- listing -------------------------------------------------------------------

    async def list_page(self, prefix: str, token: str | None = None,
                        start_after: str | None = None, delimiter: str | None = None) -> Page:
        marker, held = from_token(token)
        page = await self._blobs.list_page(prefix, delimiter, marker, self._where(prefix),
                                           self.page_size)
        items = page.objects
        next_token = page.marker
        if delimiter is None:
            # Folders as every store names them, "d/", in key order (stores/azure/folders.py).
            items, held = named_folders(items, held, page.marker is None)
            next_token = held_token(page.marker, held) if page.marker is not None else None
        if start_after is not None:
            # List Blobs has no start-after: each page is filtered here instead.
            items = [i for i in items if i.key > start_after]
        return Page(items, page.prefixes, next_token)

    async def check_source(self) -> None:
        # List Blobs rather than Get Container Properties, which a container SAS may not do.
        # A start-up check: an endpoint that never answers is said so within a bounded
        # time (stores/reach.py).
        endpoint = self._endpoint()
        await self._first_token()
        await first_contact(lambda: self._blobs.list_page("", None, None, self._where(), 1,
                                                          first=endpoint), endpoint)

    async def _first_token(self) -> None:
        """With Entra ID, the token before the first request: the token endpoint's first
        contact is bounded and named on its own (``BearerTokens``), not inside the storage
        endpoint's, whose bound and "no answer from" notice would name the wrong one."""
        if self._tokens is not None:
            await self._tokens.get()

    def _endpoint(self) -> Endpoint:
        return Endpoint("Azure Blob", self.settings.blob_endpoint,
                        self.settings.endpoint_setting)

    async def ask_namespace(self) -> bool:
        """Whether the account has a hierarchical namespace (ADLS Gen2), asked of the
        service (Get Account Information, ``x-ms-is-hns-enabled``); the capabilities follow
        the answer.  Writes nothing and needs no container: ``scan`` asks this alone,
        ``prepare_destination`` before it creates the container.  A start-up check, as
        ``check_source``."""
        await self._first_token()
        return await first_contact(self._ask_namespace, self._endpoint())

    async def _ask_namespace(self) -> bool:
        # A container SAS may not read account information (Azure and Azurite answer
        # AuthorizationFailure): a bad SAS shows up at the next request.
        sas = self.settings.kind == "sas"
        try:
            if await self._blobs.account_is_hns(self._where(), first=self._endpoint()):
                self.capabilities = replace(self.capabilities, hierarchical=True, acls=True,
                                            directories=True)
        except (TransientError, EndpointUnreachable):
            raise
        except AuthError:
            if not sas:
                raise
        except ForbiddenError:
            pass  # account information needs account-level rights: a flat namespace it is
        except LakeshiftError as e:
            # Any other answer is not "you may not ask": assuming flat would leave name
            # collisions between files and folders unchecked on an ADLS Gen2 account.
            raise UsageError(f"{self._where()}: cannot tell whether the account has a "
                             f"hierarchical namespace (Get Account Information failed: "
                             f"{str(e).split(': ', 1)[-1]}): check the account and the "
                             "endpoint") from None
        return self.capabilities.hierarchical

    async def prepare_destination(self) -> None:
        # A container SAS may not create containers either.
        sas = self.settings.kind == "sas"
        await self.ask_namespace()
        try:
            await self._blobs.create_container(self._where())
        except ForbiddenError:
            return  # the right to write blobs, not to create containers
        except AuthError:
            if not sas:
                raise

    async def server_time(self) -> datetime | None:
        await self.check_source()  # any response carries the service's Date
        return self._blobs.last_date

    async def is_folder(self, path: str) -> bool:
        """A folder: something is below it, or it is a folder blob (an empty ADLS Gen2
        directory, an ``hdi_isfolder`` marker), as a listing of ``path/`` names it."""
        prefix = path.rstrip("/") + "/"
        if (await self._blobs.list_page(prefix, None, None, self._where(prefix), 1)).objects:
            return True
        folder = await self._folder_blob(path.rstrip("/"))
        return folder is not None and folder.is_dir_marker

    async def folder_entry(self, prefix: str) -> ObjectInfo | None:
        """The folder ``prefix`` (``d/``) itself, named ``d/`` as a listing names a folder
        blob, or None (no folder blob ``d``: no folder, or one only implied by its blobs on
        a flat account).  List Blobs of ``d/`` does not show it (azure/folders.py)."""
        if not prefix.endswith("/") or prefix == "/":
            return None
        blob = await self._folder_blob(prefix[:-1])
        return replace(blob, key=prefix) if blob is not None and blob.is_dir_marker else None

    async def _folder_blob(self, name: str) -> ObjectInfo | None:
        """The blob ``name`` as List Blobs lists it (metadata, tier), or None: the least
        name with that prefix is the name itself.  A listing of one name, not a HEAD: the
        right to list is what a listing has (a SAS may not grant read)."""
        found = (await self._blobs.list_page(name, None, None, self._where(name), 1)).objects
        return found[0] if found and found[0].key == name else None

    async def exists(self, key: str) -> ObjectInfo | None:
        info = await self._blobs.head(key, self._where(key))
        if info is None or not info.metadata:
            return info
        return replace(info, metadata=decode_metadata(info.metadata))

    # -- data ----------------------------------------------------------------------

    def _refused(self, error: AuthError) -> LakeshiftError:
        """A read refused after the credentials have worked fails only its object (see
        status.status_error); before that, it is the run's credential error."""
        blobs = self.__dict__.get("_blobs")
        if blobs is not None and blobs.credentials_worked:
            return ForbiddenError(str(error))
        return error

    async def read(self, key: str, start: int | None = None, end: int | None = None,
                   if_match: str | None = None) -> ReadResult:
        try:
            r = await obstore_read(self._ob, key, start, end, if_match, self._where(key))
        except AuthError as e:
            raise self._refused(e) from None
        return replace(r, props=_decoded(r.props))

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None = None) -> ObstoreRange:
        try:
            rng = await open_range(self._ob, key, start, end, if_match, self._where(key))
        except AuthError as e:
            raise self._refused(e) from None
        rng.props = _decoded(rng.props)
        return rng

    async def put(self, key: str, data: Data, props: ObjectProps, md5: bytes) -> None:
        meta = encode_metadata(props.metadata, memoryview(data).nbytes)
        await self._blobs.put(key, data, props, md5, meta, self._where(key))

    async def put_stream(self, key: str, size: int, chunks: AsyncIterator[bytes],
                         props: ObjectProps, md5: bytes | None) -> bytes | None:
        return await self._blobs.put_stream(key, size, chunks, props, md5,
                                            encode_metadata(props.metadata, size),
                                            self._where(key))

    # -- server-side copy ------------------------------------------------------------

    async def read_url(self, key: str, expires_in: int) -> str | None:
        """The blob's URL with a read-only blob SAS minted now: a service SAS (account key),
        a user-delegation SAS (an Entra ID token: signed with a user delegation key, asked
        for once an hour), or the user's own SAS (which lakeshift cannot renew)."""
        now = datetime.now(UTC)
        start, expiry = now - timedelta(minutes=5), now + timedelta(seconds=expires_in)
        if self.settings.kind == "key" and self.settings.key:
            sas = blob_sas(self.settings.account, self.settings.key, self.container, key,
                           "r", start, expiry)
            return f"{self._blobs.blob_url(key)}?{sas}"
        if self.settings.kind == "sas" and self.settings.sas:
            return f"{self._blobs.blob_url(key)}?{self.settings.sas}"
        if self.settings.kind == "token":
            udk = await self._delegation_key(expiry)
            sas = user_delegation_sas(self.settings.account, udk, self.container, key, "r",
                                      start, expiry)
            return f"{self._blobs.blob_url(key)}?{sas}"
        return None

    async def _delegation_key(self, until: datetime) -> DelegationKey:
        """The user delegation key, asked for again when it would expire before ``until``
        (one request for all the copies waiting on it)."""
        if self._udk_lock is None:
            self._udk_lock = asyncio.Lock()
        async with self._udk_lock:
            if self._udk is None or self._udk_expiry < until + timedelta(minutes=1):
                now = datetime.now(UTC)
                expiry = max(now + _DELEGATION_KEY_LIFETIME, until + timedelta(minutes=5))
                self._udk = await self._blobs.user_delegation_key(
                    now - timedelta(minutes=5), expiry, self._where())
                self._udk_expiry = expiry
            return self._udk

    async def put_from_url(self, key: str, url: str, size: int, props: ObjectProps,
                           md5: bytes, same_service: bool, source_etag: str | None) -> None:
        """A blob of this service up to 256 MiB: Copy Blob From URL (its properties come
        with it; the request Azurite does too); anything else up to 5000 MiB: Put Blob From
        URL (Azurite answers 501: ServerCopyUnavailable)."""
        metadata = encode_metadata(props.metadata, size)
        if same_service and size <= SYNC_COPY_MAX:
            await self._blobs.copy_from_url(key, url, md5, metadata, source_etag,
                                            self._where(key))
        elif size <= PUT_FROM_URL_MAX:
            await self._blobs.put_from_url(key, url, props, md5, metadata, self._where(key))
        else:
            raise ServerCopyUnavailable(f"{self._where(key)}: larger than one Put Blob From "
                                        "URL takes (5000 MiB)")

    async def start_blocks(self, key: str, size: int, block_size: int,
                           props: ObjectProps) -> BlockUpload:
        return _AzureBlocks(self, key, size, props)

    async def delete(self, key: str) -> None:
        await self._blobs.delete(key, self._where(key))

    async def close(self) -> None:
        blobs = self.__dict__.get("_blobs")
        if blobs is not None:
            await blobs.close()
        dfs = self.__dict__.get("_dfs")
        if dfs is not None:
            await dfs.close()
        tokens = self.__dict__.get("_tokens")
        if tokens is not None:
            await tokens.close()  # closes self._credential and any renewed one
        elif self._credential is not None:
            await self._credential.close()


class _AzureBlocks:
    """Put Block for each block (any order, in parallel), then Put Block List with the
    whole object's MD5.  Nothing is visible under the name until the commit."""

    def __init__(self, store: AzureBlobStore, key: str, size: int,
                 props: ObjectProps) -> None:
        self.store = store
        self.key = key
        self.size = size
        self.props = props
        self.token = uuid.uuid4().hex[:12]
        self._etag: str | None = None  # of the committed blob, while it is proven
        self._proven = self._recorded = False
        self._from_url = False  # a block the service read itself (a server-side copy)

    def _id(self, index: int) -> str:
        """Fixed length, as the service requires of all IDs in one blob."""
        return f"lakeshift-{self.token}-{index:010d}"

    async def stage(self, index: int, offset: int, data: Data, md5: bytes | None) -> None:
        await self.store._blobs.put_block(self.key, self._id(index), data, md5,
                                          self.store._where(self.key))

    async def stage_crc64(self, index: int, offset: int, data: Data, crc64: bytes) -> None:
        await self.store._blobs.put_block(self.key, self._id(index), data, None,
                                          self.store._where(self.key), crc64=crc64)

    async def stage_pieces(self, index: int, offset: int, data: Pieces, md5: bytes | None,
                           crc64: bytes | None) -> None:
        await self.store._blobs.put_block(self.key, self._id(index), data, md5,
                                          self.store._where(self.key), crc64=crc64)

    async def commit(self, order: list[int], md5: bytes | None) -> None:
        # A server-side copy committed without an MD5 is still to be proven (see prove):
        # until then nothing on the blob may say it is a copy of this source version, not
        # even the recorded ETag (plan/compare.identical would take either for proof and
        # skip it on a rerun).  Blocks sent from here were proven before the commit (by
        # parts, engine/transfer_parts._copy_parts, there is no whole-object MD5 to store).
        unproven = md5 is None and self._from_url
        meta = {k: v for k, v in self.props.metadata.items()
                if k != SRC_ETAG_KEY} if unproven else self.props.metadata
        self._etag = await self.store._blobs.put_block_list(
            self.key, [self._id(i) for i in order], self.props, md5,
            encode_metadata(meta, self.size), self.store._where(self.key))
        self._proven = md5 is not None

    async def prove(self, md5: bytes) -> None:
        """The blob committed without an MD5 (``commit(order, None)``) was proven by the
        caller: store ``md5`` on it, then the metadata that records the source's version.
        Only the version committed is changed (a blob changed since fails with 412).
        Retried, the steps already done are not done again."""
        where = self.store._where(self.key)
        if not self._proven:
            self._etag = await self.store._blobs.set_properties(self.key, self.props, md5,
                                                                self._etag, where)
            self._proven = True
        if SRC_ETAG_KEY in self.props.metadata and not self._recorded:
            await self.store._blobs.set_metadata(
                self.key, encode_metadata(self.props.metadata, self.size), self._etag, where)
            self._recorded = True

    async def stage_from_url(self, index: int, url: str, start: int, end: int,
                             source_etag: str | None) -> None:
        self._from_url = True
        await self.store._blobs.put_block_from_url(self.key, self._id(index), url, start, end,
                                                   source_etag, self.store._where(self.key))

    async def abort(self) -> None:
        # Uncommitted blocks are invisible and the service drops them after a week.
        return None


def _decoded(props: ObjectProps) -> ObjectProps:
    """Metadata names and values as they were before encode_metadata (stores/props.py)."""
    return replace(props, metadata=decode_metadata(props.metadata))
