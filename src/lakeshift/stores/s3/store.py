"""Amazon S3 and S3-compatible stores (MinIO, Ceph, moto).

Listing is ListObjectsV2 (it keeps keys verbatim: folder markers ``dir/``, empty segments,
true string prefixes, StartAfter), reads are GETs and the HEADs of a copy (``exists``,
``source_checksums``) HEADs, each one SigV4-signed request through ``stores/wire/``
(``listing.py``, ``reads.py``); writes to S3 go through obstore; scan's HEAD (``inspect``),
bucket settings, deletes and multipart clean-up through botocore (``boto_client.py``).
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any
from urllib.parse import quote

import obstore
from obstore.store import S3Store as _ObS3

from lakeshift.errors import (
    AuthError,
    EndpointUnreachable,
    ForbiddenError,
    IntegrityError,
    LakeshiftError,
    MissingContainerError,
    NotFoundError,
    TransientError,
    UsageError,
)
from lakeshift.model import Data, ObjectInfo, ObjectProps, ReadResult
from lakeshift.redact import redact
from lakeshift.stores.base import (
    BlockUpload,
    BucketFacts,
    Capabilities,
    ObjectDetails,
    Page,
    SourceChecksum,
    StoreConfig,
)
from lakeshift.stores.http import check_http
from lakeshift.stores.obstore_common import (
    RETRY_CONFIG,
    client_options,
    translate,
)
from lakeshift.stores.props import attributes_from_props, unquote_etag
from lakeshift.stores.reach import Endpoint, first_contact, not_the_service
from lakeshift.stores.s3 import auth as aws_auth
from lakeshift.stores.s3.boto_client import boto_error, inspect_head, new_client, request_payer
from lakeshift.stores.s3.listing import (
    ListResult,
    list_query,
    parse_encryption,
    parse_list,
)
from lakeshift.stores.s3.presign import presigned_get
from lakeshift.stores.s3.reads import (
    OPAQUE_ETAG_SSE,
    S3Reads,
    WireRange,
    checksum_from_heads,
    etag_is_opaque,
    from_s3_service,
    info_from_head,
    s3_error,
)
from lakeshift.stores.s3.uploads import PartMD5s, _SequentialUpload

CAPABILITIES = Capabilities(
    list_start_after=True, content_md5=True, hierarchical=False, acls=False,
    copy_from_url=False, block_upload=False, max_block_size=5 * 1024**3, etag_is_md5=True,
    metadata_in_listing=False, max_blocks=10_000, source_checksums=True, read_url=True,
    slash_folders=True, put_checks_md5=True,
)
_PARTS = re.compile(r"^[0-9a-fA-F]{32}-(\d+)$")
#: Listing bodies up to this size are parsed on the event loop (a thread hop costs more).
_PARSE_ON_LOOP_MAX = 64 * 1024


class S3Store:
    capabilities = CAPABILITIES

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.url = config.url
        self.page_size = 1000
        #: Whether a listing's single-part ETags are MD5s (None: not asked yet).
        self._etags_md5: bool | None = None
        self.bucket = config.url.bucket
        self.settings = aws_auth.resolve(config.options)
        self.http = bool(self.settings.endpoint) and check_http(
            self.settings.endpoint or "", config.options.allow_http)
        self.request_payer = request_payer(config.options.s3_request_payer)

    @cached_property
    def _ob(self) -> Any:
        kw: dict[str, Any] = {"region": self.settings.region}
        if self.settings.endpoint:
            kw["endpoint"] = self.settings.endpoint
            kw["virtual_hosted_style_request"] = False
        if self.settings.credentials is None:
            kw["skip_signature"] = True
        if self.request_payer:
            kw["request_payer"] = True
        return _ObS3(self.bucket, client_options=client_options(self.http),
                     retry_config=RETRY_CONFIG,
                     credential_provider=aws_auth.obstore_provider(self.settings), **kw)

    @cached_property
    def _boto(self) -> Any:
        return new_client(self.settings, self.config.options, self.request_payer)

    # -- listing -------------------------------------------------------------------

    async def _etags_are_md5(self) -> bool:
        """Whether a single-part ETag in a listing is the object's MD5.  Not when the bucket
        encrypts new objects with SSE-KMS by default: such ETags are opaque (S3's ETag
        documentation), so they are not offered as MD5s at all.  An object encrypted with
        SSE-KMS or SSE-C in a bucket without that default is found by its HEAD (``exists``)
        when its copy fails the MD5 check."""
        if self._etags_md5 is None:
            # GetBucketEncryption.  No default-encryption configuration (404), no right to
            # read it, or an answer that cannot be read: MD5s.
            try:
                status, _, body = await self._reads.control([("encryption", "")],
                                                            self._reads.where(""))
                algos = parse_encryption(body) if status == 200 else set()
            except (LakeshiftError, ValueError):
                algos = set()
            self._etags_md5 = not algos & OPAQUE_ETAG_SSE
        return self._etags_md5

    async def _list(self, prefix: str, max_keys: int, token: str | None = None,
                    start_after: str | None = None,
                    delimiter: str | None = None,
                    etag_md5: bool | None = None,
                    first: Endpoint | None = None) -> tuple[ListResult, Any]:
        """One ListObjectsV2 page (``listing.py``, through wire) and its response headers
        (its rows ObjectInfos when ``etag_md5`` is given: ``parse_list``); errors in the
        lakeshift tree.  A listing refused because the bucket is
        requester-pays (the same listing accepting the charges works) is a UsageError
        naming the flag.  ``first``: the listing is the first contact with that endpoint,
        whose error answer must be S3's own (``_first_answer``)."""
        what = self._reads.where(prefix)
        query = list_query(prefix, max_keys, token, start_after, delimiter)
        status, headers, body = await self._reads.control(query, what)
        if status != 200:
            if first is not None:
                _first_answer(first, status, headers, body)
            err = s3_error(status, headers, body, what, self.settings.region)
            if type(err) is NotFoundError:
                # A listing names no object: its 404 without S3's code (a bare status) is
                # the bucket's.
                err = MissingContainerError(f"{what}: bucket does not exist: create it or "
                                            "fix the URL")
            if first is not None and type(err) is LakeshiftError:
                # An S3 error no other case knows, at the start: the URL or the endpoint
                # is to fix, not a bug (exit 2, not 4).
                raise UsageError(f"{err}: check the URL and {first.setting}") from None
            if isinstance(err, ForbiddenError) and not self.request_payer and \
                    await self._pays_requester():
                raise UsageError(f"s3://{self.bucket} is a requester-pays bucket: pass "
                                 "--s3-request-payer requester (you then pay for its "
                                 "requests and data transfer)") from None
            raise err
        try:
            # A full page (~250 KB for 1,000 keys) takes tens of ms to parse: off the loop,
            # where every transfer in flight would wait for it.
            if len(body) > _PARSE_ON_LOOP_MAX:
                return await asyncio.to_thread(parse_list, body, etag_md5), headers
            return parse_list(body, etag_md5), headers
        except ValueError as e:
            # A body cut short that still looked complete: the page can be asked for again.
            raise TransientError(f"{what}: listing response: {str(e)[:200]}") from None

    async def list_page(self, prefix: str, token: str | None = None,
                        start_after: str | None = None, delimiter: str | None = None) -> Page:
        etag_md5 = await self._etags_are_md5()
        # (StartAfter only on the first page: the token carries the position after it.)
        result, _ = await self._list(prefix, self.page_size, token,
                                     None if token else start_after, delimiter, etag_md5)
        return Page(result.rows, result.common_prefixes,
                    result.next_token if result.is_truncated else None)

    async def bucket_facts(self) -> BucketFacts:
        """Versioning and request payment, each None when it cannot be read."""

        async def status(op: str, field: str) -> str | None:
            try:
                resp = await asyncio.to_thread(self._call, op, {"Bucket": self.bucket}, "")
            except (AuthError, UsageError):
                raise
            except LakeshiftError:
                return None
            return str(resp.get(field) or "")

        versioning = await status("get_bucket_versioning", "Status")
        payer = await status("get_bucket_request_payment", "Payer")
        return BucketFacts(None if versioning is None else versioning in ("Enabled",
                                                                           "Suspended"),
                           None if payer is None else payer == "Requester")

    async def inspect(self, key: str) -> ObjectDetails:
        """A HEAD of ``key`` (``boto_client.inspect_head``: an SSE-C object is told by the
        one-byte GET its bare 400 calls for).  An S3-compatible store may instead answer the
        HEAD with the ``x-amz-server-side-encryption-customer-algorithm`` header: SSE-C too."""
        # (The client is built, on first use, in the worker thread with the rest.)
        resp = await asyncio.to_thread(
            lambda: inspect_head(self._boto, self.bucket, key, self._call))
        if resp is None:
            return ObjectDetails({}, sse_customer=True)
        restore = str(resp.get("Restore") or "")
        restored = 'ongoing-request="false"' in restore
        return ObjectDetails(dict(resp.get("Metadata") or {}),
                             bool(resp.get("SSECustomerAlgorithm")), restored,
                             "" if restored else str(resp.get("ArchiveStatus") or ""))

    def _call(self, op: str, kw: dict[str, Any], what: str) -> Any:
        import botocore.exceptions as bex
        import urllib3.exceptions
        from botocore.parsers import ResponseParserError

        try:
            return getattr(self._boto, op)(**kw)
        except bex.ClientError as e:
            raise boto_error(e, f"s3://{self.bucket}/{what}") from None
        except bex.NoCredentialsError as e:
            raise AuthError(f"no AWS credentials: {e}") from None
        except (bex.HTTPClientError, bex.ConnectionError, bex.IncompleteReadError,
                ResponseParserError, urllib3.exceptions.HTTPError) as e:
            # A reset, a timeout, or a body cut short (its XML then does not parse): the
            # request can be sent again (engine/retry.py).
            raise TransientError(redact(f"s3://{self.bucket}/{what}: {type(e).__name__}: "
                                        f"{str(e)[:200]}")) from None

    async def _pays_requester(self) -> bool:
        """After a listing was refused: whether the same listing succeeds when the caller
        accepts the charges (so the refusal was the bucket's request payment setting)."""
        try:
            status, _, _ = await self._reads.control(list_query("", 1), self._reads.where(""),
                                                     request_payer=True)
        except LakeshiftError:
            return False
        return status == 200

    async def check_source(self) -> None:
        # ListObjectsV2 rather than HeadBucket: a HEAD error has no body, so a wrong key
        # and a missing permission would look the same.  A start-up check: an endpoint
        # that never answers is said so within a bounded time (stores/reach.py).
        endpoint = self._endpoint()
        await first_contact(lambda: self._list("", 1, first=endpoint), endpoint)

    def _endpoint(self) -> Endpoint:
        if self.settings.endpoint:
            return Endpoint("S3", self.settings.endpoint.rstrip("/"),
                            aws_auth.endpoint_source(self.config.options))
        return Endpoint("S3", self._reads.origin,
                        "the bucket name and the region (--s3-region, AWS_REGION)")

    async def server_time(self) -> datetime | None:
        _, headers = await self._list("", 1)
        date = headers.get("Date")
        return parsedate_to_datetime(date) if date else None

    async def prepare_destination(self) -> None:
        try:
            await self.check_source()
        except EndpointUnreachable:
            raise
        except UsageError:
            await asyncio.to_thread(self._call, "create_bucket", {"Bucket": self.bucket}, "")

    async def is_folder(self, path: str) -> bool:
        result, _ = await self._list(path.rstrip("/") + "/", 1)
        if result.key_count is not None:
            return result.key_count > 0
        return bool(result.rows or result.common_prefixes)

    async def exists(self, key: str) -> ObjectInfo | None:
        """A HEAD of ``key`` (through wire; None when there is no such object or bucket)."""
        what = self._reads.where(key)
        status, headers, _ = await self._reads.control([], what, method="HEAD", key=key)
        if status == 200:
            return info_from_head(key, headers)
        err = s3_error(status, headers, b"", what, self.settings.region)
        if isinstance(err, NotFoundError | MissingContainerError):
            return None
        raise err  # (a wrong region too: a UsageError naming --s3-region)

    async def source_checksums(self, key: str, etag: str | None) -> SourceChecksum:
        """HEAD with ``x-amz-checksum-mode: ENABLED`` (the additional checksum, and whether
        it is COMPOSITE), and for a multipart object HEAD ``?partNumber=1`` (part 1's size
        and the part count), both of version ``etag``; through wire, as ``exists``."""
        multipart = _PARTS.match(etag or "")
        extra = [("x-amz-checksum-mode", "ENABLED")]
        if etag:
            extra.append(("if-match", f'"{etag}"'))
        heads = [self._head(key, [], extra)]
        if multipart:
            # Without If-Match: moto answers a part's HEAD with the part's ETag.  The ETag
            # is checked by the first HEAD and by the GET that follows.
            heads.append(self._head(key, [("partNumber", "1")], []))
        # (A 412 is a ChangedError, a 416 for part 1 too: the object is no longer the
        # multipart one listed.)
        answers = await asyncio.gather(*heads)
        return checksum_from_heads(answers[0], answers[1] if multipart else None,
                                   int(multipart.group(1)) if multipart else None)

    async def _head(self, key: str, query: list[tuple[str, str]],
                    extra: list[tuple[str, str]]) -> Any:
        """A HEAD of ``key`` through wire: its response headers (200), else its error."""
        what = self._reads.where(key)
        status, headers, _ = await self._reads.control(query, what, method="HEAD", key=key,
                                                       extra=extra)
        if status != 200:
            raise s3_error(status, headers, b"", what, self.settings.region)
        return headers

    async def read_url(self, key: str, expires_in: int) -> str | None:
        """A presigned GET (SigV4, minted now; unsigned for --s3-anonymous)."""
        endpoint = self.settings.endpoint or f"https://s3.{self.settings.region}.amazonaws.com"
        creds = self.settings.credentials
        if creds is None:
            base = endpoint.rstrip("/")
            return f"{base}/{quote(self.bucket)}/{quote(key, safe='/-_.~')}"
        frozen = await asyncio.to_thread(creds.get_frozen_credentials)
        return presigned_get(endpoint, self.bucket, key, self.settings.region,
                             frozen.access_key, frozen.secret_key, frozen.token, expires_in,
                             path_style=bool(self.settings.endpoint))

    # -- data ----------------------------------------------------------------------

    @cached_property
    def _reads(self) -> S3Reads:
        return S3Reads(self.settings, self.bucket, self.request_payer)

    async def read(self, key: str, start: int | None = None, end: int | None = None,
                   if_match: str | None = None) -> ReadResult:
        return await self._reads.read(key, start, end, if_match)

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None = None) -> WireRange:
        return await self._reads.open_range(key, start, end, if_match)

    async def put(self, key: str, data: Data, props: ObjectProps, md5: bytes) -> None:
        """One PutObject, created only as bytes whose MD5 is ``md5`` (``put_checks_md5``):
        S3 answers a single-part PutObject with the ETag of what it stored, its MD5 unless
        the object is encrypted with SSE-KMS or SSE-C, so the ETag is compared with ``md5``
        (no request more).  Where the ETag is no MD5 (a bucket encrypting with SSE-KMS by
        default, or an answer the HEAD shows so encrypted) the bytes are sent again through
        botocore with ``Content-MD5``, which S3 checks itself (obstore cannot send it).  A
        stored object whose MD5 differs is deleted: it carries the source's ETag, which the
        skip rule trusts."""
        if key.endswith("/") or not await self._etags_are_md5():
            # A folder object "d/" (transfer.copy_marker): obstore's paths drop a trailing
            # "/" (object_store's Path has no empty segment).
            await self._checked_put(key, data, props, md5)
            return
        try:
            result = await obstore.put_async(self._ob, key, data,
                                             attributes=attributes_from_props(props),
                                             use_multipart=False)
        except Exception as e:
            raise translate(e, f"s3://{self.bucket}/{key}") from None
        etag = unquote_etag(result.get("e_tag"))
        if etag != md5.hex():
            await self._unproven(key, etag, md5.hex(),
                                 lambda: self._checked_put(key, data, props, md5))

    async def _checked_put(self, key: str, data: Data, props: ObjectProps,
                           md5: bytes) -> None:
        """PutObject through botocore with ``Content-MD5``: S3 refuses (BadDigest, an
        IntegrityError) a body that does not have it."""
        kw: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": bytes(data),
                              "ContentMD5": base64.b64encode(md5).decode()}
        for arg, value in (("ContentType", props.content_type),
                           ("ContentEncoding", props.content_encoding),
                           ("CacheControl", props.cache_control),
                           ("ContentDisposition", props.content_disposition),
                           ("ContentLanguage", props.content_language)):
            if value:
                kw[arg] = value
        if props.metadata:
            kw["Metadata"] = dict(props.metadata)
        await asyncio.to_thread(self._call, "put_object", kw, key)

    async def _unproven(self, key: str, etag: str | None, expected: str,
                        again: Callable[[], Awaitable[None]] | None) -> bool:
        """After a write whose ETag is not ``expected`` (the MD5, or the multipart ETag,
        of the bytes sent): a HEAD says whether the object's ETag is a digest at all.  Not
        under SSE-KMS or SSE-C: then ``again`` writes it with a check S3 makes itself
        (True), or, with nothing to write it by, False (nothing checked what S3 stored).
        Otherwise S3 stored other bytes than were sent: the object is deleted and the
        write fails as an IntegrityError (copied again)."""
        headers = await self._head(key, [], [])
        if etag_is_opaque(headers):
            if again is None:
                return False
            await again()
            return True
        await self.delete(key)
        raise IntegrityError(f"s3://{self.bucket}/{key}: S3 stored bytes whose ETag is "
                             f"{etag or 'none'}, the bytes sent have {expected} (changed in "
                             "transit); deleted, to be copied again")

    async def put_stream(self, key: str, size: int, chunks: AsyncIterator[bytes],
                         props: ObjectProps, md5: bytes | None) -> bytes | None:
        raise LakeshiftError(f"s3://{self.bucket}/{key}: streamed puts are not available for "
                             "S3 destinations (capabilities.stream_put is false)")

    async def start_blocks(self, key: str, size: int, block_size: int,
                           props: ObjectProps) -> BlockUpload:
        part = max(block_size, 5 * 1024 * 1024)
        writer = obstore.open_writer_async(self._ob, key, attributes=attributes_from_props(props),
                                           buffer_size=part, max_concurrency=4)
        # (Where the bucket's ETags are no MD5s, no part is hashed: nothing could use it.)
        parts = PartMD5s(part) if await self._etags_are_md5() else None
        return _SequentialUpload(writer, f"s3://{self.bucket}/{key}",
                                 lambda: self._abort_open_uploads(key), parts,
                                 lambda etag: self._check_upload(key, etag))

    async def _check_upload(self, key: str, expected: str | None) -> bool:
        """After obstore's writer closed (it returns no ETag): a HEAD for the ETag of what
        S3 stored, compared with ``expected``, the ETag rebuilt from the MD5s of the parts
        sent (``PartMD5s``; None where the bucket's ETags are no MD5s).  True when they
        agree, False when nothing could be compared (SSE-KMS, SSE-C); an IntegrityError,
        the object deleted, when S3 stored other bytes."""
        if expected is None:
            return False
        headers = await self._head(key, [], [])
        etag = unquote_etag(headers.get("ETag"))
        if etag == expected:
            return True
        return await self._unproven(key, etag, expected, None)

    def _abort_open_uploads(self, key: str) -> None:
        """AbortMultipartUpload for every open multipart upload of ``key``."""
        kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": key}
        while True:
            resp = self._call("list_multipart_uploads", kw, key)
            for u in resp.get("Uploads", []):
                if u.get("Key") == key:
                    self._call("abort_multipart_upload", {"Bucket": self.bucket, "Key": key,
                                                          "UploadId": u["UploadId"]}, key)
            if not resp.get("IsTruncated"):
                return
            kw["KeyMarker"] = resp.get("NextKeyMarker")
            kw["UploadIdMarker"] = resp.get("NextUploadIdMarker")

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._call, "delete_object", {"Bucket": self.bucket, "Key": key},
                                key)

    async def close(self) -> None:
        if "_reads" in self.__dict__:
            await self._reads.close()
        if "_boto" in self.__dict__:
            self._boto.close()


_CODE_ELEMENT = re.compile(rb"<Code>[^<]+</Code>")
_HTML = re.compile(rb"\s*<(!doctype html|html)", re.IGNORECASE)


def _first_answer(endpoint: Endpoint, status: int, headers: Any, body: bytes) -> None:
    """An error answer to a first contact that is not S3's own is EndpointMismatch: that
    endpoint is not an S3 service.  S3's own: an XML body with a ``<Code>``; or, when there
    is none (some S3-compatible services answer some errors with a bare status), the
    headers S3 services put on every answer, errors included (``reads.from_s3_service``),
    on a body that is not an HTML page -- its status then says what it is (403: credentials
    or permission, 404 to a listing: no such bucket).  Not S3's: Azure Storage's answer
    (its headers or ``Server`` name; said so), an HTML page (a web server's or a proxy's;
    with S3's headers, an S3 *website* endpoint's, said so), anything else without
    ``<Code>`` or S3's headers (a web server's bare 404).  A redirect, a throttle and a
    server error go on as before (S3's own redirects name the region; 5xx are retried)."""
    if status >= 500 or status in (301, 307, 429):
        return
    server = (headers.get("Server") or "").lower()
    azure = bool(headers.get("x-ms-request-id") or headers.get("x-ms-error-code")) or \
        "azure" in server or "azurite" in server
    if azure:
        raise not_the_service(endpoint, status, "Azure Storage")
    if _CODE_ELEMENT.search(body[:4096]):
        return
    s3_headers = from_s3_service(headers)
    if "html" in (headers.get("Content-Type") or "").lower() or _HTML.match(body):
        raise not_the_service(endpoint, status, "an S3 website endpoint, which serves HTML "
                              "pages, not the S3 API" if s3_headers else "")
    if not s3_headers:
        raise not_the_service(endpoint, status)
